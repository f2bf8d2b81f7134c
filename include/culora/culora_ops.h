/*
 * culora_ops.h — low-level ops for embedding culora's kernels in another program's pipeline.
 *
 * Pointers are backend memory: device pointers on the CUDA backend (the caller's own
 * cudaMalloc'd buffers are fine), host pointers on the CPU backend. Matrices are row-major
 * with a leading dimension (elements between consecutive rows). Each call:
 *   - validates its arguments and returns CULORA_ERR_INVALID_ARG with a message naming the
 *     argument (shape, NULL, leading dimension, alignment), before touching any memory;
 *   - enqueues its work on `stream` (NULL: the context's stream) and returns; it does not
 *     allocate device memory and does not synchronise, so it can be captured in a CUDA graph;
 *   - uses the caller's workspace (workspace NULL: the context's default workspace).
 *
 * Full math, shapes and the fused-path layout: docs/kernels/lora_linear.md.
 */
#ifndef CULORA_OPS_H
#define CULORA_OPS_H

#include "culora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* LoRA linear layer                                                                         */
/*                                                                                            */
/*   y = x·W0ᵀ (+ bias) + s·(dropout(x)·Aᵀ)·Bᵀ        s = alpha/r   (rsLoRA: alpha/√r)          */
/*   x [m,k]   W0 [d,k] frozen (or [k,d], CULORA_LORA_W0_TRANSPOSED)   A [r,k]   B [d,r]        */
/*                                                                                            */
/* Storage dtype of x, W0, bias, A, B, v, y, dy, du, dx is the context's compute dtype         */
/* (F32 on CPU, BF16 on CUDA; A and B are then bf16 copies of fp32 master weights). dA and dB  */
/* are always fp32. Accumulation is fp32.                                                     */
/*                                                                                            */
/* Fused path (CUDA): when the operands are laid out "augmented" the LoRA terms ride inside    */
/* the frozen GEMMs (K = k+r forward, K = d+r backward):                                       */
/*   v == x + k and ldv == ldx        (x's buffer has r spare columns)                         */
/*   b == w0 + k and ldb == ldw0      (W0's buffer rows are [W0 row | B row])                  */
/*   backward also: du == dy + d and lddu == lddy, a == w0 + d·ldw0 and lda == ldw0            */
/*   (so W̃ = [[W0, B], [A, 0]] is one (d+r)×(k+r) buffer), and dropout == 0 for the dx part.  */
/* Otherwise the same results come from separate GEMMs; CULORA_LORA_REQUIRE_FUSED turns that   */
/* into CULORA_ERR_UNSUPPORTED instead.                                                        */

enum {
    CULORA_LORA_RSLORA         = 1u << 0, /* s = alpha/sqrt(r) instead of alpha/r */
    CULORA_LORA_FREEZE_A       = 1u << 1, /* LoRA-FA: A is frozen, backward does not touch dA */
    CULORA_LORA_W0_TRANSPOSED  = 1u << 2, /* W0 stored [k,d] (GPT-2 Conv1D, PEFT fan_in_fan_out) */
    CULORA_LORA_ACCUMULATE_DX  = 1u << 3, /* backward: dx += ... instead of dx = ... */
    CULORA_LORA_REQUIRE_FUSED  = 1u << 4  /* fail unless the fused (augmented) path applies */
};

typedef struct culora_lora_linear_desc {
    uint32_t struct_size;  /* set by CULORA_LORA_LINEAR_DESC_INIT */
    uint32_t api_version;  /* set by CULORA_LORA_LINEAR_DESC_INIT */
    int64_t m;             /* rows of x and y (tokens) */
    int64_t k;             /* in features */
    int64_t d;             /* out features */
    int32_t r;             /* rank, >= 1 */
    uint32_t flags;        /* CULORA_LORA_* */
    float alpha;           /* lora_alpha */
    float dropout;         /* lora_dropout probability p, 0 <= p < 1 */
    uint64_t seed;         /* dropout RNG key (Philox4x32-10) */
    uint64_t offset;       /* dropout RNG stream: give each layer and step its own value */
    culora_dtype dtype;    /* storage dtype; must equal culora_context_compute_dtype() */
} culora_lora_linear_desc;

#define CULORA_LORA_LINEAR_DESC_INIT \
    { sizeof(culora_lora_linear_desc), CULORA_API_VERSION, 0, 0, 0, 0, 0u, 0.0f, 0.0f, 0u, 0u, CULORA_DTYPE_F32 }

typedef struct culora_lora_linear_fwd_args {
    const void *x;    int64_t ldx;   /* [m,k] input */
    const void *w0;   int64_t ldw0;  /* [d,k] frozen weight ([k,d] when W0_TRANSPOSED) */
    const void *bias;                /* [d] frozen bias, or NULL */
    const void *a;    int64_t lda;   /* [r,k] lora_A */
    const void *b;    int64_t ldb;   /* [d,r] lora_B */
    void *v;          int64_t ldv;   /* [m,r] '=' v = s·dropout(x)·Aᵀ, kept for backward */
    void *y;          int64_t ldy;   /* [m,d] '=' output (must not overlap x) */
} culora_lora_linear_fwd_args;

typedef struct culora_lora_linear_bwd_args {
    const void *x;    int64_t ldx;   /* [m,k] forward input */
    const void *w0;   int64_t ldw0;  /* as in forward */
    const void *a;    int64_t lda;   /* [r,k] */
    const void *b;    int64_t ldb;   /* [d,r] */
    const void *v;    int64_t ldv;   /* [m,r] from forward */
    const void *dy;   int64_t lddy;  /* [m,d] gradient of the output */
    void *du;         int64_t lddu;  /* [m,r] '=' du = s·dy·B (scratch the caller keeps) */
    void *dx;         int64_t lddx;  /* [m,k] '=' (or '+=' with ACCUMULATE_DX); NULL: not computed */
    float *da;        int64_t ldda;  /* [r,k] fp32 '+=' dA = duᵀ·dropout(x); NULL with FREEZE_A */
    float *db;        int64_t lddb;  /* [d,r] fp32 '+=' dB = dyᵀ·v */
} culora_lora_linear_bwd_args;

/* Minimum workspace bytes for forward and backward with this descriptor (either pointer may be
 * NULL). On CUDA, workspace beyond the minimum (up to 32 MiB) lets cuBLASLt pick faster kernels. */
CULORA_API CULORA_NODISCARD culora_status culora_lora_linear_workspace_size(culora_context *ctx,
        const culora_lora_linear_desc *desc, size_t *fwd_bytes, size_t *bwd_bytes);

/* Forward: writes v and y. */
CULORA_API CULORA_NODISCARD culora_status culora_lora_linear_forward(culora_context *ctx,
        const culora_lora_linear_desc *desc, const culora_lora_linear_fwd_args *args,
        void *workspace, size_t workspace_bytes, culora_stream stream);

/* Backward: writes du and dx, accumulates into da and db. The dropout mask is regenerated
 * from (seed, offset), so desc must be the one the forward used. */
CULORA_API CULORA_NODISCARD culora_status culora_lora_linear_backward(culora_context *ctx,
        const culora_lora_linear_desc *desc, const culora_lora_linear_bwd_args *args,
        void *workspace, size_t workspace_bytes, culora_stream stream);

/* Merge: W0 += s·B·A ([d,k]; with W0_TRANSPOSED the [k,d] buffer gets (s·B·A)ᵀ).
 * Unmerge: W0 -= s·B·A. Uses desc's k, d, r, alpha, flags and dtype; m is ignored. */
CULORA_API CULORA_NODISCARD culora_status culora_lora_merge(culora_context *ctx,
        const culora_lora_linear_desc *desc, void *w0, int64_t ldw0, const void *a, int64_t lda,
        const void *b, int64_t ldb, culora_stream stream);
CULORA_API CULORA_NODISCARD culora_status culora_lora_unmerge(culora_context *ctx,
        const culora_lora_linear_desc *desc, void *w0, int64_t ldw0, const void *a, int64_t lda,
        const void *b, int64_t ldb, culora_stream stream);

/* The scaling s that desc implies (alpha/r, or alpha/sqrt(r) with RSLORA). */
CULORA_API float culora_lora_scaling(const culora_lora_linear_desc *desc);

/* Dropout keep-mask of element (row, col) of an [m,k] input, as forward and backward use it:
 * 1 = kept (scaled by 1/(1-p)), 0 = dropped. Philox4x32-10 keyed by seed, counter from offset and
 * row·k + col; identical on every backend. Host function, for tests and debugging. */
CULORA_API int culora_dropout_keep(uint64_t seed, uint64_t offset, int64_t index, float p);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_OPS_H */
