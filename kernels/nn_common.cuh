/*
 * nn_common.cuh — device helpers shared by the transformer kernels (kernels/embedding.cu,
 * norm.cu, rope.cu, attention.cu, activation.cu, cross_entropy.cu, optim.cu).
 *
 * Reductions are deterministic: a warp reduces with an xor butterfly (lanes i and i^o combine
 * the same two values, so every lane ends with the same bits), then warp 0's values are reduced
 * the same way. Block sizes are multiples of 32, at most 1024.
 */
#ifndef CULORA_KERNELS_NN_COMMON_CUH
#define CULORA_KERNELS_NN_COMMON_CUH

#include "../host/cuda/cuda_nn.h"
#include "common.cuh"

#include <math.h>

typedef __nv_bfloat16 bf16;

#define NN_THREADS 256

template <typename T>
__device__ __forceinline__ T nn_warp_sum(T v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float nn_warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block, returned to every thread. shared: 32 elements, reusable across calls. */
template <typename T>
__device__ __forceinline__ T nn_block_sum(T v, T *shared)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = nn_warp_sum(v);
    __syncthreads(); /* a previous call's readers are done with shared */
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    T r = lane < n_warps ? shared[lane] : T(0);
    return nn_warp_sum(r);
}

__device__ __forceinline__ float nn_block_max(float v, float *shared)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = nn_warp_max(v);
    __syncthreads();
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    float r = lane < n_warps ? shared[lane] : -INFINITY;
    return nn_warp_max(r);
}

__device__ __forceinline__ float nn_ld(const bf16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ float nn_ld(const float *p) { return *p; }

/* Grid for a grid-stride loop over rows, one block per row. */
static inline unsigned int nn_row_blocks(int64_t rows)
{
    const int64_t cap = (int64_t)1 << 20;
    return (unsigned int)(rows < 1 ? 1 : rows < cap ? rows : cap);
}

/* Offset of the next 256-byte boundary at or after `bytes` (workspace carving). */
static inline size_t nn_align256(size_t bytes) { return (bytes + 255u) & ~(size_t)255u; }

#endif /* CULORA_KERNELS_NN_COMMON_CUH */
