/*
 * lora_linear.c — CPU reference of the LoRA linear layer (fp32, OpenBLAS sgemm + OpenMP loops).
 *
 *   forward   xd = dropout(x)                        [m,k]  (x itself when p == 0)
 *             v  = s·xd·Aᵀ                           [m,r]  '='
 *             y  = x·W0ᵀ + bias + v·Bᵀ               [m,d]  '='
 *   backward  du = s·dy·B                            [m,r]  '='
 *             dB += dyᵀ·v                            [d,r]  '+='   (= s·dyᵀ·(xd·Aᵀ))
 *             dA += duᵀ·xd                           [r,k]  '+='   (skipped with FREEZE_A)
 *             dx = dy·W0 + dropout_bwd(du·A)         [m,k]  '=' or '+=' (ACCUMULATE_DX)
 *   merge     W0 += sign·s·B·A
 * The dropout mask is regenerated from (seed, offset) in backward (host/philox.h).
 * Workspace: m·k floats when p > 0 (the dropped-out input, then the masked dx term), else none.
 * Ref for every CUDA variant: kernels/lora_linear.cu. Math: docs/kernels/lora_linear.md.
 */
#include "cpu_internal.h"

#include "../philox.h"

#include <string.h>

culora_status cpu_lora_linear_workspace(culora_backend *be, const culora_lora_linear_desc *desc,
                                        size_t *fwd_bytes, size_t *bwd_bytes)
{
    (void)be;
    size_t need = desc->dropout > 0.0f ? (size_t)desc->m * (size_t)desc->k * sizeof(float) : 0;
    if (fwd_bytes)
        *fwd_bytes = need;
    if (bwd_bytes)
        *bwd_bytes = need;
    return CULORA_OK;
}

/* out[m,k] (ld k) = mask ⊙ in / (1-p); in has leading dimension ldin. */
static void apply_dropout(const culora_backend *be, const culora_lora_linear_desc *desc, const float *in,
                          int64_t ldin, float *out)
{
    const int64_t m = desc->m, k = desc->k;
    const uint32_t thr = culora_dropout_threshold(desc->dropout);
    const float scale = 1.0f / (1.0f - desc->dropout);
    const uint64_t seed = desc->seed, offset = desc->offset;
#pragma omp parallel for num_threads(cpu_threads_for(be, m * k)) schedule(static)
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < k; j++) {
            uint64_t idx = (uint64_t)(i * k + j);
            out[i * k + j] = culora_dropout_keep_index(seed, offset, idx, thr) ? in[i * ldin + j] * scale : 0.0f;
        }
}

culora_status cpu_lora_linear_fwd(culora_backend *be, const culora_lora_linear_desc *desc,
                                  const culora_lora_linear_fwd_args *a, const culora_workspace *ws,
                                  culora_stream stream)
{
    (void)stream;
    if (desc->flags & CULORA_LORA_REQUIRE_FUSED)
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED,
                           "culora_lora_linear_forward: the cpu backend has no fused path (REQUIRE_FUSED)");
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    const float s = culora_lora_scaling(desc);
    const bool w0t = (desc->flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    const float *x = a->x;
    float *v = a->v, *y = a->y;

    const float *xd = x;
    int64_t ldxd = a->ldx;
    if (desc->dropout > 0.0f) {
        apply_dropout(be, desc, x, a->ldx, ws->ptr);
        xd = ws->ptr;
        ldxd = k;
    }
    cpu_sgemm(false, true, m, r, k, s, xd, ldxd, a->a, a->lda, 0.0f, v, a->ldv);             /* v = s·xd·Aᵀ */
    cpu_sgemm(false, !w0t, m, d, k, 1.0f, x, a->ldx, a->w0, a->ldw0, 0.0f, y, a->ldy);      /* y = x·W0ᵀ */
    if (a->bias != NULL) {
        const float *bias = a->bias;
        const int64_t ldy = a->ldy;
#pragma omp parallel for num_threads(cpu_threads_for(be, m * d)) schedule(static)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < d; j++)
                y[i * ldy + j] += bias[j];
    }
    cpu_sgemm(false, true, m, d, r, 1.0f, v, a->ldv, a->b, a->ldb, 1.0f, y, a->ldy);         /* y += v·Bᵀ */
    return CULORA_OK;
}

culora_status cpu_lora_linear_bwd(culora_backend *be, const culora_lora_linear_desc *desc,
                                  const culora_lora_linear_bwd_args *a, const culora_workspace *ws,
                                  culora_stream stream)
{
    (void)stream;
    if (desc->flags & CULORA_LORA_REQUIRE_FUSED)
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED,
                           "culora_lora_linear_backward: the cpu backend has no fused path (REQUIRE_FUSED)");
    const int64_t m = desc->m, k = desc->k, d = desc->d, r = desc->r;
    const float s = culora_lora_scaling(desc);
    const bool w0t = (desc->flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    const bool dropout = desc->dropout > 0.0f;
    float *du = a->du;

    cpu_sgemm(false, false, m, r, d, s, a->dy, a->lddy, a->b, a->ldb, 0.0f, du, a->lddu);    /* du = s·dy·B */
    cpu_sgemm(true, false, d, r, m, 1.0f, a->dy, a->lddy, a->v, a->ldv, 1.0f, a->db, a->lddb); /* dB += dyᵀ·v */

    if (!(desc->flags & CULORA_LORA_FREEZE_A)) {                                            /* dA += duᵀ·xd */
        const float *xd = a->x;
        int64_t ldxd = a->ldx;
        if (dropout) {
            apply_dropout(be, desc, a->x, a->ldx, ws->ptr);
            xd = ws->ptr;
            ldxd = k;
        }
        cpu_sgemm(true, false, r, k, m, 1.0f, du, a->lddu, xd, ldxd, 1.0f, a->da, a->ldda);
    }

    if (a->dx != NULL) {
        float *dx = a->dx;
        const int64_t lddx = a->lddx;
        const float beta = (desc->flags & CULORA_LORA_ACCUMULATE_DX) ? 1.0f : 0.0f;
        cpu_sgemm(false, w0t, m, k, d, 1.0f, a->dy, a->lddy, a->w0, a->ldw0, beta, dx, lddx); /* dx = dy·W0 */
        if (!dropout) {
            cpu_sgemm(false, false, m, k, r, 1.0f, du, a->lddu, a->a, a->lda, 1.0f, dx, lddx); /* dx += du·A */
        } else {
            float *t = ws->ptr;                                                             /* t = du·A */
            cpu_sgemm(false, false, m, k, r, 1.0f, du, a->lddu, a->a, a->lda, 0.0f, t, k);
            apply_dropout(be, desc, t, k, t);                                               /* mask, 1/(1-p) */
#pragma omp parallel for num_threads(cpu_threads_for(be, m * k)) schedule(static)
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < k; j++)
                    dx[i * lddx + j] += t[i * k + j];
        }
    }
    return CULORA_OK;
}

culora_status cpu_lora_merge(culora_backend *be, const struct culora_lora_merge_args *g, const culora_workspace *ws,
                             culora_stream stream)
{
    (void)be;
    (void)ws;
    (void)stream;
    const culora_lora_linear_desc *desc = g->desc;
    const float alpha = g->sign * culora_lora_scaling(desc);
    if (desc->flags & CULORA_LORA_W0_TRANSPOSED) /* W0ᵀ[k,d] += sign·s·Aᵀ·Bᵀ */
        cpu_sgemm(true, true, desc->k, desc->d, desc->r, alpha, g->a, g->lda, g->b, g->ldb, 1.0f, g->w0, g->ldw0);
    else                                         /* W0[d,k] += sign·s·B·A */
        cpu_sgemm(false, false, desc->d, desc->k, desc->r, alpha, g->b, g->ldb, g->a, g->lda, 1.0f, g->w0, g->ldw0);
    return CULORA_OK;
}
