/*
 * sgmv.cu — segmented LoRA on CUDA (Punica's SGMV): rows [seg[i], seg[i+1]) use adapter i.
 *
 *   shrink   v[row, :] = s·x[row, :]·A_iᵀ        [m, r] bf16 '='  (fp32 accumulation, rounded once)
 *   expand   y[row, :] += v[row, :]·B_iᵀ         [m, d] bf16 '+=' (fp32 accumulation)
 *   A_i = a + i·stride_a [r, k], B_i = b + i·stride_b [d, r], bf16, row-major (host/sgmv_ops.h).
 *
 * Variant v1 (this file): one thread block per row, so the segment lookup (a binary search over
 * the boundaries, passed by value as a kernel argument) is uniform within the block.
 *   shrink: 4 warps per row; warp w computes outputs j = w, w+4, ...: its lanes stride over k
 *           (coalesced bf16 loads of x and of row j of A_i) and reduce with shuffles.
 *   expand: v's row goes to shared memory (fp32); thread t computes columns t, t+256, ...
 * Rows of different segments never share a block, so ragged and empty segments need no special
 * case. Punica's kernels (CUTLASS grouped GEMM for expand, flashinfer-style shrink) are faster on
 * long segments; this is the simple first version, to be measured against cuBLASLt strided-batched
 * GEMMs for equal segments before anything faster goes in (docs/lorahub.md).
 * Ref: host/cpu/sgmv.c. Checked arguments: host/hub/sgmv_dispatch.c.
 */
#include "../host/cuda/cuda_backend.h"
#include "../host/sgmv_ops.h"
#include "common.cuh"

// ------------------------------------------------------------------------------------------
// Kernels

struct sgmv_bounds {
    int64_t seg[CULORA_SGMV_MAX_SEGMENTS + 1];
    int32_t n;
};

/* The segment holding row: the last i with seg[i] <= row (empty segments are skipped over). */
__device__ __forceinline__ int32_t segment_of(const sgmv_bounds &b, int64_t row)
{
    int32_t lo = 0, hi = b.n - 1;
    while (lo < hi) {
        const int32_t mid = (lo + hi + 1) / 2;
        if (b.seg[mid] <= row)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

#define SHRINK_WARPS 4
#define EXPAND_THREADS 256

__global__ void __launch_bounds__(SHRINK_WARPS * 32)
    sgmv_shrink_kernel(const __nv_bfloat16 *__restrict__ x, int64_t ldx, const __nv_bfloat16 *__restrict__ a,
                       int64_t lda, int64_t stride_a, __nv_bfloat16 *__restrict__ v, int64_t ldv, int64_t k, int32_t r,
                       float scale, const sgmv_bounds bounds)
{
    const int64_t row = blockIdx.x;
    const int32_t seg = segment_of(bounds, row);
    const __nv_bfloat16 *xr = x + row * ldx;
    const __nv_bfloat16 *ai = a + (int64_t)seg * stride_a;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int32_t j = warp; j < r; j += SHRINK_WARPS) {
        const __nv_bfloat16 *aj = ai + (int64_t)j * lda;
        float acc = 0.0f;
        for (int64_t c = lane; c < k; c += 32)
            acc += culora_load_f(&xr[c]) * culora_load_f(&aj[c]);
#pragma unroll
        for (int off = 16; off > 0; off /= 2)
            acc += __shfl_xor_sync(0xffffffffu, acc, off);
        if (lane == 0)
            culora_store_f(&v[row * ldv + j], scale * acc);
    }
}

__global__ void __launch_bounds__(EXPAND_THREADS)
    sgmv_expand_kernel(const __nv_bfloat16 *__restrict__ v, int64_t ldv, const __nv_bfloat16 *__restrict__ b,
                       int64_t ldb, int64_t stride_b, __nv_bfloat16 *__restrict__ y, int64_t ldy, int64_t d, int32_t r,
                       const sgmv_bounds bounds)
{
    extern __shared__ float vs[]; /* [r] */
    const int64_t row = blockIdx.x;
    const int32_t seg = segment_of(bounds, row);
    for (int32_t j = threadIdx.x; j < r; j += blockDim.x)
        vs[j] = culora_load_f(&v[row * ldv + j]);
    __syncthreads();
    const __nv_bfloat16 *bi = b + (int64_t)seg * stride_b;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
        const __nv_bfloat16 *bc = bi + c * ldb;
        float acc = 0.0f;
        for (int32_t j = 0; j < r; j++)
            acc += vs[j] * culora_load_f(&bc[j]);
        __nv_bfloat16 *o = &y[row * ldy + c];
        culora_store_f(o, culora_load_f(o) + acc);
    }
}

// ------------------------------------------------------------------------------------------
// Launchers

static culora_status sgmv_launch(culora_backend *be, const struct culora_sgmv_args *a, cudaStream_t stream)
{
    sgmv_bounds bounds;
    bounds.n = a->n_segments;
    for (int32_t i = 0; i <= a->n_segments; i++)
        bounds.seg[i] = a->seg[i];
    const unsigned int rows = (unsigned int)a->m; /* the dispatcher's shapes: m < 2^31 checked below */
    sgmv_shrink_kernel<<<rows, SHRINK_WARPS * 32, 0, stream>>>(
        (const __nv_bfloat16 *)a->x, a->ldx, (const __nv_bfloat16 *)a->a, a->lda, a->stride_a, (__nv_bfloat16 *)a->v,
        a->ldv, a->k, a->r, a->scale, bounds);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    sgmv_expand_kernel<<<rows, EXPAND_THREADS, (size_t)a->r * sizeof(float), stream>>>(
        (const __nv_bfloat16 *)a->v, a->ldv, (const __nv_bfloat16 *)a->b, a->ldb, a->stride_b, (__nv_bfloat16 *)a->y,
        a->ldy, a->d, a->r, bounds);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

// ------------------------------------------------------------------------------------------
// Entry

static culora_status cuda_sgmv_fwd(culora_backend *be, const struct culora_sgmv_args *a, culora_stream stream)
{
    if (be->dtype != CULORA_DTYPE_BF16)
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED, "sgmv: the cuda kernels take bf16 storage");
    if (a->m > 0x7fffffffLL)
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED, "sgmv: %lld rows exceed the 2^31-1 blocks of one launch",
                           (long long)a->m);
    if ((size_t)a->r * sizeof(float) > 48 * 1024)
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED, "sgmv: rank %d exceeds the expand kernel's shared memory",
                           (int)a->r);
    return sgmv_launch(be, a, (cudaStream_t)stream);
}

extern "C" const struct culora_sgmv_i culora_cuda_sgmv_iface = {
    /* .family = */ "sgmv",
    /* .fwd    = */ cuda_sgmv_fwd,
};
