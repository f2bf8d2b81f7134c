# tests/io — safetensors, Hugging Face configs, PEFT adapters, `culora info`, fuzz corpus replay (label cpu).
culora_add_gtest(test_io LABELS cpu SOURCES
  io/test_safetensors_read.cpp
  io/test_safetensors_malformed.cpp
  io/test_safetensors_write.cpp
  io/test_hf_config.cpp
  io/test_peft_adapter.cpp
  io/test_info_cli.cpp
  io/test_fuzz_corpus.cpp
  io/test_export.cpp
  io/test_llama2c.cpp
  io/test_hf_config_write.cpp
)
target_compile_definitions(test_io PRIVATE CULORA_CLI_PATH="$<TARGET_FILE:culora_cli>")
add_dependencies(test_io culora_cli)

# libFuzzer target for the safetensors parser: configure with clang and -DCULORA_FUZZ=ON
# (scripts/fuzz-safetensors.sh does it, instrumenting the library with the sanitizers too).
option(CULORA_FUZZ "Build the libFuzzer target fuzz_safetensors (needs clang)" OFF)
if(CULORA_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "CULORA_FUZZ needs clang as the C compiler (CC=clang-14)")
  endif()
  add_executable(fuzz_safetensors io/fuzz_safetensors.c)
  target_include_directories(fuzz_safetensors PRIVATE ${PROJECT_SOURCE_DIR}/host)
  target_compile_options(fuzz_safetensors PRIVATE -fsanitize=fuzzer,address,undefined ${culora_c_warnings})
  target_link_options(fuzz_safetensors PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_safetensors PRIVATE culora_static)
endif()
