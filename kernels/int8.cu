/*
 * int8.cu — row-wise int8 weights and the LLM.int8 product on CUDA. Quantize / dequantize are
 * bit-for-bit the CPU reference (host/cpu/int8.c; rules in host/quant/quant_math.h).
 *
 *   quantize    scb[i] = max_j |w[i,j]|; cb[i,j] = round_half_even(w · ((1/scb)·127))   '='
 *   dequantize  out[i,j] = (cb · scb) · (1/127)   F32 or BF16 (RNE)                   '='
 *   matmul      y [m, d] = LLM.int8(x [m, k]) · Wᵀ (+ bias), bf16 x / y / bias:
 *     1. outlier columns: flag[j] = any_i |x[i,j]| >= t          act_flags_kernel (thread per column)
 *        cols[0..count) = ascending flagged columns                act_compact_kernel (one CTA, scan)
 *     2. sx[i] = max |x[i,j]| over |x| < t; qx = flag ? 0 : round(x·(1/sx)·127)
 *                                                                  act_quant_kernel (CTA per row)
 *     3. acc [m, d] int32 = qx · cbᵀ                               cuBLASLt, CUBLAS_COMPUTE_32I
 *     4. y = acc·(sx·scb)·(1/127²) + Σ_{c<count} x[i,cols[c]]·dequant(cb)[n,cols[c]] + bias
 *                                                                  int8_epilogue_kernel (32×32 tiles;
 *                                                                  outlier columns staged in smem)
 *   The outlier count stays on the device, so the whole product is enqueue-only and capturable.
 * First run on an H100 on 2026-11-26: tests pass; not timed yet: docs/kernels/int8.md.
 * Ref: host/cpu/int8.c.
 */
#include "../host/cuda/cuda_quant.h"
#include "../host/quant/quant_internal.h"
#include "../host/quant/quant_math.h"
#include "common.cuh"

#include <stdint.h>

__device__ __forceinline__ float load_any(const void *w, int bf16, int64_t idx)
{
    if (bf16)
        return __bfloat162float(((const __nv_bfloat16 *)w)[idx]);
    return ((const float *)w)[idx];
}

/* Block-wide max of non-negative values (blockDim.x a multiple of 32, <= 1024). */
__device__ float block_max(float m, float *red)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = 0.0f;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++)
        m = fmaxf(m, red[w]);
    __syncthreads();
    return m;
}

// ------------------------------------------------------------------------------------------
// Weights: quantize / dequantize

#define ROW_THREADS 256

__global__ void __launch_bounds__(ROW_THREADS)
    int8_quantize_kernel(const void *__restrict__ w, int bf16, int64_t ldw, int64_t cols, int8_t *__restrict__ cb,
                         float *__restrict__ scb, unsigned long long *__restrict__ first_bad)
{
    __shared__ float red[ROW_THREADS / 32];
    const int64_t i = blockIdx.x;
    float m = 0.0f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
        const float x = load_any(w, bf16, i * ldw + j);
        if (!isfinite(x))
            atomicMin(first_bad, (unsigned long long)(i * cols + j));
        m = fmaxf(m, fabsf(x));
    }
    m = block_max(m, red);
    if (threadIdx.x == 0)
        scb[i] = m;
    const float s = qm_int8_scale(m);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
        cb[i * cols + j] = qm_int8_code(load_any(w, bf16, i * ldw + j), s);
}

extern "C" culora_status cuda_int8_quantize_launch(culora_backend *be, const culora_quant_desc *d, const void *w,
                                                   int64_t ldw, culora_dtype w_dtype, const culora_quant_weight *q,
                                                   unsigned long long *first_bad, cudaStream_t stream)
{
    int8_quantize_kernel<<<(unsigned)d->rows, ROW_THREADS, 0, stream>>>(
        w, w_dtype == CULORA_DTYPE_BF16, ldw, d->cols, (int8_t *)q->data, q->absmax, first_bad);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

__global__ void int8_dequantize_kernel(const int8_t *__restrict__ cb, const float *__restrict__ scb, int64_t rows,
                                       int64_t cols, void *__restrict__ out, int bf16, int64_t ldout)
{
    const int64_t n = rows * cols;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = e / cols, j = e % cols;
        const float v = qm_int8_value(cb[e], scb[i]);
        if (bf16)
            ((__nv_bfloat16 *)out)[i * ldout + j] = __float2bfloat16_rn(v);
        else
            ((float *)out)[i * ldout + j] = v;
    }
}

extern "C" culora_status cuda_int8_dequantize_launch(culora_backend *be, const culora_quant_desc *d,
                                                     const culora_quant_weight *q, void *out, int64_t ldout,
                                                     culora_dtype out_dtype, cudaStream_t stream)
{
    int8_dequantize_kernel<<<culora_ew_blocks(d->rows * d->cols), CULORA_EW_THREADS, 0, stream>>>(
        (const int8_t *)q->data, q->absmax, d->rows, d->cols, out, out_dtype == CULORA_DTYPE_BF16, ldout);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

// ------------------------------------------------------------------------------------------
// LLM.int8 product

/* flag[j] = 1 when some |x[i,j]| >= t. Threads of a warp read consecutive columns of a row. */
__global__ void act_flags_kernel(const __nv_bfloat16 *__restrict__ x, int64_t ldx, int64_t m, int64_t k, float t,
                                 int32_t *__restrict__ flag)
{
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= k)
        return;
    int32_t f = 0;
    for (int64_t i = 0; i < m && !f; i++)
        f = fabsf(__bfloat162float(x[i * ldx + j])) >= t;
    flag[j] = f;
}

#define COMPACT_THREADS 1024

/* cols[0..*count) = the flagged columns in ascending order. One CTA: each thread takes a
 * contiguous run of columns, counts, an exclusive scan over threads gives its write position. */
__global__ void __launch_bounds__(COMPACT_THREADS)
    act_compact_kernel(const int32_t *__restrict__ flag, int64_t k, int32_t *__restrict__ cols,
                       int32_t *__restrict__ count)
{
    __shared__ int32_t scan[COMPACT_THREADS];
    const int64_t per = CULORA_CEIL_DIV(k, (int64_t)COMPACT_THREADS);
    const int64_t j0 = threadIdx.x * per, j1 = min(j0 + per, k);
    int32_t c = 0;
    for (int64_t j = j0; j < j1; j++)
        c += flag[j];
    scan[threadIdx.x] = c;
    __syncthreads();
    for (int o = 1; o < COMPACT_THREADS; o <<= 1) { /* Hillis-Steele inclusive scan */
        const int32_t add = threadIdx.x >= (unsigned)o ? scan[threadIdx.x - o] : 0;
        __syncthreads();
        scan[threadIdx.x] += add;
        __syncthreads();
    }
    int32_t at = scan[threadIdx.x] - c;
    for (int64_t j = j0; j < j1; j++)
        if (flag[j])
            cols[at++] = (int32_t)j;
    if (threadIdx.x == COMPACT_THREADS - 1)
        *count = scan[threadIdx.x];
}

/* One CTA per row: sx = max |x| over |x| < t (all when t == 0); codes, 0 in outlier columns. */
__global__ void __launch_bounds__(ROW_THREADS)
    act_quant_kernel(const __nv_bfloat16 *__restrict__ x, int64_t ldx, int64_t k, float t,
                     const int32_t *__restrict__ flag, int8_t *__restrict__ qx, int64_t ldq, float *__restrict__ sx)
{
    __shared__ float red[ROW_THREADS / 32];
    const int64_t i = blockIdx.x;
    float m = 0.0f;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
        const float v = fabsf(__bfloat162float(x[i * ldx + j]));
        if (t == 0.0f || v < t)
            m = fmaxf(m, v);
    }
    m = block_max(m, red);
    if (threadIdx.x == 0)
        sx[i] = m;
    const float s = qm_int8_scale(m);
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x)
        qx[i * ldq + j] = flag[j] ? (int8_t)0 : qm_int8_code(__bfloat162float(x[i * ldx + j]), s);
}

#define EPI_TILE 32
#define EPI_ROWS 8 /* threadIdx.y; each thread covers EPI_TILE / EPI_ROWS = 4 rows */

/* y = acc·(sx·scb)/127² + Σ outlier columns + bias, 32×32 output tile per CTA of 32×8 threads
 * (threadIdx.x = output column, so acc reads and y writes are coalesced). Outlier columns are
 * staged 32 at a time: x values [32 rows][32] and dequantized weights [32][32 cols]. */
__global__ void __launch_bounds__(EPI_TILE *EPI_ROWS)
    int8_epilogue_kernel(const int32_t *__restrict__ acc, int64_t ldc, const float *__restrict__ sx,
                         const int8_t *__restrict__ cb, const float *__restrict__ scb, int64_t k,
                         const __nv_bfloat16 *__restrict__ x, int64_t ldx, const int32_t *__restrict__ cols,
                         const int32_t *__restrict__ count, const __nv_bfloat16 *__restrict__ bias,
                         __nv_bfloat16 *__restrict__ y, int64_t ldy, int64_t m, int64_t d)
{
    __shared__ float xs[EPI_TILE][EPI_TILE + 1];
    __shared__ float ws[EPI_TILE][EPI_TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t n = (int64_t)blockIdx.x * EPI_TILE + tx;
    const int64_t i0 = (int64_t)blockIdx.y * EPI_TILE;
    float out[EPI_TILE / EPI_ROWS] = {0.0f, 0.0f, 0.0f, 0.0f};
    const int32_t n_out = *count;
    for (int32_t c0 = 0; c0 < n_out; c0 += EPI_TILE) {
        for (int q = ty; q < EPI_TILE; q += EPI_ROWS) {
            const int32_t c = c0 + q;
            const int64_t row = i0 + q; /* xs[row in tile][outlier c0 + tx] */
            xs[q][tx] = row < m && c0 + tx < n_out ? __bfloat162float(x[row * ldx + cols[c0 + tx]]) : 0.0f;
            ws[q][tx] = n < d && c < n_out ? qm_int8_value(cb[n * k + cols[c]], scb[n]) : 0.0f;
        }
        __syncthreads();
        const int lim = min(EPI_TILE, (int)(n_out - c0));
        for (int c = 0; c < lim; c++) {
            const float wv = ws[c][tx];
#pragma unroll
            for (int r = 0; r < EPI_TILE / EPI_ROWS; r++)
                out[r] = fmaf(xs[ty + r * EPI_ROWS][c], wv, out[r]);
        }
        __syncthreads();
    }
    if (n >= d)
        return;
    const float sw = scb[n], bv = bias != NULL ? __bfloat162float(bias[n]) : 0.0f;
#pragma unroll
    for (int r = 0; r < EPI_TILE / EPI_ROWS; r++) {
        const int64_t i = i0 + ty + r * EPI_ROWS;
        if (i < m)
            y[i * ldy + n] = __float2bfloat16_rn(qm_int8_mm_value(acc[i * ldc + n], sx[i], sw) + out[r] + bv);
    }
}

static int64_t round_to(int64_t v, int64_t a) { return (v + a - 1) / a * a; }
static size_t round256(size_t n) { return (n + 255) / 256 * 256; }

/* Workspace pieces: qx int8 [m, ldq], acc int32 [m, ldc], sx [m], flag [k], cols [k], count. */
struct i8_ws {
    int64_t ldq, ldc;
    size_t qx, acc, sx, flag, cols, count, total;
};

static struct i8_ws i8_ws_of(const culora_quant_desc *d, int64_t m)
{
    struct i8_ws w;
    w.ldq = round_to(d->cols, 16);
    w.ldc = round_to(d->rows, 4);
    w.qx = 0;
    w.acc = w.qx + round256((size_t)(m * w.ldq));
    w.sx = w.acc + round256(4 * (size_t)(m * w.ldc));
    w.flag = w.sx + round256(4 * (size_t)m);
    w.cols = w.flag + round256(4 * (size_t)d->cols);
    w.count = w.cols + round256(4 * (size_t)d->cols);
    w.total = w.count + 256;
    return w;
}

extern "C" size_t cuda_int8_matmul_ws_bytes(const culora_quant_desc *d, int64_t m) { return i8_ws_of(d, m).total; }

extern "C" culora_status cuda_int8_matmul(culora_backend *be, const culora_quant_desc *d, const culora_quant_weight *q,
                                          int64_t m, const void *x, int64_t ldx, const void *bias, void *y,
                                          int64_t ldy, void *ws, size_t ws_bytes, cudaStream_t stream)
{
    const struct i8_ws w = i8_ws_of(d, m);
    char *base = (char *)ws;
    int8_t *qx = (int8_t *)(base + w.qx);
    int32_t *acc = (int32_t *)(base + w.acc), *flag = (int32_t *)(base + w.flag), *cols = (int32_t *)(base + w.cols),
            *count = (int32_t *)(base + w.count);
    float *sx = (float *)(base + w.sx);
    const int64_t k = d->cols, n = d->rows;
    const __nv_bfloat16 *xb = (const __nv_bfloat16 *)x;
    if (d->threshold > 0.0f) {
        act_flags_kernel<<<(unsigned)CULORA_CEIL_DIV(k, (int64_t)256), 256, 0, stream>>>(xb, ldx, m, k, d->threshold,
                                                                                         flag);
        CULORA_CUDA_TRY(be, cudaGetLastError());
        act_compact_kernel<<<1, COMPACT_THREADS, 0, stream>>>(flag, k, cols, count);
        CULORA_CUDA_TRY(be, cudaGetLastError());
    } else {
        CULORA_CUDA_TRY(be, cudaMemsetAsync(flag, 0, 4 * (size_t)k, stream));
        CULORA_CUDA_TRY(be, cudaMemsetAsync(count, 0, 4, stream));
    }
    act_quant_kernel<<<(unsigned)m, ROW_THREADS, 0, stream>>>(xb, ldx, k, d->threshold, flag, qx, w.ldq, sx);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    CULORA_TRY(cuda_gemm_i8_rm(be, m, n, k, qx, w.ldq, (const int8_t *)q->data, k, acc, w.ldc, base + w.total,
                               ws_bytes - w.total, stream));
    const dim3 grid((unsigned)CULORA_CEIL_DIV(n, (int64_t)EPI_TILE), (unsigned)CULORA_CEIL_DIV(m, (int64_t)EPI_TILE));
    int8_epilogue_kernel<<<grid, dim3(EPI_TILE, EPI_ROWS), 0, stream>>>(
        acc, w.ldc, sx, (const int8_t *)q->data, q->absmax, k, xb, ldx, cols, count, (const __nv_bfloat16 *)bias,
        (__nv_bfloat16 *)y, ldy, m, n);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}
