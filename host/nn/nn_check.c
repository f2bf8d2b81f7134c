/*
 * nn_check.c — argument checks shared by the nn dispatchers.
 */
#include "nn_check.h"

#include <stdint.h>

culora_status nn_check_min(culora_context *ctx, const char *op, const char *name, int64_t value, int64_t min)
{
    if (value < min)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s = %lld must be >= %lld", op, name, (long long)value,
                           (long long)min);
    return CULORA_OK;
}

culora_status nn_check_s(culora_context *ctx, const char *op, const char *name, const void *p, int64_t rows,
                         int64_t cols, int64_t ld)
{
    return culora_check_matrix(ctx, op, name, p, rows, cols, ld, ctx->be->dtype);
}

culora_status nn_check_f32(culora_context *ctx, const char *op, const char *name, const void *p, int64_t rows,
                           int64_t cols, int64_t ld)
{
    return culora_check_matrix(ctx, op, name, p, rows, cols, ld, CULORA_DTYPE_F32);
}

culora_status nn_check_vec(culora_context *ctx, const char *op, const char *name, const void *p, int64_t n,
                           size_t esize)
{
    if (p == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, name);
    if (n < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s has %lld elements; must be >= 1", op, name,
                           (long long)n);
    if ((uintptr_t)p % esize != 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s (%p) is not aligned to its %zu-byte elements", op,
                           name, p, esize);
    return CULORA_OK;
}

static bool byte_ranges_meet(const struct nn_view *a, const struct nn_view *b)
{
    uintptr_t a1 = (uintptr_t)a->p, b1 = (uintptr_t)b->p;
    uintptr_t a2 = a1 + (uintptr_t)((a->rows - 1) * a->ld + a->cols) * a->esize;
    uintptr_t b2 = b1 + (uintptr_t)((b->rows - 1) * b->ld + b->cols) * b->esize;
    return a1 < b2 && b1 < a2;
}

static bool views_meet(const struct nn_view *a, const struct nn_view *b)
{
    if (a->p == NULL || b->p == NULL)
        return false;
    if (a->esize != b->esize)
        return byte_ranges_meet(a, b);
    return culora_views_overlap(a->p, a->rows, a->cols, a->ld, b->p, b->rows, b->cols, b->ld, a->esize);
}

static bool exact_alias(const struct nn_view *o, const struct nn_view *i)
{
    return o->p == i->p && o->ld == i->ld && o->rows == i->rows && o->cols == i->cols && o->esize == i->esize;
}

culora_status nn_no_overlap(culora_context *ctx, const char *op, const struct nn_view *outs, int n_outs,
                            const struct nn_view *ins, int n_ins)
{
    for (int o = 0; o < n_outs; o++) {
        for (int i = 0; i < n_ins; i++) {
            if (!views_meet(&outs[o], &ins[i]))
                continue;
            if (outs[o].alias && exact_alias(&outs[o], &ins[i]))
                continue;
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: output %s overlaps %s%s", op, outs[o].name,
                               ins[i].name, outs[o].alias ? " (only an exact alias is allowed)" : "");
        }
        for (int j = o + 1; j < n_outs; j++)
            if (views_meet(&outs[o], &outs[j]))
                return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: output %s overlaps output %s", op,
                                   outs[o].name, outs[j].name);
    }
    return CULORA_OK;
}

culora_status nn_workspace(culora_context *ctx, const char *op, void *workspace, size_t workspace_bytes,
                           const struct culora_nn_ws *need, culora_workspace *out)
{
    if (workspace == NULL) {
        workspace = ctx->workspace;
        workspace_bytes = ctx->workspace_bytes;
    }
    if (workspace_bytes < need->min_bytes)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: workspace of %zu bytes is smaller than the %zu bytes this call needs (see %s_workspace)",
                           op, workspace_bytes, need->min_bytes, op);
    out->ptr = workspace;
    out->bytes = workspace_bytes;
    return CULORA_OK;
}
