/*
 * quant_math.h — the per-value rules of the quantized formats, written once for the CPU
 * reference (host/cpu/nf4.c, int8.c) and the CUDA kernels (kernels/nf4.cu, int8.cu), so both
 * round identically. Every arithmetic step is one IEEE fp32 operation with round-to-nearest-even,
 * spelled out with QM_* so that nvcc cannot contract a multiply and an add into an FMA (it does
 * by default) and the host compiler cannot either (C11 mode keeps -ffp-contract=off; CUDA host
 * code is plain x86-64 without FMA). The rules are bitsandbytes 0.50's CPU path, which the
 * fixtures in tests/data/quant/ pin down; docs/kernels/nf4.md explains each step.
 */
#ifndef CULORA_HOST_QUANT_MATH_H
#define CULORA_HOST_QUANT_MATH_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define QM_HD __host__ __device__ __forceinline__
#else
#define QM_HD static inline
#endif

#if defined(__CUDA_ARCH__)
#define QM_MUL(a, b) __fmul_rn((a), (b))
#define QM_ADD(a, b) __fadd_rn((a), (b))
#define QM_SUB(a, b) __fsub_rn((a), (b))
#define QM_DIV(a, b) __fdiv_rn((a), (b))
#define QM_FMA(a, b, c) __fmaf_rn((a), (b), (c))
#else
#define QM_MUL(a, b) ((float)(a) * (float)(b))
#define QM_ADD(a, b) ((float)(a) + (float)(b))
#define QM_SUB(a, b) ((float)(a) - (float)(b))
#define QM_DIV(a, b) ((float)(a) / (float)(b))
#define QM_FMA(a, b, c) fmaf((a), (b), (c))
#endif

/* 1.0e-38f: bitsandbytes clamps the absmax to this before taking the reciprocal
 * (torch: A * (1.0 / absmax.clamp(min=1e-38))). It is an fp32 subnormal. */
#define QM_ABSMAX_FLOOR 1.0e-38f
/* float32(7.874015718698502e-3) = float32(1/127): bitsandbytes' int8 dequant constant. */
#define QM_INV127 0x1.020408p-7f
/* float32(1/127²) = 6.200012e-05f, the constant of bitsandbytes' CUDA kdequant_mm_int32_fp16.
 * (Its PyTorch fallback int8_mm_dequant writes 6.200124e-05, 1.8e-5 relative too large.) */
#define QM_INV127SQ 0x1.040c2p-14f
/* Size of bitsandbytes' 8-bit quantization lookup table (cpu_ops.cpp kLUTSize). */
#define QM_DYN_LUT_SIZE 65536

/* ---- 4-bit (NF4 / FP4) ----------------------------------------------------------------- */

/* Reciprocal scale of a block: 1 / max(absmax, 1e-38). */
QM_HD float qm_4bit_inv_absmax(float absmax)
{
    return QM_DIV(1.0f, fmaxf(absmax, QM_ABSMAX_FLOOR));
}

/* Code of one value: scaled = clamp(x · inv, -1, 1); position = number of sorted-code
 * midpoints strictly below it (torch.bucketize, right=False: a value on a midpoint goes to the
 * lower code); nibble = order[position]. mids: the 15 midpoints (c[i] + c[i+1]) / 2 of the sorted
 * code in fp32; order: sorted position -> nibble (identity for NF4). */
QM_HD uint8_t qm_4bit_code(float x, float inv, const float *mids, const uint8_t *order)
{
    float v = QM_MUL(x, inv);
    v = fminf(fmaxf(v, -1.0f), 1.0f);
    int pos = 0;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int i = 0; i < 15; i++)
        pos += v > mids[i];
    return order[pos];
}

/* Dequantized 4-bit value: code[nibble] · absmax. */
QM_HD float qm_4bit_value(const float *code, unsigned nibble, float absmax)
{
    return QM_MUL(code[nibble], absmax);
}

/* Absmax of a double-quantized block: nested_code[q] · nested_absmax + offset (two roundings,
 * in this order, as dequantize_blockwise then `absmax += offset`). */
QM_HD float qm_dq_absmax(const float *nested_code, uint8_t q, float nested_absmax, float offset)
{
    return QM_ADD(QM_MUL(nested_code[q], nested_absmax), offset);
}

/* ---- 8-bit dynamic code (double quantization of the absmax) ----------------------------- */

/* bitsandbytes 0.50 quantizes to an 8-bit code through a 65536-entry table over [-1, 1]:
 *   table value t_i = -1 + (2·i) / 65535,  lut[i] = number of code midpoints below t_i
 * (midpoints 0.5·(c[j] + c[j+1])); entry i of a value x is trunc(fma((clamp(x·inv) + 1)·0.5,
 * 65535, 0.5)) — an FMA in its x86 build, so here too. */
QM_HD float qm_dyn_lut_point(int32_t i)
{
    return QM_ADD(-1.0f, QM_DIV(2.0f * (float)i, 65535.0f));
}

QM_HD float qm_dyn_midpoint(const float *code, int j)
{
    return QM_MUL(0.5f, QM_ADD(code[j], code[j + 1]));
}

QM_HD int32_t qm_dyn_lut_index(float x, float inv)
{
    float v = QM_MUL(x, inv);
    v = v < -1.0f ? -1.0f : (1.0f < v ? 1.0f : v); /* std::clamp: NaN stays NaN */
    const float t = QM_MUL(QM_ADD(v, 1.0f), 0.5f);
    const float f = QM_FMA(t, 65535.0f, 0.5f);
    if (!(f >= 0.0f)) /* NaN (0·inf when the nested absmax is a tiny subnormal): x86 gives entry 0 */
        return 0;
    return (int32_t)f; /* f in [0.5, 65535.5]: truncation gives 0..65535 */
}

/* ---- int8 row-wise ----------------------------------------------------------------------- */

/* Scale 127 / absmax as torch evaluates `127.0 / row_stats`: reciprocal first, then · 127 (two
 * roundings; an exact division differs in the last bit and flips codes at .5 ties). inf when
 * absmax is 0 or below ~3.7e-37. */
QM_HD float qm_int8_scale(float absmax)
{
    return QM_MUL(QM_DIV(1.0f, absmax), 127.0f);
}

/* round-half-even(x · scale) as int8; 0 when that is not finite (absmax 0 or tiny: bitsandbytes'
 * float -> int8 conversion of ±inf / NaN gives 0 on x86). |x| <= absmax keeps it in [-127, 127]. */
QM_HD int8_t qm_int8_code(float x, float scale)
{
    const float v = QM_MUL(x, scale);
    if (!(fabsf(v) <= 127.5f))
        return 0;
    return (int8_t)rintf(v);
}

/* Dequantized int8 value: (cb · scb) · (1/127). */
QM_HD float qm_int8_value(int8_t cb, float scb)
{
    return QM_MUL(QM_MUL((float)cb, scb), QM_INV127);
}

/* One output of the int8 product: acc · (sx · sw) · (1/127²) (int8_mm_dequant's order). */
QM_HD float qm_int8_mm_value(int32_t acc, float sx, float sw)
{
    return QM_MUL(QM_MUL((float)acc, QM_MUL(sx, sw)), QM_INV127SQ);
}

#endif /* CULORA_HOST_QUANT_MATH_H */
