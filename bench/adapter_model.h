/*
 * adapter_model.h — a forward-only GPT-2 with the adapter baselines of the LoRA paper's Table 1
 * (Hu et al., arXiv 2106.09685, §5.1 and §7.1), for bench_adapters.
 *
 * The base model is a culora_model (GPT-2 family, random or loaded weights); its tensors are read
 * through host/model/model.h and used in place. Each block is the GPT-2 block of
 * host/model/model_forward.c, on the same op dispatchers, with one of:
 *
 *   NONE     the plain block: fine-tuned weights, or LoRA merged into them (zero added latency).
 *   LORA     LoRA left unmerged on W_q and W_v (rank r each, s = alpha/r), as the paper's GPT-2
 *            runs (loralib MergedLinear on c_attn, enable_lora = [q, -, v]): one fused
 *            culora_lora_linear_forward on c_attn with rank 2r, A = [A_q; A_v] [2r, C] and a
 *            block-sparse B [3C, 2r] (B_q in q's rows and columns 0..r-1, B_v in v's rows and
 *            columns r..2r-1, zero elsewhere), in the augmented layout (culora_ops.h) so the rank
 *            term rides inside the c_attn GEMM on CUDA.
 *   ADAPTER_H  Houlsby et al. 2019: two adapters per block, on the attention projection's output
 *            and on the MLP's output, each before its residual add:
 *              a = x + Ad(c_proj(attn(LN1 x)));   out = a + Ad(mlp(LN2 a))
 *   ADAPTER_L  Lin et al. 2020: one adapter after the MLP, on the block's output, behind a
 *            LayerNorm of its own:   out' = out + Up(act(Down(LN_a(out))))
 *   where Ad(h) = h + Up(act(Down(h))) with Down [r, C] + bias, Up [C, r] + bias.
 * act is the tanh GELU for both adapters (adapter-bert, Houlsby's code, uses it; Lin et al. use
 * ReLU, which culora has no op for — an elementwise pass of the same cost, so latency is unchanged).
 * The up-projection runs as one GEMM that accumulates into h (beta = 1) with its bias, so an
 * adapter costs two GEMMs and one GELU pass (AdapterL: plus one LayerNorm).
 *
 * Buffers (adapter_buffers) are sized for max_batch × max_seq tokens, reused by every layer (forward
 * only: no activation is kept) and shared by the variants of one setting. adapter_model_forward only
 * enqueues work on the context's stream — no allocation, no synchronisation — so a CUDA graph can
 * capture it.
 */
#ifndef CULORA_BENCH_ADAPTER_MODEL_H
#define CULORA_BENCH_ADAPTER_MODEL_H

#include "culora/culora_model.h"

#include <stdbool.h>
#include <stdint.h>

enum adapter_kind { ADAPTER_NONE = 0, ADAPTER_LORA = 1, ADAPTER_L = 2, ADAPTER_H = 3 };

/* "none", "lora", "adapter_l", "adapter_h" */
const char *adapter_kind_name(int kind);

struct adapter_params {
    int kind;            /* enum adapter_kind */
    int32_t r;           /* bottleneck (ADAPTER_L/H) or LoRA rank of q and of v (LORA); ignored for NONE */
    float lora_alpha;    /* LORA: s = lora_alpha / r */
    uint64_t seed;       /* adapter weights: N(0, 1/√C) down / A, N(0, 1/√r) up / B, biases N(0, 0.02),
                          * AdapterL's LayerNorm gamma 1 + N(0, 0.1), beta N(0, 0.1) */
    bool zero_up;        /* up-projections, their biases and LoRA B are zero: the adapter is the identity
                          * and the model computes culora_model_forward's function */
};

/* Host fp32 copies of one layer's adapter weights (dense row-major), as uploaded; for references. */
struct adapter_host_layer {
    float *down[2], *down_b[2], *up[2], *up_b[2]; /* [r, C], [r], [C, r], [C]; [1] is AdapterH's MLP adapter */
    float *ln_w, *ln_b;                           /* AdapterL's LayerNorm [C] */
    float *lora_a, *lora_b;                       /* LORA: A [2r, C] = [A_q; A_v], B [3C, 2r] block-sparse */
};

typedef struct adapter_buffers adapter_buffers;
typedef struct adapter_model adapter_model;

/* Activation buffers, tokens, logits and op workspace for up to max_batch × max_seq tokens
 * (max_seq <= the base's positions), shared by every adapter model created on them (one set per
 * batch × seq setting, however many variants run on it). max_bottleneck and max_lora_r are the
 * largest r of the models that will use them. */
culora_status adapter_buffers_create(culora_model *base, int64_t max_batch, int64_t max_seq, int32_t max_bottleneck,
                                     int32_t max_lora_r, adapter_buffers **out);
void adapter_buffers_destroy(adapter_buffers *b);
/* Copies tokens [batch, seq] (host ids) and positions 0..seq-1 to the backend and synchronises;
 * the next forwards on these buffers run on them. */
culora_status adapter_buffers_set_tokens(adapter_buffers *b, const int32_t *tokens, int64_t batch, int64_t seq);
/* Synchronises and copies the logits of the last forward on these buffers to out
 * [batch·seq, vocab] (host fp32). */
culora_status adapter_buffers_logits(adapter_buffers *b, float *out);

/* Adapters of kind p->kind for the buffers' base model (GPT-2). Uploads the adapter weights and
 * keeps host copies. The base and the buffers must outlive the adapter model. */
culora_status adapter_model_create(const struct adapter_params *p, adapter_buffers *buffers, adapter_model **out);
void adapter_model_destroy(adapter_model *am);
/* Enqueues one forward pass over the buffers' tokens: logits [batch·seq, vocab] in the buffers.
 * Does not synchronise. */
culora_status adapter_model_forward(adapter_model *am);

/* Parameters the adapters add (|Θ| of the paper's Table 1: weights, biases, AdapterL's LayerNorm). */
int64_t adapter_model_n_params(const adapter_model *am);
const struct adapter_params *adapter_model_params(const adapter_model *am);
const struct adapter_host_layer *adapter_model_host_layer(const adapter_model *am, int64_t layer);
culora_context *adapter_model_context(const adapter_model *am);
culora_model *adapter_model_base(const adapter_model *am);

/* fp64 host reference of the same forward (adapter_ref.c): base weights read from the model,
 * adapter weights from am's host copies. tokens [batch, seq]; logits [batch·seq, vocab] '='.
 * Plain loops: for small configurations only. */
culora_status adapter_reference_forward(adapter_model *am, const int32_t *tokens, int64_t batch, int64_t seq,
                                        double *logits);

#endif /* CULORA_BENCH_ADAPTER_MODEL_H */
