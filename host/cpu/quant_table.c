/*
 * quant_table.c — the CPU backend's quantized-weight op table (host/quant_ops.h).
 */
#include "../quant_ops.h"
#include "cpu_internal.h"

const struct culora_quant_i culora_cpu_quant_iface = {
    .family = "quant",
};
