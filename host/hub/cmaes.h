/*
 * cmaes.h — CMA-ES (Hansen's standard algorithm: "The CMA Evolution Strategy: A Tutorial",
 * weighted recombination, cumulative step-size adaptation, rank-one + rank-μ covariance update)
 * with optional box bounds, for LoraHub's gradient-free weight search.
 *
 * Ask/tell interface: culora_cmaes_ask() writes a population of λ points to evaluate,
 * culora_cmaes_tell() takes their fitness (lower is better). Deterministic for a given seed
 * (Philox4x32-10 normals). Bounds: a sampled coordinate outside [lower, upper] is reflected back
 * into the box; the repaired point is the one evaluated and the one used in the update.
 * Checked against pycma: tests/hub/test_cmaes.cpp, fixture tests/gen/gen_cmaes_reference.py.
 */
#ifndef CULORA_HOST_HUB_CMAES_H
#define CULORA_HOST_HUB_CMAES_H

#include "culora/culora.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct culora_cmaes culora_cmaes;

struct culora_cmaes_params {
    int32_t n;            /* dimension, >= 1 */
    const double *x0;     /* [n] start mean (NULL: all zeros) */
    double sigma0;        /* initial step size, > 0 */
    int32_t popsize;      /* λ; 0 = 4 + floor(3 ln n) */
    uint64_t seed;
    const double *lower;  /* [n] box bounds, or NULL for none (both or neither) */
    const double *upper;
};

/* ctx (may be NULL) receives the message on failure. */
culora_status culora_cmaes_create(culora_context *ctx, const struct culora_cmaes_params *p, culora_cmaes **out);
void culora_cmaes_destroy(culora_cmaes *es);

int32_t culora_cmaes_popsize(const culora_cmaes *es);
/* Writes λ points, row-major [λ, n]. Must be followed by culora_cmaes_tell before the next ask. */
culora_status culora_cmaes_ask(culora_cmaes *es, double *pop);
/* fitness [λ] of the points from the last ask; NaN is treated as +inf (worst). */
culora_status culora_cmaes_tell(culora_cmaes *es, const double *fitness);

/* Best point and value seen so far (NULL/inf before the first tell). */
const double *culora_cmaes_best_x(const culora_cmaes *es);
double culora_cmaes_best_f(const culora_cmaes *es);
const double *culora_cmaes_mean(const culora_cmaes *es);
double culora_cmaes_sigma(const culora_cmaes *es);
int64_t culora_cmaes_evaluations(const culora_cmaes *es);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_HUB_CMAES_H */
