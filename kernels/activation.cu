/*
 * activation.cu — GELU (tanh approximation), SwiGLU and the residual add on CUDA.
 *
 *   gelu     y = 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³)      dx = dy·gelu'(x)
 *   swiglu   y = silu(g)·up                                             dg = dy·up·σ(g)·(1 + g·(1−σ(g))), dup = dy·silu(g)
 *   add      out = a + b
 * bf16 in and out, fp32 math (accurate tanhf/expf), one thread per element in a grid-stride
 * loop; each thread reads its inputs before it writes, so exact in-place aliases are safe.
 * Ref: host/cpu/activation.c.
 */
#include "nn_common.cuh"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

// ------------------------------------------------------------------------------------------
// Kernels

#define NN_FOR_EACH(n, c)                                                                                 \
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, total_ = (n) * (c); idx < total_; \
         idx += (int64_t)gridDim.x * blockDim.x)

__global__ void gelu_fwd_kernel(const bf16 *x, int64_t ldx, bf16 *y, int64_t ldy, int64_t n, int64_t c)
{
    NN_FOR_EACH(n, c)
    {
        const int64_t i = idx / c, j = idx % c;
        const float v = nn_ld(&x[i * ldx + j]);
        y[i * ldy + j] = __float2bfloat16_rn(0.5f * v * (1.0f + tanhf(GELU_K * (v + GELU_C * v * v * v))));
    }
}

__global__ void gelu_bwd_kernel(const bf16 *x, int64_t ldx, const bf16 *dy, int64_t lddy, bf16 *dx, int64_t lddx,
                                int64_t n, int64_t c)
{
    NN_FOR_EACH(n, c)
    {
        const int64_t i = idx / c, j = idx % c;
        const float v = nn_ld(&x[i * ldx + j]), d = nn_ld(&dy[i * lddy + j]);
        const float t = tanhf(GELU_K * (v + GELU_C * v * v * v));
        const float g = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * v * v);
        dx[i * lddx + j] = __float2bfloat16_rn(d * g);
    }
}

__global__ void swiglu_fwd_kernel(const bf16 *g, int64_t ldg, const bf16 *u, int64_t ldu, bf16 *y, int64_t ldy,
                                  int64_t n, int64_t c)
{
    NN_FOR_EACH(n, c)
    {
        const int64_t i = idx / c, j = idx % c;
        const float gv = nn_ld(&g[i * ldg + j]), uv = nn_ld(&u[i * ldu + j]);
        y[i * ldy + j] = __float2bfloat16_rn(gv / (1.0f + expf(-gv)) * uv);
    }
}

__global__ void swiglu_bwd_kernel(const bf16 *g, int64_t ldg, const bf16 *u, int64_t ldu, const bf16 *dy,
                                  int64_t lddy, bf16 *dg, int64_t lddg, bf16 *du, int64_t lddu, int64_t n, int64_t c)
{
    NN_FOR_EACH(n, c)
    {
        const int64_t i = idx / c, j = idx % c;
        const float gv = nn_ld(&g[i * ldg + j]), uv = nn_ld(&u[i * ldu + j]), d = nn_ld(&dy[i * lddy + j]);
        const float sg = 1.0f / (1.0f + expf(-gv));
        dg[i * lddg + j] = __float2bfloat16_rn(d * uv * sg * (1.0f + gv * (1.0f - sg)));
        du[i * lddu + j] = __float2bfloat16_rn(d * gv * sg);
    }
}

__global__ void add_kernel(const bf16 *a, int64_t lda, const bf16 *b, int64_t ldb, bf16 *out, int64_t ldout,
                           int64_t n, int64_t c)
{
    NN_FOR_EACH(n, c)
    {
        const int64_t i = idx / c, j = idx % c;
        out[i * ldout + j] = __float2bfloat16_rn(nn_ld(&a[i * lda + j]) + nn_ld(&b[i * ldb + j]));
    }
}

// ------------------------------------------------------------------------------------------
// Entries (launch = one grid-stride kernel each)

#define NN_LAUNCH(kernel, n, c, stream, ...)                                                        \
    do {                                                                                            \
        kernel<<<culora_ew_blocks((n) * (c)), CULORA_EW_THREADS, 0, (cudaStream_t)(stream)>>>(__VA_ARGS__); \
        CULORA_CUDA_TRY(be, cudaGetLastError());                                                    \
    } while (0)

extern "C" culora_status cuda_gelu_fwd(culora_backend *be, const struct culora_nn_gelu_args *a, culora_stream s)
{
    NN_LAUNCH(gelu_fwd_kernel, a->n, a->c, s, (const bf16 *)a->x, a->ldx, (bf16 *)a->y, a->ldy, a->n, a->c);
    return CULORA_OK;
}

extern "C" culora_status cuda_gelu_bwd(culora_backend *be, const struct culora_nn_gelu_bwd_args *a, culora_stream s)
{
    NN_LAUNCH(gelu_bwd_kernel, a->n, a->c, s, (const bf16 *)a->x, a->ldx, (const bf16 *)a->dy, a->lddy, (bf16 *)a->dx,
              a->lddx, a->n, a->c);
    return CULORA_OK;
}

extern "C" culora_status cuda_swiglu_fwd(culora_backend *be, const struct culora_nn_swiglu_args *a, culora_stream s)
{
    NN_LAUNCH(swiglu_fwd_kernel, a->n, a->c, s, (const bf16 *)a->gate, a->ldgate, (const bf16 *)a->up, a->ldup,
              (bf16 *)a->y, a->ldy, a->n, a->c);
    return CULORA_OK;
}

extern "C" culora_status cuda_swiglu_bwd(culora_backend *be, const struct culora_nn_swiglu_bwd_args *a,
                                         culora_stream s)
{
    NN_LAUNCH(swiglu_bwd_kernel, a->n, a->c, s, (const bf16 *)a->gate, a->ldgate, (const bf16 *)a->up, a->ldup,
              (const bf16 *)a->dy, a->lddy, (bf16 *)a->dgate, a->lddgate, (bf16 *)a->dup, a->lddup, a->n, a->c);
    return CULORA_OK;
}

extern "C" culora_status cuda_add(culora_backend *be, const struct culora_nn_add_args *a, culora_stream s)
{
    NN_LAUNCH(add_kernel, a->n, a->c, s, (const bf16 *)a->a, a->lda, (const bf16 *)a->b, a->ldb, (bf16 *)a->out,
              a->ldout, a->n, a->c);
    return CULORA_OK;
}
