list(APPEND CULORA_CLI_SOURCES cli/cli_util.c cli/train.c cli/eval.c cli/generate.c cli/init.c cli/merge.c)
list(APPEND CULORA_CLI_COMMANDS train eval generate init merge)
