/*
 * culora_io.h — file formats culora reads and writes: safetensors (mmap reader, atomic writer,
 * sharded sets), Hugging Face config.json (GPT-2 and LLaMA families; read and written), PEFT
 * LoRA adapters (adapter_config.json + adapter_model.safetensors) and the conversion of llama2.c
 * checkpoints. docs/formats.md describes the rules.
 *
 * Every fallible call takes the context first (used only to record the failure message; these
 * calls need no backend and accept a context whose backend failed to create, or NULL, which
 * drops the message) and returns culora_status:
 *   CULORA_ERR_FORMAT       the file is malformed or inconsistent; the message names the file,
 *                           the tensor or key, and the problem
 *   CULORA_ERR_IO           the file could not be opened, read, written, synced or renamed
 *   CULORA_ERR_UNSUPPORTED  a well-formed file asks for something culora does not do (an
 *                           unknown architecture, DoRA, bias="all", ...)
 *   CULORA_ERR_INVALID_ARG  a NULL pointer or an inconsistent argument
 *   CULORA_ERR_OUT_OF_MEMORY
 * Handles are not thread-safe; distinct handles are independent.
 */
#ifndef CULORA_IO_H
#define CULORA_IO_H

#include "culora/culora.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* safetensors element types, in the reference implementation's order (safetensors tensor.rs). */

typedef enum culora_st_dtype {
    CULORA_ST_BOOL = 0,
    CULORA_ST_F4,
    CULORA_ST_F6_E2M3,
    CULORA_ST_F6_E3M2,
    CULORA_ST_U8,
    CULORA_ST_I8,
    CULORA_ST_F8_E5M2,
    CULORA_ST_F8_E4M3,
    CULORA_ST_F8_E8M0,
    CULORA_ST_F8_E4M3FNUZ,
    CULORA_ST_F8_E5M2FNUZ,
    CULORA_ST_I16,
    CULORA_ST_U16,
    CULORA_ST_F16,
    CULORA_ST_BF16,
    CULORA_ST_I32,
    CULORA_ST_U32,
    CULORA_ST_F32,
    CULORA_ST_C64,
    CULORA_ST_F64,
    CULORA_ST_I64,
    CULORA_ST_U64,
    CULORA_ST_DTYPE_COUNT
} culora_st_dtype;

/* Header spelling ("F32", "BF16", ...); "?" for a value outside the enum. Static storage. */
CULORA_API const char *culora_st_dtype_name(culora_st_dtype dtype);
/* Bits per element (4, 6, 8, 16, 32 or 64); 0 for a value outside the enum. */
CULORA_API unsigned culora_st_dtype_bits(culora_st_dtype dtype);

/* ---------------------------------------------------------------------------------------- */
/* safetensors reader. A culora_safetensors is one file or a sharded set, mapped read-only.   */

typedef struct culora_safetensors culora_safetensors;

/* One tensor of an open set. Everything it points to is owned by the set and valid until
 * culora_safetensors_close. */
typedef struct culora_tensor_info {
    const char *name;       /* tensor name as in the header */
    culora_st_dtype dtype;
    int32_t n_dims;         /* 0 for a scalar */
    const int64_t *shape;   /* n_dims sizes */
    int64_t n_elems;        /* product of shape (1 for a scalar) */
    uint64_t n_bytes;       /* data_offsets[1] - data_offsets[0] */
    const void *data;       /* inside the read-only mapping; NOT aligned in general (use memcpy
                               or culora_tensor_read); little-endian, row-major */
    const char *file;       /* path of the file (shard) that holds it */
} culora_tensor_info;

/* Opens and validates path, which is
 *   - a .safetensors file,
 *   - a model.safetensors.index.json (sharded set: every shard it names is opened), or
 *   - a directory holding model.safetensors or, failing that, model.safetensors.index.json.
 * Every rule in docs/formats.md is checked before *out is set; a defect is CULORA_ERR_FORMAT
 * and nothing is left open. */
CULORA_API CULORA_NODISCARD culora_status culora_safetensors_open(culora_context *ctx, const char *path,
                                                                  culora_safetensors **out);
/* Unmaps and frees everything. NULL: no-op. */
CULORA_API void culora_safetensors_close(culora_safetensors *st);

/* Number of tensors (all shards together). */
CULORA_API size_t culora_safetensors_count(const culora_safetensors *st);
/* The i-th tensor in name order (bytewise); NULL when i is out of range. */
CULORA_API const culora_tensor_info *culora_safetensors_at(const culora_safetensors *st, size_t i);
/* The tensor called name; NULL when there is none. */
CULORA_API const culora_tensor_info *culora_safetensors_find(const culora_safetensors *st, const char *name);

/* Files of the set (1 for a plain file; the shards in name order for a sharded set). */
CULORA_API size_t culora_safetensors_n_files(const culora_safetensors *st);
CULORA_API const char *culora_safetensors_file(const culora_safetensors *st, size_t i);

/* The __metadata__ string map (for a sharded set: the union over shards, first shard wins on a
 * repeated key), in header order. metadata_at sets *key and *value to NULL when i is out of
 * range; metadata_get returns NULL when key is absent. */
CULORA_API size_t culora_safetensors_metadata_count(const culora_safetensors *st);
CULORA_API void culora_safetensors_metadata_at(const culora_safetensors *st, size_t i, const char **key,
                                               const char **value);
CULORA_API const char *culora_safetensors_metadata_get(const culora_safetensors *st, const char *key);

/* Copies tensor t into dst (host memory, dst_bytes long) as dst_dtype, converting from F32, F16,
 * BF16 or F64 (rounding to nearest even). dst_bytes must be n_elems * culora_dtype_size(dst_dtype).
 * Other source dtypes: CULORA_ERR_UNSUPPORTED. */
CULORA_API CULORA_NODISCARD culora_status culora_tensor_read(culora_context *ctx, const culora_tensor_info *t,
                                                             culora_dtype dst_dtype, void *dst, size_t dst_bytes);

/* ---------------------------------------------------------------------------------------- */
/* safetensors writer. Output is laid out as the reference writer does (tensors sorted by dtype,
 * widest first, then by name; header padded with spaces to a multiple of 8), and written
 * atomically: a temporary file in the destination directory, fsync, rename, fsync of the
 * directory. A failed save leaves any previous file at path untouched. */

typedef struct culora_safetensors_writer culora_safetensors_writer;

CULORA_API CULORA_NODISCARD culora_status culora_safetensors_writer_create(culora_context *ctx,
                                                                           culora_safetensors_writer **out);
/* NULL: no-op. */
CULORA_API void culora_safetensors_writer_destroy(culora_safetensors_writer *w);
/* Adds a tensor. name and shape are copied; data is NOT copied and must stay valid until
 * culora_safetensors_writer_save returns. n_bytes must equal the size shape and dtype imply.
 * A repeated name or the name "__metadata__" is CULORA_ERR_INVALID_ARG. */
CULORA_API CULORA_NODISCARD culora_status culora_safetensors_writer_add(culora_context *ctx,
                                                                        culora_safetensors_writer *w,
                                                                        const char *name, culora_st_dtype dtype,
                                                                        int32_t n_dims, const int64_t *shape,
                                                                        const void *data, uint64_t n_bytes);
/* Sets a __metadata__ entry (copied; a repeated key replaces the value). Without any entry the
 * file has no __metadata__ key. */
CULORA_API CULORA_NODISCARD culora_status culora_safetensors_writer_set_metadata(culora_context *ctx,
                                                                                 culora_safetensors_writer *w,
                                                                                 const char *key,
                                                                                 const char *value);
/* Writes the file to path atomically (see above). The writer can be saved again. */
CULORA_API CULORA_NODISCARD culora_status culora_safetensors_writer_save(culora_context *ctx,
                                                                         const culora_safetensors_writer *w,
                                                                         const char *path);

/* ---------------------------------------------------------------------------------------- */
/* Hugging Face model configuration (config.json).                                           */

typedef enum culora_arch {
    CULORA_ARCH_GPT2  = 1, /* GPT2LMHeadModel: learned positions, LayerNorm, Conv1D [in,out] weights */
    CULORA_ARCH_LLAMA = 2  /* LlamaForCausalLM: RoPE, RMSNorm, SwiGLU MLP, GQA */
} culora_arch;

typedef enum culora_activation {
    CULORA_ACT_GELU_TANH = 1, /* "gelu_new", "gelu_pytorch_tanh", "gelu_fast" */
    CULORA_ACT_GELU      = 2, /* "gelu" (erf) */
    CULORA_ACT_SILU      = 3, /* "silu", "swish" */
    CULORA_ACT_RELU      = 4  /* "relu" */
} culora_activation;

typedef enum culora_rope_type {
    CULORA_ROPE_NONE    = 0, /* no RoPE (GPT-2) */
    CULORA_ROPE_DEFAULT = 1, /* theta^(-2i/d), rotate_half pairing */
    CULORA_ROPE_LLAMA3  = 2  /* Llama 3.1 frequency scaling (factor, low/high_freq_factor, original_max) */
} culora_rope_type;

typedef struct culora_model_config {
    culora_arch arch;
    char architecture[64];           /* as in the file: "GPT2LMHeadModel", "LlamaForCausalLM" */
    int64_t vocab_size;
    int64_t hidden_size;             /* GPT-2 n_embd */
    int64_t n_layers;                /* GPT-2 n_layer */
    int64_t n_heads;                 /* attention heads */
    int64_t n_kv_heads;              /* key/value heads (GQA); == n_heads for GPT-2 */
    int64_t head_dim;                /* hidden_size / n_heads unless the file says otherwise */
    int64_t intermediate_size;       /* MLP width (GPT-2 n_inner, default 4*n_embd) */
    int64_t max_position_embeddings; /* GPT-2 n_positions */
    double norm_eps;                 /* layer_norm_epsilon (GPT-2) / rms_norm_eps (LLaMA) */
    culora_activation activation;
    bool tie_word_embeddings;        /* lm_head shares the token embedding */
    bool attention_bias;             /* q/k/v/o biases (always true for GPT-2) */
    bool mlp_bias;                   /* MLP biases (always true for GPT-2) */
    culora_rope_type rope_type;
    double rope_theta;               /* 0 for GPT-2 */
    double rope_factor;              /* LLAMA3 scaling parameters, 0 otherwise */
    double rope_low_freq_factor;
    double rope_high_freq_factor;
    int64_t rope_original_max_position_embeddings;
    int64_t bos_token_id;            /* -1 when absent or null (first entry when a list) */
    int64_t eos_token_id;            /* -1 when absent or null (first entry when a list) */
} culora_model_config;

/* Reads path (a config.json, or a directory holding one). An architecture other than
 * GPT2LMHeadModel / LlamaForCausalLM is CULORA_ERR_UNSUPPORTED ("unsupported architecture ...");
 * options that change the model's math and culora does not implement (cross-attention, GPT-2
 * attention scaling variants, unknown activations, RoPE scaling other than llama3) are
 * CULORA_ERR_UNSUPPORTED too; missing or ill-typed fields are CULORA_ERR_FORMAT. */
CULORA_API CULORA_NODISCARD culora_status culora_model_config_load(culora_context *ctx, const char *path,
                                                                   culora_model_config *out);

/* Name and shape of one parameter tensor a model with this config has, in Hugging Face naming
 * (GPT-2 names without the optional "transformer." prefix; Conv1D weights [in, out]). */
typedef struct culora_tensor_spec {
    char name[96];
    int32_t n_dims;
    int64_t shape[2];
} culora_tensor_spec;

/* Number of parameter tensors the config implies (lm_head only when not tied). */
CULORA_API size_t culora_model_config_n_tensors(const culora_model_config *cfg);
/* The i-th expected tensor (embeddings, then layer by layer, then the final norm and head). */
CULORA_API CULORA_NODISCARD culora_status culora_model_config_tensor(culora_context *ctx,
                                                                     const culora_model_config *cfg, size_t i,
                                                                     culora_tensor_spec *out);
/* Looks up a tensor by its canonical name in st, also trying the "transformer." prefix for
 * GPT-2 (both spellings exist in the wild). NULL when absent. */
CULORA_API const culora_tensor_info *culora_model_find_tensor(const culora_model_config *cfg,
                                                              const culora_safetensors *st,
                                                              const char *name);
/* Checks st against cfg: every expected tensor present with the expected shape and a float
 * dtype (F32, F16, BF16), and no tensor that the model does not have (known non-parameter
 * buffers such as GPT-2 attn.bias masks and rotary inv_freq are skipped; a redundant lm_head
 * of a tied model must have the embedding's shape). The first problem is CULORA_ERR_FORMAT
 * with the tensor's name. */
CULORA_API CULORA_NODISCARD culora_status culora_model_config_check(culora_context *ctx,
                                                                    const culora_model_config *cfg,
                                                                    const culora_safetensors *st);

/* Writes cfg as a Hugging Face config.json that transformers loads as GPT2LMHeadModel or
 * LlamaForCausalLM and culora_model_config_load reads back into an equal struct: architectures,
 * model_type, every field the loader reads, torch_dtype "float32", RoPE as rope_theta plus
 * rope_scaling (null, or the llama3 parameters), tie_word_embeddings, bos/eos ids (null for -1).
 * path_or_dir is the file to write, or an existing directory (then DIR/config.json). The file
 * is written atomically (temporary sibling, fsync, rename). A config the file cannot express or
 * the loader would refuse (GPT-2 with GQA, RoPE or without biases; LLaMA with another activation,
 * an odd head_dim, n_heads not a multiple of n_kv_heads; a non-positive size; a non-finite
 * number; architecture text that contradicts arch) is CULORA_ERR_INVALID_ARG and nothing is
 * written. An empty architecture string is allowed (the name follows arch). */
CULORA_API CULORA_NODISCARD culora_status culora_model_config_save(culora_context *ctx,
                                                                   const culora_model_config *cfg,
                                                                   const char *path_or_dir);

/* ---------------------------------------------------------------------------------------- */
/* llama2.c checkpoints (karpathy/llama2.c, the .bin run.c reads; docs/formats.md).          */

/* Converts the llama2.c checkpoint bin_path into a Hugging Face LLaMA directory: out_dir
 * (created when absent; its parent must exist) gets model.safetensors (F32, HF names, the rows
 * of q_proj / k_proj permuted from llama2.c's adjacent-pair RoPE to transformers' rotate_half as
 * convert_llama_weights_to_hf.py does; lm_head only for an untied classifier) and then
 * config.json (LlamaForCausalLM, rms_norm_eps 1e-5, rope_theta 10000, bos 1, eos 2,
 * max_position_embeddings = seq_len), each written atomically.
 * The file is checked before anything is written: a header with a non-positive size, a zero
 * vocab_size, dim not a multiple of n_heads, n_heads not a multiple of n_kv_heads, an odd head
 * size; a file whose length is not exactly what the header implies (header, weights, the
 * legacy RoPE tables, the classifier when untied); a NaN or Inf weight: CULORA_ERR_FORMAT with
 * the file and the problem. A version 1/2 export (magic "ak42") is CULORA_ERR_UNSUPPORTED.
 * The input is read through a read-only mapping, never past its end. */
CULORA_API CULORA_NODISCARD culora_status culora_llama2c_convert(culora_context *ctx, const char *bin_path,
                                                                 const char *out_dir);

/* ---------------------------------------------------------------------------------------- */
/* PEFT LoRA adapters.                                                                       */

/* A rank_pattern / alpha_pattern entry: key is a regex matched as PEFT does,
 * re.match(r"(.*\.)?(key)$", module_name); the first matching entry wins. */
typedef struct culora_lora_pattern {
    const char *key;
    double value;
} culora_lora_pattern;

/* LoraConfig fields culora understands. As a create() argument the strings and arrays are
 * copied; as returned by culora_adapter_config() they are owned by the adapter. */
typedef struct culora_lora_config {
    uint32_t struct_size;                  /* sizeof(culora_lora_config); set by CULORA_LORA_CONFIG_INIT */
    uint32_t api_version;                  /* CULORA_API_VERSION */
    int32_t r;                             /* default rank (PEFT default 8) */
    double lora_alpha;                     /* default alpha (PEFT default 8) */
    double lora_dropout;                   /* dropout on the LoRA input, [0, 1) */
    bool use_rslora;                       /* scaling alpha/sqrt(r) instead of alpha/r */
    bool fan_in_fan_out;                   /* base weight stored [in, out] (GPT-2 Conv1D) */
    const char *const *target_modules;     /* list: a module matches name == t or ends with "." t */
    size_t n_target_modules;
    const char *target_modules_regex;      /* non-NULL: target_modules is this regex (full match)
                                              instead of the list; "all-linear" is PEFT's shorthand */
    const culora_lora_pattern *rank_pattern;
    size_t n_rank_pattern;
    const culora_lora_pattern *alpha_pattern;
    size_t n_alpha_pattern;
    const char *const *modules_to_save;    /* modules saved in full beside the adapter; NULL = null */
    size_t n_modules_to_save;
    const char *task_type;                 /* "CAUSAL_LM", ...; NULL = null */
    const char *base_model_name_or_path;   /* NULL = null */
    const char *revision;                  /* NULL = null */
    const char *init_lora_weights;         /* "true" (kaiming-uniform A, zero B), "false", "gaussian";
                                              NULL = "true". Others are refused. */
} culora_lora_config;

#define CULORA_LORA_CONFIG_INIT                                                                     \
    { sizeof(culora_lora_config), CULORA_API_VERSION, 8, 8.0, 0.0, false, false, NULL, 0, NULL, NULL, 0, \
      NULL, 0, NULL, 0, "CAUSAL_LM", NULL, NULL, "true" }

/* One LoRA-adapted module: y = W0 x + scaling * B (A x). Owned by the adapter. */
typedef struct culora_lora_module {
    const char *name;      /* module path in the Hugging Face model, e.g.
                              "model.layers.0.self_attn.q_proj", "transformer.h.0.attn.c_attn" */
    bool embedding;        /* nn.Embedding target: stored as lora_embedding_A/B */
    int32_t r;             /* rank (rank_pattern applied) */
    double alpha;          /* lora_alpha (alpha_pattern applied) */
    double scaling;        /* alpha / r, or alpha / sqrt(r) with use_rslora */
    int64_t in_features;   /* A columns (embedding: num_embeddings) */
    int64_t out_features;  /* B rows (embedding: embedding_dim) */
    float *A;              /* [r, in_features], row-major fp32 */
    float *B;              /* [out_features, r], row-major fp32 */
} culora_lora_module;

/* A full (non-LoRA) tensor stored in the adapter file: modules_to_save copies and embedding
 * base layers, named without the "base_model.model." prefix. Owned by the adapter. */
typedef struct culora_adapter_tensor {
    const char *name;
    int32_t n_dims;
    const int64_t *shape;
    int64_t n_elems;
    float *data;           /* fp32 */
} culora_adapter_tensor;

typedef struct culora_adapter culora_adapter;

/* A new, empty adapter with config cfg (validated: r > 0, regexes compile, supported options). */
CULORA_API CULORA_NODISCARD culora_status culora_adapter_create(culora_context *ctx, const culora_lora_config *cfg,
                                                                culora_adapter **out);
/* NULL: no-op. */
CULORA_API void culora_adapter_destroy(culora_adapter *ad);

/* Loads dir/adapter_config.json and dir/adapter_model.safetensors as PEFT writes them. Refused:
 * peft_type other than LORA, use_dora, bias other than "none", lora_bias, init_lora_weights that
 * changes the base model (pissa, olora, loftq, corda, eva, ...), and other options that change
 * the math (CULORA_ERR_UNSUPPORTED); tensors that are missing, unpaired, of the wrong shape for
 * their rank, or not under "base_model.model." (CULORA_ERR_FORMAT). */
CULORA_API CULORA_NODISCARD culora_status culora_adapter_load(culora_context *ctx, const char *dir,
                                                              culora_adapter **out);
/* Writes dir/adapter_model.safetensors (fp32, metadata {"format":"pt"}) and then
 * dir/adapter_config.json, each atomically; creates dir when it does not exist. */
CULORA_API CULORA_NODISCARD culora_status culora_adapter_save(culora_context *ctx, const culora_adapter *ad,
                                                              const char *dir);

/* The adapter's config (owned by the adapter). */
CULORA_API const culora_lora_config *culora_adapter_config(const culora_adapter *ad);

/* Whether module_name is targeted by the config (target_modules as PEFT matches it), and its
 * rank and alpha after rank_pattern / alpha_pattern. r and alpha may be NULL. */
CULORA_API CULORA_NODISCARD culora_status culora_adapter_match(culora_context *ctx, const culora_adapter *ad,
                                                               const char *module_name, bool *targeted,
                                                               int32_t *r, double *alpha);
/* Adds a LoRA module for module_name (rank and alpha from the patterns) with A and B zero;
 * the caller initialises them. *out (may be NULL) points at the new module. */
CULORA_API CULORA_NODISCARD culora_status culora_adapter_add_module(culora_context *ctx, culora_adapter *ad,
                                                                    const char *module_name, int64_t in_features,
                                                                    int64_t out_features, bool embedding,
                                                                    culora_lora_module **out);
/* Modules in name order; NULL when out of range / absent. */
CULORA_API size_t culora_adapter_n_modules(const culora_adapter *ad);
CULORA_API culora_lora_module *culora_adapter_module(const culora_adapter *ad, size_t i);
CULORA_API culora_lora_module *culora_adapter_find_module(const culora_adapter *ad, const char *module_name);

/* Full tensors (copied in as fp32). */
CULORA_API CULORA_NODISCARD culora_status culora_adapter_add_tensor(culora_context *ctx, culora_adapter *ad,
                                                                    const char *name, int32_t n_dims,
                                                                    const int64_t *shape, const float *data);
CULORA_API size_t culora_adapter_n_tensors(const culora_adapter *ad);
CULORA_API const culora_adapter_tensor *culora_adapter_tensor_at(const culora_adapter *ad, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_IO_H */
