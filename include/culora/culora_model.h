/*
 * culora_model.h — decoder-only transformers (GPT-2 and LLaMA families) on a culora context:
 * load a Hugging Face model directory or create a random one, attach LoRA (new, or a PEFT
 * adapter), run forward (loss, logits) and backward (gradients of the trainable parameters),
 * save adapters and merged models. The trainer (culora_train.h) drives the optimizer.
 *
 * Training modes:
 *   FULL      every parameter is trainable (fp32 masters, gradients and AdamW state)
 *   LORA      LoRA A and B are trainable; the base model is frozen (storage dtype)
 *   LORA_FA   only B is trainable (LoRA-FA: A frozen at its initialisation)
 *   INFERENCE no gradients are kept
 * Tensors live in the context's backend (bf16 storage on CUDA, fp32 on CPU); masters, gradients
 * and optimizer state are fp32 in flat buffers (one all-reduce per step).
 */
#ifndef CULORA_MODEL_H
#define CULORA_MODEL_H

#include "culora.h"
#include "culora_io.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct culora_model culora_model;

typedef enum culora_train_mode {
    CULORA_MODE_INFERENCE = 0,
    CULORA_MODE_FULL = 1,
    CULORA_MODE_LORA = 2,
    CULORA_MODE_LORA_FA = 3
} culora_train_mode;

typedef struct culora_model_params {
    uint32_t struct_size;             /* set by CULORA_MODEL_PARAMS_INIT */
    uint32_t api_version;
    int32_t mode;                     /* culora_train_mode */
    const culora_lora_config *lora;   /* LORA / LORA_FA without adapter_dir: targets, r, alpha, dropout, ... */
    const char *adapter_dir;          /* a PEFT adapter to start from (LORA, LORA_FA, INFERENCE), or NULL */
    uint64_t seed;                    /* LoRA initialisation and lora_dropout masks */
    int64_t max_batch, max_seq;       /* activation buffers are sized for batch × seq tokens */
    int32_t quant_format;             /* 0: none; else culora_quant_format (NF4, FP4, INT8): every linear layer
                                         of the base (not lm_head, not embeddings) is stored quantized and
                                         frozen — QLoRA with NF4 + DOUBLE_QUANT. LoRA / LoRA-FA / INFERENCE only. */
    uint32_t quant_flags;             /* CULORA_QUANT_DOUBLE_QUANT */
    int32_t quant_blocksize;          /* 4-bit block size (0: 64) */
} culora_model_params;

#define CULORA_MODEL_PARAMS_INIT \
    { sizeof(culora_model_params), CULORA_API_VERSION, CULORA_MODE_INFERENCE, NULL, NULL, 0u, 1, 0, 0, 0u, 0 }

/* Loads dir (config.json + model.safetensors or a sharded set) onto ctx's backend. max_seq 0 means
 * the config's max_position_embeddings. The weights are checked against the config first. */
CULORA_API CULORA_NODISCARD culora_status culora_model_load(culora_context *ctx, const char *dir,
                                                            const culora_model_params *params, culora_model **out);
/* A model with random weights for cfg (GPT-2 initialisation: N(0, 0.02), biases 0, norms 1), from
 * init_seed. For `culora init`, tests and benchmarks. */
CULORA_API CULORA_NODISCARD culora_status culora_model_create(culora_context *ctx, const culora_model_config *cfg,
                                                              uint64_t init_seed, const culora_model_params *params,
                                                              culora_model **out);
/* NULL: no-op. */
CULORA_API void culora_model_destroy(culora_model *m);

CULORA_API const culora_model_config *culora_model_get_config(const culora_model *m);
CULORA_API culora_context *culora_model_context(const culora_model *m);
CULORA_API int32_t culora_model_mode(const culora_model *m);
/* Parameters in the model (base + LoRA) and how many of them are trained. */
CULORA_API int64_t culora_model_n_params(const culora_model *m);
CULORA_API int64_t culora_model_n_trainable(const culora_model *m);
/* LoRA-adapted modules (0 without LoRA). */
CULORA_API int32_t culora_model_n_lora_modules(const culora_model *m);
/* Format the base linears are stored in (0: not quantized, else culora_quant_format). */
CULORA_API int32_t culora_model_quant_format(const culora_model *m);

/* Forward over tokens [batch, seq] (host memory, row-major). With targets (host, [batch, seq],
 * -100 = ignored) *loss receives the mean cross-entropy over the non-ignored targets and the pass
 * is kept for culora_model_backward; loss may be NULL. Positions restart at 0 in every row.
 * batch·seq must fit the sizes given at creation. Synchronises (the loss is on the host). */
CULORA_API CULORA_NODISCARD culora_status culora_model_forward(culora_model *m, const int32_t *tokens,
                                                               const int32_t *targets, int64_t batch, int64_t seq,
                                                               float *loss);
/* Gradients of the last forward's loss, scaled by grad_scale, ADDED to the trainable parameters'
 * gradients (accumulation across micro-batches). grad_denominator > 0 divides by that many target
 * tokens instead of this batch's count (exact mean over an accumulated batch). */
CULORA_API CULORA_NODISCARD culora_status culora_model_backward(culora_model *m, float grad_scale,
                                                                int64_t grad_denominator);
/* Copies fp32 logits of rows [row_begin, row_begin + n_rows) of the last forward (row b·seq + t)
 * into out [n_rows, vocab] (host). */
CULORA_API CULORA_NODISCARD culora_status culora_model_logits(culora_model *m, int64_t row_begin, int64_t n_rows,
                                                              float *out);
/* Training (lora_dropout active) or evaluation behaviour of the next forwards; on by default in
 * the training modes, off in INFERENCE. */
CULORA_API void culora_model_set_training(culora_model *m, bool training);
/* Sets every trainable gradient to zero. */
CULORA_API CULORA_NODISCARD culora_status culora_model_zero_grad(culora_model *m);

/* ---- generation ---------------------------------------------------------------------------- */

typedef struct culora_generate_params {
    uint32_t struct_size;   /* set by CULORA_GENERATE_PARAMS_INIT */
    uint32_t api_version;
    int32_t max_new_tokens;
    float temperature;      /* 0: greedy (argmax, ties to the lowest id) */
    float top_p;            /* nucleus sampling: keep the smallest set of tokens with probability >= top_p (1: off) */
    int32_t top_k;          /* keep the k most likely tokens (0: off) */
    uint64_t seed;          /* sampling randomness (Philox); the same seed gives the same text */
    int32_t eos_id;         /* stop after generating this id (-1: never) */
} culora_generate_params;

#define CULORA_GENERATE_PARAMS_INIT \
    { sizeof(culora_generate_params), CULORA_API_VERSION, 64, 0.0f, 1.0f, 0, 0u, -1 }

/* Appends up to max_new_tokens tokens to prompt[n_prompt] (host ids); out (host, capacity
 * n_prompt + max_new_tokens) receives prompt + generated ids, *n_out their count. Each token costs
 * one forward over the last max_seq tokens (no KV cache yet). Dropout is off while generating. */
CULORA_API CULORA_NODISCARD culora_status culora_model_generate(culora_model *m, const int32_t *prompt, int64_t n_prompt,
                                                                const culora_generate_params *params, int32_t *out,
                                                                int64_t *n_out);

/* The LoRA weights as a PEFT adapter (fp32 copies; the caller destroys it). */
CULORA_API CULORA_NODISCARD culora_status culora_model_export_adapter(culora_model *m, culora_adapter **out);
/* Writes the adapter in PEFT format to dir (atomic files). */
CULORA_API CULORA_NODISCARD culora_status culora_model_save_adapter(culora_model *m, const char *dir);
/* Writes a Hugging Face model directory (config.json + model.safetensors, fp32, the names
 * transformers' save_pretrained uses) with every LoRA update merged in (W0 + s·B·A, computed in
 * fp64 on the host); the model itself is not changed. dir is created when missing. */
CULORA_API CULORA_NODISCARD culora_status culora_model_save(culora_model *m, const char *dir);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_MODEL_H */
