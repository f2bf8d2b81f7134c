/*
 * cuda_quant.h — the CUDA backend's quantized-weight ops (kernels/nf4.cu, int8.cu,
 * quant_linear.cu): the entries host/cuda/quant_table.c puts in culora_cuda_quant_iface, and the
 * launchers the files share. C-compatible; CUDA-side files only (includes cuda_backend.h).
 */
#ifndef CULORA_HOST_CUDA_QUANT_H
#define CULORA_HOST_CUDA_QUANT_H

#include "../quant_ops.h"
#include "cuda_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Entries (argument checks done by host/quant/quant_dispatch.c). */
culora_status cuda_quant_quantize_workspace(culora_backend *be, const culora_quant_desc *desc, size_t *bytes);
culora_status cuda_quant_quantize(culora_backend *be, const struct culora_quantize_args *a, const culora_workspace *ws,
                                  culora_stream stream);
culora_status cuda_quant_dequantize(culora_backend *be, const struct culora_dequantize_args *a, culora_stream stream);
culora_status cuda_qlinear_workspace(culora_backend *be, const culora_quant_desc *qdesc,
                                     const culora_lora_linear_desc *lora, int64_t m, size_t *fwd_bytes,
                                     size_t *bwd_bytes);
culora_status cuda_qlinear_fwd(culora_backend *be, const struct culora_qlinear_fwd_args *a,
                               const culora_workspace *ws, culora_stream stream);
culora_status cuda_qlinear_bwd(culora_backend *be, const struct culora_qlinear_bwd_args *a,
                               const culora_workspace *ws, culora_stream stream);

/* ---- launchers (nf4.cu) ------------------------------------------------------------------ */

/* 4-bit quantize of w [rows, cols] (ld, F32 or BF16). absmax_out: q->absmax, or fp32 scratch
 * [n_blocks] for DQ; *first_bad (device, preset to UINT64_MAX) '=' min flat index of a non-finite. */
culora_status cuda_quant4_quantize_launch(culora_backend *be, const culora_quant_desc *d, const void *w, int64_t ldw,
                                          culora_dtype w_dtype, float *absmax_out, uint8_t *packed,
                                          unsigned long long *first_bad, cudaStream_t stream);
/* Double quantization of absmax [n] (device): q->offset, q->nested_code, q->absmax_q,
 * q->nested_absmax. scratch: cuda_dq_scratch_bytes(n) bytes (partial sums + 64 KiB table). */
size_t cuda_dq_scratch_bytes(int64_t n);
culora_status cuda_dq_quantize_launch(culora_backend *be, const float *absmax, int64_t n, const culora_quant_weight *q,
                                      void *scratch, cudaStream_t stream);
/* out [rows, cols] (ld, F32 or BF16) '=' dequantized 4-bit weight. */
culora_status cuda_quant4_dequantize_launch(culora_backend *be, const culora_quant_desc *d, const culora_quant_weight *q,
                                            void *out, int64_t ldout, culora_dtype out_dtype, cudaStream_t stream);
/* Batch-1 fused dequant-GEMV: y [rows] '=' W·x (+ bias) (+ Σ_t v[t]·B[j, t] when b != NULL).
 * Needs cols % 32 == 0 and 16-byte aligned packed data and x (cuda_gemv4_applies). bf16 x, y, bias,
 * v, b. */
bool cuda_gemv4_applies(const culora_quant_desc *d, const culora_quant_weight *q, const void *x);
culora_status cuda_gemv4_launch(culora_backend *be, const culora_quant_desc *d, const culora_quant_weight *q,
                                const void *x, const void *bias, const void *v, const void *b, int64_t ldb, int32_t r,
                                void *y, cudaStream_t stream);

/* ---- launchers (int8.cu) ----------------------------------------------------------------- */

culora_status cuda_int8_quantize_launch(culora_backend *be, const culora_quant_desc *d, const void *w, int64_t ldw,
                                        culora_dtype w_dtype, const culora_quant_weight *q,
                                        unsigned long long *first_bad, cudaStream_t stream);
culora_status cuda_int8_dequantize_launch(culora_backend *be, const culora_quant_desc *d, const culora_quant_weight *q,
                                          void *out, int64_t ldout, culora_dtype out_dtype, cudaStream_t stream);

/* LLM.int8 product y [m, rows] '=' x [m, cols]·Wᵀ (+ bias), bf16 x / y / bias (int8.cu).
 * Workspace: cuda_int8_matmul_ws_bytes(d, m) bytes (256-byte aligned pointer). */
size_t cuda_int8_matmul_ws_bytes(const culora_quant_desc *d, int64_t m);
culora_status cuda_int8_matmul(culora_backend *be, const culora_quant_desc *d, const culora_quant_weight *q, int64_t m,
                               const void *x, int64_t ldx, const void *bias, void *y, int64_t ldy, void *ws,
                               size_t ws_bytes, cudaStream_t stream);

/* ---- gemm.cu ----------------------------------------------------------------------------- */

/* C[m,n] int32 '=' A[m,k]·B[n,k]ᵀ, int8 row-major, exact int32 accumulation (cuBLASLt). */
culora_status cuda_gemm_i8_rm(culora_backend *be, int64_t m, int64_t n, int64_t k, const int8_t *a, int64_t lda,
                              const int8_t *b, int64_t ldb, int32_t *c, int64_t ldc, void *ws, size_t ws_bytes,
                              cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_CUDA_QUANT_H */
