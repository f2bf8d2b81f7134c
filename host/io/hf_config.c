/*
 * hf_config.c — Hugging Face config.json -> culora_model_config, for GPT2LMHeadModel and
 * LlamaForCausalLM. Missing fields take the defaults of transformers' GPT2Config / LlamaConfig
 * (configs on the hub often omit them); present fields must have the right JSON type. RoPE is
 * read from transformers 5's "rope_parameters" or the older "rope_theta" + "rope_scaling".
 */
#include "io_internal.h"

#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES ((size_t)16 << 20)

typedef struct cfg_reader {
    culora_context *ctx;
    const char *path;
    json_t *root;
} cfg_reader;

/* Integer field (JSON integer, or null/absent -> def). */
static culora_status get_int(const cfg_reader *r, json_t *obj, const char *key, int64_t def, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return CULORA_OK;
    }
    if (!json_is_integer(v))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not an integer", r->path, key);
    *out = (int64_t)json_integer_value(v);
    return CULORA_OK;
}

static culora_status get_pos_int(const cfg_reader *r, json_t *obj, const char *key, int64_t def, int64_t *out)
{
    CULORA_TRY(get_int(r, obj, key, def, out));
    if (*out <= 0)
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" = %lld must be positive", r->path, key,
                           (long long)*out);
    return CULORA_OK;
}

static culora_status get_num(const cfg_reader *r, json_t *obj, const char *key, double def, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return CULORA_OK;
    }
    if (!json_is_number(v))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not a number", r->path, key);
    *out = json_number_value(v);
    return CULORA_OK;
}

static culora_status get_bool(const cfg_reader *r, json_t *obj, const char *key, bool def, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return CULORA_OK;
    }
    if (!json_is_boolean(v))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not true or false", r->path, key);
    *out = json_is_true(v);
    return CULORA_OK;
}

static culora_status get_str(const cfg_reader *r, json_t *obj, const char *key, const char *def, const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return CULORA_OK;
    }
    if (!json_is_string(v))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not a string", r->path, key);
    *out = json_string_value(v);
    return CULORA_OK;
}

/* bos/eos: integer, list of integers (first used) or null. */
static culora_status get_token_id(const cfg_reader *r, const char *key, int64_t *out)
{
    json_t *v = json_object_get(r->root, key);
    if (json_is_array(v))
        v = json_array_get(v, 0);
    if (v == NULL || json_is_null(v)) {
        *out = -1;
        return CULORA_OK;
    }
    if (!json_is_integer(v))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not an integer or a list of integers", r->path,
                           key);
    *out = (int64_t)json_integer_value(v);
    return CULORA_OK;
}

static culora_status parse_activation(const cfg_reader *r, const char *key, const char *name, culora_activation *out)
{
    static const struct {
        const char *name;
        culora_activation act;
    } table[] = {
        {"gelu_new", CULORA_ACT_GELU_TANH}, {"gelu_pytorch_tanh", CULORA_ACT_GELU_TANH},
        {"gelu_fast", CULORA_ACT_GELU_TANH}, {"gelu", CULORA_ACT_GELU}, {"silu", CULORA_ACT_SILU},
        {"swish", CULORA_ACT_SILU}, {"relu", CULORA_ACT_RELU},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(name, table[i].name) == 0) {
            *out = table[i].act;
            return CULORA_OK;
        }
    }
    return culora_fail(r->ctx, CULORA_ERR_UNSUPPORTED, "%s: %s '%s' is not supported (gelu_new, gelu, silu, relu)",
                       r->path, key, name);
}

static culora_status refuse_if(const cfg_reader *r, bool cond, const char *what)
{
    if (cond)
        return culora_fail(r->ctx, CULORA_ERR_UNSUPPORTED, "%s: %s is not supported", r->path, what);
    return CULORA_OK;
}

static culora_status parse_gpt2(const cfg_reader *r, culora_model_config *c)
{
    json_t *o = r->root;
    CULORA_TRY(get_pos_int(r, o, "vocab_size", 50257, &c->vocab_size));
    CULORA_TRY(get_pos_int(r, o, "n_positions", 1024, &c->max_position_embeddings));
    CULORA_TRY(get_pos_int(r, o, "n_embd", 768, &c->hidden_size));
    CULORA_TRY(get_pos_int(r, o, "n_layer", 12, &c->n_layers));
    CULORA_TRY(get_pos_int(r, o, "n_head", 12, &c->n_heads));
    CULORA_TRY(get_pos_int(r, o, "n_inner", 4 * c->hidden_size, &c->intermediate_size));
    CULORA_TRY(get_num(r, o, "layer_norm_epsilon", 1e-5, &c->norm_eps));
    CULORA_TRY(get_bool(r, o, "tie_word_embeddings", true, &c->tie_word_embeddings));
    const char *act;
    CULORA_TRY(get_str(r, o, "activation_function", "gelu_new", &act));
    CULORA_TRY(parse_activation(r, "activation_function", act, &c->activation));
    bool cross, inv_layer, scale;
    CULORA_TRY(get_bool(r, o, "add_cross_attention", false, &cross));
    CULORA_TRY(get_bool(r, o, "scale_attn_by_inverse_layer_idx", false, &inv_layer));
    CULORA_TRY(get_bool(r, o, "scale_attn_weights", true, &scale));
    CULORA_TRY(refuse_if(r, cross, "add_cross_attention=true"));
    CULORA_TRY(refuse_if(r, inv_layer, "scale_attn_by_inverse_layer_idx=true"));
    CULORA_TRY(refuse_if(r, !scale, "scale_attn_weights=false"));
    if (c->hidden_size % c->n_heads != 0)
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: n_embd %lld is not a multiple of n_head %lld", r->path,
                           (long long)c->hidden_size, (long long)c->n_heads);
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->hidden_size / c->n_heads;
    c->attention_bias = true;
    c->mlp_bias = true;
    c->rope_type = CULORA_ROPE_NONE;
    return CULORA_OK;
}

/* RoPE: transformers >= 5 "rope_parameters" {rope_theta, rope_type, ...}; older "rope_theta" and
 * "rope_scaling" {rope_type|type, factor, ...}. */
static culora_status parse_rope(const cfg_reader *r, culora_model_config *c)
{
    json_t *params = json_object_get(r->root, "rope_parameters");
    json_t *scaling = json_object_get(r->root, "rope_scaling");
    if (params != NULL && !json_is_null(params) && !json_is_object(params))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: \"rope_parameters\" is not an object", r->path);
    if (scaling != NULL && !json_is_null(scaling) && !json_is_object(scaling))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: \"rope_scaling\" is not an object", r->path);
    double theta_top = 10000.0;
    CULORA_TRY(get_num(r, r->root, "rope_theta", 10000.0, &theta_top));
    json_t *spec = json_is_object(params) ? params : json_is_object(scaling) ? scaling : NULL;
    c->rope_theta = theta_top;
    const char *type = "default";
    if (spec != NULL) {
        CULORA_TRY(get_num(r, spec, "rope_theta", theta_top, &c->rope_theta));
        const char *t2 = "default";
        CULORA_TRY(get_str(r, spec, "type", "default", &t2));
        CULORA_TRY(get_str(r, spec, "rope_type", t2, &type));
    }
    if (!(c->rope_theta > 0))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: rope_theta %g must be positive", r->path, c->rope_theta);
    if (strcmp(type, "default") == 0) {
        c->rope_type = CULORA_ROPE_DEFAULT;
        return CULORA_OK;
    }
    if (strcmp(type, "llama3") == 0) {
        c->rope_type = CULORA_ROPE_LLAMA3;
        CULORA_TRY(get_num(r, spec, "factor", 8.0, &c->rope_factor));
        CULORA_TRY(get_num(r, spec, "low_freq_factor", 1.0, &c->rope_low_freq_factor));
        CULORA_TRY(get_num(r, spec, "high_freq_factor", 4.0, &c->rope_high_freq_factor));
        CULORA_TRY(get_pos_int(r, spec, "original_max_position_embeddings", 8192,
                               &c->rope_original_max_position_embeddings));
        return CULORA_OK;
    }
    return culora_fail(r->ctx, CULORA_ERR_UNSUPPORTED, "%s: rope_type '%s' is not supported (default, llama3)",
                       r->path, type);
}

static culora_status parse_llama(const cfg_reader *r, culora_model_config *c)
{
    json_t *o = r->root;
    CULORA_TRY(get_pos_int(r, o, "vocab_size", 32000, &c->vocab_size));
    CULORA_TRY(get_pos_int(r, o, "hidden_size", 4096, &c->hidden_size));
    CULORA_TRY(get_pos_int(r, o, "intermediate_size", 11008, &c->intermediate_size));
    CULORA_TRY(get_pos_int(r, o, "num_hidden_layers", 32, &c->n_layers));
    CULORA_TRY(get_pos_int(r, o, "num_attention_heads", 32, &c->n_heads));
    CULORA_TRY(get_pos_int(r, o, "num_key_value_heads", c->n_heads, &c->n_kv_heads));
    CULORA_TRY(get_pos_int(r, o, "max_position_embeddings", 2048, &c->max_position_embeddings));
    CULORA_TRY(get_num(r, o, "rms_norm_eps", 1e-6, &c->norm_eps));
    CULORA_TRY(get_bool(r, o, "tie_word_embeddings", false, &c->tie_word_embeddings));
    CULORA_TRY(get_bool(r, o, "attention_bias", false, &c->attention_bias));
    CULORA_TRY(get_bool(r, o, "mlp_bias", false, &c->mlp_bias));
    const char *act;
    CULORA_TRY(get_str(r, o, "hidden_act", "silu", &act));
    CULORA_TRY(parse_activation(r, "hidden_act", act, &c->activation));
    if (c->activation != CULORA_ACT_SILU)
        return culora_fail(r->ctx, CULORA_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported for LLaMA (silu)",
                           r->path, act);
    int64_t def_hd = c->hidden_size % c->n_heads == 0 ? c->hidden_size / c->n_heads : 0;
    CULORA_TRY(get_int(r, o, "head_dim", def_hd, &c->head_dim));
    if (c->head_dim <= 0)
        return culora_fail(r->ctx, CULORA_ERR_FORMAT,
                           "%s: hidden_size %lld is not a multiple of num_attention_heads %lld and no head_dim is given",
                           r->path, (long long)c->hidden_size, (long long)c->n_heads);
    if (c->head_dim % 2 != 0)
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: head_dim %lld must be even for RoPE", r->path,
                           (long long)c->head_dim);
    if (c->n_heads % c->n_kv_heads != 0)
        return culora_fail(r->ctx, CULORA_ERR_FORMAT,
                           "%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld", r->path,
                           (long long)c->n_heads, (long long)c->n_kv_heads);
    return parse_rope(r, c);
}

static culora_status parse_config(const cfg_reader *r, culora_model_config *c)
{
    if (!json_is_object(r->root))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: not a JSON object", r->path);
    const char *arch = NULL;
    json_t *archs = json_object_get(r->root, "architectures");
    if (json_is_array(archs) && json_array_size(archs) > 0) {
        arch = json_string_value(json_array_get(archs, 0));
        if (arch == NULL)
            return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: \"architectures\" is not a list of strings", r->path);
        if (json_array_size(archs) > 1)
            return culora_fail(r->ctx, CULORA_ERR_UNSUPPORTED, "%s: several architectures listed; culora loads one",
                               r->path);
    } else {
        const char *mt = json_string_value(json_object_get(r->root, "model_type"));
        if (mt == NULL)
            return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: neither \"architectures\" nor \"model_type\" is given",
                               r->path);
        arch = strcmp(mt, "gpt2") == 0 ? "GPT2LMHeadModel" : strcmp(mt, "llama") == 0 ? "LlamaForCausalLM" : mt;
    }
    memset(c, 0, sizeof *c);
    snprintf(c->architecture, sizeof c->architecture, "%s", arch);
    c->bos_token_id = c->eos_token_id = -1;
    if (strcmp(arch, "GPT2LMHeadModel") == 0) {
        c->arch = CULORA_ARCH_GPT2;
        CULORA_TRY(parse_gpt2(r, c));
    } else if (strcmp(arch, "LlamaForCausalLM") == 0) {
        c->arch = CULORA_ARCH_LLAMA;
        CULORA_TRY(parse_llama(r, c));
    } else {
        return culora_fail(r->ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: unsupported architecture '%s' (culora supports GPT2LMHeadModel and LlamaForCausalLM)",
                           r->path, arch);
    }
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps))
        return culora_fail(r->ctx, CULORA_ERR_FORMAT, "%s: normalisation epsilon %g must be positive", r->path,
                           c->norm_eps);
    CULORA_TRY(get_token_id(r, "bos_token_id", &c->bos_token_id));
    CULORA_TRY(get_token_id(r, "eos_token_id", &c->eos_token_id));
    return CULORA_OK;
}

culora_status culora_model_config_load(culora_context *ctx, const char *path, culora_model_config *out)
{
    if (path == NULL || out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_model_config_load: NULL argument");
    char *file = culora_is_dir(path) ? culora_path_join(path, "config.json") : culora_strdup(path);
    if (file == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    char *text = NULL;
    size_t len = 0;
    culora_status s = culora_read_text_file(ctx, file, CONFIG_MAX_BYTES, &text, &len);
    if (s == CULORA_OK) {
        json_error_t err;
        json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
        if (root == NULL) {
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: not valid JSON at line %d column %d: %s", file, err.line,
                            err.column, err.text);
        } else {
            cfg_reader r = {ctx, file, root};
            culora_model_config c;
            s = parse_config(&r, &c);
            if (s == CULORA_OK)
                *out = c;
            json_decref(root);
        }
    }
    free(text);
    free(file);
    return s;
}
