/*
 * attention.c — dispatchers of causal self-attention with grouped-query attention (host/nn_ops.h).
 */
#include "nn_check.h"

#include <math.h>

struct att_shape {
    int64_t b, t;
    int32_t h, hkv, d;
    float scale;
};

static culora_status check_shape(culora_context *ctx, const char *op, const struct att_shape *s)
{
    CULORA_TRY(nn_check_min(ctx, op, "batch", s->b, 1));
    CULORA_TRY(nn_check_min(ctx, op, "seq", s->t, 1));
    CULORA_TRY(nn_check_min(ctx, op, "n_heads", s->h, 1));
    CULORA_TRY(nn_check_min(ctx, op, "n_kv_heads", s->hkv, 1));
    CULORA_TRY(nn_check_min(ctx, op, "head_dim", s->d, 1));
    if (s->h % s->hkv != 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: n_kv_heads = %d does not divide n_heads = %d", op,
                           (int)s->hkv, (int)s->h);
    if (!isfinite(s->scale) || !(s->scale > 0.0f))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: scale = %g must be finite and > 0", op,
                           (double)s->scale);
    if (s->t > INT32_MAX / 4 || s->b * s->h > INT32_MAX)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: seq or batch·n_heads too large", op);
    return CULORA_OK;
}

static struct att_shape fwd_shape(const struct culora_nn_attention_args *a)
{
    struct att_shape s = {a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim, a->scale};
    return s;
}

static struct att_shape bwd_shape(const struct culora_nn_attention_bwd_args *a)
{
    struct att_shape s = {a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim, a->scale};
    return s;
}

culora_status culora_nn_attention_fwd_workspace(culora_context *ctx, const struct culora_nn_attention_args *a,
                                                struct culora_nn_ws *ws)
{
    static const char op[] = "nn_attention_fwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL || ws == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, a ? "ws" : "args");
    const struct att_shape s = fwd_shape(a);
    CULORA_TRY(check_shape(ctx, op, &s));
    ws->min_bytes = ws->full_bytes = 0;
    if (ctx->be->nn && ctx->be->nn->attention_fwd_workspace)
        CULORA_TRY(ctx->be->nn->attention_fwd_workspace(ctx->be, a, ws));
    return CULORA_OK;
}

culora_status culora_nn_attention_fwd(culora_context *ctx, const struct culora_nn_attention_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "nn_attention_fwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const struct att_shape s = fwd_shape(a);
    CULORA_TRY(check_shape(ctx, op, &s));
    const size_t es = nn_es(ctx);
    const int64_t n = s.b * s.t, wq = (int64_t)s.h * s.d, wkv = (int64_t)s.hkv * s.d, nl = s.b * s.h * s.t;
    CULORA_TRY(nn_check_s(ctx, op, "q", a->q, n, wq, a->ldq));
    CULORA_TRY(nn_check_s(ctx, op, "k", a->k, n, wkv, a->ldk));
    CULORA_TRY(nn_check_s(ctx, op, "v", a->v, n, wkv, a->ldv));
    CULORA_TRY(nn_check_s(ctx, op, "y", a->y, n, wq, a->ldy));
    CULORA_TRY(nn_check_vec(ctx, op, "lse", a->lse, nl, 4));
    const struct nn_view outs[] = {
        {"y", a->y, n, wq, a->ldy, es, false},
        {"lse", a->lse, 1, nl, nl, 4, false},
    };
    const struct nn_view ins[] = {
        {"q", a->q, n, wq, a->ldq, es, false},
        {"k", a->k, n, wkv, a->ldk, es, false},
        {"v", a->v, n, wkv, a->ldv, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 2, ins, 3));
    const struct culora_nn_i *nn = ctx->be->nn;
    CULORA_TRY(culora_need_op(ctx, op, nn && nn->attention_fwd));
    struct culora_nn_ws need = {0, 0};
    if (nn->attention_fwd_workspace)
        CULORA_TRY(nn->attention_fwd_workspace(ctx->be, a, &need));
    culora_workspace ws;
    CULORA_TRY(nn_workspace(ctx, op, workspace, workspace_bytes, &need, &ws));
    return nn->attention_fwd(ctx->be, a, &ws, nn_stream(ctx, stream));
}

culora_status culora_nn_attention_bwd_workspace(culora_context *ctx, const struct culora_nn_attention_bwd_args *a,
                                                struct culora_nn_ws *ws)
{
    static const char op[] = "nn_attention_bwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL || ws == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, a ? "ws" : "args");
    const struct att_shape s = bwd_shape(a);
    CULORA_TRY(check_shape(ctx, op, &s));
    ws->min_bytes = ws->full_bytes = 0;
    if (ctx->be->nn && ctx->be->nn->attention_bwd_workspace)
        CULORA_TRY(ctx->be->nn->attention_bwd_workspace(ctx->be, a, ws));
    return CULORA_OK;
}

culora_status culora_nn_attention_bwd(culora_context *ctx, const struct culora_nn_attention_bwd_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "nn_attention_bwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const struct att_shape s = bwd_shape(a);
    CULORA_TRY(check_shape(ctx, op, &s));
    const size_t es = nn_es(ctx);
    const int64_t n = s.b * s.t, wq = (int64_t)s.h * s.d, wkv = (int64_t)s.hkv * s.d, nl = s.b * s.h * s.t;
    CULORA_TRY(nn_check_s(ctx, op, "q", a->q, n, wq, a->ldq));
    CULORA_TRY(nn_check_s(ctx, op, "k", a->k, n, wkv, a->ldk));
    CULORA_TRY(nn_check_s(ctx, op, "v", a->v, n, wkv, a->ldv));
    CULORA_TRY(nn_check_vec(ctx, op, "lse", a->lse, nl, 4));
    CULORA_TRY(nn_check_s(ctx, op, "dy", a->dy, n, wq, a->lddy));
    CULORA_TRY(nn_check_s(ctx, op, "dq", a->dq, n, wq, a->lddq));
    CULORA_TRY(nn_check_s(ctx, op, "dk", a->dk, n, wkv, a->lddk));
    CULORA_TRY(nn_check_s(ctx, op, "dv", a->dv, n, wkv, a->lddv));
    const struct nn_view outs[] = {
        {"dq", a->dq, n, wq, a->lddq, es, false},
        {"dk", a->dk, n, wkv, a->lddk, es, false},
        {"dv", a->dv, n, wkv, a->lddv, es, false},
    };
    const struct nn_view ins[] = {
        {"q", a->q, n, wq, a->ldq, es, false},       {"k", a->k, n, wkv, a->ldk, es, false},
        {"v", a->v, n, wkv, a->ldv, es, false},      {"lse", a->lse, 1, nl, nl, 4, false},
        {"dy", a->dy, n, wq, a->lddy, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 3, ins, 5));
    const struct culora_nn_i *nn = ctx->be->nn;
    CULORA_TRY(culora_need_op(ctx, op, nn && nn->attention_bwd));
    struct culora_nn_ws need = {0, 0};
    if (nn->attention_bwd_workspace)
        CULORA_TRY(nn->attention_bwd_workspace(ctx->be, a, &need));
    culora_workspace ws;
    CULORA_TRY(nn_workspace(ctx, op, workspace, workspace_bytes, &need, &ws));
    return nn->attention_bwd(ctx->be, a, &ws, nn_stream(ctx, stream));
}
