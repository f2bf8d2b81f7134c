/*
 * quant_format.c — what a quantized weight is: descriptor checks, buffer layout, code tables,
 * and the whole-array rules of double quantization (8-bit lookup table, absmax mean, nested
 * quantization). Host code, no backend: the CPU reference, the CUDA entries (for tables and
 * sizes), serialization and the CLI share it.
 */
#include "quant_internal.h"
#include "quant_codes.h"
#include "quant_math.h"

#include <math.h>
#include <string.h>

static const float nf4_code[16] = CULORA_NF4_CODE_INIT;
static const float fp4_code[16] = CULORA_FP4_CODE_INIT;
static const uint8_t nf4_order[16] = CULORA_NF4_ORDER_INIT;
static const uint8_t fp4_order[16] = CULORA_FP4_ORDER_INIT;
static const float dyn8_code[256] = CULORA_DYN8_CODE_INIT;

void culora_code4_get(int32_t format, struct culora_code4 *out)
{
    const bool fp4 = format == CULORA_QUANT_FP4;
    memcpy(out->code, fp4 ? fp4_code : nf4_code, sizeof out->code);
    memcpy(out->order, fp4 ? fp4_order : nf4_order, sizeof out->order);
    for (int i = 0; i < 15; i++) /* (sorted[i] + sorted[i+1]) / 2, as torch computes the bounds */
        out->mids[i] = QM_MUL(QM_ADD(out->code[out->order[i]], out->code[out->order[i + 1]]), 0.5f);
}

const float *culora_dyn8_code(void) { return dyn8_code; }

const char *culora_quant_format_name(int32_t format)
{
    switch (format) {
    case CULORA_QUANT_NF4: return "nf4";
    case CULORA_QUANT_FP4: return "fp4";
    case CULORA_QUANT_INT8: return "int8";
    default: return "?";
    }
}

const char *culora_quant_torch_dtype_name(culora_st_dtype dt)
{
    switch (dt) {
    case CULORA_ST_BF16: return "bfloat16";
    case CULORA_ST_F16: return "float16";
    case CULORA_ST_F32: return "float32";
    default: return NULL;
    }
}

culora_status culora_quant_check_desc(culora_context *ctx, const char *op, const culora_quant_desc *d)
{
    if (d == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: qdesc is NULL", op);
    if (d->struct_size != sizeof(culora_quant_desc) || d->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: qdesc not initialised with CULORA_QUANT_DESC_INIT", op);
    if (d->format != CULORA_QUANT_NF4 && d->format != CULORA_QUANT_FP4 && d->format != CULORA_QUANT_INT8)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: qdesc->format = %d is not CULORA_QUANT_NF4, _FP4 or _INT8", op, (int)d->format);
    if (d->flags & ~(uint32_t)CULORA_QUANT_DOUBLE_QUANT)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: qdesc->flags has unknown bits 0x%x", op,
                           d->flags & ~(uint32_t)CULORA_QUANT_DOUBLE_QUANT);
    if (d->format == CULORA_QUANT_INT8 && (d->flags & CULORA_QUANT_DOUBLE_QUANT))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: qdesc->flags: CULORA_QUANT_DOUBLE_QUANT applies to 4-bit formats, not int8", op);
    if (d->rows < 1 || d->cols < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: qdesc shape [%lld,%lld]; both must be >= 1", op,
                           (long long)d->rows, (long long)d->cols);
    if (d->rows > INT64_MAX / d->cols)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: qdesc shape [%lld,%lld] overflows", op,
                           (long long)d->rows, (long long)d->cols);
    if (culora_quant_is_4bit(d->format)) {
        const int32_t bs = d->blocksize;
        if (bs != 32 && bs != 64 && bs != 128 && bs != 256)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                               "%s: qdesc->blocksize = %d; 4-bit formats take 32, 64, 128 or 256", op, (int)bs);
        const int64_t n = d->rows * d->cols;
        if (n % bs != 0)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                               "%s: qdesc shape [%lld,%lld] has %lld elements, not a multiple of blocksize %d "
                               "(bitsandbytes would quantize a partial last block; culora does not)",
                               op, (long long)d->rows, (long long)d->cols, (long long)n, (int)bs);
    } else {
        if (!(isfinite(d->threshold) && d->threshold >= 0.0f))
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                               "%s: qdesc->threshold = %g must be finite and >= 0 (0: no outlier columns)", op,
                               (double)d->threshold);
    }
    return CULORA_OK;
}

void culora_quant_layout_of(const culora_quant_desc *d, culora_quant_layout *o)
{
    memset(o, 0, sizeof *o);
    const int64_t n = d->rows * d->cols;
    o->n_elems = n;
    if (d->format == CULORA_QUANT_INT8) {
        o->n_blocks = d->rows;
        o->data_bytes = (size_t)n;
        o->absmax_bytes = 4 * (size_t)d->rows;
        return;
    }
    o->n_blocks = n / d->blocksize;
    o->data_bytes = (size_t)(n / 2);
    if (d->flags & CULORA_QUANT_DOUBLE_QUANT) {
        o->n_nested_blocks = (o->n_blocks + CULORA_QUANT_NESTED_BLOCKSIZE - 1) / CULORA_QUANT_NESTED_BLOCKSIZE;
        o->absmax_q_bytes = (size_t)o->n_blocks;
        o->nested_absmax_bytes = 4 * (size_t)o->n_nested_blocks;
        o->nested_code_bytes = 4 * 256;
        o->offset_bytes = 4;
    } else {
        o->absmax_bytes = 4 * (size_t)o->n_blocks;
    }
}

culora_status culora_quant_layout_get(culora_context *ctx, const culora_quant_desc *desc, culora_quant_layout *out)
{
    static const char op[] = "culora_quant_layout_get";
    CULORA_TRY(culora_quant_check_desc(ctx, op, desc));
    if (out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: out is NULL", op);
    culora_quant_layout_of(desc, out);
    return CULORA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Double quantization                                                                       */

void culora_dyn8_lut_build(const float *code, uint8_t *lut)
{
    float mids[255];
    for (int j = 0; j < 255; j++)
        mids[j] = qm_dyn_midpoint(code, j);
    int idx = 0; /* the table points increase, so the index only moves forward (cpu_ops.cpp) */
    for (int32_t i = 0; i < QM_DYN_LUT_SIZE; i++) {
        const float t = qm_dyn_lut_point(i);
        while (idx < 255 && mids[idx] < t)
            idx++;
        lut[i] = (uint8_t)idx;
    }
}

float culora_dq_mean(const float *absmax, int64_t n)
{
    double total = 0.0;
    for (int64_t b = 0; b < n; b += CULORA_QUANT_NESTED_BLOCKSIZE) {
        const int64_t end = b + CULORA_QUANT_NESTED_BLOCKSIZE < n ? b + CULORA_QUANT_NESTED_BLOCKSIZE : n;
        double run = 0.0;
        for (int64_t i = b; i < end; i++)
            run += (double)absmax[i];
        total += run;
    }
    return (float)(total / (double)n);
}

void culora_dq_quantize(const float *absmax, int64_t n, float offset, const uint8_t *lut, uint8_t *absmax_q,
                        float *nested_absmax)
{
    for (int64_t b = 0; b < n; b += CULORA_QUANT_NESTED_BLOCKSIZE) {
        const int64_t end = b + CULORA_QUANT_NESTED_BLOCKSIZE < n ? b + CULORA_QUANT_NESTED_BLOCKSIZE : n;
        float m = 0.0f; /* max |absmax - offset| over the nested block */
        for (int64_t i = b; i < end; i++)
            m = fmaxf(m, fabsf(QM_SUB(absmax[i], offset)));
        nested_absmax[b / CULORA_QUANT_NESTED_BLOCKSIZE] = m;
        if (m == 0.0f) { /* bitsandbytes writes code 0 for an all-zero block */
            memset(absmax_q + b, 0, (size_t)(end - b));
            continue;
        }
        const float inv = QM_DIV(1.0f, m);
        for (int64_t i = b; i < end; i++)
            absmax_q[i] = lut[qm_dyn_lut_index(QM_SUB(absmax[i], offset), inv)];
    }
}
