/*
 * eval.c — `culora eval`: mean loss and perplexity of a model (optionally with an adapter) on a
 * text or JSONL file.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "cli_util.h"

#include "culora/culora_model.h"

#include <math.h>
#include <stdlib.h>

static int cmd_eval(int argc, char **argv)
{
    const char *model_dir = NULL, *adapter = NULL, *data = NULL, *device = NULL, *tokenizer = NULL;
    int64_t seq_len = 256, batch = 8, max_batches = 0;
    const struct cli_opt opts[] = {
        {"model", CLI_STR, &model_dir, "DIR", "Hugging Face model directory", true},
        {"adapter", CLI_STR, &adapter, "DIR", "PEFT adapter to apply", false},
        {"data", CLI_STR, &data, "FILE", "text (.txt) or JSONL to score", true},
        {"tokenizer", CLI_STR, &tokenizer, "PATH", "tokenizer (default: the model's tokenizer.json, or bytes)", false},
        {"seq-len", CLI_INT, &seq_len, "N", "tokens per sequence (default 256)", false},
        {"batch", CLI_INT, &batch, "B", "sequences per batch (default 8)", false},
        {"max-batches", CLI_INT, &max_batches, "N", "stop after N batches (default: all)", false},
        {"device", CLI_STR, &device, "DEV", "cpu, cuda or auto", false},
    };
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], "culora eval --model DIR --data FILE [options]",
                       "Prints the mean cross-entropy over the data's loss tokens and its perplexity.");
    if (rc != -2)
        return rc;
    rc = 0;
    culora_context *ctx = cli_context(device, 0);
    if (ctx == NULL)
        return 1;
    culora_model_config cfg;
    culora_tokenizer *tok = NULL;
    culora_dataset *ds = NULL;
    culora_loader *ld = NULL;
    culora_model *m = NULL;
    int32_t *ids = NULL, *tgt = NULL;
    culora_status s = culora_model_config_load(ctx, model_dir, &cfg);
    if (s != CULORA_OK) {
        rc = cli_fail("eval", model_dir, ctx, s);
        goto done;
    }
    tok = cli_tokenizer(ctx, tokenizer, model_dir, cfg.vocab_size);
    if (tok == NULL) {
        rc = 1;
        goto done;
    }
    culora_dataset_params dp = CULORA_DATASET_PARAMS_INIT;
    dp.seq_len = (int32_t)seq_len;
    s = culora_dataset_create(ctx, tok, &data, 1, &dp, &ds);
    culora_loader_params lp = CULORA_LOADER_PARAMS_INIT;
    lp.batch_size = (int32_t)batch;
    lp.shuffle = 0;
    if (s == CULORA_OK)
        s = culora_loader_create(ctx, ds, &lp, &ld);
    if (s != CULORA_OK) {
        rc = cli_fail("eval", data, ctx, s);
        goto done;
    }
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.adapter_dir = adapter;
    mp.max_batch = batch;
    mp.max_seq = seq_len;
    s = culora_model_load(ctx, model_dir, &mp, &m);
    if (s != CULORA_OK) {
        rc = cli_fail("eval", "loading the model", ctx, s);
        goto done;
    }
    ids = malloc((size_t)(batch * seq_len) * sizeof *ids);
    tgt = malloc((size_t)(batch * seq_len) * sizeof *tgt);
    if (ids == NULL || tgt == NULL) {
        fprintf(stderr, "culora eval: out of memory\n");
        rc = 1;
        goto done;
    }
    uint64_t n_batches = culora_loader_steps_per_epoch(ld);
    if (max_batches > 0 && (uint64_t)max_batches < n_batches)
        n_batches = (uint64_t)max_batches;
    double sum = 0.0;
    int64_t tokens = 0;
    for (uint64_t i = 0; i < n_batches; i++) {
        culora_batch b = {ids, tgt, NULL, NULL, 0, 0, 0, 0};
        float l = 0;
        s = culora_loader_next(ctx, ld, &b);
        if (s == CULORA_OK)
            s = culora_model_forward(m, ids, tgt, batch, seq_len, &l);
        if (s != CULORA_OK) {
            rc = cli_fail("eval", "forward", ctx, s);
            goto done;
        }
        if (b.n_loss_tokens > 0) {
            sum += (double)l * (double)b.n_loss_tokens;
            tokens += b.n_loss_tokens;
        }
    }
    if (tokens == 0) {
        fprintf(stderr, "culora eval: the data has no tokens to score\n");
        rc = 1;
        goto done;
    }
    printf("loss %.6f  perplexity %.4f  (%lld tokens, %llu batches)\n", sum / (double)tokens, exp(sum / (double)tokens),
           (long long)tokens, (unsigned long long)n_batches);
done:
    free(ids);
    free(tgt);
    culora_model_destroy(m);
    culora_loader_destroy(ld);
    culora_dataset_destroy(ds);
    culora_tokenizer_destroy(tok);
    culora_context_destroy(ctx);
    return rc;
}

const struct culora_cli_command culora_cli_eval = {"eval", "loss and perplexity of a model (and adapter) on data",
                                                   cmd_eval};
