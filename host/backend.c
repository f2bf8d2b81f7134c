/*
 * backend.c — the single place where op arguments are checked before a backend runs them.
 *
 * Every dispatcher: context usable → descriptor initialised → each matrix checked (NULL,
 * shape, leading dimension, alignment) → outputs do not overlap inputs → workspace large
 * enough → backend has the op → call it. Messages name the op and the argument.
 */
#include "backend.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Shared checks                                                                             */

culora_status culora_check_matrix(culora_context *ctx, const char *op, const char *name, const void *ptr,
                                  int64_t rows, int64_t cols, int64_t ld, culora_dtype dtype)
{
    size_t esize = culora_dtype_size(dtype);
    if (ptr == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, name);
    if (rows < 1 || cols < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s has shape [%lld,%lld]; both must be >= 1", op,
                           name, (long long)rows, (long long)cols);
    if (ld < cols)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: leading dimension of %s is %lld, smaller than its %lld columns", op, name,
                           (long long)ld, (long long)cols);
    /* Storage-dtype matrices (activations, weights) need the backend's row alignment; fp32
     * gradient buffers on a bf16 backend are small and may be dense. A single row (a bias vector)
     * has no second row to align: its leading dimension is irrelevant. */
    int64_t align = dtype == ctx->be->dtype ? ctx->be->ld_align : 1;
    if (align > 1 && rows > 1 && ld % align != 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: leading dimension of %s is %lld; the %s backend needs a multiple of %lld "
                           "elements (%lld bytes)",
                           op, name, (long long)ld, ctx->be->iface->name, (long long)align,
                           (long long)(align * (int64_t)esize));
    if ((uintptr_t)ptr % esize != 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s (%p) is not aligned to its %zu-byte %s elements",
                           op, name, ptr, esize, culora_dtype_name(dtype));
    return CULORA_OK;
}

bool culora_views_overlap(const void *p1, int64_t rows1, int64_t cols1, int64_t ld1,
                          const void *p2, int64_t rows2, int64_t cols2, int64_t ld2, size_t esize)
{
    if (p1 == NULL || p2 == NULL)
        return false;
    uintptr_t a1 = (uintptr_t)p1, a2 = (uintptr_t)p2;
    uintptr_t e1 = a1 + (uintptr_t)((rows1 - 1) * ld1 + cols1) * esize;
    uintptr_t e2 = a2 + (uintptr_t)((rows2 - 1) * ld2 + cols2) * esize;
    if (e1 <= a2 || e2 <= a1)
        return false; /* disjoint byte ranges */
    if (ld1 != ld2)
        return true; /* conservative */
    /* Same leading dimension: compare row and column intervals on the shared grid. */
    uintptr_t base = a1 < a2 ? a1 : a2;
    if ((a1 - base) % esize != 0 || (a2 - base) % esize != 0)
        return true;
    int64_t o1 = (int64_t)((a1 - base) / esize), o2 = (int64_t)((a2 - base) / esize);
    int64_t r1 = o1 / ld1, c1 = o1 % ld1, r2 = o2 / ld2, c2 = o2 % ld2;
    if (c1 + cols1 > ld1 || c2 + cols2 > ld2)
        return true; /* rows wrap: conservative */
    bool rows_meet = r1 < r2 + rows2 && r2 < r1 + rows1;
    bool cols_meet = c1 < c2 + cols2 && c2 < c1 + cols1;
    return rows_meet && cols_meet;
}

culora_status culora_resolve_workspace(culora_context *ctx, const char *op, void *workspace,
                                       size_t workspace_bytes, size_t need, culora_workspace *out)
{
    if (workspace == NULL) {
        workspace = ctx->workspace;
        workspace_bytes = ctx->workspace_bytes;
    }
    if (workspace_bytes < need)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: workspace of %zu bytes is smaller than the %zu bytes this call needs "
                           "(see culora_lora_linear_workspace_size)",
                           op, workspace_bytes, need);
    out->ptr = workspace;
    out->bytes = workspace_bytes;
    return CULORA_OK;
}

culora_status culora_need_op(culora_context *ctx, const char *op, bool present)
{
    if (!present)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: not implemented by the %s backend", op,
                           ctx->be->iface->name);
    return CULORA_OK;
}

/* A named view, for the overlap checks. */
struct view {
    const char *name;
    const void *p;
    int64_t rows, cols, ld;
    size_t esize;
};

static culora_status no_overlap(culora_context *ctx, const char *op, const struct view *out,
                                const struct view *others, int n_others)
{
    for (int i = 0; i < n_others; i++) {
        const struct view *o = &others[i];
        if (o->p == NULL || out->p == NULL)
            continue;
        if (out->esize != o->esize) { /* different element types: plain byte ranges */
            uintptr_t a1 = (uintptr_t)out->p, a2 = (uintptr_t)o->p;
            uintptr_t e1 = a1 + (uintptr_t)((out->rows - 1) * out->ld + out->cols) * out->esize;
            uintptr_t e2 = a2 + (uintptr_t)((o->rows - 1) * o->ld + o->cols) * o->esize;
            if (e1 <= a2 || e2 <= a1)
                continue;
        } else if (!culora_views_overlap(out->p, out->rows, out->cols, out->ld, o->p, o->rows, o->cols, o->ld,
                                         out->esize)) {
            continue;
        }
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: output %s overlaps %s", op, out->name, o->name);
    }
    return CULORA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* LoRA linear                                                                               */

float culora_lora_scaling(const culora_lora_linear_desc *desc)
{
    if (desc == NULL || desc->r < 1)
        return 0.0f;
    if (desc->flags & CULORA_LORA_RSLORA)
        return (float)((double)desc->alpha / sqrt((double)desc->r));
    return (float)((double)desc->alpha / (double)desc->r);
}

#define CULORA_LORA_KNOWN_FLAGS                                                                           \
    (CULORA_LORA_RSLORA | CULORA_LORA_FREEZE_A | CULORA_LORA_W0_TRANSPOSED | CULORA_LORA_ACCUMULATE_DX | \
     CULORA_LORA_REQUIRE_FUSED)

static culora_status check_desc(culora_context *ctx, const char *op, const culora_lora_linear_desc *d,
                                bool need_m)
{
    if (d == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc is NULL", op);
    if (d->struct_size != sizeof(culora_lora_linear_desc) || d->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: desc not initialised with CULORA_LORA_LINEAR_DESC_INIT", op);
    if (need_m && d->m < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->m = %lld must be >= 1", op, (long long)d->m);
    if (d->k < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->k = %lld must be >= 1", op, (long long)d->k);
    if (d->d < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->d = %lld must be >= 1", op, (long long)d->d);
    if (d->r < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->r = %d must be >= 1", op, (int)d->r);
    if (!isfinite(d->alpha))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->alpha is not finite", op);
    if (!(d->dropout >= 0.0f && d->dropout < 1.0f))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->dropout = %g must be in [0, 1)", op,
                           (double)d->dropout);
    if (d->flags & ~(uint32_t)CULORA_LORA_KNOWN_FLAGS)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->flags has unknown bits 0x%x", op,
                           d->flags & ~(uint32_t)CULORA_LORA_KNOWN_FLAGS);
    if (culora_dtype_size(d->dtype) == 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->dtype = %d is not a culora_dtype", op,
                           (int)d->dtype);
    if (d->dtype != ctx->be->dtype)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: the %s backend stores %s; desc->dtype is %s (see culora_context_compute_dtype)",
                           op, ctx->be->iface->name, culora_dtype_name(ctx->be->dtype), culora_dtype_name(d->dtype));
    return CULORA_OK;
}

/* W0's stored shape. */
static void w0_shape(const culora_lora_linear_desc *d, int64_t *rows, int64_t *cols)
{
    bool t = (d->flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    *rows = t ? d->k : d->d;
    *cols = t ? d->d : d->k;
}

culora_status culora_lora_linear_workspace_size(culora_context *ctx, const culora_lora_linear_desc *desc,
                                                size_t *fwd_bytes, size_t *bwd_bytes)
{
    static const char op[] = "culora_lora_linear_workspace_size";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(check_desc(ctx, op, desc, true));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->iface->lora_linear_workspace != NULL));
    size_t f = 0, b = 0;
    CULORA_TRY(ctx->be->iface->lora_linear_workspace(ctx->be, desc, &f, &b));
    if (fwd_bytes)
        *fwd_bytes = f;
    if (bwd_bytes)
        *bwd_bytes = b;
    return CULORA_OK;
}

culora_status culora_check_lora_fwd_operands(culora_context *ctx, const char *op, const culora_lora_linear_desc *desc,
                                            const culora_lora_linear_fwd_args *a)
{
    const culora_dtype dt = desc->dtype;
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    CULORA_TRY(culora_check_matrix(ctx, op, "x", a->x, m, k, a->ldx, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "a", a->a, r, k, a->lda, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "b", a->b, d, r, a->ldb, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "v", a->v, m, r, a->ldv, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "y", a->y, m, d, a->ldy, dt));
    if (a->bias != NULL)
        CULORA_TRY(culora_check_matrix(ctx, op, "bias", a->bias, 1, d, d, dt));
    return CULORA_OK;
}

culora_status culora_check_lora_bwd_operands(culora_context *ctx, const char *op, const culora_lora_linear_desc *desc,
                                            const culora_lora_linear_bwd_args *a)
{
    const culora_dtype dt = desc->dtype;
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    CULORA_TRY(culora_check_matrix(ctx, op, "x", a->x, m, k, a->ldx, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "a", a->a, r, k, a->lda, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "b", a->b, d, r, a->ldb, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "v", a->v, m, r, a->ldv, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "dy", a->dy, m, d, a->lddy, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "du", a->du, m, r, a->lddu, dt));
    if (a->dx != NULL)
        CULORA_TRY(culora_check_matrix(ctx, op, "dx", a->dx, m, k, a->lddx, dt));
    if (!(desc->flags & CULORA_LORA_FREEZE_A))
        CULORA_TRY(culora_check_matrix(ctx, op, "da", a->da, r, k, a->ldda, CULORA_DTYPE_F32));
    CULORA_TRY(culora_check_matrix(ctx, op, "db", a->db, d, r, a->lddb, CULORA_DTYPE_F32));
    return CULORA_OK;
}

culora_status culora_lora_linear_forward(culora_context *ctx, const culora_lora_linear_desc *desc,
                                         const culora_lora_linear_fwd_args *a, void *workspace,
                                         size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "culora_lora_linear_forward";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(check_desc(ctx, op, desc, true));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const culora_dtype dt = desc->dtype;
    const size_t es = culora_dtype_size(dt);
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    int64_t wr, wc;
    w0_shape(desc, &wr, &wc);
    CULORA_TRY(culora_check_matrix(ctx, op, "w0", a->w0, wr, wc, a->ldw0, dt));
    CULORA_TRY(culora_check_lora_fwd_operands(ctx, op, desc, a));

    const struct view inputs[] = {
        {"x", a->x, m, k, a->ldx, es},   {"w0", a->w0, wr, wc, a->ldw0, es}, {"a", a->a, r, k, a->lda, es},
        {"b", a->b, d, r, a->ldb, es},   {"bias", a->bias, 1, d, d, es},
    };
    const struct view y = {"y", a->y, m, d, a->ldy, es}, v = {"v", a->v, m, r, a->ldv, es};
    CULORA_TRY(no_overlap(ctx, op, &y, inputs, 5));
    CULORA_TRY(no_overlap(ctx, op, &v, inputs, 5));
    CULORA_TRY(no_overlap(ctx, op, &y, &v, 1));

    CULORA_TRY(culora_need_op(ctx, op, ctx->be->iface->lora_linear_fwd != NULL));
    size_t need = 0;
    CULORA_TRY(ctx->be->iface->lora_linear_workspace(ctx->be, desc, &need, NULL));
    culora_workspace ws;
    CULORA_TRY(culora_resolve_workspace(ctx, op, workspace, workspace_bytes, need, &ws));
    return ctx->be->iface->lora_linear_fwd(ctx->be, desc, a, &ws, stream ? stream : ctx->be->stream);
}

culora_status culora_lora_linear_backward(culora_context *ctx, const culora_lora_linear_desc *desc,
                                          const culora_lora_linear_bwd_args *a, void *workspace,
                                          size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "culora_lora_linear_backward";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(check_desc(ctx, op, desc, true));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    const culora_dtype dt = desc->dtype;
    const size_t es = culora_dtype_size(dt);
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    const bool freeze_a = (desc->flags & CULORA_LORA_FREEZE_A) != 0;
    int64_t wr, wc;
    w0_shape(desc, &wr, &wc);
    CULORA_TRY(culora_check_matrix(ctx, op, "w0", a->w0, wr, wc, a->ldw0, dt));
    CULORA_TRY(culora_check_lora_bwd_operands(ctx, op, desc, a));

    const struct view inputs[] = {
        {"x", a->x, m, k, a->ldx, es},  {"w0", a->w0, wr, wc, a->ldw0, es}, {"a", a->a, r, k, a->lda, es},
        {"b", a->b, d, r, a->ldb, es},  {"v", a->v, m, r, a->ldv, es},      {"dy", a->dy, m, d, a->lddy, es},
    };
    const struct view du = {"du", a->du, m, r, a->lddu, es}, dx = {"dx", a->dx, m, k, a->lddx, es};
    const struct view da = {"da", freeze_a ? NULL : a->da, r, k, a->ldda, 4}, db = {"db", a->db, d, r, a->lddb, 4};
    const struct view outs[] = {du, dx, da, db};
    for (int i = 0; i < 4; i++) {
        CULORA_TRY(no_overlap(ctx, op, &outs[i], inputs, 6));
        CULORA_TRY(no_overlap(ctx, op, &outs[i], outs + i + 1, 3 - i));
    }

    CULORA_TRY(culora_need_op(ctx, op, ctx->be->iface->lora_linear_bwd != NULL));
    size_t need = 0;
    CULORA_TRY(ctx->be->iface->lora_linear_workspace(ctx->be, desc, NULL, &need));
    culora_workspace ws;
    CULORA_TRY(culora_resolve_workspace(ctx, op, workspace, workspace_bytes, need, &ws));
    return ctx->be->iface->lora_linear_bwd(ctx->be, desc, a, &ws, stream ? stream : ctx->be->stream);
}

static culora_status lora_merge_dispatch(culora_context *ctx, const char *op, float sign,
                                         const culora_lora_linear_desc *desc, void *w0, int64_t ldw0,
                                         const void *a, int64_t lda, const void *b, int64_t ldb,
                                         culora_stream stream)
{
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(check_desc(ctx, op, desc, false));
    const culora_dtype dt = desc->dtype;
    const size_t es = culora_dtype_size(dt);
    int64_t wr, wc;
    w0_shape(desc, &wr, &wc);
    CULORA_TRY(culora_check_matrix(ctx, op, "w0", w0, wr, wc, ldw0, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "a", a, desc->r, desc->k, lda, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "b", b, desc->d, desc->r, ldb, dt));
    const struct view w = {"w0", w0, wr, wc, ldw0, es};
    const struct view in[] = {{"a", a, desc->r, desc->k, lda, es}, {"b", b, desc->d, desc->r, ldb, es}};
    CULORA_TRY(no_overlap(ctx, op, &w, in, 2));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->iface->lora_merge != NULL));
    culora_workspace ws;
    CULORA_TRY(culora_resolve_workspace(ctx, op, NULL, 0, 0, &ws));
    const struct culora_lora_merge_args args = {desc, sign, w0, ldw0, a, lda, b, ldb};
    return ctx->be->iface->lora_merge(ctx->be, &args, &ws, stream ? stream : ctx->be->stream);
}

culora_status culora_lora_merge(culora_context *ctx, const culora_lora_linear_desc *desc, void *w0,
                                int64_t ldw0, const void *a, int64_t lda, const void *b, int64_t ldb,
                                culora_stream stream)
{
    return lora_merge_dispatch(ctx, "culora_lora_merge", 1.0f, desc, w0, ldw0, a, lda, b, ldb, stream);
}

culora_status culora_lora_unmerge(culora_context *ctx, const culora_lora_linear_desc *desc, void *w0,
                                  int64_t ldw0, const void *a, int64_t lda, const void *b, int64_t ldb,
                                  culora_stream stream)
{
    return lora_merge_dispatch(ctx, "culora_lora_unmerge", -1.0f, desc, w0, ldw0, a, lda, b, ldb, stream);
}

/* ---------------------------------------------------------------------------------------- */
/* Internal ops                                                                              */

culora_status culora_op_gemm(culora_context *ctx, const struct culora_gemm_args *g, void *workspace,
                             size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "gemm";
    CULORA_TRY(culora_context_check(ctx));
    if (g == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    if (g->m < 1 || g->n < 1 || g->k < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: m, n, k = %lld, %lld, %lld must be >= 1", op,
                           (long long)g->m, (long long)g->n, (long long)g->k);
    CULORA_TRY(culora_check_matrix(ctx, op, "a", g->a, g->trans_a ? g->k : g->m, g->trans_a ? g->m : g->k, g->lda,
                                   g->a_dtype));
    CULORA_TRY(culora_check_matrix(ctx, op, "b", g->b, g->trans_b ? g->n : g->k, g->trans_b ? g->k : g->n, g->ldb,
                                   g->b_dtype));
    CULORA_TRY(culora_check_matrix(ctx, op, "c", g->c, g->m, g->n, g->ldc, g->c_dtype));
    if (g->bias != NULL)
        CULORA_TRY(culora_check_matrix(ctx, op, "bias", g->bias, 1, g->n, g->n, g->c_dtype));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->iface->gemm != NULL));
    culora_workspace ws;
    CULORA_TRY(culora_resolve_workspace(ctx, op, workspace, workspace_bytes, 0, &ws));
    return ctx->be->iface->gemm(ctx->be, g, &ws, stream ? stream : ctx->be->stream);
}

culora_status culora_op_axpby(culora_context *ctx, const struct culora_axpby_args *g, culora_stream stream)
{
    static const char op[] = "axpby";
    CULORA_TRY(culora_context_check(ctx));
    if (g == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    CULORA_TRY(culora_check_matrix(ctx, op, "x", g->x, g->m, g->n, g->ldx, ctx->be->dtype));
    CULORA_TRY(culora_check_matrix(ctx, op, "y", g->y, g->m, g->n, g->ldy, ctx->be->dtype));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->iface->axpby != NULL));
    return ctx->be->iface->axpby(ctx->be, g, stream ? stream : ctx->be->stream);
}
