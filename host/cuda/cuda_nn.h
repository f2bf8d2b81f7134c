/*
 * cuda_nn.h — the CUDA backend's transformer ops (host/nn_ops.h): checked entries of
 * kernels/embedding.cu norm.cu rope.cu attention.cu activation.cu cross_entropy.cu optim.cu,
 * filled into the table by host/cuda/nn_table.c. Arguments were checked by the dispatchers.
 */
#ifndef CULORA_HOST_CUDA_NN_H
#define CULORA_HOST_CUDA_NN_H

#include "../nn_ops.h"
#include "cuda_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* embedding.cu */
culora_status cuda_embedding_fwd(culora_backend *be, const struct culora_nn_embedding_args *a, culora_stream s);
culora_status cuda_embedding_bwd_workspace(culora_backend *be, const struct culora_nn_embedding_bwd_args *a,
                                           struct culora_nn_ws *ws);
culora_status cuda_embedding_bwd(culora_backend *be, const struct culora_nn_embedding_bwd_args *a,
                                 const culora_workspace *ws, culora_stream s);
/* norm.cu */
culora_status cuda_layernorm_fwd(culora_backend *be, const struct culora_nn_layernorm_args *a, culora_stream s);
culora_status cuda_layernorm_bwd_workspace(culora_backend *be, const struct culora_nn_layernorm_bwd_args *a,
                                           struct culora_nn_ws *ws);
culora_status cuda_layernorm_bwd(culora_backend *be, const struct culora_nn_layernorm_bwd_args *a,
                                 const culora_workspace *ws, culora_stream s);
culora_status cuda_rmsnorm_fwd(culora_backend *be, const struct culora_nn_rmsnorm_args *a, culora_stream s);
culora_status cuda_rmsnorm_bwd_workspace(culora_backend *be, const struct culora_nn_rmsnorm_bwd_args *a,
                                         struct culora_nn_ws *ws);
culora_status cuda_rmsnorm_bwd(culora_backend *be, const struct culora_nn_rmsnorm_bwd_args *a,
                               const culora_workspace *ws, culora_stream s);
culora_status cuda_bias_grad_workspace(culora_backend *be, const struct culora_nn_bias_grad_args *a,
                                       struct culora_nn_ws *ws);
culora_status cuda_bias_grad(culora_backend *be, const struct culora_nn_bias_grad_args *a, const culora_workspace *ws,
                             culora_stream s);
/* rope.cu */
culora_status cuda_rope_fwd(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s);
culora_status cuda_rope_bwd(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s);
/* attention.cu */
culora_status cuda_attention_fwd_workspace(culora_backend *be, const struct culora_nn_attention_args *a,
                                           struct culora_nn_ws *ws);
culora_status cuda_attention_fwd(culora_backend *be, const struct culora_nn_attention_args *a,
                                 const culora_workspace *ws, culora_stream s);
culora_status cuda_attention_bwd_workspace(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                           struct culora_nn_ws *ws);
culora_status cuda_attention_bwd(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                 const culora_workspace *ws, culora_stream s);
/* activation.cu */
culora_status cuda_gelu_fwd(culora_backend *be, const struct culora_nn_gelu_args *a, culora_stream s);
culora_status cuda_gelu_bwd(culora_backend *be, const struct culora_nn_gelu_bwd_args *a, culora_stream s);
culora_status cuda_swiglu_fwd(culora_backend *be, const struct culora_nn_swiglu_args *a, culora_stream s);
culora_status cuda_swiglu_bwd(culora_backend *be, const struct culora_nn_swiglu_bwd_args *a, culora_stream s);
culora_status cuda_add(culora_backend *be, const struct culora_nn_add_args *a, culora_stream s);
/* cross_entropy.cu */
culora_status cuda_cross_entropy_workspace(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                           struct culora_nn_ws *ws);
culora_status cuda_cross_entropy(culora_backend *be, const struct culora_nn_cross_entropy_args *a,
                                 const culora_workspace *ws, culora_stream s);
/* optim.cu */
culora_status cuda_adamw(culora_backend *be, const struct culora_nn_adamw_args *a, culora_stream s);
culora_status cuda_grad_norm_workspace(culora_backend *be, const struct culora_nn_grad_norm_args *a,
                                       struct culora_nn_ws *ws);
culora_status cuda_grad_norm(culora_backend *be, const struct culora_nn_grad_norm_args *a, const culora_workspace *ws,
                             culora_stream s);
culora_status cuda_cast(culora_backend *be, const struct culora_nn_cast_args *a, culora_stream s);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_CUDA_NN_H */
