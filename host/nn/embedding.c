/*
 * embedding.c — dispatchers of the embedding lookup and its backward (host/nn_ops.h).
 */
#include "nn_check.h"

culora_status culora_nn_embedding_fwd(culora_context *ctx, const struct culora_nn_embedding_args *a,
                                      culora_stream stream)
{
    static const char op[] = "nn_embedding_fwd";
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const size_t es = nn_es(ctx);
    CULORA_TRY(nn_check_min(ctx, op, "n", a->n, 1));
    CULORA_TRY(nn_check_min(ctx, op, "c", a->c, 1));
    CULORA_TRY(nn_check_min(ctx, op, "vocab", a->vocab, 1));
    CULORA_TRY(nn_check_vec(ctx, op, "tokens", a->tokens, a->n, sizeof(int32_t)));
    CULORA_TRY(nn_check_s(ctx, op, "wte", a->wte, a->vocab, a->c, a->ldwte));
    if (a->wpe != NULL) {
        CULORA_TRY(nn_check_min(ctx, op, "n_pos", a->n_pos, 1));
        CULORA_TRY(nn_check_vec(ctx, op, "pos", a->pos, a->n, sizeof(int32_t)));
        CULORA_TRY(nn_check_s(ctx, op, "wpe", a->wpe, a->n_pos, a->c, a->ldwpe));
    }
    CULORA_TRY(nn_check_s(ctx, op, "out", a->out, a->n, a->c, a->ldout));
    const struct nn_view out = {"out", a->out, a->n, a->c, a->ldout, es, false};
    const struct nn_view ins[] = {
        {"tokens", a->tokens, 1, a->n, a->n, 4, false},
        {"pos", a->wpe ? a->pos : NULL, 1, a->n, a->n, 4, false},
        {"wte", a->wte, a->vocab, a->c, a->ldwte, es, false},
        {"wpe", a->wpe, a->n_pos, a->c, a->ldwpe, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, &out, 1, ins, 4));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->nn && ctx->be->nn->embedding_fwd));
    return ctx->be->nn->embedding_fwd(ctx->be, a, nn_stream(ctx, stream));
}

static culora_status check_bwd_shapes(culora_context *ctx, const char *op, const struct culora_nn_embedding_bwd_args *a)
{
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    CULORA_TRY(nn_check_min(ctx, op, "n", a->n, 1));
    CULORA_TRY(nn_check_min(ctx, op, "c", a->c, 1));
    CULORA_TRY(nn_check_min(ctx, op, "vocab", a->vocab, 1));
    if (a->vocab > INT32_MAX || a->n > INT32_MAX)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: vocab and n must be below 2^31", op);
    if (a->dwpe != NULL)
        CULORA_TRY(nn_check_min(ctx, op, "n_pos", a->n_pos, 1));
    return CULORA_OK;
}

culora_status culora_nn_embedding_bwd_workspace(culora_context *ctx, const struct culora_nn_embedding_bwd_args *a,
                                                struct culora_nn_ws *ws)
{
    static const char op[] = "nn_embedding_bwd";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(check_bwd_shapes(ctx, op, a));
    if (ws == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: ws is NULL", op);
    ws->min_bytes = ws->full_bytes = 0;
    if (ctx->be->nn && ctx->be->nn->embedding_bwd_workspace)
        CULORA_TRY(ctx->be->nn->embedding_bwd_workspace(ctx->be, a, ws));
    return CULORA_OK;
}

culora_status culora_nn_embedding_bwd(culora_context *ctx, const struct culora_nn_embedding_bwd_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "nn_embedding_bwd";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(check_bwd_shapes(ctx, op, a));
    const size_t es = nn_es(ctx);
    CULORA_TRY(nn_check_vec(ctx, op, "tokens", a->tokens, a->n, sizeof(int32_t)));
    CULORA_TRY(nn_check_s(ctx, op, "dout", a->dout, a->n, a->c, a->lddout));
    if (a->dwte != NULL)
        CULORA_TRY(nn_check_f32(ctx, op, "dwte", a->dwte, a->vocab, a->c, a->lddwte));
    if (a->dwpe != NULL) {
        CULORA_TRY(nn_check_vec(ctx, op, "pos", a->pos, a->n, sizeof(int32_t)));
        CULORA_TRY(nn_check_f32(ctx, op, "dwpe", a->dwpe, a->n_pos, a->c, a->lddwpe));
    }
    const struct nn_view outs[] = {
        {"dwte", a->dwte, a->vocab, a->c, a->lddwte, 4, false},
        {"dwpe", a->dwpe, a->n_pos, a->c, a->lddwpe, 4, false},
    };
    const struct nn_view ins[] = {
        {"tokens", a->tokens, 1, a->n, a->n, 4, false},
        {"pos", a->dwpe ? a->pos : NULL, 1, a->n, a->n, 4, false},
        {"dout", a->dout, a->n, a->c, a->lddout, es, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, outs, 2, ins, 3));
    if (a->dwte == NULL && a->dwpe == NULL)
        return CULORA_OK; /* both tables frozen: nothing to do */
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->nn && ctx->be->nn->embedding_bwd));
    struct culora_nn_ws need = {0, 0};
    if (ctx->be->nn->embedding_bwd_workspace)
        CULORA_TRY(ctx->be->nn->embedding_bwd_workspace(ctx->be, a, &need));
    culora_workspace ws;
    CULORA_TRY(nn_workspace(ctx, op, workspace, workspace_bytes, &need, &ws));
    return ctx->be->nn->embedding_bwd(ctx->be, a, &ws, nn_stream(ctx, stream));
}
