# tests/io — safetensors, Hugging Face configs, PEFT adapters, `culora info`, fuzz corpus replay (label cpu).
culora_add_gtest(test_io LABELS cpu SOURCES
  io/test_safetensors_read.cpp
  io/test_safetensors_malformed.cpp
  io/test_safetensors_write.cpp
  io/test_hf_config.cpp
  io/test_peft_adapter.cpp
  io/test_info_cli.cpp
)
target_compile_definitions(test_io PRIVATE CULORA_CLI_PATH="$<TARGET_FILE:culora_cli>")
add_dependencies(test_io culora_cli)
