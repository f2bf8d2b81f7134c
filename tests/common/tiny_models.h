// tiny_models.h — the small random models and the short text the trainer, ReLoRA and LoraHub tests
// share (byte vocabulary of 256, so the byte tokenizer feeds them).
#pragma once

#include "culora/culora_model.h"

#include <cstdio>
#include <cstring>

namespace culora_test {

// LLaMA: 2 layers, width 32, 4 heads over 2 KV heads (GQA), head 8, SwiGLU MLP 64, RoPE.
inline culora_model_config tiny_llama_config()
{
    culora_model_config c;
    std::memset(&c, 0, sizeof c);
    c.arch = CULORA_ARCH_LLAMA;
    std::snprintf(c.architecture, sizeof c.architecture, "LlamaForCausalLM");
    c.vocab_size = 256;
    c.hidden_size = 32;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 8;
    c.intermediate_size = 64;
    c.max_position_embeddings = 64;
    c.norm_eps = 1e-5;
    c.activation = CULORA_ACT_SILU;
    c.rope_type = CULORA_ROPE_DEFAULT;
    c.rope_theta = 10000.0;
    c.bos_token_id = -1;
    c.eos_token_id = -1;
    return c;
}

// GPT-2: 2 layers, width 32, 4 heads, GELU MLP 128, tied head, biases, learned positions.
inline culora_model_config tiny_gpt2_config()
{
    culora_model_config c;
    std::memset(&c, 0, sizeof c);
    c.arch = CULORA_ARCH_GPT2;
    std::snprintf(c.architecture, sizeof c.architecture, "GPT2LMHeadModel");
    c.vocab_size = 256;
    c.hidden_size = 32;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.head_dim = 8;
    c.intermediate_size = 128;
    c.max_position_embeddings = 64;
    c.norm_eps = 1e-5;
    c.activation = CULORA_ACT_GELU_TANH;
    c.tie_word_embeddings = true;
    c.attention_bias = true;
    c.mlp_bias = true;
    c.rope_type = CULORA_ROPE_NONE;
    c.bos_token_id = -1;
    c.eos_token_id = -1;
    return c;
}

// A short repetitive text a tiny model learns within a few dozen steps.
inline const char *const kTinyText =
    "the quick brown fox jumps over the lazy dog. the quick brown fox jumps over the lazy dog. "
    "a stitch in time saves nine. a stitch in time saves nine. the quick brown fox jumps again. ";

// Every linear of a LLaMA block, and of a GPT-2 block (PEFT target names).
inline const char *kLlamaLinears[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
inline const char *kGpt2Linears[3] = {"c_attn", "c_proj", "c_fc"};

}  // namespace culora_test
