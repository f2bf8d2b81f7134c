/*
 * lora_config.c — validated, owned LoRA configs and PEFT's module matching (peft tuners_utils.py
 * check_target_module_exists, utils/other.py get_pattern_key), with PCRE2 for the regexes:
 *   target_modules list:   module == t  or  module ends with "." t
 *   target_modules string: re.fullmatch(target_modules, module); "all-linear" = every linear layer
 *                          of GPT-2 / LLaMA (c_attn c_proj c_fc, q/k/v/o/gate/up/down_proj)
 *   modules_to_save m:     re.match(r"(^|.*\.)m($|\..*)", module) excludes the module
 *   rank/alpha_pattern k:  the first k (in order) with re.match(r"(.*\.)?(k)$", module)
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "lora_config.h"

#include <pcre2.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lora_config_store {
    culora_lora_config view;
    char **targets;
    char *target_regex;
    culora_lora_pattern *rank;
    culora_lora_pattern *alpha;
    char **modules_to_save;
    char *task_type, *base_model, *revision, *init;
    pcre2_code *target_re;  /* NULL for a list or all-linear */
    pcre2_code **rank_re;
    pcre2_code **alpha_re;
    pcre2_code **save_re;
};

static const char *const all_linear[] = {"c_attn", "c_proj", "c_fc", "q_proj", "k_proj", "v_proj",
                                         "o_proj", "gate_proj", "up_proj", "down_proj"};

const culora_lora_config *lora_config_view(const lora_config_store *s)
{
    return &s->view;
}

static void free_strs(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_res(pcre2_code **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        pcre2_code_free(v[i]);
    free(v);
}

void lora_config_store_destroy(lora_config_store *s)
{
    if (s == NULL)
        return;
    free_strs(s->targets, s->view.n_target_modules);
    free(s->target_regex);
    for (size_t i = 0; s->rank && i < s->view.n_rank_pattern; i++)
        free((char *)s->rank[i].key);
    for (size_t i = 0; s->alpha && i < s->view.n_alpha_pattern; i++)
        free((char *)s->alpha[i].key);
    free(s->rank);
    free(s->alpha);
    free_strs(s->modules_to_save, s->view.n_modules_to_save);
    free(s->task_type);
    free(s->base_model);
    free(s->revision);
    free(s->init);
    pcre2_code_free(s->target_re);
    free_res(s->rank_re, s->view.n_rank_pattern);
    free_res(s->alpha_re, s->view.n_alpha_pattern);
    free_res(s->save_re, s->view.n_modules_to_save);
    free(s);
}

/* Compiles a Python-style regex; full = fullmatch semantics (anchored at both ends). */
static culora_status compile(culora_context *ctx, const char *what, const char *field, const char *pattern,
                             bool full, pcre2_code **out)
{
    int err = 0;
    PCRE2_SIZE off = 0;
    uint32_t opts = full ? PCRE2_ANCHORED | PCRE2_ENDANCHORED : PCRE2_ANCHORED;
    *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &err, &off, NULL);
    if (*out == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: %s regex '%s' does not compile at offset %zu: %s", what,
                           field, pattern, (size_t)off, (const char *)msg);
    }
    return CULORA_OK;
}

/* Wraps key as (.*\.)?(key)$ and compiles it anchored at the start (re.match). */
static culora_status compile_wrapped(culora_context *ctx, const char *what, const char *field, const char *pre,
                                     const char *key, const char *post, pcre2_code **out)
{
    size_t n = strlen(pre) + strlen(key) + strlen(post) + 1;
    char *p = malloc(n);
    if (p == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    snprintf(p, n, "%s%s%s", pre, key, post);
    culora_status s = compile(ctx, what, field, p, false, out);
    free(p);
    return s;
}

static culora_status copy_strs(const char *const *src, size_t n, char ***out)
{
    *out = NULL;
    if (n == 0)
        return CULORA_OK;
    char **v = calloc(n, sizeof *v);
    if (v == NULL)
        return CULORA_ERR_OUT_OF_MEMORY;
    *out = v;
    for (size_t i = 0; i < n; i++) {
        v[i] = culora_strdup(src[i] ? src[i] : "");
        if (v[i] == NULL)
            return CULORA_ERR_OUT_OF_MEMORY;
    }
    return CULORA_OK;
}

static culora_status copy_patterns(const culora_lora_pattern *src, size_t n, culora_lora_pattern **out)
{
    *out = NULL;
    if (n == 0)
        return CULORA_OK;
    culora_lora_pattern *v = calloc(n, sizeof *v);
    if (v == NULL)
        return CULORA_ERR_OUT_OF_MEMORY;
    *out = v;
    for (size_t i = 0; i < n; i++) {
        v[i].value = src[i].value;
        v[i].key = culora_strdup(src[i].key ? src[i].key : "");
        if (v[i].key == NULL)
            return CULORA_ERR_OUT_OF_MEMORY;
    }
    return CULORA_OK;
}

static bool dup_or_null(const char *src, char **dst)
{
    *dst = culora_strdup(src);
    return src == NULL || *dst != NULL;
}

static culora_status validate(culora_context *ctx, const char *what, const culora_lora_config *c)
{
    if (c->struct_size < sizeof *c || c->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: culora_lora_config not initialised with "
                           "CULORA_LORA_CONFIG_INIT (struct_size %u, api_version %u)", what,
                           (unsigned)c->struct_size, (unsigned)c->api_version);
    if (c->r <= 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: r = %d must be positive", what, (int)c->r);
    if (!isfinite(c->lora_alpha))
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: lora_alpha is not finite", what);
    if (!(c->lora_dropout >= 0 && c->lora_dropout < 1))
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: lora_dropout = %g is outside [0, 1)", what, c->lora_dropout);
    if (c->target_modules_regex == NULL && c->n_target_modules == 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: target_modules is empty", what);
    if ((c->n_target_modules > 0 && c->target_modules == NULL) || (c->n_rank_pattern > 0 && c->rank_pattern == NULL) ||
        (c->n_alpha_pattern > 0 && c->alpha_pattern == NULL) ||
        (c->n_modules_to_save > 0 && c->modules_to_save == NULL))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: an array is NULL but its count is not 0", what);
    for (size_t i = 0; i < c->n_rank_pattern; i++)
        if (!(c->rank_pattern[i].value >= 1 && c->rank_pattern[i].value <= INT32_MAX &&
              c->rank_pattern[i].value == floor(c->rank_pattern[i].value)))
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: rank_pattern '%s' = %g is not a positive integer", what,
                               c->rank_pattern[i].key ? c->rank_pattern[i].key : "", c->rank_pattern[i].value);
    for (size_t i = 0; i < c->n_alpha_pattern; i++)
        if (!isfinite(c->alpha_pattern[i].value))
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: alpha_pattern '%s' is not finite", what,
                               c->alpha_pattern[i].key ? c->alpha_pattern[i].key : "");
    const char *init = c->init_lora_weights ? c->init_lora_weights : "true";
    if (strcmp(init, "true") != 0 && strcmp(init, "false") != 0 && strcmp(init, "gaussian") != 0)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: init_lora_weights '%s' is not supported (true, false, gaussian); methods such as "
                           "pissa, olora, loftq, corda and eva change the base model's weights", what, init);
    return CULORA_OK;
}

culora_status lora_config_store_create(culora_context *ctx, const char *what, const culora_lora_config *cfg,
                                       lora_config_store **out)
{
    *out = NULL;
    if (cfg == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: config is NULL", what);
    CULORA_TRY(validate(ctx, what, cfg));
    lora_config_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    s->view = *cfg;
    s->view.n_target_modules = cfg->target_modules_regex ? 0 : cfg->n_target_modules;
    culora_status st = CULORA_OK;
    if (copy_strs(cfg->target_modules, s->view.n_target_modules, &s->targets) != CULORA_OK ||
        copy_patterns(cfg->rank_pattern, cfg->n_rank_pattern, &s->rank) != CULORA_OK ||
        copy_patterns(cfg->alpha_pattern, cfg->n_alpha_pattern, &s->alpha) != CULORA_OK ||
        copy_strs(cfg->modules_to_save, cfg->n_modules_to_save, &s->modules_to_save) != CULORA_OK ||
        !dup_or_null(cfg->target_modules_regex, &s->target_regex) || !dup_or_null(cfg->task_type, &s->task_type) ||
        !dup_or_null(cfg->base_model_name_or_path, &s->base_model) || !dup_or_null(cfg->revision, &s->revision) ||
        !dup_or_null(cfg->init_lora_weights ? cfg->init_lora_weights : "true", &s->init)) {
        /* counts must describe what was allocated for destroy() */
        if (s->rank == NULL)
            s->view.n_rank_pattern = 0;
        if (s->alpha == NULL)
            s->view.n_alpha_pattern = 0;
        if (s->modules_to_save == NULL)
            s->view.n_modules_to_save = 0;
        if (s->targets == NULL)
            s->view.n_target_modules = 0;
        st = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
        goto fail;
    }
    s->view.target_modules = (const char *const *)s->targets;
    s->view.target_modules_regex = s->target_regex;
    s->view.rank_pattern = s->rank;
    s->view.alpha_pattern = s->alpha;
    s->view.modules_to_save = (const char *const *)s->modules_to_save;
    s->view.task_type = s->task_type;
    s->view.base_model_name_or_path = s->base_model;
    s->view.revision = s->revision;
    s->view.init_lora_weights = s->init;

    if (s->target_regex != NULL && strcmp(s->target_regex, "all-linear") != 0)
        CULORA_TRY_GOTO(st, compile(ctx, what, "target_modules", s->target_regex, true, &s->target_re), fail);
    s->rank_re = calloc(s->view.n_rank_pattern + 1, sizeof *s->rank_re);
    s->alpha_re = calloc(s->view.n_alpha_pattern + 1, sizeof *s->alpha_re);
    s->save_re = calloc(s->view.n_modules_to_save + 1, sizeof *s->save_re);
    if (s->rank_re == NULL || s->alpha_re == NULL || s->save_re == NULL) {
        st = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
        goto fail;
    }
    for (size_t i = 0; i < s->view.n_rank_pattern; i++)
        CULORA_TRY_GOTO(st, compile_wrapped(ctx, what, "rank_pattern", "(.*\\.)?(", s->rank[i].key, ")$",
                                            &s->rank_re[i]), fail);
    for (size_t i = 0; i < s->view.n_alpha_pattern; i++)
        CULORA_TRY_GOTO(st, compile_wrapped(ctx, what, "alpha_pattern", "(.*\\.)?(", s->alpha[i].key, ")$",
                                            &s->alpha_re[i]), fail);
    for (size_t i = 0; i < s->view.n_modules_to_save; i++)
        CULORA_TRY_GOTO(st, compile_wrapped(ctx, what, "modules_to_save", "(^|.*\\.)", s->modules_to_save[i],
                                            "($|\\..*)", &s->save_re[i]), fail);
    *out = s;
    return CULORA_OK;
fail:
    lora_config_store_destroy(s);
    return st;
}

/* 1 match, 0 no match, <0 error (message recorded). */
static int re_match(culora_context *ctx, const pcre2_code *re, const char *subject, const char *field)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL) {
        culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory matching '%s'", field, subject);
        return -1;
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    culora_fail(ctx, CULORA_ERR_FORMAT, "%s regex failed on module '%s': %s", field, subject, (const char *)msg);
    return -1;
}

static bool suffix_match(const char *name, const char *t)
{
    size_t n = strlen(name), m = strlen(t);
    if (n == m)
        return strcmp(name, t) == 0;
    return n > m && name[n - m - 1] == '.' && strcmp(name + n - m, t) == 0;
}

culora_status lora_config_match(culora_context *ctx, const lora_config_store *s, const char *module_name,
                                bool *targeted, int32_t *r, double *alpha)
{
    bool hit = false;
    int m;
    for (size_t i = 0; i < s->view.n_modules_to_save; i++) {
        if ((m = re_match(ctx, s->save_re[i], module_name, "modules_to_save")) < 0)
            return CULORA_ERR_FORMAT;
        if (m)
            goto patterns; /* never both a LoRA target and a module saved in full */
    }
    if (s->target_re != NULL) {
        if ((m = re_match(ctx, s->target_re, module_name, "target_modules")) < 0)
            return CULORA_ERR_FORMAT;
        hit = m == 1;
    } else if (s->target_regex != NULL) { /* all-linear */
        for (size_t i = 0; i < sizeof all_linear / sizeof all_linear[0] && !hit; i++)
            hit = suffix_match(module_name, all_linear[i]);
    } else {
        for (size_t i = 0; i < s->view.n_target_modules && !hit; i++)
            hit = suffix_match(module_name, s->targets[i]);
    }
patterns:
    if (targeted != NULL)
        *targeted = hit;
    int32_t rr = s->view.r;
    double aa = s->view.lora_alpha;
    for (size_t i = 0; i < s->view.n_rank_pattern; i++) {
        if ((m = re_match(ctx, s->rank_re[i], module_name, "rank_pattern")) < 0)
            return CULORA_ERR_FORMAT;
        if (m) {
            rr = (int32_t)s->rank[i].value;
            break;
        }
    }
    for (size_t i = 0; i < s->view.n_alpha_pattern; i++) {
        if ((m = re_match(ctx, s->alpha_re[i], module_name, "alpha_pattern")) < 0)
            return CULORA_ERR_FORMAT;
        if (m) {
            aa = s->alpha[i].value;
            break;
        }
    }
    if (r != NULL)
        *r = rr;
    if (alpha != NULL)
        *alpha = aa;
    return CULORA_OK;
}
