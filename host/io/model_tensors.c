/*
 * model_tensors.c — the parameter tensors a GPT-2 or LLaMA config implies (Hugging Face names and
 * shapes, ecosystem_anchors §3), and the check of a loaded safetensors set against them.
 *
 * GPT-2 (GPT2LMHeadModel; names without the optional "transformer." prefix; Conv1D [in, out]):
 *   wte.weight [V,C]  wpe.weight [T,C]
 *   h.N.ln_1.{weight,bias} [C]  h.N.attn.c_attn.weight [C,3C] .bias [3C]
 *   h.N.attn.c_proj.weight [C,C] .bias [C]  h.N.ln_2.{weight,bias} [C]
 *   h.N.mlp.c_fc.weight [C,I] .bias [I]  h.N.mlp.c_proj.weight [I,C] .bias [C]
 *   ln_f.{weight,bias} [C]  (lm_head.weight [V,C] only when not tied)
 * LLaMA (LlamaForCausalLM; nn.Linear [out, in]; H hidden, hd head_dim, nh / nkv heads, I):
 *   model.embed_tokens.weight [V,H]
 *   model.layers.N.input_layernorm.weight [H]
 *   model.layers.N.self_attn.{q,k,v,o}_proj.weight [nh*hd,H] [nkv*hd,H] [nkv*hd,H] [H,nh*hd] (+bias)
 *   model.layers.N.post_attention_layernorm.weight [H]
 *   model.layers.N.mlp.{gate,up,down}_proj.weight [I,H] [I,H] [H,I] (+bias)
 *   model.norm.weight [H]  lm_head.weight [V,H] (absent when tied)
 */
#include "io_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One per-layer tensor: name suffix and shape as functions of the config. */
typedef enum dim_id { D_NONE, D_V, D_T, D_C, D_3C, D_I, D_Q, D_KV } dim_id;

typedef struct layer_tensor {
    const char *suffix;
    dim_id d0, d1;
    int bias_kind; /* 0 always, 1 with attention_bias, 2 with mlp_bias */
} layer_tensor;

static const layer_tensor gpt2_layer[] = {
    {"ln_1.weight", D_C, D_NONE, 0},          {"ln_1.bias", D_C, D_NONE, 0},
    {"attn.c_attn.weight", D_C, D_3C, 0},     {"attn.c_attn.bias", D_3C, D_NONE, 0},
    {"attn.c_proj.weight", D_C, D_C, 0},      {"attn.c_proj.bias", D_C, D_NONE, 0},
    {"ln_2.weight", D_C, D_NONE, 0},          {"ln_2.bias", D_C, D_NONE, 0},
    {"mlp.c_fc.weight", D_C, D_I, 0},         {"mlp.c_fc.bias", D_I, D_NONE, 0},
    {"mlp.c_proj.weight", D_I, D_C, 0},       {"mlp.c_proj.bias", D_C, D_NONE, 0},
};

static const layer_tensor llama_layer[] = {
    {"input_layernorm.weight", D_C, D_NONE, 0},
    {"self_attn.q_proj.weight", D_Q, D_C, 0},  {"self_attn.q_proj.bias", D_Q, D_NONE, 1},
    {"self_attn.k_proj.weight", D_KV, D_C, 0}, {"self_attn.k_proj.bias", D_KV, D_NONE, 1},
    {"self_attn.v_proj.weight", D_KV, D_C, 0}, {"self_attn.v_proj.bias", D_KV, D_NONE, 1},
    {"self_attn.o_proj.weight", D_C, D_Q, 0},  {"self_attn.o_proj.bias", D_C, D_NONE, 1},
    {"post_attention_layernorm.weight", D_C, D_NONE, 0},
    {"mlp.gate_proj.weight", D_I, D_C, 0},     {"mlp.gate_proj.bias", D_I, D_NONE, 2},
    {"mlp.up_proj.weight", D_I, D_C, 0},       {"mlp.up_proj.bias", D_I, D_NONE, 2},
    {"mlp.down_proj.weight", D_C, D_I, 0},     {"mlp.down_proj.bias", D_C, D_NONE, 2},
};

static int64_t dim_value(const culora_model_config *c, dim_id d)
{
    switch (d) {
    case D_V: return c->vocab_size;
    case D_T: return c->max_position_embeddings;
    case D_C: return c->hidden_size;
    case D_3C: return 3 * c->hidden_size;
    case D_I: return c->intermediate_size;
    case D_Q: return c->n_heads * c->head_dim;
    case D_KV: return c->n_kv_heads * c->head_dim;
    default: return 0;
    }
}

static void set_spec(culora_tensor_spec *s, const culora_model_config *c, const char *name, dim_id d0, dim_id d1)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    s->shape[0] = dim_value(c, d0);
    s->shape[1] = dim_value(c, d1);
    s->n_dims = d1 == D_NONE ? 1 : 2;
    if (d1 == D_NONE)
        s->shape[1] = 0;
}

static bool layer_tensor_present(const culora_model_config *c, const layer_tensor *t)
{
    return t->bias_kind == 0 || (t->bias_kind == 1 && c->attention_bias) || (t->bias_kind == 2 && c->mlp_bias);
}

/* Fills specs (when non-NULL) and returns the count. */
static size_t enumerate(const culora_model_config *c, culora_tensor_spec *specs)
{
    bool gpt2 = c->arch == CULORA_ARCH_GPT2;
    const layer_tensor *lt = gpt2 ? gpt2_layer : llama_layer;
    size_t nlt = gpt2 ? sizeof gpt2_layer / sizeof gpt2_layer[0] : sizeof llama_layer / sizeof llama_layer[0];
    size_t n = 0;
    char name[96];
#define PUT(nm, d0, d1)                                \
    do {                                               \
        if (specs != NULL)                             \
            set_spec(&specs[n], c, (nm), (d0), (d1));  \
        n++;                                           \
    } while (0)
    if (gpt2) {
        PUT("wte.weight", D_V, D_C);
        PUT("wpe.weight", D_T, D_C);
    } else {
        PUT("model.embed_tokens.weight", D_V, D_C);
    }
    for (int64_t l = 0; l < c->n_layers; l++) {
        for (size_t j = 0; j < nlt; j++) {
            if (!layer_tensor_present(c, &lt[j]))
                continue;
            snprintf(name, sizeof name, "%s.%lld.%s", gpt2 ? "h" : "model.layers", (long long)l, lt[j].suffix);
            PUT(name, lt[j].d0, lt[j].d1);
        }
    }
    if (gpt2) {
        PUT("ln_f.weight", D_C, D_NONE);
        PUT("ln_f.bias", D_C, D_NONE);
    } else {
        PUT("model.norm.weight", D_C, D_NONE);
    }
    if (!c->tie_word_embeddings)
        PUT("lm_head.weight", D_V, D_C);
#undef PUT
    return n;
}

static bool config_ok(const culora_model_config *c)
{
    return c != NULL && (c->arch == CULORA_ARCH_GPT2 || c->arch == CULORA_ARCH_LLAMA) && c->n_layers > 0 &&
           c->n_layers < 100000;
}

size_t culora_model_config_n_tensors(const culora_model_config *cfg)
{
    return config_ok(cfg) ? enumerate(cfg, NULL) : 0;
}

culora_status culora_model_config_tensor(culora_context *ctx, const culora_model_config *cfg, size_t i,
                                         culora_tensor_spec *out)
{
    if (!config_ok(cfg) || out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_model_config_tensor: bad config or NULL out");
    size_t n = enumerate(cfg, NULL);
    if (i >= n)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_model_config_tensor: index %zu of %zu", i, n);
    culora_tensor_spec *all = malloc(n * sizeof *all);
    if (all == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_model_config_tensor: out of memory");
    enumerate(cfg, all);
    *out = all[i];
    free(all);
    return CULORA_OK;
}

const culora_tensor_info *culora_model_find_tensor(const culora_model_config *cfg, const culora_safetensors *st,
                                                   const char *name)
{
    if (cfg == NULL || st == NULL || name == NULL)
        return NULL;
    const culora_tensor_info *t = culora_safetensors_find(st, name);
    if (t != NULL || cfg->arch != CULORA_ARCH_GPT2)
        return t;
    char prefixed[128];
    if ((size_t)snprintf(prefixed, sizeof prefixed, "transformer.%s", name) >= sizeof prefixed)
        return NULL;
    return culora_safetensors_find(st, prefixed);
}

static void format_shape(char *buf, size_t n, int32_t n_dims, const int64_t *shape)
{
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int32_t d = 0; d < n_dims && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (len < n)
        snprintf(buf + len, n - len, "]");
}

static bool is_float_dtype(culora_st_dtype d)
{
    return d == CULORA_ST_F32 || d == CULORA_ST_F16 || d == CULORA_ST_BF16;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int cmp_spec_name(const void *a, const void *b)
{
    return strcmp(((const culora_tensor_spec *)a)->name, ((const culora_tensor_spec *)b)->name);
}

/* Checks a tensor that the model does not list: buffers are skipped, a tied lm_head must match. */
static culora_status check_extra(culora_context *ctx, const culora_model_config *cfg, const culora_tensor_info *t,
                                 const culora_tensor_spec *sorted, size_t n)
{
    const char *name = t->name;
    if (cfg->arch == CULORA_ARCH_GPT2 && strncmp(name, "transformer.", 12) == 0)
        name += 12;
    culora_tensor_spec key;
    snprintf(key.name, sizeof key.name, "%s", name);
    if (strlen(name) < sizeof key.name && bsearch(&key, sorted, n, sizeof *sorted, cmp_spec_name) != NULL)
        return CULORA_OK;
    if (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") ||
        ends_with(name, ".rotary_emb.inv_freq"))
        return CULORA_OK; /* non-parameter buffers in older checkpoints */
    if (cfg->tie_word_embeddings && strcmp(name, "lm_head.weight") == 0) {
        int64_t want[2] = {cfg->vocab_size, cfg->hidden_size};
        if (t->n_dims == 2 && t->shape[0] == want[0] && t->shape[1] == want[1])
            return CULORA_OK;
        char got[256];
        format_shape(got, sizeof got, t->n_dims, t->shape);
        return culora_fail(ctx, CULORA_ERR_FORMAT,
                           "%s: tensor '%s' has shape %s but the tied embedding is [%lld, %lld]", t->file, t->name,
                           got, (long long)want[0], (long long)want[1]);
    }
    return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' is not a parameter of %s with this config.json",
                       t->file, t->name, cfg->architecture);
}

culora_status culora_model_config_check(culora_context *ctx, const culora_model_config *cfg,
                                        const culora_safetensors *st)
{
    if (!config_ok(cfg) || st == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_model_config_check: bad config or NULL set");
    size_t n = enumerate(cfg, NULL);
    culora_tensor_spec *specs = malloc(n * sizeof *specs);
    if (specs == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_model_config_check: out of memory");
    enumerate(cfg, specs);

    const char *where = culora_safetensors_file(st, 0) ? culora_safetensors_file(st, 0) : "model";
    culora_status s = CULORA_OK;
    char want[256], got[256];
    for (size_t i = 0; i < n && s == CULORA_OK; i++) {
        const culora_tensor_spec *sp = &specs[i];
        const culora_tensor_info *t = culora_model_find_tensor(cfg, st, sp->name);
        format_shape(want, sizeof want, sp->n_dims, sp->shape);
        if (t == NULL) {
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s%s: tensor '%s' is missing (%s expects shape %s)", where,
                            culora_safetensors_n_files(st) > 1 ? " (and the other shards)" : "", sp->name,
                            cfg->architecture, want);
            break;
        }
        bool same = t->n_dims == sp->n_dims;
        for (int32_t d = 0; same && d < sp->n_dims; d++)
            same = t->shape[d] == sp->shape[d];
        if (!same) {
            format_shape(got, sizeof got, t->n_dims, t->shape);
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' has shape %s but config.json implies %s",
                            t->file, t->name, got, want);
        } else if (!is_float_dtype(t->dtype)) {
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' has dtype %s; expected F32, F16 or BF16", t->file,
                            t->name, culora_st_dtype_name(t->dtype));
        }
    }
    if (s == CULORA_OK) {
        qsort(specs, n, sizeof *specs, cmp_spec_name);
        for (size_t i = 0; i < culora_safetensors_count(st) && s == CULORA_OK; i++)
            s = check_extra(ctx, cfg, culora_safetensors_at(st, i), specs, n);
    }
    free(specs);
    return s;
}
