/*
 * cli_util.h — what the culora subcommands share: option tables (getopt_long with generated
 * help), contexts for --device, tokenizers for a model, and reporting a failed call.
 */
#ifndef CULORA_CLI_UTIL_H
#define CULORA_CLI_UTIL_H

#include "culora/culora.h"
#include "culora/culora_data.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum cli_kind { CLI_STR, CLI_INT, CLI_F64, CLI_FLAG };

struct cli_opt {
    const char *name;    /* long option without "--" */
    enum cli_kind kind;
    void *dst;           /* const char **, int64_t *, double *, bool * */
    const char *arg;     /* metavariable for the help ("DIR", "N"); NULL for flags */
    const char *help;
    bool required;
};

/* Parses argv[1..] (argv[0] is the command). Returns -2 to go on, or the exit status to return
 * (0 after --help, 2 after a usage error, which it reports on stderr). */
int cli_parse(int argc, char **argv, const struct cli_opt *opts, size_t n_opts, const char *synopsis,
              const char *description);

/* A context for --device cpu|cuda|auto (NULL: auto); prints the error and returns NULL on failure. */
culora_context *cli_context(const char *device, int32_t cuda_device);

/* The tokenizer for a model: --tokenizer PATH (a tokenizer.json, a directory holding one, a
 * directory with GPT-2's encoder.json + vocab.bpe, or "bytes"); without it the model directory's
 * tokenizer.json, else the byte tokenizer when the vocabulary has 256 entries. */
culora_tokenizer *cli_tokenizer(culora_context *ctx, const char *tokenizer, const char *model_dir, int64_t vocab_size);

/* Reports a failed library call: "culora <cmd>: <what>: <status name>: <context message>". */
int cli_fail(const char *cmd, const char *what, culora_context *ctx, culora_status s);

/* mkdir -p; 0 on success. */
int mkdir_p(const char *path);

/* Human duration: "1:02:03", "4:05", "12s". */
void cli_duration(double seconds, char *buf, size_t n);

#endif /* CULORA_CLI_UTIL_H */
