culora_add_gtest(test_hub LABELS cpu SOURCES hub/test_cmaes.cpp)
# LoraHub: the segmented LoRA op's CPU reference and dispatcher, composition, batched vs sequential
# evaluation, gradients, searches, bad input (test_hub_compose); the end-to-end run with adapters
# trained in process and the `culora hub` command (test_hub_e2e); the CUDA kernels against the CPU
# (test_sgmv_cuda, label gpu: skips without a device).
culora_add_gtest(test_hub_compose LABELS cpu SOURCES hub/test_sgmv.cpp hub/test_hub.cpp)
culora_add_gtest(test_hub_e2e LABELS cpu e2e SOURCES hub/test_hub_e2e.cpp)
add_dependencies(test_hub_e2e culora_cli)
target_compile_definitions(test_hub_e2e PRIVATE CULORA_CLI_PATH="$<TARGET_FILE:culora_cli>")
if(CULORA_CUDA)
  culora_add_gtest(test_sgmv_cuda LABELS gpu SOURCES hub/test_sgmv_cuda.cpp)
endif()
