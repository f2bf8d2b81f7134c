/*
 * quant_ops.h — the op table of the quantized-weight family (NF4, FP4, int8) and its dispatchers.
 * A backend points culora_backend.quant at its table; a NULL entry means the backend lacks the op
 * and its dispatcher returns CULORA_ERR_UNSUPPORTED. Argument checks live in the dispatchers.
 */
#ifndef CULORA_HOST_QUANT_OPS_H
#define CULORA_HOST_QUANT_OPS_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

struct culora_quant_i {
    const char *family; /* "quant" */
    /* ops are added here, one member per op, one args struct per op */
};

extern const struct culora_quant_i culora_cpu_quant_iface;
extern const struct culora_quant_i culora_cuda_quant_iface;

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_QUANT_OPS_H */
