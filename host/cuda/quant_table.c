/*
 * quant_table.c — the CUDA backend's quantized-weight op table (host/quant_ops.h); entries are
 * the checked entry points of kernels/quant_linear.cu (kernels in nf4.cu and int8.cu).
 */
#include "cuda_quant.h"

const struct culora_quant_i culora_cuda_quant_iface = {
    .family = "quant",
    .quantize_workspace = cuda_quant_quantize_workspace,
    .quantize = cuda_quant_quantize,
    .dequantize = cuda_quant_dequantize,
    .linear_workspace = cuda_qlinear_workspace,
    .linear_fwd = cuda_qlinear_fwd,
    .linear_bwd = cuda_qlinear_bwd,
};
