/*
 * cuda_backend.h — state and helpers shared by the CUDA backend (host/cuda/) and the kernel
 * files (kernels/ (.cu files)). C-compatible; includes the CUDA runtime and cuBLASLt headers, so only
 * CUDA-side files include it.
 */
#ifndef CULORA_HOST_CUDA_BACKEND_H
#define CULORA_HOST_CUDA_BACKEND_H

#include "../backend.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lt_plan; /* gemm plan cache entry (kernels/gemm.cu) */

struct cuda_impl {
    int device;
    cudaStream_t stream;       /* default stream */
    int owns_stream;
    cublasLtHandle_t lt;
    struct lt_plan *plans;     /* cuBLASLt descriptors + algorithm, cached per shape key */
    int n_plans, cap_plans;
};

static inline struct cuda_impl *cuda_impl_of(culora_backend *be) { return (struct cuda_impl *)be->impl; }

/* Records a CUDA error on the context (sticky for errors that poison the context) and returns
 * CULORA_ERR_CUDA. Clears the non-sticky error state. */
culora_status culora_cuda_fail(culora_backend *be, cudaError_t err, const char *what, const char *file, int line);
/* Records a cuBLASLt error and returns CULORA_ERR_CUBLAS. */
culora_status culora_cublas_fail(culora_backend *be, cublasStatus_t st, const char *what, const char *file,
                                 int line);

#define CULORA_CUDA_TRY(be, call)                                                  \
    do {                                                                           \
        cudaError_t culora_cuda_e_ = (call);                                       \
        if (culora_cuda_e_ != cudaSuccess)                                         \
            return culora_cuda_fail((be), culora_cuda_e_, #call, __FILE__, __LINE__); \
    } while (0)

#define CULORA_CUBLAS_TRY(be, call)                                                \
    do {                                                                           \
        cublasStatus_t culora_cublas_s_ = (call);                                  \
        if (culora_cublas_s_ != CUBLAS_STATUS_SUCCESS)                             \
            return culora_cublas_fail((be), culora_cublas_s_, #call, __FILE__, __LINE__); \
    } while (0)

/* Row-major GEMM on the stream through the cached cuBLASLt plan (kernels/gemm.cu):
 *   C[m,n] = alpha·op(A)·op(B) (+ bias[n] per row) + beta·C,  fp32 accumulation.
 * Types: A, B bf16 with C bf16 or f32; or all f32. ws/ws_bytes: cuBLASLt workspace. */
culora_status cuda_gemm_rm(culora_backend *be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                           float alpha, const void *a, int64_t lda, culora_dtype a_type, const void *b,
                           int64_t ldb, culora_dtype b_type, float beta, void *c, int64_t ldc, culora_dtype c_type,
                           const void *bias, void *ws, size_t ws_bytes, cudaStream_t stream);
/* Strided batch of the same GEMM: product i uses a + i·stride_a, b + i·stride_b, c + i·stride_c
 * (element strides). batch NULL or count 1: one product (cuda_gemm_rm). */
struct cuda_gemm_batch {
    int32_t count;
    int64_t stride_a, stride_b, stride_c;
};
culora_status cuda_gemm_rm_batched(culora_backend *be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                   float alpha, const void *a, int64_t lda, culora_dtype a_type, const void *b,
                                   int64_t ldb, culora_dtype b_type, float beta, void *c, int64_t ldc,
                                   culora_dtype c_type, const void *bias, const struct cuda_gemm_batch *batch,
                                   void *ws, size_t ws_bytes, cudaStream_t stream);
void cuda_gemm_plans_destroy(struct cuda_impl *impl);

/* Op entries (filled into the backend table by backend_cuda.c). */
culora_status cuda_gemm(culora_backend *be, const struct culora_gemm_args *args, const culora_workspace *ws,
                        culora_stream stream);
culora_status cuda_axpby(culora_backend *be, const struct culora_axpby_args *args, culora_stream stream);
culora_status cuda_lora_linear_workspace(culora_backend *be, const culora_lora_linear_desc *desc,
                                         size_t *fwd_bytes, size_t *bwd_bytes);
culora_status cuda_lora_linear_fwd(culora_backend *be, const culora_lora_linear_desc *desc,
                                   const culora_lora_linear_fwd_args *args, const culora_workspace *ws,
                                   culora_stream stream);
culora_status cuda_lora_linear_bwd(culora_backend *be, const culora_lora_linear_desc *desc,
                                   const culora_lora_linear_bwd_args *args, const culora_workspace *ws,
                                   culora_stream stream);
culora_status cuda_lora_merge(culora_backend *be, const struct culora_lora_merge_args *args,
                              const culora_workspace *ws, culora_stream stream);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_CUDA_BACKEND_H */
