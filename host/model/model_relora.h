/*
 * model_relora.h — what ReLoRA does to a LoRA-mode model (host/model/model_relora.c), for the
 * trainer (host/train/relora.c): restart a LoRA pair (merge into the base, re-initialise, prune
 * its AdamW moments) and change which tensors are trained (the reference trains everything outside
 * the adapted linears full-rank; a warm start trains the adapted linears too for a while).
 */
#ifndef CULORA_HOST_MODEL_RELORA_H
#define CULORA_HOST_MODEL_RELORA_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The linear layer LoRA slot i adapts (NULL for an embedding LoRA or an unknown slot). */
struct mlinear *model_relora_linear(struct culora_model *m, int32_t i);

/* Makes the n frozen, unquantized tensors trainable: they are appended to the flat buffers (which
 * grow), with their current values as fp32 masters and zero gradients and moments; every other
 * trainable tensor keeps its offset. The model's workspace grows when the gradient norm needs more. */
culora_status model_relora_unfreeze(struct culora_model *m, struct mtensor *const *ts, int32_t n);

/* Freezes every non-LoRA trainable tensor placed at or after flat element n_keep: its master value
 * goes to its frozen storage (rounded to the storage dtype), and the flat buffers shrink to n_keep. */
culora_status model_relora_freeze_tail(struct culora_model *m, int64_t n_keep);

/* One ReLoRA restart of LoRA slot i (host/relora_ops.h does the arithmetic). */
struct model_relora_restart {
    bool merge;             /* W0 += s·B·A first (false: re-initialise and prune only) */
    float *w0_master;       /* fp32 master of W0 ([out, W.ld], backend memory) when the storage dtype is
                               not fp32; NULL on the CPU backend (W0 is fp32) and for quantized W0 */
    uint64_t init_seed;     /* A = model_lora_reinit(m, i, init_seed, round)'s values */
    uint64_t round;
    int32_t prune;          /* enum culora_relora_prune */
    double prune_ratio;
    uint64_t prune_seed;    /* RANDOM: the mask is keyed by (prune_seed, step, slot, tensor) */
    int64_t step;
    double requant_rel;     /* out, quantized W0: ‖deq(q(W')) − W'‖_F / ‖W'‖_F of the requantization */
    double requant_max;     /* out, quantized W0: max |deq(q(W')) − W'| */
};

/* Workspace bytes model_relora_restart needs for any slot with this prune kind. */
culora_status model_relora_workspace(struct culora_model *m, int32_t prune, size_t *bytes);
/* Restarts slot i (a linear LoRA of a LORA-mode model). With a quantized W0 the merge dequantizes
 * into the model's scratch, adds, requantizes (synchronising, to measure the error); otherwise the
 * work is enqueued on the context's stream without a host round trip. */
culora_status model_relora_restart(struct culora_model *m, int32_t i, struct model_relora_restart *rs, void *ws,
                                   size_t ws_bytes);

/* The Philox stream model_lora_reinit uses for slot i at a round (host/model/model_lora.c). */
uint64_t model_relora_init_stream(int32_t i, uint64_t round);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_MODEL_RELORA_H */
