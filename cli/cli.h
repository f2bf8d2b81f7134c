/*
 * cli.h — how a subcommand plugs into the culora program. Each command's file defines
 *     const struct culora_cli_command culora_cli_<name> = {"<name>", "<one-line summary>", run};
 * and its module's cli/<module>.cmake adds the file to CULORA_CLI_SOURCES and <name> to
 * CULORA_CLI_COMMANDS; CMake generates the table main.c dispatches on (cli_commands.h).
 */
#ifndef CULORA_CLI_H
#define CULORA_CLI_H

struct culora_cli_command {
    const char *name;
    const char *summary;
    /* argv[0] is the command name; returns the process exit status (0 ok, 1 failure, 2 usage). */
    int (*run)(int argc, char **argv);
};

#endif /* CULORA_CLI_H */
