/*
 * elementwise.cu — elementwise ops on bf16 matrices (fp32 math).
 *
 *   axpby: y[m,n] = alpha·x + beta·y   ('=' when beta == 0)     Ref: host/cpu/elementwise.c
 */
#include "../host/cuda/cuda_backend.h"
#include "common.cuh"

// ------------------------------------------------------------------------------------------

__global__ void axpby_kernel(int64_t m, int64_t n, float alpha, const __nv_bfloat16 *__restrict__ x, int64_t ldx,
                             float beta, __nv_bfloat16 *__restrict__ y, int64_t ldy)
{
    const int64_t total = m * n;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = i / n, col = i % n;
        float v = alpha * culora_load_f(&x[row * ldx + col]);
        if (beta != 0.0f)
            v += beta * culora_load_f(&y[row * ldy + col]);
        culora_store_f(&y[row * ldy + col], v);
    }
}

// ------------------------------------------------------------------------------------------

extern "C" culora_status cuda_axpby(culora_backend *be, const struct culora_axpby_args *g, culora_stream stream)
{
    axpby_kernel<<<culora_ew_blocks(g->m * g->n), CULORA_EW_THREADS, 0, (cudaStream_t)stream>>>(
        g->m, g->n, g->alpha, (const __nv_bfloat16 *)g->x, g->ldx, g->beta, (__nv_bfloat16 *)g->y, g->ldy);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}
