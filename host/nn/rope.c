/*
 * rope.c — dispatchers of rotary position embedding (host/nn_ops.h) and the inv_freq table.
 */
#include "nn_check.h"

#include <math.h>

void culora_nn_rope_inv_freq(float theta, int32_t head_dim, float *inv_freq)
{
    /* HF LlamaRotaryEmbedding: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all fp32. */
    for (int32_t j = 0; 2 * j < head_dim; j++) {
        const float e = (float)(2 * j) / (float)head_dim;
        inv_freq[j] = 1.0f / powf(theta, e);
    }
}

static culora_status rope_dispatch(culora_context *ctx, const char *op, const struct culora_nn_rope_args *a,
                                   bool backward, culora_stream stream)
{
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    CULORA_TRY(nn_check_min(ctx, op, "n", a->n, 1));
    CULORA_TRY(nn_check_min(ctx, op, "n_heads", a->n_heads, 1));
    CULORA_TRY(nn_check_min(ctx, op, "head_dim", a->head_dim, 2));
    if (a->head_dim % 2 != 0 || a->head_dim > CULORA_NN_ROPE_MAX_DIM)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: head_dim = %d must be even and <= %d", op,
                           (int)a->head_dim, CULORA_NN_ROPE_MAX_DIM);
    if (a->inv_freq == NULL && (!isfinite(a->theta) || !(a->theta > 1.0f)))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: theta = %g must be finite and > 1", op,
                           (double)a->theta);
    if (a->inv_freq != NULL)
        for (int32_t j = 0; 2 * j < a->head_dim; j++)
            if (!isfinite(a->inv_freq[j]))
                return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: inv_freq[%d] is not finite", op, (int)j);
    const int64_t n = a->n, w = (int64_t)a->n_heads * a->head_dim;
    const size_t es = nn_es(ctx);
    CULORA_TRY(nn_check_vec(ctx, op, "pos", a->pos, n, sizeof(int32_t)));
    CULORA_TRY(nn_check_s(ctx, op, "x", a->x, n, w, a->ldx));
    CULORA_TRY(nn_check_s(ctx, op, "out", a->out, n, w, a->ldout));
    const struct nn_view out = {"out", a->out, n, w, a->ldout, es, true};
    const struct nn_view ins[] = {
        {"x", a->x, n, w, a->ldx, es, false},
        {"pos", a->pos, 1, n, n, 4, false},
    };
    CULORA_TRY(nn_no_overlap(ctx, op, &out, 1, ins, 2));
    const struct culora_nn_i *nn = ctx->be->nn;
    CULORA_TRY(culora_need_op(ctx, op, nn && (backward ? nn->rope_bwd : nn->rope_fwd)));
    return (backward ? nn->rope_bwd : nn->rope_fwd)(ctx->be, a, nn_stream(ctx, stream));
}

culora_status culora_nn_rope_fwd(culora_context *ctx, const struct culora_nn_rope_args *a, culora_stream stream)
{
    return rope_dispatch(ctx, "nn_rope_fwd", a, false, stream);
}

culora_status culora_nn_rope_bwd(culora_context *ctx, const struct culora_nn_rope_args *a, culora_stream stream)
{
    return rope_dispatch(ctx, "nn_rope_bwd", a, true, stream);
}
