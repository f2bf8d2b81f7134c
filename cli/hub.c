/*
 * hub.c — `culora hub`: LoraHub composition of trained adapters for a new task from a few
 * examples (culora_hub.h). Writes OUT/adapter_config.json + OUT/adapter_model.safetensors (the
 * composed adapter, PEFT format) and OUT/hub_weights.json (the weights and scores).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "cli_util.h"

#include "culora/culora_hub.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct progress {
    bool tty, quiet;
};

static int on_progress(const culora_hub_progress *p, void *user)
{
    const struct progress *pg = user;
    if (pg->quiet)
        return 0;
    char el[32];
    cli_duration(p->elapsed_s, el, sizeof el);
    printf("%shub  evaluations %lld/%lld  best objective %.4f  loss %.4f  %s elapsed%s", pg->tty ? "\r\033[K" : "",
           (long long)p->evaluations, (long long)p->budget, p->objective, p->loss, el,
           pg->tty && p->evaluations < p->budget ? "" : "\n");
    fflush(stdout);
    return 0;
}

/* Splits a comma-separated list in place; returns the count (0 on an empty item). */
static int32_t split(char *list, char ***out)
{
    int32_t n = 1;
    for (const char *c = list; *c; c++)
        n += *c == ',';
    char **items = calloc((size_t)n, sizeof *items);
    if (items == NULL)
        return 0;
    int32_t i = 0;
    for (char *tok = strtok(list, ","); tok != NULL && i < n; tok = strtok(NULL, ","))
        items[i++] = tok;
    *out = items;
    return i;
}

/* Tokens a padded example row needs: through its last loss token. */
static int64_t needed_len(culora_context *ctx, const culora_dataset *ds, int32_t seq_len)
{
    int32_t *ids = malloc((size_t)seq_len * sizeof *ids), *tgt = malloc((size_t)seq_len * sizeof *tgt);
    int64_t need = 1;
    for (int64_t r = 0; ids != NULL && tgt != NULL && r < culora_dataset_num_rows(ds); r++) {
        if (culora_dataset_get_row(ctx, ds, r, ids, tgt, NULL, NULL) != CULORA_OK)
            break;
        for (int64_t t = seq_len - 1; t >= 0; t--)
            if (tgt[t] != CULORA_IGNORE_INDEX) {
                need = t + 1 > need ? t + 1 : need;
                break;
            }
    }
    free(ids);
    free(tgt);
    return need;
}

static int write_weights(const char *path, char **names, int32_t n, const double *w, double objective, double loss,
                         int64_t evals, const char *method, const char *compose, double l1)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "culora hub: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "{\n  \"method\": \"%s\",\n  \"compose\": \"%s\",\n  \"l1\": %.17g,\n  \"objective\": %.17g,\n"
               "  \"loss\": %.17g,\n  \"evaluations\": %lld,\n  \"adapters\": [",
            method, compose, l1, objective, loss, (long long)evals);
    for (int32_t i = 0; i < n; i++) {
        fputs(i ? ", \"" : "\"", f);
        for (const char *c = names[i]; *c; c++) /* JSON string escapes */
            if (*c == '"' || *c == '\\')
                fprintf(f, "\\%c", *c);
            else if ((unsigned char)*c < 0x20)
                fprintf(f, "\\u%04x", (unsigned)*c);
            else
                fputc(*c, f);
        fputc('"', f);
    }
    fputs("],\n  \"weights\": [", f);
    for (int32_t i = 0; i < n; i++)
        fprintf(f, "%s%.17g", i ? ", " : "", w[i]);
    fputs("]\n}\n", f);
    if (fclose(f) != 0) {
        fprintf(stderr, "culora hub: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int cmd_hub(int argc, char **argv)
{
    const char *model_dir = NULL, *adapters_arg = NULL, *examples = NULL, *out = NULL, *method = "cma";
    const char *compose = "separate", *device = NULL, *tokenizer = NULL;
    int64_t budget = 40, popsize = 0, seed = 42, seq_len = 0, lorahub_batch = 0;
    double l1 = 0.05, bound = 1.5, sigma0 = 0.5, lr = 0.05;
    bool sequential = false, quiet = false;
    const struct cli_opt opts[] = {
        {"model", CLI_STR, &model_dir, "DIR", "Hugging Face model directory (the adapters' base)", true},
        {"adapters", CLI_STR, &adapters_arg, "A1,A2,...", "PEFT adapter directories to compose", true},
        {"examples", CLI_STR, &examples, "FILE", "few-shot examples: JSONL {prompt, completion} (or {text})", true},
        {"out", CLI_STR, &out, "DIR", "output: composed adapter (PEFT) and hub_weights.json", true},
        {"method", CLI_STR, &method, "M", "cma (CMA-ES, gradient-free; default) or grad (Adam through backward)",
         false},
        {"budget", CLI_INT, &budget, "N", "cma: objective evaluations; grad: steps (default 40)", false},
        {"compose", CLI_STR, &compose, "C", "separate (LoraHub: sum A and B separately; default) or concat "
                                           "(exact sum of B·A, rank N·r)", false},
        {"l1", CLI_F64, &l1, "X", "weight of mean|w| in the objective (default 0.05)", false},
        {"bound", CLI_F64, &bound, "X", "weights stay in [-X, X] (default 1.5)", false},
        {"sigma0", CLI_F64, &sigma0, "X", "cma: initial step size (default 0.5)", false},
        {"popsize", CLI_INT, &popsize, "N", "cma: population (default 4 + 3 ln N)", false},
        {"lr", CLI_F64, &lr, "X", "grad: Adam learning rate on w (default 0.05)", false},
        {"seed", CLI_INT, &seed, "N", "cma: sampling seed (default 42)", false},
        {"sequential", CLI_FLAG, &sequential, NULL, "cma: one forward per candidate instead of one per population",
         false},
        {"lorahub-batch", CLI_INT, &lorahub_batch, "K", "loss as LoraHub computes it: sum of the token-mean loss "
                                                        "of each batch of K examples, over the number of examples "
                                                        "(LoraHub: 5; default 0 = plain token mean)", false},
        {"seq-len", CLI_INT, &seq_len, "N", "tokens per example (default: the longest example)", false},
        {"tokenizer", CLI_STR, &tokenizer, "PATH", "tokenizer (default: the model's tokenizer.json, or bytes)", false},
        {"device", CLI_STR, &device, "DEV", "cpu, cuda or auto", false},
        {"quiet", CLI_FLAG, &quiet, NULL, "no progress line", false},
    };
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0],
                       "culora hub --model DIR --adapters A1,A2,... --examples FILE --out DIR [options]",
                       "Finds weights w for N trained LoRA adapters such that the composed adapter (A = sum w_i A_i, "
                       "B = sum w_i B_i) minimises the loss on a few examples of a new task plus l1 * mean|w| "
                       "(LoraHub), and writes the composed adapter and the weights.");
    if (rc != -2)
        return rc;
    culora_hub_params hp = CULORA_HUB_PARAMS_INIT;
    if (strcmp(method, "cma") == 0) {
        hp.method = CULORA_HUB_CMA;
    } else if (strcmp(method, "grad") == 0) {
        hp.method = CULORA_HUB_GRAD;
    } else {
        fprintf(stderr, "culora hub: --method %s: expected cma or grad\n", method);
        return 2;
    }
    if (strcmp(compose, "separate") == 0) {
        hp.compose = CULORA_HUB_SEPARATE;
    } else if (strcmp(compose, "concat") == 0) {
        hp.compose = CULORA_HUB_CONCAT;
    } else {
        fprintf(stderr, "culora hub: --compose %s: expected separate or concat\n", compose);
        return 2;
    }
    if (budget < 1 || budget > INT32_MAX || popsize < 0 || popsize > INT32_MAX || seq_len < 0 || seq_len > INT32_MAX ||
        lorahub_batch < 0 || lorahub_batch > INT32_MAX) {
        fprintf(stderr, "culora hub: --budget must be >= 1 (got %lld); --popsize, --seq-len, --lorahub-batch >= 0\n",
                (long long)budget);
        return 2;
    }
    hp.budget = (int32_t)budget;
    hp.l1 = l1;
    hp.bound = bound;
    hp.sigma0 = sigma0;
    hp.popsize = (int32_t)popsize;
    hp.lr = lr;
    hp.seed = (uint64_t)seed;
    hp.batched = !sequential;
    hp.lorahub_batch = (int32_t)lorahub_batch;
    struct progress pg = {isatty(1) != 0, quiet};
    hp.callback = on_progress;
    hp.user = &pg;

    char *list = strdup(adapters_arg);
    char **names = NULL;
    const int32_t n = list ? split(list, &names) : 0;
    if (n < 1) {
        fprintf(stderr, "culora hub: --adapters needs a comma-separated list of adapter directories\n");
        free(list);
        return 2;
    }
    culora_context *ctx = cli_context(device, 0);
    culora_adapter **ads = calloc((size_t)n, sizeof *ads);
    double *w = calloc((size_t)n, sizeof *w);
    culora_tokenizer *tok = NULL;
    culora_dataset *ds = NULL;
    culora_hub *hub = NULL;
    culora_adapter *composed = NULL;
    culora_status s = CULORA_OK;
    if (ctx == NULL || ads == NULL || w == NULL) {
        rc = 1;
        goto done;
    }
    for (int32_t i = 0; i < n; i++)
        if ((s = culora_adapter_load(ctx, names[i], &ads[i])) != CULORA_OK) {
            rc = cli_fail("hub", names[i], ctx, s);
            goto done;
        }
    culora_model_config cfg;
    if ((s = culora_model_config_load(ctx, model_dir, &cfg)) != CULORA_OK) {
        rc = cli_fail("hub", model_dir, ctx, s);
        goto done;
    }
    if ((tok = cli_tokenizer(ctx, tokenizer, model_dir, cfg.vocab_size)) == NULL) {
        rc = 1;
        goto done;
    }
    culora_dataset_params dp = CULORA_DATASET_PARAMS_INIT;
    dp.layout = CULORA_DATA_PAD; /* one example per row */
    dp.seq_len = (int32_t)(seq_len > 0 ? seq_len : cfg.max_position_embeddings);
    s = culora_dataset_create(ctx, tok, &examples, 1, &dp, &ds);
    if (s == CULORA_OK && seq_len == 0) { /* rows as long as the longest example, not the model's context */
        const int64_t need = needed_len(ctx, ds, dp.seq_len);
        culora_dataset_destroy(ds);
        ds = NULL;
        dp.seq_len = (int32_t)need;
        s = culora_dataset_create(ctx, tok, &examples, 1, &dp, &ds);
    }
    if (s != CULORA_OK) {
        rc = cli_fail("hub", examples, ctx, s);
        goto done;
    }
    const culora_hub_base base = {model_dir, NULL, 0};
    if ((s = culora_hub_create(ctx, &base, (const culora_adapter *const *)ads, n, (const char *const *)names, ds, &hp,
                               &hub)) != CULORA_OK) {
        rc = cli_fail("hub", "setting up", ctx, s);
        goto done;
    }
    if (!quiet)
        printf("hub: %d adapters, %lld examples of %d tokens, %s search (budget %d%s), %s composition on %s\n", (int)n,
               (long long)culora_dataset_num_rows(ds), (int)dp.seq_len, method, (int)hp.budget,
               hp.method == CULORA_HUB_CMA ? (sequential ? ", sequential" : ", batched populations") : "", compose,
               culora_context_device_name(ctx));
    double objective = 0, loss = 0;
    int64_t evals = 0;
    if ((s = culora_hub_run(hub, w, &objective, &loss, &evals)) != CULORA_OK) {
        rc = cli_fail("hub", "search", ctx, s);
        goto done;
    }
    if ((s = culora_hub_compose(hub, w, &composed)) != CULORA_OK ||
        (s = culora_adapter_save(ctx, composed, out)) != CULORA_OK) {
        rc = cli_fail("hub", out, ctx, s);
        goto done;
    }
    size_t plen = strlen(out) + 32;
    char *path = malloc(plen);
    if (path == NULL) {
        rc = 1;
        goto done;
    }
    snprintf(path, plen, "%s/hub_weights.json", out);
    rc = write_weights(path, names, n, w, objective, loss, evals, method, compose, l1);
    free(path);
    if (rc == 0 && !quiet) {
        for (int32_t i = 0; i < n; i++)
            printf("  %+.4f  %s\n", w[i], names[i]);
        printf("objective %.6f  loss %.6f  (%lld evaluations) -> %s\n", objective, loss, (long long)evals, out);
    }
done:
    culora_adapter_destroy(composed);
    culora_hub_destroy(hub);
    culora_dataset_destroy(ds);
    culora_tokenizer_destroy(tok);
    for (int32_t i = 0; ads != NULL && i < n; i++)
        culora_adapter_destroy(ads[i]);
    free(ads);
    free(w);
    free(names);
    free(list);
    culora_context_destroy(ctx);
    return rc;
}

const struct culora_cli_command culora_cli_hub = {"hub", "compose trained adapters for a new task (LoraHub)", cmd_hub};
