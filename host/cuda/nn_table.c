/*
 * nn_table.c — the CUDA backend's transformer op table (host/nn_ops.h); entries are the checked
 * entry points of kernels/ (norm.cu, rope.cu, attention.cu, ...).
 */
#include "../nn_ops.h"
#include "cuda_backend.h"

const struct culora_nn_i culora_cuda_nn_iface = {
    .family = "nn",
};
