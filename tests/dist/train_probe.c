/*
 * train_probe.c — trains a tiny LLaMA with LoRA for the data-parallel tests (test_dist_train),
 * as one process, under mpirun (MPI communicator) or with torchrun-style variables (TCP).
 *
 *   train_probe OUT [options]
 *     --batch B          rows per rank per step (default 2)
 *     --steps S          optimizer steps (default 20)
 *     --dropout P        lora_dropout (default 0: ranks × B then match 1 rank × N·B)
 *     --seed-per-rank    LoRA init / dropout seed differs per rank (as `culora train` does); the
 *                        trainer must still start every rank from rank 0's weights
 *     --full             full fine-tuning (every weight trained) instead of LoRA
 *     --relora-every N   ReLoRA: merge and restart the LoRA pairs every N steps
 *     --relora-seed-per-rank  ReLoRA's re-initialisation seed differs per rank (a bug the
 *                        replica check after each restart must catch)
 *     --ckpt DIR         write checkpoints to DIR every --ckpt-every steps (default 10) and at the end
 *     --resume DIR       continue from the newest checkpoint in DIR
 *     --die-at S         rank --fault-rank (default 1) kills itself (SIGKILL) after step S
 *     --hang-at S        rank --fault-rank stops answering after step S (sleeps 60 s, then exits 0)
 *     --corrupt-at S     rank --fault-rank changes one of its weights after step S
 *     --timeout T        communicator timeout in seconds (default 30)
 *
 * Every rank writes OUT.r<rank>: "world W steps S n N", one line "loss <step> <loss> <gradient
 * norm>" per step (hex floats), then "w <hex float>" for each of the N trainable values (fp32 master weights) at the end.
 * Hex floats (%a) carry every bit. On an error every rank prints "rank R: <what> failed: STATUS:
 * message", aborts the job (culora_dist_abort) and exits 3.
 */
#define _POSIX_C_SOURCE 200809L
#include "culora/culora.h"
#include "culora/culora_data.h"
#include "culora/culora_dist.h"
#include "culora/culora_model.h"
#include "culora/culora_train.h"

#include "model/model.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

struct probe {
    const char *out, *ckpt, *resume;
    int32_t batch, steps, ckpt_every, fault_rank, rank;
    int64_t die_at, hang_at, corrupt_at;
    double dropout, timeout;
    int seed_per_rank, full, relora_seed_per_rank;
    int64_t relora_every, relora_restarts;
    culora_model *model;
    float *losses, *norms;
    int64_t n_losses;
};

/* A deterministic text of ~6 KB: 400 rows of 16 byte tokens, more than 20 steps × 4 rows need. */
static char *make_text(size_t *len)
{
    static const char *const words[] = {"the",   "quick", "brown", "fox",  "jumps", "over",  "lazy",
                                        "dog",   "a",     "stitch", "in",  "time",  "saves", "nine",
                                        "early", "bird",  "gets",  "worm", "still", "water"};
    const size_t n_words = sizeof words / sizeof words[0];
    size_t cap = 8192, n = 0;
    char *t = malloc(cap);
    if (t == NULL)
        return NULL;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    while (n + 16 < cap - 1024) {
        x ^= x << 13; /* xorshift64: fixed sequence, no libc rand */
        x ^= x >> 7;
        x ^= x << 17;
        const char *w = words[x % n_words];
        n += (size_t)snprintf(t + n, cap - n, "%s%s", w, (x >> 32) % 7 == 0 ? ". " : " ");
    }
    *len = n;
    return t;
}

static int on_step(const culora_step_info *in, void *user)
{
    struct probe *p = user;
    if (in->is_eval)
        return 0;
    p->relora_restarts = in->relora_restarts;
    if (p->n_losses < p->steps) {
        p->norms[p->n_losses] = in->grad_norm;
        p->losses[p->n_losses++] = in->loss;
    }
    if (p->rank != p->fault_rank)
        return 0;
    if (in->step == p->die_at) {
        printf("rank %d: killing myself (SIGKILL) after step %lld\n", (int)p->rank, (long long)in->step);
        fflush(stdout);
        raise(SIGKILL);
    }
    if (in->step == p->hang_at) {
        printf("rank %d: hanging after step %lld\n", (int)p->rank, (long long)in->step);
        fflush(stdout);
        struct timespec ts = {60, 0};
        nanosleep(&ts, NULL);
        exit(0);
    }
    if (in->step == p->corrupt_at) /* CPU backend: the master weights are host memory */
        p->model->master[0] += 1e-3f;
    return 0;
}

static int fail(culora_context *ctx, culora_dist *d, int rank, const char *what, culora_status s)
{
    printf("rank %d: %s failed: %s: %s\n", rank, what, culora_status_name(s), culora_context_last_error(ctx));
    fflush(stdout);
    if (d != NULL)
        culora_dist_abort(d, 3); /* the other ranks must not wait for this one */
    return 3;
}

static int write_out(struct probe *p, int world)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.r%d", p->out, (int)p->rank);
    const int64_t n = culora_model_n_trainable(p->model) > 0 ? p->model->n_train : 0;
    float *w = malloc((size_t)(n > 0 ? n : 1) * sizeof *w);
    if (w == NULL || model_state_download(p->model, w, NULL, NULL) != CULORA_OK) {
        free(w);
        return 1;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        free(w);
        return 1;
    }
    fprintf(f, "world %d steps %lld n %lld\n", world, (long long)p->n_losses, (long long)n);
    const int64_t first = p->steps - p->n_losses + 1; /* a resumed run records the steps after the checkpoint */
    for (int64_t i = 0; i < p->n_losses; i++)
        fprintf(f, "loss %lld %a %a\n", (long long)(first + i), (double)p->losses[i], (double)p->norms[i]);
    for (int64_t i = 0; i < n; i++)
        fprintf(f, "w %a\n", (double)w[i]);
    free(w);
    return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct probe p = {0};
    p.batch = 2;
    p.steps = 20;
    p.ckpt_every = 10;
    p.fault_rank = 1;
    p.die_at = p.hang_at = p.corrupt_at = -1;
    p.timeout = 30.0;
    if (argc < 2) {
        fprintf(stderr, "usage: train_probe OUT [options] (see the file's header)\n");
        return 2;
    }
    p.out = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--seed-per-rank") == 0 || strcmp(a, "--full") == 0 ||
            strcmp(a, "--relora-seed-per-rank") == 0) {
            *(strcmp(a, "--full") == 0            ? &p.full
              : strcmp(a, "--seed-per-rank") == 0 ? &p.seed_per_rank
                                                  : &p.relora_seed_per_rank) = 1;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "train_probe: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--batch") == 0) p.batch = atoi(v);
        else if (strcmp(a, "--steps") == 0) p.steps = atoi(v);
        else if (strcmp(a, "--dropout") == 0) p.dropout = atof(v);
        else if (strcmp(a, "--ckpt") == 0) p.ckpt = v;
        else if (strcmp(a, "--ckpt-every") == 0) p.ckpt_every = atoi(v);
        else if (strcmp(a, "--resume") == 0) p.resume = v;
        else if (strcmp(a, "--die-at") == 0) p.die_at = atoll(v);
        else if (strcmp(a, "--hang-at") == 0) p.hang_at = atoll(v);
        else if (strcmp(a, "--corrupt-at") == 0) p.corrupt_at = atoll(v);
        else if (strcmp(a, "--fault-rank") == 0) p.fault_rank = atoi(v);
        else if (strcmp(a, "--timeout") == 0) p.timeout = atof(v);
        else if (strcmp(a, "--relora-every") == 0) p.relora_every = atoll(v);
        else {
            fprintf(stderr, "train_probe: unknown option %s\n", a);
            return 2;
        }
    }
    if (p.batch < 1 || p.steps < 1) {
        fprintf(stderr, "train_probe: --batch and --steps must be >= 1\n");
        return 2;
    }

    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = CULORA_BACKEND_CPU;
    cp.n_threads = 1; /* several ranks share this machine's cores */
    culora_context *ctx = NULL;
    if (culora_context_create(&cp, &ctx) != CULORA_OK)
        return 4;
    culora_dist_params dp = CULORA_DIST_PARAMS_INIT;
    culora_status s = culora_dist_env_parse(ctx, environ, &dp.env);
    if (s != CULORA_OK)
        return fail(ctx, NULL, -1, "env", s);
    dp.timeout_s = p.timeout;
    culora_dist *d = NULL;
    if (dp.env.world_size > 1) {
        s = culora_dist_create(ctx, &dp, &d);
        if (s != CULORA_OK)
            return fail(ctx, NULL, dp.env.rank, "joining", s);
    }
    const int rank = d ? culora_dist_rank(d) : 0, world = d ? culora_dist_world_size(d) : 1;
    p.rank = rank;
    p.losses = calloc((size_t)p.steps, sizeof *p.losses);
    p.norms = calloc((size_t)p.steps, sizeof *p.norms);

    culora_tokenizer *tok = NULL;
    culora_dataset *ds = NULL;
    culora_loader *ld = NULL;
    culora_trainer *tr = NULL;
    size_t text_len = 0;
    char *text = make_text(&text_len);
    int rc = 0;
    if (text == NULL || p.losses == NULL || p.norms == NULL) {
        rc = fail(ctx, d, rank, "allocating", CULORA_ERR_OUT_OF_MEMORY);
        goto done;
    }
    s = culora_tokenizer_create_bytes(ctx, &tok);
    culora_dataset_params dsp = CULORA_DATASET_PARAMS_INIT;
    dsp.format = CULORA_DATA_FORMAT_TEXT;
    dsp.seq_len = 16;
    if (s == CULORA_OK)
        s = culora_dataset_create_from_memory(ctx, tok, "probe.txt", text, text_len, &dsp, &ds);
    culora_loader_params lp = CULORA_LOADER_PARAMS_INIT;
    lp.batch_size = p.batch;
    lp.rank = rank;
    lp.world_size = world;
    lp.seed = 5;
    if (s == CULORA_OK)
        s = culora_loader_create(ctx, ds, &lp, &ld);
    if (s != CULORA_OK) {
        rc = fail(ctx, d, rank, "data", s);
        goto done;
    }

    culora_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.arch = CULORA_ARCH_LLAMA;
    snprintf(cfg.architecture, sizeof cfg.architecture, "LlamaForCausalLM");
    cfg.vocab_size = 256;
    cfg.hidden_size = 32;
    cfg.n_layers = 2;
    cfg.n_heads = 4;
    cfg.n_kv_heads = 2;
    cfg.head_dim = 8;
    cfg.intermediate_size = 64;
    cfg.max_position_embeddings = 64;
    cfg.norm_eps = 1e-5;
    cfg.activation = CULORA_ACT_SILU;
    cfg.rope_type = CULORA_ROPE_DEFAULT;
    cfg.rope_theta = 10000.0;
    cfg.bos_token_id = -1;
    cfg.eos_token_id = -1;
    const char *targets[] = {"q_proj", "v_proj", "up_proj", "down_proj"};
    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;
    lc.r = 4;
    lc.lora_alpha = 8;
    lc.lora_dropout = p.dropout;
    lc.target_modules = targets;
    lc.n_target_modules = 4;
    /* A and B both random: every value has a gradient from step 1 (ReLoRA needs PEFT's B = 0) */
    lc.init_lora_weights = p.relora_every > 0 ? "true" : "false";
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.mode = p.full ? CULORA_MODE_FULL : CULORA_MODE_LORA;
    mp.lora = p.full ? NULL : &lc;
    mp.seed = 11 + (p.seed_per_rank ? 1000003ull * (uint64_t)rank : 0);
    mp.max_batch = p.batch;
    mp.max_seq = 16;
    s = culora_model_create(ctx, &cfg, 3, &mp, &p.model);
    if (s != CULORA_OK) {
        rc = fail(ctx, d, rank, "model", s);
        goto done;
    }
    culora_train_params tp = CULORA_TRAIN_PARAMS_INIT;
    tp.total_steps = p.steps;
    tp.lr = 5e-3;
    tp.weight_decay = 0.01;
    tp.warmup_steps = 2;
    tp.schedule = CULORA_LR_COSINE;
    tp.checkpoint_dir = p.ckpt;
    tp.checkpoint_every = p.ckpt_every;
    tp.dist = d;
    tp.relora_every = p.relora_every;
    tp.relora_seed = 17 + (p.relora_seed_per_rank ? (uint64_t)rank : 0);
    tp.callback = on_step;
    tp.user = &p;
    s = culora_trainer_create(p.model, ld, NULL, &tp, &tr);
    if (s != CULORA_OK) {
        rc = fail(ctx, d, rank, "trainer", s);
        goto done;
    }
    if (p.resume != NULL) {
        s = culora_trainer_resume(tr, p.resume);
        if (s != CULORA_OK) {
            rc = fail(ctx, d, rank, "resume", s);
            goto done;
        }
        printf("rank %d: resumed at step %lld\n", rank, (long long)culora_trainer_step_count(tr));
    }
    s = culora_trainer_run(tr);
    if (s != CULORA_OK) {
        rc = fail(ctx, d, rank, "training", s);
        goto done;
    }
    if (write_out(&p, world) != 0) {
        rc = fail(ctx, d, rank, "writing the output", CULORA_ERR_IO);
        goto done;
    }
    printf("rank %d: ok (%s communicator, world %d, %lld steps, %lld ReLoRA restarts)\n", rank,
           d ? culora_dist_kind_name(d) : "no", world, (long long)p.n_losses, (long long)p.relora_restarts);
    fflush(stdout);
done:
    culora_trainer_destroy(tr);
    culora_model_destroy(p.model);
    culora_loader_destroy(ld);
    culora_dataset_destroy(ds);
    culora_tokenizer_destroy(tok);
    culora_dist_destroy(d);
    culora_context_destroy(ctx);
    free(text);
    free(p.losses);
    free(p.norms);
    return rc;
}
