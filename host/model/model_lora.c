/*
 * model_lora.c — LoRA weights: initialisation exactly as PEFT does it, loading from and exporting
 * to a PEFT adapter.
 *
 * PEFT initialisation (tuners/lora/layer.py reset_lora_parameters):
 *   linear, init_lora_weights true:  A ~ kaiming_uniform(a=√5) = U(−1/√in, 1/√in),  B = 0
 *   linear, "gaussian":              A ~ N(0, 1/r),                               B = 0
 *   linear, false:                   A and B keep nn.Linear's init: U(−1/√fan_in, 1/√fan_in)
 *   embedding (any):                 A = 0,  B ~ N(0, 1)   (the reverse of linear layers)
 * The model keeps an embedding LoRA's A transposed ([V, r]) so that its lookup is an embedding op.
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LORA_STREAM 0x10000000ull /* random streams of LoRA tensors, apart from the base weights' */

static float *transpose(const float *src, int64_t rows, int64_t cols)
{
    float *t = malloc((size_t)(rows * cols) * sizeof *t);
    if (t != NULL)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                t[j * rows + i] = src[i * cols + j];
    return t;
}

/* Fresh values for LoRA slot i (also used by ReLoRA's re-initialisation with a new stream). */
static culora_status init_one(struct culora_model *m, struct mlora *lo, uint64_t seed, uint64_t stream)
{
    const int64_t na = lo->A.rows * lo->A.cols, nb = lo->B.rows * lo->B.cols;
    float *a = calloc((size_t)na, sizeof *a), *b = calloc((size_t)nb, sizeof *b);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    }
    const char *init = m->lora_cfg.init_lora_weights ? m->lora_cfg.init_lora_weights : "true";
    if (lo->embedding) {
        for (int64_t i = 0; i < nb; i++)
            b[i] = (float)model_rand_normal(seed, stream + 1, (uint64_t)i);
    } else {
        const int64_t in = lo->A.cols;
        if (strcmp(init, "gaussian") == 0) {
            for (int64_t i = 0; i < na; i++)
                a[i] = (float)(model_rand_normal(seed, stream, (uint64_t)i) / (double)lo->r);
        } else {
            const double bound = 1.0 / sqrt((double)in);
            for (int64_t i = 0; i < na; i++)
                a[i] = (float)((2.0 * model_rand_uniform(seed, stream, (uint64_t)i) - 1.0) * bound);
        }
        if (strcmp(init, "false") == 0) {
            const double bound = 1.0 / sqrt((double)lo->r);
            for (int64_t i = 0; i < nb; i++)
                b[i] = (float)((2.0 * model_rand_uniform(seed, stream + 1, (uint64_t)i) - 1.0) * bound);
        }
    }
    culora_status s = model_tensor_upload(m, &lo->A, a);
    if (s == CULORA_OK)
        s = model_tensor_upload(m, &lo->B, b);
    free(a);
    free(b);
    return s;
}

culora_status model_lora_reinit(struct culora_model *m, int32_t i, uint64_t seed, uint64_t round)
{
    return init_one(m, &m->loras[i], seed, LORA_STREAM + ((uint64_t)i << 8) + (round << 32));
}

culora_status model_lora_init(struct culora_model *m, const culora_adapter *adapter)
{
    const int32_t n = m->n_loras + (m->emb_lora ? 1 : 0);
    for (int32_t i = 0; i < n; i++) {
        struct mlora *lo = &m->loras[i];
        if (adapter == NULL) {
            CULORA_TRY(model_lora_reinit(m, i, m->seed, 0));
            continue;
        }
        const culora_lora_module *mod = culora_adapter_find_module(adapter, lo->name);
        if (mod == NULL || mod->r != lo->r)
            return culora_fail(m->ctx, CULORA_ERR_INTERNAL, "model: adapter module %s changed", lo->name);
        float *at = lo->embedding ? transpose(mod->A, mod->r, mod->in_features) : NULL;
        if (lo->embedding && at == NULL)
            return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
        culora_status s = model_tensor_upload(m, &lo->A, at ? at : mod->A);
        free(at);
        CULORA_TRY(s);
        CULORA_TRY(model_tensor_upload(m, &lo->B, mod->B));
    }
    return CULORA_OK;
}

culora_status culora_model_export_adapter(culora_model *m, culora_adapter **out)
{
    if (m == NULL || out == NULL)
        return CULORA_ERR_INVALID_ARG;
    *out = NULL;
    const int32_t n = m->n_loras + (m->emb_lora ? 1 : 0);
    if (n == 0)
        return culora_fail(m->ctx, CULORA_ERR_MISUSE, "culora_model_export_adapter: the model has no LoRA modules");
    culora_adapter *ad = NULL;
    CULORA_TRY(culora_adapter_create(m->ctx, &m->lora_cfg, &ad));
    culora_status s = CULORA_OK;
    for (int32_t i = 0; i < n && s == CULORA_OK; i++) {
        struct mlora *lo = &m->loras[i];
        const int64_t in = lo->embedding ? m->V : lo->A.cols, outf = lo->B.rows;
        culora_lora_module *mod = NULL;
        s = culora_adapter_add_module(m->ctx, ad, lo->name, in, outf, lo->embedding, &mod);
        if (s == CULORA_OK && (mod->r != lo->r || fabs(mod->alpha - lo->alpha) > 1e-12))
            s = culora_fail(m->ctx, CULORA_ERR_INTERNAL, "model: adapter config gives %s rank %d alpha %g, the model "
                                                         "has rank %d alpha %g",
                            lo->name, mod->r, mod->alpha, lo->r, lo->alpha);
        if (s != CULORA_OK)
            break;
        if (lo->embedding) {
            float *at = malloc((size_t)(lo->A.rows * lo->A.cols) * sizeof *at);
            s = at ? model_tensor_download(m, &lo->A, at) : culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "oom");
            if (s == CULORA_OK)
                for (int64_t v = 0; v < m->V; v++)
                    for (int32_t j = 0; j < lo->r; j++)
                        mod->A[(int64_t)j * m->V + v] = at[v * lo->r + j];
            free(at);
        } else {
            s = model_tensor_download(m, &lo->A, mod->A);
        }
        if (s == CULORA_OK)
            s = model_tensor_download(m, &lo->B, mod->B);
    }
    if (s != CULORA_OK) {
        culora_adapter_destroy(ad);
        return s;
    }
    *out = ad;
    return CULORA_OK;
}

culora_status culora_model_save_adapter(culora_model *m, const char *dir)
{
    culora_adapter *ad = NULL;
    CULORA_TRY(culora_model_export_adapter(m, &ad));
    culora_status s = culora_adapter_save(m->ctx, ad, dir);
    culora_adapter_destroy(ad);
    return s;
}
