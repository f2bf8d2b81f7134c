/*
 * optim.c — CPU reference of AdamW, the global gradient norm and the master-weight cast.
 *
 * AdamW follows torch.optim.AdamW's single-tensor step operation by operation in fp32:
 *   p *= 1 − lr·wd;  m += (1−β1)·(g − m)  (torch lerp);  v = v·β2 + (1−β2)·g·g  (addcmul)
 *   p += −(lr/bc1)·(m / (sqrt(v)/sqrt(bc2) + eps))          bc_i = 1 − β_i^step in fp64
 * Grad norm: fp64 sums over fixed 64Ki-element chunks (in parallel), then the chunks in order.
 */
#include "cpu_nn.h"

#include <math.h>
#include <string.h>

culora_status cpu_adamw(culora_backend *be, const struct culora_nn_adamw_args *a, culora_stream s)
{
    (void)s;
    const double bc1 = 1.0 - pow(a->beta1, (double)a->step);
    const double bc2 = 1.0 - pow(a->beta2, (double)a->step);
    const float decay = (float)(1.0 - a->lr * a->weight_decay);
    const float w1 = (float)(1.0 - a->beta1), w2 = (float)(1.0 - a->beta2);
    const float step_size = (float)(a->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float beta2 = (float)a->beta2, eps = (float)a->eps, gs = a->grad_scale;
    float *p = a->param, *m = a->m, *v = a->v, *copy = a->param_copy;
    const float *grad = a->grad;
#pragma omp parallel for num_threads(cpu_threads_for(be, a->n)) schedule(static)
    for (int64_t i = 0; i < a->n; i++) {
        const float g = grad[i] * gs;
        float pi = p[i] * decay;
        const float mi = m[i] + w1 * (g - m[i]);
        const float vi = v[i] * beta2 + (w2 * g) * g;
        const float denom = sqrtf(vi) / bc2_sqrt + eps;
        pi = pi + (-step_size) * (mi / denom);
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
        if (copy)
            copy[i] = pi;
    }
    return CULORA_OK;
}

#define NORM_CHUNK ((int64_t)1 << 16)

culora_status cpu_grad_norm_workspace(culora_backend *be, const struct culora_nn_grad_norm_args *a,
                                      struct culora_nn_ws *ws)
{
    (void)be;
    ws->min_bytes = ws->full_bytes = (size_t)((a->n + NORM_CHUNK - 1) / NORM_CHUNK) * sizeof(double);
    return CULORA_OK;
}

culora_status cpu_grad_norm(culora_backend *be, const struct culora_nn_grad_norm_args *a, const culora_workspace *ws,
                            culora_stream s)
{
    (void)s;
    const int64_t n = a->n, chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double *part = ws->ptr;
#pragma omp parallel for num_threads(cpu_threads_for(be, n)) schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * NORM_CHUNK, i1 = i0 + NORM_CHUNK < n ? i0 + NORM_CHUNK : n;
        double sq = 0.0;
        for (int64_t i = i0; i < i1; i++)
            sq += (double)a->grad[i] * a->grad[i];
        part[c] = sq;
    }
    double total = 0.0;
    for (int64_t c = 0; c < chunks; c++)
        total += part[c];
    *a->norm = (float)sqrt(total);
    return CULORA_OK;
}

culora_status cpu_cast(culora_backend *be, const struct culora_nn_cast_args *a, culora_stream s)
{
    (void)be;
    (void)s;
    memcpy(a->dst, a->src, (size_t)a->n * sizeof(float)); /* the CPU storage dtype is fp32 */
    return CULORA_OK;
}
