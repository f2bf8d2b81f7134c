/*
 * hub_internal.h — the culora_hub object and what its files share (hub.c: setup, hub_eval.c:
 * scoring candidates, hub_search.c: CMA-ES and gradient searches, hub_compose.c: host composition).
 *
 * Composition in the backend: the N adapters live as rows of one fp32 matrix `stack` [N, n_train]
 * in the layout of the model's flat trainable buffer (each LoRA tensor at its offset, padding zero),
 * so the composed adapters of P candidates are ONE GEMM,
 *     comp[P, n_train] = const + W[P, N]·stack          (const: CONCAT's fixed A blocks, else 0)
 * written straight into the model's master weights (one candidate) or into a buffer the segmented
 * forward reads (a population), and the gradient with respect to w is one GEMV,
 *     ∂loss/∂w = stack·grad                             (grad: the model's flat LoRA gradient).
 */
#ifndef CULORA_HOST_HUB_INTERNAL_H
#define CULORA_HOST_HUB_INTERNAL_H

#include "culora/culora_hub.h"

#include "../context.h"
#include "../model/model.h"
#include "../model/model_segments.h"

#ifdef __cplusplus
extern "C" {
#endif

struct culora_hub {
    culora_context *ctx;
    culora_hub_params p;
    culora_model *model;     /* LORA mode, dropout off */
    int32_t N;               /* adapters */
    int32_t lambda;          /* CMA population (1 for GRAD) */
    int32_t cand_cap;        /* candidates one segmented forward holds */
    int64_t n_train;         /* model's flat trainable elements */
    int64_t stride;          /* elements between candidates in comp / comp_s (n_train rounded up to 64) */

    /* examples: E rows of T tokens, tiled cand_cap times on the host */
    int64_t E, T;
    int32_t *tokens, *targets;  /* [cand_cap·E·T] */
    int64_t *ex_tokens;         /* [E] loss tokens per example */
    int64_t total_tokens;

    /* backend buffers */
    float *stack;            /* [N, n_train] fp32 */
    float *cvec;             /* [n_train] fp32 (CONCAT), or NULL */
    float *wdev;             /* [cand_cap, N] fp32 */
    float *gdev;             /* [N] fp32 */
    float *comp;             /* [cand_cap, stride] fp32, padding zero */
    void *comp_s;            /* [cand_cap, stride] S (comp itself on f32 backends) */
    int32_t *targets_dev;    /* [cand_cap·E·T] */
    float *losses_dev;       /* [cand_cap·E·T] per-row cross-entropy */
    float *loss_dev;         /* [1] */

    /* host scratch */
    float *row_losses;       /* [cand_cap·E·T] */
    float *wf;               /* [cand_cap·N] */
    int64_t *seg_rows;       /* [cand_cap + 1] */
    struct model_segments segs;
};

/* A LoRA config and the pattern arrays it points to (CONCAT scales ranks and alphas). */
struct hub_config {
    culora_lora_config cfg;
    culora_lora_pattern *rank_pattern, *alpha_pattern;
};
/* src itself for SEPARATE; for CONCAT every rank × n and every alpha × n (× √n with rsLoRA).
 * Strings still point into src. */
culora_status hub_config_make(culora_context *ctx, const culora_lora_config *src, int32_t n, int32_t mode,
                              struct hub_config *out);
void hub_config_free(struct hub_config *c);

/* hub_eval.c */
/* The model's LoRA weights '=' the composition for w [N]. */
culora_status hub_write_weights(culora_hub *hub, const double *w);
/* Objective from a loss and weights. */
double hub_objective(const culora_hub *hub, const double *w, double loss);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_HUB_INTERNAL_H */
