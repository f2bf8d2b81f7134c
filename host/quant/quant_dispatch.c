/*
 * quant_dispatch.c — the checking dispatchers of culora_quant.h's ops. Same order as
 * host/backend.c: context usable → descriptors initialised and consistent → every buffer checked
 * (NULL, shape, leading dimension, alignment) → outputs do not overlap inputs → workspace large
 * enough → the backend has the op → call it. Messages name the op and the argument.
 */
#include "../quant_ops.h"
#include "quant_internal.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Checks                                                                                    */

/* A named view for overlap checks: [rows, cols] with leading dimension ld, esize-byte elements.
 * Quantized-weight buffers are one-row byte views. */
struct range {
    const char *name;
    const void *p;
    int64_t rows, cols, ld;
    size_t esize;
    size_t bytes;
};

static struct range matrix_range(const char *name, const void *p, int64_t rows, int64_t cols, int64_t ld,
                                 size_t esize)
{
    struct range r = {name, p, rows, cols, ld, esize, p ? (size_t)((rows - 1) * ld + cols) * esize : 0};
    return r;
}

static struct range byte_range(const char *name, const void *p, size_t bytes)
{
    struct range r = {name, p, 1, (int64_t)bytes, (int64_t)bytes, 1, bytes};
    return r;
}

/* As host/backend.c: exact for two views of one element size and leading dimension (x and v side
 * by side in one buffer are fine), byte ranges otherwise. */
static culora_status no_overlap(culora_context *ctx, const char *op, const struct range *out,
                                const struct range *others, int n)
{
    for (int i = 0; i < n; i++) {
        const struct range *o = &others[i];
        if (out->p == NULL || o->p == NULL || out->bytes == 0 || o->bytes == 0)
            continue;
        const uintptr_t a1 = (uintptr_t)out->p, a2 = (uintptr_t)o->p;
        if (a1 + out->bytes <= a2 || a2 + o->bytes <= a1)
            continue;
        if (out->esize == o->esize &&
            !culora_views_overlap(out->p, out->rows, out->cols, out->ld, o->p, o->rows, o->cols, o->ld, out->esize))
            continue;
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: output %s overlaps %s", op, out->name, o->name);
    }
    return CULORA_OK;
}

/* A weight-like matrix whose leading dimension need not follow the backend's row alignment. */
static culora_status check_plain_matrix(culora_context *ctx, const char *op, const char *name, const void *p,
                                        int64_t rows, int64_t cols, int64_t ld, culora_dtype dt)
{
    if (dt != CULORA_DTYPE_F32 && dt != CULORA_DTYPE_BF16)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s dtype is %s; F32 or BF16 are accepted", op, name,
                           culora_dtype_name(dt));
    if (p == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, name);
    if (ld < cols)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: leading dimension of %s is %lld, smaller than its %lld "
                                                        "columns", op, name, (long long)ld, (long long)cols);
    if ((uintptr_t)p % culora_dtype_size(dt) != 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s (%p) is not aligned to its %zu-byte elements", op,
                           name, p, culora_dtype_size(dt));
    (void)rows;
    return CULORA_OK;
}

/* Every buffer the layout names is present and aligned. Fills ranges[0..*n). */
static culora_status check_qweight(culora_context *ctx, const char *op, const char *name, const culora_quant_desc *d,
                                   const culora_quant_weight *q, struct range ranges[6], int *n)
{
    if (q == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, name);
    culora_quant_layout lay;
    culora_quant_layout_of(d, &lay);
    const struct {
        const char *member;
        const void *p;
        size_t bytes, align;
    } bufs[6] = {
        {"data", q->data, lay.data_bytes, 1},
        {"absmax", q->absmax, lay.absmax_bytes, 4},
        {"absmax_q", q->absmax_q, lay.absmax_q_bytes, 1},
        {"nested_absmax", q->nested_absmax, lay.nested_absmax_bytes, 4},
        {"nested_code", q->nested_code, lay.nested_code_bytes, 4},
        {"offset", q->offset, lay.offset_bytes, 4},
    };
    *n = 0;
    for (int i = 0; i < 6; i++) {
        if (bufs[i].bytes == 0)
            continue;
        if (bufs[i].p == NULL)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s->%s is NULL; the %s%s format needs it", op, name,
                               bufs[i].member, culora_quant_format_name(d->format),
                               culora_quant_is_dq(d) ? " double-quantized" : "");
        if ((uintptr_t)bufs[i].p % bufs[i].align != 0)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s->%s (%p) is not %zu-byte aligned", op, name,
                               bufs[i].member, bufs[i].p, bufs[i].align);
        ranges[(*n)++] = byte_range(bufs[i].member, bufs[i].p, bufs[i].bytes);
    }
    return CULORA_OK;
}

/* The int8 product accumulates 127·127·cols in int32. */
static culora_status check_int8_k(culora_context *ctx, const char *op, const culora_quant_desc *d)
{
    if (d->format == CULORA_QUANT_INT8 && d->cols >= 133152)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: int8 weight with %lld columns: the int32 accumulator overflows at 133152", op,
                           (long long)d->cols);
    return CULORA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Quantize / dequantize / copy                                                               */

culora_status culora_quantize_workspace_size(culora_context *ctx, const culora_quant_desc *desc, size_t *bytes)
{
    static const char op[] = "culora_quantize_workspace_size";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(culora_quant_check_desc(ctx, op, desc));
    if (bytes == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: bytes is NULL", op);
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->quant && ctx->be->quant->quantize_workspace));
    return ctx->be->quant->quantize_workspace(ctx->be, desc, bytes);
}

culora_status culora_quantize(culora_context *ctx, const culora_quant_desc *desc, const void *w, int64_t ldw,
                              culora_dtype w_dtype, const culora_quant_weight *q, void *workspace,
                              size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "culora_quantize";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(culora_quant_check_desc(ctx, op, desc));
    CULORA_TRY(check_plain_matrix(ctx, op, "w", w, desc->rows, desc->cols, ldw, w_dtype));
    struct range outs[6];
    int n_out = 0;
    CULORA_TRY(check_qweight(ctx, op, "q", desc, q, outs, &n_out));
    const struct range in = matrix_range("w", w, desc->rows, desc->cols, ldw, culora_dtype_size(w_dtype));
    for (int i = 0; i < n_out; i++) {
        CULORA_TRY(no_overlap(ctx, op, &outs[i], &in, 1));
        CULORA_TRY(no_overlap(ctx, op, &outs[i], outs + i + 1, n_out - i - 1));
    }
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->quant && ctx->be->quant->quantize && ctx->be->quant->quantize_workspace));
    size_t need = 0;
    CULORA_TRY(ctx->be->quant->quantize_workspace(ctx->be, desc, &need));
    culora_workspace ws;
    CULORA_TRY(culora_resolve_workspace(ctx, op, workspace, workspace_bytes, need, &ws));
    const struct culora_quantize_args a = {desc, w, ldw, w_dtype, q};
    return ctx->be->quant->quantize(ctx->be, &a, &ws, stream ? stream : ctx->be->stream);
}

culora_status culora_dequantize(culora_context *ctx, const culora_quant_desc *desc, const culora_quant_weight *q,
                                void *out, int64_t ldout, culora_dtype out_dtype, culora_stream stream)
{
    static const char op[] = "culora_dequantize";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(culora_quant_check_desc(ctx, op, desc));
    struct range ins[6];
    int n_in = 0;
    CULORA_TRY(check_qweight(ctx, op, "q", desc, q, ins, &n_in));
    CULORA_TRY(check_plain_matrix(ctx, op, "out", out, desc->rows, desc->cols, ldout, out_dtype));
    const struct range o = matrix_range("out", out, desc->rows, desc->cols, ldout, culora_dtype_size(out_dtype));
    CULORA_TRY(no_overlap(ctx, op, &o, ins, n_in));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->quant && ctx->be->quant->dequantize));
    const struct culora_dequantize_args a = {desc, q, out, ldout, out_dtype};
    return ctx->be->quant->dequantize(ctx->be, &a, stream ? stream : ctx->be->stream);
}

culora_status culora_quant_copy(culora_context *ctx, const culora_quant_desc *desc, const culora_quant_weight *dst,
                                const culora_quant_weight *src, culora_copy_kind kind, culora_stream stream)
{
    static const char op[] = "culora_quant_copy";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(culora_quant_check_desc(ctx, op, desc));
    struct range rd[6], rs[6];
    int nd = 0, ns = 0;
    CULORA_TRY(check_qweight(ctx, op, "dst", desc, dst, rd, &nd));
    CULORA_TRY(check_qweight(ctx, op, "src", desc, src, rs, &ns));
    if (kind != CULORA_COPY_HOST_TO_DEVICE && kind != CULORA_COPY_DEVICE_TO_HOST && kind != CULORA_COPY_DEVICE_TO_DEVICE)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: kind = %d is not a culora_copy_kind", op, (int)kind);
    stream = stream ? stream : ctx->be->stream;
    for (int i = 0; i < nd; i++)
        CULORA_TRY(ctx->be->iface->copy(ctx->be, (void *)rd[i].p, rs[i].p, rd[i].bytes, kind, stream));
    return CULORA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Frozen linear                                                                             */

culora_status culora_quant_linear_workspace_size(culora_context *ctx, const culora_quant_desc *qdesc, int64_t m,
                                                 size_t *bytes)
{
    static const char op[] = "culora_quant_linear_workspace_size";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(culora_quant_check_desc(ctx, op, qdesc));
    if (m < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: m = %lld must be >= 1", op, (long long)m);
    if (bytes == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: bytes is NULL", op);
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->quant && ctx->be->quant->linear_workspace));
    return ctx->be->quant->linear_workspace(ctx->be, qdesc, NULL, m, bytes, NULL);
}

culora_status culora_quant_linear_forward(culora_context *ctx, const culora_quant_desc *qdesc,
                                          const culora_quant_weight *q, int64_t m, const void *x, int64_t ldx,
                                          const void *bias, void *y, int64_t ldy, void *workspace,
                                          size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "culora_quant_linear_forward";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(culora_quant_check_desc(ctx, op, qdesc));
    CULORA_TRY(check_int8_k(ctx, op, qdesc));
    if (m < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: m = %lld must be >= 1", op, (long long)m);
    const culora_dtype dt = ctx->be->dtype;
    const size_t es = culora_dtype_size(dt);
    struct range ins[8];
    int n_in = 0;
    CULORA_TRY(check_qweight(ctx, op, "q", qdesc, q, ins, &n_in));
    CULORA_TRY(culora_check_matrix(ctx, op, "x", x, m, qdesc->cols, ldx, dt));
    CULORA_TRY(culora_check_matrix(ctx, op, "y", y, m, qdesc->rows, ldy, dt));
    if (bias != NULL)
        CULORA_TRY(culora_check_matrix(ctx, op, "bias", bias, 1, qdesc->rows, qdesc->rows, dt));
    ins[n_in++] = matrix_range("x", x, m, qdesc->cols, ldx, es);
    ins[n_in++] = matrix_range("bias", bias, 1, qdesc->rows, qdesc->rows, es);
    const struct range yr = matrix_range("y", y, m, qdesc->rows, ldy, es);
    CULORA_TRY(no_overlap(ctx, op, &yr, ins, n_in));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->quant && ctx->be->quant->linear_fwd && ctx->be->quant->linear_workspace));
    size_t need = 0;
    CULORA_TRY(ctx->be->quant->linear_workspace(ctx->be, qdesc, NULL, m, &need, NULL));
    culora_workspace ws;
    CULORA_TRY(culora_resolve_workspace(ctx, op, workspace, workspace_bytes, need, &ws));
    const culora_lora_linear_fwd_args fa = {x, ldx, NULL, 0, bias, NULL, 0, NULL, 0, NULL, 0, y, ldy};
    const struct culora_qlinear_fwd_args a = {qdesc, q, NULL, m, &fa};
    return ctx->be->quant->linear_fwd(ctx->be, &a, &ws, stream ? stream : ctx->be->stream);
}

/* ---------------------------------------------------------------------------------------- */
/* LoRA linear with a quantized W0                                                           */

#define LORA_KNOWN_FLAGS                                                                                  \
    (CULORA_LORA_RSLORA | CULORA_LORA_FREEZE_A | CULORA_LORA_W0_TRANSPOSED | CULORA_LORA_ACCUMULATE_DX | \
     CULORA_LORA_REQUIRE_FUSED)

/* The LoRA descriptor (as host/backend.c checks it) and its agreement with qdesc. */
static culora_status check_lora(culora_context *ctx, const char *op, const culora_lora_linear_desc *d,
                                const culora_quant_desc *qd)
{
    if (d == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc is NULL", op);
    if (d->struct_size != sizeof(culora_lora_linear_desc) || d->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc not initialised with CULORA_LORA_LINEAR_DESC_INIT",
                           op);
    if (d->m < 1 || d->k < 1 || d->d < 1 || d->r < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc m, k, d, r = %lld, %lld, %lld, %d must be >= 1", op,
                           (long long)d->m, (long long)d->k, (long long)d->d, (int)d->r);
    if (!isfinite(d->alpha))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->alpha is not finite", op);
    if (!(d->dropout >= 0.0f && d->dropout < 1.0f))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->dropout = %g must be in [0, 1)", op,
                           (double)d->dropout);
    if (d->flags & ~(uint32_t)LORA_KNOWN_FLAGS)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: desc->flags has unknown bits 0x%x", op,
                           d->flags & ~(uint32_t)LORA_KNOWN_FLAGS);
    if (d->dtype != ctx->be->dtype)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: the %s backend stores %s; desc->dtype is %s (see culora_context_compute_dtype)", op,
                           ctx->be->iface->name, culora_dtype_name(ctx->be->dtype), culora_dtype_name(d->dtype));
    if (d->flags & CULORA_LORA_REQUIRE_FUSED)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: CULORA_LORA_REQUIRE_FUSED: there is no fused (augmented) path with a quantized W0", op);
    const bool t = (d->flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    const int64_t rows = t ? d->k : d->d, cols = t ? d->d : d->k;
    if (qd->rows != rows || qd->cols != cols)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: qdesc shape [%lld,%lld] does not match W0 [%lld,%lld] (%s)", op, (long long)qd->rows,
                           (long long)qd->cols, (long long)rows, (long long)cols,
                           t ? "[k,d]: CULORA_LORA_W0_TRANSPOSED" : "[d,k]");
    if (t && qd->format == CULORA_QUANT_INT8)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: int8 W0 with CULORA_LORA_W0_TRANSPOSED: quantize the [d,k] weight instead (rows are "
                           "the output features, as bitsandbytes stores them)", op);
    return check_int8_k(ctx, op, qd);
}

culora_status culora_lora_linear_quant_workspace_size(culora_context *ctx, const culora_lora_linear_desc *desc,
                                                      const culora_quant_desc *qdesc, size_t *fwd_bytes,
                                                      size_t *bwd_bytes)
{
    static const char op[] = "culora_lora_linear_quant_workspace_size";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(culora_quant_check_desc(ctx, op, qdesc));
    CULORA_TRY(check_lora(ctx, op, desc, qdesc));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->quant && ctx->be->quant->linear_workspace));
    size_t f = 0, b = 0;
    CULORA_TRY(ctx->be->quant->linear_workspace(ctx->be, qdesc, desc, desc->m, &f, &b));
    if (fwd_bytes)
        *fwd_bytes = f;
    if (bwd_bytes)
        *bwd_bytes = b;
    return CULORA_OK;
}

culora_status culora_lora_linear_quant_forward(culora_context *ctx, const culora_lora_linear_desc *desc,
                                               const culora_quant_desc *qdesc, const culora_quant_weight *q,
                                               const culora_lora_linear_fwd_args *a, void *workspace,
                                               size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "culora_lora_linear_quant_forward";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(culora_quant_check_desc(ctx, op, qdesc));
    CULORA_TRY(check_lora(ctx, op, desc, qdesc));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    if (a->w0 != NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args->w0 must be NULL: the frozen weight is q", op);
    const culora_dtype dt = desc->dtype;
    const size_t es = culora_dtype_size(dt);
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    struct range ins[12];
    int n_in = 0;
    CULORA_TRY(check_qweight(ctx, op, "q", qdesc, q, ins, &n_in));
    CULORA_TRY(culora_check_lora_fwd_operands(ctx, op, desc, a));
    ins[n_in++] = matrix_range("x", a->x, m, k, a->ldx, es);
    ins[n_in++] = matrix_range("a", a->a, r, k, a->lda, es);
    ins[n_in++] = matrix_range("b", a->b, d, r, a->ldb, es);
    ins[n_in++] = matrix_range("bias", a->bias, 1, d, d, es);
    const struct range y = matrix_range("y", a->y, m, d, a->ldy, es), v = matrix_range("v", a->v, m, r, a->ldv, es);
    CULORA_TRY(no_overlap(ctx, op, &y, ins, n_in));
    CULORA_TRY(no_overlap(ctx, op, &v, ins, n_in));
    CULORA_TRY(no_overlap(ctx, op, &y, &v, 1));
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->quant && ctx->be->quant->linear_fwd && ctx->be->quant->linear_workspace));
    size_t need = 0;
    CULORA_TRY(ctx->be->quant->linear_workspace(ctx->be, qdesc, desc, m, &need, NULL));
    culora_workspace ws;
    CULORA_TRY(culora_resolve_workspace(ctx, op, workspace, workspace_bytes, need, &ws));
    const struct culora_qlinear_fwd_args g = {qdesc, q, desc, m, a};
    return ctx->be->quant->linear_fwd(ctx->be, &g, &ws, stream ? stream : ctx->be->stream);
}

culora_status culora_lora_linear_quant_backward(culora_context *ctx, const culora_lora_linear_desc *desc,
                                                const culora_quant_desc *qdesc, const culora_quant_weight *q,
                                                const culora_lora_linear_bwd_args *a, void *workspace,
                                                size_t workspace_bytes, culora_stream stream)
{
    static const char op[] = "culora_lora_linear_quant_backward";
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(culora_quant_check_desc(ctx, op, qdesc));
    CULORA_TRY(check_lora(ctx, op, desc, qdesc));
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args is NULL", op);
    if (a->w0 != NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: args->w0 must be NULL: the frozen weight is q", op);
    const culora_dtype dt = desc->dtype;
    const size_t es = culora_dtype_size(dt);
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    const bool freeze_a = (desc->flags & CULORA_LORA_FREEZE_A) != 0;
    struct range ins[12];
    int n_in = 0;
    CULORA_TRY(check_qweight(ctx, op, "q", qdesc, q, ins, &n_in));
    CULORA_TRY(culora_check_lora_bwd_operands(ctx, op, desc, a));
    ins[n_in++] = matrix_range("x", a->x, m, k, a->ldx, es);
    ins[n_in++] = matrix_range("a", a->a, r, k, a->lda, es);
    ins[n_in++] = matrix_range("b", a->b, d, r, a->ldb, es);
    ins[n_in++] = matrix_range("v", a->v, m, r, a->ldv, es);
    ins[n_in++] = matrix_range("dy", a->dy, m, d, a->lddy, es);
    const struct range outs[4] = {
        matrix_range("du", a->du, m, r, a->lddu, es),
        matrix_range("dx", a->dx, m, k, a->lddx, es),
        matrix_range("da", freeze_a ? NULL : a->da, r, k, a->ldda, 4),
        matrix_range("db", a->db, d, r, a->lddb, 4),
    };
    for (int i = 0; i < 4; i++) {
        CULORA_TRY(no_overlap(ctx, op, &outs[i], ins, n_in));
        CULORA_TRY(no_overlap(ctx, op, &outs[i], outs + i + 1, 3 - i));
    }
    CULORA_TRY(culora_need_op(ctx, op, ctx->be->quant && ctx->be->quant->linear_bwd && ctx->be->quant->linear_workspace));
    size_t need = 0;
    CULORA_TRY(ctx->be->quant->linear_workspace(ctx->be, qdesc, desc, m, NULL, &need));
    culora_workspace ws;
    CULORA_TRY(culora_resolve_workspace(ctx, op, workspace, workspace_bytes, need, &ws));
    const struct culora_qlinear_bwd_args g = {qdesc, q, desc, a};
    return ctx->be->quant->linear_bwd(ctx->be, &g, &ws, stream ? stream : ctx->be->stream);
}
