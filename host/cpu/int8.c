/*
 * int8.c — CPU reference of row-wise int8 weights and the LLM.int8 product, bit-compatible with
 * bitsandbytes 0.50 (int8_vectorwise_quant / _dequant, int8_mm_dequant; tests/data/quant/).
 *
 *   quantize    scb[i] = max_j |w[i,j]|                                   fp32 [rows]       '='
 *               cb[i,j] = round_half_even(w[i,j] · ((1/scb[i]) · 127))     int8 [rows, cols] '='
 *               (0 where that is not finite: an all-zero or ~1e-37-small row)
 *   dequantize  out[i,j] = (cb[i,j] · scb[i]) · (1/127)                                      '='
 *   matmul      y [m, rows] = x [m, cols] · Wᵀ, LLM.int8 (threshold t > 0):
 *               outlier columns O = { j : |x[i,j]| >= t for some row i }
 *               sx[i]  = max |x[i,j]| over the elements with |x[i,j]| < t  (all elements if t == 0)
 *               qx[i,j] = j in O ? 0 : round_half_even(x[i,j] · 127/sx[i])
 *               acc[i,n] = Σ_j qx[i,j] · cb[n,j]                                int32, exact
 *               y[i,n] = acc · (sx[i] · scb[n]) · (1/127²) + Σ_{j∈O} x[i,j] · dequant(cb)[n,j] (+ bias[n])
 *               (int8_vectorwise_quant(threshold) + int8_mixed_scaled_mm; bitsandbytes casts to fp16
 *               first, culora keeps the storage dtype).
 * Per-value rules: host/quant/quant_math.h (shared with kernels/int8.cu). Doc: docs/kernels/int8.md.
 */
#include "cpu_quant.h"

#include "../quant/quant_internal.h"
#include "../quant/quant_math.h"

#include <math.h>
#include <stdbool.h>

culora_status cpu_int8_quantize(culora_backend *be, const struct culora_quantize_args *a)
{
    const culora_quant_desc *d = a->desc;
    const int64_t rows = d->rows, cols = d->cols, ldw = a->ldw;
    int8_t *cb = a->q->data;
    float *scb = a->q->absmax;
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static)
    for (int64_t i = 0; i < rows; i++) {
        float m = 0.0f;
        for (int64_t j = 0; j < cols; j++)
            m = fmaxf(m, fabsf(cpu_load_elem(a->w, a->w_dtype, i * ldw + j)));
        scb[i] = m;
        const float s = qm_int8_scale(m);
        for (int64_t j = 0; j < cols; j++)
            cb[i * cols + j] = qm_int8_code(cpu_load_elem(a->w, a->w_dtype, i * ldw + j), s);
    }
    return CULORA_OK;
}

culora_status cpu_int8_dequantize(culora_backend *be, const struct culora_dequantize_args *a)
{
    const culora_quant_desc *d = a->desc;
    const int64_t rows = d->rows, cols = d->cols, ld = a->ldout;
    const int8_t *cb = a->q->data;
    const float *scb = a->q->absmax;
    const bool bf16 = a->out_dtype == CULORA_DTYPE_BF16;
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static)
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            const float v = qm_int8_value(cb[i * cols + j], scb[i]);
            if (bf16)
                ((uint16_t *)a->out)[i * ld + j] = cpu_f32_to_bf16(v);
            else
                ((float *)a->out)[i * ld + j] = v;
        }
    return CULORA_OK;
}

/* Workspace of the product: qx int8 [m, cols], sx fp32 [m], outlier flags uint8 [cols],
 * outlier column list int64 [cols]. */
size_t cpu_int8_matmul_workspace(const culora_quant_desc *qd, int64_t m)
{
    return (size_t)(m * qd->cols) + 4 * (size_t)m + (size_t)qd->cols + 8 * (size_t)qd->cols + 64;
}

void cpu_int8_quantize_act(const culora_backend *be, int64_t m, int64_t k, const float *x, int64_t ldx, float t,
                           int8_t *qx, float *sx, uint8_t *is_out, int64_t *cols, int64_t *n_out)
{
    int64_t n = 0; /* outlier columns, ascending */
    for (int64_t j = 0; j < k; j++) {
        bool o = false;
        for (int64_t i = 0; i < m && t > 0.0f && !o; i++)
            o = fabsf(x[i * ldx + j]) >= t;
        is_out[j] = o;
        if (o)
            cols[n++] = j;
    }
    *n_out = n;
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static)
    for (int64_t i = 0; i < m; i++) {
        float am = 0.0f;
        for (int64_t j = 0; j < k; j++) {
            const float v = fabsf(x[i * ldx + j]);
            if (t == 0.0f || v < t)
                am = fmaxf(am, v);
        }
        sx[i] = am;
        const float s = qm_int8_scale(am);
        for (int64_t j = 0; j < k; j++)
            qx[i * k + j] = is_out[j] ? 0 : qm_int8_code(x[i * ldx + j], s);
    }
}

void cpu_int8_matmul(culora_backend *be, const culora_quant_desc *qd, const culora_quant_weight *q, int64_t m,
                     const float *x, int64_t ldx, const float *bias, float *y, int64_t ldy, void *ws)
{
    const int64_t k = qd->cols, d = qd->rows;
    int8_t *qx = ws;                                                              /* [m, k] */
    float *sx = (float *)(((uintptr_t)(qx + m * k) + 7) & ~(uintptr_t)7);        /* [m] */
    uint8_t *is_out = (uint8_t *)(sx + m);                                        /* [k] */
    int64_t *cols = (int64_t *)(((uintptr_t)(is_out + k) + 7) & ~(uintptr_t)7);  /* [k] */
    const int8_t *cb = q->data;
    const float *scb = q->absmax;
    int64_t n_out = 0;
    cpu_int8_quantize_act(be, m, k, x, ldx, qd->threshold, qx, sx, is_out, cols, &n_out);
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static) collapse(2)
    for (int64_t i = 0; i < m; i++)
        for (int64_t n = 0; n < d; n++) {
            const int8_t *xr = qx + i * k, *wr = cb + n * k;
            int32_t acc = 0; /* exact: |acc| <= 127·127·k < 2^31 for k < 133152 (dispatcher checks) */
            for (int64_t j = 0; j < k; j++)
                acc += (int32_t)xr[j] * (int32_t)wr[j];
            float out = 0.0f; /* outlier columns: x in the storage dtype · dequantized weight */
            for (int64_t c = 0; c < n_out; c++)
                out += x[i * ldx + cols[c]] * qm_int8_value(wr[cols[c]], scb[n]);
            float v = qm_int8_mm_value(acc, sx[i], scb[n]) + out;
            if (bias != NULL)
                v += bias[n];
            y[i * ldy + n] = v;
        }
}
