/*
 * train.c — `culora train`: fine-tune a Hugging Face model (full, LoRA, LoRA-FA, QLoRA, ReLoRA) on text or
 * JSONL, with a progress line, metrics, checkpoints and resume; data parallel under mpirun,
 * srun or torchrun-style variables.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "cli_util.h"

#include "culora/culora_dist.h"
#include "culora/culora_model.h"
#include "culora/culora_quant.h"
#include "culora/culora_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

struct train_args {
    const char *model, *data, *eval_data, *mode, *targets, *out, *resume, *device, *tokenizer, *metrics, *schedule;
    const char *adapter, *quant, *optimizer_reset;
    int64_t rank, seq_len, batch, grad_accum, steps, warmup, seed, eval_every, eval_batches, checkpoint_every, keep;
    int64_t max_bad_steps, log_every, relora_every, restart_warmup, warm_start_steps;
    double alpha, dropout, lr, weight_decay, max_grad_norm, min_lr_ratio, timeout, reset_ratio, warm_start_lr;
    bool rslora, quiet, train_non_lora, freeze_non_lora;
};

struct progress {
    bool tty, quiet;
    int rank;
    int64_t every; /* print every this many steps when not on a terminal */
};

static int on_step(const culora_step_info *in, void *user)
{
    const struct progress *pg = user;
    if (pg->rank != 0 || pg->quiet)
        return 0;
    if (in->is_eval) {
        printf("%seval  step %lld/%lld  loss %.4f  perplexity %.2f\n", pg->tty ? "\r\033[K" : "", (long long)in->step,
               (long long)in->total_steps, (double)in->eval_loss, exp((double)in->eval_loss));
        fflush(stdout);
        return 0;
    }
    if (!pg->tty && in->step % pg->every != 0 && in->step != in->total_steps && in->step != 1 && !in->skipped)
        return 0;
    char eta[32], el[32];
    const double per_step = in->elapsed_s / (double)(in->step > 0 ? in->step : 1);
    cli_duration(per_step * (double)(in->total_steps - in->step), eta, sizeof eta);
    cli_duration(in->elapsed_s, el, sizeof el);
    char restarts[48] = "";
    if (in->relora_restarts > 0)
        snprintf(restarts, sizeof restarts, "  restarts %lld", (long long)in->relora_restarts);
    printf("%sstep %lld/%lld  loss %.4f  lr %.3g  grad %.3g  %.0f tok/s  %s elapsed  ETA %s%s%s%s",
           pg->tty ? "\r\033[K" : "", (long long)in->step, (long long)in->total_steps, (double)in->loss, (double)in->lr,
           (double)in->grad_norm, in->tokens_per_s, el, eta, restarts, in->skipped ? "  (skipped: non-finite)" : "",
           pg->tty && in->step < in->total_steps ? "" : "\n");
    fflush(stdout);
    return 0;
}

/* --mode: lora, lora-fa, full, qlora (LoRA on an NF4 double-quantized base), int8 (LoRA on an
 * LLM.int8 base). --quant overrides the base format of the LoRA modes. */
static int parse_mode(const char *s, const char *quant, int32_t *qformat, uint32_t *qflags)
{
    int mode = -1;
    *qformat = 0;
    *qflags = 0;
    if (strcmp(s, "lora") == 0 || strcmp(s, "relora") == 0) mode = CULORA_MODE_LORA;
    else if (strcmp(s, "lora-fa") == 0) mode = CULORA_MODE_LORA_FA;
    else if (strcmp(s, "full") == 0) mode = CULORA_MODE_FULL;
    else if (strcmp(s, "qlora") == 0) {
        mode = CULORA_MODE_LORA;
        *qformat = CULORA_QUANT_NF4;
        *qflags = CULORA_QUANT_DOUBLE_QUANT;
    } else if (strcmp(s, "int8") == 0) {
        mode = CULORA_MODE_LORA;
        *qformat = CULORA_QUANT_INT8;
    }
    if (quant != NULL && mode >= 0) {
        *qflags = 0;
        if (strcmp(quant, "nf4") == 0) *qformat = CULORA_QUANT_NF4;
        else if (strcmp(quant, "nf4-dq") == 0) { *qformat = CULORA_QUANT_NF4; *qflags = CULORA_QUANT_DOUBLE_QUANT; }
        else if (strcmp(quant, "fp4") == 0) *qformat = CULORA_QUANT_FP4;
        else if (strcmp(quant, "fp4-dq") == 0) { *qformat = CULORA_QUANT_FP4; *qflags = CULORA_QUANT_DOUBLE_QUANT; }
        else if (strcmp(quant, "int8") == 0) *qformat = CULORA_QUANT_INT8;
        else if (strcmp(quant, "none") == 0) *qformat = 0;
        else return -1;
    }
    return mode;
}

static int parse_schedule(const char *s)
{
    if (strcmp(s, "cosine-restarts") == 0) return CULORA_LR_COSINE_RESTARTS;
    if (strcmp(s, "cosine-min") == 0) return CULORA_LR_COSINE_MIN;
    if (strcmp(s, "cosine") == 0) return CULORA_LR_COSINE;
    if (strcmp(s, "linear") == 0) return CULORA_LR_LINEAR;
    if (strcmp(s, "constant") == 0) return CULORA_LR_CONSTANT;
    return -1;
}

/* "q_proj,v_proj" → list; "regex:..." → regex. */
static int split_targets(const char *spec, char **buf, const char ***list, size_t *n, const char **regex)
{
    *regex = NULL;
    *list = NULL;
    *n = 0;
    if (strncmp(spec, "regex:", 6) == 0) {
        *regex = spec + 6;
        return 0;
    }
    *buf = strdup(spec);
    *list = calloc(strlen(spec) + 1, sizeof **list);
    if (*buf == NULL || *list == NULL)
        return -1;
    for (char *save = NULL, *t = strtok_r(*buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
        if (*t != '\0')
            (*list)[(*n)++] = t;
    return 0;
}

static int run(struct train_args *a)
{
    int32_t qformat = 0;
    uint32_t qflags = 0;
    const bool relora = strcmp(a->mode, "relora") == 0; /* LoRA with restarts (docs/relora.md) */
    const int mode = parse_mode(a->mode, a->quant, &qformat, &qflags);
    const int sched = parse_schedule(a->schedule ? a->schedule : relora ? "cosine-restarts" : "cosine");
    const int reset = strcmp(a->optimizer_reset, "magnitude") == 0 ? CULORA_RELORA_RESET_MAGNITUDE
                      : strcmp(a->optimizer_reset, "random") == 0  ? CULORA_RELORA_RESET_RANDOM
                      : strcmp(a->optimizer_reset, "zero") == 0    ? CULORA_RELORA_RESET_ZERO
                      : strcmp(a->optimizer_reset, "none") == 0    ? CULORA_RELORA_RESET_NONE
                                                                   : -1;
    if (mode < 0 || sched < 0 || reset < 0) {
        fprintf(stderr, "culora train: --mode must be lora, lora-fa, qlora, int8, relora or full, --quant nf4, nf4-dq, "
                        "fp4, fp4-dq, int8 or none; --schedule cosine, linear, constant, cosine-restarts or cosine-min; "
                        "--optimizer-reset magnitude, random, zero or none\n");
        return 2;
    }
    if (relora != (a->relora_every > 0)) {
        fprintf(stderr, "culora train: %s\n", relora ? "--mode relora needs --relora-every N (steps between restarts)"
                                                     : "--relora-every needs --mode relora");
        return 2;
    }
    culora_context *boot = cli_context("cpu", 0);
    if (boot == NULL)
        return 1;
    culora_dist_env env;
    culora_status s = culora_dist_env_parse(boot, environ, &env);
    if (s != CULORA_OK) {
        int rc = cli_fail("train", "launcher environment", boot, s);
        culora_context_destroy(boot);
        return rc;
    }
    culora_context_destroy(boot);
    culora_context *ctx = cli_context(a->device, env.local_rank); /* each rank drives its local GPU */
    if (ctx == NULL)
        return 1;
    int rc = 0;
    culora_dist *dist = NULL;
    culora_tokenizer *tok = NULL;
    culora_dataset *ds = NULL, *eds = NULL;
    culora_loader *ld = NULL, *eld = NULL;
    culora_model *model = NULL;
    culora_trainer *tr = NULL;
    char *tbuf = NULL;
    const char **tlist = NULL;
    culora_model_config cfg;
    char metrics_default[4096], ckpt[4096], adapter_out[4096];

    if (env.world_size > 1) {
        culora_dist_params dp = CULORA_DIST_PARAMS_INIT;
        dp.env = env;
        dp.timeout_s = a->timeout;
        s = culora_dist_create(ctx, &dp, &dist);
        if (s != CULORA_OK) {
            rc = cli_fail("train", "joining the distributed job", ctx, s);
            goto done;
        }
    }
    const int rank = dist ? culora_dist_rank(dist) : 0, world = dist ? culora_dist_world_size(dist) : 1;
    s = culora_model_config_load(ctx, a->model, &cfg);
    if (s != CULORA_OK) {
        rc = cli_fail("train", a->model, ctx, s);
        goto done;
    }
    tok = cli_tokenizer(ctx, a->tokenizer, a->model, cfg.vocab_size);
    if (tok == NULL) {
        rc = 1;
        goto done;
    }
    culora_dataset_params dsp = CULORA_DATASET_PARAMS_INIT;
    dsp.seq_len = (int32_t)a->seq_len;
    s = culora_dataset_create(ctx, tok, &a->data, 1, &dsp, &ds);
    if (s == CULORA_OK && a->eval_data != NULL)
        s = culora_dataset_create(ctx, tok, &a->eval_data, 1, &dsp, &eds);
    if (s != CULORA_OK) {
        rc = cli_fail("train", "data", ctx, s);
        goto done;
    }
    culora_loader_params lp = CULORA_LOADER_PARAMS_INIT;
    lp.batch_size = (int32_t)a->batch;
    lp.rank = rank;
    lp.world_size = world;
    lp.seed = (uint64_t)a->seed;
    s = culora_loader_create(ctx, ds, &lp, &ld);
    if (s == CULORA_OK && eds != NULL) {
        lp.shuffle = 0;
        s = culora_loader_create(ctx, eds, &lp, &eld);
    }
    if (s != CULORA_OK) {
        rc = cli_fail("train", "data loader", ctx, s);
        goto done;
    }

    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;
    lc.r = (int32_t)a->rank;
    lc.lora_alpha = a->alpha;
    lc.lora_dropout = a->dropout;
    lc.use_rslora = a->rslora;
    lc.fan_in_fan_out = cfg.arch == CULORA_ARCH_GPT2;
    lc.base_model_name_or_path = a->model;
    size_t nt = 0;
    const char *regex = NULL;
    /* ReLoRA's default targets are every attention and MLP linear (the reference's "attn", "mlp") */
    const char *def_targets = cfg.arch == CULORA_ARCH_GPT2 ? (relora ? "c_attn,c_proj,c_fc" : "c_attn")
                              : relora ? "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
                                       : "q_proj,v_proj";
    if (split_targets(a->targets ? a->targets : def_targets, &tbuf,
                      &tlist, &nt, &regex) != 0) {
        fprintf(stderr, "culora train: out of memory\n");
        rc = 1;
        goto done;
    }
    lc.target_modules = tlist;
    lc.n_target_modules = nt;
    lc.target_modules_regex = regex;
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.mode = mode;
    mp.lora = mode == CULORA_MODE_FULL ? NULL : &lc;
    mp.adapter_dir = a->adapter;
    mp.seed = (uint64_t)a->seed + 0x9e3779b97f4a7c15ull * (uint64_t)rank; /* per-rank dropout streams */
    mp.max_batch = a->batch;
    mp.max_seq = a->seq_len;
    mp.quant_format = qformat;
    mp.quant_flags = qflags;
    s = culora_model_load(ctx, a->model, &mp, &model);
    if (s != CULORA_OK) {
        rc = cli_fail("train", "loading the model", ctx, s);
        goto done;
    }
    snprintf(metrics_default, sizeof metrics_default, "%s/metrics.jsonl", a->out);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints", a->out);
    if (rank == 0 && mkdir_p(a->out) != 0) {
        fprintf(stderr, "culora train: cannot create %s\n", a->out);
        rc = 1;
        goto done;
    }
    culora_train_params tp = CULORA_TRAIN_PARAMS_INIT;
    tp.total_steps = a->steps;
    tp.grad_accum = (int32_t)a->grad_accum;
    tp.lr = a->lr;
    tp.weight_decay = a->weight_decay;
    tp.max_grad_norm = a->max_grad_norm;
    tp.schedule = sched;
    tp.warmup_steps = a->warmup;
    tp.min_lr_ratio = a->min_lr_ratio;
    tp.cycle_length = sched == CULORA_LR_COSINE_MIN ? a->steps : 0; /* one cosine to the floor (restarts: relora) */
    tp.eval_every = eld ? (a->eval_every > 0 ? a->eval_every : a->steps) : 0;
    tp.eval_batches = a->eval_batches;
    tp.max_bad_steps = (int32_t)a->max_bad_steps;
    tp.checkpoint_dir = ckpt;
    tp.checkpoint_every = a->checkpoint_every;
    tp.keep_checkpoints = (int32_t)a->keep;
    tp.metrics_path = a->metrics ? a->metrics : metrics_default;
    tp.dist = dist;
    tp.relora_every = a->relora_every;
    tp.relora_reset = reset;
    tp.relora_reset_ratio = a->reset_ratio;
    tp.restart_warmup = a->restart_warmup;
    tp.warm_start_steps = a->warm_start_steps;
    tp.warm_start_lr = a->warm_start_lr;
    tp.train_non_lora = (relora || a->train_non_lora) && !a->freeze_non_lora; /* the reference trains them */
    tp.relora_seed = (uint64_t)a->seed; /* the same on every rank */
    struct progress pg = {isatty(1) != 0, a->quiet, rank,
                          a->log_every > 0 ? a->log_every : (a->steps >= 20 ? a->steps / 20 : 1)};
    tp.callback = on_step;
    tp.user = &pg;
    s = culora_trainer_create(model, ld, eld, &tp, &tr);
    if (s == CULORA_OK && a->resume != NULL)
        s = culora_trainer_resume(tr, a->resume);
    if (s != CULORA_OK) {
        rc = cli_fail("train", a->resume ? "resuming" : "setting up the trainer", ctx, s);
        goto done;
    }
    if (rank == 0 && !a->quiet)
        printf("culora train: %s model (%lld parameters, %lld trained, %d LoRA modules%s%s), %s mode, %s backend (%s), "
               "%d rank%s, %lld steps of %lld × %lld tokens%s\n",
               cfg.arch == CULORA_ARCH_GPT2 ? "GPT-2" : "LLaMA", (long long)culora_model_n_params(model),
               (long long)culora_model_n_trainable(model), (int)culora_model_n_lora_modules(model),
               qformat ? ", base " : "", qformat ? (qflags ? "nf4-dq" : culora_quant_format_name(qformat)) : "", a->mode,
               culora_context_backend_name(ctx), culora_context_device_name(ctx), world, world > 1 ? "s" : "",
               (long long)a->steps, (long long)(a->batch * a->grad_accum * world), (long long)a->seq_len,
               a->resume ? " (resumed)" : "");
    s = culora_trainer_run(tr);
    if (s != CULORA_OK) {
        rc = cli_fail("train", "training", ctx, s);
        goto done;
    }
    if (rank == 0 && culora_model_n_lora_modules(model) > 0) {
        snprintf(adapter_out, sizeof adapter_out, "%s/adapter", a->out);
        s = culora_model_save_adapter(model, adapter_out);
        if (s != CULORA_OK) {
            rc = cli_fail("train", "saving the adapter", ctx, s);
            goto done;
        }
        if (!a->quiet)
            printf("adapter: %s (PEFT format)\n", adapter_out);
    }
    if (rank == 0 && (mode == CULORA_MODE_FULL || relora || a->warm_start_steps > 0 || tp.train_non_lora)) {
        /* the base changed (full training, ReLoRA merges, warm start): the adapter alone is not the model */
        snprintf(adapter_out, sizeof adapter_out, "%s/model", a->out);
        s = culora_model_save(model, adapter_out);
        if (s != CULORA_OK) {
            rc = cli_fail("train", "saving the model", ctx, s);
            goto done;
        }
        if (!a->quiet)
            printf("model: %s (Hugging Face format)\n", adapter_out);
    }
    if (rank == 0 && !a->quiet)
        printf("metrics: %s\ncheckpoints: %s\n", tp.metrics_path, ckpt);
done:
    if (rc != 0 && dist != NULL) /* make every other rank stop too, not wait for this one until the timeout */
        culora_dist_abort(dist, rc);
    culora_trainer_destroy(tr);
    culora_model_destroy(model);
    culora_loader_destroy(eld);
    culora_loader_destroy(ld);
    culora_dataset_destroy(eds);
    culora_dataset_destroy(ds);
    culora_tokenizer_destroy(tok);
    culora_dist_destroy(dist);
    culora_context_destroy(ctx);
    free(tbuf);
    free(tlist);
    return rc;
}

static int cmd_train(int argc, char **argv)
{
    struct train_args a = {0};
    a.mode = "lora";
    a.optimizer_reset = "magnitude";
    a.reset_ratio = 0.999;
    a.restart_warmup = 100;
    a.out = "culora-out";
    a.rank = 8;
    a.alpha = 16;
    a.seq_len = 256;
    a.batch = 8;
    a.grad_accum = 1;
    a.steps = 100;
    a.lr = 2e-4;
    a.max_grad_norm = 1.0;
    a.min_lr_ratio = 0.1;
    a.max_bad_steps = 3;
    a.keep = 3;
    a.timeout = 600;
    const struct cli_opt opts[] = {
        {"model", CLI_STR, &a.model, "DIR", "Hugging Face model directory (config.json + safetensors)", true},
        {"data", CLI_STR, &a.data, "FILE", "training text (.txt) or JSONL ({\"text\"} / {\"prompt\",\"completion\"})", true},
        {"eval-data", CLI_STR, &a.eval_data, "FILE", "held-out data for evaluation", false},
        {"mode", CLI_STR, &a.mode, "MODE",
         "lora (default), lora-fa, qlora (NF4-DQ base), int8 (LLM.int8 base), relora (restarts), full", false},
        {"quant", CLI_STR, &a.quant, "FMT", "base format for LoRA modes: nf4, nf4-dq, fp4, fp4-dq, int8, none", false},
        {"rank", CLI_INT, &a.rank, "R", "LoRA rank (default 8)", false},
        {"alpha", CLI_F64, &a.alpha, "A", "LoRA alpha (default 16)", false},
        {"dropout", CLI_F64, &a.dropout, "P", "lora_dropout (default 0)", false},
        {"rslora", CLI_FLAG, &a.rslora, NULL, "scale by alpha/sqrt(r) (rsLoRA)", false},
        {"targets", CLI_STR, &a.targets, "LIST", "modules: q_proj,v_proj or regex:PATTERN (default: PEFT's for the arch)", false},
        {"adapter", CLI_STR, &a.adapter, "DIR", "start from this PEFT adapter", false},
        {"tokenizer", CLI_STR, &a.tokenizer, "PATH", "tokenizer.json, a GPT-2 encoder.json+vocab.bpe dir, or bytes", false},
        {"seq-len", CLI_INT, &a.seq_len, "N", "tokens per sequence (default 256)", false},
        {"batch", CLI_INT, &a.batch, "B", "sequences per micro-batch per rank (default 8)", false},
        {"grad-accum", CLI_INT, &a.grad_accum, "G", "micro-batches per optimizer step (default 1)", false},
        {"steps", CLI_INT, &a.steps, "S", "optimizer steps (default 100)", false},
        {"lr", CLI_F64, &a.lr, "LR", "peak learning rate (default 2e-4)", false},
        {"schedule", CLI_STR, &a.schedule, "KIND", "cosine (default), linear, constant, cosine-restarts (relora's "
                                                    "default), cosine-min", false},
        {"warmup", CLI_INT, &a.warmup, "N", "linear warmup steps (default 0)", false},
        {"min-lr-ratio", CLI_F64, &a.min_lr_ratio, "X", "(ReLoRA schedules) floor of the learning rate (default 0.1)",
         false},
        {"relora-every", CLI_INT, &a.relora_every, "N", "relora: merge LoRA into the base and restart it every N steps",
         false},
        {"optimizer-reset", CLI_STR, &a.optimizer_reset, "KIND",
         "relora: prune LoRA's AdamW moments at a restart: magnitude (default), random, zero, none", false},
        {"reset-ratio", CLI_F64, &a.reset_ratio, "X", "relora: fraction of the moments pruned (default 0.999)", false},
        {"restart-warmup", CLI_INT, &a.restart_warmup, "N", "relora: re-warmup steps after a restart (default 100)",
         false},
        {"warm-start-steps", CLI_INT, &a.warm_start_steps, "K", "train the full model for K steps first (lora, relora)",
         false},
        {"warm-start-lr", CLI_F64, &a.warm_start_lr, "LR", "peak learning rate of the warm start (default: --lr)", false},
        {"train-non-lora", CLI_FLAG, &a.train_non_lora, NULL,
         "lora: also train embeddings, norms, lm_head and unadapted linears (relora does by default)", false},
        {"freeze-non-lora", CLI_FLAG, &a.freeze_non_lora, NULL, "relora: train only the LoRA pairs", false},
        {"weight-decay", CLI_F64, &a.weight_decay, "WD", "AdamW weight decay (default 0)", false},
        {"max-grad-norm", CLI_F64, &a.max_grad_norm, "N", "clip the gradient norm (default 1; 0 = off)", false},
        {"max-bad-steps", CLI_INT, &a.max_bad_steps, "N", "non-finite steps to skip before stopping (default 3)", false},
        {"seed", CLI_INT, &a.seed, "N", "data order, LoRA init and dropout (default 0)", false},
        {"eval-every", CLI_INT, &a.eval_every, "N", "evaluate every N steps (default: at the end)", false},
        {"eval-batches", CLI_INT, &a.eval_batches, "N", "batches per evaluation (default: all)", false},
        {"out", CLI_STR, &a.out, "DIR", "output directory (default culora-out)", false},
        {"metrics", CLI_STR, &a.metrics, "FILE", "metrics JSONL (default OUT/metrics.jsonl)", false},
        {"checkpoint-every", CLI_INT, &a.checkpoint_every, "N", "checkpoint every N steps (default: at the end)", false},
        {"keep", CLI_INT, &a.keep, "N", "checkpoints to keep (default 3)", false},
        {"resume", CLI_STR, &a.resume, "DIR", "continue from a checkpoint (or OUT/checkpoints)", false},
        {"device", CLI_STR, &a.device, "DEV", "cpu, cuda or auto (default: cuda when present)", false},
        {"comm-timeout", CLI_F64, &a.timeout, "S", "distributed: seconds a collective waits for a silent rank before the job ends with an error (default 600)", false},
        {"timeout", CLI_F64, &a.timeout, "S", "the same as --comm-timeout", false},
        {"log-every", CLI_INT, &a.log_every, "N", "without a terminal: a progress line every N steps (default steps/20)", false},
        {"quiet", CLI_FLAG, &a.quiet, NULL, "no progress output", false},
    };
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0],
                       "culora train --model DIR --data FILE [options]",
                       "Fine-tunes a GPT-2 or LLaMA-family model. Writes OUT/adapter (PEFT), OUT/metrics.jsonl and\n"
                       "OUT/checkpoints/checkpoint-<step>. Data parallel when started by mpirun, srun or torchrun-style\n"
                       "variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).");
    if (rc != -2)
        return rc;
    return run(&a);
}

const struct culora_cli_command culora_cli_train = {"train", "fine-tune a model (LoRA, LoRA-FA, QLoRA, ReLoRA, full)",
                                                    cmd_train};
