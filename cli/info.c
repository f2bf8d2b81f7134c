/*
 * info.c — `culora info FILE_OR_DIR`: what a safetensors file (or sharded set), a Hugging Face
 * model directory or a PEFT adapter holds. Everything is validated while it is read; any defect
 * ends the command with the library's message and exit status 1.
 */
#define _POSIX_C_SOURCE 200809L
#include "culora/culora.h"
#include "culora/culora_io.h"

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int culora_cmd_info(int argc, char **argv);

const struct culora_cli_command culora_cli_info = {
    "info", "show the tensors, metadata and config of a safetensors file, model or PEFT adapter", culora_cmd_info};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: culora info FILE_OR_DIR\n"
            "\n"
            "Prints the tensors (name, dtype, shape) and metadata of a .safetensors file or a sharded\n"
            "model (model.safetensors.index.json), the config of a Hugging Face model directory\n"
            "(config.json + weights, checked against each other), or the config and LoRA modules of a\n"
            "PEFT adapter directory (adapter_config.json + adapter_model.safetensors).\n"
            "Exits with status 1 and the reason when anything is malformed.\n");
}

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int fail(culora_context *ctx, culora_status s)
{
    fprintf(stderr, "culora info: %s (%s)\n", culora_context_last_error(ctx), culora_status_name(s));
    return 1;
}

static void print_shape(int32_t n_dims, const int64_t *shape)
{
    printf("[");
    for (int32_t d = 0; d < n_dims; d++)
        printf(d ? ", %lld" : "%lld", (long long)shape[d]);
    printf("]");
}

static void print_safetensors(const culora_safetensors *st, const char *what)
{
    size_t n = culora_safetensors_count(st);
    unsigned long long bytes = 0;
    int width = 4;
    for (size_t i = 0; i < n; i++) {
        const culora_tensor_info *t = culora_safetensors_at(st, i);
        bytes += t->n_bytes;
        if ((int)strlen(t->name) > width)
            width = (int)strlen(t->name);
    }
    printf("%s: %zu tensor%s, %llu bytes of data, %zu file%s\n", what, n, n == 1 ? "" : "s", bytes,
           culora_safetensors_n_files(st), culora_safetensors_n_files(st) == 1 ? "" : "s");
    for (size_t i = 0; i < culora_safetensors_n_files(st) && culora_safetensors_n_files(st) > 1; i++)
        printf("  shard %s\n", culora_safetensors_file(st, i));
    size_t nm = culora_safetensors_metadata_count(st);
    if (nm > 0) {
        printf("metadata:\n");
        for (size_t i = 0; i < nm; i++) {
            const char *k, *v;
            culora_safetensors_metadata_at(st, i, &k, &v);
            printf("  %s: %s\n", k, v);
        }
    }
    printf("tensors:\n");
    for (size_t i = 0; i < n; i++) {
        const culora_tensor_info *t = culora_safetensors_at(st, i);
        printf("  %-*s  %-5s ", width, t->name, culora_st_dtype_name(t->dtype));
        print_shape(t->n_dims, t->shape);
        printf("\n");
    }
}

static const char *act_name(culora_activation a)
{
    switch (a) {
    case CULORA_ACT_GELU_TANH: return "gelu (tanh approximation)";
    case CULORA_ACT_GELU: return "gelu (erf)";
    case CULORA_ACT_SILU: return "silu";
    case CULORA_ACT_RELU: return "relu";
    }
    return "?";
}

static void print_model_config(const culora_model_config *c, const char *path)
{
    printf("model config: %s\n", path);
    printf("  architecture             %s\n", c->architecture);
    printf("  vocab_size               %lld\n", (long long)c->vocab_size);
    printf("  hidden_size              %lld\n", (long long)c->hidden_size);
    printf("  layers                   %lld\n", (long long)c->n_layers);
    printf("  heads / kv heads         %lld / %lld (head_dim %lld)\n", (long long)c->n_heads,
           (long long)c->n_kv_heads, (long long)c->head_dim);
    printf("  intermediate_size        %lld\n", (long long)c->intermediate_size);
    printf("  max_position_embeddings  %lld\n", (long long)c->max_position_embeddings);
    printf("  norm_eps                 %g\n", c->norm_eps);
    printf("  activation               %s\n", act_name(c->activation));
    printf("  tie_word_embeddings      %s\n", c->tie_word_embeddings ? "true" : "false");
    printf("  attention / mlp bias     %s / %s\n", c->attention_bias ? "true" : "false",
           c->mlp_bias ? "true" : "false");
    if (c->rope_type == CULORA_ROPE_DEFAULT)
        printf("  rope                     theta %g\n", c->rope_theta);
    else if (c->rope_type == CULORA_ROPE_LLAMA3)
        printf("  rope                     llama3, theta %g, factor %g, low/high freq %g/%g, original max %lld\n",
               c->rope_theta, c->rope_factor, c->rope_low_freq_factor, c->rope_high_freq_factor,
               (long long)c->rope_original_max_position_embeddings);
    else
        printf("  positions                learned (wpe)\n");
}

static int info_model(culora_context *ctx, const char *dir, const char *config_path)
{
    culora_model_config cfg;
    culora_status s = culora_model_config_load(ctx, config_path, &cfg);
    if (s != CULORA_OK)
        return fail(ctx, s);
    print_model_config(&cfg, config_path);
    char *single = join(dir, "model.safetensors"), *index = join(dir, "model.safetensors.index.json");
    bool has_weights = single && index && (is_file(single) || is_file(index));
    free(single);
    free(index);
    if (!has_weights) {
        printf("weights: none in %s\n", dir);
        return 0;
    }
    culora_safetensors *st = NULL;
    s = culora_safetensors_open(ctx, dir, &st);
    if (s != CULORA_OK)
        return fail(ctx, s);
    print_safetensors(st, "weights");
    s = culora_model_config_check(ctx, &cfg, st);
    if (s == CULORA_OK)
        printf("check: the weights match config.json (%zu parameter tensors)\n", culora_model_config_n_tensors(&cfg));
    culora_safetensors_close(st);
    return s == CULORA_OK ? 0 : fail(ctx, s);
}

static void print_list(const char *const *v, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++)
        printf(i ? ", \"%s\"" : "\"%s\"", v[i]);
    printf("]");
}

static void print_patterns(const char *name, const culora_lora_pattern *p, size_t n)
{
    if (n == 0)
        return;
    printf("  %-24s {", name);
    for (size_t i = 0; i < n; i++)
        printf(i ? ", \"%s\": %g" : "\"%s\": %g", p[i].key, p[i].value);
    printf("}\n");
}

static int info_adapter(culora_context *ctx, const char *dir)
{
    culora_adapter *ad = NULL;
    culora_status s = culora_adapter_load(ctx, dir, &ad);
    if (s != CULORA_OK)
        return fail(ctx, s);
    const culora_lora_config *c = culora_adapter_config(ad);
    printf("PEFT LoRA adapter: %s\n", dir);
    printf("  %-24s %s\n", "base_model_name_or_path", c->base_model_name_or_path ? c->base_model_name_or_path : "null");
    printf("  %-24s %s\n", "task_type", c->task_type ? c->task_type : "null");
    printf("  %-24s %d\n", "r", (int)c->r);
    printf("  %-24s %g\n", "lora_alpha", c->lora_alpha);
    printf("  %-24s %g\n", "lora_dropout", c->lora_dropout);
    printf("  %-24s %s\n", "use_rslora", c->use_rslora ? "true" : "false");
    printf("  %-24s %s\n", "fan_in_fan_out", c->fan_in_fan_out ? "true" : "false");
    printf("  %-24s %s\n", "init_lora_weights", c->init_lora_weights);
    printf("  %-24s ", "target_modules");
    if (c->target_modules_regex)
        printf("\"%s\" (regex, full match)\n", c->target_modules_regex);
    else {
        print_list(c->target_modules, c->n_target_modules);
        printf("\n");
    }
    print_patterns("rank_pattern", c->rank_pattern, c->n_rank_pattern);
    print_patterns("alpha_pattern", c->alpha_pattern, c->n_alpha_pattern);
    if (c->n_modules_to_save > 0) {
        printf("  %-24s ", "modules_to_save");
        print_list(c->modules_to_save, c->n_modules_to_save);
        printf("\n");
    }
    size_t n = culora_adapter_n_modules(ad);
    int width = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(culora_adapter_module(ad, i)->name) > width)
            width = (int)strlen(culora_adapter_module(ad, i)->name);
    printf("LoRA modules: %zu\n", n);
    for (size_t i = 0; i < n; i++) {
        const culora_lora_module *m = culora_adapter_module(ad, i);
        printf("  %-*s  r=%d alpha=%g scaling=%g  A [%d, %lld]  B [%lld, %d]%s\n", width, m->name, (int)m->r, m->alpha,
               m->scaling, (int)m->r, (long long)m->in_features, (long long)m->out_features, (int)m->r,
               m->embedding ? "  (embedding)" : "");
    }
    size_t nt = culora_adapter_n_tensors(ad);
    if (nt > 0) {
        printf("full tensors: %zu\n", nt);
        for (size_t i = 0; i < nt; i++) {
            const culora_adapter_tensor *t = culora_adapter_tensor_at(ad, i);
            printf("  %s ", t->name);
            print_shape(t->n_dims, t->shape);
            printf("\n");
        }
    }
    culora_adapter_destroy(ad);
    return 0;
}

static int info_safetensors(culora_context *ctx, const char *path)
{
    culora_safetensors *st = NULL;
    culora_status s = culora_safetensors_open(ctx, path, &st);
    if (s != CULORA_OK)
        return fail(ctx, s);
    print_safetensors(st, path);
    culora_safetensors_close(st);
    return 0;
}

static int info_dir(culora_context *ctx, const char *dir)
{
    char *adapter = join(dir, "adapter_config.json");
    char *config = join(dir, "config.json");
    if (adapter == NULL || config == NULL) {
        free(adapter);
        free(config);
        fprintf(stderr, "culora info: out of memory\n");
        return 1;
    }
    int rc;
    if (is_file(adapter))
        rc = info_adapter(ctx, dir);
    else if (is_file(config))
        rc = info_model(ctx, dir, config);
    else
        rc = info_safetensors(ctx, dir);
    free(adapter);
    free(config);
    return rc;
}

int culora_cmd_info(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[1];
    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    p.backend = CULORA_BACKEND_CPU; /* only for error messages: no device is touched */
    p.workspace_bytes = 64;
    culora_context *ctx = NULL;
    culora_status s = culora_context_create(&p, &ctx);
    if (s != CULORA_OK) {
        fprintf(stderr, "culora info: %s\n", culora_context_last_error(ctx));
        culora_context_destroy(ctx);
        return 1;
    }
    int rc;
    if (is_dir(path)) {
        rc = info_dir(ctx, path);
    } else if (ends_with(path, ".json") && !ends_with(path, ".index.json")) {
        /* adapter_config.json: the adapter in its directory; any other .json: a model config.json */
        const char *slash = strrchr(path, '/');
        char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
        if (dir == NULL) {
            fprintf(stderr, "culora info: out of memory\n");
            rc = 1;
        } else {
            rc = ends_with(path, "adapter_config.json") ? info_adapter(ctx, dir) : info_model(ctx, dir, path);
            free(dir);
        }
    } else {
        rc = info_safetensors(ctx, path);
    }
    fflush(stdout);
    culora_context_destroy(ctx);
    return rc;
}
