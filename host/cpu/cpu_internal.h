/*
 * cpu_internal.h — shared by the CPU backend's files (host/cpu/). fp32 everywhere.
 */
#ifndef CULORA_HOST_CPU_INTERNAL_H
#define CULORA_HOST_CPU_INTERNAL_H

#include "../backend.h"

struct cpu_impl {
    int n_threads; /* OpenMP threads for our loops (>= 1) */
};

static inline int cpu_threads(const culora_backend *be)
{
    return ((const struct cpu_impl *)be->impl)->n_threads;
}

/* Below this many element operations a loop runs on the calling thread: an OpenMP team costs
 * more than it saves there, and on a loaded machine (CI running tests in parallel) every team
 * waits for a descheduled worker, which made small models 60x slower. */
#define CPU_PARALLEL_MIN_WORK 65536

/* Threads for a loop of `work` element operations. */
static inline int cpu_threads_for(const culora_backend *be, int64_t work)
{
    return work < CPU_PARALLEL_MIN_WORK ? 1 : cpu_threads(be);
}

/* Marks a vectorisable loop function to be compiled for AVX-512, AVX2 and the baseline, the best
 * picked at load time (GCC on x86-64; elsewhere one version). The same operations in each: ISO C
 * contracts no FMAs, so only the lane grouping of vectorised reductions can differ. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CPU_SIMD_CLONES
#endif

/* lora_linear.c */
culora_status cpu_lora_linear_workspace(culora_backend *be, const culora_lora_linear_desc *desc,
                                        size_t *fwd_bytes, size_t *bwd_bytes);
culora_status cpu_lora_linear_fwd(culora_backend *be, const culora_lora_linear_desc *desc,
                                  const culora_lora_linear_fwd_args *args, const culora_workspace *ws,
                                  culora_stream stream);
culora_status cpu_lora_linear_bwd(culora_backend *be, const culora_lora_linear_desc *desc,
                                  const culora_lora_linear_bwd_args *args, const culora_workspace *ws,
                                  culora_stream stream);
culora_status cpu_lora_merge(culora_backend *be, const struct culora_lora_merge_args *args,
                             const culora_workspace *ws, culora_stream stream);

/* gemm.c */
culora_status cpu_gemm(culora_backend *be, const struct culora_gemm_args *args, const culora_workspace *ws,
                       culora_stream stream);
/* Row-major C[m,n] = alpha·op(A)·op(B) + beta·C in fp32 (OpenBLAS). */
void cpu_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* elementwise.c */
culora_status cpu_axpby(culora_backend *be, const struct culora_axpby_args *args, culora_stream stream);

#endif /* CULORA_HOST_CPU_INTERNAL_H */
