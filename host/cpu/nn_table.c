/*
 * nn_table.c — the CPU backend's transformer op table (host/nn_ops.h).
 */
#include "../nn_ops.h"
#include "cpu_internal.h"

const struct culora_nn_i culora_cpu_nn_iface = {
    .family = "nn",
};
