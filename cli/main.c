/*
 * main.c — the culora command-line tool: finds the subcommand and hands off to it.
 * The only part of culora that prints or exits. Subcommands live in their own files and are
 * listed in the generated cli_commands.h (see cli/cli.h).
 */
#include "culora/culora.h"

#include "cpu_runtime.h"
#include "cli.h"
#include "cli_commands.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("culora %s\n", culora_version_string());
    printf("cuda devices: %d\n", culora_cuda_device_count());
    printf("cpu blas: OpenBLAS %s kernels\n", openblas_get_corename());
    return 0;
}

static const struct culora_cli_command version_cmd = {"version", "print the version and the GPUs this build sees",
                                                      cmd_version};

static void usage(FILE *f)
{
    fprintf(f,
            "culora %d.%d.%d — LoRA fine-tuning engine\n"
            "\n"
            "usage: culora <command> [options]\n"
            "       culora --help | --version\n"
            "\n"
            "commands:\n",
            CULORA_VERSION_MAJOR, CULORA_VERSION_MINOR, CULORA_VERSION_PATCH);
    fprintf(f, "  %-12s %s\n", version_cmd.name, version_cmd.summary);
    for (int i = 0; culora_cli_commands[i] != NULL; i++)
        fprintf(f, "  %-12s %s\n", culora_cli_commands[i]->name, culora_cli_commands[i]->summary);
    fprintf(f, "\nRun 'culora <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    cli_cpu_runtime(argv);
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
        return cmd_version(argc - 1, argv + 1);
    for (int i = 0; culora_cli_commands[i] != NULL; i++)
        if (strcmp(cmd, culora_cli_commands[i]->name) == 0)
            return culora_cli_commands[i]->run(argc - 1, argv + 1);
    fprintf(stderr, "culora: unknown command '%s' (see culora --help)\n", cmd);
    return 2;
}
