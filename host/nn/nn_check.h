/*
 * nn_check.h — argument checks shared by the nn dispatchers (host/nn/). Each returns
 * CULORA_ERR_INVALID_ARG with a message naming the op and the argument.
 */
#ifndef CULORA_HOST_NN_CHECK_H
#define CULORA_HOST_NN_CHECK_H

#include "../nn_ops.h"

/* A named row-major view for the overlap checks. alias: this output may be exactly an input
 * (same pointer, leading dimension, shape and element size), as an in-place op. */
struct nn_view {
    const char *name;
    const void *p;
    int64_t rows, cols, ld;
    size_t esize;
    bool alias;
};

/* value >= min, else "op: name = value must be >= min". */
culora_status nn_check_min(culora_context *ctx, const char *op, const char *name, int64_t value, int64_t min);
/* A storage-dtype matrix [rows, cols] with leading dimension ld (culora_check_matrix). */
culora_status nn_check_s(culora_context *ctx, const char *op, const char *name, const void *p, int64_t rows,
                         int64_t cols, int64_t ld);
/* An fp32 matrix. */
culora_status nn_check_f32(culora_context *ctx, const char *op, const char *name, const void *p, int64_t rows,
                           int64_t cols, int64_t ld);
/* A dense vector of n elements of esize bytes: non-NULL and element-aligned. */
culora_status nn_check_vec(culora_context *ctx, const char *op, const char *name, const void *p, int64_t n,
                           size_t esize);
/* No output overlaps an input (unless an allowed exact alias) or another output. NULL views
 * are skipped. */
culora_status nn_no_overlap(culora_context *ctx, const char *op, const struct nn_view *outs, int n_outs,
                            const struct nn_view *ins, int n_ins);
/* Resolves the call's workspace (NULL: the context's) and checks it holds need->min_bytes. */
culora_status nn_workspace(culora_context *ctx, const char *op, void *workspace, size_t workspace_bytes,
                           const struct culora_nn_ws *need, culora_workspace *out);
/* Stream to run on: the given one, else the backend's default. */
static inline culora_stream nn_stream(const culora_context *ctx, culora_stream s)
{
    return s ? s : ctx->be->stream;
}
/* Element size of the storage dtype. */
static inline size_t nn_es(const culora_context *ctx) { return culora_dtype_size(ctx->be->dtype); }

#endif /* CULORA_HOST_NN_CHECK_H */
