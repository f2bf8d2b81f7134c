/*
 * convert.c — `culora convert --from llama2c FILE --out DIR`: turns a checkpoint of another
 * program into a Hugging Face model directory (config.json + model.safetensors) that the rest
 * of culora and transformers load. The only source format so far is llama2.c's .bin.
 */
#include "culora/culora.h"
#include "culora/culora_io.h"

#include "cli.h"

#include <stdio.h>
#include <string.h>

int culora_cmd_convert(int argc, char **argv);

const struct culora_cli_command culora_cli_convert = {
    "convert", "convert a llama2.c checkpoint into a Hugging Face LLaMA directory", culora_cmd_convert};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: culora convert --from llama2c FILE --out DIR\n"
            "\n"
            "Converts FILE, a llama2.c checkpoint (the .bin that llama2.c's run.c reads), into DIR\n"
            "(created when absent): config.json (LlamaForCausalLM) and model.safetensors (fp32, Hugging\n"
            "Face names, q/k rows permuted for transformers' rotate_half RoPE). The result loads in\n"
            "culora and in transformers. A malformed or truncated FILE is refused (exit status 1).\n"
            "\n"
            "options:\n"
            "  --from FORMAT   source format: llama2c\n"
            "  --out DIR       output directory\n"
            "  -h, --help      this text\n");
}

static int usage_error(const char *what)
{
    fprintf(stderr, "culora convert: %s\n\n", what);
    usage(stderr);
    return 2;
}

int culora_cmd_convert(int argc, char **argv)
{
    const char *from = NULL, *out = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--from") == 0 || strcmp(a, "--out") == 0) {
            if (i + 1 >= argc)
                return usage_error(strcmp(a, "--from") == 0 ? "--from needs a format" : "--out needs a directory");
            *(strcmp(a, "--from") == 0 ? &from : &out) = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "culora convert: unknown option '%s'\n", a);
            return 2;
        } else if (file == NULL) {
            file = a;
        } else {
            return usage_error("more than one input FILE");
        }
    }
    if (from == NULL)
        return usage_error("--from is required");
    if (strcmp(from, "llama2c") != 0) {
        fprintf(stderr, "culora convert: unknown source format '%s' (supported: llama2c)\n", from);
        return 2;
    }
    if (file == NULL || out == NULL)
        return usage_error(file == NULL ? "an input FILE is required" : "--out DIR is required");

    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    p.backend = CULORA_BACKEND_CPU; /* only for error messages: no device is touched */
    p.workspace_bytes = 64;
    culora_context *ctx = NULL;
    culora_status s = culora_context_create(&p, &ctx);
    if (s == CULORA_OK)
        s = culora_llama2c_convert(ctx, file, out);
    culora_model_config cfg;
    if (s == CULORA_OK)
        s = culora_model_config_load(ctx, out, &cfg); /* read back what was written */
    if (s != CULORA_OK) {
        fprintf(stderr, "culora convert: %s (%s)\n", culora_context_last_error(ctx), culora_status_name(s));
        culora_context_destroy(ctx);
        return 1;
    }
    printf("%s -> %s/config.json + %s/model.safetensors\n", file, out, out);
    printf("%s: hidden %lld, layers %lld, heads %lld / kv heads %lld (head_dim %lld), intermediate %lld, vocab %lld "
           "(%s), max positions %lld\n",
           cfg.architecture, (long long)cfg.hidden_size, (long long)cfg.n_layers, (long long)cfg.n_heads,
           (long long)cfg.n_kv_heads, (long long)cfg.head_dim, (long long)cfg.intermediate_size,
           (long long)cfg.vocab_size, cfg.tie_word_embeddings ? "tied classifier" : "untied classifier",
           (long long)cfg.max_position_embeddings);
    culora_context_destroy(ctx);
    return 0;
}
