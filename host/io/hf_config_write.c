/*
 * hf_config_write.c — culora_model_config -> Hugging Face config.json, the inverse of
 * hf_config.c. The file holds every field culora_model_config_load reads (so save -> load gives
 * the same struct back) and what transformers needs to build the same model: architectures,
 * model_type, torch_dtype / dtype "float32", and for GPT-2 the attention flags whose defaults
 * culora relies on. RoPE is written the way transformers 4.x writes it (rope_theta, and
 * rope_scaling for llama3), which transformers 5 also reads. Fields culora has no value for
 * (dropouts, initializer_range, ...) are left out, so transformers uses its own defaults.
 *
 * The text is built here rather than by jansson's encoder: the document is flat, its keys and
 * strings are fixed ASCII, and reals are printed in their shortest round-trip form (1e-05,
 * 10000.0) the way Python's json does, which jansson cannot do. The result is parsed back by
 * the loader in the tests.
 */
#include "io_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text buffer; ok turns false on the first allocation failure. */
typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool ok;
    bool first; /* no key written yet in the current object */
} text_buf;

static void buf_append(text_buf *b, const char *s, size_t n)
{
    if (!b->ok)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->ok = false;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_printf(text_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void buf_printf(text_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->ok = false; /* every item written here is short; longer means a bug */
        return;
    }
    buf_append(b, tmp, (size_t)n);
}

/* Starts "key": at the given indent, with the comma the previous entry needs. */
static void key(text_buf *b, int indent, const char *k)
{
    buf_printf(b, "%s\n%*s\"%s\": ", b->first ? "" : ",", indent, "", k);
    b->first = false;
}

static void put_int(text_buf *b, const char *k, int64_t v)
{
    key(b, 2, k);
    buf_printf(b, "%lld", (long long)v);
}

/* v as Python's json.dumps writes a float: the shortest digits that read back as v, in fixed
 * notation when the decimal exponent is in [-4, 16) (10000.0, 0.1) and as 1e-05 otherwise; a
 * locale's decimal comma becomes a point. */
static void format_real(char *out, size_t n, double v)
{
    char sci[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec - 1, v);
        for (char *p = sci; *p; p++)
            if (*p == ',')
                *p = '.';
        if (strtod(sci, NULL) == v)
            break;
    }
    snprintf(sci, sizeof sci, "%.*e", prec - 1, v);
    const char *e = strchr(sci, 'e');
    int exp10 = e != NULL ? atoi(e + 1) : 0;
    if (exp10 >= -4 && exp10 < 16) {
        int decimals = prec - 1 - exp10;
        snprintf(out, n, "%.*f", decimals > 0 ? decimals : 0, v);
    } else {
        snprintf(out, n, "%s", sci);
    }
    for (char *p = out; *p; p++)
        if (*p == ',')
            *p = '.';
    if (strpbrk(out, ".eE") == NULL && strlen(out) + 3 <= n)
        strcat(out, ".0");
}

static void put_real_at(text_buf *b, int indent, const char *k, double v)
{
    char num[64];
    format_real(num, sizeof num, v);
    key(b, indent, k);
    buf_printf(b, "%s", num);
}

static void put_real(text_buf *b, const char *k, double v) { put_real_at(b, 2, k, v); }

static void put_bool(text_buf *b, const char *k, bool v)
{
    key(b, 2, k);
    buf_printf(b, "%s", v ? "true" : "false");
}

/* s is one of this file's constants: plain ASCII without quotes or backslashes. */
static void put_str(text_buf *b, const char *k, const char *s)
{
    key(b, 2, k);
    buf_printf(b, "\"%s\"", s);
}

/* Token id, or null for -1 (absent). */
static void put_token(text_buf *b, const char *k, int64_t id)
{
    key(b, 2, k);
    if (id < 0)
        buf_printf(b, "null");
    else
        buf_printf(b, "%lld", (long long)id);
}

static const char *activation_name(culora_activation a)
{
    switch (a) {
    case CULORA_ACT_GELU_TANH: return "gelu_new";
    case CULORA_ACT_GELU: return "gelu";
    case CULORA_ACT_SILU: return "silu";
    case CULORA_ACT_RELU: return "relu";
    }
    return NULL;
}

static const char *canonical_architecture(culora_arch a)
{
    return a == CULORA_ARCH_GPT2 ? "GPT2LMHeadModel" : a == CULORA_ARCH_LLAMA ? "LlamaForCausalLM" : NULL;
}

/* ---- validation: what the file cannot express, or what the loader would refuse ------------ */

static culora_status bad(culora_context *ctx, const char *path, const char *what)
{
    return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: cannot write config.json: %s", path, what);
}

static culora_status check_positive(culora_context *ctx, const char *path, const char *field, int64_t v)
{
    if (v > 0)
        return CULORA_OK;
    return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: cannot write config.json: %s = %lld must be positive", path,
                       field, (long long)v);
}

static culora_status check_config(culora_context *ctx, const culora_model_config *c, const char *path)
{
    const char *arch = canonical_architecture(c->arch);
    if (arch == NULL)
        return bad(ctx, path, "arch is neither CULORA_ARCH_GPT2 nor CULORA_ARCH_LLAMA");
    if (c->architecture[0] != '\0' && strncmp(c->architecture, arch, sizeof c->architecture) != 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "%s: cannot write config.json: architecture '%.64s' does not match arch (%s)", path,
                           c->architecture, arch);
    CULORA_TRY(check_positive(ctx, path, "vocab_size", c->vocab_size));
    CULORA_TRY(check_positive(ctx, path, "hidden_size", c->hidden_size));
    CULORA_TRY(check_positive(ctx, path, "n_layers", c->n_layers));
    CULORA_TRY(check_positive(ctx, path, "n_heads", c->n_heads));
    CULORA_TRY(check_positive(ctx, path, "n_kv_heads", c->n_kv_heads));
    CULORA_TRY(check_positive(ctx, path, "head_dim", c->head_dim));
    CULORA_TRY(check_positive(ctx, path, "intermediate_size", c->intermediate_size));
    CULORA_TRY(check_positive(ctx, path, "max_position_embeddings", c->max_position_embeddings));
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps))
        return bad(ctx, path, "norm_eps must be positive and finite");
    if (activation_name(c->activation) == NULL)
        return bad(ctx, path, "activation is not a culora_activation value");
    if (c->bos_token_id < -1 || c->eos_token_id < -1)
        return bad(ctx, path, "bos_token_id / eos_token_id must be a token id or -1 (none)");

    if (c->arch == CULORA_ARCH_GPT2) {
        /* GPT2Config has no fields for these: the loader derives them. */
        if (c->n_kv_heads != c->n_heads)
            return bad(ctx, path, "GPT-2 has no grouped-query attention (n_kv_heads must equal n_heads)");
        if (c->head_dim * c->n_heads != c->hidden_size)
            return bad(ctx, path, "GPT-2 needs head_dim * n_heads == hidden_size");
        if (!c->attention_bias || !c->mlp_bias)
            return bad(ctx, path, "GPT-2 always has attention and MLP biases");
        if (c->rope_type != CULORA_ROPE_NONE)
            return bad(ctx, path, "GPT-2 has learned positions, not RoPE (rope_type must be CULORA_ROPE_NONE)");
        return CULORA_OK;
    }
    if (c->activation != CULORA_ACT_SILU)
        return bad(ctx, path, "LLaMA's MLP is SwiGLU (activation must be CULORA_ACT_SILU)");
    if (c->head_dim % 2 != 0)
        return bad(ctx, path, "head_dim must be even for RoPE");
    if (c->n_heads % c->n_kv_heads != 0)
        return bad(ctx, path, "n_heads must be a multiple of n_kv_heads");
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return bad(ctx, path, "rope_theta must be positive and finite");
    if (c->rope_type == CULORA_ROPE_LLAMA3) {
        if (!isfinite(c->rope_factor) || !isfinite(c->rope_low_freq_factor) || !isfinite(c->rope_high_freq_factor))
            return bad(ctx, path, "llama3 RoPE factors must be finite");
        CULORA_TRY(check_positive(ctx, path, "rope_original_max_position_embeddings",
                                  c->rope_original_max_position_embeddings));
    } else if (c->rope_type != CULORA_ROPE_DEFAULT) {
        return bad(ctx, path, "LLaMA needs rope_type CULORA_ROPE_DEFAULT or CULORA_ROPE_LLAMA3");
    }
    return CULORA_OK;
}

/* ---- the two families (keys in sorted order, as transformers writes them) ----------------- */

static void write_gpt2(text_buf *b, const culora_model_config *c)
{
    put_str(b, "activation_function", activation_name(c->activation));
    put_bool(b, "add_cross_attention", false);
    key(b, 2, "architectures");
    buf_printf(b, "[\n    \"GPT2LMHeadModel\"\n  ]");
    put_token(b, "bos_token_id", c->bos_token_id);
    put_str(b, "dtype", "float32");
    put_token(b, "eos_token_id", c->eos_token_id);
    put_real(b, "layer_norm_epsilon", c->norm_eps);
    put_str(b, "model_type", "gpt2");
    put_int(b, "n_embd", c->hidden_size);
    put_int(b, "n_head", c->n_heads);
    put_int(b, "n_inner", c->intermediate_size);
    put_int(b, "n_layer", c->n_layers);
    put_int(b, "n_positions", c->max_position_embeddings);
    put_bool(b, "reorder_and_upcast_attn", false);
    put_bool(b, "scale_attn_by_inverse_layer_idx", false);
    put_bool(b, "scale_attn_weights", true);
    put_bool(b, "tie_word_embeddings", c->tie_word_embeddings);
    put_str(b, "torch_dtype", "float32");
    put_int(b, "vocab_size", c->vocab_size);
}

static void write_llama(text_buf *b, const culora_model_config *c)
{
    key(b, 2, "architectures");
    buf_printf(b, "[\n    \"LlamaForCausalLM\"\n  ]");
    put_bool(b, "attention_bias", c->attention_bias);
    put_token(b, "bos_token_id", c->bos_token_id);
    put_str(b, "dtype", "float32");
    put_token(b, "eos_token_id", c->eos_token_id);
    put_int(b, "head_dim", c->head_dim);
    put_str(b, "hidden_act", "silu");
    put_int(b, "hidden_size", c->hidden_size);
    put_int(b, "intermediate_size", c->intermediate_size);
    put_int(b, "max_position_embeddings", c->max_position_embeddings);
    put_bool(b, "mlp_bias", c->mlp_bias);
    put_str(b, "model_type", "llama");
    put_int(b, "num_attention_heads", c->n_heads);
    put_int(b, "num_hidden_layers", c->n_layers);
    put_int(b, "num_key_value_heads", c->n_kv_heads);
    put_int(b, "pretraining_tp", 1);
    put_real(b, "rms_norm_eps", c->norm_eps);
    key(b, 2, "rope_scaling");
    if (c->rope_type == CULORA_ROPE_LLAMA3) {
        buf_printf(b, "{");
        b->first = true;
        put_real_at(b, 4, "factor", c->rope_factor);
        put_real_at(b, 4, "high_freq_factor", c->rope_high_freq_factor);
        put_real_at(b, 4, "low_freq_factor", c->rope_low_freq_factor);
        key(b, 4, "original_max_position_embeddings");
        buf_printf(b, "%lld", (long long)c->rope_original_max_position_embeddings);
        key(b, 4, "rope_type");
        buf_printf(b, "\"llama3\"\n  }");
    } else {
        buf_printf(b, "null");
    }
    put_real(b, "rope_theta", c->rope_theta);
    put_bool(b, "tie_word_embeddings", c->tie_word_embeddings);
    put_str(b, "torch_dtype", "float32");
    put_int(b, "vocab_size", c->vocab_size);
}

culora_status culora_model_config_save(culora_context *ctx, const culora_model_config *cfg, const char *path_or_dir)
{
    if (cfg == NULL || path_or_dir == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_model_config_save: NULL argument");
    char *file = culora_is_dir(path_or_dir) ? culora_path_join(path_or_dir, "config.json")
                                            : culora_strdup(path_or_dir);
    if (file == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path_or_dir);
    culora_status s = check_config(ctx, cfg, file);
    if (s == CULORA_OK) {
        text_buf b = {NULL, 0, 0, true, true};
        buf_append(&b, "{", 1);
        if (cfg->arch == CULORA_ARCH_GPT2)
            write_gpt2(&b, cfg);
        else
            write_llama(&b, cfg);
        buf_append(&b, "\n}\n", 3);
        if (b.ok)
            s = culora_write_file_atomic(ctx, file, b.data, b.len);
        else
            s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
        free(b.data);
    }
    free(file);
    return s;
}
