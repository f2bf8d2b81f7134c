/*
 * rope.cu — rotary position embedding on CUDA, Hugging Face rotate_half layout.
 *
 * Per head of D elements, j < D/2, angle = pos·inv_freq[j] (fp32 product, as HF):
 *   forward   out[j] = x[j]·cos − x[j+D/2]·sin      out[j+D/2] = x[j+D/2]·cos + x[j]·sin
 *   backward  rotation by −angle (the transpose).
 * One thread per (token, head, j) pair; it reads both elements before writing them, so in place
 * (out == x) is safe. inv_freq is computed on the host by the same function the CPU backend
 * uses (culora_nn_rope_inv_freq) and passed by value, so both backends rotate by the same fp32
 * angles; sincosf (accurate, not fast-math) differs from the CPU's fp64 cos/sin by a few ulps.
 * Ref: host/cpu/rope.c.
 */
#include "nn_common.cuh"

struct rope_freq {
    float f[CULORA_NN_ROPE_MAX_DIM / 2];
};

// ------------------------------------------------------------------------------------------
// Kernel

__global__ void rope_kernel(const bf16 *x, int64_t ldx, bf16 *out, int64_t ldout, const int32_t *__restrict__ pos,
                            int64_t n, int heads, int d, float sign, const struct rope_freq freq)
{
    const int half = d / 2;
    const int64_t per_row = (int64_t)heads * half, total = n * per_row;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = idx / per_row;
        const int r = (int)(idx % per_row), h = r / half, j = r % half;
        const float angle = (float)pos[i] * freq.f[j];
        float sn, cs;
        sincosf(angle, &sn, &cs);
        sn *= sign;
        const int64_t lo = (int64_t)h * d + j, hi = lo + half;
        const float x1 = nn_ld(&x[i * ldx + lo]), x2 = nn_ld(&x[i * ldx + hi]);
        out[i * ldout + lo] = __float2bfloat16_rn(x1 * cs - x2 * sn);
        out[i * ldout + hi] = __float2bfloat16_rn(x2 * cs + x1 * sn);
    }
}

// ------------------------------------------------------------------------------------------
// Launcher and entries

static culora_status rope_launch(culora_backend *be, const struct culora_nn_rope_args *a, float sign,
                                 cudaStream_t stream)
{
    struct rope_freq freq;
    if (a->inv_freq)
        for (int j = 0; j < a->head_dim / 2; j++)
            freq.f[j] = a->inv_freq[j];
    else
        culora_nn_rope_inv_freq(a->theta, a->head_dim, freq.f);
    const int64_t total = a->n * a->n_heads * (a->head_dim / 2);
    rope_kernel<<<culora_ew_blocks(total), CULORA_EW_THREADS, 0, stream>>>(
        (const bf16 *)a->x, a->ldx, (bf16 *)a->out, a->ldout, a->pos, a->n, a->n_heads, a->head_dim, sign, freq);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

extern "C" culora_status cuda_rope_fwd(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s)
{
    return rope_launch(be, a, 1.0f, (cudaStream_t)s);
}

extern "C" culora_status cuda_rope_bwd(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s)
{
    return rope_launch(be, a, -1.0f, (cudaStream_t)s);
}
