/*
 * nn_table.c — the CPU backend's transformer op table (host/nn_ops.h).
 */
#include "cpu_nn.h"

const struct culora_nn_i culora_cpu_nn_iface = {
    .family = "nn",
    .embedding_fwd = cpu_embedding_fwd,
    .embedding_bwd_workspace = NULL, /* none */
    .embedding_bwd = cpu_embedding_bwd,
    .layernorm_fwd = cpu_layernorm_fwd,
    .layernorm_bwd_workspace = NULL,
    .layernorm_bwd = cpu_layernorm_bwd,
    .rmsnorm_fwd = cpu_rmsnorm_fwd,
    .rmsnorm_bwd_workspace = NULL,
    .rmsnorm_bwd = cpu_rmsnorm_bwd,
    .bias_grad_workspace = NULL,
    .bias_grad = cpu_bias_grad,
    .rope_fwd = cpu_rope_fwd,
    .rope_bwd = cpu_rope_bwd,
    .attention_fwd_workspace = cpu_attention_fwd_workspace,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd_workspace = cpu_attention_bwd_workspace,
    .attention_bwd = cpu_attention_bwd,
    .gelu_fwd = cpu_gelu_fwd,
    .gelu_bwd = cpu_gelu_bwd,
    .swiglu_fwd = cpu_swiglu_fwd,
    .swiglu_bwd = cpu_swiglu_bwd,
    .add = cpu_add,
    .cross_entropy_workspace = cpu_cross_entropy_workspace,
    .cross_entropy = cpu_cross_entropy,
    .adamw = cpu_adamw,
    .grad_norm_workspace = cpu_grad_norm_workspace,
    .grad_norm = cpu_grad_norm,
    .cast = cpu_cast,
};
