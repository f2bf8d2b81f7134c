/*
 * activation.c — dispatchers of GELU (tanh), SwiGLU and the residual add (host/nn_ops.h).
 * These are elementwise: outputs may be exact aliases of inputs (in place).
 */
#include "nn_check.h"

static culora_status check_nc(culora_context *ctx, const char *op, int64_t n, int64_t c)
{
    CULORA_TRY(nn_check_min(ctx, op, "n", n, 1));
    return nn_check_min(ctx, op, "c", c, 1);
}

culora_status culora_nn_gelu_fwd(culora_context *ctx, const struct culora_nn_gelu_args *a, culora_stream stream)
{
    static const char op[] = "nn_gelu_fwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    CULORA_TRY(check_nc(ctx, op, a->n, a->c));
    CULORA_TRY(nn_check_s(ctx, op, "x", a->x, a->n, a->c, a->ldx));
    CULORA_TRY(nn_check_s(ctx, op, "y", a->y, a->n, a->c, a->ldy));
    const struct nn_view out = {"y", a->y, a->n, a->c, a->ldy, es, true};
    const struct nn_view in = {"x", a->x, a->n, a->c, a->ldx, es, false};
    CULORA_TRY(nn_no_overlap(ctx, op, &out, 1, &in, 1));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->nn && ctx->be->nn->gelu_fwd));
    return ctx->be->nn->gelu_fwd(ctx->be, a, nn_stream(ctx, stream));
}

culora_status culora_nn_gelu_bwd(culora_context *ctx, const struct culora_nn_gelu_bwd_args *a, culora_stream stream)
{
    static const char op[] = "nn_gelu_bwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    const int64_t n = a->n, c = a->c;
    CULORA_TRY(check_nc(ctx, op, n, c));
    CULORA_TRY(nn_check_s(ctx, op, "x", a->x, n, c, a->ldx));
    CULORA_TRY(nn_check_s(ctx, op, "dy", a->dy, n, c, a->lddy));
    CULORA_TRY(nn_check_s(ctx, op, "dx", a->dx, n, c, a->lddx));
    const struct nn_view out = {"dx", a->dx, n, c, a->lddx, es, true};
    const struct nn_view ins[] = {
        {"x", a->x, n, c, a->ldx, es, false},
        {"dy", a->dy, n, c, a->lddy, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, &out, 1, ins, 2));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->nn && ctx->be->nn->gelu_bwd));
    return ctx->be->nn->gelu_bwd(ctx->be, a, nn_stream(ctx, stream));
}

culora_status culora_nn_swiglu_fwd(culora_context *ctx, const struct culora_nn_swiglu_args *a, culora_stream stream)
{
    static const char op[] = "nn_swiglu_fwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    const int64_t n = a->n, c = a->c;
    CULORA_TRY(check_nc(ctx, op, n, c));
    CULORA_TRY(nn_check_s(ctx, op, "gate", a->gate, n, c, a->ldgate));
    CULORA_TRY(nn_check_s(ctx, op, "up", a->up, n, c, a->ldup));
    CULORA_TRY(nn_check_s(ctx, op, "y", a->y, n, c, a->ldy));
    const struct nn_view out = {"y", a->y, n, c, a->ldy, es, true};
    const struct nn_view ins[] = {
        {"gate", a->gate, n, c, a->ldgate, es, false},
        {"up", a->up, n, c, a->ldup, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, &out, 1, ins, 2));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->nn && ctx->be->nn->swiglu_fwd));
    return ctx->be->nn->swiglu_fwd(ctx->be, a, nn_stream(ctx, stream));
}

culora_status culora_nn_swiglu_bwd(culora_context *ctx, const struct culora_nn_swiglu_bwd_args *a,
                                   culora_stream stream)
{
    static const char op[] = "nn_swiglu_bwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    const int64_t n = a->n, c = a->c;
    CULORA_TRY(check_nc(ctx, op, n, c));
    CULORA_TRY(nn_check_s(ctx, op, "gate", a->gate, n, c, a->ldgate));
    CULORA_TRY(nn_check_s(ctx, op, "up", a->up, n, c, a->ldup));
    CULORA_TRY(nn_check_s(ctx, op, "dy", a->dy, n, c, a->lddy));
    CULORA_TRY(nn_check_s(ctx, op, "dgate", a->dgate, n, c, a->lddgate));
    CULORA_TRY(nn_check_s(ctx, op, "dup", a->dup, n, c, a->lddup));
    const struct nn_view outs[] = {
        {"dgate", a->dgate, n, c, a->lddgate, es, true},
        {"dup", a->dup, n, c, a->lddup, es, true},
    };
    const struct nn_view ins[] = {
        {"gate", a->gate, n, c, a->ldgate, es, false},
        {"up", a->up, n, c, a->ldup, es, false},
        {"dy", a->dy, n, c, a->lddy, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 2, ins, 3));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->nn && ctx->be->nn->swiglu_bwd));
    return ctx->be->nn->swiglu_bwd(ctx->be, a, nn_stream(ctx, stream));
}

culora_status culora_nn_add(culora_context *ctx, const struct culora_nn_add_args *a, culora_stream stream)
{
    static const char op[] = "nn_add";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    const int64_t n = a->n, c = a->c;
    CULORA_TRY(check_nc(ctx, op, n, c));
    CULORA_TRY(nn_check_s(ctx, op, "a", a->a, n, c, a->lda));
    CULORA_TRY(nn_check_s(ctx, op, "b", a->b, n, c, a->ldb));
    CULORA_TRY(nn_check_s(ctx, op, "out", a->out, n, c, a->ldout));
    const struct nn_view out = {"out", a->out, n, c, a->ldout, es, true};
    const struct nn_view ins[] = {
        {"a", a->a, n, c, a->lda, es, false},
        {"b", a->b, n, c, a->ldb, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, &out, 1, ins, 2));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->nn && ctx->be->nn->add));
    return ctx->be->nn->add(ctx->be, a, nn_stream(ctx, stream));
}
