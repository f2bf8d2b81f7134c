/*
 * generate.c — `culora generate`: text from a model (optionally with an adapter), greedy or
 * sampled.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "cli_util.h"

#include "culora/culora_model.h"

#include <stdlib.h>
#include <string.h>

static int cmd_generate(int argc, char **argv)
{
    const char *model_dir = NULL, *adapter = NULL, *prompt = "", *device = NULL, *tokenizer = NULL;
    int64_t max_new = 64, top_k = 0, seed = 0, max_seq = 0;
    double temperature = 0.8, top_p = 0.95;
    bool greedy = false, ids_out = false;
    const struct cli_opt opts[] = {
        {"model", CLI_STR, &model_dir, "DIR", "Hugging Face model directory", true},
        {"adapter", CLI_STR, &adapter, "DIR", "PEFT adapter to apply", false},
        {"prompt", CLI_STR, &prompt, "TEXT", "text to continue (default: empty, starts from BOS)", false},
        {"max-new", CLI_INT, &max_new, "N", "tokens to generate (default 64)", false},
        {"temperature", CLI_F64, &temperature, "T", "sampling temperature (default 0.8)", false},
        {"top-p", CLI_F64, &top_p, "P", "nucleus sampling (default 0.95)", false},
        {"top-k", CLI_INT, &top_k, "K", "keep the K most likely tokens (default: all)", false},
        {"greedy", CLI_FLAG, &greedy, NULL, "always take the most likely token", false},
        {"seed", CLI_INT, &seed, "N", "sampling seed (default 0)", false},
        {"max-seq", CLI_INT, &max_seq, "N", "context window (default: the model's)", false},
        {"tokenizer", CLI_STR, &tokenizer, "PATH", "tokenizer (default: the model's tokenizer.json, or bytes)", false},
        {"ids", CLI_FLAG, &ids_out, NULL, "also print the token ids", false},
        {"device", CLI_STR, &device, "DEV", "cpu, cuda or auto", false},
    };
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0],
                       "culora generate --model DIR [--adapter DIR] [--prompt TEXT] [options]",
                       "Continues the prompt and prints the text.");
    if (rc != -2)
        return rc;
    rc = 0;
    culora_context *ctx = cli_context(device, 0);
    if (ctx == NULL)
        return 1;
    culora_model_config cfg;
    culora_tokenizer *tok = NULL;
    culora_model *m = NULL;
    int32_t *in = NULL, *out = NULL;
    char *text = NULL;
    culora_status s = culora_model_config_load(ctx, model_dir, &cfg);
    if (s != CULORA_OK) {
        rc = cli_fail("generate", model_dir, ctx, s);
        goto done;
    }
    tok = cli_tokenizer(ctx, tokenizer, model_dir, cfg.vocab_size);
    if (tok == NULL) {
        rc = 1;
        goto done;
    }
    const size_t cap = culora_tokenizer_max_tokens(tok, strlen(prompt)) + 1;
    in = malloc(cap * sizeof *in);
    out = malloc((cap + (size_t)max_new) * sizeof *out);
    if (in == NULL || out == NULL) {
        fprintf(stderr, "culora generate: out of memory\n");
        rc = 1;
        goto done;
    }
    size_t n_in = 0;
    const int32_t bos = culora_tokenizer_bos_id(tok) >= 0 ? culora_tokenizer_bos_id(tok)
                        : cfg.bos_token_id >= 0            ? (int32_t)cfg.bos_token_id
                                                           : -1;
    if (*prompt == '\0' || bos >= 0) {
        if (bos >= 0)
            in[n_in++] = bos;
    }
    size_t n_enc = 0;
    if (*prompt != '\0') {
        s = culora_tokenizer_encode(ctx, tok, prompt, strlen(prompt), 0, in + n_in, cap - n_in, &n_enc);
        if (s != CULORA_OK) {
            rc = cli_fail("generate", "tokenizing the prompt", ctx, s);
            goto done;
        }
        n_in += n_enc;
    }
    if (n_in == 0)
        in[n_in++] = 0;
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.adapter_dir = adapter;
    mp.max_seq = max_seq > 0 ? max_seq : (int64_t)(n_in + (size_t)max_new);
    if (mp.max_seq > cfg.max_position_embeddings)
        mp.max_seq = cfg.max_position_embeddings;
    s = culora_model_load(ctx, model_dir, &mp, &m);
    if (s != CULORA_OK) {
        rc = cli_fail("generate", "loading the model", ctx, s);
        goto done;
    }
    culora_generate_params gp = CULORA_GENERATE_PARAMS_INIT;
    gp.max_new_tokens = (int32_t)max_new;
    gp.temperature = greedy ? 0.0f : (float)temperature;
    gp.top_p = (float)top_p;
    gp.top_k = (int32_t)top_k;
    gp.seed = (uint64_t)seed;
    gp.eos_id = culora_tokenizer_eos_id(tok);
    int64_t n_out = 0;
    s = culora_model_generate(m, in, (int64_t)n_in, &gp, out, &n_out);
    if (s != CULORA_OK) {
        rc = cli_fail("generate", "generating", ctx, s);
        goto done;
    }
    size_t text_cap = 16 * (size_t)n_out + 16, text_len = 0;
    text = malloc(text_cap);
    s = text ? culora_tokenizer_decode(ctx, tok, out, (size_t)n_out, CULORA_DECODE_SKIP_SPECIAL, text, text_cap, &text_len)
             : CULORA_ERR_OUT_OF_MEMORY;
    if (s != CULORA_OK) {
        rc = cli_fail("generate", "decoding", ctx, s);
        goto done;
    }
    fwrite(text, 1, text_len, stdout);
    printf("\n");
    if (ids_out) {
        for (int64_t i = 0; i < n_out; i++)
            printf("%s%d", i ? " " : "", (int)out[i]);
        printf("\n");
    }
done:
    free(in);
    free(out);
    free(text);
    culora_model_destroy(m);
    culora_tokenizer_destroy(tok);
    culora_context_destroy(ctx);
    return rc;
}

const struct culora_cli_command culora_cli_generate = {"generate", "continue a prompt (greedy or sampled)",
                                                       cmd_generate};
