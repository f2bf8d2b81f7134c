/*
 * tensor_read.c — culora_tensor_read: copy a mapped tensor out as F32, BF16 or F16, converting
 * from F32, F16, BF16 or F64 (IEEE round to nearest even, NaN kept NaN). The source may be
 * unaligned, so elements are loaded with memcpy; data is little-endian on disk and this code
 * assumes a little-endian host (as the rest of culora does).
 */
#include "io_internal.h"

#include <math.h>
#include <string.h>

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while ((man & 0x400) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan (keep nan quiet and non-zero) */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x33000001u) /* below half the smallest subnormal: zero */
        return sign;
    uint32_t exp = ax >> 23;
    uint32_t man = (ax & 0x7fffff) | 0x800000;
    int shift;
    uint16_t base;
    if (exp < 113) { /* subnormal half */
        shift = (int)(126 - exp);
        base = 0;
    } else {
        shift = 13;
        base = (uint16_t)((exp - 112) << 10);
        man &= 0x7fffff;
    }
    uint32_t q = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return (uint16_t)(sign | (uint16_t)(base + q)); /* a carry into the exponent is correct rounding */
}

static float load_f32(const culora_tensor_info *t, int64_t i)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case CULORA_ST_F32: {
        float v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    case CULORA_ST_F16: {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return f16_to_f32(h);
    }
    case CULORA_ST_BF16: {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        uint32_t bits = (uint32_t)h << 16;
        float v;
        memcpy(&v, &bits, 4);
        return v;
    }
    default: { /* F64 */
        double v;
        memcpy(&v, p + 8 * i, 8);
        return (float)v;
    }
    }
}

culora_status culora_tensor_read(culora_context *ctx, const culora_tensor_info *t, culora_dtype dst_dtype,
                                 void *dst, size_t dst_bytes)
{
    if (t == NULL || (dst == NULL && dst_bytes > 0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_tensor_read: NULL argument");
    size_t esize = culora_dtype_size(dst_dtype);
    if (esize == 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_tensor_read: tensor '%s': bad destination dtype %d",
                           t->name, (int)dst_dtype);
    if (t->dtype != CULORA_ST_F32 && t->dtype != CULORA_ST_F16 && t->dtype != CULORA_ST_BF16 &&
        t->dtype != CULORA_ST_F64)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: tensor '%s': dtype %s cannot be converted to %s (only F32, F16, BF16, F64)", t->file,
                           t->name, culora_st_dtype_name(t->dtype), culora_dtype_name(dst_dtype));
    if ((uint64_t)t->n_elems * esize != dst_bytes)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_tensor_read: tensor '%s': %lld elements of %s need %llu bytes, %zu given", t->name,
                           (long long)t->n_elems, culora_dtype_name(dst_dtype),
                           (unsigned long long)((uint64_t)t->n_elems * esize), dst_bytes);
    if (dst_bytes == 0)
        return CULORA_OK; /* empty tensor */
    if ((dst_dtype == CULORA_DTYPE_F32 && t->dtype == CULORA_ST_F32) ||
        (dst_dtype == CULORA_DTYPE_BF16 && t->dtype == CULORA_ST_BF16) ||
        (dst_dtype == CULORA_DTYPE_F16 && t->dtype == CULORA_ST_F16)) {
        memcpy(dst, t->data, dst_bytes);
        return CULORA_OK;
    }
    for (int64_t i = 0; i < t->n_elems; i++) {
        float v = load_f32(t, i);
        if (dst_dtype == CULORA_DTYPE_F32) {
            ((float *)dst)[i] = v;
        } else if (dst_dtype == CULORA_DTYPE_BF16) {
            culora_f32_to_bf16(&v, (uint16_t *)dst + i, 1);
        } else {
            ((uint16_t *)dst)[i] = f32_to_f16(v);
        }
    }
    return CULORA_OK;
}
