culora_add_gtest(test_hub LABELS cpu SOURCES hub/test_cmaes.cpp)
# LoraHub: the segmented LoRA op's CPU reference and dispatcher, composition, batched vs sequential
# evaluation, gradients, searches, bad input (test_hub_compose); the CUDA kernels against the CPU
# (test_sgmv_cuda, label gpu: skips without a device).
culora_add_gtest(test_hub_compose LABELS cpu SOURCES hub/test_sgmv.cpp hub/test_hub.cpp)
if(CULORA_CUDA)
  culora_add_gtest(test_sgmv_cuda LABELS gpu SOURCES hub/test_sgmv_cuda.cpp)
endif()
