/*
 * quant_linear.c — CPU reference of the linear layers on a quantized weight, and the
 * quantize / dequantize entries (format code in nf4.c and int8.c).
 *
 *   NF4/FP4 (any m) and int8 backward: W = dequantize(q) into the workspace (fp32 [rows, cols]),
 *     then the unquantized op: y = x·Wᵀ (+ bias) [m, rows] '=', or cpu_lora_linear_fwd/_bwd with
 *     w0 = W (all outputs and '=' / '+=' contracts as in culora_ops.h).
 *   int8 forward: y = LLM.int8(x)·Wᵀ (+ bias) (int8.c); with LoRA also
 *     xd = dropout(x), v = s·xd·Aᵀ [m,r] '=', y += v·Bᵀ.
 * Workspace (bytes): dequantized W: 4·rows·cols; int8 forward: cpu_int8_matmul_workspace(m) plus
 *   4·m·k for the dropped-out input when p > 0; plus what cpu_lora_linear_* needs.
 */
#include "cpu_quant.h"

#include "../philox.h"
#include "../quant/quant_internal.h"

#include <string.h>

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

culora_status cpu_quant_quantize_workspace(culora_backend *be, const culora_quant_desc *d, size_t *bytes)
{
    (void)be;
    culora_quant_layout lay;
    culora_quant_layout_of(d, &lay);
    /* DQ: fp32 first-level absmax, then the 64 KiB 8-bit lookup table */
    *bytes = culora_quant_is_dq(d) ? align64(4 * (size_t)lay.n_blocks) + 65536 : 0;
    return CULORA_OK;
}

culora_status cpu_quant_quantize(culora_backend *be, const struct culora_quantize_args *a, const culora_workspace *ws,
                                 culora_stream stream)
{
    (void)stream;
    const culora_quant_desc *d = a->desc;
    const int64_t bad = cpu_first_nonfinite(be, a->w, a->w_dtype, d->rows, d->cols, a->ldw);
    if (bad >= 0)
        return culora_fail(be->ctx, CULORA_ERR_INVALID_ARG,
                           "culora_quantize: w[%lld,%lld] is not finite (NaN or Inf weights cannot be quantized)",
                           (long long)(bad / d->cols), (long long)(bad % d->cols));
    if (d->format == CULORA_QUANT_INT8)
        return cpu_int8_quantize(be, a);
    return cpu_quant4_quantize(be, a, ws);
}

culora_status cpu_quant_dequantize(culora_backend *be, const struct culora_dequantize_args *a, culora_stream stream)
{
    (void)stream;
    if (a->desc->format == CULORA_QUANT_INT8)
        return cpu_int8_dequantize(be, a);
    return cpu_quant4_dequantize(be, a);
}

/* ---------------------------------------------------------------------------------------- */

static size_t dequant_bytes(const culora_quant_desc *qd) { return align64(4 * (size_t)(qd->rows * qd->cols)); }

culora_status cpu_qlinear_workspace(culora_backend *be, const culora_quant_desc *qd, const culora_lora_linear_desc *lora,
                                    int64_t m, size_t *fwd_bytes, size_t *bwd_bytes)
{
    size_t lf = 0, lb = 0;
    if (lora != NULL) {
        CULORA_TRY(cpu_lora_linear_workspace(be, lora, &lf, &lb));
        m = lora->m;
    }
    size_t f;
    if (qd->format == CULORA_QUANT_INT8) {
        f = align64(cpu_int8_matmul_workspace(qd, m));
        if (lora != NULL && lora->dropout > 0.0f)
            f += align64(4 * (size_t)(m * lora->k));
    } else {
        f = dequant_bytes(qd) + lf;
    }
    if (fwd_bytes)
        *fwd_bytes = f;
    if (bwd_bytes)
        *bwd_bytes = dequant_bytes(qd) + lb;
    return CULORA_OK;
}

/* W (fp32, dense [rows, cols]) at the start of the workspace. */
static culora_status dequant_to_ws(culora_backend *be, const culora_quant_desc *qd, const culora_quant_weight *q,
                                   const culora_workspace *ws, culora_workspace *rest)
{
    const struct culora_dequantize_args da = {qd, q, ws->ptr, qd->cols, CULORA_DTYPE_F32};
    CULORA_TRY(cpu_quant_dequantize(be, &da, NULL));
    rest->ptr = (char *)ws->ptr + dequant_bytes(qd);
    rest->bytes = ws->bytes - dequant_bytes(qd);
    return CULORA_OK;
}

/* Int8 forward with LoRA: y = LLM.int8(x)·W0ᵀ + bias + v·Bᵀ, v = s·dropout(x)·Aᵀ. */
static culora_status int8_lora_fwd(culora_backend *be, const struct culora_qlinear_fwd_args *g,
                                   const culora_workspace *ws)
{
    const culora_lora_linear_desc *desc = g->lora;
    const culora_lora_linear_fwd_args *a = g->fwd;
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    const float s = culora_lora_scaling(desc);
    char *p = ws->ptr;
    cpu_int8_matmul(be, g->qdesc, g->q, m, a->x, a->ldx, a->bias, a->y, a->ldy, p);
    p += align64(cpu_int8_matmul_workspace(g->qdesc, m));
    const float *xd = a->x;
    int64_t ldxd = a->ldx;
    if (desc->dropout > 0.0f) {
        float *t = (float *)p;
        const float *x = a->x;
        const uint32_t thr = culora_dropout_threshold(desc->dropout);
        const float scale = 1.0f / (1.0f - desc->dropout);
        const int64_t ldx = a->ldx;
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++)
                t[i * k + j] = culora_dropout_keep_index(desc->seed, desc->offset, (uint64_t)(i * k + j), thr)
                                   ? x[i * ldx + j] * scale
                                   : 0.0f;
        xd = t;
        ldxd = k;
    }
    cpu_sgemm(false, true, m, r, k, s, xd, ldxd, a->a, a->lda, 0.0f, a->v, a->ldv); /* v = s·xd·Aᵀ */
    cpu_sgemm(false, true, m, d, r, 1.0f, a->v, a->ldv, a->b, a->ldb, 1.0f, a->y, a->ldy); /* y += v·Bᵀ */
    return CULORA_OK;
}

culora_status cpu_qlinear_fwd(culora_backend *be, const struct culora_qlinear_fwd_args *g, const culora_workspace *ws,
                              culora_stream stream)
{
    const culora_quant_desc *qd = g->qdesc;
    const culora_lora_linear_fwd_args *a = g->fwd;
    if (qd->format == CULORA_QUANT_INT8) {
        if (g->lora != NULL)
            return int8_lora_fwd(be, g, ws);
        cpu_int8_matmul(be, qd, g->q, g->m, a->x, a->ldx, a->bias, a->y, a->ldy, ws->ptr);
        return CULORA_OK;
    }
    culora_workspace rest;
    CULORA_TRY(dequant_to_ws(be, qd, g->q, ws, &rest));
    const float *w = ws->ptr;
    if (g->lora != NULL) {
        culora_lora_linear_fwd_args fa = *a;
        fa.w0 = w;
        fa.ldw0 = qd->cols;
        return cpu_lora_linear_fwd(be, g->lora, &fa, &rest, stream);
    }
    const int64_t m = g->m, n = qd->rows, k = qd->cols;
    float *y = a->y;
    cpu_sgemm(false, true, m, n, k, 1.0f, a->x, a->ldx, w, k, 0.0f, y, a->ldy); /* y = x·Wᵀ */
    if (a->bias != NULL) {
        const float *bias = a->bias;
        const int64_t ldy = a->ldy;
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                y[i * ldy + j] += bias[j];
    }
    return CULORA_OK;
}

culora_status cpu_qlinear_bwd(culora_backend *be, const struct culora_qlinear_bwd_args *g, const culora_workspace *ws,
                              culora_stream stream)
{
    culora_workspace rest;
    CULORA_TRY(dequant_to_ws(be, g->qdesc, g->q, ws, &rest));
    culora_lora_linear_bwd_args ba = *g->bwd;
    ba.w0 = ws->ptr;
    ba.ldw0 = g->qdesc->cols;
    return cpu_lora_linear_bwd(be, g->lora, &ba, &rest, stream);
}
