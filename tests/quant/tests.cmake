# tests/quant — quantized weights: bitsandbytes fixtures (bit-exact), ops and bad input, LoRA with a
# quantized W0, serialization and `culora quantize` (CPU, label cpu); CUDA vs CPU (label gpu, skips
# without a device).
culora_add_gtest(test_quant LABELS cpu SOURCES
  quant/test_quant_bnb.cpp
  quant/test_quant_ops.cpp
  quant/test_quant_lora_cpu.cpp
  quant/test_quant_serialize.cpp
)
# The CLI test runs the culora program.
add_dependencies(test_quant culora_cli)
target_compile_definitions(test_quant PRIVATE CULORA_CLI_PATH="$<TARGET_FILE:culora_cli>")
if(CULORA_CUDA)
  culora_add_gtest(test_quant_cuda LABELS gpu SOURCES quant/test_quant_cuda.cpp)
endif()
