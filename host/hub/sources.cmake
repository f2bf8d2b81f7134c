# host/hub — LoraHub: CMA-ES, composition of adapters, the search (CMA-ES or gradient), and the
# batched evaluation: the segmented LoRA op (dispatcher here, CPU reference in host/cpu/, CUDA in
# kernels/; header host/sgmv_ops.h) and the model's segmented forward (host/model/model_segments.c,
# listed here so the hub's files stay together). Docs: docs/lorahub.md.
list(APPEND CULORA_SOURCES
  host/hub/cmaes.c
  host/hub/sgmv_dispatch.c
  host/hub/hub.c
  host/hub/hub_compose.c
  host/hub/hub_eval.c
  host/hub/hub_search.c
  host/cpu/sgmv.c
  host/model/model_segments.c
)
list(APPEND CULORA_CUDA_SOURCES
  kernels/sgmv.cu
)
