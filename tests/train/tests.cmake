culora_add_gtest(test_train LABELS cpu SOURCES train/test_schedule.cpp train/test_trainer.cpp)
# ReLoRA: the restart op, restarts in the trainer, warm start, resume, quantized base, e2e rank
# (CPU, label cpu); the CUDA restart against the CPU reference (label gpu, skips without a device).
culora_add_gtest(test_relora LABELS cpu SOURCES train/test_relora.cpp)
if(CULORA_CUDA)
  culora_add_gtest(test_relora_cuda LABELS gpu SOURCES train/test_relora_cuda.cpp)
endif()
