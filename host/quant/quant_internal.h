/*
 * quant_internal.h — shared by the quantization module's host files (host/quant/), the CPU
 * reference (host/cpu/nf4.c, int8.c, quant_linear.c), the CUDA entries and the tests:
 * descriptor checks, layouts, the code tables as arrays, and the two bitsandbytes rules that
 * work on a whole array (the 8-bit lookup table and the absmax mean).
 */
#ifndef CULORA_HOST_QUANT_INTERNAL_H
#define CULORA_HOST_QUANT_INTERNAL_H

#include "../context.h"
#include "culora/culora_quant.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The 4-bit code of a format with what its quantizer needs (host/quant/quant_format.c). */
struct culora_code4 {
    float code[16];   /* nibble -> value */
    float mids[15];   /* midpoints of the sorted code, fp32 */
    uint8_t order[16];/* sorted position -> nibble */
};

/* Fills *out for CULORA_QUANT_NF4 or CULORA_QUANT_FP4. */
void culora_code4_get(int32_t format, struct culora_code4 *out);
/* bitsandbytes' 256-value signed dynamic code (the nested quant map double quantization writes). */
const float *culora_dyn8_code(void);

static inline bool culora_quant_is_4bit(int32_t format)
{
    return format == CULORA_QUANT_NF4 || format == CULORA_QUANT_FP4;
}
static inline bool culora_quant_is_dq(const culora_quant_desc *d)
{
    return culora_quant_is_4bit(d->format) && (d->flags & CULORA_QUANT_DOUBLE_QUANT) != 0;
}

/* Checks desc (struct_size/api_version, format, flags, shape, blocksize, threshold); messages
 * start with op. */
culora_status culora_quant_check_desc(culora_context *ctx, const char *op, const culora_quant_desc *desc);
/* The layout of a checked desc. */
void culora_quant_layout_of(const culora_quant_desc *desc, culora_quant_layout *out);

/* bitsandbytes' 8-bit quantization table for `code` (256 sorted values): lut[i] = index of the
 * code value nearest to -1 + 2i/65535 (QM_DYN_LUT_SIZE entries). */
void culora_dyn8_lut_build(const float *code, uint8_t *lut);

/* The DQ offset: mean of absmax[0..n). Summed in fp64 in a fixed order — each run of 256 values
 * (one nested block) left to right, then the run sums left to right — and rounded to fp32 once.
 * The CUDA kernels use the same order, so both backends agree bit for bit. (bitsandbytes takes
 * torch's fp32 mean, whose rounding depends on the CPU's vector width and thread count; the two
 * can differ in the last bit: docs/kernels/nf4.md.) */
float culora_dq_mean(const float *absmax, int64_t n);

/* Second-level quantization of n absmax values (host arrays): absmax_q, nested_absmax. lut from
 * culora_dyn8_lut_build(code). Shared by the CPU backend and the tests. */
void culora_dq_quantize(const float *absmax, int64_t n, float offset, const uint8_t *lut, uint8_t *absmax_q,
                        float *nested_absmax);

/* Name of a culora_st_dtype as bitsandbytes' quant state writes it ("bfloat16", "float16",
 * "float32"); NULL for other dtypes. */
const char *culora_quant_torch_dtype_name(culora_st_dtype dt);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_QUANT_INTERNAL_H */
