/*
 * hub_search.c — the two searches of culora_hub_run (culora_hub.h).
 *
 * CMA: ask λ points in [-bound, bound]^N (cmaes.c reflects samples into the box), score them —
 *   one segmented forward per population when batched —, tell; until `budget` evaluations. A last
 *   partial population is scored but not told (CMA-ES updates need all λ fitnesses).
 * GRAD: Adam (β 0.9/0.999, ε 1e-8, torch's formula) on w for `budget` steps, each step one
 *   forward+backward of the examples; the objective's L1 term contributes l1·sign(wᵢ)/N; w is
 *   clipped to the box after every update. Start: wᵢ = 1/N (see culora_hub.h for why not 0).
 * Both return the best evaluated point.
 */
#define _POSIX_C_SOURCE 200809L
#include "hub_internal.h"
#include "cmaes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct best {
    double *w;
    double objective, loss;
};

static void consider(struct best *b, int32_t n, const double *w, double objective, double loss)
{
    if (!(objective < b->objective)) /* NaN never wins */
        return;
    b->objective = objective;
    b->loss = loss;
    memcpy(b->w, w, (size_t)n * sizeof *w);
}

static int report(const culora_hub *hub, const struct best *b, int64_t evals, double t0)
{
    if (hub->p.callback == NULL)
        return 0;
    const culora_hub_progress pr = {.evaluations = evals, .budget = hub->p.budget, .objective = b->objective,
                                    .loss = b->loss, .w = b->w, .elapsed_s = now_s() - t0};
    return hub->p.callback(&pr, hub->p.user);
}

static culora_status run_cma(culora_hub *hub, struct best *b, int64_t *evals, double t0)
{
    const int32_t N = hub->N;
    double *lo = malloc((size_t)N * sizeof *lo), *up = malloc((size_t)N * sizeof *up);
    double *pop = malloc((size_t)hub->lambda * (size_t)N * sizeof *pop);
    double *loss = malloc((size_t)hub->lambda * sizeof *loss), *obj = malloc((size_t)hub->lambda * sizeof *obj);
    culora_cmaes *es = NULL;
    culora_status s = CULORA_OK;
    if (lo == NULL || up == NULL || pop == NULL || loss == NULL || obj == NULL) {
        s = culora_fail(hub->ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of memory");
        goto done;
    }
    for (int32_t i = 0; i < N; i++) {
        lo[i] = -hub->p.bound;
        up[i] = hub->p.bound;
    }
    const struct culora_cmaes_params cp = {.n = N, .x0 = NULL, .sigma0 = hub->p.sigma0, .popsize = hub->lambda,
                                           .seed = hub->p.seed, .lower = lo, .upper = up};
    CULORA_TRY_GOTO(s, culora_cmaes_create(hub->ctx, &cp, &es), done);
    while (*evals < hub->p.budget) {
        CULORA_TRY_GOTO(s, culora_cmaes_ask(es, pop), done);
        const int32_t k = (int32_t)(hub->p.budget - *evals < hub->lambda ? hub->p.budget - *evals : hub->lambda);
        CULORA_TRY_GOTO(s, culora_hub_evaluate(hub, pop, k, hub->p.batched, loss, obj), done);
        *evals += k;
        for (int32_t c = 0; c < k; c++)
            consider(b, N, pop + (int64_t)c * N, obj[c], loss[c]);
        if (k == hub->lambda)
            CULORA_TRY_GOTO(s, culora_cmaes_tell(es, obj), done);
        if (report(hub, b, *evals, t0) != 0)
            break;
    }
done:
    culora_cmaes_destroy(es);
    free(lo);
    free(up);
    free(pop);
    free(loss);
    free(obj);
    return s;
}

static culora_status run_grad(culora_hub *hub, struct best *b, int64_t *evals, double t0)
{
    const int32_t N = hub->N;
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, bound = hub->p.bound;
    double *w = malloc((size_t)N * sizeof *w), *g = malloc((size_t)N * sizeof *g);
    double *m = calloc((size_t)N, sizeof *m), *v = calloc((size_t)N, sizeof *v);
    culora_status s = CULORA_OK;
    if (w == NULL || g == NULL || m == NULL || v == NULL) {
        s = culora_fail(hub->ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of memory");
        goto done;
    }
    for (int32_t i = 0; i < N; i++)
        w[i] = fmin(1.0 / N, bound);
    for (int64_t t = 1; t <= hub->p.budget; t++) {
        double loss = 0.0;
        CULORA_TRY_GOTO(s, culora_hub_loss_grad(hub, w, &loss, g), done);
        *evals = t;
        consider(b, N, w, hub_objective(hub, w, loss), loss);
        const double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
        for (int32_t i = 0; i < N; i++) {
            const double gi = g[i] + hub->p.l1 * (w[i] > 0.0 ? 1.0 : w[i] < 0.0 ? -1.0 : 0.0) / N;
            m[i] = beta1 * m[i] + (1.0 - beta1) * gi;
            v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
            w[i] -= hub->p.lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + eps);
            w[i] = fmax(-bound, fmin(bound, w[i]));
        }
        if (report(hub, b, *evals, t0) != 0)
            break;
    }
done:
    free(w);
    free(g);
    free(m);
    free(v);
    return s;
}

culora_status culora_hub_run(culora_hub *hub, double *w_out, double *objective, double *loss, int64_t *evaluations)
{
    if (hub == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(hub->ctx));
    if (w_out == NULL)
        return culora_fail(hub->ctx, CULORA_ERR_INVALID_ARG, "hub: w_out is NULL");
    struct best b = {malloc((size_t)hub->N * sizeof(double)), INFINITY, INFINITY};
    if (b.w == NULL)
        return culora_fail(hub->ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of memory");
    int64_t evals = 0;
    const double t0 = now_s();
    culora_status s = hub->p.method == CULORA_HUB_CMA ? run_cma(hub, &b, &evals, t0) : run_grad(hub, &b, &evals, t0);
    if (s == CULORA_OK && !isfinite(b.objective))
        s = culora_fail(hub->ctx, CULORA_ERR_NUMERIC, "hub: no candidate had a finite objective");
    if (s == CULORA_OK) {
        memcpy(w_out, b.w, (size_t)hub->N * sizeof *w_out);
        if (objective != NULL)
            *objective = b.objective;
        if (loss != NULL)
            *loss = b.loss;
        if (evaluations != NULL)
            *evaluations = evals;
    }
    free(b.w);
    return s;
}
