/*
 * cmaes.c — CMA-ES, the standard algorithm of Hansen's tutorial (arXiv:1604.00772, Table 1 and
 * Fig. 7): positive recombination weights ln(μ+½) − ln i, cumulative step-size adaptation with
 * the h_σ stall, rank-one + rank-μ covariance update, lazy eigendecomposition (LAPACK dsyev from
 * OpenBLAS). Box bounds by reflection (cmaes.h).
 */
#include "cmaes.h"

#include "../context.h"
#include "../philox.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (OpenBLAS): symmetric eigendecomposition, gfortran calling convention with the hidden
 * lengths of the two character arguments. */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

struct culora_cmaes {
    culora_context *ctx;
    int32_t n, lambda, mu;
    double *w;                  /* [μ] recombination weights, sum 1 */
    double mueff, cc, cs, c1, cmu, damps, chin;
    double sigma;
    double *m, *pc, *ps;        /* [n] */
    double *C, *B, *invsqrtC;   /* [n·n] row-major; B's columns are eigenvectors */
    double *D;                  /* [n] square roots of the eigenvalues */
    double *lower, *upper;      /* [n] or NULL */
    double *arx, *ary;          /* [λ·n] points (repaired) and their y = (x − m)/σ */
    double *fit;                /* [λ] */
    int32_t *order;             /* [λ] */
    double *tmp, *evw, *work;   /* scratch */
    int lwork;
    double *best_x;
    double best_f;
    int64_t counteval, eigeneval, generation;
    uint64_t seed;
    bool asked;
};

/* ---------------------------------------------------------------------------------------- */

/* Standard normal number q of generation g (Box-Muller on Philox words; 53-bit uniforms). */
static double normal(uint64_t seed, uint64_t g, uint64_t q)
{
    const uint64_t pair = q >> 1;
    const uint32_t ctr[4] = {(uint32_t)pair, (uint32_t)(pair >> 32), (uint32_t)g, (uint32_t)(g >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32) ^ 0x636d6165u /* "cmae" */};
    uint32_t o[4];
    culora_philox4x32_10(ctr, key, o);
    const double u1 = ((double)(o[0] >> 5) * 67108864.0 + (double)(o[1] >> 6) + 0.5) / 9007199254740992.0;
    const double u2 = ((double)(o[2] >> 5) * 67108864.0 + (double)(o[3] >> 6) + 0.5) / 9007199254740992.0;
    const double rad = sqrt(-2.0 * log(u1)), ang = 6.283185307179586 * u2;
    return (q & 1) ? rad * sin(ang) : rad * cos(ang);
}

/* Reflects v into [lo, up]. */
static double reflect(double v, double lo, double up)
{
    const double width = up - lo;
    if (!(width > 0.0))
        return lo;
    double t = fmod(v - lo, 2.0 * width);
    if (t < 0.0)
        t += 2.0 * width;
    if (t > width)
        t = 2.0 * width - t;
    return lo + t;
}

/* B, D, C^-1/2 from C. */
static culora_status eigen_update(culora_cmaes *es)
{
    const int n = es->n;
    for (int i = 0; i < n; i++) /* symmetrise, copy into the LAPACK buffer (column-major = row-major here) */
        for (int j = 0; j <= i; j++) {
            double v = 0.5 * (es->C[i * n + j] + es->C[j * n + i]);
            es->C[i * n + j] = es->C[j * n + i] = v;
            es->tmp[i * n + j] = es->tmp[j * n + i] = v;
        }
    int info = 0;
    dsyev_("V", "U", &n, es->tmp, &n, es->evw, es->work, &es->lwork, &info, 1, 1);
    if (info != 0)
        return culora_fail(es->ctx, CULORA_ERR_NUMERIC, "cmaes: eigendecomposition of the covariance failed "
                                                        "(LAPACK dsyev info %d)", info);
    for (int j = 0; j < n; j++) {
        double ev = es->evw[j];
        if (!(ev > 1e-300))
            ev = 1e-300;
        es->D[j] = sqrt(ev);
        for (int i = 0; i < n; i++)
            es->B[i * n + j] = es->tmp[j * n + i]; /* eigenvector j is column j of tmp (column-major) */
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++)
                s += es->B[i * n + k] * es->B[j * n + k] / es->D[k];
            es->invsqrtC[i * n + j] = s;
        }
    es->eigeneval = es->counteval;
    return CULORA_OK;
}

/* ---------------------------------------------------------------------------------------- */

void culora_cmaes_destroy(culora_cmaes *es)
{
    if (es == NULL)
        return;
    double *bufs[] = {es->w, es->m, es->pc, es->ps, es->C, es->B, es->invsqrtC, es->D, es->lower, es->upper,
                      es->arx, es->ary, es->fit, es->tmp, es->evw, es->work, es->best_x};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(es->order);
    free(es);
}

culora_status culora_cmaes_create(culora_context *ctx, const struct culora_cmaes_params *p, culora_cmaes **out)
{
    if (out == NULL || p == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "cmaes: %s is NULL", out == NULL ? "out" : "params");
    *out = NULL;
    const int32_t n = p->n;
    if (n < 1 || n > 10000)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "cmaes: dimension n = %d must be in [1, 10000]", (int)n);
    if (!(p->sigma0 > 0.0) || !isfinite(p->sigma0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "cmaes: sigma0 = %g must be positive and finite", p->sigma0);
    if ((p->lower == NULL) != (p->upper == NULL))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "cmaes: give both lower and upper bounds, or neither");
    const int32_t lambda = p->popsize > 0 ? p->popsize : 4 + (int32_t)floor(3.0 * log((double)n));
    if (lambda < 2)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "cmaes: population size %d must be >= 2", (int)lambda);
    for (int32_t i = 0; p->lower != NULL && i < n; i++)
        if (!(p->lower[i] < p->upper[i]) || !isfinite(p->lower[i]) || !isfinite(p->upper[i]))
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "cmaes: bounds of coordinate %d are [%g, %g]; need lower < "
                                                            "upper, both finite",
                               (int)i, p->lower[i], p->upper[i]);

    culora_cmaes *es = calloc(1, sizeof *es);
    if (es == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "cmaes: out of memory");
    es->ctx = ctx;
    es->n = n;
    es->lambda = lambda;
    es->mu = lambda / 2;
    es->seed = p->seed;
    const size_t nn = (size_t)n * (size_t)n, ln = (size_t)lambda * (size_t)n;
    es->w = calloc((size_t)es->mu, sizeof(double));
    es->m = calloc((size_t)n, sizeof(double));
    es->pc = calloc((size_t)n, sizeof(double));
    es->ps = calloc((size_t)n, sizeof(double));
    es->C = calloc(nn, sizeof(double));
    es->B = calloc(nn, sizeof(double));
    es->invsqrtC = calloc(nn, sizeof(double));
    es->D = calloc((size_t)n, sizeof(double));
    es->arx = calloc(ln, sizeof(double));
    es->ary = calloc(ln, sizeof(double));
    es->fit = calloc((size_t)lambda, sizeof(double));
    es->order = calloc((size_t)lambda, sizeof(int32_t));
    es->tmp = calloc(nn, sizeof(double));
    es->evw = calloc((size_t)n, sizeof(double));
    es->lwork = 3 * n + 64;
    es->work = calloc((size_t)es->lwork, sizeof(double));
    es->best_x = calloc((size_t)n, sizeof(double));
    if (p->lower != NULL) {
        es->lower = malloc((size_t)n * sizeof(double));
        es->upper = malloc((size_t)n * sizeof(double));
    }
    if (!es->w || !es->m || !es->pc || !es->ps || !es->C || !es->B || !es->invsqrtC || !es->D || !es->arx ||
        !es->ary || !es->fit || !es->order || !es->tmp || !es->evw || !es->work || !es->best_x ||
        (p->lower != NULL && (!es->lower || !es->upper))) {
        culora_cmaes_destroy(es);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "cmaes: out of memory");
    }
    if (p->lower != NULL) {
        memcpy(es->lower, p->lower, (size_t)n * sizeof(double));
        memcpy(es->upper, p->upper, (size_t)n * sizeof(double));
    }

    /* Strategy parameters (tutorial, Table 1). */
    double sw = 0, sw2 = 0;
    for (int32_t i = 0; i < es->mu; i++) {
        es->w[i] = log((double)es->mu + 0.5) - log((double)i + 1.0);
        sw += es->w[i];
    }
    for (int32_t i = 0; i < es->mu; i++) {
        es->w[i] /= sw;
        sw2 += es->w[i] * es->w[i];
    }
    const double N = (double)n;
    es->mueff = 1.0 / sw2;
    es->cc = (4.0 + es->mueff / N) / (N + 4.0 + 2.0 * es->mueff / N);
    es->cs = (es->mueff + 2.0) / (N + es->mueff + 5.0);
    es->c1 = 2.0 / ((N + 1.3) * (N + 1.3) + es->mueff);
    es->cmu = fmin(1.0 - es->c1, 2.0 * (es->mueff - 2.0 + 1.0 / es->mueff) / ((N + 2.0) * (N + 2.0) + es->mueff));
    es->damps = 1.0 + 2.0 * fmax(0.0, sqrt((es->mueff - 1.0) / (N + 1.0)) - 1.0) + es->cs;
    es->chin = sqrt(N) * (1.0 - 1.0 / (4.0 * N) + 1.0 / (21.0 * N * N));
    es->sigma = p->sigma0;

    for (int32_t i = 0; i < n; i++) {
        double x = p->x0 != NULL ? p->x0[i] : 0.0;
        if (es->lower != NULL)
            x = fmin(fmax(x, es->lower[i]), es->upper[i]);
        es->m[i] = x;
        es->C[(size_t)i * (size_t)n + (size_t)i] = 1.0;
        es->B[(size_t)i * (size_t)n + (size_t)i] = 1.0;
        es->invsqrtC[(size_t)i * (size_t)n + (size_t)i] = 1.0;
        es->D[i] = 1.0;
    }
    es->best_f = INFINITY;
    *out = es;
    return CULORA_OK;
}

int32_t culora_cmaes_popsize(const culora_cmaes *es) { return es ? es->lambda : 0; }
const double *culora_cmaes_best_x(const culora_cmaes *es) { return es && isfinite(es->best_f) ? es->best_x : NULL; }
double culora_cmaes_best_f(const culora_cmaes *es) { return es ? es->best_f : INFINITY; }
const double *culora_cmaes_mean(const culora_cmaes *es) { return es ? es->m : NULL; }
double culora_cmaes_sigma(const culora_cmaes *es) { return es ? es->sigma : 0.0; }
int64_t culora_cmaes_evaluations(const culora_cmaes *es) { return es ? es->counteval : 0; }

culora_status culora_cmaes_ask(culora_cmaes *es, double *pop)
{
    if (es == NULL || pop == NULL)
        return culora_fail(es ? es->ctx : NULL, CULORA_ERR_INVALID_ARG, "cmaes_ask: %s is NULL",
                           es == NULL ? "es" : "pop");
    if (es->asked)
        return culora_fail(es->ctx, CULORA_ERR_MISUSE, "cmaes_ask: the last population has not been told yet");
    const int32_t n = es->n;
    for (int32_t k = 0; k < es->lambda; k++) {
        double *x = es->arx + (size_t)k * (size_t)n, *y = es->ary + (size_t)k * (size_t)n;
        for (int32_t j = 0; j < n; j++) /* z, scaled by D */
            es->tmp[j] = es->D[j] * normal(es->seed, (uint64_t)es->generation, (uint64_t)k * (uint64_t)n + (uint64_t)j);
        for (int32_t i = 0; i < n; i++) {
            double s = 0;
            for (int32_t j = 0; j < n; j++)
                s += es->B[(size_t)i * (size_t)n + (size_t)j] * es->tmp[j];
            x[i] = es->m[i] + es->sigma * s;
            if (es->lower != NULL)
                x[i] = reflect(x[i], es->lower[i], es->upper[i]);
            y[i] = (x[i] - es->m[i]) / es->sigma;
        }
    }
    memcpy(pop, es->arx, (size_t)es->lambda * (size_t)n * sizeof(double));
    es->asked = true;
    return CULORA_OK;
}

/* Sort order by fitness, ties by index (insertion sort: λ is small). */
static void rank(culora_cmaes *es)
{
    for (int32_t i = 0; i < es->lambda; i++)
        es->order[i] = i;
    for (int32_t i = 1; i < es->lambda; i++) {
        int32_t v = es->order[i], j = i - 1;
        while (j >= 0 && es->fit[es->order[j]] > es->fit[v]) {
            es->order[j + 1] = es->order[j];
            j--;
        }
        es->order[j + 1] = v;
    }
}

culora_status culora_cmaes_tell(culora_cmaes *es, const double *fitness)
{
    if (es == NULL || fitness == NULL)
        return culora_fail(es ? es->ctx : NULL, CULORA_ERR_INVALID_ARG, "cmaes_tell: %s is NULL",
                           es == NULL ? "es" : "fitness");
    if (!es->asked)
        return culora_fail(es->ctx, CULORA_ERR_MISUSE, "cmaes_tell: no population was asked for");
    const int32_t n = es->n, lambda = es->lambda, mu = es->mu;
    const size_t un = (size_t)n;
    for (int32_t k = 0; k < lambda; k++)
        es->fit[k] = isnan(fitness[k]) ? INFINITY : fitness[k];
    rank(es);
    es->counteval += lambda;
    es->generation++;
    es->asked = false;
    if (es->fit[es->order[0]] < es->best_f) {
        es->best_f = es->fit[es->order[0]];
        memcpy(es->best_x, es->arx + (size_t)es->order[0] * un, un * sizeof(double));
    }

    /* Mean: m = Σ w_i x_i:λ ; y_w = (m_new − m_old)/σ = Σ w_i y_i:λ */
    double *yw = es->evw; /* scratch [n] */
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int32_t r = 0; r < mu; r++)
            s += es->w[r] * es->ary[(size_t)es->order[r] * un + (size_t)i];
        yw[i] = s;
    }
    for (int32_t i = 0; i < n; i++)
        es->m[i] += es->sigma * yw[i];

    /* p_σ ← (1 − c_σ) p_σ + √(c_σ(2 − c_σ) μ_eff) C^-1/2 y_w */
    const double csn = sqrt(es->cs * (2.0 - es->cs) * es->mueff);
    double psn = 0;
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int32_t j = 0; j < n; j++)
            s += es->invsqrtC[(size_t)i * un + (size_t)j] * yw[j];
        es->ps[i] = (1.0 - es->cs) * es->ps[i] + csn * s;
        psn += es->ps[i] * es->ps[i];
    }
    psn = sqrt(psn);
    const double gens = (double)es->counteval / (double)lambda;
    const bool hsig = psn / sqrt(1.0 - pow(1.0 - es->cs, 2.0 * gens)) / es->chin < 1.4 + 2.0 / ((double)n + 1.0);

    /* p_c ← (1 − c_c) p_c + h_σ √(c_c(2 − c_c) μ_eff) y_w */
    const double ccn = sqrt(es->cc * (2.0 - es->cc) * es->mueff);
    for (int32_t i = 0; i < n; i++)
        es->pc[i] = (1.0 - es->cc) * es->pc[i] + (hsig ? ccn * yw[i] : 0.0);

    /* C ← (1 − c1 − cμ) C + c1 (p_c p_cᵀ + (1 − h_σ) c_c(2 − c_c) C) + cμ Σ w_i y_i y_iᵀ */
    const double keep = 1.0 - es->c1 - es->cmu + (hsig ? 0.0 : es->c1 * es->cc * (2.0 - es->cc));
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j <= i; j++) {
            double rmu = 0;
            for (int32_t r = 0; r < mu; r++) {
                const double *y = es->ary + (size_t)es->order[r] * un;
                rmu += es->w[r] * y[i] * y[j];
            }
            double v = keep * es->C[(size_t)i * un + (size_t)j] + es->c1 * es->pc[i] * es->pc[j] + es->cmu * rmu;
            es->C[(size_t)i * un + (size_t)j] = es->C[(size_t)j * un + (size_t)i] = v;
        }

    /* σ ← σ exp((c_σ/d_σ)(‖p_σ‖/E‖N(0,I)‖ − 1)) */
    es->sigma *= exp((es->cs / es->damps) * (psn / es->chin - 1.0));
    if (!isfinite(es->sigma) || !(es->sigma > 0.0))
        return culora_fail(es->ctx, CULORA_ERR_NUMERIC, "cmaes: step size became %g (fitness values not comparable?)",
                           es->sigma);

    /* Lazy eigendecomposition: O(n²) per generation amortised (tutorial, Fig. 7). */
    if ((double)(es->counteval - es->eigeneval) > (double)lambda / (es->c1 + es->cmu) / (double)n / 10.0)
        return eigen_update(es);
    return CULORA_OK;
}
