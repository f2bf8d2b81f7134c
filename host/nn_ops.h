/*
 * nn_ops.h — the op table of the transformer family (embedding, norms, RoPE, attention,
 * activations, softmax + cross-entropy, AdamW, ...) and its dispatchers. A backend points
 * culora_backend.nn at its table; a NULL entry means the backend lacks the op and its dispatcher
 * returns CULORA_ERR_UNSUPPORTED. Argument checks live in the dispatchers.
 */
#ifndef CULORA_HOST_NN_OPS_H
#define CULORA_HOST_NN_OPS_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

struct culora_nn_i {
    const char *family; /* "nn" */
    /* ops are added here, one member per op, one args struct per op */
};

extern const struct culora_nn_i culora_cpu_nn_iface;
extern const struct culora_nn_i culora_cuda_nn_iface;

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_NN_OPS_H */
