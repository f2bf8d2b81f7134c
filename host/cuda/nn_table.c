/*
 * nn_table.c — the CUDA backend's transformer op table (host/nn_ops.h); entries are the checked
 * entry points of kernels/ (embedding.cu, norm.cu, rope.cu, attention.cu, ...), declared in cuda_nn.h.
 */
#include "cuda_nn.h"

const struct culora_nn_i culora_cuda_nn_iface = {
    .family = "nn",
    .embedding_fwd = cuda_embedding_fwd,
    .embedding_bwd_workspace = cuda_embedding_bwd_workspace,
    .embedding_bwd = cuda_embedding_bwd,
    .layernorm_fwd = cuda_layernorm_fwd,
    .layernorm_bwd_workspace = cuda_layernorm_bwd_workspace,
    .layernorm_bwd = cuda_layernorm_bwd,
    .rmsnorm_fwd = cuda_rmsnorm_fwd,
    .rmsnorm_bwd_workspace = cuda_rmsnorm_bwd_workspace,
    .rmsnorm_bwd = cuda_rmsnorm_bwd,
    .bias_grad_workspace = cuda_bias_grad_workspace,
    .bias_grad = cuda_bias_grad,
    .rope_fwd = cuda_rope_fwd,
    .rope_bwd = cuda_rope_bwd,
    .attention_fwd_workspace = cuda_attention_fwd_workspace,
    .attention_fwd = cuda_attention_fwd,
    .attention_bwd_workspace = cuda_attention_bwd_workspace,
    .attention_bwd = cuda_attention_bwd,
    .gelu_fwd = cuda_gelu_fwd,
    .gelu_bwd = cuda_gelu_bwd,
    .swiglu_fwd = cuda_swiglu_fwd,
    .swiglu_bwd = cuda_swiglu_bwd,
    .add = cuda_add,
    .cross_entropy_workspace = cuda_cross_entropy_workspace,
    .cross_entropy = cuda_cross_entropy,
    .adamw = cuda_adamw,
    .grad_norm_workspace = cuda_grad_norm_workspace,
    .grad_norm = cuda_grad_norm,
    .cast = cuda_cast,
};
