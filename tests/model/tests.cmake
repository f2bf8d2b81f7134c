culora_add_gtest(test_model LABELS cpu SOURCES model/test_model_oracle.cpp model/test_stories260k.cpp model/test_model_qlora.cpp)
if(CULORA_CUDA)
  culora_add_gtest(test_model_cuda LABELS gpu SOURCES model/test_model_cuda.cpp)
endif()
