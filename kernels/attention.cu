/*
 * attention.cu — causal self-attention with grouped-query attention on CUDA, forward and backward.
 *
 * Variant v1: GEMM + softmax + GEMM with S materialised (what the brief asks for first). Per
 * chunk of bc sequences, all heads at once (batch bc·H in every strided-batched cuBLASLt GEMM):
 *   forward   permute q, k, v to [bc,H,T,Dp] (k, v expanded to H heads: HF repeat_kv)
 *             S = scale·Q·Kᵀ (fp32)  →  softmax rows (causal) → P bf16 written over S, lse '='
 *             Yp = P·V (bf16)        →  y[b·T+t, h·D+d] '='
 *   backward  permute q, k, v, dy;  A = scale·Q·Kᵀ (fp32) → P = exp(A − lse) bf16 over A
 *             dVp = Pᵀ·dY (fp32);   Bm = dP = dY·Vᵀ (fp32) → dS = scale·P∘(dP − rowsum(P∘dP)) bf16 over Bm
 *             dQp = dS·K, dKp = dSᵀ·Q (fp32);  dq '=', dk/dv '=' summed over each kv head's group in fp32
 * "Over" means in place: row t of the fp32 matrix is read into shared memory, then its bf16
 * version is written into the first half of the same row's bytes (bf16 ld = 2·Tp). Entries
 * above the diagonal are never read and are written as 0.
 * Padding: per-head rows use Dp = round8(D) elements and score rows Tp = round8(T), so every
 * cuBLASLt operand and batch stride is 16-byte aligned for any T and D.
 * Memory (the T² limit): workspace per sequence ≈ H·T·Tp·4 bytes (forward) and 2·H·T·Tp·4 (backward)
 * plus 4-7 copies of [H,T,Dp]; the op processes as many sequences per pass as the workspace
 * holds (at least one). GPT-2 small, T = 1024: 48 MiB forward, 96 MiB backward per sequence;
 * LLaMA-1B-like (32 heads), T = 2048: 512 MiB / 1 GiB per sequence. A fused (flash) kernel can
 * replace this file with the same contract (lse is already the saved state).
 * Shared memory: one score row, T·4 bytes (opt-in beyond 48 KiB; T up to ~56K on H100).
 * Determinism: kernels without atomics, cuBLASLt plans cached per shape; chunking depends on the
 * workspace size only. Ref: host/cpu/attention.c.
 */
#include "nn_common.cuh"

#define ATT_THREADS 256
#define ATT_LT_SHARE ((size_t)4 << 20) /* cuBLASLt workspace counted into full_bytes */

// ------------------------------------------------------------------------------------------
// Kernels: layout changes

/* dst[b,h,t,d] (row pitch Dp) = src[(b0+b)·T + t, (h/group)·D + d]   (bf16 → bf16) */
__global__ void att_to_heads_kernel(const bf16 *__restrict__ src, int64_t ld, int64_t b0, int64_t bc, int64_t T,
                                    int H, int group, int D, int Dp, bf16 *__restrict__ dst)
{
    const int64_t total = bc * H * T * D;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int d = (int)(idx % D);
        const int64_t t = (idx / D) % T, bh = idx / ((int64_t)D * T);
        const int h = (int)(bh % H);
        const int64_t b = bh / H;
        dst[(bh * T + t) * Dp + d] = src[((b0 + b) * T + t) * ld + (int64_t)(h / group) * D + d];
    }
}

/* dst[(b0+b)·T + t, kh·D + d] = Σ_{i<group} src[b, kh·group + i, t, d]   (fp32 or bf16 → bf16) */
template <typename Src>
__global__ void att_from_heads_kernel(const Src *__restrict__ src, int64_t b0, int64_t bc, int64_t T, int H_out,
                                      int group, int D, int Dp, bf16 *__restrict__ dst, int64_t ld)
{
    const int64_t total = bc * T * H_out * D;
    const int H = H_out * group;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int d = (int)(idx % D);
        const int kh = (int)((idx / D) % H_out);
        const int64_t t = (idx / ((int64_t)D * H_out)) % T, b = idx / ((int64_t)D * H_out * T);
        float s = 0.0f;
        for (int i = 0; i < group; i++)
            s += nn_ld(&src[((b * H + (int64_t)kh * group + i) * T + t) * Dp + d]);
        dst[((b0 + b) * T + t) * ld + (int64_t)kh * D + d] = __float2bfloat16_rn(s);
    }
}

// ------------------------------------------------------------------------------------------
// Kernels: row-wise softmax pieces (one block per score row r = (b·H + h)·T + t)

/* S fp32 [rows, Tp] → P bf16 over it (ld 2·Tp); lse[r] '='. */
__global__ void att_softmax_fwd_kernel(float *S, int64_t Tp, int64_t T, int64_t rows, float *__restrict__ lse)
{
    extern __shared__ float row_s[];
    __shared__ float red[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t t = r % T;
        float *srow = S + r * Tp;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j <= t; j += blockDim.x) {
            const float v = srow[j];
            row_s[j] = v;
            m = fmaxf(m, v);
        }
        m = nn_block_max(m, red);
        float s = 0.0f;
        for (int64_t j = threadIdx.x; j <= t; j += blockDim.x)
            s += expf(row_s[j] - m);
        s = nn_block_sum(s, red); /* its barriers also order every read of srow before the writes */
        const float l = m + logf(s);
        bf16 *prow = (bf16 *)srow;
        for (int64_t j = threadIdx.x; j < T; j += blockDim.x)
            prow[j] = __float2bfloat16_rn(j <= t ? expf(row_s[j] - l) : 0.0f);
        if (threadIdx.x == 0)
            lse[r] = l;
        __syncthreads(); /* row_s is reused by the next row */
    }
}

/* A fp32 [rows, Tp] (scores) → P = exp(A − lse) bf16 over it. */
__global__ void att_recompute_p_kernel(float *A, int64_t Tp, int64_t T, int64_t rows, const float *__restrict__ lse)
{
    extern __shared__ float row_s[];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t t = r % T;
        float *arow = A + r * Tp;
        for (int64_t j = threadIdx.x; j <= t; j += blockDim.x)
            row_s[j] = arow[j];
        __syncthreads();
        const float l = lse[r];
        bf16 *prow = (bf16 *)arow;
        for (int64_t j = threadIdx.x; j < T; j += blockDim.x)
            prow[j] = __float2bfloat16_rn(j <= t ? expf(row_s[j] - l) : 0.0f);
        __syncthreads();
    }
}

/* P bf16 (over A), dP fp32 [rows, Tp] (Bm) → dS = scale·P∘(dP − Σ_j P∘dP) bf16 over Bm. */
__global__ void att_softmax_bwd_kernel(const float *A, float *Bm, int64_t Tp, int64_t T, int64_t rows, float scale)
{
    extern __shared__ float row_s[];
    __shared__ float red[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t t = r % T;
        const bf16 *prow = (const bf16 *)(A + r * Tp);
        float *drow = Bm + r * Tp;
        float dl = 0.0f;
        for (int64_t j = threadIdx.x; j <= t; j += blockDim.x) {
            const float dp = drow[j];
            row_s[j] = dp;
            dl += nn_ld(&prow[j]) * dp;
        }
        dl = nn_block_sum(dl, red);
        bf16 *dsrow = (bf16 *)drow;
        for (int64_t j = threadIdx.x; j < T; j += blockDim.x)
            dsrow[j] = __float2bfloat16_rn(j <= t ? scale * nn_ld(&prow[j]) * (row_s[j] - dl) : 0.0f);
        __syncthreads();
    }
}

// ------------------------------------------------------------------------------------------
// Workspace layout

struct att_dims {
    int64_t B, T, Tp;
    int H, Hkv, D, Dp;
};

static struct att_dims dims_of(int64_t B, int64_t T, int H, int Hkv, int D)
{
    struct att_dims d = {B, T, (T + 7) / 8 * 8, H, Hkv, D, (D + 7) / 8 * 8};
    return d;
}

struct att_bufs {
    bf16 *qp, *kp, *vp, *xp; /* xp: yp (forward) or dyp (backward) */
    float *dq, *dk, *dv;     /* backward only */
    float *s1, *s2;          /* score matrices: s2 backward only */
    char *lt;                /* cuBLASLt workspace: the rest */
    size_t lt_bytes;
};

/* Bytes for bc sequences (base 256-aligned); fills b when base is given. */
static size_t att_layout(const struct att_dims *d, int64_t bc, bool backward, char *base, size_t avail,
                         struct att_bufs *b)
{
    const size_t head16 = nn_align256((size_t)(bc * d->H * d->T * d->Dp) * 2);
    const size_t head32 = nn_align256((size_t)(bc * d->H * d->T * d->Dp) * 4);
    const size_t score = nn_align256((size_t)(bc * d->H * d->T * d->Tp) * 4);
    const size_t total = 4 * head16 + (backward ? 3 * head32 + 2 * score : score);
    if (base && b) {
        char *p = base;
        b->qp = (bf16 *)p, p += head16;
        b->kp = (bf16 *)p, p += head16;
        b->vp = (bf16 *)p, p += head16;
        b->xp = (bf16 *)p, p += head16;
        b->dq = b->dk = b->dv = NULL;
        if (backward) {
            b->dq = (float *)p, p += head32;
            b->dk = (float *)p, p += head32;
            b->dv = (float *)p, p += head32;
        }
        b->s1 = (float *)p, p += score;
        b->s2 = NULL;
        if (backward)
            b->s2 = (float *)p, p += score;
        b->lt = p;
        b->lt_bytes = avail > total ? avail - total : 0;
    }
    return total;
}

static void att_workspace(const struct att_dims *d, bool backward, struct culora_nn_ws *ws)
{
    ws->min_bytes = att_layout(d, 1, backward, NULL, 0, NULL) + 256;
    ws->full_bytes = att_layout(d, d->B, backward, NULL, 0, NULL) + 256 + ATT_LT_SHARE;
}

/* Sequences per pass that fit in ws (>= 1: the dispatcher checked min_bytes). */
static int64_t att_chunk(const struct att_dims *d, bool backward, const culora_workspace *ws, char **base,
                         size_t *avail)
{
    *base = (char *)nn_align256((size_t)ws->ptr);
    *avail = ws->bytes - (size_t)(*base - (char *)ws->ptr);
    int64_t bc = d->B;
    while (bc > 1 && att_layout(d, bc, backward, NULL, 0, NULL) > *avail)
        bc--;
    return bc;
}

// ------------------------------------------------------------------------------------------
// Launch helpers

/* Dynamic shared memory for one score row; opts in beyond the default 48 KiB. */
template <typename Kernel>
static culora_status att_row_smem(culora_backend *be, Kernel kernel, int64_t T, size_t *bytes)
{
    *bytes = (size_t)T * sizeof(float);
    if (*bytes <= 48 * 1024)
        return CULORA_OK;
    int dev = 0, max_optin = 0;
    CULORA_CUDA_TRY(be, cudaGetDevice(&dev));
    CULORA_CUDA_TRY(be, cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (*bytes + 32 * sizeof(float) > (size_t)max_optin)
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED,
                           "nn_attention: seq = %lld needs %zu bytes of shared memory per block; this GPU allows %d "
                           "(the v1 attention keeps one score row there)",
                           (long long)T, *bytes, max_optin);
    CULORA_CUDA_TRY(be, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)*bytes));
    return CULORA_OK;
}

static culora_status to_heads(culora_backend *be, const void *src, int64_t ld, int64_t b0, int64_t bc,
                              const struct att_dims *d, int group, bf16 *dst, cudaStream_t stream)
{
    att_to_heads_kernel<<<culora_ew_blocks(bc * d->H * d->T * d->D), CULORA_EW_THREADS, 0, stream>>>(
        (const bf16 *)src, ld, b0, bc, d->T, d->H, group, d->D, d->Dp, dst);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

template <typename Src>
static culora_status from_heads(culora_backend *be, const Src *src, int64_t b0, int64_t bc, const struct att_dims *d,
                                int h_out, int group, void *dst, int64_t ld, cudaStream_t stream)
{
    att_from_heads_kernel<Src><<<culora_ew_blocks(bc * d->T * h_out * d->D), CULORA_EW_THREADS, 0, stream>>>(
        src, b0, bc, d->T, h_out, group, d->D, d->Dp, (bf16 *)dst, ld);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

#define BF CULORA_DTYPE_BF16
#define F32 CULORA_DTYPE_F32

/* Batched row-major GEMM over bc·H heads: C_i = alpha·op(A_i)·op(B_i). */
static culora_status head_gemm(culora_backend *be, const struct att_bufs *w, int64_t heads, bool ta, bool tb,
                               int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda, int64_t sa,
                               const void *b, int64_t ldb, int64_t sb, void *c, int64_t ldc, int64_t sc,
                               culora_dtype c_type, cudaStream_t stream)
{
    const struct cuda_gemm_batch batch = {(int32_t)heads, sa, sb, sc};
    return cuda_gemm_rm_batched(be, ta, tb, m, n, k, alpha, a, lda, BF, b, ldb, BF, 0.0f, c, ldc, c_type, NULL, &batch,
                                w->lt, w->lt_bytes, stream);
}

// ------------------------------------------------------------------------------------------
// Entries

extern "C" culora_status cuda_attention_fwd_workspace(culora_backend *be, const struct culora_nn_attention_args *a,
                                                      struct culora_nn_ws *ws)
{
    (void)be;
    const struct att_dims d = dims_of(a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim);
    att_workspace(&d, false, ws);
    return CULORA_OK;
}

extern "C" culora_status cuda_attention_fwd(culora_backend *be, const struct culora_nn_attention_args *a,
                                            const culora_workspace *ws, culora_stream s)
{
    const cudaStream_t stream = (cudaStream_t)s;
    const struct att_dims d = dims_of(a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim);
    const int group = d.H / d.Hkv;
    const int64_t T = d.T, Tp = d.Tp, Dp = d.Dp;
    char *base;
    size_t avail, smem;
    const int64_t bc_max = att_chunk(&d, false, ws, &base, &avail);
    struct att_bufs w;
    att_layout(&d, bc_max, false, base, avail, &w);
    CULORA_TRY(att_row_smem(be, att_softmax_fwd_kernel, T, &smem));
    for (int64_t b0 = 0; b0 < d.B; b0 += bc_max) {
        const int64_t bc = d.B - b0 < bc_max ? d.B - b0 : bc_max, heads = bc * d.H, rows = heads * T;
        CULORA_TRY(to_heads(be, a->q, a->ldq, b0, bc, &d, 1, w.qp, stream));
        CULORA_TRY(to_heads(be, a->k, a->ldk, b0, bc, &d, group, w.kp, stream));
        CULORA_TRY(to_heads(be, a->v, a->ldv, b0, bc, &d, group, w.vp, stream));
        /* S = scale·Q·Kᵀ  [T, T] per head, fp32 */
        CULORA_TRY(head_gemm(be, &w, heads, false, true, T, T, d.D, a->scale, w.qp, Dp, T * Dp, w.kp, Dp, T * Dp,
                             w.s1, Tp, T * Tp, F32, stream));
        att_softmax_fwd_kernel<<<nn_row_blocks(rows), ATT_THREADS, smem, stream>>>(w.s1, Tp, T, rows,
                                                                                  a->lse + b0 * d.H * T);
        CULORA_CUDA_TRY(be, cudaGetLastError());
        /* Yp = P·V  [T, D] per head; P is bf16 with ld 2·Tp over S */
        CULORA_TRY(head_gemm(be, &w, heads, false, false, T, d.D, T, 1.0f, w.s1, 2 * Tp, 2 * T * Tp, w.vp, Dp,
                             T * Dp, w.xp, Dp, T * Dp, BF, stream));
        CULORA_TRY(from_heads(be, (const bf16 *)w.xp, b0, bc, &d, d.H, 1, a->y, a->ldy, stream));
    }
    return CULORA_OK;
}

extern "C" culora_status cuda_attention_bwd_workspace(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                                      struct culora_nn_ws *ws)
{
    (void)be;
    const struct att_dims d = dims_of(a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim);
    att_workspace(&d, true, ws);
    return CULORA_OK;
}

extern "C" culora_status cuda_attention_bwd(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                            const culora_workspace *ws, culora_stream s)
{
    const cudaStream_t stream = (cudaStream_t)s;
    const struct att_dims d = dims_of(a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim);
    const int group = d.H / d.Hkv;
    const int64_t T = d.T, Tp = d.Tp, Dp = d.Dp;
    char *base;
    size_t avail, smem_p, smem_ds;
    const int64_t bc_max = att_chunk(&d, true, ws, &base, &avail);
    struct att_bufs w;
    att_layout(&d, bc_max, true, base, avail, &w);
    CULORA_TRY(att_row_smem(be, att_recompute_p_kernel, T, &smem_p));
    CULORA_TRY(att_row_smem(be, att_softmax_bwd_kernel, T, &smem_ds));
    for (int64_t b0 = 0; b0 < d.B; b0 += bc_max) {
        const int64_t bc = d.B - b0 < bc_max ? d.B - b0 : bc_max, heads = bc * d.H, rows = heads * T;
        CULORA_TRY(to_heads(be, a->q, a->ldq, b0, bc, &d, 1, w.qp, stream));
        CULORA_TRY(to_heads(be, a->k, a->ldk, b0, bc, &d, group, w.kp, stream));
        CULORA_TRY(to_heads(be, a->v, a->ldv, b0, bc, &d, group, w.vp, stream));
        CULORA_TRY(to_heads(be, a->dy, a->lddy, b0, bc, &d, 1, w.xp, stream));
        /* A = scale·Q·Kᵀ, then P = exp(A − lse) as bf16 over A */
        CULORA_TRY(head_gemm(be, &w, heads, false, true, T, T, d.D, a->scale, w.qp, Dp, T * Dp, w.kp, Dp, T * Dp,
                             w.s1, Tp, T * Tp, F32, stream));
        att_recompute_p_kernel<<<nn_row_blocks(rows), ATT_THREADS, smem_p, stream>>>(w.s1, Tp, T, rows,
                                                                                    a->lse + b0 * d.H * T);
        CULORA_CUDA_TRY(be, cudaGetLastError());
        /* dVp = Pᵀ·dY  [T, D] fp32 */
        CULORA_TRY(head_gemm(be, &w, heads, true, false, T, d.D, T, 1.0f, w.s1, 2 * Tp, 2 * T * Tp, w.xp, Dp, T * Dp,
                             w.dv, Dp, T * Dp, F32, stream));
        /* dP = dY·Vᵀ  [T, T] fp32, then dS (scale folded in) as bf16 over it */
        CULORA_TRY(head_gemm(be, &w, heads, false, true, T, T, d.D, 1.0f, w.xp, Dp, T * Dp, w.vp, Dp, T * Dp, w.s2, Tp,
                             T * Tp, F32, stream));
        att_softmax_bwd_kernel<<<nn_row_blocks(rows), ATT_THREADS, smem_ds, stream>>>(w.s1, w.s2, Tp, T, rows,
                                                                                     a->scale);
        CULORA_CUDA_TRY(be, cudaGetLastError());
        /* dQp = dS·K, dKp = dSᵀ·Q  [T, D] fp32 */
        CULORA_TRY(head_gemm(be, &w, heads, false, false, T, d.D, T, 1.0f, w.s2, 2 * Tp, 2 * T * Tp, w.kp, Dp, T * Dp,
                             w.dq, Dp, T * Dp, F32, stream));
        CULORA_TRY(head_gemm(be, &w, heads, true, false, T, d.D, T, 1.0f, w.s2, 2 * Tp, 2 * T * Tp, w.qp, Dp, T * Dp,
                             w.dk, Dp, T * Dp, F32, stream));
        CULORA_TRY(from_heads(be, (const float *)w.dq, b0, bc, &d, d.H, 1, a->dq, a->lddq, stream));
        CULORA_TRY(from_heads(be, (const float *)w.dk, b0, bc, &d, d.Hkv, group, a->dk, a->lddk, stream));
        CULORA_TRY(from_heads(be, (const float *)w.dv, b0, bc, &d, d.Hkv, group, a->dv, a->lddv, stream));
    }
    return CULORA_OK;
}
