/*
 * hub.c — the culora_hub object: checks, the base model with LoRA slots shaped like the adapters,
 * the adapter stack in the model's flat layout (hub_internal.h), buffers for a population of
 * examples, and culora_hub_compose.
 */
#include "hub_internal.h"

#include "../sgmv_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static culora_status check_params(culora_context *ctx, const culora_hub_params *p)
{
    if (p == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: params is NULL");
    if (p->struct_size != sizeof(culora_hub_params) || p->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: params not initialised with CULORA_HUB_PARAMS_INIT");
    if (p->method != CULORA_HUB_CMA && p->method != CULORA_HUB_GRAD)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: method %d is neither CMA nor GRAD", (int)p->method);
    if (p->compose != CULORA_HUB_SEPARATE && p->compose != CULORA_HUB_CONCAT)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: compose %d is neither SEPARATE nor CONCAT",
                           (int)p->compose);
    if (p->budget < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: budget is %d; the search needs at least 1 %s",
                           (int)p->budget, p->method == CULORA_HUB_CMA ? "evaluation" : "step");
    if (!(p->l1 >= 0.0) || !isfinite(p->l1))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: l1 weight %g must be finite and >= 0", p->l1);
    if (!(p->bound > 0.0) || !isfinite(p->bound))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: bound %g must be finite and > 0", p->bound);
    if (!(p->sigma0 > 0.0) || !isfinite(p->sigma0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: sigma0 %g must be finite and > 0", p->sigma0);
    if (p->popsize < 0 || p->popsize > CULORA_SGMV_MAX_SEGMENTS)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: popsize %d outside [0, %d]", (int)p->popsize,
                           CULORA_SGMV_MAX_SEGMENTS);
    if (p->lorahub_batch < 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: lorahub_batch %d must be >= 0", (int)p->lorahub_batch);
    if (!(p->lr > 0.0) || !isfinite(p->lr))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: lr %g must be finite and > 0", p->lr);
    return CULORA_OK;
}

void culora_hub_destroy(culora_hub *hub)
{
    if (hub == NULL)
        return;
    culora_context *ctx = hub->ctx;
    if (hub->comp_s != (void *)hub->comp)
        culora_free(ctx, hub->comp_s);
    culora_free(ctx, hub->comp);
    culora_free(ctx, hub->stack);
    culora_free(ctx, hub->cvec);
    culora_free(ctx, hub->wdev);
    culora_free(ctx, hub->gdev);
    culora_free(ctx, hub->targets_dev);
    culora_free(ctx, hub->losses_dev);
    culora_free(ctx, hub->loss_dev);
    culora_model_destroy(hub->model);
    free(hub->tokens);
    free(hub->targets);
    free(hub->ex_tokens);
    free(hub->row_losses);
    free(hub->wf);
    free(hub->seg_rows);
    free(hub);
}

/* Reads the examples: E rows of T tokens, tiled cand_cap times. */
static culora_status read_examples(culora_hub *hub, const culora_dataset *ds)
{
    culora_context *ctx = hub->ctx;
    if (ds == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: no examples (dataset is NULL)");
    hub->E = culora_dataset_num_rows(ds);
    hub->T = culora_dataset_seq_len(ds);
    if (hub->E < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: the example set is empty");
    const int64_t per = hub->E * hub->T, all = per * hub->cand_cap;
    hub->tokens = malloc((size_t)all * sizeof *hub->tokens);
    hub->targets = malloc((size_t)all * sizeof *hub->targets);
    hub->ex_tokens = calloc((size_t)hub->E, sizeof *hub->ex_tokens);
    hub->row_losses = malloc((size_t)all * sizeof *hub->row_losses);
    if (hub->tokens == NULL || hub->targets == NULL || hub->ex_tokens == NULL || hub->row_losses == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of host memory for the examples");
    for (int64_t e = 0; e < hub->E; e++) {
        CULORA_TRY(culora_dataset_get_row(ctx, ds, e, hub->tokens + e * hub->T, hub->targets + e * hub->T, NULL,
                                          &hub->ex_tokens[e]));
        hub->total_tokens += hub->ex_tokens[e];
    }
    if (hub->total_tokens == 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "hub: the %lld examples have no tokens to score (JSONL prompt/completion rows score the "
                           "completion)",
                           (long long)hub->E);
    for (int32_t c = 1; c < hub->cand_cap; c++) {
        memcpy(hub->tokens + c * per, hub->tokens, (size_t)per * sizeof *hub->tokens);
        memcpy(hub->targets + c * per, hub->targets, (size_t)per * sizeof *hub->targets);
    }
    return CULORA_OK;
}

/* The model's slots must be exactly the adapters' modules (rank × N for CONCAT). */
static culora_status check_slots(culora_hub *hub, const culora_adapter *a0)
{
    const struct culora_model *m = hub->model;
    const int32_t mult = hub->p.compose == CULORA_HUB_CONCAT ? hub->N : 1;
    if (m->emb_lora != NULL)
        return culora_fail(hub->ctx, CULORA_ERR_UNSUPPORTED, "hub: the adapters' config adapts the embedding");
    for (int32_t i = 0; i < m->n_loras; i++) {
        const struct mlora *lo = &m->loras[i];
        const culora_lora_module *mod = culora_adapter_find_module(a0, lo->name);
        if (mod == NULL)
            return culora_fail(hub->ctx, CULORA_ERR_INVALID_ARG,
                               "hub: the adapters' target_modules match %s in the base model, but the adapters do "
                               "not adapt it",
                               lo->name);
        if (lo->r != mod->r * mult || lo->A.cols != mod->in_features || lo->B.rows != mod->out_features ||
            fabs(lo->scaling - mod->scaling) > 1e-12 * fabs(mod->scaling))
            return culora_fail(hub->ctx, CULORA_ERR_INVALID_ARG,
                               "hub: %s is rank %d, %lld -> %lld, scaling %g in the base model and rank %d, "
                               "%lld -> %lld, scaling %g in the adapters",
                               lo->name, (int)lo->r, (long long)lo->A.cols, (long long)lo->B.rows, lo->scaling,
                               (int)(mod->r * mult), (long long)mod->in_features, (long long)mod->out_features,
                               mod->scaling);
    }
    if ((size_t)m->n_loras != culora_adapter_n_modules(a0))
        return culora_fail(hub->ctx, CULORA_ERR_INVALID_ARG,
                           "hub: the adapters adapt %zu modules, the base model has %d of them (another base model?)",
                           culora_adapter_n_modules(a0), (int)m->n_loras);
    return CULORA_OK;
}

/* Copies a dense [rows, cols] matrix into a flat buffer at off with leading dimension ld, at
 * row offset row0 and column offset col0. */
static void put(float *flat, int64_t off, int64_t ld, int64_t row0, int64_t col0, const float *src, int64_t rows,
                int64_t cols)
{
    for (int64_t i = 0; i < rows; i++)
        memcpy(flat + off + (row0 + i) * ld + col0, src + i * cols, (size_t)cols * sizeof(float));
}

/* stack [N, n_train] and, for CONCAT, cvec [n_train] (hub_internal.h). */
static culora_status build_stack(culora_hub *hub, const culora_adapter *const *adapters)
{
    culora_context *ctx = hub->ctx;
    const struct culora_model *m = hub->model;
    const int64_t nt = hub->n_train, N = hub->N;
    const bool concat = hub->p.compose == CULORA_HUB_CONCAT;
    float *h = calloc((size_t)(N * nt), sizeof *h);
    float *c = concat ? calloc((size_t)nt, sizeof *c) : NULL;
    if (h == NULL || (concat && c == NULL)) {
        free(h);
        free(c);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of host memory for the adapter stack");
    }
    for (int32_t s = 0; s < m->n_loras; s++) {
        const struct mlora *lo = &m->loras[s];
        for (int64_t i = 0; i < N; i++) {
            const culora_lora_module *mod = culora_adapter_find_module(adapters[i], lo->name);
            const int64_t r = mod->r;
            if (concat) { /* A' rows i·r.. = Aᵢ (fixed); B' columns i·r.. = Bᵢ (weighted) */
                put(c, lo->A.off, lo->A.ld, i * r, 0, mod->A, r, mod->in_features);
                put(h + i * nt, lo->B.off, lo->B.ld, 0, i * r, mod->B, mod->out_features, r);
            } else {
                put(h + i * nt, lo->A.off, lo->A.ld, 0, 0, mod->A, r, mod->in_features);
                put(h + i * nt, lo->B.off, lo->B.ld, 0, 0, mod->B, mod->out_features, r);
            }
        }
    }
    culora_status s = culora_malloc(ctx, (size_t)(N * nt) * sizeof(float), (void **)&hub->stack);
    if (s == CULORA_OK)
        s = culora_memcpy(ctx, hub->stack, h, (size_t)(N * nt) * sizeof(float), CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK && concat)
        s = culora_malloc(ctx, (size_t)nt * sizeof(float), (void **)&hub->cvec);
    if (s == CULORA_OK && concat)
        s = culora_memcpy(ctx, hub->cvec, c, (size_t)nt * sizeof(float), CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(ctx, NULL); /* h and c are freed next */
    free(h);
    free(c);
    return s;
}

static culora_status alloc_buffers(culora_hub *hub)
{
    culora_context *ctx = hub->ctx;
    const int64_t cap = hub->cand_cap, rows = cap * hub->E * hub->T;
    CULORA_TRY(culora_malloc(ctx, (size_t)(cap * hub->N) * sizeof(float), (void **)&hub->wdev));
    CULORA_TRY(culora_malloc(ctx, (size_t)hub->N * sizeof(float), (void **)&hub->gdev));
    hub->stride = (hub->n_train + 63) / 64 * 64; /* keeps every candidate's buffer on the backends' row grid */
    CULORA_TRY(culora_malloc(ctx, (size_t)(cap * hub->stride) * sizeof(float), (void **)&hub->comp));
    CULORA_TRY(culora_memset(ctx, hub->comp, 0, (size_t)(cap * hub->stride) * sizeof(float), NULL));
    if (hub->model->S == CULORA_DTYPE_F32)
        hub->comp_s = hub->comp;
    else
        CULORA_TRY(culora_malloc(ctx, (size_t)(cap * hub->stride) * hub->model->es, &hub->comp_s));
    CULORA_TRY(culora_malloc(ctx, (size_t)rows * sizeof(int32_t), (void **)&hub->targets_dev));
    CULORA_TRY(culora_malloc(ctx, (size_t)rows * sizeof(float), (void **)&hub->losses_dev));
    CULORA_TRY(culora_malloc(ctx, sizeof(float), (void **)&hub->loss_dev));
    CULORA_TRY(culora_memcpy(ctx, hub->targets_dev, hub->targets, (size_t)rows * sizeof(int32_t),
                             CULORA_COPY_HOST_TO_DEVICE, NULL));
    hub->wf = malloc((size_t)(cap * hub->N) * sizeof *hub->wf);
    hub->seg_rows = malloc((size_t)(cap + 1) * sizeof *hub->seg_rows);
    if (hub->wf == NULL || hub->seg_rows == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of host memory");
    return culora_synchronize(ctx, NULL);
}

static culora_status create_model(culora_hub *hub, const culora_hub_base *base, const culora_lora_config *cfg)
{
    culora_context *ctx = hub->ctx;
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.mode = CULORA_MODE_LORA;
    mp.lora = cfg;
    mp.max_batch = hub->cand_cap * hub->E;
    mp.max_seq = hub->T;
    if (base == NULL || (base->model_dir == NULL && base->config == NULL))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: no base model (model_dir or config)");
    if (base->model_dir != NULL)
        CULORA_TRY(culora_model_load(ctx, base->model_dir, &mp, &hub->model));
    else
        CULORA_TRY(culora_model_create(ctx, base->config, base->init_seed, &mp, &hub->model));
    culora_model_set_training(hub->model, false);
    return CULORA_OK;
}

culora_status culora_hub_create(culora_context *ctx, const culora_hub_base *base, const culora_adapter *const *adapters,
                                int32_t n, const char *const *names, const culora_dataset *examples,
                                const culora_hub_params *params, culora_hub **out)
{
    if (out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: out is NULL");
    *out = NULL;
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(check_params(ctx, params));
    CULORA_TRY(culora_hub_check_adapters(ctx, adapters, n, names));
    culora_hub *hub = calloc(1, sizeof *hub);
    if (hub == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of memory");
    hub->ctx = ctx;
    hub->p = *params;
    hub->N = n;
    hub->lambda = params->method == CULORA_HUB_CMA
                      ? (params->popsize > 0 ? params->popsize : 4 + (int32_t)floor(3.0 * log((double)n)))
                      : 1;
    if (hub->lambda > CULORA_SGMV_MAX_SEGMENTS)
        hub->lambda = CULORA_SGMV_MAX_SEGMENTS;
    hub->cand_cap = params->batched && params->method == CULORA_HUB_CMA ? hub->lambda : 1;
    struct hub_config hc = {0};
    culora_status s = read_examples(hub, examples);
    if (s == CULORA_OK)
        s = hub_config_make(ctx, culora_adapter_config(adapters[0]), n, params->compose, &hc);
    if (s == CULORA_OK)
        s = create_model(hub, base, &hc.cfg);
    hub_config_free(&hc);
    if (s == CULORA_OK)
        s = check_slots(hub, adapters[0]);
    if (s == CULORA_OK) {
        hub->n_train = hub->model->n_train;
        s = build_stack(hub, adapters);
    }
    if (s == CULORA_OK)
        s = alloc_buffers(hub);
    if (s != CULORA_OK) {
        culora_hub_destroy(hub);
        return s;
    }
    *out = hub;
    return CULORA_OK;
}

int32_t culora_hub_n_adapters(const culora_hub *hub) { return hub ? hub->N : 0; }
int32_t culora_hub_popsize(const culora_hub *hub) { return hub ? hub->lambda : 0; }
culora_model *culora_hub_model(culora_hub *hub) { return hub ? hub->model : NULL; }

culora_status culora_hub_compose(culora_hub *hub, const double *w, culora_adapter **out)
{
    if (hub == NULL || out == NULL)
        return CULORA_ERR_INVALID_ARG;
    *out = NULL;
    CULORA_TRY(hub_write_weights(hub, w));
    return culora_model_export_adapter(hub->model, out);
}
