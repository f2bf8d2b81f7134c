# cli/io — `culora info FILE_OR_DIR` (cli/info.c).
list(APPEND CULORA_CLI_SOURCES cli/info.c)
list(APPEND CULORA_CLI_COMMANDS info)
# `culora convert` (llama2.c -> Hugging Face, host/io/llama2c.c) registers in its own file; the
# top-level CMakeLists.txt only includes cli/<module>.cmake for the module names it lists.
include(cli/convert.cmake)
