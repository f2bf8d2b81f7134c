/*
 * quant_linear.cu — the CUDA backend's quantized-weight entries: quantize / dequantize (with the
 * non-finite check) and the linear layers on a quantized weight, built from the kernels of
 * nf4.cu and int8.cu, cuBLASLt and the unquantized LoRA op (lora_linear.cu).
 *
 *   frozen   y = x·Wᵀ (+ bias)                                     [m, rows] '='
 *   LoRA     culora_ops.h contracts, W0 = q
 * Paths (chosen per call, no silent fallback between numerics: every path computes the same
 * math, they differ only in rounding order):
 *   4-bit, m == 1, no dropout, W0 not transposed, cols % 32 == 0, 16-byte aligned codes and x:
 *       [LoRA: v = s·x·Aᵀ (cuBLASLt)] then gemv4 (dequant-GEMV + bias + v·Bᵀ in one kernel)
 *   4-bit otherwise, and every backward (int8 too):
 *       W = dequantize(q) into the workspace (bf16 [rows, round8(cols)]) → cuBLASLt GEMM, or
 *       cuda_lora_linear_fwd / _bwd with w0 = W (separate-operand path)
 *   int8 forward: LLM.int8 product (int8.cu) into y, then the LoRA terms:
 *       v = s·dropout(x)·Aᵀ, y += v·Bᵀ. With dropout, v comes from cuda_lora_linear_fwd on a
 *       one-row zero weight (d = 1), so the mask is the one lora_linear.cu draws — no second copy
 *       of the dropout code; its y' [m,1] output is discarded.
 * Workspace layout (bytes, each piece 256-aligned): see qlinear_ws below; the rest of the
 * caller's workspace goes to cuBLASLt.
 * First run on an H100 on 2026-11-26: the CUDA-vs-CPU tests (test_quant_cuda) pass, graph capture
 * included; the layers' speed is not measured yet (docs/benchmarks.md).
 * Ref: host/cpu/quant_linear.c.
 */
#include "../host/cuda/cuda_quant.h"
#include "../host/quant/quant_internal.h"
#include "common.cuh"

#include <stdint.h>

#define BF CULORA_DTYPE_BF16

static size_t round256(size_t n) { return (n + 255) / 256 * 256; }
static int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

// ------------------------------------------------------------------------------------------
// Quantize / dequantize

/* Workspace of quantize: the non-finite flag; DQ also the fp32 absmax and the DQ scratch. */
extern "C" culora_status cuda_quant_quantize_workspace(culora_backend *be, const culora_quant_desc *d, size_t *bytes)
{
    (void)be;
    size_t need = 256; /* unsigned long long first_bad */
    if (culora_quant_is_dq(d)) {
        culora_quant_layout lay;
        culora_quant_layout_of(d, &lay);
        need += round256(4 * (size_t)lay.n_blocks) + cuda_dq_scratch_bytes(lay.n_blocks);
    }
    *bytes = need;
    return CULORA_OK;
}

extern "C" culora_status cuda_quant_quantize(culora_backend *be, const struct culora_quantize_args *a,
                                             const culora_workspace *ws, culora_stream stream_)
{
    cudaStream_t stream = (cudaStream_t)stream_;
    const culora_quant_desc *d = a->desc;
    char *wsp = (char *)ws->ptr;
    unsigned long long *first_bad = (unsigned long long *)wsp;
    CULORA_CUDA_TRY(be, cudaMemsetAsync(first_bad, 0xff, sizeof *first_bad, stream)); /* UINT64_MAX */
    if (d->format == CULORA_QUANT_INT8) {
        CULORA_TRY(cuda_int8_quantize_launch(be, d, a->w, a->ldw, a->w_dtype, a->q, first_bad, stream));
    } else if (!culora_quant_is_dq(d)) {
        CULORA_TRY(cuda_quant4_quantize_launch(be, d, a->w, a->ldw, a->w_dtype, a->q->absmax,
                                               (uint8_t *)a->q->data, first_bad, stream));
    } else {
        culora_quant_layout lay;
        culora_quant_layout_of(d, &lay);
        float *absmax = (float *)(wsp + 256);
        CULORA_TRY(cuda_quant4_quantize_launch(be, d, a->w, a->ldw, a->w_dtype, absmax, (uint8_t *)a->q->data,
                                               first_bad, stream));
        CULORA_TRY(cuda_dq_quantize_launch(be, absmax, lay.n_blocks, a->q,
                                           wsp + 256 + round256(4 * (size_t)lay.n_blocks), stream));
    }
    /* The documented synchronisation: report non-finite weights like the CPU backend does. */
    unsigned long long bad = 0;
    CULORA_CUDA_TRY(be, cudaMemcpyAsync(&bad, first_bad, sizeof bad, cudaMemcpyDeviceToHost, stream));
    CULORA_CUDA_TRY(be, cudaStreamSynchronize(stream));
    if (bad != ~0ull)
        return culora_fail(be->ctx, CULORA_ERR_INVALID_ARG,
                           "culora_quantize: w[%lld,%lld] is not finite (NaN or Inf weights cannot be quantized)",
                           (long long)(bad / (unsigned long long)d->cols), (long long)(bad % (unsigned long long)d->cols));
    return CULORA_OK;
}

extern "C" culora_status cuda_quant_dequantize(culora_backend *be, const struct culora_dequantize_args *a,
                                               culora_stream stream)
{
    if (a->desc->format == CULORA_QUANT_INT8)
        return cuda_int8_dequantize_launch(be, a->desc, a->q, a->out, a->ldout, a->out_dtype, (cudaStream_t)stream);
    return cuda_quant4_dequantize_launch(be, a->desc, a->q, a->out, a->ldout, a->out_dtype, (cudaStream_t)stream);
}

// ------------------------------------------------------------------------------------------
// Linear layers

/* Dequantized weight in the workspace: bf16 [rows, round8(cols)] (16-byte rows for cuBLASLt). */
static size_t deq_bytes(const culora_quant_desc *d) { return round256((size_t)(d->rows * round8(d->cols)) * 2); }

/* int8 forward with dropout: the d = 1 LoRA call that produces v (see the header). */
static culora_lora_linear_desc v_only_desc(const culora_lora_linear_desc *lora)
{
    culora_lora_linear_desc v = *lora;
    v.d = 1;
    v.flags &= ~(uint32_t)(CULORA_LORA_W0_TRANSPOSED | CULORA_LORA_ACCUMULATE_DX);
    return v;
}

/* Pieces of the int8 forward workspace after the LLM.int8 scratch: zero W0' [1, round8(k)],
 * zero B' [1, round8(r)], y' [m, 8] (all bf16), then the v-only call's own workspace. */
struct i8_lora_ws {
    size_t w0, b, y, inner, total;
};

static culora_status i8_lora_ws_of(culora_backend *be, const culora_quant_desc *qd,
                                   const culora_lora_linear_desc *lora, struct i8_lora_ws *w)
{
    memset(w, 0, sizeof *w);
    w->w0 = round256(cuda_int8_matmul_ws_bytes(qd, lora->m));
    if (lora->dropout == 0.0f) {
        w->total = w->w0;
        return CULORA_OK;
    }
    const culora_lora_linear_desc vd = v_only_desc(lora);
    size_t inner = 0;
    CULORA_TRY(cuda_lora_linear_workspace(be, &vd, &inner, NULL));
    w->b = w->w0 + round256((size_t)round8(lora->k) * 2);
    w->y = w->b + round256((size_t)round8(lora->r) * 2);
    w->inner = w->y + round256((size_t)lora->m * 8 * 2);
    w->total = w->inner + round256(inner);
    return CULORA_OK;
}

extern "C" culora_status cuda_qlinear_workspace(culora_backend *be, const culora_quant_desc *qd,
                                                const culora_lora_linear_desc *lora, int64_t m, size_t *fwd_bytes,
                                                size_t *bwd_bytes)
{
    size_t lf = 0, lb = 0;
    if (lora != NULL) {
        CULORA_TRY(cuda_lora_linear_workspace(be, lora, &lf, &lb));
        m = lora->m;
    }
    size_t f;
    if (qd->format == CULORA_QUANT_INT8) {
        if (lora != NULL) {
            struct i8_lora_ws w;
            CULORA_TRY(i8_lora_ws_of(be, qd, lora, &w));
            f = w.total;
        } else {
            f = round256(cuda_int8_matmul_ws_bytes(qd, m));
        }
    } else {
        f = deq_bytes(qd) + round256(lf); /* the GEMV path needs none; the size covers either path */
    }
    if (fwd_bytes)
        *fwd_bytes = f;
    if (bwd_bytes)
        *bwd_bytes = deq_bytes(qd) + round256(lb);
    return CULORA_OK;
}

/* W = dequantize(q) (bf16) at the start of the workspace; rest = what follows. */
static culora_status dequant_to_ws(culora_backend *be, const culora_quant_desc *qd, const culora_quant_weight *q,
                                   const culora_workspace *ws, culora_workspace *rest, cudaStream_t stream)
{
    if (qd->format == CULORA_QUANT_INT8)
        CULORA_TRY(cuda_int8_dequantize_launch(be, qd, q, ws->ptr, round8(qd->cols), BF, stream));
    else
        CULORA_TRY(cuda_quant4_dequantize_launch(be, qd, q, ws->ptr, round8(qd->cols), BF, stream));
    rest->ptr = (char *)ws->ptr + deq_bytes(qd);
    rest->bytes = ws->bytes - deq_bytes(qd);
    return CULORA_OK;
}

static culora_status int8_fwd(culora_backend *be, const struct culora_qlinear_fwd_args *g, const culora_workspace *ws,
                              cudaStream_t stream)
{
    const culora_lora_linear_fwd_args *a = g->fwd;
    const culora_lora_linear_desc *lora = g->lora;
    if (lora == NULL)
        return cuda_int8_matmul(be, g->qdesc, g->q, g->m, a->x, a->ldx, a->bias, a->y, a->ldy, ws->ptr, ws->bytes,
                                stream);
    struct i8_lora_ws w;
    CULORA_TRY(i8_lora_ws_of(be, g->qdesc, lora, &w));
    char *base = (char *)ws->ptr;
    char *lt = base + w.total; /* cuBLASLt's share */
    const size_t lt_bytes = ws->bytes - w.total;
    const int64_t m = lora->m, k = lora->k, d = lora->d, r = lora->r;
    /* y = LLM.int8(x)·W0ᵀ + bias (the int8 scratch sits at the start; cuBLASLt gets the tail) */
    CULORA_TRY(cuda_int8_matmul(be, g->qdesc, g->q, m, a->x, a->ldx, a->bias, a->y, a->ldy, base, ws->bytes, stream));
    if (lora->dropout == 0.0f) { /* v = s·x·Aᵀ */
        CULORA_TRY(cuda_gemm_rm(be, false, true, m, r, k, culora_lora_scaling(lora), a->x, a->ldx, BF, a->a, a->lda, BF,
                                0.0f, a->v, a->ldv, BF, NULL, lt, lt_bytes, stream));
    } else { /* v = s·dropout(x)·Aᵀ from the unquantized op on a zero one-row weight */
        const culora_lora_linear_desc vd = v_only_desc(lora);
        CULORA_CUDA_TRY(be, cudaMemsetAsync(base + w.w0, 0, w.inner - w.w0, stream));
        const culora_lora_linear_fwd_args va = {a->x,    a->ldx, base + w.w0, round8(k), NULL,  a->a,
                                                a->lda,  base + w.b, round8(r), a->v, a->ldv, base + w.y, 8};
        const culora_workspace inner = {base + w.inner, ws->bytes - w.inner};
        CULORA_TRY(cuda_lora_linear_fwd(be, &vd, &va, &inner, stream));
    }
    /* y += v·Bᵀ */
    return cuda_gemm_rm(be, false, true, m, d, r, 1.0f, a->v, a->ldv, BF, a->b, a->ldb, BF, 1.0f, a->y, a->ldy, BF,
                        NULL, lt, lt_bytes, stream);
}

extern "C" culora_status cuda_qlinear_fwd(culora_backend *be, const struct culora_qlinear_fwd_args *g,
                                          const culora_workspace *ws, culora_stream stream_)
{
    cudaStream_t stream = (cudaStream_t)stream_;
    const culora_quant_desc *qd = g->qdesc;
    const culora_lora_linear_fwd_args *a = g->fwd;
    const culora_lora_linear_desc *lora = g->lora;
    if (qd->format == CULORA_QUANT_INT8)
        return int8_fwd(be, g, ws, stream);

    const int64_t m = lora ? lora->m : g->m;
    const bool gemv = m == 1 && cuda_gemv4_applies(qd, g->q, a->x) &&
                      (lora == NULL || (lora->dropout == 0.0f && !(lora->flags & CULORA_LORA_W0_TRANSPOSED)));
    if (gemv) {
        if (lora == NULL)
            return cuda_gemv4_launch(be, qd, g->q, a->x, a->bias, NULL, NULL, 0, 0, a->y, stream);
        /* v = s·x·Aᵀ [1, r], then y = W·x + bias + v·Bᵀ in one kernel */
        CULORA_TRY(cuda_gemm_rm(be, false, true, 1, lora->r, lora->k, culora_lora_scaling(lora), a->x, a->ldx, BF,
                                a->a, a->lda, BF, 0.0f, a->v, a->ldv, BF, NULL, ws->ptr, ws->bytes, stream));
        return cuda_gemv4_launch(be, qd, g->q, a->x, a->bias, a->v, a->b, a->ldb, lora->r, a->y, stream);
    }
    culora_workspace rest;
    CULORA_TRY(dequant_to_ws(be, qd, g->q, ws, &rest, stream));
    if (lora != NULL) {
        culora_lora_linear_fwd_args fa = *a;
        fa.w0 = ws->ptr;
        fa.ldw0 = round8(qd->cols);
        return cuda_lora_linear_fwd(be, lora, &fa, &rest, stream);
    }
    return cuda_gemm_rm(be, false, true, m, qd->rows, qd->cols, 1.0f, a->x, a->ldx, BF, ws->ptr, round8(qd->cols), BF,
                        0.0f, a->y, a->ldy, BF, a->bias, rest.ptr, rest.bytes, stream);
}

extern "C" culora_status cuda_qlinear_bwd(culora_backend *be, const struct culora_qlinear_bwd_args *g,
                                          const culora_workspace *ws, culora_stream stream_)
{
    cudaStream_t stream = (cudaStream_t)stream_;
    culora_workspace rest;
    CULORA_TRY(dequant_to_ws(be, g->qdesc, g->q, ws, &rest, stream));
    culora_lora_linear_bwd_args ba = *g->bwd;
    ba.w0 = ws->ptr;
    ba.ldw0 = round8(g->qdesc->cols);
    return cuda_lora_linear_bwd(be, g->lora, &ba, &rest, stream);
}
