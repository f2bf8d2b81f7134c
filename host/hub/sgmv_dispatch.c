/*
 * sgmv_dispatch.c — the checking dispatcher of the segmented LoRA op (host/sgmv_ops.h): every
 * argument is checked here, so the CPU reference (host/cpu/sgmv.c) and the CUDA kernels
 * (kernels/sgmv.cu) may assume valid shapes, boundaries and non-overlapping outputs.
 */
#include "../sgmv_ops.h"

#include <math.h>
#include <stdint.h>

static const char op[] = "sgmv";

/* The span of bytes every segment's [rows, cols] matrix at base + i·stride covers. */
static void strided_span(const void *base, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int32_t count,
                         size_t es, uintptr_t *begin, uintptr_t *end)
{
    *begin = (uintptr_t)base;
    *end = *begin + (uintptr_t)(((int64_t)(count - 1) * stride + (rows - 1) * ld + cols) * (int64_t)es);
}

static bool spans_meet(uintptr_t b1, uintptr_t e1, uintptr_t b2, uintptr_t e2) { return b1 < e2 && b2 < e1; }

static culora_status check_strided(culora_context *ctx, const char *name, const void *p, int64_t rows, int64_t cols,
                                   int64_t ld, int64_t stride, culora_dtype dt)
{
    CULORA_TRY(culora_check_matrix(ctx, op, name, p, rows, cols, ld, dt));
    if (stride < 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: stride of %s is %lld; it must be >= 0", op, name,
                           (long long)stride);
    if (stride % ctx->be->ld_align != 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: stride of %s is %lld; the %s backend needs a multiple of %lld elements", op, name,
                           (long long)stride, ctx->be->iface->name, (long long)ctx->be->ld_align);
    return CULORA_OK;
}

culora_status culora_op_sgmv(culora_context *ctx, const struct culora_sgmv_args *a, culora_stream stream)
{
    CULORA_TRY(culora_context_check(ctx));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    if (a->m < 1 || a->k < 1 || a->d < 1 || a->r < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: m %lld, k %lld, d %lld, r %d must all be >= 1", op,
                           (long long)a->m, (long long)a->k, (long long)a->d, (int)a->r);
    if (a->n_segments < 1 || a->n_segments > CULORA_SGMV_MAX_SEGMENTS)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: n_segments %d outside [1, %d]", op, (int)a->n_segments,
                           CULORA_SGMV_MAX_SEGMENTS);
    if (a->seg == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: seg is NULL", op);
    if (a->seg[0] != 0 || a->seg[a->n_segments] != a->m)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: segments span rows [%lld, %lld); they must span [0, %lld)",
                           op, (long long)a->seg[0], (long long)a->seg[a->n_segments], (long long)a->m);
    for (int32_t i = 0; i < a->n_segments; i++)
        if (a->seg[i + 1] < a->seg[i])
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: segment %d ends at row %lld before it starts (%lld)",
                               op, (int)i, (long long)a->seg[i + 1], (long long)a->seg[i]);
    if (!isfinite(a->scale))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: scale is not finite", op);

    const culora_dtype S = ctx->be->dtype;
    const size_t es = culora_dtype_size(S);
    CULORA_TRY(culora_check_matrix(ctx, op, "x", a->x, a->m, a->k, a->ldx, S));
    CULORA_TRY(check_strided(ctx, "a", a->a, a->r, a->k, a->lda, a->stride_a, S));
    CULORA_TRY(check_strided(ctx, "b", a->b, a->d, a->r, a->ldb, a->stride_b, S));
    CULORA_TRY(culora_check_matrix(ctx, op, "v", a->v, a->m, a->r, a->ldv, S));
    CULORA_TRY(culora_check_matrix(ctx, op, "y", a->y, a->m, a->d, a->ldy, S));

    /* Outputs against every input and each other: x, v and y exactly (a v stored in spare columns
     * of x's rows is fine), the adapters by the byte spans covering every segment's matrix. */
    uintptr_t ab, ae, bb, be_, vb, ve, yb, ye;
    strided_span(a->a, a->r, a->k, a->lda, a->stride_a, a->n_segments, es, &ab, &ae);
    strided_span(a->b, a->d, a->r, a->ldb, a->stride_b, a->n_segments, es, &bb, &be_);
    strided_span(a->v, a->m, a->r, a->ldv, 0, 1, es, &vb, &ve);
    strided_span(a->y, a->m, a->d, a->ldy, 0, 1, es, &yb, &ye);
    if (culora_views_overlap(a->v, a->m, a->r, a->ldv, a->x, a->m, a->k, a->ldx, es) || spans_meet(vb, ve, ab, ae) ||
        spans_meet(vb, ve, bb, be_))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: output v overlaps an input (x, a or b)", op);
    if (culora_views_overlap(a->y, a->m, a->d, a->ldy, a->x, a->m, a->k, a->ldx, es) ||
        culora_views_overlap(a->y, a->m, a->d, a->ldy, a->v, a->m, a->r, a->ldv, es) || spans_meet(yb, ye, ab, ae) ||
        spans_meet(yb, ye, bb, be_))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: output y overlaps x, a, b or v", op);

    CULORA_TRY(culora_need_op(ctx, op, ctx->be->sgmv != NULL && ctx->be->sgmv->fwd != NULL));
    return ctx->be->sgmv->fwd(ctx->be, a, stream != NULL ? stream : ctx->be->stream);
}
