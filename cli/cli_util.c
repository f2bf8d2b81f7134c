/*
 * cli_util.c — shared helpers of the culora subcommands (cli_util.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli_util.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void print_help(FILE *f, const struct cli_opt *opts, size_t n, const char *synopsis, const char *description)
{
    fprintf(f, "usage: %s\n\n%s\n\noptions:\n", synopsis, description);
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
        fprintf(f, "  %-26s %s%s\n", left, opts[i].help, opts[i].required ? " (required)" : "");
    }
    fprintf(f, "  %-26s %s\n", "--help", "show this help");
}

int cli_parse(int argc, char **argv, const struct cli_opt *opts, size_t n, const char *synopsis,
              const char *description)
{
    struct option *lo = calloc(n + 2, sizeof *lo);
    bool *seen = calloc(n + 1, sizeof *seen);
    if (lo == NULL || seen == NULL) {
        free(lo);
        free(seen);
        fprintf(stderr, "culora: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        lo[i] = (struct option){opts[i].name, opts[i].kind == CLI_FLAG ? no_argument : required_argument, NULL,
                                (int)(256 + i)};
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    optind = 1;
    opterr = 0;
    int rc = 0, c;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'h') {
            print_help(stdout, opts, n, synopsis, description);
            rc = -1;
            break;
        }
        if (c < 256 || c >= (int)(256 + n)) {
            fprintf(stderr, "%s: unknown or incomplete option '%s' (see --help)\n", argv[0], argv[optind - 1]);
            rc = 2;
            break;
        }
        const struct cli_opt *o = &opts[c - 256];
        seen[c - 256] = true;
        char *end = NULL;
        errno = 0;
        switch (o->kind) {
        case CLI_STR: *(const char **)o->dst = optarg; break;
        case CLI_FLAG: *(bool *)o->dst = true; break;
        case CLI_INT: {
            long long v = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0') {
                fprintf(stderr, "%s: --%s needs an integer, got '%s'\n", argv[0], o->name, optarg);
                rc = 2;
            } else {
                *(int64_t *)o->dst = (int64_t)v;
            }
            break;
        }
        case CLI_F64: {
            double v = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0') {
                fprintf(stderr, "%s: --%s needs a number, got '%s'\n", argv[0], o->name, optarg);
                rc = 2;
            } else {
                *(double *)o->dst = v;
            }
            break;
        }
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", argv[0], argv[optind]);
        rc = 2;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (opts[i].required && !seen[i]) {
            fprintf(stderr, "%s: --%s is required (see --help)\n", argv[0], opts[i].name);
            rc = 2;
        }
    free(lo);
    free(seen);
    return rc == -1 ? 0 : rc == 0 ? -2 : rc; /* -2: go on */
}

culora_context *cli_context(const char *device, int32_t cuda_device)
{
    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    if (device == NULL || strcmp(device, "auto") == 0) {
        p.backend = CULORA_BACKEND_AUTO;
    } else if (strcmp(device, "cpu") == 0) {
        p.backend = CULORA_BACKEND_CPU;
    } else if (strcmp(device, "cuda") == 0) {
        p.backend = CULORA_BACKEND_CUDA;
    } else {
        fprintf(stderr, "culora: --device must be cpu, cuda or auto, not '%s'\n", device);
        return NULL;
    }
    p.device = cuda_device;
    culora_context *ctx = NULL;
    culora_status s = culora_context_create(&p, &ctx);
    if (s != CULORA_OK) {
        fprintf(stderr, "culora: cannot create the %s context: %s: %s\n", device ? device : "auto",
                culora_status_name(s), culora_context_last_error(ctx));
        culora_context_destroy(ctx);
        return NULL;
    }
    return ctx;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

culora_tokenizer *cli_tokenizer(culora_context *ctx, const char *tokenizer, const char *model_dir, int64_t vocab_size)
{
    char a[4096], b[4096];
    culora_tokenizer *tok = NULL;
    culora_status s = CULORA_OK;
    const char *src = tokenizer;
    if (src == NULL && model_dir != NULL) {
        snprintf(a, sizeof a, "%s/tokenizer.json", model_dir);
        if (exists(a))
            src = model_dir;
    }
    if (src == NULL && vocab_size == 256)
        src = "bytes";
    if (src == NULL) {
        fprintf(stderr, "culora: the model has a %lld-token vocabulary and no tokenizer.json: give --tokenizer "
                        "(a tokenizer.json, or a directory with encoder.json and vocab.bpe)\n",
                (long long)vocab_size);
        return NULL;
    }
    if (strcmp(src, "bytes") == 0) {
        s = culora_tokenizer_create_bytes(ctx, &tok);
    } else {
        snprintf(a, sizeof a, "%s/tokenizer.json", src);
        snprintf(b, sizeof b, "%s/encoder.json", src);
        if (exists(a)) {
            s = culora_tokenizer_load_hf(ctx, a, &tok);
        } else if (exists(b)) {
            snprintf(a, sizeof a, "%s/vocab.bpe", src);
            s = culora_tokenizer_load_gpt2(ctx, b, a, &tok);
        } else {
            s = culora_tokenizer_load_hf(ctx, src, &tok);
        }
    }
    if (s != CULORA_OK) {
        fprintf(stderr, "culora: tokenizer %s: %s: %s\n", src, culora_status_name(s), culora_context_last_error(ctx));
        return NULL;
    }
    if (culora_tokenizer_vocab_size(tok) > vocab_size) {
        fprintf(stderr, "culora: the tokenizer has %d tokens but the model's vocabulary only %lld\n",
                (int)culora_tokenizer_vocab_size(tok), (long long)vocab_size);
        culora_tokenizer_destroy(tok);
        return NULL;
    }
    return tok;
}

int cli_fail(const char *cmd, const char *what, culora_context *ctx, culora_status s)
{
    fprintf(stderr, "culora %s: %s: %s: %s\n", cmd, what, culora_status_name(s), culora_context_last_error(ctx));
    return 1;
}

int mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

void cli_duration(double seconds, char *buf, size_t n)
{
    if (!(seconds >= 0) || seconds > 1e8) {
        snprintf(buf, n, "?");
        return;
    }
    long long s = (long long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
    else if (s >= 60)
        snprintf(buf, n, "%lld:%02lld", s / 60, s % 60);
    else
        snprintf(buf, n, "%llds", s);
}
