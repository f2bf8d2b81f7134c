# host/quant — quantized frozen weights (NF4, FP4, double quantization, int8 / LLM.int8),
# bit-compatible with bitsandbytes: formats, dispatchers, serialization; the CPU reference in
# host/cpu/ and the CUDA kernels in kernels/. Docs: docs/kernels/nf4.md, docs/kernels/int8.md.
list(APPEND CULORA_SOURCES
  host/quant/quant_format.c
  host/quant/quant_dispatch.c
  host/quant/bnb_serialize.c
  host/cpu/nf4.c
  host/cpu/int8.c
  host/cpu/quant_linear.c
)
list(APPEND CULORA_CUDA_SOURCES
  kernels/nf4.cu
  kernels/int8.cu
  kernels/quant_linear.cu
)
