/*
 * nn_ops.h — the op table of the transformer family (embedding, norms, RoPE, attention,
 * activations, softmax + cross-entropy, AdamW, ...) and its dispatchers. A backend points
 * culora_backend.nn at its table; a NULL entry means the backend lacks the op and its dispatcher
 * returns CULORA_ERR_UNSUPPORTED. Argument checks live in the dispatchers (host/nn/).
 *
 * Conventions (math and numerics per op: docs/kernels/nn.md):
 *  - "S" is the context's storage dtype (culora_context_compute_dtype: f32 on CPU, bf16 on CUDA).
 *    Activations, their gradients and the frozen/bf16-copy weights are S; statistics kept for
 *    backward (mean, rstd, lse), parameter gradients, the loss and optimizer state are fp32.
 *  - Matrices are row-major with a leading dimension (elements); token rows are n = B·T, row
 *    b·T + t. On CUDA every S matrix needs ld % 8 == 0 (culora_check_matrix).
 *  - Every output is marked '=' or '+=' below. Activation outputs are '=', parameter gradients
 *    '+=' (gradient accumulation, llm.c's contract). A parameter gradient pointer may be NULL
 *    when that parameter is frozen (LoRA): nothing is computed for it then.
 *  - Outputs must not overlap inputs or each other, except where an args comment allows an
 *    exact alias (same pointer and leading dimension: an in-place elementwise op).
 *  - Integer inputs (token ids, positions, targets) live in backend memory and are not read by
 *    the dispatcher. Out-of-range ids do not fault: they produce NaN where documented, so the
 *    trainer's non-finite check catches them.
 *  - Deterministic on both backends: no float atomics; reductions run in a fixed order that
 *    depends on the shapes only (CPU: also not on the thread count).
 *  - Ops with workspace take (workspace, workspace_bytes) (NULL: the context's default) and
 *    have a *_workspace query; calls enqueue on `stream` (NULL: the context's) and return.
 */
#ifndef CULORA_HOST_NN_OPS_H
#define CULORA_HOST_NN_OPS_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Workspace a call needs: at least min_bytes; full_bytes lets it run in one pass (equal to
 * min_bytes except for attention, which processes fewer sequences at a time when given less). */
struct culora_nn_ws {
    size_t min_bytes;
    size_t full_bytes;
};

/* ---- embedding ------------------------------------------------------------------------------ */

/* out[i,:] = wte[tokens[i],:] (+ wpe[pos[i],:])   GPT-2 adds learned positions, LLaMA does not.
 * A token id outside [0, vocab) or a position outside [0, n_pos) gives a NaN row. */
struct culora_nn_embedding_args {
    int64_t n, c;                   /* token rows, channels */
    int64_t vocab, n_pos;           /* rows of wte; rows of wpe (ignored when wpe is NULL) */
    const int32_t *tokens;          /* [n] */
    const int32_t *pos;             /* [n] positions; NULL when wpe is NULL */
    const void *wte; int64_t ldwte; /* [vocab, c] S */
    const void *wpe; int64_t ldwpe; /* [n_pos, c] S, or NULL */
    void *out;       int64_t ldout; /* [n, c] S '=' */
};

/* dwte[v,:] += Σ_{i: tokens[i]=v} dout[i,:]   dwpe[p,:] += Σ_{i: pos[i]=p} dout[i,:]
 * Summed per row in token order (CPU) or in one fixed order per id (CUDA: stable sort by id);
 * no atomics. Out-of-range ids are skipped. */
struct culora_nn_embedding_bwd_args {
    int64_t n, c, vocab, n_pos;
    const int32_t *tokens;            /* [n] */
    const int32_t *pos;               /* [n]; needed when dwpe is given */
    const void *dout;  int64_t lddout; /* [n, c] S */
    float *dwte;       int64_t lddwte; /* [vocab, c] fp32 '+=', or NULL (frozen) */
    float *dwpe;       int64_t lddwpe; /* [n_pos, c] fp32 '+=', or NULL */
};

/* ---- normalisation -------------------------------------------------------------------------- */

/* LayerNorm over the last dim: out = (x - mean)·rstd·gamma + beta, rstd = 1/sqrt(var + eps),
 * var the biased variance (PyTorch). Statistics in fp32 (CPU: fp64 sums). */
struct culora_nn_layernorm_args {
    int64_t n, c;
    float eps;
    const void *x;     int64_t ldx;   /* [n, c] S */
    const void *gamma;                /* [c] S */
    const void *beta;                 /* [c] S, or NULL (no bias) */
    void *out;         int64_t ldout; /* [n, c] S '=' */
    float *mean;                      /* [n] fp32 '=' kept for backward, or NULL */
    float *rstd;                      /* [n] fp32 '=' kept for backward, or NULL */
};

/* xhat = (x - mean)·rstd, g = dout·gamma:
 *   dx = rstd·(g - mean_c(g) - xhat·mean_c(g·xhat))  '=' (or '+=' with accumulate_dx)
 *   dgamma += Σ_rows dout·xhat,  dbeta += Σ_rows dout          (deterministic two-stage sums) */
struct culora_nn_layernorm_bwd_args {
    int64_t n, c;
    bool accumulate_dx;               /* dx += ... (the residual stream's gradient) */
    const void *x;     int64_t ldx;   /* [n, c] S, the forward input */
    const void *gamma;                /* [c] S */
    const float *mean, *rstd;         /* [n] fp32 from the forward */
    const void *dout;  int64_t lddout;/* [n, c] S */
    void *dx;          int64_t lddx;  /* [n, c] S '=' or '+=' */
    float *dgamma;                    /* [c] fp32 '+=', or NULL */
    float *dbeta;                     /* [c] fp32 '+=', or NULL */
};

/* RMSNorm (LLaMA): out = x·rstd·gamma, rstd = 1/sqrt(mean_c(x²) + eps). */
struct culora_nn_rmsnorm_args {
    int64_t n, c;
    float eps;
    const void *x;     int64_t ldx;   /* [n, c] S */
    const void *gamma;                /* [c] S */
    void *out;         int64_t ldout; /* [n, c] S '=' */
    float *rstd;                      /* [n] fp32 '=' kept for backward, or NULL */
};

/* xhat = x·rstd, g = dout·gamma:  dx = rstd·(g - xhat·mean_c(g·xhat))  '=' or '+=';
 * dgamma += Σ_rows dout·xhat. */
struct culora_nn_rmsnorm_bwd_args {
    int64_t n, c;
    bool accumulate_dx;
    const void *x;     int64_t ldx;   /* [n, c] S */
    const void *gamma;                /* [c] S */
    const float *rstd;                /* [n] fp32 from the forward */
    const void *dout;  int64_t lddout;/* [n, c] S */
    void *dx;          int64_t lddx;  /* [n, c] S '=' or '+=' */
    float *dgamma;                    /* [c] fp32 '+=', or NULL */
};

/* dbias[j] += Σ_rows dy[i,j] (the bias gradient of a linear layer; deterministic). */
struct culora_nn_bias_grad_args {
    int64_t n, c;
    const void *dy;    int64_t lddy;  /* [n, c] S */
    float *dbias;                     /* [c] fp32 '+=' */
};

/* ---- rotary position embedding ---------------------------------------------------------------- */

/* RoPE, Hugging Face rotate_half layout: within each head of D = head_dim elements, element j
 * (j < D/2) pairs with j + D/2 and both rotate by the angle pos·inv_freq[j]:
 *   out[j]       = x[j]·cos − x[j+D/2]·sin
 *   out[j+D/2]   = x[j+D/2]·cos + x[j]·sin
 * inv_freq[j] = 1/theta^(2j/D) in fp32 as HF computes it, or the caller's table (rope_scaling
 * variants). Backward (rope_bwd) rotates by −angle: dx from dout, same args (x = dout, out = dx).
 * Positions are per token: packed sequences restart them. q and k of a fused qkv buffer can go
 * in one call (n_heads = H + Hkv: k's heads follow q's in the row). */
struct culora_nn_rope_args {
    int64_t n;                       /* token rows */
    int32_t n_heads, head_dim;       /* heads in the row span, D (even, <= CULORA_NN_ROPE_MAX_DIM) */
    float theta;                     /* rope_theta (when inv_freq is NULL) */
    const float *inv_freq;           /* [D/2] fp32 in HOST memory, read during the call; or NULL */
    const int32_t *pos;              /* [n] positions (backend memory) */
    const void *x;   int64_t ldx;    /* [n, n_heads·D] S */
    void *out;       int64_t ldout;  /* [n, n_heads·D] S '='; may be x (in place) */
};
#define CULORA_NN_ROPE_MAX_DIM 512

/* inv_freq[j] = 1/theta^(2j/D), j < D/2, in fp32 exactly as the ops compute it (for tests and
 * for building rope_scaling tables). */
void culora_nn_rope_inv_freq(float theta, int32_t head_dim, float *inv_freq);

/* ---- causal self-attention -------------------------------------------------------------------- */

/* Causal softmax attention with grouped-query attention (HF repeat_kv: query head h reads kv
 * head h / (H/Hkv)). For each sequence b and head h:
 *   S = scale·Q_h·K_hᵀ [T,T] (entries above the diagonal masked), P = softmax_rows(S), Y_h = P·V_h
 * The saved state is lse = logsumexp of each row of S (fp32 [B,H,T]), so backward recomputes P
 * (flash-attention contract; a fused kernel can replace this one without changing callers).
 * Memory: the CUDA v1 materialises S (fp32) for a chunk of sequences in the workspace:
 * forward ≈ 4·H·T² bytes per sequence, backward ≈ 8·H·T² (see docs/kernels/nn.md).
 * q, k, v may be column ranges of one fused [n, (H+2·Hkv)·D] buffer. */
struct culora_nn_attention_args {
    int64_t batch, seq;                  /* B, T */
    int32_t n_heads, n_kv_heads, head_dim; /* H, Hkv (divides H), D */
    float scale;                         /* usually 1/sqrt(D) */
    const void *q;  int64_t ldq;         /* [B·T, H·D] S: head h in columns h·D .. h·D+D-1 */
    const void *k;  int64_t ldk;         /* [B·T, Hkv·D] S */
    const void *v;  int64_t ldv;         /* [B·T, Hkv·D] S */
    void *y;        int64_t ldy;         /* [B·T, H·D] S '=' */
    float *lse;                          /* [B, H, T] fp32 '=' kept for backward */
};

/* dS = scale·P∘(dP − rowsum(P∘dP)), dP = dY·Vᵀ:  dq = dS·K, dk = Σ_group dSᵀ·Q, dv = Σ_group Pᵀ·dY,
 * all '=' (dq/dk/dv may be column ranges of one fused buffer). */
struct culora_nn_attention_bwd_args {
    int64_t batch, seq;
    int32_t n_heads, n_kv_heads, head_dim;
    float scale;
    const void *q;  int64_t ldq;         /* as in forward */
    const void *k;  int64_t ldk;
    const void *v;  int64_t ldv;
    const float *lse;                    /* [B, H, T] fp32 from the forward */
    const void *dy; int64_t lddy;        /* [B·T, H·D] S */
    void *dq;       int64_t lddq;        /* [B·T, H·D] S '=' */
    void *dk;       int64_t lddk;        /* [B·T, Hkv·D] S '=' */
    void *dv;       int64_t lddv;        /* [B·T, Hkv·D] S '=' */
};

/* ---- activations and the residual add -------------------------------------------------------- */

/* GELU, tanh approximation (GPT-2, PyTorch approximate='tanh'):
 *   y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))     y '='; may be x (in place) */
struct culora_nn_gelu_args {
    int64_t n, c;
    const void *x;   int64_t ldx;        /* [n, c] S */
    void *y;         int64_t ldy;        /* [n, c] S '=' */
};

/* dx = dy·gelu'(x)   '='; dx may be dy (in place). */
struct culora_nn_gelu_bwd_args {
    int64_t n, c;
    const void *x;   int64_t ldx;        /* [n, c] S, the forward input */
    const void *dy;  int64_t lddy;       /* [n, c] S */
    void *dx;        int64_t lddx;       /* [n, c] S '=' */
};

/* SwiGLU (LLaMA MLP): y = silu(gate)·up, silu(g) = g·σ(g).   y '='; may be gate or up. */
struct culora_nn_swiglu_args {
    int64_t n, c;                        /* c = intermediate size */
    const void *gate; int64_t ldgate;    /* [n, c] S */
    const void *up;   int64_t ldup;      /* [n, c] S */
    void *y;          int64_t ldy;       /* [n, c] S '=' */
};

/* dgate = dy·up·σ(g)·(1 + g·(1 − σ(g))), dup = dy·silu(g)   both '='; each may alias an input. */
struct culora_nn_swiglu_bwd_args {
    int64_t n, c;
    const void *gate; int64_t ldgate;    /* [n, c] S */
    const void *up;   int64_t ldup;      /* [n, c] S */
    const void *dy;   int64_t lddy;      /* [n, c] S */
    void *dgate;      int64_t lddgate;   /* [n, c] S '=' */
    void *dup;        int64_t lddup;     /* [n, c] S '=' */
};

/* Residual add: out = a + b  '='; out may be a or b. (Its backward passes dout to both inputs
 * unchanged; accumulate with culora_op_axpby where a gradient already holds a value.) */
struct culora_nn_add_args {
    int64_t n, c;
    const void *a;   int64_t lda;        /* [n, c] S */
    const void *b;   int64_t ldb;        /* [n, c] S */
    void *out;       int64_t ldout;      /* [n, c] S '=' */
};

/* ---- fused softmax + cross-entropy ------------------------------------------------------------ */

/* For each row i with targets[i] != ignore_index:
 *   loss_i = logsumexp(logits[i,:vocab]) − logits[i, targets[i]]          (fp32 math)
 *   loss   = Σ loss_i / n_valid   (fp32 '='; 0 when no row is valid)
 *   dlogits[i,:] = grad_scale·(softmax(logits[i,:]) − onehot(targets[i])) / den   (S '=')
 *     den = grad_denominator when > 0 (e.g. the valid tokens of a whole accumulated batch),
 *     else this call's n_valid. Ignored rows get dlogits 0 and loss_i 0.
 * A target outside [0, vocab) that is not ignore_index makes loss_i, the loss and that row of
 * dlogits NaN. Columns vocab..ld-1 of a padded dlogits are not touched. */
struct culora_nn_cross_entropy_args {
    int64_t n, vocab;
    int32_t ignore_index;                /* Hugging Face: -100 */
    float grad_scale;                    /* multiplies dlogits (1 usually) */
    int64_t grad_denominator;            /* > 0: divide dlogits by it; 0: by n_valid */
    const void *logits; int64_t ldlogits;/* [n, vocab] S */
    const int32_t *targets;              /* [n] */
    float *loss;                         /* [1] fp32 '=' */
    float *losses;                       /* [n] fp32 '=' per-row loss, or NULL */
    int32_t *n_valid;                    /* [1] '=' count of non-ignored rows, or NULL */
    void *dlogits;   int64_t lddlogits;  /* [n, vocab] S '=', may be logits (in place); NULL: loss only */
};

/* ---- optimizer -------------------------------------------------------------------------------- */

/* AdamW (torch.optim.AdamW, amsgrad off), elementwise over a flat fp32 range:
 *   g = grad·grad_scale;  p ← p·(1 − lr·wd);  m ← m + (1−β1)·(g − m);  v ← β2·v + (1−β2)·g²
 *   p ← p − (lr/(1−β1^step))·m / (sqrt(v)/sqrt(1−β2^step) + eps)
 * param, m, v '=' in place; param_copy (if given) '=' the updated parameters in S (the bf16 copy
 * the CUDA forward reads). grad_scale carries clipping (min(1, max_norm/norm)) and any 1/accum.
 * The scalars combine in fp64 (1 − β, lr·wd, lr/bc1, sqrt(bc2)) and enter the fp32 math rounded,
 * where torch rounds them, so a step matches torch's to a few fp32 ulps. */
struct culora_nn_adamw_args {
    int64_t n;
    double lr, beta1, beta2, eps, weight_decay; /* host scalars in fp64, as torch's Python floats */
    int64_t step;                        /* >= 1: the update's number, for bias correction */
    float grad_scale;
    float *param;                        /* [n] fp32 master weights '=' */
    const float *grad;                   /* [n] fp32 */
    float *m, *v;                        /* [n] fp32 moments '=' */
    void *param_copy;                    /* [n] S '=', or NULL */
};

/* norm = sqrt(Σ grad²) over one flat fp32 buffer (fp64 accumulation, fixed order). */
struct culora_nn_grad_norm_args {
    int64_t n;
    const float *grad;                   /* [n] fp32 */
    float *norm;                         /* [1] fp32 '=' (NaN/Inf when a gradient is) */
};

/* dst = (S) src: fp32 master weights to their storage-dtype copy (round to nearest even). */
struct culora_nn_cast_args {
    int64_t n;
    const float *src;                    /* [n] fp32 */
    void *dst;                           /* [n] S '=' */
};

/* ---- the table -------------------------------------------------------------------------------- */

struct culora_nn_i {
    const char *family; /* "nn" */
    culora_status (*embedding_fwd)(culora_backend *be, const struct culora_nn_embedding_args *a, culora_stream s);
    culora_status (*embedding_bwd_workspace)(culora_backend *be, const struct culora_nn_embedding_bwd_args *a,
                                             struct culora_nn_ws *ws);
    culora_status (*embedding_bwd)(culora_backend *be, const struct culora_nn_embedding_bwd_args *a,
                                   const culora_workspace *ws, culora_stream s);
    culora_status (*layernorm_fwd)(culora_backend *be, const struct culora_nn_layernorm_args *a, culora_stream s);
    culora_status (*layernorm_bwd_workspace)(culora_backend *be, const struct culora_nn_layernorm_bwd_args *a,
                                             struct culora_nn_ws *ws);
    culora_status (*layernorm_bwd)(culora_backend *be, const struct culora_nn_layernorm_bwd_args *a,
                                   const culora_workspace *ws, culora_stream s);
    culora_status (*rmsnorm_fwd)(culora_backend *be, const struct culora_nn_rmsnorm_args *a, culora_stream s);
    culora_status (*rmsnorm_bwd_workspace)(culora_backend *be, const struct culora_nn_rmsnorm_bwd_args *a,
                                           struct culora_nn_ws *ws);
    culora_status (*rmsnorm_bwd)(culora_backend *be, const struct culora_nn_rmsnorm_bwd_args *a,
                                 const culora_workspace *ws, culora_stream s);
    culora_status (*bias_grad_workspace)(culora_backend *be, const struct culora_nn_bias_grad_args *a,
                                         struct culora_nn_ws *ws);
    culora_status (*bias_grad)(culora_backend *be, const struct culora_nn_bias_grad_args *a,
                               const culora_workspace *ws, culora_stream s);
    culora_status (*rope_fwd)(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s);
    culora_status (*rope_bwd)(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s);
    culora_status (*attention_fwd_workspace)(culora_backend *be, const struct culora_nn_attention_args *a,
                                             struct culora_nn_ws *ws);
    culora_status (*attention_fwd)(culora_backend *be, const struct culora_nn_attention_args *a,
                                   const culora_workspace *ws, culora_stream s);
    culora_status (*attention_bwd_workspace)(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                             struct culora_nn_ws *ws);
    culora_status (*attention_bwd)(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                   const culora_workspace *ws, culora_stream s);
    culora_status (*gelu_fwd)(culora_backend *be, const struct culora_nn_gelu_args *a, culora_stream s);
    culora_status (*gelu_bwd)(culora_backend *be, const struct culora_nn_gelu_bwd_args *a, culora_stream s);
    culora_status (*swiglu_fwd)(culora_backend *be, const struct culora_nn_swiglu_args *a, culora_stream s);
    culora_status (*swiglu_bwd)(culora_backend *be, const struct culora_nn_swiglu_bwd_args *a, culora_stream s);
    culora_status (*add)(culora_backend *be, const struct culora_nn_add_args *a, culora_stream s);
    culora_status (*cross_entropy_workspace)(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                             struct culora_nn_ws *ws);
    culora_status (*cross_entropy)(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                   const culora_workspace *ws, culora_stream s);
    culora_status (*adamw)(culora_backend *be, const struct culora_nn_adamw_args *a, culora_stream s);
    culora_status (*grad_norm_workspace)(culora_backend *be, const struct culora_nn_grad_norm_args *a,
                                         struct culora_nn_ws *ws);
    culora_status (*grad_norm)(culora_backend *be, const struct culora_nn_grad_norm_args *a,
                               const culora_workspace *ws, culora_stream s);
    culora_status (*cast)(culora_backend *be, const struct culora_nn_cast_args *a, culora_stream s);
};

extern const struct culora_nn_i culora_cpu_nn_iface;
extern const struct culora_nn_i culora_cuda_nn_iface;

/* ---- dispatchers (host/nn/): check every argument, then call the backend -------------------- */
/* A NULL workspace means the context's default workspace. *_workspace fills *ws for those args
 * (pointers in args may be NULL for the query; only the shapes are read). */

culora_status culora_nn_embedding_fwd(culora_context *ctx, const struct culora_nn_embedding_args *a,
                                      culora_stream stream);
culora_status culora_nn_embedding_bwd_workspace(culora_context *ctx, const struct culora_nn_embedding_bwd_args *a,
                                                struct culora_nn_ws *ws);
culora_status culora_nn_embedding_bwd(culora_context *ctx, const struct culora_nn_embedding_bwd_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream);

culora_status culora_nn_layernorm_fwd(culora_context *ctx, const struct culora_nn_layernorm_args *a,
                                      culora_stream stream);
culora_status culora_nn_layernorm_bwd_workspace(culora_context *ctx, const struct culora_nn_layernorm_bwd_args *a,
                                                struct culora_nn_ws *ws);
culora_status culora_nn_layernorm_bwd(culora_context *ctx, const struct culora_nn_layernorm_bwd_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream);
culora_status culora_nn_rmsnorm_fwd(culora_context *ctx, const struct culora_nn_rmsnorm_args *a,
                                    culora_stream stream);
culora_status culora_nn_rmsnorm_bwd_workspace(culora_context *ctx, const struct culora_nn_rmsnorm_bwd_args *a,
                                              struct culora_nn_ws *ws);
culora_status culora_nn_rmsnorm_bwd(culora_context *ctx, const struct culora_nn_rmsnorm_bwd_args *a,
                                    void *workspace, size_t workspace_bytes, culora_stream stream);
culora_status culora_nn_bias_grad_workspace(culora_context *ctx, const struct culora_nn_bias_grad_args *a,
                                            struct culora_nn_ws *ws);
culora_status culora_nn_bias_grad(culora_context *ctx, const struct culora_nn_bias_grad_args *a,
                                  void *workspace, size_t workspace_bytes, culora_stream stream);

culora_status culora_nn_rope_fwd(culora_context *ctx, const struct culora_nn_rope_args *a, culora_stream stream);
culora_status culora_nn_rope_bwd(culora_context *ctx, const struct culora_nn_rope_args *a, culora_stream stream);

culora_status culora_nn_attention_fwd_workspace(culora_context *ctx, const struct culora_nn_attention_args *a,
                                                struct culora_nn_ws *ws);
culora_status culora_nn_attention_fwd(culora_context *ctx, const struct culora_nn_attention_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream);
culora_status culora_nn_attention_bwd_workspace(culora_context *ctx, const struct culora_nn_attention_bwd_args *a,
                                                struct culora_nn_ws *ws);
culora_status culora_nn_attention_bwd(culora_context *ctx, const struct culora_nn_attention_bwd_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream);

culora_status culora_nn_gelu_fwd(culora_context *ctx, const struct culora_nn_gelu_args *a, culora_stream stream);
culora_status culora_nn_gelu_bwd(culora_context *ctx, const struct culora_nn_gelu_bwd_args *a, culora_stream stream);
culora_status culora_nn_swiglu_fwd(culora_context *ctx, const struct culora_nn_swiglu_args *a, culora_stream stream);
culora_status culora_nn_swiglu_bwd(culora_context *ctx, const struct culora_nn_swiglu_bwd_args *a,
                                   culora_stream stream);
culora_status culora_nn_add(culora_context *ctx, const struct culora_nn_add_args *a, culora_stream stream);

culora_status culora_nn_cross_entropy_workspace(culora_context *ctx, const struct culora_nn_cross_entropy_args *a,
                                                struct culora_nn_ws *ws);
culora_status culora_nn_cross_entropy(culora_context *ctx, const struct culora_nn_cross_entropy_args *a,
                                      void *workspace, size_t workspace_bytes, culora_stream stream);

culora_status culora_nn_adamw(culora_context *ctx, const struct culora_nn_adamw_args *a, culora_stream stream);
culora_status culora_nn_grad_norm_workspace(culora_context *ctx, const struct culora_nn_grad_norm_args *a,
                                            struct culora_nn_ws *ws);
culora_status culora_nn_grad_norm(culora_context *ctx, const struct culora_nn_grad_norm_args *a, void *workspace,
                                  size_t workspace_bytes, culora_stream stream);
culora_status culora_nn_cast(culora_context *ctx, const struct culora_nn_cast_args *a, culora_stream stream);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_NN_OPS_H */
