/*
 * relora.cu — the ReLoRA restart of one LoRA pair on CUDA (host/relora_ops.h): merge, re-init,
 * moment pruning, enqueued on the stream with no host round trip and no synchronisation.
 *
 *   select  (MAGNITUDE only) one block per moment tensor: torch.quantile(|t|, ratio) by an exact
 *           radix select of the two order statistics it interpolates (4 passes of 8 bits over the
 *           fp32 bit patterns of |t|, which sort as unsigned integers; integer shared-memory
 *           histograms, so the result does not depend on scheduling), then ATen's lerp in fp32
 *           with _rn intrinsics (no FMA contraction): the threshold equals the CPU reference's
 *           bit for bit, and so does the mask.
 *   merge   W0 += s·B·A, 64×64 output tiles, B and A chunks of 16 ranks in shared memory, fp32
 *           accumulation (sum order differs from the CPU's OpenBLAS: rounding only). Into the
 *           fp32 master when given (then W0 '=' its bf16 rounding), else into W0 directly.
 *   reset   one thread per element of A and B: A from Philox exactly as model_lora_reinit draws
 *           it (cuRAND's Philox4x32-10 = host/philox.c), B = 0, bf16 copies, and the four moment
 *           tensors pruned (threshold from select, or the random mask of host/relora_ops.h), then
 *           the second-moment guard (m = 0 where v = 0).
 * The merge must read A and B before reset overwrites them, so the pass is three launches in
 * stream order rather than one kernel (a single kernel would need a grid-wide barrier).
 * Ref: host/cpu/relora.c. Tests: tests/train/test_relora_cuda.cpp (pass on an H100, 2026-11-26). Speed
 * there: 17.6 ms a LLaMA-8B layer at r = 128, far from the 15 ms-per-model target (docs/relora.md).
 */
#include "../host/cuda/cuda_backend.h"
#include "../host/relora_ops.h"
#include "common.cuh"

#include <curand_philox4x32_x.h>

// ------------------------------------------------------------------------------------------
// Kernels

struct select_job {
    const float *t;
    int64_t rows, cols, ld;
    int64_t lo, hi; /* torch.quantile's ranks */
    float w;        /* interpolation weight */
};

struct select_jobs {
    struct select_job j[4];
};

#define SELECT_THREADS 1024

__device__ __forceinline__ uint32_t abs_key(float x) { return __float_as_uint(x) & 0x7fffffffu; }

__global__ void __launch_bounds__(SELECT_THREADS) relora_select_kernel(const struct select_jobs jobs, float *thr)
{
    const struct select_job jb = jobs.j[blockIdx.x];
    const int64_t n = jb.rows * jb.cols;
    __shared__ unsigned int hist[256];
    __shared__ uint32_t s_prefix, s_min[32];
    __shared__ unsigned long long s_k;
    __shared__ unsigned int s_eq;
    uint32_t prefix = 0, mask = 0;
    unsigned long long k = (unsigned long long)jb.lo;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x)
            hist[b] = 0;
        __syncthreads();
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
            const uint32_t key = abs_key(jb.t[(i / jb.cols) * jb.ld + i % jb.cols]);
            if ((key & mask) == prefix)
                atomicAdd(&hist[(key >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            unsigned long long cum = 0;
            unsigned int digit = 255;
            for (unsigned int b = 0; b < 256; b++) {
                if (cum + hist[b] > k) {
                    digit = b;
                    break;
                }
                cum += hist[b];
            }
            s_k = k - cum;
            s_prefix = prefix | (digit << shift);
            s_eq = hist[digit];
        }
        __syncthreads();
        prefix = s_prefix;
        k = s_k;
        mask |= 255u << shift;
    }
    const float v_lo = __uint_as_float(prefix);
    float v_hi = v_lo;
    if (jb.hi > jb.lo && k + 1 >= s_eq) { /* rank lo is the last of its equal values: the next larger one */
        uint32_t best = 0xffffffffu;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
            const uint32_t key = abs_key(jb.t[(i / jb.cols) * jb.ld + i % jb.cols]);
            if (key > prefix && key < best)
                best = key;
        }
        best = __reduce_min_sync(0xffffffffu, best);
        if ((threadIdx.x & 31) == 0)
            s_min[threadIdx.x >> 5] = best;
        __syncthreads();
        if (threadIdx.x < 32) {
            uint32_t b = threadIdx.x < (blockDim.x >> 5) ? s_min[threadIdx.x] : 0xffffffffu;
            b = __reduce_min_sync(0xffffffffu, b);
            if (threadIdx.x == 0)
                s_min[0] = b;
        }
        __syncthreads();
        v_hi = __uint_as_float(s_min[0]);
    }
    if (threadIdx.x == 0) {
        const float diff = __fsub_rn(v_hi, v_lo);
        thr[blockIdx.x] = fabsf(jb.w) < 0.5f ? __fadd_rn(v_lo, __fmul_rn(jb.w, diff))
                                              : __fsub_rn(v_hi, __fmul_rn(diff, __fsub_rn(1.0f, jb.w)));
    }
}

#define MERGE_TILE 64
#define MERGE_RC 16
#define MERGE_THREADS 256

/* W0 tile += s·B[rows, :]·A[:, cols]; 16×16 threads, each 4×4 outputs (rows ty + 16i, cols tx + 16j). */
__global__ void __launch_bounds__(MERGE_THREADS)
    relora_merge_kernel(int64_t d, int64_t k, int64_t r, float s, const float *__restrict__ A, int64_t lda,
                        const float *__restrict__ B, int64_t ldb, float *__restrict__ master, void *w0, int64_t ldw0,
                        int w0_f32)
{
    __shared__ float Bs[MERGE_TILE][MERGE_RC + 1];
    __shared__ float As[MERGE_RC][MERGE_TILE];
    const int64_t row0 = (int64_t)blockIdx.y * MERGE_TILE, col0 = (int64_t)blockIdx.x * MERGE_TILE;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
            acc[i][j] = 0.0f;
    for (int64_t r0 = 0; r0 < r; r0 += MERGE_RC) {
        for (int e = threadIdx.x; e < MERGE_TILE * MERGE_RC; e += MERGE_THREADS) {
            const int i = e / MERGE_RC, q = e % MERGE_RC;
            const int64_t gi = row0 + i, gq = r0 + q;
            Bs[i][q] = gi < d && gq < r ? B[gi * ldb + gq] : 0.0f;
        }
        for (int e = threadIdx.x; e < MERGE_RC * MERGE_TILE; e += MERGE_THREADS) {
            const int q = e / MERGE_TILE, j = e % MERGE_TILE;
            const int64_t gq = r0 + q, gj = col0 + j;
            As[q][j] = gq < r && gj < k ? A[gq * lda + gj] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int q = 0; q < MERGE_RC; q++) {
            float bv[4], av[4];
#pragma unroll
            for (int i = 0; i < 4; i++)
                bv[i] = Bs[ty + 16 * i][q];
#pragma unroll
            for (int j = 0; j < 4; j++)
                av[j] = As[q][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
                    acc[i][j] = __fmaf_rn(bv[i], av[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int64_t gi = row0 + ty + 16 * i;
        if (gi >= d)
            continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int64_t gj = col0 + tx + 16 * j;
            if (gj >= k)
                continue;
            const int64_t e = gi * ldw0 + gj;
            const float upd = __fmul_rn(s, acc[i][j]);
            if (master != NULL) {
                const float w = __fadd_rn(master[e], upd);
                master[e] = w;
                ((__nv_bfloat16 *)w0)[e] = __float2bfloat16_rn(w);
            } else if (w0_f32) {
                ((float *)w0)[e] = __fadd_rn(((float *)w0)[e], upd);
            } else {
                __nv_bfloat16 *p = (__nv_bfloat16 *)w0 + e;
                *p = __float2bfloat16_rn(__fadd_rn(__bfloat162float(*p), upd));
            }
        }
    }
}

struct reset_params {
    int64_t d, k, r, lda, ldb;
    float *a, *b;
    __nv_bfloat16 *a_copy, *b_copy;
    float *mom[4]; /* A.m, A.v, B.m, B.v */
    int gaussian;
    double init_scale;
    uint2 init_key, init_stream;
    int prune;
    uint32_t rand_thr;
    uint2 prune_key;
    uint64_t prune_stream;
};

__device__ __forceinline__ float init_value(const struct reset_params &p, uint64_t i)
{
    const uint4 ctr = make_uint4((uint32_t)i, (uint32_t)(i >> 32), p.init_stream.x, p.init_stream.y);
    const uint4 o = curand_Philox4x32_10(ctr, p.init_key);
    if (p.gaussian) {
        const double u1 = __dadd_rn(__dadd_rn(__dmul_rn((double)(o.x >> 5), 67108864.0), (double)(o.y >> 6)), 0.5) /
                          9007199254740992.0;
        const double u2 = __dadd_rn(__dmul_rn((double)(o.z >> 5), 67108864.0), (double)(o.w >> 6)) / 9007199254740992.0;
        return __double2float_rn(__dmul_rn(sqrt(-2.0 * log(u1)), cos(6.283185307179586 * u2)) / p.init_scale);
    }
    const double u = __dadd_rn(__dmul_rn((double)(o.x >> 5), 67108864.0), (double)(o.y >> 6)) / 9007199254740992.0;
    return __double2float_rn(__dmul_rn(__dsub_rn(__dmul_rn(2.0, u), 1.0), p.init_scale));
}

/* Element i (logical index) of moment tensor t. */
__device__ __forceinline__ void prune_one(const struct reset_params &p, const float *thr, int t, uint64_t i, float *e)
{
    if (p.prune == CULORA_RELORA_PRUNE_ZERO) {
        *e = 0.0f;
    } else if (p.prune == CULORA_RELORA_PRUNE_MAGNITUDE) {
        if (!(fabsf(*e) > thr[t]))
            *e = 0.0f;
    } else {
        const uint64_t g = i / 4, st = p.prune_stream + (uint64_t)t;
        const uint4 w = curand_Philox4x32_10(make_uint4((uint32_t)g, (uint32_t)(g >> 32), (uint32_t)st,
                                                        (uint32_t)(st >> 32)),
                                             p.prune_key);
        const uint32_t words[4] = {w.x, w.y, w.z, w.w};
        if ((words[i % 4] >> 8) < p.rand_thr)
            *e = 0.0f;
    }
}

__global__ void relora_reset_kernel(const struct reset_params p, const float *__restrict__ thr)
{
    const int64_t na = p.r * p.k, total = na + p.d * p.r;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        if (idx < na) {
            const int64_t e = (idx / p.k) * p.lda + idx % p.k;
            const float v = init_value(p, (uint64_t)idx);
            p.a[e] = v;
            if (p.a_copy != NULL)
                p.a_copy[e] = __float2bfloat16_rn(v);
            if (p.prune != CULORA_RELORA_PRUNE_NONE) { /* (the moments may be NULL otherwise) */
                prune_one(p, thr, 0, (uint64_t)idx, &p.mom[0][e]);
                prune_one(p, thr, 1, (uint64_t)idx, &p.mom[1][e]);
                if (p.mom[1][e] == 0.0f) /* the second-moment guard */
                    p.mom[0][e] = 0.0f;
            }
        } else {
            const int64_t i = idx - na, e = (i / p.r) * p.ldb + i % p.r;
            p.b[e] = 0.0f;
            if (p.b_copy != NULL)
                p.b_copy[e] = __float2bfloat16_rn(0.0f);
            if (p.prune != CULORA_RELORA_PRUNE_NONE) {
                prune_one(p, thr, 2, (uint64_t)i, &p.mom[2][e]);
                prune_one(p, thr, 3, (uint64_t)i, &p.mom[3][e]);
                if (p.mom[3][e] == 0.0f)
                    p.mom[2][e] = 0.0f;
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Entries

static culora_status cuda_relora_reset_workspace(culora_backend *be, const struct culora_relora_restart_args *a,
                                                 size_t *bytes)
{
    (void)be;
    (void)a;
    *bytes = 256; /* the four thresholds */
    return CULORA_OK;
}

static culora_status cuda_relora_reset(culora_backend *be, const struct culora_relora_restart_args *a,
                                       const culora_workspace *ws, culora_stream s)
{
    const cudaStream_t stream = (cudaStream_t)s;
    float *thr = (float *)ws->ptr;
    if (a->prune == CULORA_RELORA_PRUNE_MAGNITUDE) { /* before anything changes the moments */
        struct select_jobs jobs;
        float *const mom[4] = {a->a_m, a->a_v, a->b_m, a->b_v};
        for (int t = 0; t < 4; t++) {
            struct select_job *j = &jobs.j[t];
            j->t = mom[t];
            j->rows = t < 2 ? a->r : a->d;
            j->cols = t < 2 ? a->k : a->r;
            j->ld = t < 2 ? a->lda : a->ldb;
            relora_quantile_rank(a->prune_ratio, j->rows * j->cols, &j->lo, &j->hi, &j->w);
        }
        relora_select_kernel<<<4, SELECT_THREADS, 0, stream>>>(jobs, thr);
        CULORA_CUDA_TRY(be, cudaGetLastError());
    }
    if (a->merge) {
        const dim3 grid((unsigned)CULORA_CEIL_DIV(a->k, (int64_t)MERGE_TILE),
                        (unsigned)CULORA_CEIL_DIV(a->d, (int64_t)MERGE_TILE));
        relora_merge_kernel<<<grid, MERGE_THREADS, 0, stream>>>(a->d, a->k, a->r, a->scaling, a->a, a->lda, a->b,
                                                                a->ldb, a->w0_master, a->w0, a->ldw0,
                                                                a->w0_dtype == CULORA_DTYPE_F32);
        CULORA_CUDA_TRY(be, cudaGetLastError());
    }
    struct reset_params p;
    p.d = a->d;
    p.k = a->k;
    p.r = a->r;
    p.lda = a->lda;
    p.ldb = a->ldb;
    p.a = a->a;
    p.b = a->b;
    p.a_copy = (__nv_bfloat16 *)a->a_copy;
    p.b_copy = (__nv_bfloat16 *)a->b_copy;
    p.mom[0] = a->a_m;
    p.mom[1] = a->a_v;
    p.mom[2] = a->b_m;
    p.mom[3] = a->b_v;
    p.gaussian = a->init == CULORA_RELORA_INIT_GAUSSIAN;
    p.init_scale = a->init_scale;
    p.init_key = make_uint2((uint32_t)a->init_seed, (uint32_t)(a->init_seed >> 32) ^ 0x696e6974u);
    p.init_stream = make_uint2((uint32_t)a->init_stream, (uint32_t)(a->init_stream >> 32));
    p.prune = a->prune;
    p.rand_thr = relora_random_threshold(a->prune_ratio);
    p.prune_key = make_uint2((uint32_t)a->prune_seed, (uint32_t)(a->prune_seed >> 32));
    p.prune_stream = a->prune_stream;
    relora_reset_kernel<<<culora_ew_blocks(a->r * a->k + a->d * a->r), CULORA_EW_THREADS, 0, stream>>>(p, thr);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

extern "C" const struct culora_relora_i culora_cuda_relora_iface = {"relora", cuda_relora_reset_workspace,
                                                                      cuda_relora_reset};
