/*
 * hub_eval.c — scoring weight vectors: composition in the backend (one GEMM, hub_internal.h), the
 * forward (one per candidate, or one segmented forward per population), per-row cross-entropy,
 * the loss and objective; and the loss gradient with respect to w through the backward pass.
 *
 * Every path computes the loss the same way: per-row cross-entropy of the forward's logits
 * (fp32, nn cross_entropy op), summed per example in fp64 on the host, then
 *   plain:            Σ_e sum_e / Σ_e count_e
 *   lorahub_batch k:  Σ_batches (Σ_{e∈b} sum_e / Σ_{e∈b} count_e) / E
 */
#include "hub_internal.h"

#include "../sgmv_ops.h"

#include <math.h>
#include <string.h>

double hub_objective(const culora_hub *hub, const double *w, double loss)
{
    double s = 0.0;
    for (int32_t i = 0; i < hub->N; i++)
        s += fabs(w[i]);
    return loss + hub->p.l1 * s / (double)hub->N;
}

static culora_status check_w(culora_hub *hub, const double *w, int64_t count)
{
    if (w == NULL)
        return culora_fail(hub->ctx, CULORA_ERR_INVALID_ARG, "hub: w is NULL");
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(w[i]))
            return culora_fail(hub->ctx, CULORA_ERR_INVALID_ARG, "hub: weight %lld (candidate %lld) is not finite",
                               (long long)(i % hub->N), (long long)(i / hub->N));
    return CULORA_OK;
}

/* out[P, n_train] (fp32, backend, leading dimension ldo) '=' const + W[P, N]·stack, for the P
 * weight rows in w. */
static culora_status compose_into(culora_hub *hub, const double *w, int32_t P, float *out, int64_t ldo)
{
    culora_context *ctx = hub->ctx;
    const int64_t nt = hub->n_train;
    for (int64_t i = 0; i < (int64_t)P * hub->N; i++)
        hub->wf[i] = (float)w[i];
    CULORA_TRY(culora_memcpy(ctx, hub->wdev, hub->wf, (size_t)P * (size_t)hub->N * sizeof(float),
                             CULORA_COPY_HOST_TO_DEVICE, NULL));
    if (hub->cvec != NULL)
        for (int32_t c = 0; c < P; c++)
            CULORA_TRY(culora_memcpy(ctx, out + c * ldo, hub->cvec, (size_t)nt * sizeof(float),
                                     CULORA_COPY_DEVICE_TO_DEVICE, NULL));
    const struct culora_gemm_args g = {.trans_a = false, .trans_b = false, .m = P, .n = nt, .k = hub->N,
                                       .alpha = 1.0f, .beta = hub->cvec != NULL ? 1.0f : 0.0f,
                                       .a = hub->wdev, .lda = hub->N, .a_dtype = CULORA_DTYPE_F32,
                                       .b = hub->stack, .ldb = nt, .b_dtype = CULORA_DTYPE_F32,
                                       .c = out, .ldc = ldo, .c_dtype = CULORA_DTYPE_F32};
    CULORA_TRY(culora_op_gemm(ctx, &g, hub->model->ws, hub->model->ws_bytes, NULL));
    /* wf is read by the (possibly asynchronous) upload above. */
    return culora_synchronize(ctx, NULL);
}

culora_status hub_write_weights(culora_hub *hub, const double *w)
{
    CULORA_TRY(check_w(hub, w, hub->N));
    struct culora_model *m = hub->model;
    CULORA_TRY(compose_into(hub, w, 1, m->master, hub->n_train));
    if (m->copy == NULL) /* fp32 backends: the master is what the ops read */
        return CULORA_OK;
    const struct culora_nn_cast_args c = {.n = hub->n_train, .src = m->master, .dst = m->copy};
    return culora_nn_cast(hub->ctx, &c, NULL);
}

/* Per-row cross-entropy of the last forward's logits over rows [0, n) into hub->row_losses. */
static culora_status row_losses(culora_hub *hub, int64_t n)
{
    struct culora_model *m = hub->model;
    const struct culora_nn_cross_entropy_args ce = {.n = n, .vocab = m->V, .ignore_index = CULORA_IGNORE_INDEX,
                                                    .grad_scale = 1.0f, .logits = m->logits, .ldlogits = m->ldV,
                                                    .targets = hub->targets_dev, .loss = hub->loss_dev,
                                                    .losses = hub->losses_dev};
    CULORA_TRY(culora_nn_cross_entropy(hub->ctx, &ce, m->ws, m->ws_bytes, NULL));
    CULORA_TRY(culora_memcpy(hub->ctx, hub->row_losses, hub->losses_dev, (size_t)n * sizeof(float),
                             CULORA_COPY_DEVICE_TO_HOST, NULL));
    return culora_synchronize(hub->ctx, NULL);
}

/* The loss of candidate c from hub->row_losses (its E examples start at row c·E·T). */
static double candidate_loss(const culora_hub *hub, int32_t c)
{
    const int64_t E = hub->E, T = hub->T;
    const float *rl = hub->row_losses + (int64_t)c * E * T;
    const int64_t k = hub->p.lorahub_batch > 0 ? hub->p.lorahub_batch : E;
    double total = 0.0;
    for (int64_t b0 = 0; b0 < E; b0 += k) {
        double sum = 0.0;
        int64_t cnt = 0;
        for (int64_t e = b0; e < E && e < b0 + k; e++) {
            for (int64_t t = 0; t < T; t++)
                sum += (double)rl[e * T + t]; /* ignored positions carry 0 */
            cnt += hub->ex_tokens[e];
        }
        if (cnt > 0)
            total += sum / (double)cnt;
    }
    return hub->p.lorahub_batch > 0 ? total / (double)E : total;
}

static culora_status eval_sequential(culora_hub *hub, const double *w, int32_t n_cand, double *loss)
{
    const int64_t E = hub->E, T = hub->T;
    for (int32_t c = 0; c < n_cand; c++) {
        CULORA_TRY(hub_write_weights(hub, w + (int64_t)c * hub->N));
        CULORA_TRY(culora_model_forward(hub->model, hub->tokens, NULL, E, T, NULL));
        CULORA_TRY(row_losses(hub, E * T));
        loss[c] = candidate_loss(hub, 0);
    }
    return CULORA_OK;
}

/* P <= cand_cap candidates in one segmented forward. */
static culora_status eval_batch(culora_hub *hub, const double *w, int32_t P, double *loss)
{
    struct culora_model *m = hub->model;
    const int64_t E = hub->E, T = hub->T, ld = hub->stride;
    CULORA_TRY(check_w(hub, w, (int64_t)P * hub->N));
    CULORA_TRY(compose_into(hub, w, P, hub->comp, ld));
    if (hub->comp_s != (void *)hub->comp) {
        const struct culora_nn_cast_args c = {.n = P * ld, .src = hub->comp, .dst = hub->comp_s};
        CULORA_TRY(culora_nn_cast(hub->ctx, &c, NULL));
    }
    for (int32_t c = 0; c <= P; c++)
        hub->seg_rows[c] = (int64_t)c * E * T;
    hub->segs = (struct model_segments){.n = P, .rows = hub->seg_rows, .base = hub->comp_s, .stride = ld};
    CULORA_TRY(model_set_segments(m, &hub->segs));
    culora_status s = culora_model_forward(m, hub->tokens, NULL, (int64_t)P * E, T, NULL);
    (void)model_set_segments(m, NULL);
    CULORA_TRY(s);
    CULORA_TRY(row_losses(hub, (int64_t)P * E * T));
    for (int32_t c = 0; c < P; c++)
        loss[c] = candidate_loss(hub, c);
    return CULORA_OK;
}

culora_status culora_hub_evaluate(culora_hub *hub, const double *w, int32_t n_candidates, int32_t batched,
                                  double *loss, double *objective)
{
    if (hub == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(hub->ctx));
    if (n_candidates < 1)
        return culora_fail(hub->ctx, CULORA_ERR_INVALID_ARG, "hub: %d candidates to evaluate", (int)n_candidates);
    CULORA_TRY(check_w(hub, w, (int64_t)n_candidates * hub->N));
    for (int32_t c0 = 0; c0 < n_candidates; c0 += hub->cand_cap) {
        const int32_t P = n_candidates - c0 < hub->cand_cap ? n_candidates - c0 : hub->cand_cap;
        const double *wc = w + (int64_t)c0 * hub->N;
        double scratch[CULORA_SGMV_MAX_SEGMENTS];
        double *l = loss != NULL ? loss + c0 : scratch;
        if (batched)
            CULORA_TRY(eval_batch(hub, wc, P, l));
        else
            CULORA_TRY(eval_sequential(hub, wc, P, l));
        if (objective != NULL)
            for (int32_t c = 0; c < P; c++)
                objective[c0 + c] = hub_objective(hub, wc + (int64_t)c * hub->N, l[c]);
    }
    return CULORA_OK;
}

culora_status culora_hub_loss_grad(culora_hub *hub, const double *w, double *loss, double *grad)
{
    if (hub == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(hub->ctx));
    if (loss == NULL || grad == NULL)
        return culora_fail(hub->ctx, CULORA_ERR_INVALID_ARG, "hub: %s is NULL", loss == NULL ? "loss" : "grad");
    struct culora_model *m = hub->model;
    const int64_t E = hub->E, T = hub->T;
    CULORA_TRY(hub_write_weights(hub, w));
    CULORA_TRY(culora_model_zero_grad(m));
    /* plain: one batch of every example (the model's mean over all loss tokens); LoraHub: batches
     * of k examples, each's token mean divided by E. */
    const int64_t k = hub->p.lorahub_batch > 0 ? hub->p.lorahub_batch : E;
    const float scale = hub->p.lorahub_batch > 0 ? (float)(1.0 / (double)E) : 1.0f;
    double total = 0.0;
    for (int64_t b0 = 0; b0 < E; b0 += k) {
        const int64_t nb = E - b0 < k ? E - b0 : k;
        int64_t cnt = 0;
        for (int64_t e = b0; e < b0 + nb; e++)
            cnt += hub->ex_tokens[e];
        if (cnt == 0)
            continue;
        float l = 0.0f;
        CULORA_TRY(culora_model_forward(m, hub->tokens + b0 * T, hub->targets + b0 * T, nb, T, &l));
        CULORA_TRY(culora_model_backward(m, scale, 0));
        total += (double)l;
    }
    *loss = hub->p.lorahub_batch > 0 ? total / (double)E : total;
    /* ∂loss/∂w = stack·grad: [1, n_train] × [N, n_train]ᵀ */
    const struct culora_gemm_args g = {.trans_a = false, .trans_b = true, .m = 1, .n = hub->N, .k = hub->n_train,
                                       .alpha = 1.0f, .beta = 0.0f, .a = m->grad, .lda = hub->n_train,
                                       .a_dtype = CULORA_DTYPE_F32, .b = hub->stack, .ldb = hub->n_train,
                                       .b_dtype = CULORA_DTYPE_F32, .c = hub->gdev, .ldc = hub->N,
                                       .c_dtype = CULORA_DTYPE_F32};
    CULORA_TRY(culora_op_gemm(hub->ctx, &g, m->ws, m->ws_bytes, NULL));
    CULORA_TRY(culora_memcpy(hub->ctx, hub->wf, hub->gdev, (size_t)hub->N * sizeof(float),
                             CULORA_COPY_DEVICE_TO_HOST, NULL));
    CULORA_TRY(culora_synchronize(hub->ctx, NULL));
    for (int32_t i = 0; i < hub->N; i++)
        grad[i] = (double)hub->wf[i];
    return CULORA_OK;
}
