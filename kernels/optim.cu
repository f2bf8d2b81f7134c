/*
 * optim.cu — AdamW, the global gradient norm and the fp32 → bf16 master-weight cast on CUDA.
 *
 * AdamW, elementwise in fp32, the same operations in the same order as the CPU reference (which
 * follows torch.optim.AdamW): g = grad·grad_scale; p *= 1 − lr·wd; m += (1−β1)·(g − m);
 * v = v·β2 + ((1−β2)·g)·g; p += −(lr/bc1)·(m / (sqrt(v)/sqrt(bc2) + eps)). The fp64 host scalars
 * are rounded to fp32 where torch rounds them. param, m, v in place; param_copy bf16 '='.
 * Grad norm: P blocks (P from n only) sum squares in fp64 over a fixed strided subset, then one
 * block adds the P partials in a fixed tree: sqrt → fp32 '='. No atomics.
 * Ref: host/cpu/optim.c.
 */
#include "nn_common.cuh"

// ------------------------------------------------------------------------------------------
// Kernels

struct adamw_scalars {
    float decay, w1, w2, beta2, step_size, bc2_sqrt, eps, grad_scale;
};

__global__ void adamw_kernel(float *__restrict__ p, const float *__restrict__ grad, float *__restrict__ m,
                             float *__restrict__ v, bf16 *__restrict__ copy, int64_t n, const struct adamw_scalars k)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float g = __fmul_rn(grad[i], k.grad_scale);
        float pi = __fmul_rn(p[i], k.decay);
        const float mi = __fadd_rn(m[i], __fmul_rn(k.w1, __fsub_rn(g, m[i])));
        const float vi = __fadd_rn(__fmul_rn(v[i], k.beta2), __fmul_rn(__fmul_rn(k.w2, g), g));
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2_sqrt), k.eps);
        pi = __fadd_rn(pi, __fmul_rn(-k.step_size, __fdiv_rn(mi, denom)));
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
        if (copy)
            copy[i] = __float2bfloat16_rn(pi);
    }
}

#define NORM_THREADS 256
#define NORM_MAX_PARTS 1024

__global__ void grad_norm_partial_kernel(const float *__restrict__ g, int64_t n, double *__restrict__ part)
{
    __shared__ double red[32];
    double s = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        s += (double)g[i] * (double)g[i];
    s = nn_block_sum(s, red);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

__global__ void grad_norm_finish_kernel(const double *__restrict__ part, int n_parts, float *__restrict__ norm)
{
    __shared__ double red[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < n_parts; i += blockDim.x)
        s += part[i];
    s = nn_block_sum(s, red);
    if (threadIdx.x == 0)
        *norm = (float)sqrt(s);
}

__global__ void cast_kernel(const float *__restrict__ src, bf16 *__restrict__ dst, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

// ------------------------------------------------------------------------------------------
// Entries

extern "C" culora_status cuda_adamw(culora_backend *be, const struct culora_nn_adamw_args *a, culora_stream s)
{
    const double bc1 = 1.0 - pow(a->beta1, (double)a->step), bc2 = 1.0 - pow(a->beta2, (double)a->step);
    struct adamw_scalars k;
    k.decay = (float)(1.0 - a->lr * a->weight_decay);
    k.w1 = (float)(1.0 - a->beta1);
    k.w2 = (float)(1.0 - a->beta2);
    k.beta2 = (float)a->beta2;
    k.step_size = (float)(a->lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.eps = (float)a->eps;
    k.grad_scale = a->grad_scale;
    adamw_kernel<<<culora_ew_blocks(a->n), CULORA_EW_THREADS, 0, (cudaStream_t)s>>>(a->param, a->grad, a->m, a->v,
                                                                                   (bf16 *)a->param_copy, a->n, k);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

static int norm_parts(int64_t n)
{
    const int64_t p = CULORA_CEIL_DIV(n, (int64_t)NORM_THREADS * 16);
    return (int)(p < NORM_MAX_PARTS ? p : NORM_MAX_PARTS);
}

extern "C" culora_status cuda_grad_norm_workspace(culora_backend *be, const struct culora_nn_grad_norm_args *a,
                                                  struct culora_nn_ws *ws)
{
    (void)be;
    ws->min_bytes = ws->full_bytes = (size_t)norm_parts(a->n) * sizeof(double) + 256;
    return CULORA_OK;
}

extern "C" culora_status cuda_grad_norm(culora_backend *be, const struct culora_nn_grad_norm_args *a,
                                        const culora_workspace *ws, culora_stream s)
{
    const cudaStream_t stream = (cudaStream_t)s;
    const int parts = norm_parts(a->n);
    double *part = (double *)nn_align256((size_t)ws->ptr);
    grad_norm_partial_kernel<<<parts, NORM_THREADS, 0, stream>>>(a->grad, a->n, part);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    grad_norm_finish_kernel<<<1, 1024, 0, stream>>>(part, parts, a->norm);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

extern "C" culora_status cuda_cast(culora_backend *be, const struct culora_nn_cast_args *a, culora_stream s)
{
    cast_kernel<<<culora_ew_blocks(a->n), CULORA_EW_THREADS, 0, (cudaStream_t)s>>>(a->src, (bf16 *)a->dst, a->n);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}
