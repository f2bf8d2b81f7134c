/*
 * cpu_quant.h — the CPU backend's quantized-weight ops (host/cpu/nf4.c, int8.c, quant_linear.c),
 * filled into culora_cpu_quant_iface by quant_table.c.
 */
#ifndef CULORA_HOST_CPU_QUANT_H
#define CULORA_HOST_CPU_QUANT_H

#include "../quant_ops.h"
#include "cpu_internal.h"

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element idx of a row-major F32 or BF16 matrix (host memory). */
static inline float cpu_load_elem(const void *p, culora_dtype dt, int64_t idx)
{
    if (dt == CULORA_DTYPE_F32)
        return ((const float *)p)[idx];
    const uint32_t u = (uint32_t)((const uint16_t *)p)[idx] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* fp32 -> bf16, round to nearest even (what __float2bfloat16_rn does for finite values). */
static inline uint16_t cpu_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Index of the first non-finite element of w [rows, cols] (ld), or -1. */
int64_t cpu_first_nonfinite(const culora_backend *be, const void *w, culora_dtype dt, int64_t rows, int64_t cols,
                            int64_t ld);

/* nf4.c — NF4 / FP4 (+ double quantization) */
culora_status cpu_quant4_quantize(culora_backend *be, const struct culora_quantize_args *a, const culora_workspace *ws);
culora_status cpu_quant4_dequantize(culora_backend *be, const struct culora_dequantize_args *a);

/* int8.c — row-wise int8 and the LLM.int8 product */
culora_status cpu_int8_quantize(culora_backend *be, const struct culora_quantize_args *a);
culora_status cpu_int8_dequantize(culora_backend *be, const struct culora_dequantize_args *a);
/* LLM.int8 activation quantization (int8.c header): outlier flags is_out [k] and the ascending
 * outlier column list cols [*n_out], row scales sx [m], codes qx [m, k] (dense). */
void cpu_int8_quantize_act(const culora_backend *be, int64_t m, int64_t k, const float *x, int64_t ldx, float t,
                           int8_t *qx, float *sx, uint8_t *is_out, int64_t *cols, int64_t *n_out);
/* Workspace bytes of cpu_int8_matmul for m rows. */
size_t cpu_int8_matmul_workspace(const culora_quant_desc *qd, int64_t m);
/* y [m, rows] '=' LLM.int8(x [m, cols]) · Wᵀ (+ bias). */
void cpu_int8_matmul(culora_backend *be, const culora_quant_desc *qd, const culora_quant_weight *q, int64_t m,
                     const float *x, int64_t ldx, const float *bias, float *y, int64_t ldy, void *ws);

/* quant_linear.c — linear layers on a quantized weight */
culora_status cpu_quant_quantize_workspace(culora_backend *be, const culora_quant_desc *desc, size_t *bytes);
culora_status cpu_quant_quantize(culora_backend *be, const struct culora_quantize_args *a, const culora_workspace *ws,
                                 culora_stream stream);
culora_status cpu_quant_dequantize(culora_backend *be, const struct culora_dequantize_args *a, culora_stream stream);
culora_status cpu_qlinear_workspace(culora_backend *be, const culora_quant_desc *qdesc,
                                    const culora_lora_linear_desc *lora, int64_t m, size_t *fwd_bytes,
                                    size_t *bwd_bytes);
culora_status cpu_qlinear_fwd(culora_backend *be, const struct culora_qlinear_fwd_args *a, const culora_workspace *ws,
                              culora_stream stream);
culora_status cpu_qlinear_bwd(culora_backend *be, const struct culora_qlinear_bwd_args *a, const culora_workspace *ws,
                              culora_stream stream);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_CPU_QUANT_H */
