/*
 * gemm.c — CPU GEMM: row-major fp32 through OpenBLAS cblas_sgemm.
 */
#include "cpu_internal.h"

#include <cblas.h>

void cpu_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c,
                (blasint)ldc);
}

culora_status cpu_gemm(culora_backend *be, const struct culora_gemm_args *g, const culora_workspace *ws,
                       culora_stream stream)
{
    (void)ws;
    (void)stream;
    if (g->a_dtype != CULORA_DTYPE_F32 || g->b_dtype != CULORA_DTYPE_F32 || g->c_dtype != CULORA_DTYPE_F32)
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED, "gemm: the cpu backend computes f32 x f32 -> f32 only");
    if (g->m > INT32_MAX || g->n > INT32_MAX || g->k > INT32_MAX || g->lda > INT32_MAX || g->ldb > INT32_MAX ||
        g->ldc > INT32_MAX)
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED, "gemm: dimensions above 2^31-1 are not supported");
    float *c = g->c;
    float beta = g->beta;
    cpu_sgemm(g->trans_a, g->trans_b, g->m, g->n, g->k, g->alpha, g->a, g->lda, g->b, g->ldb, beta, c, g->ldc);
    if (g->bias != NULL) {
        const float *bias = g->bias;
        const int64_t m = g->m, n = g->n, ldc = g->ldc;
#pragma omp parallel for num_threads(cpu_threads_for(be, m * n)) schedule(static)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] += bias[j];
    }
    return CULORA_OK;
}
