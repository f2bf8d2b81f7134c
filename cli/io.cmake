# cli/io — `culora info FILE_OR_DIR` (cli/info.c).
list(APPEND CULORA_CLI_SOURCES cli/info.c)
list(APPEND CULORA_CLI_COMMANDS info)
