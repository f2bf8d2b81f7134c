/*
 * optim.c — dispatchers of AdamW, the gradient norm and the master-weight cast (host/nn_ops.h).
 */
#include "nn_check.h"

#include <math.h>

culora_status culora_nn_adamw(culora_context *ctx, const struct culora_nn_adamw_args *a, culora_stream stream)
{
    static const char op[] = "nn_adamw";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const int64_t n = a->n;
    CULORA_TRY(nn_check_min(ctx, op, "n", n, 1));
    CULORA_TRY(nn_check_min(ctx, op, "step", a->step, 1));
    if (!isfinite(a->lr) || a->lr < 0.0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: lr = %g must be finite and >= 0", op, a->lr);
    if (!(a->beta1 >= 0.0 && a->beta1 < 1.0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: beta1 = %g must be in [0, 1)", op, a->beta1);
    if (!(a->beta2 >= 0.0 && a->beta2 < 1.0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: beta2 = %g must be in [0, 1)", op, a->beta2);
    if (!isfinite(a->eps) || !(a->eps > 0.0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: eps = %g must be finite and > 0", op, a->eps);
    if (!isfinite(a->weight_decay) || a->weight_decay < 0.0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: weight_decay = %g must be finite and >= 0", op,
                           a->weight_decay);
    if (!isfinite(a->grad_scale))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: grad_scale is not finite", op);
    CULORA_TRY(nn_check_vec(ctx, op, "param", a->param, n, 4));
    CULORA_TRY(nn_check_vec(ctx, op, "grad", a->grad, n, 4));
    CULORA_TRY(nn_check_vec(ctx, op, "m", a->m, n, 4));
    CULORA_TRY(nn_check_vec(ctx, op, "v", a->v, n, 4));
    const size_t es = nn_es(ctx);
    if (a->param_copy != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "param_copy", a->param_copy, n, es));
    const struct nn_view outs[] = {
        {"param", a->param, 1, n, n, 4, false},
        {"m", a->m, 1, n, n, 4, false},
        {"v", a->v, 1, n, n, 4, false},
        {"param_copy", a->param_copy, 1, n, n, es, false},
    };
    const struct nn_view in = {"grad", a->grad, 1, n, n, 4, false};
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 4, &in, 1));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->nn && ctx->be->nn->adamw));
    return ctx->be->nn->adamw(ctx->be, a, nn_stream(ctx, stream));
}

culora_status culora_nn_grad_norm_workspace(culora_context *ctx, const struct culora_nn_grad_norm_args *a,
                                            struct culora_nn_ws *ws)
{
    static const char op[] = "nn_grad_norm";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL || ws == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, a ? "ws" : "args");
    CULORA_TRY(nn_check_min(ctx, op, "n", a->n, 1));
    ws->min_bytes = ws->full_bytes = 0;
    if (ctx->be->nn && ctx->be->nn->grad_norm_workspace)
        CULORA_TRY(ctx->be->nn->grad_norm_workspace(ctx->be, a, ws));
    return CULORA_OK;
}

culora_status culora_nn_grad_norm(culora_context *ctx, const struct culora_nn_grad_norm_args *a, void *workspace,
                                  size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "nn_grad_norm";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    CULORA_TRY(nn_check_min(ctx, op, "n", a->n, 1));
    CULORA_TRY(nn_check_vec(ctx, op, "grad", a->grad, a->n, 4));
    CULORA_TRY(nn_check_vec(ctx, op, "norm", a->norm, 1, 4));
    const struct nn_view out = {"norm", a->norm, 1, 1, 1, 4, false};
    const struct nn_view in = {"grad", a->grad, 1, a->n, a->n, 4, false};
    CULORA_TRY(nn_no_overlap(ctx, op, &out, 1, &in, 1));
    const struct culora_nn_i *nn = ctx->be->nn;
    CULORA_TRY(culora_need_op(ctx, op, nn && nn->grad_norm));
    struct culora_nn_ws need = {0, 0};
    if (nn->grad_norm_workspace)
        CULORA_TRY(nn->grad_norm_workspace(ctx->be, a, &need));
    culora_workspace ws;
    CULORA_TRY(nn_workspace(ctx, op, workspace, workspace_bytes, &need, &ws));
    return nn->grad_norm(ctx->be, a, &ws, nn_stream(ctx, stream));
}

culora_status culora_nn_cast(culora_context *ctx, const struct culora_nn_cast_args *a, culora_stream stream)
{
    static const char op[] = "nn_cast";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    CULORA_TRY(nn_check_min(ctx, op, "n", a->n, 1));
    CULORA_TRY(nn_check_vec(ctx, op, "src", a->src, a->n, 4));
    const size_t es = nn_es(ctx);
    CULORA_TRY(nn_check_vec(ctx, op, "dst", a->dst, a->n, es));
    const struct nn_view out = {"dst", a->dst, 1, a->n, a->n, es, false};
    const struct nn_view in = {"src", a->src, 1, a->n, a->n, 4, false};
    CULORA_TRY(nn_no_overlap(ctx, op, &out, 1, &in, 1));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->nn && ctx->be->nn->cast));
    return ctx->be->nn->cast(ctx->be, a, nn_stream(ctx, stream));
}
