/*
 * main.c — the culora command-line tool: parses the subcommand and hands off to it.
 * The only part of culora that prints or exits. Subcommands are added by later modules
 * (train, eval, generate, merge, quantize, hub, info, convert).
 */
#include "culora/culora.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "culora %s — LoRA fine-tuning engine\n"
            "\n"
            "usage: culora <command> [options]\n"
            "       culora --help | --version\n"
            "\n"
            "commands:\n"
            "  version            print the version and the backends this build has\n"
            "\n"
            "Planned (not in this build yet): train, eval, generate, merge, quantize, hub, info, convert.\n"
            "Run 'culora <command> --help' for a command's options.\n",
            culora_version_string());
}

static int cmd_version(void)
{
    printf("culora %s\n", culora_version_string());
    printf("cuda devices: %d\n", culora_cuda_device_count());
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0)
        return cmd_version();
    fprintf(stderr, "culora: unknown command '%s' (see culora --help)\n", cmd);
    return 2;
}
