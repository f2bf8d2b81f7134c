/*
 * init.c — `culora init`: a small GPT-2 or LLaMA model with random weights, in Hugging Face
 * format, for demos, tests and benchmarks.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "cli_util.h"

#include "culora/culora_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[1 << 16];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

static int cmd_init(int argc, char **argv)
{
    const char *arch = "llama", *out = NULL, *tokenizer = NULL;
    int64_t layers = 4, dim = 128, heads = 4, kv_heads = 0, inter = 0, vocab = 256, max_pos = 256, seed = 0;
    bool tie = false;
    const struct cli_opt opts[] = {
        {"arch", CLI_STR, &arch, "ARCH", "gpt2 or llama (default llama)", false},
        {"layers", CLI_INT, &layers, "N", "transformer blocks (default 4)", false},
        {"dim", CLI_INT, &dim, "C", "hidden size (default 128)", false},
        {"heads", CLI_INT, &heads, "H", "attention heads (default 4)", false},
        {"kv-heads", CLI_INT, &kv_heads, "H", "LLaMA key/value heads (default: heads; fewer = GQA)", false},
        {"intermediate", CLI_INT, &inter, "I", "MLP width (default 4·dim for GPT-2, 8/3·dim rounded for LLaMA)", false},
        {"vocab", CLI_INT, &vocab, "V", "vocabulary size (default 256: the byte tokenizer)", false},
        {"max-pos", CLI_INT, &max_pos, "T", "longest sequence (default 256)", false},
        {"tie", CLI_FLAG, &tie, NULL, "LLaMA: tie lm_head to the embedding (GPT-2 always does)", false},
        {"tokenizer", CLI_STR, &tokenizer, "FILE", "copy this tokenizer.json into the model (sets --vocab)", false},
        {"seed", CLI_INT, &seed, "N", "initialisation seed (default 0)", false},
        {"out", CLI_STR, &out, "DIR", "where to write config.json and model.safetensors", true},
    };
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], "culora init --out DIR [options]",
                       "Creates a randomly initialised GPT-2 or LLaMA model (N(0, 0.02) weights as transformers\n"
                       "initialises them) in Hugging Face format.");
    if (rc != -2)
        return rc;
    rc = 0;
    culora_context *ctx = cli_context("cpu", 0);
    if (ctx == NULL)
        return 1;
    culora_tokenizer *tok = NULL;
    if (tokenizer != NULL) {
        tok = cli_tokenizer(ctx, tokenizer, NULL, INT32_MAX);
        if (tok == NULL) {
            culora_context_destroy(ctx);
            return 1;
        }
        vocab = culora_tokenizer_vocab_size(tok);
    }
    culora_model_config c;
    memset(&c, 0, sizeof c);
    const bool gpt2 = strcmp(arch, "gpt2") == 0;
    if (!gpt2 && strcmp(arch, "llama") != 0) {
        fprintf(stderr, "culora init: --arch must be gpt2 or llama\n");
        culora_tokenizer_destroy(tok);
        culora_context_destroy(ctx);
        return 2;
    }
    c.arch = gpt2 ? CULORA_ARCH_GPT2 : CULORA_ARCH_LLAMA;
    c.vocab_size = vocab;
    c.hidden_size = dim;
    c.n_layers = layers;
    c.n_heads = heads;
    c.n_kv_heads = gpt2 || kv_heads <= 0 ? heads : kv_heads;
    c.head_dim = heads > 0 ? dim / heads : 0;
    c.intermediate_size = inter > 0 ? inter : gpt2 ? 4 * dim : (8 * dim / 3 + 7) / 8 * 8;
    c.max_position_embeddings = max_pos;
    c.norm_eps = 1e-5;
    c.activation = gpt2 ? CULORA_ACT_GELU_TANH : CULORA_ACT_SILU;
    c.tie_word_embeddings = gpt2 || tie;
    c.attention_bias = gpt2;
    c.mlp_bias = gpt2;
    c.rope_type = gpt2 ? CULORA_ROPE_NONE : CULORA_ROPE_DEFAULT;
    c.rope_theta = gpt2 ? 0.0 : 10000.0;
    c.bos_token_id = tok && culora_tokenizer_bos_id(tok) >= 0 ? culora_tokenizer_bos_id(tok) : -1;
    c.eos_token_id = tok && culora_tokenizer_eos_id(tok) >= 0 ? culora_tokenizer_eos_id(tok) : -1;
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.max_seq = 1;
    culora_model *m = NULL;
    culora_status s = culora_model_create(ctx, &c, (uint64_t)seed, &mp, &m);
    if (s == CULORA_OK && mkdir_p(out) != 0) {
        fprintf(stderr, "culora init: cannot create %s\n", out);
        rc = 1;
    } else if (s == CULORA_OK) {
        s = culora_model_save(m, out);
    }
    if (s != CULORA_OK) {
        rc = cli_fail("init", "creating the model", ctx, s);
    } else if (rc == 0) {
        if (tokenizer != NULL) {
            char to[4096];
            snprintf(to, sizeof to, "%s/tokenizer.json", out);
            if (copy_file(tokenizer, to) != 0) {
                fprintf(stderr, "culora init: cannot copy %s to %s\n", tokenizer, to);
                rc = 1;
            }
        }
        if (rc == 0)
            printf("culora init: %s model with %lld parameters (%lld layers, dim %lld, %lld heads, vocab %lld) in %s\n",
                   gpt2 ? "GPT-2" : "LLaMA", (long long)culora_model_n_params(m), (long long)layers, (long long)dim,
                   (long long)heads, (long long)vocab, out);
    }
    culora_model_destroy(m);
    culora_tokenizer_destroy(tok);
    culora_context_destroy(ctx);
    return rc;
}

const struct culora_cli_command culora_cli_init = {"init", "create a small random GPT-2 or LLaMA model (HF format)",
                                                   cmd_init};
