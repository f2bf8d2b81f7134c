/*
 * cross_entropy.c — CPU reference of the fused softmax + cross-entropy with ignore-index.
 *
 *   lse_i = logsumexp(logits[i,:V]);  loss_i = lse_i − logits[i, target_i]  (rows with a target)
 *   loss = Σ loss_i / n_valid          dlogits[i,j] = grad_scale·(exp(logits[i,j] − lse_i) − [j = target_i]) / den
 * Rows in parallel (fp64 math), then the loss summed over rows in order. A bad target (not the
 * ignore index, outside [0,V)) gives NaN for that row's loss and dlogits. dlogits may be logits.
 * Workspace (host): lse and loss of every row, fp64.
 */
#include "cpu_nn.h"

#include <math.h>

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
    double *lse = ws->ptr, *row_loss = lse + n;
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *x = (const float *)a->logits + i * a->ldlogits;
        const int64_t t = a->targets[i];
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < V; j++)
            mx = x[j] > mx ? x[j] : mx;
        for (int64_t j = 0; j < V; j++)
            sum += exp((double)x[j] - mx);
        lse[i] = mx + log(sum);
        if (t == a->ignore_index)
            row_loss[i] = 0.0;
        else if (t < 0 || t >= V)
            row_loss[i] = NAN;
        else
            row_loss[i] = lse[i] - x[t];
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
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *x = (const float *)a->logits + i * a->ldlogits;
        float *dx = (float *)a->dlogits + i * a->lddlogits;
        const int64_t t = a->targets[i];
        if (t == a->ignore_index || den == 0) {
            for (int64_t j = 0; j < V; j++)
                dx[j] = 0.0f;
        } else if (t < 0 || t >= V) {
            for (int64_t j = 0; j < V; j++)
                dx[j] = NAN;
        } else {
            for (int64_t j = 0; j < V; j++)
                dx[j] = (float)(scale * (exp((double)x[j] - lse[i]) - (j == t ? 1.0 : 0.0)));
        }
    }
    return CULORA_OK;
}
