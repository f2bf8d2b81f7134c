/*
 * culora_hub.h — LoraHub: compose N trained LoRA adapters into one for a new task from a few
 * examples of it (Huang et al., "LoraHub", arXiv 2307.13269; sail-sg/lorahub).
 *
 * Composition (LoraHub's, the default): for every adapted module, with weights w ∈ R^N,
 *     Â = Σ wᵢ·Aᵢ   and   B̂ = Σ wᵢ·Bᵢ     (summed separately; ΔW = s·B̂·Â has cross terms wᵢwⱼ·BᵢAⱼ)
 * or, exactly, ΔW = s·Σ wᵢ·BᵢAᵢ as one adapter of rank N·r (CONCAT: A' = [A₁; …; A_N],
 * B' = [w₁B₁ | … | w_N B_N]). Adapters must agree on targets, ranks, alphas, shapes and rsLoRA.
 *
 * Objective (lower is better):  loss(w) + l1 · mean|wᵢ|
 *     loss = mean cross-entropy over the loss tokens of the examples (the completions of JSONL
 *     prompt/completion rows). LoraHub itself sums the token-mean loss of each batch of 5 examples
 *     and divides by the number of examples; lorahub_batch = 5 reproduces that exactly.
 *
 * Search:
 *   CMA   CMA-ES (Hansen's standard algorithm, host/hub/cmaes.c) from w = 0 in the box
 *         [-bound, bound]^N with `budget` objective evaluations (LoraHub: 40, bound 1.5, l1 0.05).
 *         A whole population is scored in one batched forward: the frozen base GEMMs run once over
 *         every candidate's rows and each candidate's row segment applies its own composed adapter
 *         (segmented LoRA, as Punica's SGMV). batched = 0 scores candidates one forward at a time.
 *   GRAD  `budget` Adam steps on w with the model's backward: for every module
 *         ∂loss/∂wᵢ = ⟨∂loss/∂Â, Aᵢ⟩ + ⟨∂loss/∂B̂, Bᵢ⟩ (CONCAT: ⟨∂loss/∂B', Bᵢ block⟩), plus the
 *         subgradient l1·sign(wᵢ)/N; w is clipped to the box after every step. It starts at the
 *         uniform average wᵢ = 1/N, because w = 0 is a stationary point of the separate composition
 *         (ΔW is quadratic in w there, so every gradient vanishes).
 * The result is the best w seen; culora_hub_compose turns it into an ordinary PEFT adapter.
 *
 * Errors: CULORA_ERR_INVALID_ARG (bad parameters, mismatched adapters — the message names the
 * adapter, the module and the difference —, no examples or no loss tokens), CULORA_ERR_UNSUPPORTED
 * (embedding LoRA, modules_to_save), and whatever model loading and forwards return.
 */
#ifndef CULORA_HUB_H
#define CULORA_HUB_H

#include "culora.h"
#include "culora_data.h"
#include "culora_io.h"
#include "culora_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum culora_hub_method {
    CULORA_HUB_CMA = 0,  /* CMA-ES, gradient-free (LoraHub) */
    CULORA_HUB_GRAD = 1  /* Adam on w through the backward pass */
} culora_hub_method;

typedef enum culora_hub_compose_mode {
    CULORA_HUB_SEPARATE = 0, /* Â = Σ wᵢAᵢ, B̂ = Σ wᵢBᵢ, rank r (LoraHub) */
    CULORA_HUB_CONCAT = 1    /* ΔW = s·Σ wᵢBᵢAᵢ exactly, rank N·r */
} culora_hub_compose_mode;

/* ---- composition on the host (no model needed) ---------------------------------------------- */

/* Checks that n >= 1 adapters can be composed: the same modules (by name), and per module the same
 * rank, alpha, in/out features; the same use_rslora; no embedding LoRA and no modules_to_save.
 * names (may be NULL) label the adapters in the message, e.g. "adapters/b: rank 8 on
 * model.layers.0.self_attn.q_proj, adapters/a has 4". */
CULORA_API CULORA_NODISCARD culora_status culora_hub_check_adapters(culora_context *ctx,
                                                                    const culora_adapter *const *adapters,
                                                                    int32_t n, const char *const *names);

/* The composed adapter for weights w [n] (fp64 sums, stored fp32), with the first adapter's config
 * (CONCAT: rank N·r and alpha scaled so that the scaling s is unchanged). The caller destroys it. */
CULORA_API CULORA_NODISCARD culora_status culora_hub_compose_adapters(culora_context *ctx,
                                                                      const culora_adapter *const *adapters,
                                                                      int32_t n, const char *const *names,
                                                                      const double *w, int32_t mode,
                                                                      culora_adapter **out);

/* ---- search -------------------------------------------------------------------------------- */

typedef struct culora_hub culora_hub;

/* Progress after every CMA generation or gradient step (from the calling thread); return
 * non-zero to stop the search early (the best w so far is kept). */
typedef struct culora_hub_progress {
    int64_t evaluations;      /* objective evaluations so far (GRAD: steps) */
    int64_t budget;
    double objective;         /* best objective so far */
    double loss;              /* its loss part */
    const double *w;          /* [n] its weights (valid during the call) */
    double elapsed_s;         /* since culora_hub_run began */
} culora_hub_progress;
typedef int (*culora_hub_callback)(const culora_hub_progress *p, void *user);

/* The base model the adapters were trained on: a Hugging Face directory, or (model_dir NULL) a
 * random model from config and init_seed (culora_model_create), for tests and benchmarks. */
typedef struct culora_hub_base {
    const char *model_dir;
    const culora_model_config *config;
    uint64_t init_seed;
} culora_hub_base;

typedef struct culora_hub_params {
    uint32_t struct_size;      /* set by CULORA_HUB_PARAMS_INIT */
    uint32_t api_version;
    int32_t method;            /* culora_hub_method */
    int32_t compose;           /* culora_hub_compose_mode */
    int32_t budget;            /* CMA: objective evaluations; GRAD: Adam steps (>= 1) */
    double l1;                 /* weight of mean|w| in the objective (LoraHub 0.05) */
    double bound;              /* box [-bound, bound] for every wᵢ (LoraHub 1.5) */
    double sigma0;             /* CMA initial step size (bound/3: ±3σ spans the box) */
    int32_t popsize;           /* CMA λ; 0: 4 + floor(3 ln N) */
    int32_t batched;           /* 1: each population in one segmented forward; 0: one forward each */
    int32_t lorahub_batch;     /* 0: plain mean CE; k > 0: Σ over batches of k examples of their
                                  token-mean CE, divided by the number of examples (LoraHub: 5) */
    double lr;                 /* GRAD: Adam learning rate on w */
    uint64_t seed;             /* CMA sampling */
    culora_hub_callback callback;
    void *user;
} culora_hub_params;

#define CULORA_HUB_PARAMS_INIT                                                                         \
    { sizeof(culora_hub_params), CULORA_API_VERSION, CULORA_HUB_CMA, CULORA_HUB_SEPARATE, 40, 0.05, 1.5, \
      0.5, 0, 1, 0, 0.05, 42u, NULL, NULL }

/* A hub over n adapters (checked with culora_hub_check_adapters; they are copied, so they may be
 * destroyed afterwards) and the examples (one example per dataset row: use the PAD layout; the
 * dataset must outlive the hub). Loads or creates the base model in LORA mode on ctx's backend with
 * buffers for a whole population of examples. */
CULORA_API CULORA_NODISCARD culora_status culora_hub_create(culora_context *ctx, const culora_hub_base *base,
                                                            const culora_adapter *const *adapters, int32_t n,
                                                            const char *const *names,
                                                            const culora_dataset *examples,
                                                            const culora_hub_params *params, culora_hub **out);
/* NULL: no-op. */
CULORA_API void culora_hub_destroy(culora_hub *hub);

CULORA_API int32_t culora_hub_n_adapters(const culora_hub *hub);
/* CMA's λ for this hub (1 for GRAD). */
CULORA_API int32_t culora_hub_popsize(const culora_hub *hub);
/* The hub's model (its LoRA slots hold the last composition written by the hub). */
CULORA_API culora_model *culora_hub_model(culora_hub *hub);

/* Scores n_candidates weight vectors w [n_candidates, n] (row-major): loss[i] and objective[i]
 * (either may be NULL). batched 1: candidates go through segmented forwards, as many per pass as
 * the hub's buffers hold (its popsize); 0: one forward per candidate. */
CULORA_API CULORA_NODISCARD culora_status culora_hub_evaluate(culora_hub *hub, const double *w, int32_t n_candidates,
                                                              int32_t batched, double *loss, double *objective);

/* loss(w) and its gradient with respect to w (grad [n], the loss part only; the L1 term is the
 * caller's) through one backward per LoraHub batch (one for the plain mean). */
CULORA_API CULORA_NODISCARD culora_status culora_hub_loss_grad(culora_hub *hub, const double *w, double *loss,
                                                               double *grad);

/* Runs the search. w_out [n] receives the best weights, *objective and *loss (may be NULL) their
 * scores, *evaluations (may be NULL) the objective evaluations (GRAD: steps) spent. */
CULORA_API CULORA_NODISCARD culora_status culora_hub_run(culora_hub *hub, double *w_out, double *objective,
                                                         double *loss, int64_t *evaluations);

/* The composed adapter for w (computed in the backend like the search's candidates, fp32, then
 * exported in PEFT form with the first adapter's config; CONCAT: rank N·r). The caller destroys it. */
CULORA_API CULORA_NODISCARD culora_status culora_hub_compose(culora_hub *hub, const double *w, culora_adapter **out);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HUB_H */
