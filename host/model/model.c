/*
 * model.c — culora_model lifecycle: create (random weights), load (Hugging Face directory),
 * destroy, and the small getters.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void culora_model_destroy(culora_model *m)
{
    if (m == NULL)
        return;
    if (m->ctx != NULL) {
        void *bufs[] = {m->frozen, m->master, m->grad, m->adam_m, m->adam_v, m->copy, m->act, m->ws, m->qarena, m->wdq};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            culora_free(m->ctx, bufs[i]);
    }
    culora_adapter_destroy(m->lora_cfg_store);
    free(m->layers);
    free(m->loras);
    free(m->quants);
    free(m);
}

static culora_status check_params(culora_context *ctx, const culora_model_params *p)
{
    if (p == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "model: params is NULL");
    if (p->struct_size != sizeof(culora_model_params) || p->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "model: params not initialised with CULORA_MODEL_PARAMS_INIT");
    if (p->mode < CULORA_MODE_INFERENCE || p->mode > CULORA_MODE_LORA_FA)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "model: mode %d is not a culora_train_mode", (int)p->mode);
    const bool lora = p->mode == CULORA_MODE_LORA || p->mode == CULORA_MODE_LORA_FA;
    if (lora && p->lora == NULL && p->adapter_dir == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "model: LoRA mode needs a LoRA config or an adapter directory");
    if (p->mode == CULORA_MODE_FULL && p->adapter_dir != NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "model: full fine-tuning does not take an adapter (merge it first)");
    if (p->max_batch < 0 || p->max_seq < 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "model: negative max_batch or max_seq");
    if (p->quant_format != 0 && p->quant_format != CULORA_QUANT_NF4 && p->quant_format != CULORA_QUANT_FP4 &&
        p->quant_format != CULORA_QUANT_INT8)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "model: quant_format %d is not a culora_quant_format",
                           (int)p->quant_format);
    if (p->quant_format != 0 && p->mode == CULORA_MODE_FULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "model: a quantized base is frozen; full fine-tuning needs unquantized weights");
    return CULORA_OK;
}

/* Shared by create and load: everything but the base weights' values. */
static culora_status model_new(culora_context *ctx, const culora_model_config *cfg, const culora_model_params *p,
                               culora_model **out)
{
    *out = NULL;
    CULORA_TRY(culora_context_check(ctx));
    CULORA_TRY(check_params(ctx, p));
    if (cfg->arch != CULORA_ARCH_GPT2 && cfg->arch != CULORA_ARCH_LLAMA)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "model: unsupported architecture %d", (int)cfg->arch);
    if (cfg->arch == CULORA_ARCH_GPT2 && cfg->activation != CULORA_ACT_GELU_TANH)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "model: GPT-2 with an activation other than gelu_new (tanh)");
    if (cfg->arch == CULORA_ARCH_LLAMA && cfg->activation != CULORA_ACT_SILU)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "model: LLaMA with an MLP activation other than silu");
    if (cfg->vocab_size < 1 || cfg->hidden_size < 1 || cfg->n_layers < 0 || cfg->n_heads < 1 || cfg->head_dim < 2 ||
        cfg->n_kv_heads < 1 || cfg->n_heads % cfg->n_kv_heads != 0 || cfg->head_dim % 2 != 0 ||
        cfg->intermediate_size < 1 || cfg->vocab_size > INT32_MAX)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "model: inconsistent config (vocab %lld, hidden %lld, heads %lld/%lld, "
                                                        "head_dim %lld, intermediate %lld)",
                           (long long)cfg->vocab_size, (long long)cfg->hidden_size, (long long)cfg->n_heads,
                           (long long)cfg->n_kv_heads, (long long)cfg->head_dim, (long long)cfg->intermediate_size);
    culora_model *m = calloc(1, sizeof *m);
    if (m == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of memory");
    m->ctx = ctx;
    m->cfg = *cfg;
    m->mode = p->mode;
    m->seed = p->seed;
    m->training = p->mode != CULORA_MODE_INFERENCE;
    if (p->quant_format != 0) {
        culora_quant_desc qd = CULORA_QUANT_DESC_INIT;
        qd.format = p->quant_format;
        qd.flags = p->quant_flags;
        if (p->quant_blocksize > 0)
            qd.blocksize = p->quant_blocksize;
        m->quant = qd;
    }
    culora_adapter *adapter = NULL;
    culora_status s = CULORA_OK;
    if (p->adapter_dir != NULL) {
        s = culora_adapter_load(ctx, p->adapter_dir, &adapter);
        if (s == CULORA_OK) {
            m->lora_cfg_store = adapter; /* keeps the config (and the loaded weights) alive */
            m->lora_cfg = *culora_adapter_config(adapter);
        }
    } else if (p->lora != NULL && p->mode != CULORA_MODE_FULL && p->mode != CULORA_MODE_INFERENCE) {
        s = culora_adapter_create(ctx, p->lora, &m->lora_cfg_store);
        if (s == CULORA_OK)
            m->lora_cfg = *culora_adapter_config(m->lora_cfg_store);
    }
    if (s == CULORA_OK)
        s = model_build(m, p, adapter);
    if (s == CULORA_OK && (m->n_loras > 0 || m->emb_lora != NULL))
        s = model_lora_init(m, adapter);
    if (s != CULORA_OK) {
        culora_model_destroy(m);
        return s;
    }
    *out = m;
    return CULORA_OK;
}

culora_status culora_model_create(culora_context *ctx, const culora_model_config *cfg, uint64_t init_seed,
                                  const culora_model_params *params, culora_model **out)
{
    if (out == NULL || cfg == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_model_create: %s is NULL", out ? "cfg" : "out");
    culora_model *m = NULL;
    CULORA_TRY(model_new(ctx, cfg, params, &m));
    culora_status s = model_init_random(m, init_seed);
    if (s != CULORA_OK) {
        culora_model_destroy(m);
        return s;
    }
    *out = m;
    return CULORA_OK;
}

culora_status culora_model_load(culora_context *ctx, const char *dir, const culora_model_params *params,
                                culora_model **out)
{
    if (out == NULL || dir == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_model_load: %s is NULL", out ? "dir" : "out");
    *out = NULL;
    culora_model_config cfg;
    CULORA_TRY(culora_model_config_load(ctx, dir, &cfg));
    culora_safetensors *st = NULL;
    CULORA_TRY(culora_safetensors_open(ctx, dir, &st));
    culora_status s = culora_model_config_check(ctx, &cfg, st);
    culora_model *m = NULL;
    if (s == CULORA_OK)
        s = model_new(ctx, &cfg, params, &m);
    if (s == CULORA_OK)
        s = model_load_weights(m, st);
    culora_safetensors_close(st);
    if (s != CULORA_OK) {
        culora_msg_prefix(ctx, dir);
        culora_model_destroy(m);
        return s;
    }
    *out = m;
    return CULORA_OK;
}

const culora_model_config *culora_model_get_config(const culora_model *m) { return m ? &m->cfg : NULL; }
culora_context *culora_model_context(const culora_model *m) { return m ? m->ctx : NULL; }
int32_t culora_model_mode(const culora_model *m) { return m ? m->mode : 0; }
int64_t culora_model_n_params(const culora_model *m) { return m ? m->n_params : 0; }
int64_t culora_model_n_trainable(const culora_model *m) { return m ? m->n_trainable : 0; }
int32_t culora_model_n_lora_modules(const culora_model *m) { return m ? m->n_loras + (m->emb_lora ? 1 : 0) : 0; }
int32_t culora_model_quant_format(const culora_model *m) { return m ? m->quant.format : 0; }

void culora_model_set_training(culora_model *m, bool training)
{
    if (m != NULL)
        m->training = training;
}

culora_status culora_model_zero_grad(culora_model *m)
{
    if (m == NULL)
        return CULORA_ERR_INVALID_ARG;
    if (m->n_train == 0)
        return CULORA_OK;
    return culora_memset(m->ctx, m->grad, 0, (size_t)m->n_train * sizeof(float), NULL);
}
