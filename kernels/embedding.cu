/*
 * embedding.cu — token (+ learned position) embedding on CUDA, forward and backward.
 *
 *   out[i,:] = wte[tokens[i],:] (+ wpe[pos[i],:])     [n,c] bf16 '=', sum in fp32, NaN row for a bad id
 *   dwte[v,:] += Σ_{i: tokens[i]=v} dout[i,:]          [vocab,c] fp32 '+='
 *   dwpe[p,:] += Σ_{i: pos[i]=p} dout[i,:]             [n_pos,c] fp32 '+='
 * Backward without float atomics: the (id, row) pairs are sorted by id with CUB's radix sort
 * (stable, so equal ids keep row order), then the first element of each run of equal ids sums
 * its run in order and adds the sum to the table row once. Same inputs ⇒ same bits.
 * Workspace (backward): keys and rows in and out (4·n int32) + CUB's temporary storage.
 * Ref: host/cpu/embedding.c (which adds token by token; the two differ only in fp32 rounding).
 */
#include "nn_common.cuh"

#include <cub/device/device_radix_sort.cuh>

// ------------------------------------------------------------------------------------------
// Kernels

__global__ void embedding_fwd_kernel(const int32_t *__restrict__ tok, const int32_t *__restrict__ pos,
                                     const bf16 *__restrict__ wte, int64_t ldwte, const bf16 *__restrict__ wpe,
                                     int64_t ldwpe, bf16 *__restrict__ out, int64_t ldout, int64_t n, int64_t c,
                                     int64_t vocab, int64_t n_pos)
{
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const int64_t t = tok[i], p = wpe ? pos[i] : 0;
        const bool bad = t < 0 || t >= vocab || (wpe && (p < 0 || p >= n_pos));
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            float v = NAN;
            if (!bad) {
                v = nn_ld(&wte[t * ldwte + j]);
                if (wpe)
                    v += nn_ld(&wpe[p * ldwpe + j]);
            }
            out[i * ldout + j] = __float2bfloat16_rn(v);
        }
    }
}

/* keys[i] = ids[i] when in [0, n_rows), else n_rows (sorted last, skipped); rows[i] = i. */
__global__ void embedding_sort_prep_kernel(const int32_t *__restrict__ ids, int64_t n, int64_t n_rows,
                                           uint32_t *__restrict__ keys, int32_t *__restrict__ rows)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t id = ids[i];
        keys[i] = (uint32_t)(id >= 0 && id < n_rows ? id : n_rows);
        rows[i] = (int32_t)i;
    }
}

/* Block (s, column tile): if sorted position s starts a run of equal keys, sum the run's rows of
 * src in order and add the sum to dst[key]. */
__global__ void embedding_index_add_kernel(const uint32_t *__restrict__ keys, const int32_t *__restrict__ rows,
                                           int64_t n, uint32_t n_rows, const bf16 *__restrict__ src, int64_t ldsrc,
                                           float *__restrict__ dst, int64_t lddst, int64_t c)
{
    const int64_t j = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (j >= c)
        return;
    for (int64_t s = blockIdx.x; s < n; s += gridDim.x) {
        const uint32_t key = keys[s];
        if (key >= n_rows || (s > 0 && keys[s - 1] == key))
            continue;
        float acc = 0.0f;
        for (int64_t e = s; e < n && keys[e] == key; e++)
            acc += nn_ld(&src[(int64_t)rows[e] * ldsrc + j]);
        dst[(int64_t)key * lddst + j] += acc;
    }
}

// ------------------------------------------------------------------------------------------
// Launchers

static int bits_for(int64_t max_key)
{
    int b = 1;
    while (b < 32 && ((int64_t)1 << b) <= max_key)
        b++;
    return b;
}

struct sort_ws {
    uint32_t *keys_in, *keys_out;
    int32_t *rows_in, *rows_out;
    void *temp;
    size_t temp_bytes;
};

/* CUB temp bytes for sorting n keys below 2^bits. */
static culora_status sort_temp_bytes(culora_backend *be, int64_t n, int bits, size_t *bytes)
{
    *bytes = 0;
    CULORA_CUDA_TRY(be, cub::DeviceRadixSort::SortPairs(NULL, *bytes, (const uint32_t *)NULL, (uint32_t *)NULL,
                                                        (const int32_t *)NULL, (int32_t *)NULL, (int)n, 0, bits));
    return CULORA_OK;
}

static size_t sort_layout(int64_t n, size_t temp_bytes, struct sort_ws *w, char *base)
{
    const size_t arr = nn_align256((size_t)n * 4);
    if (w) {
        w->keys_in = (uint32_t *)base;
        w->keys_out = (uint32_t *)(base + arr);
        w->rows_in = (int32_t *)(base + 2 * arr);
        w->rows_out = (int32_t *)(base + 3 * arr);
        w->temp = base + 4 * arr;
        w->temp_bytes = temp_bytes;
    }
    return 4 * arr + nn_align256(temp_bytes);
}

static culora_status index_add_launch(culora_backend *be, const int32_t *ids, int64_t n_rows, const void *src,
                                      int64_t ldsrc, float *dst, int64_t lddst, int64_t n, int64_t c,
                                      const struct sort_ws *w, cudaStream_t stream)
{
    embedding_sort_prep_kernel<<<culora_ew_blocks(n), CULORA_EW_THREADS, 0, stream>>>(ids, n, n_rows, w->keys_in,
                                                                                     w->rows_in);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    size_t temp = w->temp_bytes;
    CULORA_CUDA_TRY(be, cub::DeviceRadixSort::SortPairs(w->temp, temp, w->keys_in, w->keys_out, w->rows_in,
                                                        w->rows_out, (int)n, 0, bits_for(n_rows), stream));
    const dim3 grid(nn_row_blocks(n), (unsigned int)CULORA_CEIL_DIV(c, (int64_t)NN_THREADS));
    embedding_index_add_kernel<<<grid, NN_THREADS, 0, stream>>>(w->keys_out, w->rows_out, n, (uint32_t)n_rows,
                                                                (const bf16 *)src, ldsrc, dst, lddst, c);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

// ------------------------------------------------------------------------------------------
// Entries

extern "C" culora_status cuda_embedding_fwd(culora_backend *be, const struct culora_nn_embedding_args *a,
                                            culora_stream s)
{
    embedding_fwd_kernel<<<nn_row_blocks(a->n), NN_THREADS, 0, (cudaStream_t)s>>>(
        a->tokens, a->pos, (const bf16 *)a->wte, a->ldwte, (const bf16 *)a->wpe, a->ldwpe, (bf16 *)a->out, a->ldout,
        a->n, a->c, a->vocab, a->n_pos);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

extern "C" culora_status cuda_embedding_bwd_workspace(culora_backend *be, const struct culora_nn_embedding_bwd_args *a,
                                                      struct culora_nn_ws *ws)
{
    size_t t1 = 0, t2 = 0;
    CULORA_TRY(sort_temp_bytes(be, a->n, bits_for(a->vocab), &t1));
    if (a->dwpe != NULL || a->n_pos > 0)
        CULORA_TRY(sort_temp_bytes(be, a->n, bits_for(a->n_pos > 0 ? a->n_pos : 1), &t2));
    ws->min_bytes = ws->full_bytes = sort_layout(a->n, t1 > t2 ? t1 : t2, NULL, NULL) + 256;
    return CULORA_OK;
}

extern "C" culora_status cuda_embedding_bwd(culora_backend *be, const struct culora_nn_embedding_bwd_args *a,
                                            const culora_workspace *ws, culora_stream s)
{
    const cudaStream_t stream = (cudaStream_t)s;
    size_t t1 = 0, t2 = 0;
    if (a->dwte)
        CULORA_TRY(sort_temp_bytes(be, a->n, bits_for(a->vocab), &t1));
    if (a->dwpe)
        CULORA_TRY(sort_temp_bytes(be, a->n, bits_for(a->n_pos), &t2));
    char *base = (char *)nn_align256((size_t)ws->ptr);
    struct sort_ws w;
    sort_layout(a->n, t1 > t2 ? t1 : t2, &w, base);
    if (a->dwte)
        CULORA_TRY(index_add_launch(be, a->tokens, a->vocab, a->dout, a->lddout, a->dwte, a->lddwte, a->n, a->c, &w,
                                    stream));
    if (a->dwpe)
        CULORA_TRY(index_add_launch(be, a->pos, a->n_pos, a->dout, a->lddout, a->dwpe, a->lddwpe, a->n, a->c, &w,
                                    stream));
    return CULORA_OK;
}
