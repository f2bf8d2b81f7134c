/*
 * quant_table.c — the CPU backend's quantized-weight op table (host/quant_ops.h).
 */
#include "cpu_quant.h"

const struct culora_quant_i culora_cpu_quant_iface = {
    .family = "quant",
    .quantize_workspace = cpu_quant_quantize_workspace,
    .quantize = cpu_quant_quantize,
    .dequantize = cpu_quant_dequantize,
    .linear_workspace = cpu_qlinear_workspace,
    .linear_fwd = cpu_qlinear_fwd,
    .linear_bwd = cpu_qlinear_bwd,
};
