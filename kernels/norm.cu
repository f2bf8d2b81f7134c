/*
 * norm.cu — LayerNorm and RMSNorm on CUDA (forward, backward) and the bias gradient.
 *
 * LayerNorm  out = (x − mean)·rstd·gamma + beta   mean, rstd fp32 [n] '='    out bf16 '='
 * RMSNorm    out = x·rstd·gamma                     rstd fp32 [n] '='
 * Backward   dx = rstd·(g − mean(g) − xhat·mean(g·xhat))  (RMSNorm without mean(g)), g = dout·gamma,
 *            bf16 '=' or '+='; dgamma += Σ dout·xhat, dbeta += Σ dout (fp32); dbias += Σ dy.
 * Forward and dx: one block per row, fp32 statistics (two passes over the row: mean, then the
 * centred variance), deterministic block reductions.
 * Column sums (dgamma, dbeta, dbias) without atomics: P row-chunk partials per column into the
 * workspace, then one pass adds the P partials in order. P depends on n only (not on the GPU).
 * Ref: host/cpu/norm.c.
 */
#include "nn_common.cuh"

// ------------------------------------------------------------------------------------------
// Kernels: forward

__global__ void layernorm_fwd_kernel(const bf16 *__restrict__ x, int64_t ldx, const bf16 *__restrict__ gamma,
                                     const bf16 *__restrict__ beta, bf16 *__restrict__ out, int64_t ldout,
                                     float *__restrict__ mean_out, float *__restrict__ rstd_out, int64_t n, int64_t c,
                                     float eps)
{
    __shared__ float red[32];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const bf16 *xr = x + i * ldx;
        float s = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            s += nn_ld(&xr[j]);
        const float mean = nn_block_sum(s, red) / (float)c;
        float v = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            const float d = nn_ld(&xr[j]) - mean;
            v += d * d;
        }
        const float rstd = rsqrtf(nn_block_sum(v, red) / (float)c + eps);
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            const float y = (nn_ld(&xr[j]) - mean) * rstd * nn_ld(&gamma[j]) + (beta ? nn_ld(&beta[j]) : 0.0f);
            out[i * ldout + j] = __float2bfloat16_rn(y);
        }
        if (threadIdx.x == 0) {
            if (mean_out)
                mean_out[i] = mean;
            if (rstd_out)
                rstd_out[i] = rstd;
        }
    }
}

__global__ void rmsnorm_fwd_kernel(const bf16 *__restrict__ x, int64_t ldx, const bf16 *__restrict__ gamma,
                                   bf16 *__restrict__ out, int64_t ldout, float *__restrict__ rstd_out, int64_t n,
                                   int64_t c, float eps)
{
    __shared__ float red[32];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const bf16 *xr = x + i * ldx;
        float v = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            const float e = nn_ld(&xr[j]);
            v += e * e;
        }
        const float rstd = rsqrtf(nn_block_sum(v, red) / (float)c + eps);
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            out[i * ldout + j] = __float2bfloat16_rn(nn_ld(&xr[j]) * rstd * nn_ld(&gamma[j]));
        if (threadIdx.x == 0 && rstd_out)
            rstd_out[i] = rstd;
    }
}

// ------------------------------------------------------------------------------------------
// Kernels: backward

/* dx of one row per block; mean == NULL: RMSNorm. */
__global__ void norm_dx_kernel(const bf16 *__restrict__ x, int64_t ldx, const bf16 *__restrict__ gamma,
                               const float *__restrict__ mean, const float *__restrict__ rstd,
                               const bf16 *__restrict__ dout, int64_t lddout, bf16 *__restrict__ dx, int64_t lddx,
                               int64_t n, int64_t c, int accumulate)
{
    __shared__ float red[32];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const bf16 *xr = x + i * ldx, *dr = dout + i * lddout;
        const float mu = mean ? mean[i] : 0.0f, r = rstd[i];
        float sg = 0.0f, sgx = 0.0f;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            const float xhat = (nn_ld(&xr[j]) - mu) * r, g = nn_ld(&dr[j]) * nn_ld(&gamma[j]);
            sg += g;
            sgx += g * xhat;
        }
        const float mean_g = mean ? nn_block_sum(sg, red) / (float)c : 0.0f;
        const float mean_gx = nn_block_sum(sgx, red) / (float)c;
        bf16 *o = dx + i * lddx;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            const float xhat = (nn_ld(&xr[j]) - mu) * r, g = nn_ld(&dr[j]) * nn_ld(&gamma[j]);
            float d = r * (g - mean_g - xhat * mean_gx);
            if (accumulate)
                d += nn_ld(&o[j]);
            o[j] = __float2bfloat16_rn(d);
        }
    }
}

/* Partial column sums over row chunk blockIdx.y:
 *   p1[y][j] = Σ dy·xhat  (xhat from mean (NULL: RMSNorm) and rstd; x NULL: p1 unused)
 *   p2[y][j] = Σ dy        (p2 NULL: not needed) */
__global__ void norm_colsum_partial_kernel(const bf16 *__restrict__ x, int64_t ldx, const float *__restrict__ mean,
                                           const float *__restrict__ rstd, const bf16 *__restrict__ dy,
                                           int64_t lddy, float *__restrict__ p1, float *__restrict__ p2, int64_t n,
                                           int64_t c, int64_t rows_per_chunk)
{
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= c)
        return;
    const int64_t y = blockIdx.y, i0 = y * rows_per_chunk, i1 = i0 + rows_per_chunk < n ? i0 + rows_per_chunk : n;
    float s1 = 0.0f, s2 = 0.0f;
    for (int64_t i = i0; i < i1; i++) {
        const float d = nn_ld(&dy[i * lddy + j]);
        s2 += d;
        if (x)
            s1 += d * ((nn_ld(&x[i * ldx + j]) - (mean ? mean[i] : 0.0f)) * rstd[i]);
    }
    if (x)
        p1[y * c + j] = s1;
    if (p2)
        p2[y * c + j] = s2;
}

/* dst[j] += Σ_y part[y][j], y in order. */
__global__ void norm_colsum_finish_kernel(const float *__restrict__ part, int64_t n_parts, int64_t c,
                                          float *__restrict__ dst)
{
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= c)
        return;
    float s = 0.0f;
    for (int64_t y = 0; y < n_parts; y++)
        s += part[y * c + j];
    dst[j] += s;
}

// ------------------------------------------------------------------------------------------
// Launchers

/* Row chunks of the column sums: at least 32 rows each, at most 256 chunks. */
static int64_t colsum_parts(int64_t n)
{
    const int64_t p = CULORA_CEIL_DIV(n, (int64_t)32);
    return p < 256 ? p : 256;
}

static size_t colsum_workspace(int64_t n, int64_t c) { return 2 * nn_align256((size_t)(colsum_parts(n) * c) * 4) + 256; }

/* dgamma (with x) and/or dbeta/dbias (plain sums of dy) '+='. */
static culora_status colsum_launch(culora_backend *be, const void *x, int64_t ldx, const float *mean,
                                   const float *rstd, const void *dy, int64_t lddy, float *dgamma, float *dsum,
                                   int64_t n, int64_t c, const culora_workspace *ws, cudaStream_t stream)
{
    const int64_t parts = colsum_parts(n), rows_per = CULORA_CEIL_DIV(n, parts);
    char *base = (char *)nn_align256((size_t)ws->ptr);
    float *p1 = (float *)base, *p2 = (float *)(base + nn_align256((size_t)(parts * c) * 4));
    const unsigned int col_blocks = (unsigned int)CULORA_CEIL_DIV(c, (int64_t)NN_THREADS);
    const dim3 grid(col_blocks, (unsigned int)parts);
    norm_colsum_partial_kernel<<<grid, NN_THREADS, 0, stream>>>(dgamma ? (const bf16 *)x : NULL, ldx, mean, rstd,
                                                                (const bf16 *)dy, lddy, p1, dsum ? p2 : NULL, n, c,
                                                                rows_per);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    if (dgamma) {
        norm_colsum_finish_kernel<<<col_blocks, NN_THREADS, 0, stream>>>(p1, parts, c, dgamma);
        CULORA_CUDA_TRY(be, cudaGetLastError());
    }
    if (dsum) {
        norm_colsum_finish_kernel<<<col_blocks, NN_THREADS, 0, stream>>>(p2, parts, c, dsum);
        CULORA_CUDA_TRY(be, cudaGetLastError());
    }
    return CULORA_OK;
}

// ------------------------------------------------------------------------------------------
// Entries

extern "C" culora_status cuda_layernorm_fwd(culora_backend *be, const struct culora_nn_layernorm_args *a,
                                            culora_stream s)
{
    layernorm_fwd_kernel<<<nn_row_blocks(a->n), NN_THREADS, 0, (cudaStream_t)s>>>(
        (const bf16 *)a->x, a->ldx, (const bf16 *)a->gamma, (const bf16 *)a->beta, (bf16 *)a->out, a->ldout, a->mean,
        a->rstd, a->n, a->c, a->eps);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

extern "C" culora_status cuda_rmsnorm_fwd(culora_backend *be, const struct culora_nn_rmsnorm_args *a, culora_stream s)
{
    rmsnorm_fwd_kernel<<<nn_row_blocks(a->n), NN_THREADS, 0, (cudaStream_t)s>>>(
        (const bf16 *)a->x, a->ldx, (const bf16 *)a->gamma, (bf16 *)a->out, a->ldout, a->rstd, a->n, a->c, a->eps);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

extern "C" culora_status cuda_layernorm_bwd_workspace(culora_backend *be, const struct culora_nn_layernorm_bwd_args *a,
                                                      struct culora_nn_ws *ws)
{
    (void)be;
    ws->min_bytes = ws->full_bytes = colsum_workspace(a->n, a->c);
    return CULORA_OK;
}

extern "C" culora_status cuda_layernorm_bwd(culora_backend *be, const struct culora_nn_layernorm_bwd_args *a,
                                            const culora_workspace *ws, culora_stream s)
{
    const cudaStream_t stream = (cudaStream_t)s;
    norm_dx_kernel<<<nn_row_blocks(a->n), NN_THREADS, 0, stream>>>(
        (const bf16 *)a->x, a->ldx, (const bf16 *)a->gamma, a->mean, a->rstd, (const bf16 *)a->dout, a->lddout,
        (bf16 *)a->dx, a->lddx, a->n, a->c, a->accumulate_dx ? 1 : 0);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    if (a->dgamma || a->dbeta)
        CULORA_TRY(colsum_launch(be, a->x, a->ldx, a->mean, a->rstd, a->dout, a->lddout, a->dgamma, a->dbeta, a->n,
                                 a->c, ws, stream));
    return CULORA_OK;
}

extern "C" culora_status cuda_rmsnorm_bwd_workspace(culora_backend *be, const struct culora_nn_rmsnorm_bwd_args *a,
                                                    struct culora_nn_ws *ws)
{
    (void)be;
    ws->min_bytes = ws->full_bytes = colsum_workspace(a->n, a->c);
    return CULORA_OK;
}

extern "C" culora_status cuda_rmsnorm_bwd(culora_backend *be, const struct culora_nn_rmsnorm_bwd_args *a,
                                          const culora_workspace *ws, culora_stream s)
{
    const cudaStream_t stream = (cudaStream_t)s;
    norm_dx_kernel<<<nn_row_blocks(a->n), NN_THREADS, 0, stream>>>(
        (const bf16 *)a->x, a->ldx, (const bf16 *)a->gamma, NULL, a->rstd, (const bf16 *)a->dout, a->lddout,
        (bf16 *)a->dx, a->lddx, a->n, a->c, a->accumulate_dx ? 1 : 0);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    if (a->dgamma)
        CULORA_TRY(colsum_launch(be, a->x, a->ldx, NULL, a->rstd, a->dout, a->lddout, a->dgamma, NULL, a->n, a->c, ws,
                                 stream));
    return CULORA_OK;
}

extern "C" culora_status cuda_bias_grad_workspace(culora_backend *be, const struct culora_nn_bias_grad_args *a,
                                                  struct culora_nn_ws *ws)
{
    (void)be;
    ws->min_bytes = ws->full_bytes = colsum_workspace(a->n, a->c);
    return CULORA_OK;
}

extern "C" culora_status cuda_bias_grad(culora_backend *be, const struct culora_nn_bias_grad_args *a,
                                        const culora_workspace *ws, culora_stream s)
{
    return colsum_launch(be, NULL, 0, NULL, NULL, a->dy, a->lddy, NULL, a->dbias, a->n, a->c, ws, (cudaStream_t)s);
}
