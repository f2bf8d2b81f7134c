/*
 * activation.c — CPU reference of GELU (tanh approximation), SwiGLU and the residual add.
 *
 *   gelu(x)   = 0.5·x·(1 + tanh(u)) = x·σ(2u),  u = √(2/π)·(x + 0.044715·x³)
 *   gelu'(x)  = σ(2u) + 2·x·σ(2u)·(1 − σ(2u))·√(2/π)·(1 + 3·0.044715·x²)
 *   swiglu    y = silu(g)·up, silu(g) = g·σ(g);  dg = dy·up·σ(g)·(1 + g·(1 − σ(g))), dup = dy·silu(g)
 *   add       out = a + b
 * fp64 math per element, rounded once. σ(z) = 1/(1 + e^−z) with e^−z from exp_f64 below, which the
 * compiler vectorises (libm's tanh/exp are a call per element: GELU took ~40 ns an element, the
 * largest cost of a GPT-2 step on the CPU after the GEMMs). Exact in-place aliases are safe (read
 * before write).
 */
#include "cpu_nn.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_C 0.044715

/* e^a for a clamped to [−708, 708] (σ is then 0 or 1 to far below fp32 resolution), written so
 * that the compiler vectorises it: a = n·ln2 + r with |r| <= ln2/2 (n rounded by adding 1.5·2^52,
 * which also leaves n in the low bits; ln2 in two parts as fdlibm), e^r by its degree-11 Taylor
 * polynomial (truncation < 7e-15 relative, far below the fp32 rounding of the results), 2^n from
 * the exponent bits. NaN stays NaN. */
static inline double exp_f64(double a)
{
    const double ac = a < -708.0 ? -708.0 : a > 708.0 ? 708.0 : a;
    const double shifter = 6755399441055744.0; /* 1.5·2^52 */
    const double t = ac * 1.4426950408889634 + shifter;
    const double n = t - shifter;
    const double r = (ac - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t tb, sb;
    memcpy(&tb, &t, sizeof tb);
    memcpy(&sb, &shifter, sizeof sb);
    const int64_t bits = (tb - sb + 1023) << 52; /* n + 1023 in [1, 2045]: a normal 2^n */
    double two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return a != a ? a : p * two_n;
}

/* e^−2u of GELU's tanh argument u, so that σ(2u) = 1/(1 + e^−2u). */
static inline double gelu_exp_m2u(double v) { return exp_f64(-2.0 * GELU_K * (v + GELU_C * v * v * v)); }

/* Row loops over c elements (CPU_SIMD_CLONES: AVX-512, AVX2 and baseline versions). */
CPU_SIMD_CLONES static void gelu_row(const float *x, float *y, int64_t c)
{
#pragma omp simd
    for (int64_t j = 0; j < c; j++) {
        const double v = x[j];
        const double s = 1.0 / (1.0 + gelu_exp_m2u(v));
        y[j] = (float)(v * s);
    }
}

CPU_SIMD_CLONES static void gelu_bwd_row(const float *x, const float *dy, float *dx, int64_t c)
{
#pragma omp simd
    for (int64_t j = 0; j < c; j++) {
        const double v = x[j];
        const double e = gelu_exp_m2u(v);
        const double s = 1.0 / (1.0 + e), one_minus_s = e * s;
        dx[j] = (float)((double)dy[j] * (s + 2.0 * v * s * one_minus_s * GELU_K * (1.0 + 3.0 * GELU_C * v * v)));
    }
}

CPU_SIMD_CLONES static void swiglu_row(const float *g, const float *u, float *y, int64_t c)
{
#pragma omp simd
    for (int64_t j = 0; j < c; j++) {
        const double gv = g[j];
        y[j] = (float)(gv / (1.0 + exp_f64(-gv)) * u[j]);
    }
}

CPU_SIMD_CLONES static void swiglu_bwd_row(const float *g, const float *u, const float *dy, float *dg,
                                           float *du, int64_t c)
{
#pragma omp simd
    for (int64_t j = 0; j < c; j++) {
        const double gv = g[j], uv = u[j], d = dy[j];
        const double e = exp_f64(-gv), sg = 1.0 / (1.0 + e), one_minus_sg = e * sg;
        dg[j] = (float)(d * uv * sg * (1.0 + gv * one_minus_sg));
        du[j] = (float)(d * gv * sg);
    }
}

culora_status cpu_gelu_fwd(culora_backend *be, const struct culora_nn_gelu_args *a, culora_stream s)
{
    (void)s;
#pragma omp parallel for num_threads(cpu_threads_for(be, a->n * a->c)) schedule(static)
    for (int64_t i = 0; i < a->n; i++) {
        const float *x = (const float *)a->x + i * a->ldx;
        float *y = (float *)a->y + i * a->ldy;
        gelu_row(x, y, a->c);
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
        gelu_bwd_row(x, dy, dx, a->c);
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
        swiglu_row(g, u, y, a->c);
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
        swiglu_bwd_row(g, u, dy, dg, du, a->c);
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
