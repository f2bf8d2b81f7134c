/*
 * elementwise.c — CPU elementwise ops.
 */
#include "cpu_internal.h"

/* y[m,n] = alpha·x + beta·y (beta == 0: y '=', NaN in y is not propagated). */
culora_status cpu_axpby(culora_backend *be, const struct culora_axpby_args *g, culora_stream stream)
{
    (void)stream;
    const float *x = g->x;
    float *y = g->y;
    const float alpha = g->alpha, beta = g->beta;
    const int64_t m = g->m, n = g->n, ldx = g->ldx, ldy = g->ldy;
#pragma omp parallel for num_threads(cpu_threads_for(be, m * n)) schedule(static)
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            y[i * ldy + j] = beta == 0.0f ? alpha * x[i * ldx + j] : alpha * x[i * ldx + j] + beta * y[i * ldy + j];
    return CULORA_OK;
}
