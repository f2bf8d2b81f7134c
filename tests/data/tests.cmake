# Data module tests (sources in tests/dataload/, fixtures in tests/data/data/).
culora_add_gtest(test_data LABELS cpu SOURCES
  dataload/test_tokenizer.cpp
  dataload/test_dataset.cpp
  dataload/test_loader.cpp
)
