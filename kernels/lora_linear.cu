/*
 * lora_linear.cu — LoRA linear layer on CUDA: forward, backward, merge.
 *
 *   y = x·W0ᵀ (+ bias) + s·(dropout(x)·Aᵀ)·Bᵀ
 *   x [m,k]  W0 [d,k] (or [k,d])  A [r,k]  B [d,r]  y [m,d]    bf16, fp32 accumulation
 *
 * Forward    v  = s·xd·Aᵀ                 [m,r] '='   cuBLASLt, alpha = s
 *            y  = [x | v]·[W0 | B]ᵀ       [m,d] '='   ONE GEMM with K = k+r (augmented layout)
 *                 (else y = x·W0ᵀ, then y += v·Bᵀ)
 * Backward   du = s·dy·B                  [m,r] '='
 *            dB += dyᵀ·v                  [d,r] fp32 '+='
 *            dA += duᵀ·xd                 [r,k] fp32 '+='  (not with FREEZE_A)
 *            dx = [dy | du]·[W0 ; A]      [m,k] '=' or '+=', ONE GEMM with K = d+r (augmented, p = 0)
 *                 (else dx = dy·W0, then dx += du·A, or dx += mask⊙(du·A)/(1-p) with dropout)
 * xd = dropout(x), regenerated from (seed, offset) in backward with cuRAND's Philox4x32-10,
 * bit-identical to the CPU mask (host/philox.h). The fused layout conditions are in
 * culora_ops.h; why this design: docs/kernels/lora_linear.md. Ref: host/cpu/lora_linear.c.
 *
 * Variants: v1 (this file) = cuBLASLt GEMMs on augmented operands + a dropout kernel.
 * Workspace: with dropout, one bf16 [m, round8(k)] buffer (xd, then du·A); the rest goes to
 * cuBLASLt (up to 32 MiB).
 */
#include "../host/cuda/cuda_backend.h"
#include "../host/philox.h"
#include "common.cuh"

#include <curand_philox4x32_x.h>

// ------------------------------------------------------------------------------------------
// Kernel: out = mask ⊙ in / (1-p)   (accumulate: out += ...)
// One thread per group of 4 logical elements i = row·k + col: one Philox call gives their 4 words.

__global__ void dropout_kernel(const __nv_bfloat16 *__restrict__ in, int64_t ldin, __nv_bfloat16 *__restrict__ out,
                               int64_t ldout, int64_t m, int64_t k, uint2 key, uint2 stream_id, uint32_t threshold,
                               float scale, int accumulate)
{
    const int64_t total = m * k;
    const int64_t groups = CULORA_CEIL_DIV(total, (int64_t)4);
    for (int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < groups;
         g += (int64_t)gridDim.x * blockDim.x) {
        const uint4 ctr = make_uint4((uint32_t)g, (uint32_t)((uint64_t)g >> 32), stream_id.x, stream_id.y);
        const uint4 w = curand_Philox4x32_10(ctr, key);
        const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int64_t i = 4 * g + j;
            if (i >= total)
                break;
            const int64_t row = i / k, col = i % k;
            const float v = (words[j] >> 8) >= threshold ? culora_load_f(&in[row * ldin + col]) * scale : 0.0f;
            __nv_bfloat16 *o = &out[row * ldout + col];
            culora_store_f(o, accumulate ? culora_load_f(o) + v : v);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Launcher

static culora_status dropout_launch(culora_backend *be, const culora_lora_linear_desc *desc, const void *in,
                                    int64_t ldin, void *out, int64_t ldout, int accumulate, cudaStream_t stream)
{
    const uint2 key = make_uint2((uint32_t)desc->seed, (uint32_t)(desc->seed >> 32));
    const uint2 sid = make_uint2((uint32_t)desc->offset, (uint32_t)(desc->offset >> 32));
    const uint32_t thr = culora_dropout_threshold(desc->dropout);
    const float scale = 1.0f / (1.0f - desc->dropout);
    const int64_t groups = CULORA_CEIL_DIV(desc->m * desc->k, (int64_t)4);
    dropout_kernel<<<culora_ew_blocks(groups), CULORA_EW_THREADS, 0, stream>>>(
        (const __nv_bfloat16 *)in, ldin, (__nv_bfloat16 *)out, ldout, desc->m, desc->k, key, sid, thr, scale,
        accumulate);
    CULORA_CUDA_TRY(be, cudaGetLastError());
    return CULORA_OK;
}

// ------------------------------------------------------------------------------------------
// Entries

#define BF CULORA_DTYPE_BF16
#define F32 CULORA_DTYPE_F32

static int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }
static size_t round256(size_t n) { return (n + 255) / 256 * 256; }

/* bf16 scratch for the dropped-out input (and later du·A): [m, round8(k)]. */
static size_t dropout_scratch_bytes(const culora_lora_linear_desc *desc)
{
    return desc->dropout > 0.0f ? round256((size_t)desc->m * (size_t)round8(desc->k) * 2) : 0;
}

extern "C" culora_status cuda_lora_linear_workspace(culora_backend *be, const culora_lora_linear_desc *desc,
                                                    size_t *fwd_bytes, size_t *bwd_bytes)
{
    (void)be;
    const size_t need = dropout_scratch_bytes(desc);
    if (fwd_bytes) *fwd_bytes = need;
    if (bwd_bytes) *bwd_bytes = need;
    return CULORA_OK;
}

static const char *elem(const void *p, int64_t n) { return (const char *)p + 2 * n; }

/* Why the forward cannot take the fused path (NULL when it can). */
static const char *fwd_unfused_reason(const culora_lora_linear_desc *desc, const culora_lora_linear_fwd_args *a)
{
    const int64_t k = desc->k, r = desc->r;
    if (desc->flags & CULORA_LORA_W0_TRANSPOSED) return "W0 is stored transposed";
    if ((const char *)a->v != elem(a->x, k) || a->ldv != a->ldx) return "v is not x + k with ldv == ldx";
    if (a->ldx < k + r) return "ldx < k + r";
    if ((const char *)a->b != elem(a->w0, k) || a->ldb != a->ldw0) return "b is not w0 + k with ldb == ldw0";
    if (a->ldw0 < k + r) return "ldw0 < k + r";
    return NULL;
}

static const char *bwd_dx_unfused_reason(const culora_lora_linear_desc *desc, const culora_lora_linear_bwd_args *a)
{
    const int64_t d = desc->d, r = desc->r;
    if (desc->flags & CULORA_LORA_W0_TRANSPOSED) return "W0 is stored transposed";
    if (desc->dropout > 0.0f) return "dropout > 0 masks the du·A term";
    if ((const char *)a->du != elem(a->dy, d) || a->lddu != a->lddy) return "du is not dy + d with lddu == lddy";
    if (a->lddy < d + r) return "lddy < d + r";
    if ((const char *)a->a != elem(a->w0, d * a->ldw0) || a->lda != a->ldw0) return "a is not w0 + d·ldw0 with lda == ldw0";
    return NULL;
}

extern "C" culora_status cuda_lora_linear_fwd(culora_backend *be, const culora_lora_linear_desc *desc,
                                              const culora_lora_linear_fwd_args *a, const culora_workspace *ws,
                                              culora_stream stream_)
{
    cudaStream_t stream = (cudaStream_t)stream_;
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    const float s = culora_lora_scaling(desc);
    const bool w0t = (desc->flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    const char *why = fwd_unfused_reason(desc, a);
    if (why != NULL && (desc->flags & CULORA_LORA_REQUIRE_FUSED))
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED,
                           "culora_lora_linear_forward: fused path required but %s (see culora_ops.h)", why);

    char *wsp = (char *)ws->ptr;
    size_t wsb = ws->bytes;
    const void *xd = a->x;
    int64_t ldxd = a->ldx;
    if (desc->dropout > 0.0f) {
        ldxd = round8(k);
        CULORA_TRY(dropout_launch(be, desc, a->x, a->ldx, wsp, ldxd, 0, stream));
        xd = wsp;
        wsp += dropout_scratch_bytes(desc);
        wsb -= dropout_scratch_bytes(desc);
    }
    /* v = s·xd·Aᵀ */
    CULORA_TRY(cuda_gemm_rm(be, false, true, m, r, k, s, xd, ldxd, BF, a->a, a->lda, BF, 0.0f, a->v, a->ldv, BF,
                            NULL, wsp, wsb, stream));
    if (why == NULL) /* y = [x | v]·[W0 | B]ᵀ + bias */
        return cuda_gemm_rm(be, false, true, m, d, k + r, 1.0f, a->x, a->ldx, BF, a->w0, a->ldw0, BF, 0.0f, a->y,
                            a->ldy, BF, a->bias, wsp, wsb, stream);
    CULORA_TRY(cuda_gemm_rm(be, false, !w0t, m, d, k, 1.0f, a->x, a->ldx, BF, a->w0, a->ldw0, BF, 0.0f, a->y, a->ldy,
                            BF, a->bias, wsp, wsb, stream));
    return cuda_gemm_rm(be, false, true, m, d, r, 1.0f, a->v, a->ldv, BF, a->b, a->ldb, BF, 1.0f, a->y, a->ldy, BF,
                        NULL, wsp, wsb, stream);
}

extern "C" culora_status cuda_lora_linear_bwd(culora_backend *be, const culora_lora_linear_desc *desc,
                                              const culora_lora_linear_bwd_args *a, const culora_workspace *ws,
                                              culora_stream stream_)
{
    cudaStream_t stream = (cudaStream_t)stream_;
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    const float s = culora_lora_scaling(desc);
    const bool w0t = (desc->flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    const bool dropout = desc->dropout > 0.0f;
    const char *why = a->dx != NULL ? bwd_dx_unfused_reason(desc, a) : NULL;
    if (why != NULL && (desc->flags & CULORA_LORA_REQUIRE_FUSED))
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED,
                           "culora_lora_linear_backward: fused path required but %s (see culora_ops.h)", why);

    char *scratch = (char *)ws->ptr;
    const int64_t ldt = round8(k);
    char *wsp = scratch + dropout_scratch_bytes(desc);
    const size_t wsb = ws->bytes - dropout_scratch_bytes(desc);

    /* du = s·dy·B ;  dB += dyᵀ·v */
    CULORA_TRY(cuda_gemm_rm(be, false, false, m, r, d, s, a->dy, a->lddy, BF, a->b, a->ldb, BF, 0.0f, a->du, a->lddu,
                            BF, NULL, wsp, wsb, stream));
    CULORA_TRY(cuda_gemm_rm(be, true, false, d, r, m, 1.0f, a->dy, a->lddy, BF, a->v, a->ldv, BF, 1.0f, a->db, a->lddb,
                            F32, NULL, wsp, wsb, stream));
    /* dA += duᵀ·xd */
    if (!(desc->flags & CULORA_LORA_FREEZE_A)) {
        const void *xd = a->x;
        int64_t ldxd = a->ldx;
        if (dropout) {
            CULORA_TRY(dropout_launch(be, desc, a->x, a->ldx, scratch, ldt, 0, stream));
            xd = scratch;
            ldxd = ldt;
        }
        CULORA_TRY(cuda_gemm_rm(be, true, false, r, k, m, 1.0f, a->du, a->lddu, BF, xd, ldxd, BF, 1.0f, a->da,
                                a->ldda, F32, NULL, wsp, wsb, stream));
    }
    if (a->dx == NULL)
        return CULORA_OK;
    const float beta = (desc->flags & CULORA_LORA_ACCUMULATE_DX) ? 1.0f : 0.0f;
    if (why == NULL) /* dx = [dy | du]·[W0 ; A] */
        return cuda_gemm_rm(be, false, false, m, k, d + r, 1.0f, a->dy, a->lddy, BF, a->w0, a->ldw0, BF, beta, a->dx,
                            a->lddx, BF, NULL, wsp, wsb, stream);
    CULORA_TRY(cuda_gemm_rm(be, false, w0t, m, k, d, 1.0f, a->dy, a->lddy, BF, a->w0, a->ldw0, BF, beta, a->dx,
                            a->lddx, BF, NULL, wsp, wsb, stream));
    if (!dropout)
        return cuda_gemm_rm(be, false, false, m, k, r, 1.0f, a->du, a->lddu, BF, a->a, a->lda, BF, 1.0f, a->dx,
                            a->lddx, BF, NULL, wsp, wsb, stream);
    /* t = du·A (scratch), then dx += mask ⊙ t / (1-p) */
    CULORA_TRY(cuda_gemm_rm(be, false, false, m, k, r, 1.0f, a->du, a->lddu, BF, a->a, a->lda, BF, 0.0f, scratch, ldt,
                            BF, NULL, wsp, wsb, stream));
    return dropout_launch(be, desc, scratch, ldt, a->dx, a->lddx, 1, stream);
}

extern "C" culora_status cuda_lora_merge(culora_backend *be, const struct culora_lora_merge_args *g,
                                         const culora_workspace *ws, culora_stream stream)
{
    const culora_lora_linear_desc *desc = g->desc;
    const float alpha = g->sign * culora_lora_scaling(desc);
    if (desc->flags & CULORA_LORA_W0_TRANSPOSED) /* W0ᵀ[k,d] += sign·s·Aᵀ·Bᵀ */
        return cuda_gemm_rm(be, true, true, desc->k, desc->d, desc->r, alpha, g->a, g->lda, BF, g->b, g->ldb, BF,
                            1.0f, g->w0, g->ldw0, BF, NULL, ws->ptr, ws->bytes, (cudaStream_t)stream);
    return cuda_gemm_rm(be, false, false, desc->d, desc->k, desc->r, alpha, g->b, g->ldb, BF, g->a, g->lda, BF, 1.0f,
                        g->w0, g->ldw0, BF, NULL, ws->ptr, ws->bytes, (cudaStream_t)stream);
}
