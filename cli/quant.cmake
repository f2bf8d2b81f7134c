# cli/quant — `culora quantize` (cli/quantize.c): bitsandbytes-quantized copies of safetensors models.
list(APPEND CULORA_CLI_SOURCES cli/quantize.c)
list(APPEND CULORA_CLI_COMMANDS quantize)
