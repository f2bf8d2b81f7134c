/*
 * backend.h — the internal op table every backend fills, and the checking dispatchers.
 *
 * The model, trainer and hub reach compute only through the functions declared here (and the
 * public op functions in culora_ops.h, which are dispatchers too). A backend fills
 * `struct culora_backend_i` with designated initialisers; an op it lacks stays NULL and its
 * dispatcher returns CULORA_ERR_UNSUPPORTED with a message. Dispatchers validate every argument
 * (NULLs, shapes, leading dimensions, alignment, dtypes, workspace size) before calling the
 * backend, so backend code may assume valid arguments.
 */
#ifndef CULORA_HOST_BACKEND_H
#define CULORA_HOST_BACKEND_H

#include "culora/culora.h"
#include "culora/culora_ops.h"
#include "context.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct culora_backend culora_backend;

/* Workspace handed to a backend op: backend memory, already checked to be large enough. */
typedef struct culora_workspace {
    void *ptr;
    size_t bytes;
} culora_workspace;

/* C[m,n] = alpha·op(A)·op(B) (+ bias broadcast over rows) + beta·C, all row-major.
 * op(A) is [m,k]: A stored [m,k] (trans_a false) or [k,m] (true); op(B) is [k,n]: B stored [k,n]
 * or [n,k]. C '=' when beta == 0 (C may hold NaN then), '+=' scaled otherwise. */
struct culora_gemm_args {
    bool trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    const void *a; int64_t lda; culora_dtype a_dtype;
    const void *b; int64_t ldb; culora_dtype b_dtype;
    void *c;       int64_t ldc; culora_dtype c_dtype;
    const void *bias;                 /* [n] in c_dtype, or NULL */
};

/* y[m,n] = alpha·x + beta·y, elementwise, storage dtype. y '=' when beta == 0. */
struct culora_axpby_args {
    int64_t m, n;
    float alpha, beta;
    const void *x; int64_t ldx;
    void *y;       int64_t ldy;
};

/* W0 += sign·s·B·A (see culora_lora_merge). */
struct culora_lora_merge_args {
    const culora_lora_linear_desc *desc;
    float sign;                       /* +1 merge, -1 unmerge */
    void *w0;       int64_t ldw0;
    const void *a;  int64_t lda;
    const void *b;  int64_t ldb;
};

struct culora_backend_i {
    const char *name;
    void (*destroy)(culora_backend *be);
    culora_status (*alloc)(culora_backend *be, size_t bytes, void **out);
    void (*free)(culora_backend *be, void *ptr);
    culora_status (*copy)(culora_backend *be, void *dst, const void *src, size_t bytes,
                          culora_copy_kind kind, culora_stream stream);
    culora_status (*fill)(culora_backend *be, void *dst, int value, size_t bytes, culora_stream stream);
    culora_status (*synchronize)(culora_backend *be, culora_stream stream);

    culora_status (*lora_linear_workspace)(culora_backend *be, const culora_lora_linear_desc *desc,
                                           size_t *fwd_bytes, size_t *bwd_bytes);
    culora_status (*lora_linear_fwd)(culora_backend *be, const culora_lora_linear_desc *desc,
                                     const culora_lora_linear_fwd_args *args,
                                     const culora_workspace *ws, culora_stream stream);
    culora_status (*lora_linear_bwd)(culora_backend *be, const culora_lora_linear_desc *desc,
                                     const culora_lora_linear_bwd_args *args,
                                     const culora_workspace *ws, culora_stream stream);
    culora_status (*lora_merge)(culora_backend *be, const struct culora_lora_merge_args *args,
                                const culora_workspace *ws, culora_stream stream);
    culora_status (*gemm)(culora_backend *be, const struct culora_gemm_args *args,
                          const culora_workspace *ws, culora_stream stream);
    culora_status (*axpby)(culora_backend *be, const struct culora_axpby_args *args, culora_stream stream);
};

/* Op families kept in their own tables so each module owns its header (DESIGN §2):
 * quantized frozen weights (host/quant_ops.h), transformer layers (host/nn_ops.h), ReLoRA restarts
 * (host/relora_ops.h), segmented LoRA for LoraHub (host/sgmv_ops.h). */
struct culora_quant_i;
struct culora_nn_i;
struct culora_relora_i;
struct culora_sgmv_i;

struct culora_backend {
    const struct culora_backend_i *iface;
    const struct culora_quant_i *quant; /* NF4/FP4/int8 ops; NULL: none on this backend */
    const struct culora_nn_i *nn;       /* transformer ops; NULL: none on this backend */
    const struct culora_relora_i *relora; /* ReLoRA restart (host/relora_ops.h); NULL: none */
    const struct culora_sgmv_i *sgmv;   /* segmented LoRA (host/sgmv_ops.h); NULL: none on this backend */
    culora_context *ctx;       /* for error messages */
    culora_dtype dtype;        /* storage dtype of activations and frozen weights */
    int64_t ld_align;          /* storage-dtype leading dimensions must be multiples of this (elements) */
    culora_stream stream;      /* default stream (NULL on CPU) */
    char device_name[256];     /* e.g. "NVIDIA H100 80GB HBM3" or "cpu (2 threads, OpenBLAS SkylakeX)" */
    void *impl;                /* backend-private state */
};

/* Backend constructors (backend_cpu.c, host/cuda/backend_cuda.c or cuda_none.c). */
culora_status culora_backend_cpu_create(culora_context *ctx, const culora_context_params *params,
                                        culora_backend **out);
culora_status culora_backend_cuda_create(culora_context *ctx, const culora_context_params *params,
                                         culora_backend **out);

/* Internal dispatchers (public ops have theirs in culora_ops.h). */
culora_status culora_op_gemm(culora_context *ctx, const struct culora_gemm_args *args,
                             void *workspace, size_t workspace_bytes, culora_stream stream);
culora_status culora_op_axpby(culora_context *ctx, const struct culora_axpby_args *args, culora_stream stream);

/* Argument-checking helpers shared by dispatchers (also used by tests through a fake backend). */
culora_status culora_check_matrix(culora_context *ctx, const char *op, const char *name, const void *ptr,
                                  int64_t rows, int64_t cols, int64_t ld, culora_dtype dtype);
/* True when the two row-major views share an element (exact when the leading dimensions agree,
 * conservative byte-range test otherwise). */
bool culora_views_overlap(const void *p1, int64_t rows1, int64_t cols1, int64_t ld1,
                          const void *p2, int64_t rows2, int64_t cols2, int64_t ld2, size_t esize);
/* Shapes, leading dimensions and alignment of a LoRA call's operands other than the frozen weight
 * (the bf16 and the quantized dispatchers check W0 each their own way). */
culora_status culora_check_lora_fwd_operands(culora_context *ctx, const char *op, const culora_lora_linear_desc *desc,
                                            const culora_lora_linear_fwd_args *a);
culora_status culora_check_lora_bwd_operands(culora_context *ctx, const char *op, const culora_lora_linear_desc *desc,
                                            const culora_lora_linear_bwd_args *a);
/* CULORA_ERR_UNSUPPORTED naming the op and the backend when `present` (the backend has the op) is
 * false. */
culora_status culora_need_op(culora_context *ctx, const char *op, bool present);
/* Resolves the workspace for a call (NULL: the context's) and checks it holds `need` bytes. */
culora_status culora_resolve_workspace(culora_context *ctx, const char *op, void *workspace,
                                       size_t workspace_bytes, size_t need, culora_workspace *out);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_BACKEND_H */
