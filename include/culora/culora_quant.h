/*
 * culora_quant.h — quantized frozen weights: NF4 / FP4 (optionally double-quantized) and int8
 * (LLM.int8), bit-compatible with bitsandbytes, and the LoRA linear layer on such a weight.
 *
 * Formats (docs/kernels/nf4.md, docs/kernels/int8.md):
 *   4-bit  A weight [rows, cols] is read as its flattened row-major sequence of n = rows·cols
 *          values, cut into blocks of `blocksize` consecutive values (so blocks run along cols).
 *          absmax[b] = max |w| over block b (fp32). Each value is scaled by the reciprocal of its
 *          block's absmax and rounded to the nearest of the 16 code values (ties to the lower
 *          one); two codes per byte, the first element in the HIGH nibble. Dequantized value =
 *          code[nibble] · absmax[b] in fp32.
 *   DQ     (CULORA_QUANT_DOUBLE_QUANT, bitsandbytes compress_statistics): the fp32 absmax is
 *          stored as 8 bits: offset = mean(absmax); absmax - offset is quantized with the 256-value
 *          signed dynamic code in blocks of 256 with an fp32 nested absmax; decoded absmax =
 *          nested_code[q] · nested_absmax[b / 256] + offset.
 *   int8   Row-wise absmax ("vector-wise"): scb[i] = max_j |w[i,j]|, cb[i,j] = round(w[i,j] ·
 *          127/scb[i]) (half to even); dequantized value = cb · scb · (1/127). The LLM.int8 matmul
 *          also quantizes activations row-wise and keeps activation columns holding a value with
 *          |x| >= threshold (6.0) out of the int8 product ("outliers", computed in floating point).
 *
 * Buffers are backend memory (device pointers on CUDA, host pointers on CPU) unless a function
 * says host. Ops follow culora_ops.h: arguments are validated before any memory is touched
 * (CULORA_ERR_INVALID_ARG with a message naming the argument), work is enqueued on `stream`
 * (NULL: the context's) and the caller supplies workspace (NULL: the context's default).
 */
#ifndef CULORA_QUANT_H
#define CULORA_QUANT_H

#include "culora.h"
#include "culora_io.h"
#include "culora_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* Description and buffers of a quantized weight                                             */

typedef enum culora_quant_format {
    CULORA_QUANT_NF4  = 1, /* 4-bit NormalFloat (QLoRA) */
    CULORA_QUANT_FP4  = 2, /* 4-bit float, bitsandbytes' e2m1-like table */
    CULORA_QUANT_INT8 = 3  /* row-wise absmax int8 (LLM.int8 weights) */
} culora_quant_format;

enum {
    CULORA_QUANT_DOUBLE_QUANT = 1u << 0 /* 4-bit only: absmax stored as 8-bit codes (see above) */
};

/* Blocks of the second (nested) quantization level; fixed by the format. */
#define CULORA_QUANT_NESTED_BLOCKSIZE 256
/* bitsandbytes / transformers default llm_int8_threshold. */
#define CULORA_QUANT_INT8_THRESHOLD 6.0f

typedef struct culora_quant_desc {
    uint32_t struct_size; /* set by CULORA_QUANT_DESC_INIT */
    uint32_t api_version; /* set by CULORA_QUANT_DESC_INIT */
    int32_t format;       /* culora_quant_format */
    uint32_t flags;       /* CULORA_QUANT_* */
    int64_t rows, cols;   /* logical weight shape [rows, cols] ([out_features, in_features]) */
    int32_t blocksize;    /* 4-bit: 32, 64 (default), 128 or 256; rows·cols must be a multiple.
                             int8: ignored (one scale per row) */
    float threshold;      /* int8 matmul: activation outlier threshold (default 6.0); 0 = none */
} culora_quant_desc;

#define CULORA_QUANT_DESC_INIT \
    { sizeof(culora_quant_desc), CULORA_API_VERSION, CULORA_QUANT_NF4, 0u, 0, 0, 64, CULORA_QUANT_INT8_THRESHOLD }

/* Sizes of the buffers a quantized weight needs (0: buffer unused by this format). */
typedef struct culora_quant_layout {
    int64_t n_elems;            /* rows·cols */
    int64_t n_blocks;           /* 4-bit: n_elems / blocksize; int8: rows */
    int64_t n_nested_blocks;    /* DQ: ceil(n_blocks / 256) */
    size_t data_bytes;          /* 4-bit: n_elems/2 packed bytes; int8: rows·cols (cb) */
    size_t absmax_bytes;        /* 4-bit without DQ: 4·n_blocks; int8: 4·rows (scb) */
    size_t absmax_q_bytes;      /* DQ: n_blocks (8-bit absmax codes) */
    size_t nested_absmax_bytes; /* DQ: 4·n_nested_blocks */
    size_t nested_code_bytes;   /* DQ: 4·256 (the code absmax_q indexes; stored with the weight) */
    size_t offset_bytes;        /* DQ: 4 (the mean subtracted before nested quantization) */
} culora_quant_layout;

/* A quantized weight's buffers, in backend memory. Unused members (see the layout) are NULL. */
typedef struct culora_quant_weight {
    void *data;           /* 4-bit: packed codes, high nibble first; int8: cb [rows, cols] row-major */
    float *absmax;        /* 4-bit without DQ: [n_blocks]; int8: scb [rows] */
    uint8_t *absmax_q;    /* DQ: [n_blocks] */
    float *nested_absmax; /* DQ: [n_nested_blocks] */
    float *nested_code;   /* DQ: [256] */
    float *offset;        /* DQ: [1] */
} culora_quant_weight;

/* Validates desc and fills *out. Host only; ctx only receives the message (may be NULL). */
CULORA_API CULORA_NODISCARD culora_status culora_quant_layout_get(culora_context *ctx, const culora_quant_desc *desc,
                                                                  culora_quant_layout *out);

/* "nf4", "fp4", "int8" ("?" otherwise). Static storage. */
CULORA_API const char *culora_quant_format_name(int32_t format);

/* ---------------------------------------------------------------------------------------- */
/* Quantize / dequantize                                                                     */

/* Workspace culora_quantize needs on this context's backend. */
CULORA_API CULORA_NODISCARD culora_status culora_quantize_workspace_size(culora_context *ctx,
                                                                         const culora_quant_desc *desc,
                                                                         size_t *bytes);

/* Quantizes w [rows, cols] (leading dimension ldw, dtype F32 or BF16 on either backend) into q,
 * writing every buffer the layout names (DQ: also nested_code and offset). Results are identical
 * on every backend, byte for byte. NaN or ±Inf in w is CULORA_ERR_INVALID_ARG (nothing in q is
 * meaningful then). SYNCHRONISES the stream: the non-finite check reads a flag back, so this call
 * cannot be captured in a CUDA graph (quantization is a load-time operation). */
CULORA_API CULORA_NODISCARD culora_status culora_quantize(culora_context *ctx, const culora_quant_desc *desc,
                                                          const void *w, int64_t ldw, culora_dtype w_dtype,
                                                          const culora_quant_weight *q, void *workspace,
                                                          size_t workspace_bytes, culora_stream stream);

/* out [rows, cols] (leading dimension ldout) '=' the dequantized weight in out_dtype (F32 or
 * BF16; BF16 is the fp32 value rounded to nearest even). Identical on every backend. Enqueue-only. */
CULORA_API CULORA_NODISCARD culora_status culora_dequantize(culora_context *ctx, const culora_quant_desc *desc,
                                                            const culora_quant_weight *q, void *out,
                                                            int64_t ldout, culora_dtype out_dtype,
                                                            culora_stream stream);

/* Copies every buffer of a quantized weight (sizes from the layout); enqueue-only on CUDA. */
CULORA_API CULORA_NODISCARD culora_status culora_quant_copy(culora_context *ctx, const culora_quant_desc *desc,
                                                            const culora_quant_weight *dst,
                                                            const culora_quant_weight *src,
                                                            culora_copy_kind kind, culora_stream stream);

/* ---------------------------------------------------------------------------------------- */
/* Linear layers on a quantized weight                                                       */
/*                                                                                            */
/* Frozen linear   y = x·Wᵀ (+ bias)            x [m, cols]  W [rows, cols]  y [m, rows]       */
/* LoRA linear     culora_lora_linear_* with W0 quantized: the LoRA desc as in culora_ops.h,   */
/*                 its args with w0 = NULL (the weight is q); qdesc rows/cols = [d, k], or      */
/*                 [k, d] with CULORA_LORA_W0_TRANSPOSED. CULORA_LORA_REQUIRE_FUSED is refused. */
/* Paths: NF4/FP4 dequantize W into the workspace (storage dtype) and run the unquantized op;   */
/* on CUDA a batch of one row (m == 1, no dropout) runs one fused dequant-GEMV kernel that also  */
/* adds bias and v·Bᵀ. int8 forward: LLM.int8 — x is quantized row-wise, outlier columns       */
/* (|x| >= threshold anywhere in the column) go through floating point with the dequantized     */
/* weight, the rest through an int8 GEMM with int32 accumulation; int8 backward dequantizes.    */
/* The CPU backend computes the same math in fp32 (int32 for the int8 product): the reference.   */

CULORA_API CULORA_NODISCARD culora_status culora_quant_linear_workspace_size(culora_context *ctx,
                                                                             const culora_quant_desc *qdesc,
                                                                             int64_t m, size_t *bytes);

/* y [m, rows] '=' x·Wᵀ (+ bias [rows]). Dtypes: the context's compute dtype. */
CULORA_API CULORA_NODISCARD culora_status culora_quant_linear_forward(culora_context *ctx,
        const culora_quant_desc *qdesc, const culora_quant_weight *q, int64_t m, const void *x, int64_t ldx,
        const void *bias, void *y, int64_t ldy, void *workspace, size_t workspace_bytes, culora_stream stream);

CULORA_API CULORA_NODISCARD culora_status culora_lora_linear_quant_workspace_size(culora_context *ctx,
        const culora_lora_linear_desc *desc, const culora_quant_desc *qdesc, size_t *fwd_bytes, size_t *bwd_bytes);

/* As culora_lora_linear_forward / _backward (same outputs, '=' / '+=' contracts), W0 = q. */
CULORA_API CULORA_NODISCARD culora_status culora_lora_linear_quant_forward(culora_context *ctx,
        const culora_lora_linear_desc *desc, const culora_quant_desc *qdesc, const culora_quant_weight *q,
        const culora_lora_linear_fwd_args *args, void *workspace, size_t workspace_bytes, culora_stream stream);
CULORA_API CULORA_NODISCARD culora_status culora_lora_linear_quant_backward(culora_context *ctx,
        const culora_lora_linear_desc *desc, const culora_quant_desc *qdesc, const culora_quant_weight *q,
        const culora_lora_linear_bwd_args *args, void *workspace, size_t workspace_bytes, culora_stream stream);

/* ---------------------------------------------------------------------------------------- */
/* Host copies and bitsandbytes serialization                                                */
/*                                                                                            */
/* 4-bit, as Linear4bit / Params4bit save (transformers *-bnb-4bit checkpoints), for a weight   */
/* called NAME (e.g. "model.layers.0.mlp.up_proj.weight"):                                      */
/*   NAME                                  U8  [ceil(n/2), 1]   packed codes                     */
/*   NAME.absmax                           F32 [n_blocks]       (DQ: U8 [n_blocks], the codes)   */
/*   NAME.quant_map                        F32 [16]             the 4-bit code                   */
/*   NAME.nested_absmax                    F32 [n_nested]       DQ only                          */
/*   NAME.nested_quant_map                 F32 [256]            DQ only                          */
/*   NAME.quant_state.bitsandbytes__nf4    U8  [len]            JSON: quant_type, blocksize,     */
/*       dtype, shape (+ nested_blocksize, nested_dtype, nested_offset with DQ); __fp4 for FP4   */
/* int8, as Linear8bitLt saves, for NAME = PREFIX "weight":                                     */
/*   NAME  I8 [rows, cols]   PREFIX "SCB"  F32 [rows]   PREFIX "weight_format"  U8 [] = 0 (row)  */

/* A quantized weight in host memory, owning its buffers. */
typedef struct culora_quant_host culora_quant_host;

/* Allocates zeroed host buffers for desc. orig_dtype: the dtype of the unquantized weight
 * (recorded as "dtype" in the 4-bit quant state; F32, F16 or BF16). */
CULORA_API CULORA_NODISCARD culora_status culora_quant_host_create(culora_context *ctx, const culora_quant_desc *desc,
                                                                   culora_st_dtype orig_dtype,
                                                                   culora_quant_host **out);
/* NULL: no-op. */
CULORA_API void culora_quant_host_destroy(culora_quant_host *h);
CULORA_API const culora_quant_desc *culora_quant_host_desc(const culora_quant_host *h);
/* Host pointers to the buffers (valid until destroy). */
CULORA_API const culora_quant_weight *culora_quant_host_weight(const culora_quant_host *h);
CULORA_API culora_st_dtype culora_quant_host_orig_dtype(const culora_quant_host *h);

/* Which format `name` is stored in within st: CULORA_QUANT_NF4 / FP4 / INT8 when the tensors of a
 * bitsandbytes-quantized weight are present (the 4-bit quant-state tensor, or an I8 NAME with its
 * SCB), 0 when not quantized or absent. */
CULORA_API int32_t culora_quant_probe(const culora_safetensors *st, const char *name);

/* Loads the bitsandbytes-serialized weight `name` from st (layout above). Everything is checked:
 * tensor dtypes and shapes, the quant-state JSON (quant_type, blocksize, shape, nested_blocksize
 * 256, nested_dtype float32), and that quant_map is bitsandbytes' 4-bit code bit for bit.
 * A mismatch is CULORA_ERR_FORMAT naming the tensor; a valid but unsupported variant (blocksize
 * 512..4096, another quant_storage) is CULORA_ERR_UNSUPPORTED. */
CULORA_API CULORA_NODISCARD culora_status culora_quant_host_load(culora_context *ctx, const culora_safetensors *st,
                                                                 const char *name, culora_quant_host **out);

/* Adds the tensors of h under `name` to w (layout above). The writer references h's buffers and
 * strings owned by h: keep h alive until culora_safetensors_writer_save returns. */
CULORA_API CULORA_NODISCARD culora_status culora_quant_host_save(culora_context *ctx, culora_quant_host *h,
                                                                 culora_safetensors_writer *w, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_QUANT_H */
