# cli/convert — `culora convert --from llama2c FILE --out DIR` (cli/convert.c).
list(APPEND CULORA_CLI_SOURCES cli/convert.c)
list(APPEND CULORA_CLI_COMMANDS convert)
