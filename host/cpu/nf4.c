/*
 * nf4.c — CPU reference of the 4-bit formats (NF4 and FP4, optionally double-quantized),
 * bit-compatible with bitsandbytes 0.50's CPU path (tests/data/quant/ fixtures).
 *
 *   w [rows, cols] row-major (ldw), flattened index e = row·cols + col, block b = e / blocksize
 *   absmax[b]   = max |w_e| over the block                                  fp32      '='
 *   nibble_e    = order[#{mids < clamp(w_e · 1/max(absmax, 1e-38), ±1)}]     4 bits
 *   packed[e/2] = nibble_e << 4 | nibble_{e+1}   (e even: first element in the HIGH nibble) '='
 *   DQ:  offset = mean(absmax); absmax_q, nested_absmax = 8-bit dynamic quantization of
 *        absmax - offset in blocks of 256 (host/quant/quant_format.c)                   '='
 *   dequant:    out_e = code[nibble_e] · absmax[b]  (DQ: absmax[b] = nested_code[absmax_q[b]] ·
 *               nested_absmax[b/256] + offset), fp32, or rounded to bf16              '='
 * Per-value rules: host/quant/quant_math.h (shared with kernels/nf4.cu). Format: docs/kernels/nf4.md.
 */
#include "cpu_quant.h"

#include "../quant/quant_internal.h"
#include "../quant/quant_math.h"

#include <math.h>
#include <string.h>

int64_t cpu_first_nonfinite(const culora_backend *be, const void *w, culora_dtype dt, int64_t rows, int64_t cols,
                            int64_t ld)
{
    int64_t first = INT64_MAX;
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static) reduction(min : first)
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            if (!isfinite(cpu_load_elem(w, dt, i * ld + j))) {
                if (i * cols + j < first)
                    first = i * cols + j;
                break;
            }
    return first == INT64_MAX ? -1 : first;
}

culora_status cpu_quant4_quantize(culora_backend *be, const struct culora_quantize_args *a, const culora_workspace *ws)
{
    const culora_quant_desc *d = a->desc;
    const culora_quant_weight *q = a->q;
    culora_quant_layout lay;
    culora_quant_layout_of(d, &lay);
    struct culora_code4 c4;
    culora_code4_get(d->format, &c4);
    const int64_t bs = d->blocksize, cols = d->cols, ldw = a->ldw, nb = lay.n_blocks;
    const bool dq = culora_quant_is_dq(d);
    /* absmax: the output itself, or (DQ) fp32 scratch at the start of the workspace */
    float *absmax = dq ? (float *)ws->ptr : q->absmax;
    uint8_t *packed = q->data;
    const void *w = a->w;
    const culora_dtype dt = a->w_dtype;

#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t e0 = b * bs;
        float m = 0.0f;
        for (int64_t e = e0; e < e0 + bs; e++)
            m = fmaxf(m, fabsf(cpu_load_elem(w, dt, (e / cols) * ldw + e % cols)));
        absmax[b] = m;
        const float inv = qm_4bit_inv_absmax(m);
        for (int64_t e = e0; e < e0 + bs; e += 2) {
            const uint8_t hi = qm_4bit_code(cpu_load_elem(w, dt, (e / cols) * ldw + e % cols), inv, c4.mids, c4.order);
            const uint8_t lo = qm_4bit_code(cpu_load_elem(w, dt, ((e + 1) / cols) * ldw + (e + 1) % cols), inv,
                                            c4.mids, c4.order);
            packed[e / 2] = (uint8_t)(hi << 4 | lo);
        }
    }
    if (!dq)
        return CULORA_OK;

    uint8_t *lut = (uint8_t *)ws->ptr + 4 * (size_t)nb;
    memcpy(q->nested_code, culora_dyn8_code(), 256 * sizeof(float));
    culora_dyn8_lut_build(q->nested_code, lut);
    const float offset = culora_dq_mean(absmax, nb);
    *q->offset = offset;
    culora_dq_quantize(absmax, nb, offset, lut, q->absmax_q, q->nested_absmax);
    return CULORA_OK;
}

culora_status cpu_quant4_dequantize(culora_backend *be, const struct culora_dequantize_args *a)
{
    const culora_quant_desc *d = a->desc;
    const culora_quant_weight *q = a->q;
    culora_quant_layout lay;
    culora_quant_layout_of(d, &lay);
    struct culora_code4 c4;
    culora_code4_get(d->format, &c4);
    const int64_t bs = d->blocksize, cols = d->cols, ld = a->ldout, nb = lay.n_blocks;
    const bool dq = culora_quant_is_dq(d);
    const bool bf16 = a->out_dtype == CULORA_DTYPE_BF16;
    const uint8_t *packed = q->data;

#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        const float am = dq ? qm_dq_absmax(q->nested_code, q->absmax_q[b],
                                           q->nested_absmax[b / CULORA_QUANT_NESTED_BLOCKSIZE], *q->offset)
                            : q->absmax[b];
        for (int64_t e = b * bs; e < (b + 1) * bs; e++) {
            const uint8_t byte = packed[e / 2];
            const float v = qm_4bit_value(c4.code, (e & 1) ? (byte & 0x0Fu) : (unsigned)(byte >> 4), am);
            const int64_t at = (e / cols) * ld + e % cols;
            if (bf16)
                ((uint16_t *)a->out)[at] = cpu_f32_to_bf16(v);
            else
                ((float *)a->out)[at] = v;
        }
    }
    return CULORA_OK;
}
