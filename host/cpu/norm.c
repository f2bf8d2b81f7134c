/*
 * norm.c — CPU reference of LayerNorm, RMSNorm (forward, backward) and the bias gradient.
 *
 * LayerNorm  out = (x − mean)·rstd·gamma + beta,  rstd = 1/sqrt(var + eps)   (biased variance)
 * RMSNorm    out = x·rstd·gamma,                  rstd = 1/sqrt(mean(x²) + eps)
 * Backward, xhat = (x − mean)·rstd (RMSNorm: x·rstd), g = dout·gamma:
 *   LayerNorm dx = rstd·(g − mean(g) − xhat·mean(g·xhat))      RMSNorm dx = rstd·(g − xhat·mean(g·xhat))
 *   dgamma += Σ_rows dout·xhat,  dbeta += Σ_rows dout                   (fp32 '+=')
 * Row statistics in fp64; the saved mean/rstd are fp32 and the backward uses those, as the CUDA
 * backend does. Column sums (dgamma, dbeta, dbias) split the columns among threads and walk the
 * rows in order: deterministic for any thread count.
 */
#include "cpu_nn.h"

#include <math.h>

/* ---- forward ----------------------------------------------------------------------------------- */

culora_status cpu_layernorm_fwd(culora_backend *be, const struct culora_nn_layernorm_args *a, culora_stream s)
{
    (void)s;
    const int64_t n = a->n, c = a->c;
    const float *gamma = a->gamma, *beta = a->beta;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * a->c)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *x = (const float *)a->x + i * a->ldx;
        float *o = (float *)a->out + i * a->ldout;
        double sum = 0.0, sq = 0.0;
        for (int64_t j = 0; j < c; j++)
            sum += x[j];
        const double mean = sum / (double)c;
        for (int64_t j = 0; j < c; j++)
            sq += ((double)x[j] - mean) * ((double)x[j] - mean);
        const double rstd = 1.0 / sqrt(sq / (double)c + (double)a->eps);
        for (int64_t j = 0; j < c; j++)
            o[j] = (float)(((double)x[j] - mean) * rstd * gamma[j] + (beta ? beta[j] : 0.0f));
        if (a->mean)
            a->mean[i] = (float)mean;
        if (a->rstd)
            a->rstd[i] = (float)rstd;
    }
    return CULORA_OK;
}

culora_status cpu_rmsnorm_fwd(culora_backend *be, const struct culora_nn_rmsnorm_args *a, culora_stream s)
{
    (void)s;
    const int64_t n = a->n, c = a->c;
    const float *gamma = a->gamma;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * a->c)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *x = (const float *)a->x + i * a->ldx;
        float *o = (float *)a->out + i * a->ldout;
        double sq = 0.0;
        for (int64_t j = 0; j < c; j++)
            sq += (double)x[j] * x[j];
        const double rstd = 1.0 / sqrt(sq / (double)c + (double)a->eps);
        for (int64_t j = 0; j < c; j++)
            o[j] = (float)((double)x[j] * rstd * gamma[j]);
        if (a->rstd)
            a->rstd[i] = (float)rstd;
    }
    return CULORA_OK;
}

/* ---- backward ---------------------------------------------------------------------------------- */

/* dx for one row; mean == NULL: RMSNorm. */
static void norm_dx_row(const float *x, const float *gamma, const float *dout, float *dx, int64_t c, const float *mean,
                        float rstd, bool accumulate)
{
    const double mu = mean ? (double)*mean : 0.0, r = rstd;
    double sum_g = 0.0, sum_gx = 0.0;
    for (int64_t j = 0; j < c; j++) {
        const double xhat = ((double)x[j] - mu) * r, g = (double)dout[j] * gamma[j];
        sum_g += g;
        sum_gx += g * xhat;
    }
    const double mean_g = mean ? sum_g / (double)c : 0.0, mean_gx = sum_gx / (double)c;
    for (int64_t j = 0; j < c; j++) {
        const double xhat = ((double)x[j] - mu) * r, g = (double)dout[j] * gamma[j];
        const double d = r * (g - mean_g - xhat * mean_gx);
        dx[j] = accumulate ? (float)(dx[j] + d) : (float)d;
    }
}

/* dgamma[j] += Σ_i dout[i,j]·xhat[i,j] and dbeta[j] += Σ_i dout[i,j] (either may be NULL);
 * xhat from mean (NULL: RMSNorm) and rstd; x NULL: plain column sums of dout (the bias). */
static void norm_param_grads(const culora_backend *be, int64_t n, int64_t c, const float *x, int64_t ldx,
                             const float *mean, const float *rstd, const float *dout, int64_t lddout, float *dgamma,
                             float *dbeta)
{
    const int64_t chunk = 64;
    const int64_t n_chunks = (c + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * c)) schedule(static)
    for (int64_t cb = 0; cb < n_chunks; cb++) {
        const int64_t j0 = cb * chunk, j1 = j0 + chunk < c ? j0 + chunk : c;
        double sg[64] = {0}, sb[64] = {0};
        for (int64_t i = 0; i < n; i++) {
            const float *dy = dout + i * lddout;
            const float *xr = x ? x + i * ldx : NULL;
            const double mu = mean ? (double)mean[i] : 0.0, r = rstd ? (double)rstd[i] : 0.0;
            for (int64_t j = j0; j < j1; j++) {
                sb[j - j0] += dy[j];
                if (xr)
                    sg[j - j0] += (double)dy[j] * (((double)xr[j] - mu) * r);
            }
        }
        for (int64_t j = j0; j < j1; j++) {
            if (dgamma)
                dgamma[j] = (float)(dgamma[j] + sg[j - j0]);
            if (dbeta)
                dbeta[j] = (float)(dbeta[j] + sb[j - j0]);
        }
    }
}

culora_status cpu_layernorm_bwd(culora_backend *be, const struct culora_nn_layernorm_bwd_args *a,
                                const culora_workspace *ws, culora_stream s)
{
    (void)ws;
    (void)s;
    const int64_t n = a->n, c = a->c;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * a->c)) schedule(static)
    for (int64_t i = 0; i < n; i++)
        norm_dx_row((const float *)a->x + i * a->ldx, a->gamma, (const float *)a->dout + i * a->lddout,
                    (float *)a->dx + i * a->lddx, c, &a->mean[i], a->rstd[i], a->accumulate_dx);
    if (a->dgamma || a->dbeta)
        norm_param_grads(be, n, c, a->x, a->ldx, a->mean, a->rstd, a->dout, a->lddout, a->dgamma, a->dbeta);
    return CULORA_OK;
}

culora_status cpu_rmsnorm_bwd(culora_backend *be, const struct culora_nn_rmsnorm_bwd_args *a,
                              const culora_workspace *ws, culora_stream s)
{
    (void)ws;
    (void)s;
    const int64_t n = a->n, c = a->c;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * a->c)) schedule(static)
    for (int64_t i = 0; i < n; i++)
        norm_dx_row((const float *)a->x + i * a->ldx, a->gamma, (const float *)a->dout + i * a->lddout,
                    (float *)a->dx + i * a->lddx, c, NULL, a->rstd[i], a->accumulate_dx);
    if (a->dgamma)
        norm_param_grads(be, n, c, a->x, a->ldx, NULL, a->rstd, a->dout, a->lddout, a->dgamma, NULL);
    return CULORA_OK;
}

culora_status cpu_bias_grad(culora_backend *be, const struct culora_nn_bias_grad_args *a, const culora_workspace *ws,
                            culora_stream s)
{
    (void)ws;
    (void)s;
    norm_param_grads(be, a->n, a->c, NULL, 0, NULL, NULL, a->dy, a->lddy, NULL, a->dbias);
    return CULORA_OK;
}
