# tests/quant — quantized weights: bitsandbytes fixtures (bit-exact), ops and bad input, LoRA with a
# quantized W0, serialization (CPU, label cpu); CUDA vs CPU (label gpu, skips without a device).
culora_add_gtest(test_quant LABELS cpu SOURCES
  quant/test_quant_bnb.cpp
  quant/test_quant_ops.cpp
  quant/test_quant_lora_cpu.cpp
)
