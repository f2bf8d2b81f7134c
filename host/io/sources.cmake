# host/io — file formats: safetensors (read, write, shards), Hugging Face config.json, PEFT adapters,
# llama2.c checkpoint conversion.
list(APPEND CULORA_SOURCES
  host/io/io_util.c
  host/io/atomic_file.c
  host/io/st_dtype.c
  host/io/safetensors_parse.c
  host/io/safetensors_file.c
  host/io/safetensors_set.c
  host/io/safetensors_write.c
  host/io/tensor_read.c
  host/io/hf_config.c
  host/io/hf_config_write.c
  host/io/model_tensors.c
  host/io/lora_config.c
  host/io/lora_config_json.c
  host/io/peft_adapter.c
  host/io/llama2c.c
)
# PCRE2 for PEFT's regex matching (target_modules as a string, rank_pattern, alpha_pattern).
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
list(APPEND CULORA_LINK_LIBS PkgConfig::PCRE2)
