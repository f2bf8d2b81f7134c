/*
 * norm.c — dispatchers of LayerNorm, RMSNorm (forward, backward) and the bias gradient
 * (host/nn_ops.h).
 */
#include "nn_check.h"

#include <math.h>

#define NN_BE(ctx) ((ctx)->be->nn)

static culora_status check_rows(culora_context *ctx, const char *op, int64_t n, int64_t c)
{
    CULORA_TRY(nn_check_min(ctx, op, "n", n, 1));
    return nn_check_min(ctx, op, "c", c, 1);
}

static culora_status check_eps(culora_context *ctx, const char *op, float eps)
{
    if (!(eps >= 0.0f) || !isfinite(eps))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: eps = %g must be finite and >= 0", op, (double)eps);
    return CULORA_OK;
}

/* ---- LayerNorm --------------------------------------------------------------------------------- */

culora_status culora_nn_layernorm_fwd(culora_context *ctx, const struct culora_nn_layernorm_args *a,
                                      culora_stream stream)
{
    static const char op[] = "nn_layernorm_fwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    const int64_t n = a->n, c = a->c;
    CULORA_TRY(check_rows(ctx, op, n, c));
    CULORA_TRY(check_eps(ctx, op, a->eps));
    CULORA_TRY(nn_check_s(ctx, op, "x", a->x, n, c, a->ldx));
    CULORA_TRY(nn_check_vec(ctx, op, "gamma", a->gamma, c, es));
    if (a->beta != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "beta", a->beta, c, es));
    CULORA_TRY(nn_check_s(ctx, op, "out", a->out, n, c, a->ldout));
    if (a->mean != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "mean", a->mean, n, 4));
    if (a->rstd != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "rstd", a->rstd, n, 4));
    const struct nn_view outs[] = {
        {"out", a->out, n, c, a->ldout, es, false},
        {"mean", a->mean, 1, n, n, 4, false},
        {"rstd", a->rstd, 1, n, n, 4, false},
    };
    const struct nn_view ins[] = {
        {"x", a->x, n, c, a->ldx, es, false},
        {"gamma", a->gamma, 1, c, c, es, false},
        {"beta", a->beta, 1, c, c, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 3, ins, 3));
    CULORA_TRY(culora_need_op(ctx, op, NN_BE(ctx) && NN_BE(ctx)->layernorm_fwd));
    return NN_BE(ctx)->layernorm_fwd(ctx->be, a, nn_stream(ctx, stream));
}

culora_status culora_nn_layernorm_bwd_workspace(culora_context *ctx, const struct culora_nn_layernorm_bwd_args *a,
                                                struct culora_nn_ws *ws)
{
    static const char op[] = "nn_layernorm_bwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL || ws == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, a ? "ws" : "args");
    CULORA_TRY(check_rows(ctx, op, a->n, a->c));
    ws->min_bytes = ws->full_bytes = 0;
    if (NN_BE(ctx) && NN_BE(ctx)->layernorm_bwd_workspace)
        CULORA_TRY(NN_BE(ctx)->layernorm_bwd_workspace(ctx->be, a, ws));
    return CULORA_OK;
}

culora_status culora_nn_layernorm_bwd(culora_context *ctx, const struct culora_nn_layernorm_bwd_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "nn_layernorm_bwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    const int64_t n = a->n, c = a->c;
    CULORA_TRY(check_rows(ctx, op, n, c));
    CULORA_TRY(nn_check_s(ctx, op, "x", a->x, n, c, a->ldx));
    CULORA_TRY(nn_check_vec(ctx, op, "gamma", a->gamma, c, es));
    CULORA_TRY(nn_check_vec(ctx, op, "mean", a->mean, n, 4));
    CULORA_TRY(nn_check_vec(ctx, op, "rstd", a->rstd, n, 4));
    CULORA_TRY(nn_check_s(ctx, op, "dout", a->dout, n, c, a->lddout));
    CULORA_TRY(nn_check_s(ctx, op, "dx", a->dx, n, c, a->lddx));
    if (a->dgamma != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "dgamma", a->dgamma, c, 4));
    if (a->dbeta != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "dbeta", a->dbeta, c, 4));
    const struct nn_view outs[] = {
        {"dx", a->dx, n, c, a->lddx, es, false},
        {"dgamma", a->dgamma, 1, c, c, 4, false},
        {"dbeta", a->dbeta, 1, c, c, 4, false},
    };
    const struct nn_view ins[] = {
        {"x", a->x, n, c, a->ldx, es, false},         {"gamma", a->gamma, 1, c, c, es, false},
        {"mean", a->mean, 1, n, n, 4, false},         {"rstd", a->rstd, 1, n, n, 4, false},
        {"dout", a->dout, n, c, a->lddout, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 3, ins, 5));
    CULORA_TRY(culora_need_op(ctx, op, NN_BE(ctx) && NN_BE(ctx)->layernorm_bwd));
    struct culora_nn_ws need = {0, 0};
    if (NN_BE(ctx)->layernorm_bwd_workspace)
        CULORA_TRY(NN_BE(ctx)->layernorm_bwd_workspace(ctx->be, a, &need));
    culora_workspace ws;
    CULORA_TRY(nn_workspace(ctx, op, workspace, workspace_bytes, &need, &ws));
    return NN_BE(ctx)->layernorm_bwd(ctx->be, a, &ws, nn_stream(ctx, stream));
}

/* ---- RMSNorm ----------------------------------------------------------------------------------- */

culora_status culora_nn_rmsnorm_fwd(culora_context *ctx, const struct culora_nn_rmsnorm_args *a,
                                    culora_stream stream)
{
    static const char op[] = "nn_rmsnorm_fwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    const int64_t n = a->n, c = a->c;
    CULORA_TRY(check_rows(ctx, op, n, c));
    CULORA_TRY(check_eps(ctx, op, a->eps));
    CULORA_TRY(nn_check_s(ctx, op, "x", a->x, n, c, a->ldx));
    CULORA_TRY(nn_check_vec(ctx, op, "gamma", a->gamma, c, es));
    CULORA_TRY(nn_check_s(ctx, op, "out", a->out, n, c, a->ldout));
    if (a->rstd != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "rstd", a->rstd, n, 4));
    const struct nn_view outs[] = {
        {"out", a->out, n, c, a->ldout, es, false},
        {"rstd", a->rstd, 1, n, n, 4, false},
    };
    const struct nn_view ins[] = {
        {"x", a->x, n, c, a->ldx, es, false},
        {"gamma", a->gamma, 1, c, c, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 2, ins, 2));
    CULORA_TRY(culora_need_op(ctx, op, NN_BE(ctx) && NN_BE(ctx)->rmsnorm_fwd));
    return NN_BE(ctx)->rmsnorm_fwd(ctx->be, a, nn_stream(ctx, stream));
}

culora_status culora_nn_rmsnorm_bwd_workspace(culora_context *ctx, const struct culora_nn_rmsnorm_bwd_args *a,
                                              struct culora_nn_ws *ws)
{
    static const char op[] = "nn_rmsnorm_bwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL || ws == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, a ? "ws" : "args");
    CULORA_TRY(check_rows(ctx, op, a->n, a->c));
    ws->min_bytes = ws->full_bytes = 0;
    if (NN_BE(ctx) && NN_BE(ctx)->rmsnorm_bwd_workspace)
        CULORA_TRY(NN_BE(ctx)->rmsnorm_bwd_workspace(ctx->be, a, ws));
    return CULORA_OK;
}

culora_status culora_nn_rmsnorm_bwd(culora_context *ctx, const struct culora_nn_rmsnorm_bwd_args *a,
                                    void *workspace, size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "nn_rmsnorm_bwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    const int64_t n = a->n, c = a->c;
    CULORA_TRY(check_rows(ctx, op, n, c));
    CULORA_TRY(nn_check_s(ctx, op, "x", a->x, n, c, a->ldx));
    CULORA_TRY(nn_check_vec(ctx, op, "gamma", a->gamma, c, es));
    CULORA_TRY(nn_check_vec(ctx, op, "rstd", a->rstd, n, 4));
    CULORA_TRY(nn_check_s(ctx, op, "dout", a->dout, n, c, a->lddout));
    CULORA_TRY(nn_check_s(ctx, op, "dx", a->dx, n, c, a->lddx));
    if (a->dgamma != NULL)
        CULORA_TRY(nn_check_vec(ctx, op, "dgamma", a->dgamma, c, 4));
    const struct nn_view outs[] = {
        {"dx", a->dx, n, c, a->lddx, es, false},
        {"dgamma", a->dgamma, 1, c, c, 4, false},
    };
    const struct nn_view ins[] = {
        {"x", a->x, n, c, a->ldx, es, false},
        {"gamma", a->gamma, 1, c, c, es, false},
        {"rstd", a->rstd, 1, n, n, 4, false},
        {"dout", a->dout, n, c, a->lddout, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 2, ins, 4));
    CULORA_TRY(culora_need_op(ctx, op, NN_BE(ctx) && NN_BE(ctx)->rmsnorm_bwd));
    struct culora_nn_ws need = {0, 0};
    if (NN_BE(ctx)->rmsnorm_bwd_workspace)
        CULORA_TRY(NN_BE(ctx)->rmsnorm_bwd_workspace(ctx->be, a, &need));
    culora_workspace ws;
    CULORA_TRY(nn_workspace(ctx, op, workspace, workspace_bytes, &need, &ws));
    return NN_BE(ctx)->rmsnorm_bwd(ctx->be, a, &ws, nn_stream(ctx, stream));
}

/* ---- bias gradient ----------------------------------------------------------------------------- */

culora_status culora_nn_bias_grad_workspace(culora_context *ctx, const struct culora_nn_bias_grad_args *a,
                                            struct culora_nn_ws *ws)
{
    static const char op[] = "nn_bias_grad";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL || ws == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, a ? "ws" : "args");
    CULORA_TRY(check_rows(ctx, op, a->n, a->c));
    ws->min_bytes = ws->full_bytes = 0;
    if (NN_BE(ctx) && NN_BE(ctx)->bias_grad_workspace)
        CULORA_TRY(NN_BE(ctx)->bias_grad_workspace(ctx->be, a, ws));
    return CULORA_OK;
}

culora_status culora_nn_bias_grad(culora_context *ctx, const struct culora_nn_bias_grad_args *a, void *workspace,
                                  size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "nn_bias_grad";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const int64_t n = a->n, c = a->c;
    CULORA_TRY(check_rows(ctx, op, n, c));
    CULORA_TRY(nn_check_s(ctx, op, "dy", a->dy, n, c, a->lddy));
    CULORA_TRY(nn_check_vec(ctx, op, "dbias", a->dbias, c, 4));
    const struct nn_view out = {"dbias", a->dbias, 1, c, c, 4, false};
    const struct nn_view in = {"dy", a->dy, n, c, a->lddy, nn_es(ctx), false};
    CULORA_TRY(nn_no_overlap(ctx, op, &out, 1, &in, 1));
    CULORA_TRY(culora_need_op(ctx, op, NN_BE(ctx) && NN_BE(ctx)->bias_grad));
    struct culora_nn_ws need = {0, 0};
    if (NN_BE(ctx)->bias_grad_workspace)
        CULORA_TRY(NN_BE(ctx)->bias_grad_workspace(ctx->be, a, &need));
    culora_workspace ws;
    CULORA_TRY(nn_workspace(ctx, op, workspace, workspace_bytes, &need, &ws));
    return NN_BE(ctx)->bias_grad(ctx->be, a, &ws, nn_stream(ctx, stream));
}
