/*
 * quant_ops.h — the op table of the quantized-weight family (NF4, FP4, int8) and its dispatchers.
 * A backend points culora_backend.quant at its table; a NULL entry means the backend lacks the op
 * and its dispatcher returns CULORA_ERR_UNSUPPORTED. Argument checks live in the dispatchers
 * (host/quant/quant_dispatch.c): backend code may assume a valid descriptor, non-NULL buffers of
 * the layout's sizes, valid shapes and leading dimensions, and a large-enough workspace.
 */
#ifndef CULORA_HOST_QUANT_OPS_H
#define CULORA_HOST_QUANT_OPS_H

#include "backend.h"
#include "culora/culora_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* q '=' quantize(w). w [rows, cols], leading dimension ldw, F32 or BF16. */
struct culora_quantize_args {
    const culora_quant_desc *desc;
    const void *w;
    int64_t ldw;
    culora_dtype w_dtype;
    const culora_quant_weight *q;
};

/* out [rows, cols] '=' dequantize(q), leading dimension ldout, F32 or BF16. */
struct culora_dequantize_args {
    const culora_quant_desc *desc;
    const culora_quant_weight *q;
    void *out;
    int64_t ldout;
    culora_dtype out_dtype;
};

/* A linear layer on a quantized frozen weight.
 *   lora == NULL: frozen linear, y [m, rows] '=' x·Wᵀ (+ bias); only x, bias, y of fwd are used
 *   lora != NULL: LoRA linear with W0 = q (m = lora->m); args as culora_ops.h with w0 ignored. */
struct culora_qlinear_fwd_args {
    const culora_quant_desc *qdesc;
    const culora_quant_weight *q;
    const culora_lora_linear_desc *lora;
    int64_t m;
    const culora_lora_linear_fwd_args *fwd;
};

struct culora_qlinear_bwd_args {
    const culora_quant_desc *qdesc;
    const culora_quant_weight *q;
    const culora_lora_linear_desc *lora; /* never NULL */
    const culora_lora_linear_bwd_args *bwd;
};

struct culora_quant_i {
    const char *family; /* "quant" */
    culora_status (*quantize_workspace)(culora_backend *be, const culora_quant_desc *desc, size_t *bytes);
    culora_status (*quantize)(culora_backend *be, const struct culora_quantize_args *args,
                              const culora_workspace *ws, culora_stream stream);
    culora_status (*dequantize)(culora_backend *be, const struct culora_dequantize_args *args, culora_stream stream);
    /* Workspace of linear_fwd / linear_bwd (lora NULL: frozen linear with m rows; bwd_bytes may be NULL). */
    culora_status (*linear_workspace)(culora_backend *be, const culora_quant_desc *qdesc,
                                      const culora_lora_linear_desc *lora, int64_t m, size_t *fwd_bytes,
                                      size_t *bwd_bytes);
    culora_status (*linear_fwd)(culora_backend *be, const struct culora_qlinear_fwd_args *args,
                                const culora_workspace *ws, culora_stream stream);
    culora_status (*linear_bwd)(culora_backend *be, const struct culora_qlinear_bwd_args *args,
                                const culora_workspace *ws, culora_stream stream);
};

extern const struct culora_quant_i culora_cpu_quant_iface;
extern const struct culora_quant_i culora_cuda_quant_iface;

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_QUANT_OPS_H */
