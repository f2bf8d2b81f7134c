/*
 * relora_ops.h — the op family of ReLoRA restarts (docs/relora.md) and its dispatcher. A backend
 * points culora_backend.relora at its table; without one the dispatcher returns
 * CULORA_ERR_UNSUPPORTED. Arguments are checked in host/relora/relora_dispatch.c, so backend code
 * may assume them valid.
 *
 * One call restarts one LoRA pair (W0 [d,k], A [r,k], B [d,r]) in place, in this order:
 *   1. merge      W0 += s·B·A                 (fp32: into w0_master when given, then w0 '=' its
 *                                              storage-dtype rounding; else into w0 directly)
 *   2. re-init    A '=' PEFT's initialisation from Philox(init_seed, init_stream) — the numbers
 *                 model_lora_reinit() draws (host/model/model_lora.c), element i = row·k + col:
 *                   UNIFORM   a = (float)((2u − 1)·init_scale), u = 53-bit uniform of words 0, 1
 *                   GAUSSIAN  a = (float)(normal / init_scale), normal = Box–Muller of words 0..3
 *                 B '=' 0; the storage-dtype copies of A and B follow.
 *   3. prune      each AdamW moment tensor (A.m, A.v, B.m, B.v; logical elements only) in place,
 *                 as the reference's optimizer_reset (training_utils.py):
 *                   MAGNITUDE  t *= |t| > quantile(|t|, ratio)  (torch.quantile: fp32, linear
 *                              interpolation; see relora_quantile_rank)
 *                   RANDOM     t *= keep, keep = (word >> 8) >= round(ratio·2^24) with word i mod 4
 *                              of Philox(counter {i/4, stream + j}, key prune_seed) (j: tensor 0..3),
 *                              i.e. Bernoulli(1 − ratio) from a counter-based generator
 *                   ZERO       t = 0
 *                   NONE       untouched
 *                 then, unlike the reference, m = 0 wherever v = 0 (the second-moment guard): the
 *                 tensors are pruned independently, and right after a restart A's gradient is exactly
 *                 0 (B = 0), so an element that kept m but lost v would step by lr·m/eps (observed:
 *                 weights of 1e5 in a small model); v is pruned exactly as the reference prunes it.
 * Deterministic on both backends: A and the masks are bit-identical; the merge sums r products in
 * fp32 in a backend-specific order.
 */
#ifndef CULORA_HOST_RELORA_OPS_H
#define CULORA_HOST_RELORA_OPS_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

enum culora_relora_init { CULORA_RELORA_INIT_UNIFORM = 0, CULORA_RELORA_INIT_GAUSSIAN = 1 };

enum culora_relora_prune {
    CULORA_RELORA_PRUNE_NONE = 0,
    CULORA_RELORA_PRUNE_MAGNITUDE = 1,
    CULORA_RELORA_PRUNE_RANDOM = 2,
    CULORA_RELORA_PRUNE_ZERO = 3
};

struct culora_relora_restart_args {
    int64_t d, k, r;              /* W0 [d,k], A [r,k], B [d,r] */
    bool merge;                   /* false: skip step 1 */
    float scaling;                /* s */
    void *w0;                     /* [d, ldw0] in w0_dtype '+=' (or '=' the rounding of w0_master) */
    int64_t ldw0;
    culora_dtype w0_dtype;        /* the storage dtype, or F32 (a dequantized weight) */
    float *w0_master;             /* [d, ldw0] fp32 '+=', or NULL */
    float *a;  int64_t lda;       /* [r, k] fp32 master '=' re-initialised */
    float *b;  int64_t ldb;       /* [d, r] fp32 master '=' 0 */
    void *a_copy, *b_copy;        /* storage-dtype copies (same ld) '=', or NULL (the master is the copy) */
    float *a_m, *a_v;             /* [r, lda] AdamW moments of A, pruned in place */
    float *b_m, *b_v;             /* [d, ldb] of B */
    int32_t init;                 /* enum culora_relora_init */
    double init_scale;            /* UNIFORM: bound 1/sqrt(k); GAUSSIAN: divisor r */
    uint64_t init_seed, init_stream;
    int32_t prune;                /* enum culora_relora_prune */
    double prune_ratio;           /* in [0, 1] */
    uint64_t prune_seed, prune_stream;
};

/* Where torch.quantile(|t|, ratio) looks in the sorted n values: ranks lo <= hi and the fp32
 * interpolation weight, computed in fp32 as torch does (q·(n−1) with q rounded to fp32). */
void relora_quantile_rank(double ratio, int64_t n, int64_t *lo, int64_t *hi, float *weight);
/* torch's lerp(v_lo, v_hi, weight) in fp32. */
float relora_lerp(float v_lo, float v_hi, float weight);
/* round(ratio·2^24): RANDOM pruning zeroes an element when its 24-bit word is below this. */
uint32_t relora_random_threshold(double ratio);

struct culora_relora_i {
    const char *family; /* "relora" */
    culora_status (*reset_workspace)(culora_backend *be, const struct culora_relora_restart_args *a, size_t *bytes);
    culora_status (*reset)(culora_backend *be, const struct culora_relora_restart_args *a, const culora_workspace *ws,
                           culora_stream stream);
};

extern const struct culora_relora_i culora_cpu_relora_iface;
extern const struct culora_relora_i culora_cuda_relora_iface;

/* Dispatcher: checks a, the workspace (NULL: the context's) and enqueues the restart on stream. */
culora_status culora_relora_restart_workspace(culora_context *ctx, const struct culora_relora_restart_args *a,
                                            size_t *bytes);
culora_status culora_relora_restart(culora_context *ctx, const struct culora_relora_restart_args *a, void *workspace,
                                  size_t workspace_bytes, culora_stream stream);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_RELORA_OPS_H */
