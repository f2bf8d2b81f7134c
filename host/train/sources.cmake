# host/train — schedules, the trainer loop, checkpoints (CRC-32 from zlib), ReLoRA.
find_package(ZLIB REQUIRED)
list(APPEND CULORA_SOURCES host/train/schedule.c host/train/trainer.c host/train/checkpoint.c host/train/relora.c)
list(APPEND CULORA_LINK_LIBS ZLIB::ZLIB)
# The ReLoRA restart op: dispatcher, CPU reference, CUDA kernels (host/relora_ops.h).
list(APPEND CULORA_SOURCES host/relora/relora_dispatch.c host/cpu/relora.c)
list(APPEND CULORA_CUDA_SOURCES kernels/relora.cu)
