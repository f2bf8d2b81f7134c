# host/hub — LoraHub: CMA-ES and the segmented LoRA op the batched evaluation uses (dispatcher here,
# CPU reference in host/cpu/, CUDA in kernels/; header host/sgmv_ops.h). Docs: docs/lorahub.md.
list(APPEND CULORA_SOURCES
  host/hub/cmaes.c
  host/hub/sgmv_dispatch.c
  host/cpu/sgmv.c
)
list(APPEND CULORA_CUDA_SOURCES
  kernels/sgmv.cu
)
