/*
 * cross_entropy.cu — fused softmax + cross-entropy over the vocabulary on CUDA, ignore-index.
 *
 *   lse_i  = logsumexp(logits[i,:V])               fp32, one block per row, online max/sum
 *   loss_i = lse_i − logits[i, t_i]   (0 for t_i = ignore_index, NaN for a target outside [0,V))
 *   loss   = Σ loss_i / n_valid                    fp32 '=' (fp64 sum over rows in a fixed order)
 *   dlogits[i,j] = grad_scale·(exp(logits[i,j] − lse_i) − [j = t_i]) / den    bf16 '=' (may be logits)
 * Three kernels: rows (lse, loss_i) → one block sums the rows in order and fixes den → rows again
 * (dlogits). No atomics: same inputs ⇒ same bits. Workspace: lse and loss_i per row, the scale.
 * Ref: host/cpu/cross_entropy.c.
 */
#include "nn_common.cuh"

#define XENT_THREADS 512

// ------------------------------------------------------------------------------------------
// Kernels

/* Combines running (max, sum of exp(x − max)) pairs; symmetric, so the warp butterfly leaves the
 * same bits in every lane. */
__device__ __forceinline__ void xent_combine(float &m, float &s, float m2, float s2)
{
    const float mx = fmaxf(m, m2);
    if (mx == -INFINITY)
        return; /* both empty */
    s = s * expf(m - mx) + s2 * expf(m2 - mx);
    m = mx;
}

__global__ void xent_rows_kernel(const bf16 *__restrict__ logits, int64_t ld, const int32_t *__restrict__ targets,
                                 int64_t n, int64_t V, int32_t ignore, float *__restrict__ lse_out,
                                 float *__restrict__ loss_out)
{
    __shared__ float sm[32], ss[32];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const bf16 *row = logits + i * ld;
        float m = -INFINITY, s = 0.0f;
        for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
            const float v = nn_ld(&row[j]);
            if (v > m) {
                s = s * expf(m - v) + 1.0f;
                m = v;
            } else {
                s += expf(v - m);
            }
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
            xent_combine(m, s, m2, s2);
        }
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
        __syncthreads();
        if (lane == 0) {
            sm[warp] = m;
            ss[warp] = s;
        }
        __syncthreads();
        m = lane < n_warps ? sm[lane] : -INFINITY;
        s = lane < n_warps ? ss[lane] : 0.0f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
            xent_combine(m, s, m2, s2);
        }
        if (threadIdx.x == 0) {
            const float lse = m + logf(s);
            const int64_t t = targets[i];
            lse_out[i] = lse;
            loss_out[i] = t == ignore ? 0.0f : (t < 0 || t >= V) ? NAN : lse - nn_ld(&row[t]);
        }
    }
}

/* One block: loss = Σ valid loss_i / n_valid (fp64, fixed order); scale = grad_scale / den. */
__global__ void xent_reduce_kernel(const float *__restrict__ row_loss, const int32_t *__restrict__ targets, int64_t n,
                                   int32_t ignore, float grad_scale, int64_t grad_denominator, float *__restrict__ loss,
                                   float *__restrict__ losses, int32_t *__restrict__ n_valid, float *__restrict__ scale)
{
    __shared__ double red[32];
    double sum = 0.0, cnt = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        if (targets[i] != ignore) {
            sum += row_loss[i];
            cnt += 1.0;
        }
        if (losses)
            losses[i] = row_loss[i];
    }
    sum = nn_block_sum(sum, red);
    cnt = nn_block_sum(cnt, red);
    if (threadIdx.x == 0) {
        const int64_t valid = (int64_t)cnt;
        *loss = valid > 0 ? (float)(sum / cnt) : 0.0f;
        if (n_valid)
            *n_valid = (int32_t)valid;
        const int64_t den = grad_denominator > 0 ? grad_denominator : valid;
        *scale = den > 0 ? (float)((double)grad_scale / (double)den) : 0.0f;
    }
}

__global__ void xent_grad_kernel(const bf16 *logits, int64_t ld, const int32_t *__restrict__ targets, int64_t n,
                                 int64_t V, int32_t ignore, const float *__restrict__ lse_in,
                                 const float *__restrict__ scale_in, bf16 *dlogits, int64_t ldd)
{
    const float scale = *scale_in;
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const int64_t t = targets[i];
        const float lse = lse_in[i];
        const bf16 *row = logits + i * ld;
        bf16 *drow = dlogits + i * ldd;
        const bool zero = t == ignore || scale == 0.0f, bad = !zero && (t < 0 || t >= V);
        for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
            float d;
            if (zero)
                d = 0.0f;
            else if (bad)
                d = NAN;
            else
                d = scale * (expf(nn_ld(&row[j]) - lse) - (j == t ? 1.0f : 0.0f));
            drow[j] = __float2bfloat16_rn(d);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Workspace layout and entries

struct xent_ws {
    float *lse, *row_loss, *scale;
};

static size_t xent_layout(int64_t n, char *base, struct xent_ws *w)
{
    const size_t arr = nn_align256((size_t)n * 4);
    if (w) {
        w->lse = (float *)base;
        w->row_loss = (float *)(base + arr);
        w->scale = (float *)(base + 2 * arr);
    }
    return 2 * arr + 256;
}

extern "C" culora_status cuda_cross_entropy_workspace(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                                      struct culora_nn_ws *ws)
{
    (void)be;
    ws->min_bytes = ws->full_bytes = xent_layout(a->n, NULL, NULL) + 256;
    return CULORA_OK;
}

extern "C" culora_status cuda_cross_entropy(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                            const culora_workspace *ws, culora_stream s)
{
    const cudaStream_t stream = (cudaStream_t)s;
    struct xent_ws w;
    xent_layout(a->n, (char *)nn_align256((size_t)ws->ptr), &w);
    xent_rows_kernel<<<nn_row_blocks(a->n), XENT_THREADS, 0, stream>>>(
        (const bf16 *)a->logits, a->ldlogits, a->targets, a->n, a->vocab, a->ignore_index, w.lse, w.row_loss);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    xent_reduce_kernel<<<1, 1024, 0, stream>>>(w.row_loss, a->targets, a->n, a->ignore_index, a->grad_scale,
                                               a->grad_denominator, a->loss, a->losses, a->n_valid, w.scale);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    if (a->dlogits != NULL) {
        xent_grad_kernel<<<nn_row_blocks(a->n), XENT_THREADS, 0, stream>>>(
            (const bf16 *)a->logits, a->ldlogits, a->targets, a->n, a->vocab, a->ignore_index, w.lse, w.scale,
            (bf16 *)a->dlogits, a->lddlogits);
        CULORA_CUDA_TRY(be, cudaGetLastError());
    }
    return CULORA_OK;
}
