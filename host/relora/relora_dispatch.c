/*
 * relora_dispatch.c — the checking dispatcher of the ReLoRA restart op (host/relora_ops.h) and
 * the scalar rules both backends share (torch.quantile's ranks and lerp, the random threshold).
 */
#include "../relora_ops.h"

#include "../nn/nn_check.h"

#include <math.h>

void relora_quantile_rank(double ratio, int64_t n, int64_t *lo, int64_t *hi, float *weight)
{
    /* torch.quantile(t, q): ranks = q·(n−1) in the tensor's dtype (q is a Python float turned into
     * an fp32 scalar), below = long(ranks), above = long(ceil(ranks)), weight = ranks − below. */
    const float q = (float)ratio;
    const float rank = q * (float)(n - 1);
    int64_t below = (int64_t)rank, above = (int64_t)ceilf(rank);
    if (below > n - 1)
        below = n - 1;
    if (above > n - 1)
        above = n - 1;
    *lo = below;
    *hi = above;
    *weight = rank - (float)below;
}

float relora_lerp(float v_lo, float v_hi, float weight)
{
    /* ATen's lerp: start + w·(end − start) for |w| < 0.5, else end − (end − start)·(1 − w) */
    const float diff = v_hi - v_lo;
    return fabsf(weight) < 0.5f ? v_lo + weight * diff : v_hi - diff * (1.0f - weight);
}

uint32_t relora_random_threshold(double ratio)
{
    const double t = floor(ratio * 16777216.0 + 0.5);
    return t <= 0.0 ? 0u : t >= 16777216.0 ? 16777216u : (uint32_t)t;
}

static culora_status check(culora_context *ctx, const char *op, const struct culora_relora_restart_args *a)
{
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    CULORA_TRY(nn_check_min(ctx, op, "d", a->d, 1));
    CULORA_TRY(nn_check_min(ctx, op, "k", a->k, 1));
    CULORA_TRY(nn_check_min(ctx, op, "r", a->r, 1));
    const culora_dtype S = ctx->be->dtype;
    if (a->w0_dtype != S && a->w0_dtype != CULORA_DTYPE_F32)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: w0 must be %s (the storage dtype) or f32", op,
                           culora_dtype_name(S));
    if (a->merge) {
        if (!isfinite(a->scaling))
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: scaling is not finite", op);
        CULORA_TRY(culora_check_matrix(ctx, op, "w0", a->w0, a->d, a->k, a->ldw0, a->w0_dtype));
        if (a->w0_master != NULL)
            CULORA_TRY(nn_check_f32(ctx, op, "w0_master", a->w0_master, a->d, a->k, a->ldw0));
        if (a->w0_master != NULL && a->w0_dtype == CULORA_DTYPE_F32)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: an f32 w0 is its own master (w0_master must be NULL)",
                               op);
    }
    CULORA_TRY(nn_check_f32(ctx, op, "a", a->a, a->r, a->k, a->lda));
    CULORA_TRY(nn_check_f32(ctx, op, "b", a->b, a->d, a->r, a->ldb));
    if (S != CULORA_DTYPE_F32 && (a->a_copy == NULL || a->b_copy == NULL))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: the %s backend needs a_copy and b_copy", op,
                           culora_dtype_name(S));
    if (a->a_copy != NULL)
        CULORA_TRY(nn_check_s(ctx, op, "a_copy", a->a_copy, a->r, a->k, a->lda));
    if (a->b_copy != NULL)
        CULORA_TRY(nn_check_s(ctx, op, "b_copy", a->b_copy, a->d, a->r, a->ldb));
    if (a->init != CULORA_RELORA_INIT_UNIFORM && a->init != CULORA_RELORA_INIT_GAUSSIAN)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: unknown init %d", op, (int)a->init);
    if (!(a->init_scale > 0.0) || !isfinite(a->init_scale))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: init_scale %g must be finite and > 0", op, a->init_scale);
    if (a->prune < CULORA_RELORA_PRUNE_NONE || a->prune > CULORA_RELORA_PRUNE_ZERO)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: unknown prune kind %d", op, (int)a->prune);
    if (!(a->prune_ratio >= 0.0 && a->prune_ratio <= 1.0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: prune ratio %g must be in [0, 1]", op, a->prune_ratio);
    if (a->prune != CULORA_RELORA_PRUNE_NONE) {
        CULORA_TRY(nn_check_f32(ctx, op, "a_m", a->a_m, a->r, a->k, a->lda));
        CULORA_TRY(nn_check_f32(ctx, op, "a_v", a->a_v, a->r, a->k, a->lda));
        CULORA_TRY(nn_check_f32(ctx, op, "b_m", a->b_m, a->d, a->r, a->ldb));
        CULORA_TRY(nn_check_f32(ctx, op, "b_v", a->b_v, a->d, a->r, a->ldb));
    }
    /* every output is written in place; none may share memory with another */
    const size_t es = culora_dtype_size(S), wes = culora_dtype_size(a->w0_dtype);
    const struct nn_view outs[] = {
        {"w0", a->merge ? a->w0 : NULL, a->d, a->k, a->ldw0, wes, false},
        {"w0_master", a->merge ? a->w0_master : NULL, a->d, a->k, a->ldw0, 4, false},
        {"a", a->a, a->r, a->k, a->lda, 4, false},
        {"b", a->b, a->d, a->r, a->ldb, 4, false},
        {"a_copy", a->a_copy, a->r, a->k, a->lda, es, false},
        {"b_copy", a->b_copy, a->d, a->r, a->ldb, es, false},
        {"a_m", a->prune ? a->a_m : NULL, a->r, a->k, a->lda, 4, false},
        {"a_v", a->prune ? a->a_v : NULL, a->r, a->k, a->lda, 4, false},
        {"b_m", a->prune ? a->b_m : NULL, a->d, a->r, a->ldb, 4, false},
        {"b_v", a->prune ? a->b_v : NULL, a->d, a->r, a->ldb, 4, false},
    };
    const int n_outs = (int)(sizeof outs / sizeof outs[0]);
    for (int i = 0; i + 1 < n_outs; i++)
        CULORA_TRY(nn_no_overlap(ctx, op, &outs[i], 1, &outs[i + 1], n_outs - i - 1));
    return CULORA_OK;
}

culora_status culora_relora_restart_workspace(culora_context *ctx, const struct culora_relora_restart_args *a,
                                            size_t *bytes)
{
    static const char op[] = "relora_reset";
    CULORA_TRY(culora_context_check(ctx));
    if (bytes == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: bytes is NULL", op);
    *bytes = 0;
    CULORA_TRY(check(ctx, op, a));
    const struct culora_relora_i *ri = ctx->be->relora;
    CULORA_TRY(culora_need_op(ctx, op, ri != NULL && ri->reset_workspace != NULL));
    return ri->reset_workspace(ctx->be, a, bytes);
}

culora_status culora_relora_restart(culora_context *ctx, const struct culora_relora_restart_args *a, void *workspace,
                                  size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "relora_reset";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(check(ctx, op, a));
    const struct culora_relora_i *ri = ctx->be->relora;
    CULORA_TRY(culora_need_op(ctx, op, ri != NULL && ri->reset != NULL && ri->reset_workspace != NULL));
    size_t need = 0;
    CULORA_TRY(ri->reset_workspace(ctx->be, a, &need));
    culora_workspace ws;
    CULORA_TRY(culora_resolve_workspace(ctx, op, workspace, workspace_bytes, need, &ws));
    return ri->reset(ctx->be, a, &ws, nn_stream(ctx, stream));
}
