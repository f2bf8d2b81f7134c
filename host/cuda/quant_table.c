/*
 * quant_table.c — the CUDA backend's quantized-weight op table (host/quant_ops.h); entries are
 * the checked entry points of kernels/ (nf4.cu, int8.cu, ...).
 */
#include "../quant_ops.h"
#include "cuda_backend.h"

const struct culora_quant_i culora_cuda_quant_iface = {
    .family = "quant",
};
