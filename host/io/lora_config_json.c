/*
 * lora_config_json.c — adapter_config.json (PEFT LoraConfig.to_dict()) <-> lora_config_store.
 *
 * Read: the fields in culora_lora_config; options that change the adapter's math and culora does
 * not implement are refused with CULORA_ERR_UNSUPPORTED (see `refused` below); keys culora does not
 * know are ignored, as newer PEFT versions add keys that do not matter for LoRA weights.
 * Write: the keys PEFT writes for a plain LoRA adapter, sorted, indented by 2 (json.dumps(...,
 * indent=2, sort_keys=True)), so PEFT's LoraConfig.from_pretrained reads it.
 */
#include "lora_config.h"

#include <jansson.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct parse_state {
    culora_context *ctx;
    const char *path;
    json_t *root;
} parse_state;

static bool is_absent(json_t *v)
{
    return v == NULL || json_is_null(v);
}

/* Non-default values of these keys change the math or the set of adapted modules. */
static culora_status refused(const parse_state *p)
{
    static const char *const must_be_empty[] = {
        "exclude_modules", "layers_to_transform", "layers_pattern", "layer_replication", "target_parameters",
        "alora_invocation_tokens", "trainable_token_indices", "megatron_config", "use_bdlora", "arrow_config",
        "kasa_config", "velora_config", "monteclora_config",
    };
    static const char *const must_be_false[] = {"use_dora", "lora_bias", "use_qalora"};
    for (size_t i = 0; i < sizeof must_be_false / sizeof must_be_false[0]; i++) {
        json_t *v = json_object_get(p->root, must_be_false[i]);
        if (json_is_true(v))
            return culora_fail(p->ctx, CULORA_ERR_UNSUPPORTED, "%s: %s=true is not supported%s", p->path,
                               must_be_false[i],
                               strcmp(must_be_false[i], "use_dora") == 0 ? " (DoRA adapters are refused)" : "");
        if (!is_absent(v) && !json_is_boolean(v))
            return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not true or false", p->path,
                               must_be_false[i]);
    }
    for (size_t i = 0; i < sizeof must_be_empty / sizeof must_be_empty[0]; i++) {
        json_t *v = json_object_get(p->root, must_be_empty[i]);
        bool empty = is_absent(v) || json_is_false(v) || (json_is_array(v) && json_array_size(v) == 0) ||
                     (json_is_object(v) && json_object_size(v) == 0) ||
                     (json_is_string(v) && json_string_length(v) == 0);
        if (!empty)
            return culora_fail(p->ctx, CULORA_ERR_UNSUPPORTED, "%s: %s is set; culora does not support it", p->path,
                               must_be_empty[i]);
    }
    const char *bias = json_string_value(json_object_get(p->root, "bias"));
    if (json_object_get(p->root, "bias") != NULL && bias == NULL)
        return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"bias\" is not a string", p->path);
    if (bias != NULL && strcmp(bias, "none") != 0)
        return culora_fail(p->ctx, CULORA_ERR_UNSUPPORTED, "%s: bias='%s' is not supported (only 'none')", p->path,
                           bias);
    return CULORA_OK;
}

static culora_status opt_string(const parse_state *p, const char *key, const char **out)
{
    json_t *v = json_object_get(p->root, key);
    *out = NULL;
    if (is_absent(v))
        return CULORA_OK;
    if (!json_is_string(v))
        return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not a string or null", p->path, key);
    *out = json_string_value(v);
    return CULORA_OK;
}

static culora_status opt_bool(const parse_state *p, const char *key, bool *out)
{
    json_t *v = json_object_get(p->root, key);
    if (is_absent(v))
        return CULORA_OK;
    if (!json_is_boolean(v))
        return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not true or false", p->path, key);
    *out = json_is_true(v);
    return CULORA_OK;
}

static culora_status opt_number(const parse_state *p, const char *key, double *out)
{
    json_t *v = json_object_get(p->root, key);
    if (is_absent(v))
        return CULORA_OK;
    if (!json_is_number(v))
        return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not a number", p->path, key);
    *out = json_number_value(v);
    return CULORA_OK;
}

/* A list of strings; *out points at a malloc'd array of pointers into the JSON. */
static culora_status string_list(const parse_state *p, const char *key, json_t *v, const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (is_absent(v))
        return CULORA_OK;
    if (!json_is_array(v))
        return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not a list of strings", p->path, key);
    size_t m = json_array_size(v);
    const char **a = malloc((m ? m : 1) * sizeof *a);
    if (a == NULL)
        return culora_fail(p->ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", p->path);
    for (size_t i = 0; i < m; i++) {
        a[i] = json_string_value(json_array_get(v, i));
        if (a[i] == NULL) {
            free(a);
            return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"%s\"[%zu] is not a string", p->path, key, i);
        }
    }
    *out = a;
    *n = m;
    return CULORA_OK;
}

static culora_status pattern_map(const parse_state *p, const char *key, bool integer, culora_lora_pattern **out,
                                 size_t *n)
{
    json_t *v = json_object_get(p->root, key);
    *out = NULL;
    *n = 0;
    if (is_absent(v))
        return CULORA_OK;
    if (!json_is_object(v))
        return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"%s\" is not an object", p->path, key);
    size_t m = json_object_size(v);
    culora_lora_pattern *a = malloc((m ? m : 1) * sizeof *a);
    if (a == NULL)
        return culora_fail(p->ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", p->path);
    const char *k;
    json_t *val;
    size_t i = 0;
    json_object_foreach(v, k, val) {
        if (integer ? !json_is_integer(val) : !json_is_number(val)) {
            free(a);
            return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: %s entry '%s' is not %s", p->path, key, k,
                               integer ? "an integer" : "a number");
        }
        a[i].key = k;
        a[i].value = json_number_value(val);
        i++;
    }
    *out = a;
    *n = m;
    return CULORA_OK;
}

static culora_status fill(const parse_state *p, culora_lora_config *c, const char ***targets, const char ***mts,
                          culora_lora_pattern **rank, culora_lora_pattern **alpha)
{
    json_t *root = p->root;
    const char *peft_type = json_string_value(json_object_get(root, "peft_type"));
    if (peft_type == NULL)
        return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"peft_type\" is missing or not a string", p->path);
    if (strcmp(peft_type, "LORA") != 0)
        return culora_fail(p->ctx, CULORA_ERR_UNSUPPORTED, "%s: peft_type '%s' is not supported (only LORA)", p->path,
                           peft_type);
    CULORA_TRY(refused(p));

    json_t *r = json_object_get(root, "r");
    if (!is_absent(r)) {
        if (!json_is_integer(r) || json_integer_value(r) <= 0 || json_integer_value(r) > INT32_MAX)
            return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"r\" is not a positive integer", p->path);
        c->r = (int32_t)json_integer_value(r);
    }
    CULORA_TRY(opt_number(p, "lora_alpha", &c->lora_alpha));
    CULORA_TRY(opt_number(p, "lora_dropout", &c->lora_dropout));
    CULORA_TRY(opt_bool(p, "use_rslora", &c->use_rslora));
    CULORA_TRY(opt_bool(p, "fan_in_fan_out", &c->fan_in_fan_out));
    CULORA_TRY(opt_string(p, "task_type", &c->task_type));
    CULORA_TRY(opt_string(p, "base_model_name_or_path", &c->base_model_name_or_path));
    CULORA_TRY(opt_string(p, "revision", &c->revision));

    json_t *init = json_object_get(root, "init_lora_weights");
    if (is_absent(init) || json_is_true(init))
        c->init_lora_weights = "true";
    else if (json_is_false(init))
        c->init_lora_weights = "false";
    else if (json_is_string(init))
        c->init_lora_weights = json_string_value(init);
    else
        return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"init_lora_weights\" is not a boolean or a string",
                           p->path);

    json_t *tm = json_object_get(root, "target_modules");
    if (is_absent(tm))
        return culora_fail(p->ctx, CULORA_ERR_FORMAT, "%s: \"target_modules\" is missing or null", p->path);
    if (json_is_string(tm)) {
        c->target_modules_regex = json_string_value(tm);
    } else {
        CULORA_TRY(string_list(p, "target_modules", tm, targets, &c->n_target_modules));
        c->target_modules = *targets;
    }
    CULORA_TRY(string_list(p, "modules_to_save", json_object_get(root, "modules_to_save"), mts,
                           &c->n_modules_to_save));
    c->modules_to_save = *mts;
    CULORA_TRY(pattern_map(p, "rank_pattern", true, rank, &c->n_rank_pattern));
    c->rank_pattern = *rank;
    CULORA_TRY(pattern_map(p, "alpha_pattern", false, alpha, &c->n_alpha_pattern));
    c->alpha_pattern = *alpha;
    return CULORA_OK;
}

culora_status lora_config_parse(culora_context *ctx, const char *path, const char *text, size_t len,
                                lora_config_store **out)
{
    *out = NULL;
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: not valid JSON at line %d column %d: %s", path, err.line,
                           err.column, err.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: not a JSON object", path);
    }
    parse_state p = {ctx, path, root};
    culora_lora_config c = CULORA_LORA_CONFIG_INIT;
    c.task_type = NULL; /* absent means null in a file */
    const char **targets = NULL, **mts = NULL;
    culora_lora_pattern *rank = NULL, *alpha = NULL;
    culora_status s = fill(&p, &c, &targets, &mts, &rank, &alpha);
    if (s == CULORA_OK)
        s = lora_config_store_create(ctx, path, &c, out);
    free(targets);
    free(mts);
    free(rank);
    free(alpha);
    json_decref(root);
    return s;
}

/* Integral values as JSON integers (PEFT writes lora_alpha=16 as 16), others as reals. */
static json_t *number(double v)
{
    if (v == floor(v) && fabs(v) < 9e15)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *str_list(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *pattern_obj(const culora_lora_pattern *v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n; i++)
        if (json_object_set_new(o, v[i].key, number(v[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    return o;
}

culora_status lora_config_to_json(culora_context *ctx, const lora_config_store *s, char **out)
{
    const culora_lora_config *c = lora_config_view(s);
    json_t *o = json_object();
    json_t *init = strcmp(c->init_lora_weights, "true") == 0    ? json_true()
                   : strcmp(c->init_lora_weights, "false") == 0 ? json_false()
                                                                : json_string(c->init_lora_weights);
    json_t *targets = c->target_modules_regex ? json_string(c->target_modules_regex)
                                              : str_list(c->target_modules, c->n_target_modules);
    json_t *mts = c->n_modules_to_save ? str_list(c->modules_to_save, c->n_modules_to_save) : json_null();
    bool ok = o != NULL && init != NULL && targets != NULL && mts != NULL;
    if (ok) {
        struct {
            const char *key;
            json_t *value;
        } kv[] = {
            {"alpha_pattern", pattern_obj(c->alpha_pattern, c->n_alpha_pattern)},
            {"auto_mapping", json_null()},
            {"base_model_name_or_path", str_or_null(c->base_model_name_or_path)},
            {"bias", json_string("none")},
            {"exclude_modules", json_null()},
            {"fan_in_fan_out", json_boolean(c->fan_in_fan_out)},
            {"inference_mode", json_true()},
            {"init_lora_weights", init},
            {"layer_replication", json_null()},
            {"layers_pattern", json_null()},
            {"layers_to_transform", json_null()},
            {"loftq_config", json_object()},
            {"lora_alpha", number(c->lora_alpha)},
            {"lora_bias", json_false()},
            {"lora_dropout", json_real(c->lora_dropout)},
            {"megatron_config", json_null()},
            {"megatron_core", json_string("megatron.core")},
            {"modules_to_save", mts},
            {"peft_type", json_string("LORA")},
            {"r", json_integer(c->r)},
            {"rank_pattern", pattern_obj(c->rank_pattern, c->n_rank_pattern)},
            {"revision", str_or_null(c->revision)},
            {"target_modules", targets},
            {"task_type", str_or_null(c->task_type)},
            {"use_dora", json_false()},
            {"use_rslora", json_boolean(c->use_rslora)},
        };
        init = targets = mts = NULL; /* owned by kv now */
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
            if (kv[i].value == NULL || json_object_set_new(o, kv[i].key, kv[i].value) != 0)
                ok = false;
        }
    }
    json_decref(init);
    json_decref(targets);
    json_decref(mts);
    char *text = ok ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (text == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter_config.json: cannot build the JSON text (out of "
                           "memory or a string that is not valid UTF-8)");
    *out = text;
    return CULORA_OK;
}
