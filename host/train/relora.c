/*
 * relora.c — ReLoRA in the trainer (relora.h; the algorithm and its sources: docs/relora.md).
 *
 * Phases of a run of T steps with a warm start of K steps (K = 0: none):
 *   steps 1..K    every parameter is trained full-rank: the adapted linears' W0 (and biases) are
 *                 appended to the flat buffers and their LoRA is detached (the layers run as plain linears); the
 *                 learning rate (peak warm_start_lr, default lr) follows the first K steps of a
 *                 cosine-with-floor run of T steps (COSINE_MIN over T), as the reference's warm
 *                 start is a cut full-rank run;
 *   after step K  W0 and biases go back to frozen storage (W0 also to their fp32 masters), LoRA is
 *                 re-attached and re-initialised, and the optimizer starts afresh (moments 0, bias correction from
 *                 step 1) with the configured schedule over the T − K remaining steps — the
 *                 reference's ReLoRA run loads only the warm-started weights.
 * Restarts happen after the steps u with v = u − K, v > N and v % N == 1 (N = relora_every), as the
 * reference's `(update_step - scheduler_start_step) % relora == 1` without its resume exception (so
 * a resumed run restarts exactly where a straight one does). With the jagged cosine the update of
 * step u used the learning rate 0 (the schedule restarts at v − 1 ≡ 0 mod N), so a restart follows
 * an update that moved nothing but the moments, as in the reference.
 *
 * Precision of the merged base: on the CPU backend W0 is fp32 storage and is its own master. On a
 * bf16 backend this file keeps an fp32 master of every adapted W0 (4 bytes per adapted weight);
 * merges accumulate there and the bf16 copy the forward reads is its rounding — the same scheme as
 * the fp32 masters of full training. A quantized W0 is dequantized, merged and requantized (the
 * error per layer goes to the metrics), as the reference's 4-bit merge_and_reinit.
 */
#define _POSIX_C_SOURCE 200809L
#include "relora.h"

#include "../model/model_relora.h"
#include "../relora_ops.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct trainer_relora {
    int64_t every, warm;          /* N, K */
    int32_t prune;                /* enum culora_relora_prune */
    double ratio;
    uint64_t seed;
    int64_t restarts;             /* merges done */
    uint64_t round;               /* re-initialisations done (restarts and the end of the warm start) */
    bool warm_phase;              /* steps 1..K: full-rank */
    int32_t n;                    /* LoRA slots */
    struct mlinear **lins;        /* [n] the linear each slot adapts */
    int64_t n_keep;               /* flat elements before the warm start's tail (the adapted W0) */
    float *base;                  /* bf16 backends: fp32 masters of the adapted W0 (backend), else NULL */
    int64_t *base_off;            /* [n] element offsets in base (-1: quantized or no master) */
    struct culora_schedule warm_sched;
    void *ws;                     /* restart workspace (backend) */
    size_t ws_bytes;
    void *save_buf;               /* host copy of the base for the last checkpoint written */
    size_t save_bytes;
    double *requant_rel, *requant_max; /* [n] of the last restart (quantized base) */
};

static culora_status fail(culora_trainer *tr, culora_status s, const char *msg)
{
    return culora_fail(tr->ctx, s, "ReLoRA: %s", msg);
}

static int32_t prune_kind(int32_t reset)
{
    switch (reset) {
    case CULORA_RELORA_RESET_MAGNITUDE: return CULORA_RELORA_PRUNE_MAGNITUDE;
    case CULORA_RELORA_RESET_RANDOM: return CULORA_RELORA_PRUNE_RANDOM;
    case CULORA_RELORA_RESET_ZERO: return CULORA_RELORA_PRUNE_ZERO;
    default: return CULORA_RELORA_PRUNE_NONE;
    }
}

static const char *reset_name(int32_t reset)
{
    switch (reset) {
    case CULORA_RELORA_RESET_MAGNITUDE: return "magnitude";
    case CULORA_RELORA_RESET_RANDOM: return "random";
    case CULORA_RELORA_RESET_ZERO: return "zero";
    default: return "none";
    }
}

void trainer_relora_destroy(culora_trainer *tr)
{
    struct trainer_relora *r = tr ? tr->relora : NULL;
    if (r == NULL)
        return;
    culora_free(tr->ctx, r->base);
    culora_free(tr->ctx, r->ws);
    free(r->lins);
    free(r->base_off);
    free(r->save_buf);
    free(r->requant_rel);
    free(r->requant_max);
    free(r);
    tr->relora = NULL;
}

/* ---- setup ------------------------------------------------------------------------------------ */

/* The weight or bias of an adapted linear. Their biases stay frozen in the LoRA phase: the LoRA
 * linear's backward computes no bias gradient (PEFT's bias="none"), and a trainable tensor without
 * one would only decay. */
static bool is_adapted_part(const struct trainer_relora *r, const struct mtensor *t)
{
    for (int32_t i = 0; i < r->n; i++)
        if (&r->lins[i]->W == t || &r->lins[i]->bias == t)
            return true;
    return false;
}

struct collect {
    const struct trainer_relora *r;
    struct mtensor **ts;
    int32_t n, cap;
};

static culora_status collect_rest_cb(struct culora_model *m, struct mtensor *t, const char *hf, bool tr, void *user)
{
    (void)hf;
    (void)tr;
    struct collect *c = user;
    if (!t->present || t->trainable || t->q != NULL || is_adapted_part(c->r, t))
        return CULORA_OK; /* quantized weights stay frozen: they cannot be trained */
    if (c->n == c->cap) {
        const int32_t cap = c->cap ? 2 * c->cap : 64;
        struct mtensor **ts = realloc(c->ts, (size_t)cap * sizeof *ts);
        if (ts == NULL)
            return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "trainer: out of host memory");
        c->ts = ts;
        c->cap = cap;
    }
    c->ts[c->n++] = t;
    return CULORA_OK;
}

static culora_status check_setup(culora_trainer *tr)
{
    const culora_train_params *p = &tr->p;
    struct culora_model *m = tr->model;
    if (m->mode != CULORA_MODE_LORA || m->n_loras == 0)
        return fail(tr, CULORA_ERR_INVALID_ARG, "relora_every, warm_start_steps and train_non_lora need a model in LoRA "
                                                "mode with LoRA on linear layers (LoRA-FA freezes A, which a restart "
                                                "re-initialises)");
    if (p->relora_every < 0 || p->relora_every == 1)
        return culora_fail(tr->ctx, CULORA_ERR_INVALID_ARG,
                           "ReLoRA: relora_every %lld must be 0 (off) or >= 2 (the reference restarts after steps "
                           "v %% N == 1, which never holds for N = 1)",
                           (long long)p->relora_every);
    if (p->warm_start_steps < 0 || p->warm_start_steps >= p->total_steps)
        return culora_fail(tr->ctx, CULORA_ERR_INVALID_ARG, "ReLoRA: warm_start_steps %lld must be in [0, total steps %lld)",
                           (long long)p->warm_start_steps, (long long)p->total_steps);
    if (p->relora_reset < CULORA_RELORA_RESET_MAGNITUDE || p->relora_reset > CULORA_RELORA_RESET_NONE)
        return culora_fail(tr->ctx, CULORA_ERR_INVALID_ARG, "ReLoRA: relora_reset %d is not a culora_relora_reset",
                           (int)p->relora_reset);
    if (!(p->warm_start_lr >= 0.0) || !isfinite(p->warm_start_lr))
        return culora_fail(tr->ctx, CULORA_ERR_INVALID_ARG, "ReLoRA: warm_start_lr %g must be finite and >= 0",
                           p->warm_start_lr);
    if (!(p->relora_reset_ratio >= 0.0 && p->relora_reset_ratio <= 1.0))
        return culora_fail(tr->ctx, CULORA_ERR_INVALID_ARG, "ReLoRA: relora_reset_ratio %g must be in [0, 1]",
                           p->relora_reset_ratio);
    if ((p->relora_every > 0 || p->warm_start_steps > 0) && m->emb_lora != NULL)
        return fail(tr, CULORA_ERR_UNSUPPORTED, "restarts and warm starts handle LoRA on linear layers only; remove the "
                                                "embedding from the targets");
    const char *init = m->lora_cfg.init_lora_weights;
    if (p->relora_every > 0 && init != NULL && strcmp(init, "false") == 0)
        return fail(tr, CULORA_ERR_INVALID_ARG, "init_lora_weights \"false\" starts B non-zero, so a restart would "
                                                "change the model's function; use \"true\" or \"gaussian\"");
    if (p->warm_start_steps > 0 && m->quant.format != 0)
        return fail(tr, CULORA_ERR_UNSUPPORTED, "a warm start trains the base linears full-rank, which a quantized base "
                                                "cannot do; warm-start an unquantized model and quantize it after");
    if (p->relora_every > 0 && p->schedule == CULORA_LR_COSINE_RESTARTS && p->cycle_length != 0 &&
        p->cycle_length != p->relora_every)
        return culora_fail(tr->ctx, CULORA_ERR_INVALID_ARG,
                           "ReLoRA: the jagged cosine restarts every cycle_length = %lld steps but LoRA restarts every "
                           "%lld: they must agree (cycle_length 0 means relora_every)",
                           (long long)p->cycle_length, (long long)p->relora_every);
    if (p->relora_every > 0 && p->schedule == CULORA_LR_COSINE_RESTARTS && p->restart_warmup >= p->relora_every)
        return culora_fail(tr->ctx, CULORA_ERR_INVALID_ARG,
                           "ReLoRA: the re-warmup of %lld steps must be shorter than the restart interval %lld",
                           (long long)p->restart_warmup, (long long)p->relora_every);
    return CULORA_OK;
}

/* fp32 masters of the adapted W0 on a bf16 backend, from their current (bf16) values. */
static culora_status alloc_base(culora_trainer *tr, bool fill)
{
    struct trainer_relora *r = tr->relora;
    struct culora_model *m = tr->model;
    if (m->S == CULORA_DTYPE_F32)
        return CULORA_OK;
    int64_t total = 0;
    for (int32_t i = 0; i < r->n; i++) {
        const struct mtensor *w = &r->lins[i]->W;
        r->base_off[i] = w->q != NULL ? -1 : total;
        if (w->q == NULL)
            total += (w->rows * w->ld + 63) / 64 * 64;
    }
    if (total == 0)
        return CULORA_OK;
    void *p = NULL;
    CULORA_TRY(culora_malloc(tr->ctx, (size_t)total * sizeof(float), &p));
    r->base = p;
    CULORA_TRY(culora_memset(tr->ctx, r->base, 0, (size_t)total * sizeof(float), NULL));
    if (!fill)
        return CULORA_OK;
    float *h = NULL;
    culora_status s = CULORA_OK;
    for (int32_t i = 0; i < r->n && s == CULORA_OK; i++) {
        const struct mtensor *w = &r->lins[i]->W;
        if (r->base_off[i] < 0)
            continue;
        float *nh = realloc(h, (size_t)(w->rows * w->ld) * sizeof *h);
        if (nh == NULL) {
            s = fail(tr, CULORA_ERR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
        h = nh;
        s = model_tensor_download(m, w, h); /* dense [rows, cols]: spread to [rows, ld] */
        for (int64_t row = w->rows - 1; s == CULORA_OK && row >= 0; row--) {
            memmove(h + row * w->ld, h + row * w->cols, (size_t)w->cols * sizeof *h);
            memset(h + row * w->ld + w->cols, 0, (size_t)(w->ld - w->cols) * sizeof *h);
        }
        if (s == CULORA_OK)
            s = culora_memcpy(tr->ctx, r->base + r->base_off[i], h, (size_t)(w->rows * w->ld) * sizeof *h,
                              CULORA_COPY_HOST_TO_DEVICE, NULL);
        if (s == CULORA_OK)
            s = culora_synchronize(tr->ctx, NULL);
    }
    free(h);
    return s;
}

static culora_status enter_warm_start(culora_trainer *tr)
{
    struct trainer_relora *r = tr->relora;
    struct culora_model *m = tr->model;
    struct mtensor **ws = malloc(2 * (size_t)r->n * sizeof *ws);
    if (ws == NULL)
        return fail(tr, CULORA_ERR_OUT_OF_MEMORY, "out of host memory");
    int32_t n = 0;
    for (int32_t i = 0; i < r->n; i++) { /* W0, and its bias: the plain linear's backward trains both */
        ws[n++] = &r->lins[i]->W;
        if (r->lins[i]->bias.present && !r->lins[i]->bias.trainable)
            ws[n++] = &r->lins[i]->bias;
    }
    culora_status s = model_relora_unfreeze(m, ws, n);
    free(ws);
    CULORA_TRY(s);
    for (int32_t i = 0; i < r->n; i++)
        r->lins[i]->lora = NULL; /* plain linears: the forward uses W, the backward computes dW */
    r->warm_phase = true;
    return CULORA_OK;
}

culora_status trainer_relora_create(culora_trainer *tr)
{
    const culora_train_params *p = &tr->p;
    if (p->relora_every == 0 && p->warm_start_steps == 0 && p->train_non_lora == 0)
        return CULORA_OK;
    CULORA_TRY(check_setup(tr));
    struct culora_model *m = tr->model;
    struct trainer_relora *r = calloc(1, sizeof *r);
    if (r == NULL)
        return fail(tr, CULORA_ERR_OUT_OF_MEMORY, "out of host memory");
    tr->relora = r;
    r->every = p->relora_every;
    r->warm = p->warm_start_steps;
    r->prune = prune_kind(p->relora_reset);
    r->ratio = p->relora_reset_ratio;
    r->seed = p->relora_seed;
    r->n = m->n_loras;
    r->lins = calloc((size_t)r->n, sizeof *r->lins);
    r->base_off = calloc((size_t)r->n, sizeof *r->base_off);
    r->requant_rel = calloc((size_t)r->n, sizeof *r->requant_rel);
    r->requant_max = calloc((size_t)r->n, sizeof *r->requant_max);
    if (!r->lins || !r->base_off || !r->requant_rel || !r->requant_max)
        return fail(tr, CULORA_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int32_t i = 0; i < r->n; i++) {
        r->lins[i] = model_relora_linear(m, i);
        if (r->lins[i] == NULL)
            return fail(tr, CULORA_ERR_UNSUPPORTED, "a LoRA slot is not on a linear layer (or the model was already "
                                                    "set up by another ReLoRA trainer)");
    }
    if (p->train_non_lora) {
        struct collect c = {r, NULL, 0, 0};
        culora_status s = model_for_each_tensor(m, collect_rest_cb, &c);
        if (s == CULORA_OK)
            s = model_relora_unfreeze(m, c.ts, c.n);
        free(c.ts);
        CULORA_TRY(s);
    }
    r->n_keep = m->n_train;
    if (r->every > 0 || r->warm > 0) { /* (before the warm start detaches the LoRA pairs) */
        CULORA_TRY(model_relora_workspace(m, r->prune, &r->ws_bytes));
        if (r->ws_bytes > 0)
            CULORA_TRY(culora_malloc(tr->ctx, r->ws_bytes, &r->ws));
        CULORA_TRY(alloc_base(tr, r->warm == 0));
    }
    if (r->warm > 0) {
        CULORA_TRY(enter_warm_start(tr));
        r->warm_sched = (struct culora_schedule){CULORA_SCHEDULE_COSINE_MIN, p->total_steps, p->warmup_steps,
                                                 p->min_lr_ratio, p->total_steps, 0, 0};
        culora_status s = culora_schedule_check(tr->ctx, &r->warm_sched);
        if (s != CULORA_OK) {
            culora_msg_prefix(tr->ctx, "ReLoRA warm start");
            return s;
        }
        tr->sched.total_steps = p->total_steps - r->warm; /* the LoRA phase's schedule */
    }
    if (r->every > 0 && tr->sched.kind == CULORA_SCHEDULE_COSINE_RESTARTS && tr->sched.cycle_length == 0)
        tr->sched.cycle_length = r->every;
    return CULORA_OK;
}

double trainer_lr_multiplier(const culora_trainer *tr, int64_t step)
{
    const struct trainer_relora *r = tr->relora;
    if (r == NULL || r->warm == 0)
        return culora_schedule_multiplier(&tr->sched, step);
    if (step < r->warm) /* (the warm start's own peak rate, relative to lr) */
        return culora_schedule_multiplier(&r->warm_sched, step) *
               (tr->p.warm_start_lr > 0.0 && tr->p.lr > 0.0 ? tr->p.warm_start_lr / tr->p.lr : 1.0);
    return culora_schedule_multiplier(&tr->sched, step - r->warm);
}

/* ---- restarts ----------------------------------------------------------------------------------- */

static culora_status restart_slot(culora_trainer *tr, int32_t i, bool merge, int32_t prune, int64_t step)
{
    struct trainer_relora *r = tr->relora;
    struct model_relora_restart rs = {.merge = merge,
                                      .w0_master = r->base && r->base_off[i] >= 0 ? r->base + r->base_off[i] : NULL,
                                      .init_seed = r->seed,
                                      .round = r->round,
                                      .prune = prune,
                                      .prune_ratio = r->ratio,
                                      .prune_seed = r->seed,
                                      .step = step};
    CULORA_TRY(model_relora_restart(tr->model, i, &rs, r->ws, r->ws_bytes));
    r->requant_rel[i] = rs.requant_rel;
    r->requant_max[i] = rs.requant_max;
    return CULORA_OK;
}

/* The end of the warm start: W0 back to frozen storage (and fp32 masters), LoRA re-attached and
 * re-initialised, a fresh optimizer. */
static culora_status leave_warm_start(culora_trainer *tr)
{
    struct trainer_relora *r = tr->relora;
    struct culora_model *m = tr->model;
    for (int32_t i = 0; i < r->n && r->base != NULL; i++) {
        const struct mtensor *w = &r->lins[i]->W;
        if (r->base_off[i] >= 0)
            CULORA_TRY(culora_memcpy(tr->ctx, r->base + r->base_off[i], m->master + w->off,
                                     (size_t)(w->rows * w->ld) * sizeof(float), CULORA_COPY_DEVICE_TO_DEVICE, NULL));
    }
    CULORA_TRY(model_relora_freeze_tail(m, r->n_keep));
    for (int32_t i = 0; i < r->n; i++)
        r->lins[i]->lora = &m->loras[i];
    r->warm_phase = false;
    r->round++;
    for (int32_t i = 0; i < r->n; i++)
        CULORA_TRY(restart_slot(tr, i, false, CULORA_RELORA_PRUNE_ZERO, tr->step));
    if (m->n_train > 0) { /* a fresh optimizer for every parameter */
        CULORA_TRY(culora_memset(tr->ctx, m->adam_m, 0, (size_t)m->n_train * sizeof(float), NULL));
        CULORA_TRY(culora_memset(tr->ctx, m->adam_v, 0, (size_t)m->n_train * sizeof(float), NULL));
    }
    tr->adam_step = 0;
    return culora_synchronize(tr->ctx, NULL);
}

static culora_status write_restart_metrics(culora_trainer *tr, double seconds)
{
    const struct trainer_relora *r = tr->relora;
    if (tr->metrics_path == NULL || tr->rank != 0)
        return CULORA_OK;
    FILE *f = fopen(tr->metrics_path, "a");
    if (f == NULL)
        return culora_fail(tr->ctx, CULORA_ERR_IO, "metrics file %s: %s", tr->metrics_path, strerror(errno));
    fprintf(f, "{\"step\":%lld,\"relora_restart\":%lld,\"optimizer_reset\":\"%s\",\"reset_ratio\":%.9g,"
               "\"restart_s\":%.6f",
            (long long)tr->step, (long long)r->restarts, reset_name(tr->p.relora_reset), r->ratio, seconds);
    if (tr->model->quant.format != 0) { /* requantization error per layer */
        fprintf(f, ",\"requant\":{");
        for (int32_t i = 0; i < r->n; i++)
            fprintf(f, "%s\"%s\":{\"rel\":%.9g,\"max\":%.9g}", i ? "," : "", tr->model->loras[i].name,
                    r->requant_rel[i], r->requant_max[i]);
        fprintf(f, "}");
    }
    fprintf(f, "}\n");
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return culora_fail(tr->ctx, CULORA_ERR_IO, "metrics file %s: write failed", tr->metrics_path);
    return CULORA_OK;
}

culora_status trainer_relora_after_step(culora_trainer *tr, culora_step_info *in)
{
    struct trainer_relora *r = tr->relora;
    if (r == NULL)
        return CULORA_OK;
    if (r->warm_phase && tr->step >= r->warm)
        CULORA_TRY(leave_warm_start(tr));
    const int64_t v = tr->step - r->warm;
    if (r->every > 0 && !r->warm_phase && v > r->every && v % r->every == 1) {
        const double t0 = trainer_now();
        r->round++;
        for (int32_t i = 0; i < r->n; i++)
            CULORA_TRY(restart_slot(tr, i, true, r->prune, tr->step));
        CULORA_TRY(culora_synchronize(tr->ctx, NULL));
        r->restarts++;
        CULORA_TRY(write_restart_metrics(tr, trainer_now() - t0));
        CULORA_TRY(trainer_check_replicas(tr, "(after a ReLoRA restart)"));
    }
    if (in != NULL)
        in->relora_restarts = r->restarts;
    return CULORA_OK;
}

/* ---- checkpoints -------------------------------------------------------------------------------- */

/* Bytes one slot's base takes in the checkpoint: dense fp32, or the quantized buffers. */
static size_t base_bytes(const struct mtensor *w)
{
    if (w->q == NULL)
        return (size_t)(w->rows * w->cols) * sizeof(float);
    const culora_quant_layout *l = &w->q->layout;
    return l->data_bytes + l->absmax_bytes + l->absmax_q_bytes + l->nested_absmax_bytes + l->nested_code_bytes +
           l->offset_bytes;
}

/* The quantized buffers of q with their sizes, in a fixed order. */
static int quant_parts(const struct mquant *q, void *ptrs[6], size_t sizes[6])
{
    const culora_quant_layout *l = &q->layout;
    void *p[6] = {q->w.data, q->w.absmax, q->w.absmax_q, q->w.nested_absmax, q->w.nested_code, q->w.offset};
    const size_t b[6] = {l->data_bytes, l->absmax_bytes, l->absmax_q_bytes, l->nested_absmax_bytes,
                         l->nested_code_bytes, l->offset_bytes};
    for (int j = 0; j < 6; j++) {
        ptrs[j] = p[j];
        sizes[j] = b[j];
    }
    return 6;
}

/* Host dense fp32 value of slot i's W0: its master (bf16 backends) or its fp32 storage. */
static culora_status base_download(culora_trainer *tr, int32_t i, float *dst)
{
    struct trainer_relora *r = tr->relora;
    const struct mtensor *w = &r->lins[i]->W;
    if (r->base == NULL || r->base_off[i] < 0)
        return model_tensor_download(tr->model, w, dst);
    float *tmp = malloc((size_t)(w->rows * w->ld) * sizeof *tmp);
    if (tmp == NULL)
        return fail(tr, CULORA_ERR_OUT_OF_MEMORY, "out of host memory");
    culora_status s = culora_memcpy(tr->ctx, tmp, r->base + r->base_off[i], (size_t)(w->rows * w->ld) * sizeof *tmp,
                                    CULORA_COPY_DEVICE_TO_HOST, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(tr->ctx, NULL);
    for (int64_t row = 0; s == CULORA_OK && row < w->rows; row++)
        memcpy(dst + row * w->cols, tmp + row * w->ld, (size_t)w->cols * sizeof *dst);
    free(tmp);
    return s;
}

culora_status trainer_relora_save(culora_trainer *tr, culora_safetensors_writer *w)
{
    struct trainer_relora *r = tr->relora;
    if (r == NULL)
        return CULORA_OK;
    char v[64];
    snprintf(v, sizeof v, "%lld", (long long)r->restarts);
    CULORA_TRY(culora_safetensors_writer_set_metadata(tr->ctx, w, "relora_restarts", v));
    snprintf(v, sizeof v, "%llu", (unsigned long long)r->round);
    CULORA_TRY(culora_safetensors_writer_set_metadata(tr->ctx, w, "relora_round", v));
    CULORA_TRY(culora_safetensors_writer_set_metadata(tr->ctx, w, "relora_phase", r->warm_phase ? "warm" : "lora"));
    if (r->warm_phase || (r->every == 0 && r->warm == 0))
        return CULORA_OK; /* the base is the loaded model's (or lives in the flat buffers) */
    size_t total = 0;
    for (int32_t i = 0; i < r->n; i++) {
        total += base_bytes(&r->lins[i]->W);
        if (r->lins[i]->bias.present)
            total += base_bytes(&r->lins[i]->bias);
    }
    if (total > r->save_bytes) {
        void *b = realloc(r->save_buf, total);
        if (b == NULL)
            return fail(tr, CULORA_ERR_OUT_OF_MEMORY, "out of host memory");
        r->save_buf = b;
        r->save_bytes = total;
    }
    char *at = r->save_buf;
    for (int32_t i = 0; i < r->n; i++) {
        const struct mtensor *wt = &r->lins[i]->W;
        char name[200];
        snprintf(name, sizeof name, "relora_base.%s", r->lins[i]->hf_weight);
        if (wt->q == NULL) {
            CULORA_TRY(base_download(tr, i, (float *)(void *)at));
            const int64_t shape[2] = {wt->rows, wt->cols};
            CULORA_TRY(culora_safetensors_writer_add(tr->ctx, w, name, CULORA_ST_F32, 2, shape, at, base_bytes(wt)));
        } else {
            void *ptrs[6];
            size_t sizes[6], off = 0;
            const int np = quant_parts(wt->q, ptrs, sizes);
            for (int j = 0; j < np; j++) {
                if (sizes[j] > 0)
                    CULORA_TRY(culora_memcpy(tr->ctx, at + off, ptrs[j], sizes[j], CULORA_COPY_DEVICE_TO_HOST, NULL));
                off += sizes[j];
            }
            CULORA_TRY(culora_synchronize(tr->ctx, NULL));
            const int64_t shape[1] = {(int64_t)off};
            CULORA_TRY(culora_safetensors_writer_add(tr->ctx, w, name, CULORA_ST_U8, 1, shape, at, off));
        }
        at += base_bytes(wt);
        const struct mtensor *bias = &r->lins[i]->bias;
        if (bias->present) { /* frozen in the LoRA phase, trained by a warm start */
            snprintf(name, sizeof name, "relora_base.%s", r->lins[i]->hf_bias);
            CULORA_TRY(model_tensor_download(tr->model, bias, (float *)(void *)at));
            const int64_t shape[1] = {bias->cols};
            CULORA_TRY(culora_safetensors_writer_add(tr->ctx, w, name, CULORA_ST_F32, 1, shape, at, base_bytes(bias)));
            at += base_bytes(bias);
        }
    }
    return CULORA_OK;
}

culora_status trainer_relora_prepare_resume(culora_trainer *tr, int64_t step)
{
    struct trainer_relora *r = tr->relora;
    if (r == NULL)
        return CULORA_OK;
    if (!r->warm_phase && r->warm > 0 && step < r->warm)
        return fail(tr, CULORA_ERR_MISUSE, "this trainer has left its warm start; resume a warm-start checkpoint with "
                                           "a new trainer");
    if (r->warm_phase && step >= r->warm)
        return leave_warm_start(tr); /* the layout of the LoRA phase; the values come from the checkpoint */
    return CULORA_OK;
}

static culora_status meta_u64(culora_trainer *tr, const culora_safetensors *st, const char *ck, const char *key,
                              uint64_t *out)
{
    const char *v = culora_safetensors_metadata_get(st, key);
    char *end = NULL;
    if (v != NULL) {
        errno = 0;
        const unsigned long long x = strtoull(v, &end, 10);
        if (errno == 0 && end != v && *end == '\0') {
            *out = (uint64_t)x;
            return CULORA_OK;
        }
    }
    return culora_fail(tr->ctx, CULORA_ERR_FORMAT, "checkpoint %s: trainer state has no valid '%s' (a ReLoRA run "
                                                   "resumes from its own checkpoints)",
                       ck, key);
}

static culora_status restore_base(culora_trainer *tr, int32_t i, const culora_tensor_info *t, const char *ck)
{
    struct trainer_relora *r = tr->relora;
    struct culora_model *m = tr->model;
    struct mtensor *w = &r->lins[i]->W;
    if (t == NULL || (uint64_t)base_bytes(w) != t->n_bytes ||
        (w->q == NULL ? t->dtype != CULORA_ST_F32 : t->dtype != CULORA_ST_U8))
        return culora_fail(tr->ctx, CULORA_ERR_FORMAT, "checkpoint %s: the merged base of %s is missing or has another "
                                                       "size",
                           ck, w->q ? "a quantized layer" : r->lins[i]->hf_weight);
    void *h = malloc(t->n_bytes ? t->n_bytes : 1);
    if (h == NULL)
        return fail(tr, CULORA_ERR_OUT_OF_MEMORY, "out of host memory");
    memcpy(h, t->data, t->n_bytes);
    culora_status s = CULORA_OK;
    if (w->q != NULL) {
        void *ptrs[6];
        size_t sizes[6], off = 0;
        const int np = quant_parts(w->q, ptrs, sizes);
        for (int j = 0; j < np && s == CULORA_OK; j++) {
            if (sizes[j] > 0)
                s = culora_memcpy(tr->ctx, ptrs[j], (char *)h + off, sizes[j], CULORA_COPY_HOST_TO_DEVICE, NULL);
            off += sizes[j];
        }
    } else if (r->base != NULL && r->base_off[i] >= 0) { /* fp32 master, then its bf16 rounding */
        float *pad = calloc((size_t)(w->rows * w->ld), sizeof *pad);
        s = pad ? CULORA_OK : fail(tr, CULORA_ERR_OUT_OF_MEMORY, "out of host memory");
        for (int64_t row = 0; s == CULORA_OK && row < w->rows; row++)
            memcpy(pad + row * w->ld, (float *)h + row * w->cols, (size_t)w->cols * sizeof *pad);
        if (s == CULORA_OK)
            s = culora_memcpy(tr->ctx, r->base + r->base_off[i], pad, (size_t)(w->rows * w->ld) * sizeof *pad,
                              CULORA_COPY_HOST_TO_DEVICE, NULL);
        if (s == CULORA_OK) {
            const struct culora_nn_cast_args c = {.n = w->rows * w->ld, .src = r->base + r->base_off[i], .dst = w->s};
            s = culora_nn_cast(tr->ctx, &c, NULL);
        }
        if (s == CULORA_OK)
            s = culora_synchronize(tr->ctx, NULL);
        free(pad);
    } else {
        s = model_tensor_upload(m, w, h); /* fp32 storage: exact */
    }
    if (s == CULORA_OK)
        s = culora_synchronize(tr->ctx, NULL);
    free(h);
    return s;
}

culora_status trainer_relora_restore(culora_trainer *tr, const culora_safetensors *st, const char *ck)
{
    struct trainer_relora *r = tr->relora;
    if (r == NULL)
        return CULORA_OK;
    uint64_t restarts = 0, round = 0;
    CULORA_TRY(meta_u64(tr, st, ck, "relora_restarts", &restarts));
    CULORA_TRY(meta_u64(tr, st, ck, "relora_round", &round));
    r->restarts = (int64_t)restarts;
    r->round = round;
    if (r->warm_phase || (r->every == 0 && r->warm == 0))
        return CULORA_OK;
    for (int32_t i = 0; i < r->n; i++) {
        char name[200];
        snprintf(name, sizeof name, "relora_base.%s", r->lins[i]->hf_weight);
        CULORA_TRY(restore_base(tr, i, culora_safetensors_find(st, name), ck));
        struct mtensor *bias = &r->lins[i]->bias;
        if (!bias->present)
            continue;
        snprintf(name, sizeof name, "relora_base.%s", r->lins[i]->hf_bias);
        const culora_tensor_info *t = culora_safetensors_find(st, name);
        if (t == NULL || t->dtype != CULORA_ST_F32 || t->n_elems != bias->cols)
            return culora_fail(tr->ctx, CULORA_ERR_FORMAT, "checkpoint %s: the bias %s is missing or has another size",
                               ck, r->lins[i]->hf_bias);
        float *h = malloc((size_t)bias->cols * sizeof *h);
        if (h == NULL)
            return fail(tr, CULORA_ERR_OUT_OF_MEMORY, "out of host memory");
        culora_status s = culora_tensor_read(tr->ctx, t, CULORA_DTYPE_F32, h, (size_t)bias->cols * sizeof *h);
        if (s == CULORA_OK)
            s = model_tensor_upload(tr->model, bias, h);
        free(h);
        CULORA_TRY(s);
    }
    return CULORA_OK;
}
