/*
 * merge.c — `culora merge`: a Hugging Face model with a LoRA adapter merged into its weights.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "cli_util.h"

#include "culora/culora_model.h"

#include <stdio.h>

static int cmd_merge(int argc, char **argv)
{
    const char *model_dir = NULL, *adapter = NULL, *out = NULL;
    const struct cli_opt opts[] = {
        {"model", CLI_STR, &model_dir, "DIR", "base model directory", true},
        {"adapter", CLI_STR, &adapter, "DIR", "PEFT adapter to merge", true},
        {"out", CLI_STR, &out, "DIR", "where to write the merged model", true},
    };
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], "culora merge --model DIR --adapter DIR --out DIR",
                       "Writes W0 + s·B·A for every adapted layer (fp32, fp64 sums) as a Hugging Face model\n"
                       "directory that loads without PEFT.");
    if (rc != -2)
        return rc;
    rc = 0;
    culora_context *ctx = cli_context("cpu", 0);
    if (ctx == NULL)
        return 1;
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.adapter_dir = adapter;
    mp.max_seq = 1;
    culora_model *m = NULL;
    culora_status s = culora_model_load(ctx, model_dir, &mp, &m);
    if (s == CULORA_OK && mkdir_p(out) != 0) {
        fprintf(stderr, "culora merge: cannot create %s\n", out);
        rc = 1;
    } else if (s == CULORA_OK) {
        s = culora_model_save(m, out);
    }
    if (s != CULORA_OK)
        rc = cli_fail("merge", "merging", ctx, s);
    else if (rc == 0) {
        printf("culora merge: %d LoRA modules merged into %s\n", (int)culora_model_n_lora_modules(m), out);
    }
    culora_model_destroy(m);
    culora_context_destroy(ctx);
    return rc;
}

const struct culora_cli_command culora_cli_merge = {"merge", "merge a LoRA adapter into a model (HF format out)",
                                                    cmd_merge};
