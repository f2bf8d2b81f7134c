# Data module: tokenizers (byte, byte-level BPE from tokenizer.json or GPT-2 encoder.json +
# vocab.bpe) and the dataset / loader. Pre-tokenizer regexes go through PCRE2 (libpcre2-dev);
# the I/O module may have found it already.
list(APPEND CULORA_SOURCES
  host/data/data_util.c
  host/data/tokenizer.c
  host/data/tokenizer_bytes.c
  host/data/tokenizer_bpe.c
  host/data/pretokenize.c
  host/data/tokenizer_hf.c
  host/data/tokenizer_gpt2.c
  host/data/dataset.c
  host/data/dataset_parse.c
  host/data/loader.c
  host/data/data_position.c
)
if(NOT TARGET PkgConfig::PCRE2)
  pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
endif()
list(APPEND CULORA_LINK_LIBS PkgConfig::PCRE2)
