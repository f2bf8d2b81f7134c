/*
 * sgmv_ops.h — segmented LoRA (Punica's SGMV, "segmented gather matrix-vector"): one call applies
 * a different LoRA adapter to each contiguous segment of rows. LoraHub's batched evaluation uses
 * it to score a whole CMA-ES population in one forward: the frozen base GEMMs run once over every
 * candidate's rows and segment i adds candidate i's composed adapter (host/model/model_segments.c).
 *
 * Internal (not installed): the op table of this family and its checking dispatcher. A backend
 * points culora_backend.sgmv at its table; NULL (or a NULL entry) means the backend lacks the op
 * and the dispatcher returns CULORA_ERR_UNSUPPORTED. Math and variants: docs/lorahub.md.
 */
#ifndef CULORA_HOST_SGMV_OPS_H
#define CULORA_HOST_SGMV_OPS_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most segments one call takes (the CUDA kernels receive the boundaries as a kernel argument). */
#define CULORA_SGMV_MAX_SEGMENTS 256

/* For every segment i (rows seg[i] .. seg[i+1]-1 of x, v and y):
 *   v[rows_i] = scale·x[rows_i]·A_iᵀ        [rows_i, r]  S '='
 *   y[rows_i] += v[rows_i]·B_iᵀ             [rows_i, d]  S '+='   (y holds the base layer's output)
 * with A_i = a + i·stride_a ([r, k], leading dimension lda) and B_i = b + i·stride_b ([d, r], ldb),
 * strides in elements (0: every segment uses the same adapter). S is the context's storage dtype
 * (f32 on CPU, bf16 on CUDA); accumulation is fp32 and v is rounded to S before the second
 * product, as the LoRA linear's v is. Segments may be empty; no dropout (evaluation only). */
struct culora_sgmv_args {
    int64_t m, k, d;                 /* rows, in features, out features */
    int32_t r;                       /* rank, >= 1 */
    int32_t n_segments;              /* 1 .. CULORA_SGMV_MAX_SEGMENTS */
    const int64_t *seg;              /* [n_segments + 1] HOST memory, read during the call:
                                        seg[0] = 0 <= seg[1] <= ... <= seg[n_segments] = m */
    float scale;                     /* LoRA scaling s (alpha/r or alpha/sqrt(r)) */
    const void *x; int64_t ldx;      /* [m, k] S */
    const void *a; int64_t lda; int64_t stride_a; /* segment i: [r, k] S at a + i·stride_a */
    const void *b; int64_t ldb; int64_t stride_b; /* segment i: [d, r] S at b + i·stride_b */
    void *v;       int64_t ldv;      /* [m, r] S '=' */
    void *y;       int64_t ldy;      /* [m, d] S '+=' (must not overlap x, a, b or v) */
};

struct culora_sgmv_i {
    const char *family; /* "sgmv" */
    culora_status (*fwd)(culora_backend *be, const struct culora_sgmv_args *a, culora_stream stream);
};

extern const struct culora_sgmv_i culora_cpu_sgmv_iface;
extern const struct culora_sgmv_i culora_cuda_sgmv_iface;

/* Checks every argument (host/hub/sgmv_dispatch.c), then enqueues the backend's op on stream
 * (NULL: the context's). Needs no workspace. */
culora_status culora_op_sgmv(culora_context *ctx, const struct culora_sgmv_args *a, culora_stream stream);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_SGMV_OPS_H */
