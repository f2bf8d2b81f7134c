culora_add_gtest(test_hub LABELS cpu SOURCES hub/test_cmaes.cpp)
# The segmented LoRA op: CPU reference and dispatcher (test_hub_compose); the CUDA kernels against
# the CPU (test_sgmv_cuda, label gpu: skips without a device).
culora_add_gtest(test_hub_compose LABELS cpu SOURCES hub/test_sgmv.cpp)
if(CULORA_CUDA)
  culora_add_gtest(test_sgmv_cuda LABELS gpu SOURCES hub/test_sgmv_cuda.cpp)
endif()
