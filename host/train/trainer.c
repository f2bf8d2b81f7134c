/*
 * trainer.c — the training loop (culora_train.h): micro-batches, exact gradient means across
 * accumulation and ranks, all-reduce, non-finite protection, clipping, AdamW, schedules,
 * evaluation and metrics. Checkpoints are in checkpoint.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "trainer.h"

#include "relora.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double trainer_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *dup_str(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

void culora_trainer_destroy(culora_trainer *tr)
{
    if (tr == NULL)
        return;
    trainer_relora_destroy(tr);
    free(tr->ids);
    free(tr->tgts);
    free(tr->mb_tokens);
    free(tr->gather);
    free(tr->ckpt_dir);
    free(tr->metrics_path);
    free(tr);
}

static culora_status check_params(culora_context *ctx, const culora_train_params *p)
{
    if (p->struct_size != sizeof(culora_train_params) || p->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "trainer: params not initialised with CULORA_TRAIN_PARAMS_INIT");
    if (p->total_steps < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "trainer: total_steps %lld must be >= 1", (long long)p->total_steps);
    if (p->grad_accum < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "trainer: grad_accum %d must be >= 1", (int)p->grad_accum);
    if (!(p->lr >= 0.0) || !isfinite(p->lr))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "trainer: learning rate %g", (double)p->lr);
    if (!(p->beta1 >= 0.0 && p->beta1 < 1.0) || !(p->beta2 >= 0.0 && p->beta2 < 1.0) || !(p->eps > 0.0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "trainer: AdamW betas (%g, %g) must be in [0, 1), eps %g > 0",
                           (double)p->beta1, (double)p->beta2, (double)p->eps);
    if (!(p->weight_decay >= 0.0) || !(p->max_grad_norm >= 0.0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "trainer: weight_decay and max_grad_norm must be >= 0");
    if (p->eval_every < 0 || p->eval_batches < 0 || p->checkpoint_every < 0 || p->keep_checkpoints < 0 ||
        p->max_bad_steps < 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "trainer: negative eval/checkpoint/bad-step setting");
    return CULORA_OK;
}

/* Data parallelism needs the same trainable weights on every rank, but ranks may have initialised
 * LoRA differently (a per-rank seed, as `culora train` uses for dropout): every rank starts from
 * rank 0's values, as PyTorch DDP broadcasts rank 0's parameters at construction. */
static culora_status broadcast_weights(culora_trainer *tr)
{
    struct culora_model *m = tr->model;
    if (tr->p.dist == NULL || tr->world == 1 || m->n_train == 0)
        return CULORA_OK;
    CULORA_TRY(culora_synchronize(tr->ctx, NULL));
    CULORA_TRY(culora_dist_broadcast(tr->p.dist, m->master, (size_t)m->n_train * sizeof(float), 0, NULL));
    CULORA_TRY(culora_dist_wait(tr->p.dist, NULL));
    if (m->copy != NULL) { /* the storage-dtype copies the forward reads (CUDA) */
        const struct culora_nn_cast_args c = {.n = m->n_train, .src = m->master, .dst = m->copy};
        CULORA_TRY(culora_nn_cast(tr->ctx, &c, NULL));
    }
    return culora_synchronize(tr->ctx, NULL);
}

culora_status trainer_check_replicas(culora_trainer *tr, const char *when)
{
    struct culora_model *m = tr->model;
    if (tr->p.dist == NULL || tr->world == 1 || m->n_train == 0)
        return CULORA_OK;
    float *w = malloc((size_t)m->n_train * sizeof *w);
    if (w == NULL)
        return culora_fail(tr->ctx, CULORA_ERR_OUT_OF_MEMORY, "trainer: out of host memory");
    culora_status s = model_state_download(m, w, NULL, NULL);
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the bytes */
    const unsigned char *b = (const unsigned char *)w;
    for (size_t i = 0; s == CULORA_OK && i < (size_t)m->n_train * sizeof *w; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    free(w);
    CULORA_TRY(s);
    char what[160];
    snprintf(what, sizeof what, "the checksum (FNV-1a) of the trainable weights at step %lld %s", (long long)tr->step,
             when ? when : "");
    return culora_dist_check_same(tr->p.dist, h, what);
}

culora_status culora_trainer_create(culora_model *model, culora_loader *train, culora_loader *eval,
                                    const culora_train_params *p, culora_trainer **out)
{
    if (model == NULL || out == NULL)
        return CULORA_ERR_INVALID_ARG;
    culora_context *ctx = culora_model_context(model);
    *out = NULL;
    if (train == NULL || p == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "trainer: %s is NULL", train ? "params" : "train loader");
    CULORA_TRY(check_params(ctx, p));
    if (culora_model_mode(model) == CULORA_MODE_INFERENCE)
        return culora_fail(ctx, CULORA_ERR_MISUSE, "trainer: the model was created for inference (no trainable parameters)");
    const int32_t B = culora_loader_batch_size(train), T = culora_loader_seq_len(train);
    const struct culora_model *m = model;
    if ((int64_t)B * T > m->max_n || T > m->max_seq)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "trainer: batches of %d × %d tokens do not fit the model's buffers (max_batch × max_seq = "
                           "%lld × %lld)",
                           (int)B, (int)T, (long long)m->max_batch, (long long)m->max_seq);
    if (eval != NULL) {
        const int32_t eb = culora_loader_batch_size(eval), et = culora_loader_seq_len(eval);
        if ((int64_t)eb * et > m->max_n || et > m->max_seq)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "trainer: eval batches of %d × %d tokens do not fit the model",
                               (int)eb, (int)et);
    }
    culora_trainer *tr = calloc(1, sizeof *tr);
    if (tr == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "trainer: out of memory");
    tr->model = model;
    tr->ctx = ctx;
    tr->train = train;
    tr->eval = eval;
    tr->p = *p;
    tr->B = B;
    tr->T = T;
    tr->rank = p->dist ? culora_dist_rank(p->dist) : 0;
    tr->world = p->dist ? culora_dist_world_size(p->dist) : 1;
    tr->sched = (struct culora_schedule){p->schedule, p->total_steps, p->warmup_steps, p->min_lr_ratio,
                                         p->cycle_length, p->restart_warmup, 0};
    const size_t bt = (size_t)B * (size_t)T * (size_t)p->grad_accum;
    tr->ids = malloc(bt * sizeof *tr->ids);
    tr->tgts = malloc(bt * sizeof *tr->tgts);
    tr->mb_tokens = calloc((size_t)p->grad_accum, sizeof *tr->mb_tokens);
    tr->gather = calloc((size_t)tr->world, sizeof *tr->gather);
    tr->ckpt_dir = dup_str(p->checkpoint_dir);
    tr->metrics_path = dup_str(p->metrics_path);
    tr->p.checkpoint_dir = tr->ckpt_dir;
    tr->p.metrics_path = tr->metrics_path;
    culora_status s = CULORA_OK;
    if (!tr->ids || !tr->tgts || !tr->mb_tokens || !tr->gather || (p->checkpoint_dir && !tr->ckpt_dir) ||
        (p->metrics_path && !tr->metrics_path))
        s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "trainer: out of memory");
    if (s == CULORA_OK)
        s = trainer_relora_create(tr);
    if (s == CULORA_OK)
        s = culora_schedule_check(ctx, &tr->sched);
    if (s == CULORA_OK)
        s = broadcast_weights(tr);
    if (s != CULORA_OK) {
        culora_trainer_destroy(tr);
        return s;
    }
    tr->t_start = trainer_now();
    *out = tr;
    return CULORA_OK;
}

int64_t culora_trainer_step_count(const culora_trainer *tr) { return tr ? tr->step : 0; }

/* ---- cross-rank sums of host scalars (through allgather, summed in rank order) ----------- */

culora_status trainer_sum_u64(culora_trainer *tr, uint64_t *v)
{
    if (tr->p.dist == NULL || tr->world == 1)
        return CULORA_OK;
    CULORA_TRY(culora_dist_allgather_u64(tr->p.dist, *v, tr->gather));
    uint64_t s = 0;
    for (int32_t r = 0; r < tr->world; r++)
        s += tr->gather[r];
    *v = s;
    return CULORA_OK;
}

culora_status trainer_sum_f64(culora_trainer *tr, double *v)
{
    if (tr->p.dist == NULL || tr->world == 1)
        return CULORA_OK;
    uint64_t bits;
    memcpy(&bits, v, sizeof bits);
    CULORA_TRY(culora_dist_allgather_u64(tr->p.dist, bits, tr->gather));
    double s = 0;
    for (int32_t r = 0; r < tr->world; r++) {
        double x;
        memcpy(&x, &tr->gather[r], sizeof x);
        s += x;
    }
    *v = s;
    return CULORA_OK;
}

/* ---- metrics ------------------------------------------------------------------------------- */

static void json_num(FILE *f, const char *key, double v, bool last)
{
    if (isfinite(v))
        fprintf(f, "\"%s\":%.9g%s", key, v, last ? "" : ",");
    else
        fprintf(f, "\"%s\":null%s", key, last ? "" : ",");
}

static culora_status write_metrics(culora_trainer *tr, const culora_step_info *in)
{
    if (tr->metrics_path == NULL || tr->rank != 0)
        return CULORA_OK;
    FILE *f = fopen(tr->metrics_path, "a");
    if (f == NULL)
        return culora_fail(tr->ctx, CULORA_ERR_IO, "metrics file %s: %s", tr->metrics_path, strerror(errno));
    fprintf(f, "{\"step\":%lld,", (long long)in->step);
    if (in->is_eval) {
        json_num(f, "eval_loss", in->eval_loss, true);
    } else {
        json_num(f, "loss", in->loss, false);
        json_num(f, "lr", in->lr, false);
        json_num(f, "grad_norm", in->grad_norm, false);
        fprintf(f, "\"tokens\":%lld,", (long long)in->tokens);
        json_num(f, "tokens_per_s", in->tokens_per_s, false);
        json_num(f, "elapsed_s", in->elapsed_s, in->skipped == 0);
        if (in->skipped)
            fprintf(f, "\"skipped\":true");
    }
    fprintf(f, "}\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return culora_fail(tr->ctx, CULORA_ERR_IO, "metrics file %s: write failed", tr->metrics_path);
    return CULORA_OK;
}

/* ---- one step -------------------------------------------------------------------------------- */

culora_status culora_trainer_step(culora_trainer *tr, culora_step_info *info)
{
    if (tr == NULL)
        return CULORA_ERR_INVALID_ARG;
    culora_model *m = tr->model;
    const double t0 = trainer_now();
    const int32_t A = tr->p.grad_accum;
    const size_t bt = (size_t)tr->B * (size_t)tr->T;
    uint64_t tokens = 0;
    for (int32_t a = 0; a < A; a++) {
        culora_batch b = {tr->ids + (size_t)a * bt, tr->tgts + (size_t)a * bt, NULL, NULL, 0, 0, 0, 0};
        CULORA_TRY(culora_loader_next(tr->ctx, tr->train, &b));
        tr->mb_tokens[a] = b.n_loss_tokens;
        tokens += (uint64_t)b.n_loss_tokens;
    }
    CULORA_TRY(trainer_sum_u64(tr, &tokens));
    CULORA_TRY(culora_model_zero_grad(m));
    culora_model_set_training(m, true);
    double loss_sum = 0.0;
    for (int32_t a = 0; a < A; a++) {
        float l = 0.0f;
        CULORA_TRY(culora_model_forward(m, tr->ids + (size_t)a * bt, tr->tgts + (size_t)a * bt, tr->B, tr->T, &l));
        if (tr->mb_tokens[a] == 0)
            continue; /* nothing to learn from this micro-batch */
        loss_sum += (double)l * (double)tr->mb_tokens[a];
        /* Each rank scales by the world size: the all-reduce's mean then gives the exact mean over
         * every loss token of the step on every rank. */
        CULORA_TRY(culora_model_backward(m, (float)tr->world, (int64_t)tokens));
    }
    if (tr->p.dist != NULL && tr->world > 1) {
        int64_t n = 0;
        float *g = model_grad_buffer(m, &n);
        CULORA_TRY(culora_dist_allreduce_mean_f32(tr->p.dist, g, (size_t)n, NULL));
        CULORA_TRY(culora_dist_wait(tr->p.dist, NULL));
    }
    CULORA_TRY(trainer_sum_f64(tr, &loss_sum));
    const float loss = tokens > 0 ? (float)(loss_sum / (double)tokens) : NAN;
    float norm = 0.0f;
    CULORA_TRY(model_grad_norm(m, &norm));

    tr->step++;
    const double lr = tr->p.lr * trainer_lr_multiplier(tr, tr->step - 1);
    culora_step_info in;
    memset(&in, 0, sizeof in);
    in.step = tr->step;
    in.total_steps = tr->p.total_steps;
    in.loss = loss;
    in.eval_loss = NAN;
    in.lr = (float)lr;
    in.grad_norm = norm;
    in.tokens = (int64_t)bt * A * tr->world;
    in.loss_tokens = (int64_t)tokens;
    if (!isfinite(loss) || !isfinite(norm)) {
        /* never write a non-finite update into the weights: skip and count */
        in.skipped = 1;
        tr->bad_steps++;
    } else {
        /* torch clip_grad_norm_: coefficient max_norm / (norm + 1e-6), clamped to 1 */
        const float clip = tr->p.max_grad_norm > 0.0 && (double)norm > tr->p.max_grad_norm
                               ? (float)(tr->p.max_grad_norm / ((double)norm + 1e-6))
                               : 1.0f;
        tr->adam_step++;
        CULORA_TRY(model_adamw(m, lr, tr->p.beta1, tr->p.beta2, tr->p.eps, tr->p.weight_decay, tr->adam_step, clip));
        CULORA_TRY(culora_synchronize(tr->ctx, NULL));
    }
    const double t1 = trainer_now();
    in.tokens_per_s = (double)in.tokens / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9);
    in.elapsed_s = t1 - tr->t_start;
    in.bad_steps = tr->bad_steps;
    CULORA_TRY(trainer_relora_after_step(tr, &in));
    tr->last = in;
    if (info != NULL)
        *info = in;
    CULORA_TRY(write_metrics(tr, &in));
    if (in.skipped && tr->bad_steps > tr->p.max_bad_steps)
        return culora_fail(tr->ctx, CULORA_ERR_NUMERIC,
                           "trainer: step %lld has a non-finite %s (loss %g, gradient norm %g); %lld steps skipped, more "
                           "than the %d allowed (max_bad_steps). The weights were not changed by any skipped step.",
                           (long long)tr->step, !isfinite(loss) ? "loss" : "gradient", (double)loss, (double)norm,
                           (long long)tr->bad_steps, (int)tr->p.max_bad_steps);
    return CULORA_OK;
}

/* ---- evaluation ------------------------------------------------------------------------------ */

culora_status culora_trainer_evaluate(culora_trainer *tr, float *out)
{
    if (tr == NULL || out == NULL)
        return CULORA_ERR_INVALID_ARG;
    if (tr->eval == NULL)
        return culora_fail(tr->ctx, CULORA_ERR_MISUSE, "trainer: no evaluation loader was given");
    const int32_t B = culora_loader_batch_size(tr->eval), T = culora_loader_seq_len(tr->eval);
    int32_t *ids = malloc((size_t)B * (size_t)T * sizeof *ids), *tg = malloc((size_t)B * (size_t)T * sizeof *tg);
    if (ids == NULL || tg == NULL) {
        free(ids);
        free(tg);
        return culora_fail(tr->ctx, CULORA_ERR_OUT_OF_MEMORY, "trainer: out of memory");
    }
    const uint64_t n_batches =
        tr->p.eval_batches > 0 ? (uint64_t)tr->p.eval_batches : culora_loader_steps_per_epoch(tr->eval);
    culora_model_set_training(tr->model, false);
    double sum = 0.0;
    uint64_t tokens = 0;
    culora_status s = CULORA_OK;
    for (uint64_t i = 0; i < n_batches && s == CULORA_OK; i++) {
        culora_batch b = {ids, tg, NULL, NULL, 0, 0, 0, 0};
        s = culora_loader_next(tr->ctx, tr->eval, &b);
        float l = 0.0f;
        if (s == CULORA_OK)
            s = culora_model_forward(tr->model, ids, tg, B, T, &l);
        if (s == CULORA_OK && b.n_loss_tokens > 0) {
            sum += (double)l * (double)b.n_loss_tokens;
            tokens += (uint64_t)b.n_loss_tokens;
        }
    }
    culora_model_set_training(tr->model, true);
    free(ids);
    free(tg);
    CULORA_TRY(s);
    CULORA_TRY(trainer_sum_f64(tr, &sum));
    CULORA_TRY(trainer_sum_u64(tr, &tokens));
    *out = tokens > 0 ? (float)(sum / (double)tokens) : NAN;
    return CULORA_OK;
}

/* ---- the loop ---------------------------------------------------------------------------------- */

static culora_status report(culora_trainer *tr, const culora_step_info *in, bool *stop)
{
    if (tr->p.callback != NULL && tr->p.callback(in, tr->p.user) != 0)
        *stop = true;
    return CULORA_OK;
}

culora_status culora_trainer_run(culora_trainer *tr)
{
    if (tr == NULL)
        return CULORA_ERR_INVALID_ARG;
    bool stop = false;
    while (tr->step < tr->p.total_steps && !stop) {
        culora_step_info in;
        CULORA_TRY(culora_trainer_step(tr, &in));
        CULORA_TRY(report(tr, &in, &stop));
        const bool last = tr->step == tr->p.total_steps;
        if (tr->eval != NULL && tr->p.eval_every > 0 && (tr->step % tr->p.eval_every == 0 || last)) {
            culora_step_info ev;
            memset(&ev, 0, sizeof ev);
            ev.step = tr->step;
            ev.total_steps = tr->p.total_steps;
            ev.is_eval = 1;
            ev.loss = NAN;
            CULORA_TRY(culora_trainer_evaluate(tr, &ev.eval_loss));
            ev.elapsed_s = trainer_now() - tr->t_start;
            CULORA_TRY(write_metrics(tr, &ev));
            CULORA_TRY(report(tr, &ev, &stop));
        }
        if (tr->ckpt_dir != NULL && tr->p.checkpoint_every > 0 && tr->step % tr->p.checkpoint_every == 0 && !last)
            CULORA_TRY(culora_trainer_save_checkpoint(tr, tr->ckpt_dir));
    }
    if (tr->ckpt_dir != NULL)
        CULORA_TRY(culora_trainer_save_checkpoint(tr, tr->ckpt_dir));
    return CULORA_OK;
}
