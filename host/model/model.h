/*
 * model.h — the culora_model object (internal): parameter storage, LoRA slots, activation and
 * scratch buffers, and the functions the model's files share.
 *
 * Storage (all in the context's backend):
 *  - frozen arena   storage-dtype (S) copies of frozen tensors, each at a 256-byte boundary;
 *  - trainable flat buffers, one element offset per trainable tensor:
 *      master (fp32) | grad (fp32) | adam m (fp32) | adam v (fp32) | copy (S; on the CPU backend S is
 *      fp32 and the copy IS the master, so no separate buffer)
 *    so one all-reduce moves every gradient and one AdamW call updates every parameter;
 *  - activations sized for max_batch × max_seq tokens, kept from forward to backward;
 *  - scratch reused across layers in backward.
 * Every 2-D tensor is row-major [rows, cols] with ld = cols rounded up to the backend's row
 * alignment (8 elements on CUDA); padding elements are zero and stay zero.
 * Linear weights are stored [out, in] (GPT-2's Conv1D [in, out] is transposed at load and save).
 */
#ifndef CULORA_HOST_MODEL_H
#define CULORA_HOST_MODEL_H

#include "culora/culora_model.h"
#include "culora/culora_ops.h"
#include "culora/culora_quant.h"

#include "../backend.h"
#include "../nn_ops.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Quantized storage of a frozen linear weight (QLoRA): the format and its buffers. */
struct mquant {
    culora_quant_desc desc;
    culora_quant_layout layout;
    culora_quant_weight w;  /* pointers into the model's quant arena */
    size_t off[6];          /* byte offsets of data, absmax, absmax_q, nested_absmax, nested_code, offset */
};

/* One parameter tensor. */
struct mtensor {
    int64_t rows, cols, ld; /* 1-D tensors: rows = 1 */
    void *s;                /* S copy the ops read */
    int64_t off;            /* element offset in the trainable flat buffers, -1 when frozen */
    size_t foff;            /* byte offset in the frozen arena (frozen tensors) */
    bool present;           /* false for absent optional tensors (biases) */
    bool trainable;
    struct mquant *q;       /* quantized storage (then s is NULL), or NULL */
};

struct mlora {
    char name[128];         /* PEFT module name, e.g. "transformer.h.0.attn.c_attn" */
    int32_t r;
    double alpha, scaling;
    bool embedding;         /* embedding LoRA: A is stored transposed [V, r] (a lookup table) */
    struct mtensor A;       /* [r, in] (embedding: [V, r]) */
    struct mtensor B;       /* [out, r] */
};

struct mlinear {
    int64_t in, out;
    struct mtensor W;       /* [out, in] */
    struct mtensor bias;    /* [1, out] or not present */
    struct mlora *lora;     /* NULL when not adapted */
    void *v;                /* [max_n, ldv] S: the LoRA forward activation kept for backward */
    int64_t ldv;
    int32_t index;          /* unique per linear: dropout stream */
    char hf_weight[128];    /* Hugging Face tensor names */
    char hf_bias[128];
    bool conv1d;            /* stored [in, out] in the file */
};

struct mnorm {
    struct mtensor w, b;    /* b not present for RMSNorm */
};

struct mlayer {
    struct mnorm ln1, ln2;
    struct mlinear qkv, proj_attn, fc, proj_mlp;   /* GPT-2: c_attn, attn.c_proj, c_fc, mlp.c_proj */
    struct mlinear q, k, v, o, gate, up, down;      /* LLaMA */
    /* activations kept for backward ([max_n, ·] S unless noted) */
    void *ln1_out, *att_y, *res1, *ln2_out, *h, *h2, *h3, *out;
    void *qb, *kb, *vb;     /* q, k, v (GPT-2: column ranges of one [n, 3C] buffer) */
    int64_t ldq, ldk, ldv;
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd; /* [max_n] fp32 */
    float *lse;                                       /* [B, H, T] fp32 */
};

struct culora_model {
    culora_context *ctx;
    culora_model_config cfg;
    int32_t mode;
    bool gpt2;
    culora_dtype S;
    size_t es;              /* sizeof S */
    int64_t ld_align;
    int64_t max_batch, max_seq, max_n;
    int64_t C, I, V, H, Hkv, D, L, qdim, kvdim;
    uint64_t seed;
    uint64_t forward_count; /* dropout stream per forward */
    bool training;          /* lora_dropout on (culora_model_set_training) */

    /* parameters */
    struct mtensor wte, wpe;
    struct mlinear lm_head; /* W aliases wte's storage when tied */
    struct mnorm lnf;
    struct mlayer *layers;
    struct mlora *loras;    /* [n_loras] */
    int32_t n_loras;
    struct mlora *emb_lora; /* embedding LoRA, or NULL */
    culora_lora_config lora_cfg;  /* deep copy owned through lora_cfg_store */
    culora_adapter *lora_cfg_store;

    /* storage */
    culora_quant_desc quant;  /* format/flags/blocksize requested for the base linears (format 0: none) */
    void *qarena;             /* quantized weights */
    size_t qarena_bytes;
    struct mquant *quants;    /* [n_quants] */
    int32_t n_quants;
    void *wdq;                /* [max out·in] S scratch: a dequantized weight for dx of a frozen quantized linear */
    size_t wdq_bytes;
    void *frozen;           /* arena */
    size_t frozen_bytes;
    int64_t n_train;        /* elements in the flat buffers (with padding) */
    float *master, *grad, *adam_m, *adam_v;
    void *copy;             /* S copies of trainable tensors (CUDA); NULL on CPU (master is the copy) */
    int64_t n_params, n_trainable;

    /* activations and scratch */
    void *act;              /* arena */
    size_t act_bytes;
    int32_t *tokens, *pos, *targets; /* [max_n] */
    void *emb_out;          /* [max_n, C] layer 0 input */
    void *lnf_out;          /* [max_n, C] */
    float *lnf_mean, *lnf_rstd;
    void *logits;           /* [max_n, ldV] (after backward: dlogits) */
    int64_t ldV;
    float *loss_dev;        /* [1] */
    int32_t *n_valid_dev;   /* [1] */
    void *d_stream, *d_ln, *d_att, *d_qkv, *d_h, *d_h2, *tmp_c; /* backward scratch */
    void *emb_u;            /* [max_n, ld r] embedding-LoRA lookup */
    void *du;               /* [max_n, ld rmax] LoRA backward scratch */
    void *ws;               /* op workspace */
    size_t ws_bytes;

    const struct model_segments *segments; /* LoraHub batched evaluation (model_segments.h), or NULL */

    /* state of the last forward */
    int64_t batch, seq, n;
    bool have_forward, have_targets;
    float last_loss;
};

/* ---- helpers shared by the model's files ---------------------------------------------- */

int64_t model_round_ld(const struct culora_model *m, int64_t cols);
/* Pointer to the fp32 master / gradient of a trainable tensor (NULL when frozen). */
float *model_master(const struct culora_model *m, const struct mtensor *t);
float *model_grad(const struct culora_model *m, const struct mtensor *t);

/* Calls f on every parameter tensor with its Hugging Face name and whether the file stores it
 * transposed ([in, out]); LoRA tensors are not included. Stops at the first error. */
typedef culora_status (*model_tensor_fn)(struct culora_model *m, struct mtensor *t, const char *hf_name,
                                         bool transposed, void *user);
culora_status model_for_each_tensor(struct culora_model *m, model_tensor_fn f, void *user);
/* Calls f on every linear layer (not lm_head). */
typedef culora_status (*model_linear_fn)(struct culora_model *m, struct mlinear *lin, const char *peft_name,
                                         void *user);
culora_status model_for_each_linear(struct culora_model *m, model_linear_fn f, void *user);

/* model_layout.c: builds the structure for cfg/mode/LoRA targets and allocates every buffer. */
culora_status model_build(struct culora_model *m, const culora_model_params *p, const culora_adapter *adapter);

/* model_weights.c */
culora_status model_init_random(struct culora_model *m, uint64_t seed);
culora_status model_load_weights(struct culora_model *m, const culora_safetensors *st);
/* Writes a host fp32 [rows, cols] matrix into tensor t (S copy, and the master when trainable). */
culora_status model_tensor_upload(struct culora_model *m, const struct mtensor *t, const float *src);
/* Reads tensor t (master when trainable, else the S copy) into host fp32 [rows, cols]. */
culora_status model_tensor_download(struct culora_model *m, const struct mtensor *t, float *dst);

/* model_lora.c: LoRA values (initialisation or an adapter's weights), export. */
culora_status model_lora_init(struct culora_model *m, const culora_adapter *adapter);

/* model_forward.c / model_backward.c */
void model_lora_desc(const struct culora_model *m, const struct mlinear *lin, int64_t n, uint64_t fwd_id,
                     culora_lora_linear_desc *d);
culora_status model_linear_fwd(struct culora_model *m, struct mlinear *lin, const void *x, int64_t ldx, void *y,
                               int64_t ldy, int64_t n);
culora_status model_linear_bwd(struct culora_model *m, struct mlinear *lin, const void *x, int64_t ldx, const void *dy,
                               int64_t lddy, void *dx, int64_t lddx, bool accumulate_dx);
/* RoPE frequency table for llama3 scaling (host, caller frees), NULL for the default one. */
culora_status model_rope_table(struct culora_model *m, float **out);
/* Fresh PEFT initialisation of LoRA slot i from (seed, round) — ReLoRA re-initialises with new rounds. */
culora_status model_lora_reinit(struct culora_model *m, int32_t i, uint64_t seed, uint64_t round);

/* model_optim.c (for the trainer): global gradient norm and one AdamW update of every trainable
 * parameter; grad_scale multiplies the gradients (clipping, accumulation). */
culora_status model_grad_norm(struct culora_model *m, float *norm);
culora_status model_adamw(struct culora_model *m, double lr, double beta1, double beta2, double eps,
                          double weight_decay, int64_t step, float grad_scale);
/* Flat trainable buffers, for the communicator and for checkpoints. */
float *model_grad_buffer(struct culora_model *m, int64_t *n);
culora_status model_state_download(struct culora_model *m, float *master, float *adam_m, float *adam_v);
culora_status model_state_upload(struct culora_model *m, const float *master, const float *adam_m,
                                 const float *adam_v);

/* Deterministic host random numbers (Philox4x32-10) for initialisation. */
double model_rand_uniform(uint64_t seed, uint64_t stream, uint64_t i); /* [0, 1) */
double model_rand_normal(uint64_t seed, uint64_t stream, uint64_t i);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_MODEL_H */
