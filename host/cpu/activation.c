/*
 * activation.c — CPU reference of GELU (tanh approximation), SwiGLU and the residual add.
 *
 *   gelu(x)   = 0.5·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
 *   gelu'(x)  = 0.5·(1 + tanh(u)) + 0.5·x·(1 − tanh²(u))·√(2/π)·(1 + 3·0.044715·x²)
 *   swiglu    y = silu(g)·up, silu(g) = g·σ(g);  dg = dy·up·σ(g)·(1 + g·(1 − σ(g))), dup = dy·silu(g)
 *   add       out = a + b
 * fp64 math per element, rounded once. Exact in-place aliases are safe (read before write).
 */
#include "cpu_nn.h"

#include <math.h>

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_C 0.044715

static double gelu(double x)
{
    return 0.5 * x * (1.0 + tanh(GELU_K * (x + GELU_C * x * x * x)));
}

static double gelu_grad(double x)
{
    const double t = tanh(GELU_K * (x + GELU_C * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x * x);
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

culora_status cpu_gelu_fwd(culora_backend *be, const struct culora_nn_gelu_args *a, culora_stream s)
{
    (void)s;
#pragma omp parallel for num_threads(cpu_threads_for(be, a->n * a->c)) schedule(static)
    for (int64_t i = 0; i < a->n; i++) {
        const float *x = (const float *)a->x + i * a->ldx;
        float *y = (float *)a->y + i * a->ldy;
        for (int64_t j = 0; j < a->c; j++)
            y[j] = (float)gelu(x[j]);
    }
    return CULORA_OK;
}

culora_status cpu_gelu_bwd(culora_backend *be, const struct culora_nn_gelu_bwd_args *a, culora_stream s)
{
    (void)s;
#pragma omp parallel for num_threads(cpu_threads_for(be, a->n * a->c)) schedule(static)
    for (int64_t i = 0; i < a->n; i++) {
        const float *x = (const float *)a->x + i * a->ldx, *dy = (const float *)a->dy + i * a->lddy;
        float *dx = (float *)a->dx + i * a->lddx;
        for (int64_t j = 0; j < a->c; j++)
            dx[j] = (float)((double)dy[j] * gelu_grad(x[j]));
    }
    return CULORA_OK;
}

culora_status cpu_swiglu_fwd(culora_backend *be, const struct culora_nn_swiglu_args *a, culora_stream s)
{
    (void)s;
#pragma omp parallel for num_threads(cpu_threads_for(be, a->n * a->c)) schedule(static)
    for (int64_t i = 0; i < a->n; i++) {
        const float *g = (const float *)a->gate + i * a->ldgate, *u = (const float *)a->up + i * a->ldup;
        float *y = (float *)a->y + i * a->ldy;
        for (int64_t j = 0; j < a->c; j++)
            y[j] = (float)((double)g[j] * sigmoid(g[j]) * u[j]);
    }
    return CULORA_OK;
}

culora_status cpu_swiglu_bwd(culora_backend *be, const struct culora_nn_swiglu_bwd_args *a, culora_stream s)
{
    (void)s;
#pragma omp parallel for num_threads(cpu_threads_for(be, a->n * a->c)) schedule(static)
    for (int64_t i = 0; i < a->n; i++) {
        const float *g = (const float *)a->gate + i * a->ldgate, *u = (const float *)a->up + i * a->ldup,
                    *dy = (const float *)a->dy + i * a->lddy;
        float *dg = (float *)a->dgate + i * a->lddgate, *du = (float *)a->dup + i * a->lddup;
        for (int64_t j = 0; j < a->c; j++) {
            const double gv = g[j], uv = u[j], d = dy[j], sg = sigmoid(gv);
            dg[j] = (float)(d * uv * sg * (1.0 + gv * (1.0 - sg)));
            du[j] = (float)(d * gv * sg);
        }
    }
    return CULORA_OK;
}

culora_status cpu_add(culora_backend *be, const struct culora_nn_add_args *a, culora_stream s)
{
    (void)s;
#pragma omp parallel for num_threads(cpu_threads_for(be, a->n * a->c)) schedule(static)
    for (int64_t i = 0; i < a->n; i++) {
        const float *x = (const float *)a->a + i * a->lda, *y = (const float *)a->b + i * a->ldb;
        float *o = (float *)a->out + i * a->ldout;
        for (int64_t j = 0; j < a->c; j++)
            o[j] = x[j] + y[j];
    }
    return CULORA_OK;
}
