/*
 * nf4.cu — 4-bit weights (NF4, FP4; optionally double-quantized) on CUDA: quantize,
 * dequantize, and the batch-1 fused dequant-GEMV. Bit-for-bit the CPU reference
 * (host/cpu/nf4.c) for quantize and dequantize: both apply the per-value rules of
 * host/quant/quant_math.h, which pin every fp32 rounding (no FMA contraction).
 *
 *   w [rows, cols] (ld), flattened index e = row·cols + col, block b = e >> log2(blocksize)
 *   quantize     absmax[b] = max |w| (fp32)                                          '='
 *                packed[e/2] = code(w_e) << 4 | code(w_{e+1})   (first element HIGH)   '='
 *                DQ: offset = mean(absmax) (fp64, fixed order), absmax_q / nested_absmax =
 *                bitsandbytes' 8-bit table quantization of absmax - offset, blocks of 256   '='
 *   dequantize   out_e = code[nibble_e] · absmax[b] (DQ: decoded absmax), F32 or BF16 (RNE) '='
 *   gemv         y[j] = Σ_k W[j,k]·x[k] (+ bias[j]) (+ Σ_t v[t]·B[j,t])   bf16 in/out,
 *                fp32 accumulation; W streamed once, dequantized in registers       '='
 *
 * Kernels (launchers below each):
 *   quant4_kernel      one warp per block: warp-max absmax, codes, one packed byte per pair
 *   dq_*_kernel        mean (per-256 fp64 partial sums, then one thread), 64 Ki-entry table,
 *                      nested quantization (one CTA per 256 absmax)
 *   dequant4_kernel    8 values per thread (one 32-bit word of codes), 16-byte stores when rows
 *                      are 8-element aligned; grid-stride
 *   gemv4_kernel       one warp per output row (4 per CTA, bitsandbytes'
 *                      kgemm_4bit_inference_naive layout): each lane loads 16 B = 32 codes and
 *                      the 32 matching bf16 inputs per step, scales the partial sum by the block
 *                      absmax once per 32 values, warp-sum; rank-r term and bias in the epilogue
 * First run on an H100 on 2026-11-26: tests pass; GEMV 767–1049 GB/s (nf4-dq), far below the
 * 85%-of-bandwidth target: docs/kernels/nf4.md.
 * Ref: host/cpu/nf4.c. Bench: bench/bench_quant.c.
 */
#include "../host/cuda/cuda_quant.h"
#include "../host/quant/quant_codes.h"
#include "../host/quant/quant_internal.h"
#include "../host/quant/quant_math.h"
#include "common.cuh"

#include <stdint.h>

/* bitsandbytes' dynamic 8-bit code: the nested quant map double quantization writes. */
__constant__ float c_dyn8_code[256] = CULORA_DYN8_CODE_INIT;
/* The 4-bit codes (nibble -> value) the dequantizing kernels copy into shared memory. */
__constant__ float c_nf4_code[16] = CULORA_NF4_CODE_INIT;
__constant__ float c_fp4_code[16] = CULORA_FP4_CODE_INIT;

/* The 4-bit code and its quantizer tables, passed by value. */
struct code4_param {
    float code[16];
    float mids[15];
    uint8_t order[16];
};

static code4_param code4_of(int32_t format)
{
    struct culora_code4 c;
    culora_code4_get(format, &c);
    code4_param p;
    memcpy(p.code, c.code, sizeof p.code);
    memcpy(p.mids, c.mids, sizeof p.mids);
    memcpy(p.order, c.order, sizeof p.order);
    return p;
}

static int log2i(int v)
{
    int s = 0;
    while ((1 << s) < v)
        s++;
    return s;
}

__device__ __forceinline__ float load_w(const void *w, int bf16, int64_t idx)
{
    if (bf16)
        return __bfloat162float(((const __nv_bfloat16 *)w)[idx]);
    return ((const float *)w)[idx];
}

// ------------------------------------------------------------------------------------------
// Quantize: one warp per quantization block

#define Q4_WARPS 8

__global__ void __launch_bounds__(Q4_WARPS * 32)
    quant4_kernel(const void *__restrict__ w, int bf16, int64_t ldw, int64_t cols, int64_t n_blocks, int bs,
                  code4_param cp, float *__restrict__ absmax_out, uint8_t *__restrict__ packed,
                  unsigned long long *__restrict__ first_bad)
{
    const int lane = threadIdx.x & 31;
    const int64_t b = (int64_t)blockIdx.x * Q4_WARPS + (threadIdx.x >> 5);
    if (b >= n_blocks)
        return; /* whole warps leave together */
    const int64_t e0 = b * bs;
    const int n_pairs = bs / 2;
    float v[8]; /* this lane's pairs: at most 128/32 = 4 */
    float m = 0.0f;
    for (int p = lane, i = 0; p < n_pairs; p += 32, i++)
        for (int h = 0; h < 2; h++) {
            const int64_t e = e0 + 2 * p + h;
            const float x = load_w(w, bf16, (e / cols) * ldw + e % cols);
            if (!isfinite(x))
                atomicMin(first_bad, (unsigned long long)e);
            m = fmaxf(m, fabsf(x));
            v[2 * i + h] = x;
        }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) /* max is exact and order-free */
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0)
        absmax_out[b] = m;
    const float inv = qm_4bit_inv_absmax(m);
    for (int p = lane, i = 0; p < n_pairs; p += 32, i++) {
        const uint8_t hi = qm_4bit_code(v[2 * i], inv, cp.mids, cp.order);
        const uint8_t lo = qm_4bit_code(v[2 * i + 1], inv, cp.mids, cp.order);
        packed[e0 / 2 + p] = (uint8_t)(hi << 4 | lo);
    }
}

extern "C" culora_status cuda_quant4_quantize_launch(culora_backend *be, const culora_quant_desc *d, const void *w,
                                                     int64_t ldw, culora_dtype w_dtype, float *absmax_out,
                                                     uint8_t *packed, unsigned long long *first_bad,
                                                     cudaStream_t stream)
{
    const int64_t n_blocks = d->rows * d->cols / d->blocksize;
    const unsigned grid = (unsigned)CULORA_CEIL_DIV(n_blocks, (int64_t)Q4_WARPS);
    quant4_kernel<<<grid, Q4_WARPS * 32, 0, stream>>>(w, w_dtype == CULORA_DTYPE_BF16, ldw, d->cols, n_blocks,
                                                      d->blocksize, code4_of(d->format), absmax_out, packed,
                                                      first_bad);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

// ------------------------------------------------------------------------------------------
// Double quantization of the absmax

#define DQ_BLOCK CULORA_QUANT_NESTED_BLOCKSIZE

/* partial[c] = Σ absmax[256c .. 256c+255] in fp64, left to right (culora_dq_mean's order). */
__global__ void dq_partial_kernel(const float *__restrict__ absmax, int64_t n, int64_t n_chunks,
                                  double *__restrict__ partial)
{
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= n_chunks)
        return;
    const int64_t end = min(c * DQ_BLOCK + DQ_BLOCK, n);
    double s = 0.0;
    for (int64_t i = c * DQ_BLOCK; i < end; i++)
        s += (double)absmax[i];
    partial[c] = s;
}

/* offset = (Σ partial, left to right) / n; nested_code = the dynamic map. One CTA of 256. */
__global__ void dq_mean_kernel(const double *__restrict__ partial, int64_t n_chunks, int64_t n,
                               float *__restrict__ offset, float *__restrict__ nested_code)
{
    nested_code[threadIdx.x] = c_dyn8_code[threadIdx.x];
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int64_t c = 0; c < n_chunks; c++)
            total += partial[c];
        *offset = (float)(total / (double)n);
    }
}

/* lut[i] = number of code midpoints below -1 + 2i/65535 (culora_dyn8_lut_build). */
__global__ void dq_lut_kernel(const float *__restrict__ code, uint8_t *__restrict__ lut)
{
    __shared__ float mids[255];
    for (int j = threadIdx.x; j < 255; j += blockDim.x)
        mids[j] = qm_dyn_midpoint(code, j);
    __syncthreads();
    const int32_t i = (int32_t)(blockIdx.x * blockDim.x + threadIdx.x);
    const float t = qm_dyn_lut_point(i);
    int lo = 0, hi = 255; /* first midpoint >= t: the midpoints are sorted */
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (mids[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    lut[i] = (uint8_t)lo;
}

/* One CTA per nested block of 256 absmax values. */
__global__ void __launch_bounds__(DQ_BLOCK)
    dq_nested_kernel(const float *__restrict__ absmax, int64_t n, const float *__restrict__ offset,
                     const uint8_t *__restrict__ lut, uint8_t *__restrict__ absmax_q,
                     float *__restrict__ nested_absmax)
{
    __shared__ float red[DQ_BLOCK / 32];
    const int64_t i = (int64_t)blockIdx.x * DQ_BLOCK + threadIdx.x;
    const bool valid = i < n;
    const float a = valid ? QM_SUB(absmax[i], *offset) : 0.0f;
    float m = fabsf(a);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = red[0];
#pragma unroll
    for (int k = 1; k < DQ_BLOCK / 32; k++)
        m = fmaxf(m, red[k]);
    if (threadIdx.x == 0)
        nested_absmax[blockIdx.x] = m;
    if (valid) /* an all-zero block gets code 0, as bitsandbytes writes it */
        absmax_q[i] = m == 0.0f ? (uint8_t)0 : lut[qm_dyn_lut_index(a, QM_DIV(1.0f, m))];
}

static size_t round256(size_t n) { return (n + 255) / 256 * 256; }

extern "C" size_t cuda_dq_scratch_bytes(int64_t n)
{
    return round256(8 * (size_t)CULORA_CEIL_DIV(n, (int64_t)DQ_BLOCK)) + QM_DYN_LUT_SIZE;
}

extern "C" culora_status cuda_dq_quantize_launch(culora_backend *be, const float *absmax, int64_t n,
                                                 const culora_quant_weight *q, void *scratch, cudaStream_t stream)
{
    const int64_t n_chunks = CULORA_CEIL_DIV(n, (int64_t)DQ_BLOCK);
    double *partial = (double *)scratch;
    uint8_t *lut = (uint8_t *)scratch + round256(8 * (size_t)n_chunks);
    dq_partial_kernel<<<(unsigned)CULORA_CEIL_DIV(n_chunks, (int64_t)256), 256, 0, stream>>>(absmax, n, n_chunks,
                                                                                           partial);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    dq_mean_kernel<<<1, 256, 0, stream>>>(partial, n_chunks, n, q->offset, q->nested_code);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    dq_lut_kernel<<<QM_DYN_LUT_SIZE / 256, 256, 0, stream>>>(q->nested_code, lut);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    dq_nested_kernel<<<(unsigned)n_chunks, DQ_BLOCK, 0, stream>>>(absmax, n, q->offset, lut, q->absmax_q,
                                                                   q->nested_absmax);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

// ------------------------------------------------------------------------------------------
// Dequantize: 8 values (one 32-bit word of codes) per thread

template <bool DQ>
__global__ void dequant4_kernel(const uint8_t *__restrict__ packed, int aligned4, const float *__restrict__ absmax,
                                const uint8_t *__restrict__ absmax_q, const float *__restrict__ nested,
                                const float *__restrict__ ncode, const float *__restrict__ offset, int fp4,
                                int bs_shift, int64_t n8, int64_t cols, void *__restrict__ out, int bf16,
                                int64_t ldout, int vec)
{
    __shared__ float lut[16];
    if (threadIdx.x < 16)
        lut[threadIdx.x] = fp4 ? c_fp4_code[threadIdx.x] : c_nf4_code[threadIdx.x];
    __syncthreads();
    const float off = DQ ? *offset : 0.0f;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n8; t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t e0 = 8 * t;
        const int64_t b = e0 >> bs_shift; /* 8 | blocksize: one block */
        const float am = DQ ? qm_dq_absmax(ncode, absmax_q[b], nested[b >> 8], off) : absmax[b];
        uint32_t word;
        if (aligned4) {
            word = ((const uint32_t *)packed)[t];
        } else {
            const uint8_t *p = packed + 4 * t;
            word = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        }
        float v[8];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const uint32_t byte = (word >> (8 * j)) & 0xffu;
            v[2 * j] = qm_4bit_value(lut, byte >> 4, am);
            v[2 * j + 1] = qm_4bit_value(lut, byte & 0x0fu, am);
        }
        if (vec) { /* the 8 values are contiguous in one row and the destination 16-byte aligned */
            const int64_t at = (e0 / cols) * ldout + e0 % cols;
            if (bf16) {
                uint32_t u[4]; /* element 2j in the low half: the lower address */
#pragma unroll
                for (int j = 0; j < 4; j++)
                    u[j] = (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * j])) |
                           (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * j + 1])) << 16;
                *(uint4 *)((__nv_bfloat16 *)out + at) = make_uint4(u[0], u[1], u[2], u[3]);
            } else {
                float4 *o = (float4 *)((float *)out + at);
                o[0] = make_float4(v[0], v[1], v[2], v[3]);
                o[1] = make_float4(v[4], v[5], v[6], v[7]);
            }
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const int64_t e = e0 + j;
                const int64_t at = (e / cols) * ldout + e % cols;
                if (bf16)
                    ((__nv_bfloat16 *)out)[at] = __float2bfloat16_rn(v[j]);
                else
                    ((float *)out)[at] = v[j];
            }
        }
    }
}

extern "C" culora_status cuda_quant4_dequantize_launch(culora_backend *be, const culora_quant_desc *d,
                                                       const culora_quant_weight *q, void *out, int64_t ldout,
                                                       culora_dtype out_dtype, cudaStream_t stream)
{
    const int64_t n8 = d->rows * d->cols / 8;
    const bool bf16 = out_dtype == CULORA_DTYPE_BF16;
    const bool vec = d->cols % 8 == 0 && ldout % (bf16 ? 8 : 4) == 0 && (uintptr_t)out % 16 == 0;
    const int aligned4 = (uintptr_t)q->data % 4 == 0;
    const int fp4 = d->format == CULORA_QUANT_FP4;
    const unsigned grid = culora_ew_blocks(n8);
    if (culora_quant_is_dq(d))
        dequant4_kernel<true><<<grid, CULORA_EW_THREADS, 0, stream>>>(
            (const uint8_t *)q->data, aligned4, NULL, q->absmax_q, q->nested_absmax, q->nested_code, q->offset, fp4,
            log2i(d->blocksize), n8, d->cols, out, bf16, ldout, vec);
    else
        dequant4_kernel<false><<<grid, CULORA_EW_THREADS, 0, stream>>>(
            (const uint8_t *)q->data, aligned4, q->absmax, NULL, NULL, NULL, NULL, fp4, log2i(d->blocksize), n8,
            d->cols, out, bf16, ldout, vec);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

// ------------------------------------------------------------------------------------------
// Batch-1 fused dequant-GEMV (+ rank-r term): one warp per output row

#define GEMV_WARPS 4

template <bool DQ, bool LORA>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    gemv4_kernel(const uint8_t *__restrict__ packed, const float *__restrict__ absmax,
                 const uint8_t *__restrict__ absmax_q, const float *__restrict__ nested,
                 const float *__restrict__ ncode, const float *__restrict__ offset, int fp4, int bs_shift,
                 const __nv_bfloat16 *__restrict__ x, const __nv_bfloat16 *__restrict__ bias,
                 const __nv_bfloat16 *__restrict__ v, const __nv_bfloat16 *__restrict__ B, int64_t ldb, int r,
                 __nv_bfloat16 *__restrict__ y, int64_t rows, int64_t k)
{
    __shared__ float lut[16];
    if (threadIdx.x < 16)
        lut[threadIdx.x] = fp4 ? c_fp4_code[threadIdx.x] : c_nf4_code[threadIdx.x];
    __syncthreads();
    const int lane = threadIdx.x & 31;
    const int64_t j = (int64_t)blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (j >= rows)
        return;
    const float off = DQ ? __ldg(offset) : 0.0f;
    const uint4 *wrow = (const uint4 *)(packed + j * (k / 2)); /* 16 B = 32 codes */
    const uint4 *xv = (const uint4 *)x;                        /* 16 B = 8 inputs */
    const int64_t chunks = k / 32;
    float acc = 0.0f;
#pragma unroll 2
    for (int64_t c = lane; c < chunks; c += 32) {
        const uint4 wq = __ldg(&wrow[c]);
        const int64_t b = (j * k + 32 * c) >> bs_shift; /* 32 | blocksize: one block per chunk */
        const float am = DQ ? qm_dq_absmax(ncode, __ldg(absmax_q + b), __ldg(nested + (b >> 8)), off)
                            : __ldg(absmax + b);
        const uint32_t words[4] = {wq.x, wq.y, wq.z, wq.w};
        float part = 0.0f;
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const uint4 xq = __ldg(&xv[4 * c + q]); /* inputs 32c + 8q .. +7 */
            const uint32_t xs[4] = {xq.x, xq.y, xq.z, xq.w};
#pragma unroll
            for (int h = 0; h < 4; h++) { /* byte h: inputs 8q + 2h (high nibble) and + 1 (low) */
                const uint32_t byte = (words[q] >> (8 * h)) & 0xffu;
                part = fmaf(lut[byte >> 4], __uint_as_float(xs[h] << 16), part);
                part = fmaf(lut[byte & 0x0fu], __uint_as_float(xs[h] & 0xffff0000u), part);
            }
        }
        acc = fmaf(part, am, acc); /* the block scale once per 32 values */
    }
    if (LORA)
        for (int t = lane; t < r; t += 32)
            acc = fmaf(__bfloat162float(v[t]), __bfloat162float(B[j * ldb + t]), acc);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) {
        if (bias != NULL)
            acc += __bfloat162float(bias[j]);
        y[j] = __float2bfloat16_rn(acc);
    }
}

extern "C" bool cuda_gemv4_applies(const culora_quant_desc *d, const culora_quant_weight *q, const void *x)
{
    return culora_quant_is_4bit(d->format) && d->cols % 32 == 0 && (uintptr_t)q->data % 16 == 0 &&
           (uintptr_t)x % 16 == 0;
}

extern "C" culora_status cuda_gemv4_launch(culora_backend *be, const culora_quant_desc *d,
                                           const culora_quant_weight *q, const void *x, const void *bias,
                                           const void *v, const void *b, int64_t ldb, int32_t r, void *y,
                                           cudaStream_t stream)
{
    const int fp4 = d->format == CULORA_QUANT_FP4;
    const unsigned grid = (unsigned)CULORA_CEIL_DIV(d->rows, (int64_t)GEMV_WARPS);
    const int sh = log2i(d->blocksize);
    const uint8_t *p = (const uint8_t *)q->data;
    const __nv_bfloat16 *xb = (const __nv_bfloat16 *)x, *bb = (const __nv_bfloat16 *)bias,
                        *vb = (const __nv_bfloat16 *)v, *Bb = (const __nv_bfloat16 *)b;
    __nv_bfloat16 *yb = (__nv_bfloat16 *)y;
    const bool dq = culora_quant_is_dq(d), lora = b != NULL;
#define GEMV_LAUNCH(DQ_, LORA_)                                                                                    \
    gemv4_kernel<DQ_, LORA_><<<grid, GEMV_WARPS * 32, 0, stream>>>(p, q->absmax, q->absmax_q, q->nested_absmax,    \
                                                                   q->nested_code, q->offset, fp4, sh, xb, bb, vb, \
                                                                   Bb, ldb, r, yb, d->rows, d->cols)
    if (dq && lora) GEMV_LAUNCH(true, true);
    else if (dq) GEMV_LAUNCH(true, false);
    else if (lora) GEMV_LAUNCH(false, true);
    else GEMV_LAUNCH(false, false);
#undef GEMV_LAUNCH
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}
