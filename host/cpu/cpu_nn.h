/*
 * cpu_nn.h — the CPU backend's transformer ops (host/nn_ops.h), one file per family:
 * embedding.c norm.c rope.c attention.c activation.c cross_entropy.c optim.c. fp32 storage,
 * fp64 accumulation for reductions; every reduction runs in an order fixed by the shapes, so
 * results do not depend on the OpenMP thread count.
 */
#ifndef CULORA_HOST_CPU_NN_H
#define CULORA_HOST_CPU_NN_H

#include "../nn_ops.h"
#include "cpu_internal.h"

/* embedding.c */
culora_status cpu_embedding_fwd(culora_backend *be, const struct culora_nn_embedding_args *a, culora_stream s);
culora_status cpu_embedding_bwd(culora_backend *be, const struct culora_nn_embedding_bwd_args *a,
                                const culora_workspace *ws, culora_stream s);
/* norm.c */
culora_status cpu_layernorm_fwd(culora_backend *be, const struct culora_nn_layernorm_args *a, culora_stream s);
culora_status cpu_layernorm_bwd(culora_backend *be, const struct culora_nn_layernorm_bwd_args *a,
                                const culora_workspace *ws, culora_stream s);
culora_status cpu_rmsnorm_fwd(culora_backend *be, const struct culora_nn_rmsnorm_args *a, culora_stream s);
culora_status cpu_rmsnorm_bwd(culora_backend *be, const struct culora_nn_rmsnorm_bwd_args *a,
                              const culora_workspace *ws, culora_stream s);
culora_status cpu_bias_grad(culora_backend *be, const struct culora_nn_bias_grad_args *a, const culora_workspace *ws,
                            culora_stream s);
/* rope.c */
culora_status cpu_rope_fwd(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s);
culora_status cpu_rope_bwd(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s);
/* attention.c */
culora_status cpu_attention_fwd_workspace(culora_backend *be, const struct culora_nn_attention_args *a,
                                          struct culora_nn_ws *ws);
culora_status cpu_attention_fwd(culora_backend *be, const struct culora_nn_attention_args *a,
                                const culora_workspace *ws, culora_stream s);
culora_status cpu_attention_bwd_workspace(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                          struct culora_nn_ws *ws);
culora_status cpu_attention_bwd(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                const culora_workspace *ws, culora_stream s);
/* activation.c */
culora_status cpu_gelu_fwd(culora_backend *be, const struct culora_nn_gelu_args *a, culora_stream s);
culora_status cpu_gelu_bwd(culora_backend *be, const struct culora_nn_gelu_bwd_args *a, culora_stream s);
culora_status cpu_swiglu_fwd(culora_backend *be, const struct culora_nn_swiglu_args *a, culora_stream s);
culora_status cpu_swiglu_bwd(culora_backend *be, const struct culora_nn_swiglu_bwd_args *a, culora_stream s);
culora_status cpu_add(culora_backend *be, const struct culora_nn_add_args *a, culora_stream s);
/* cross_entropy.c */
culora_status cpu_cross_entropy_workspace(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                          struct culora_nn_ws *ws);
culora_status cpu_cross_entropy(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                const culora_workspace *ws, culora_stream s);
/* optim.c */
culora_status cpu_adamw(culora_backend *be, const struct culora_nn_adamw_args *a, culora_stream s);
culora_status cpu_grad_norm_workspace(culora_backend *be, const struct culora_nn_grad_norm_args *a,
                                      struct culora_nn_ws *ws);
culora_status cpu_grad_norm(culora_backend *be, const struct culora_nn_grad_norm_args *a, const culora_workspace *ws,
                            culora_stream s);
culora_status cpu_cast(culora_backend *be, const struct culora_nn_cast_args *a, culora_stream s);

#endif /* CULORA_HOST_CPU_NN_H */
