/*
 * cross_entropy.c — CPU reference of the fused softmax + cross-entropy with ignore-index.
 *
 *   lse_i = logsumexp(logits[i,:V]);  loss_i = lse_i − logits[i, target_i]  (rows with a target)
 *   loss = Σ loss_i / n_valid          dlogits[i,j] = grad_scale·(exp(logits[i,j] − lse_i) − [j = target_i]) / den
 * Rows in parallel: e_j = exp(x_j − max) once per logit (kept in dlogits when it is wanted, so
 * the gradient costs no second exp) by exp_nonpos below, which the compiler vectorises; summed in
 * fp32 over blocks of 256 and the blocks in fp64; then the loss is summed over rows in order and
 * the kept e_j are scaled by grad_scale/(den·Σe). A bad target (not the ignore index, outside
 * [0,V)) gives NaN for that row's loss and dlogits. dlogits may be logits (each x_j is read before
 * its e_j is written; the target logit is read first).
 * Workspace (host): Σe and the loss of every row, fp64.
 */
#include "cpu_nn.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x for x <= 0 (a logit minus its row's max), written so that the compiler vectorises it (libm's
 * expf is a call per element, the largest cost of a GPT-2 step on the CPU): x = n·ln2 + r with
 * |r| <= ln2/2 (n rounded by the 1.5·2^23 trick, ln2 in two parts as Cody and Waite), e^r by its
 * degree-7 Taylor polynomial (truncation < 2^-27 relative; with rounding about 1 ulp from expf),
 * 2^n from the exponent bits. Below −87 the result is 0 where expf gives a denormal: below 2^-125
 * of the row's largest term, which is 1. NaN stays NaN. */
static inline float exp_nonpos(float x)
{
    const float xc = x < -87.0f ? -87.0f : x;
    const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    const float y = x < -87.0f ? 0.0f : p * two_n;
    return x != x ? x : y;
}

/* One row: mx = max_j x_j, e_j = exp(x_j − mx) (stored when e is not NULL), returns Σ e_j, summed
 * in fp32 over blocks of 256 (terms <= 1) and in fp64 across blocks. Compiled for AVX-512, AVX2 and
 * the baseline, picked at load time: the same operations in each (no FMA contraction in ISO C), only
 * the lanes of the fp32 block sums differ. */
CPU_SIMD_CLONES static double row_exp_sum(const float *x, float *e, int64_t V, float *mx_out)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < V; j++)
        mx = x[j] > mx ? x[j] : mx;
    double sum = 0.0;
    for (int64_t j0 = 0; j0 < V; j0 += 256) {
        const int64_t j1 = j0 + 256 < V ? j0 + 256 : V;
        float part = 0.0f;
        if (e) {
#pragma omp simd reduction(+ : part)
            for (int64_t j = j0; j < j1; j++) {
                const float ej = exp_nonpos(x[j] - mx);
                e[j] = ej;
                part += ej;
            }
        } else {
#pragma omp simd reduction(+ : part)
            for (int64_t j = j0; j < j1; j++)
                part += exp_nonpos(x[j] - mx);
        }
        sum += part;
    }
    *mx_out = mx;
    return sum;
}

culora_status cpu_cross_entropy_workspace(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                          struct culora_nn_ws *ws)
{
    (void)be;
    ws->min_bytes = ws->full_bytes = 2 * (size_t)a->n * sizeof(double);
    return CULORA_OK;
}

culora_status cpu_cross_entropy(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                const culora_workspace *ws, culora_stream s)
{
    (void)s;
    const int64_t n = a->n, V = a->vocab;
    double *sum_e = ws->ptr, *row_loss = sum_e + n;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * a->vocab)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *x = (const float *)a->logits + i * a->ldlogits;
        float *e = a->dlogits ? (float *)a->dlogits + i * a->lddlogits : NULL;
        const int64_t t = a->targets[i];
        const bool has_t = t != a->ignore_index && t >= 0 && t < V;
        const float xt = has_t ? x[t] : 0.0f;
        float mx;
        const double sum = row_exp_sum(x, e, V, &mx);
        sum_e[i] = sum;
        const double lse = mx + log(sum);
        row_loss[i] = t == a->ignore_index ? 0.0 : has_t ? lse - xt : NAN;
    }
    double total = 0.0;
    int64_t valid = 0;
    for (int64_t i = 0; i < n; i++)
        if (a->targets[i] != a->ignore_index) {
            total += row_loss[i];
            valid++;
        }
    *a->loss = valid > 0 ? (float)(total / (double)valid) : 0.0f;
    if (a->n_valid)
        *a->n_valid = (int32_t)valid;
    if (a->losses)
        for (int64_t i = 0; i < n; i++)
            a->losses[i] = (float)row_loss[i];
    if (a->dlogits == NULL)
        return CULORA_OK;
    const int64_t den = a->grad_denominator > 0 ? a->grad_denominator : valid;
    const double scale = den > 0 ? (double)a->grad_scale / (double)den : 0.0;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * a->vocab)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *d = (float *)a->dlogits + i * a->lddlogits;
        const int64_t t = a->targets[i];
        if (t == a->ignore_index || den == 0) {
            for (int64_t j = 0; j < V; j++)
                d[j] = 0.0f;
        } else if (t < 0 || t >= V) {
            for (int64_t j = 0; j < V; j++)
                d[j] = NAN;
        } else {
            const double f = scale / sum_e[i];
            const double et = d[t];
            for (int64_t j = 0; j < V; j++)
                d[j] = (float)(d[j] * f);
            d[t] = (float)(et * f - scale); /* − scale·1 for the target, in fp64 */
        }
    }
    return CULORA_OK;
}
