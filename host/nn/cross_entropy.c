/*
 * cross_entropy.c — dispatcher of the fused softmax + cross-entropy (host/nn_ops.h).
 */
#include "nn_check.h"

#include <math.h>

static culora_status check_shapes(culora_context *ctx, const char *op, const struct culora_nn_cross_entropy_args *a)
{
    CULORA_TRY(nn_check_min(ctx, op, "n", a->n, 1));
    CULORA_TRY(nn_check_min(ctx, op, "vocab", a->vocab, 1));
    if (a->vocab > INT32_MAX || a->n > INT32_MAX)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: vocab and n must be below 2^31", op);
    return CULORA_OK;
}

culora_status culora_nn_cross_entropy_workspace(culora_context *ctx, const struct culora_nn_cross_entropy_args *a,
                                                struct culora_nn_ws *ws)
{
    static const char op[] = "nn_cross_entropy";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL || ws == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, a ? "ws" : "args");
    CULORA_TRY(check_shapes(ctx, op, a));
    ws->min_bytes = ws->full_bytes = 0;
    if (ctx->be->nn && ctx->be->nn->cross_entropy_workspace)
        CULORA_TRY(ctx->be->nn->cross_entropy_workspace(ctx->be, a, ws));
    return CULORA_OK;
}

culora_status culora_nn_cross_entropy(culora_context *ctx, const struct culora_nn_cross_entropy_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "nn_cross_entropy";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    CULORA_TRY(check_shapes(ctx, op, a));
    const size_t es = nn_es(ctx);
    const int64_t n = a->n, v = a->vocab;
    if (a->grad_denominator < 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: grad_denominator = %lld must be >= 0", op,
                           (long long)a->grad_denominator);
    if (!isfinite(a->grad_scale))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: grad_scale is not finite", op);
    CULORA_TRY(nn_check_s(ctx, op, "logits", a->logits, n, v, a->ldlogits));
    CULORA_TRY(nn_check_vec(ctx, op, "targets", a->targets, n, sizeof(int32_t)));
    CULORA_TRY(nn_check_vec(ctx, op, "loss", a->loss, 1, 4));
    if (a->losses != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "losses", a->losses, n, 4));
    if (a->n_valid != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "n_valid", a->n_valid, 1, 4));
    if (a->dlogits != NULL)
        CULORA_TRY(nn_check_s(ctx, op, "dlogits", a->dlogits, n, v, a->lddlogits));
    const struct nn_view outs[] = {
        {"dlogits", a->dlogits, n, v, a->lddlogits, es, true},
        {"loss", a->loss, 1, 1, 1, 4, false},
        {"losses", a->losses, 1, n, n, 4, false},
        {"n_valid", a->n_valid, 1, 1, 1, 4, false},
    };
    const struct nn_view ins[] = {
        {"logits", a->logits, n, v, a->ldlogits, es, false},
        {"targets", a->targets, 1, n, n, 4, false},
    };
    /* dlogits may be logits exactly; the scalar outputs may not touch either. */
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 4, ins, 2));
    const struct culora_nn_i *nn = ctx->be->nn;
    CULORA_TRY(culora_need_op(ctx, op, nn && nn->cross_entropy));
    struct culora_nn_ws need = {0, 0};
    if (nn->cross_entropy_workspace)
        CULORA_TRY(nn->cross_entropy_workspace(ctx->be, a, &need));
    culora_workspace ws;
    CULORA_TRY(nn_workspace(ctx, op, workspace, workspace_bytes, &need, &ws));
    return nn->cross_entropy(ctx->be, a, &ws, nn_stream(ctx, stream));
}
