/*
 * culora_data.h — tokenizers and training data: text → token ids → batches of
 * (input ids, target ids, loss mask) for next-token prediction. Long form: docs/data.md.
 *
 * Tokenizers (one handle type, immutable once loaded, so one handle may be shared by threads):
 *  - bytes: vocabulary of 256, id = byte value; no special tokens; needs no file.
 *  - Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, LLaMA-3 style): byte-to-unicode
 *    map, ranked merges, the pre-tokenizer regex (run through PCRE2 with UTF-8 + Unicode properties),
 *    added and special tokens, the TemplateProcessing post-processor.
 *  - The original GPT-2 pair encoder.json + vocab.bpe (same as Hugging Face vocab.json + merges.txt).
 * Encoding valid UTF-8 gives the ids the Hugging Face `tokenizers` library gives; any bytes
 * (invalid UTF-8 too) can be encoded, and decode(encode(s)) == s.
 *
 * Data: plain text files (one document per file) and JSONL ({"text": ...} or {"prompt": ...,
 * "completion": ...}, loss on the completion only), tokenized when the dataset is created, then
 * packed into rows of seq_len+1 tokens (documents joined by an EOS token) or one padded row per
 * document. A loader walks the rows in a seeded shuffle per epoch, gives each rank its shard, and
 * has a position that can be saved and restored so a resumed run sees exactly the same batches.
 *
 * All functions take the context first for error messages (it may be NULL: the status is still
 * returned). Nothing here touches the compute backend: ids and masks are host arrays.
 */
#ifndef CULORA_DATA_H
#define CULORA_DATA_H

#include "culora/culora.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* Tokenizers                                                                                */

typedef struct culora_tokenizer culora_tokenizer;

typedef enum culora_tokenizer_kind {
    CULORA_TOKENIZER_BYTES = 0, /* id = byte value, vocabulary 256 */
    CULORA_TOKENIZER_BPE   = 1  /* byte-level BPE (tokenizer.json or encoder.json + vocab.bpe) */
} culora_tokenizer_kind;

/* Encode flags. Hugging Face's default `tokenizer.encode(text)` is
 * CULORA_ENCODE_SPECIAL | CULORA_ENCODE_ADD_SPECIAL. */
#define CULORA_ENCODE_SPECIAL     1u /* special tokens written in the text (e.g. "<|endoftext|>") become
                                        their ids; without it they are encoded as ordinary text (HF
                                        encode_special_tokens=True). Non-special added tokens always match. */
#define CULORA_ENCODE_ADD_SPECIAL 2u /* apply the post-processor template (e.g. LLaMA-3's leading BOS) */

/* Decode flags. */
#define CULORA_DECODE_SKIP_SPECIAL 1u /* leave special tokens out of the text */

/* Byte tokenizer: 256 ids, no special tokens. */
CULORA_API CULORA_NODISCARD culora_status culora_tokenizer_create_bytes(culora_context *ctx, culora_tokenizer **out);

/* Loads a Hugging Face tokenizer.json (byte-level BPE). When a tokenizer_config.json sits in the
 * same directory, its bos_token / eos_token name the BOS / EOS ids; otherwise they are guessed
 * from the special tokens (<|endoftext|>, <|end_of_text|>, </s>; <|begin_of_text|>, <s>) and the
 * post-processor template. Parts of the format this does not implement (normalizers, other
 * models, other pre-tokenizers, BPE dropout, byte_fallback ...) give CULORA_ERR_UNSUPPORTED with
 * the name of the part; a malformed file gives CULORA_ERR_FORMAT, a missing one CULORA_ERR_IO. */
CULORA_API CULORA_NODISCARD culora_status culora_tokenizer_load_hf(culora_context *ctx, const char *tokenizer_json,
                                                                    culora_tokenizer **out);

/* Loads the original GPT-2 files: encoder.json (token → id) and vocab.bpe (merges, one "a b" per
 * line after a "#version" line). Behaves as Hugging Face GPT2TokenizerFast: GPT-2 pre-tokenizer
 * regex, no prefix space, "<|endoftext|>" special and both BOS and EOS. */
CULORA_API CULORA_NODISCARD culora_status culora_tokenizer_load_gpt2(culora_context *ctx, const char *encoder_json,
                                                                      const char *vocab_bpe, culora_tokenizer **out);

/* Frees the tokenizer. NULL: no-op. */
CULORA_API void culora_tokenizer_destroy(culora_tokenizer *tok);

CULORA_API culora_tokenizer_kind culora_tokenizer_get_kind(const culora_tokenizer *tok);
/* Number of ids: highest id + 1 (ids of a BPE vocabulary may have gaps; decoding a gap fails). */
CULORA_API int32_t culora_tokenizer_vocab_size(const culora_tokenizer *tok);
/* BOS / EOS ids, -1 when the tokenizer has none (the byte tokenizer has none). */
CULORA_API int32_t culora_tokenizer_bos_id(const culora_tokenizer *tok);
CULORA_API int32_t culora_tokenizer_eos_id(const culora_tokenizer *tok);
/* Id of a token given as written in the vocabulary file (byte-mapped form, e.g. "Ġthe") or as an
 * added token's content ("<|endoftext|>"); the byte tokenizer takes one-byte strings. -1 if absent. */
CULORA_API int32_t culora_tokenizer_token_to_id(const culora_tokenizer *tok, const char *token);
/* 1 if id is a special token, else 0. */
CULORA_API int culora_tokenizer_is_special(const culora_tokenizer *tok, int32_t id);
/* Upper bound on the number of ids culora_tokenizer_encode gives for text_bytes bytes. */
CULORA_API size_t culora_tokenizer_max_tokens(const culora_tokenizer *tok, size_t text_bytes);

/* Encodes text_bytes bytes of text (any bytes; NUL is an ordinary byte). On success *n_ids is the
 * number of ids. ids may be NULL to only count them; otherwise capacity must be >= *n_ids, else
 * nothing is written past capacity and CULORA_ERR_INVALID_ARG says how many are needed
 * (culora_tokenizer_max_tokens gives a capacity that always suffices). */
CULORA_API CULORA_NODISCARD culora_status culora_tokenizer_encode(culora_context *ctx, const culora_tokenizer *tok,
                                                                   const char *text, size_t text_bytes,
                                                                   uint32_t flags, int32_t *ids, size_t capacity,
                                                                   size_t *n_ids);

/* Decodes ids to bytes (byte-level BPE decoding; the result need not be valid UTF-8 when ids stop
 * inside a character). On success *n_bytes is the length; text gets those bytes and a NUL, so
 * capacity must be >= *n_bytes + 1 (text NULL: only measure). An id outside the vocabulary gives
 * CULORA_ERR_INVALID_ARG naming its position. */
CULORA_API CULORA_NODISCARD culora_status culora_tokenizer_decode(culora_context *ctx, const culora_tokenizer *tok,
                                                                   const int32_t *ids, size_t n_ids, uint32_t flags,
                                                                   char *text, size_t capacity, size_t *n_bytes);

/* The bytes one id decodes to (owned by the tokenizer, not NUL-terminated); NULL for an id
 * outside the vocabulary. For streaming output one token at a time. */
CULORA_API const char *culora_tokenizer_id_bytes(const culora_tokenizer *tok, int32_t id, size_t *n_bytes);

/* ---------------------------------------------------------------------------------------- */
/* Datasets                                                                                  */

/* Target id of positions that carry no loss (PyTorch / Hugging Face ignore_index). */
#define CULORA_IGNORE_INDEX (-100)

/* Special-id settings in culora_dataset_params. */
#define CULORA_TOKEN_AUTO (-1) /* the tokenizer's own: for BOS the one its post-processor template
                                  adds (LLaMA-3), for EOS its EOS; none when it has none */
#define CULORA_TOKEN_NONE (-2) /* no such token */

typedef enum culora_data_format {
    CULORA_DATA_FORMAT_AUTO  = 0, /* by file name: *.jsonl / *.json → JSONL, anything else → text */
    CULORA_DATA_FORMAT_TEXT  = 1, /* the whole file is one document */
    CULORA_DATA_FORMAT_JSONL = 2  /* one JSON object per line: {"text"} or {"prompt", "completion"} */
} culora_data_format;

typedef enum culora_data_layout {
    CULORA_DATA_PACK = 0, /* documents joined into one token stream, cut into rows of seq_len
                             inputs (row i covers stream[i·seq_len .. i·seq_len + seq_len]); the
                             last row is padded */
    CULORA_DATA_PAD  = 1  /* one row per document, padded; a document longer than seq_len+1 tokens
                             is an error unless truncate is set */
} culora_data_layout;

typedef struct culora_dataset_params {
    uint32_t struct_size; /* sizeof(culora_dataset_params); set by CULORA_DATASET_PARAMS_INIT */
    uint32_t api_version; /* CULORA_API_VERSION */
    int32_t format;       /* culora_data_format */
    int32_t layout;       /* culora_data_layout */
    int32_t seq_len;      /* input tokens per row (>= 1) */
    int32_t bos_id;       /* put before every document (no loss on it); default CULORA_TOKEN_AUTO */
    int32_t eos_id;       /* put after every document (carries loss); default CULORA_TOKEN_AUTO */
    int32_t pad_id;       /* input id of padding positions; CULORA_TOKEN_AUTO: EOS, else 0 */
    int32_t truncate;     /* PAD layout: 1 = cut long documents, 0 = refuse them (default) */
    int32_t parse_special;/* 1 = special tokens written in the data become their ids (default 0:
                             data is plain text, as a user's "<|endoftext|>" should not end a document) */
} culora_dataset_params;

#define CULORA_DATASET_PARAMS_INIT                                                                 \
    {                                                                                              \
        (uint32_t)sizeof(culora_dataset_params), CULORA_API_VERSION, CULORA_DATA_FORMAT_AUTO,     \
            CULORA_DATA_PACK, 0, CULORA_TOKEN_AUTO, CULORA_TOKEN_AUTO, CULORA_TOKEN_AUTO, 0, 0      \
    }

typedef struct culora_dataset culora_dataset;

/* Reads and tokenizes n_paths files (in order) into one dataset. Errors name the file and, for
 * JSONL, the line: CULORA_ERR_IO (cannot read), CULORA_ERR_FORMAT (malformed JSONL, an empty
 * file, no documents, a document too long for the PAD layout). The tokenizer is only used here;
 * it may be destroyed afterwards. */
CULORA_API CULORA_NODISCARD culora_status culora_dataset_create(culora_context *ctx, const culora_tokenizer *tok,
                                                                 const char *const *paths, int n_paths,
                                                                 const culora_dataset_params *params,
                                                                 culora_dataset **out);

/* Same from bytes in memory; name stands for the file in messages and in FORMAT_AUTO. */
CULORA_API CULORA_NODISCARD culora_status culora_dataset_create_from_memory(culora_context *ctx,
                                                                             const culora_tokenizer *tok,
                                                                             const char *name, const char *data,
                                                                             size_t bytes,
                                                                             const culora_dataset_params *params,
                                                                             culora_dataset **out);

/* Frees the dataset. NULL: no-op. */
CULORA_API void culora_dataset_destroy(culora_dataset *ds);

CULORA_API int64_t culora_dataset_num_rows(const culora_dataset *ds);      /* examples (rows) */
CULORA_API int64_t culora_dataset_num_documents(const culora_dataset *ds); /* documents kept */
CULORA_API int64_t culora_dataset_num_tokens(const culora_dataset *ds);    /* tokens incl. BOS/EOS */
CULORA_API int64_t culora_dataset_num_loss_tokens(const culora_dataset *ds); /* targets with loss, all rows */
CULORA_API int32_t culora_dataset_seq_len(const culora_dataset *ds);
/* 64-bit fingerprint of the tokens, masks and layout (a resumed run checks it). */
CULORA_API uint64_t culora_dataset_fingerprint(const culora_dataset *ds);

/* Writes row `row` (0 <= row < num_rows): input_ids and target_ids get seq_len ids each (targets
 * CULORA_IGNORE_INDEX where there is no loss), loss_mask (may be NULL) seq_len bytes of 0/1;
 * *n_loss_tokens (may be NULL) the number of 1s. For evaluation in order, without a loader. */
CULORA_API CULORA_NODISCARD culora_status culora_dataset_get_row(culora_context *ctx, const culora_dataset *ds,
                                                                  int64_t row, int32_t *input_ids,
                                                                  int32_t *target_ids, uint8_t *loss_mask,
                                                                  int64_t *n_loss_tokens);

/* ---------------------------------------------------------------------------------------- */
/* Loader: shuffled, sharded batches with a resumable position                               */

typedef struct culora_loader_params {
    uint32_t struct_size; /* sizeof(culora_loader_params); set by CULORA_LOADER_PARAMS_INIT */
    uint32_t api_version; /* CULORA_API_VERSION */
    int32_t batch_size;   /* rows per rank per step (>= 1) */
    int32_t rank;         /* 0 <= rank < world_size */
    int32_t world_size;   /* ranks that share the data (>= 1) */
    int32_t shuffle;      /* 1 (default): a new seeded permutation of the rows every epoch */
    int32_t drop_last;    /* 1: skip an epoch's last global batch when it is incomplete; 0
                             (default): fill it with padding rows (all targets ignored) */
    uint64_t seed;        /* shuffle seed; every rank must use the same */
} culora_loader_params;

#define CULORA_LOADER_PARAMS_INIT \
    { (uint32_t)sizeof(culora_loader_params), CULORA_API_VERSION, 1, 0, 1, 1, 0, 0 }

typedef struct culora_loader culora_loader;

/* One step's rows for this rank. The caller owns the arrays and sets the pointers; the loader
 * fills them and the output fields. */
typedef struct culora_batch {
    int32_t *input_ids;   /* [batch_size · seq_len], row-major */
    int32_t *target_ids;  /* [batch_size · seq_len]; CULORA_IGNORE_INDEX where there is no loss */
    uint8_t *loss_mask;   /* [batch_size · seq_len] or NULL: 1 where the target counts */
    int64_t *row_ids;     /* [batch_size] or NULL: dataset row of each batch row, -1 for padding */
    /* outputs */
    int32_t n_rows;         /* rows holding data; rows after them are padding */
    int64_t n_loss_tokens;  /* targets with loss in this rank's batch */
    uint64_t epoch;         /* epoch (0-based) the rows come from */
    uint64_t step;          /* step within that epoch (0-based) */
} culora_batch;

/* A loader over ds (which must outlive it). Every rank of a data-parallel job creates one with the
 * same dataset, seed and batch_size; step s of epoch e gives rank r the rows at positions
 * [(s·world_size + r)·batch_size, +batch_size) of epoch e's permutation, so the ranks together
 * see every row exactly once per epoch and all take the same number of steps. */
CULORA_API CULORA_NODISCARD culora_status culora_loader_create(culora_context *ctx, const culora_dataset *ds,
                                                                const culora_loader_params *params,
                                                                culora_loader **out);
/* Frees the loader. NULL: no-op. */
CULORA_API void culora_loader_destroy(culora_loader *ld);

/* Steps in one epoch (the same on every rank). */
CULORA_API uint64_t culora_loader_steps_per_epoch(const culora_loader *ld);
/* Rows per batch and input tokens per row (the arrays of a culora_batch hold their product). */
CULORA_API int32_t culora_loader_batch_size(const culora_loader *ld);
CULORA_API int32_t culora_loader_seq_len(const culora_loader *ld);

/* Fills the next batch and advances; after the last step of an epoch the next epoch begins
 * (reshuffled). Never runs out. */
CULORA_API CULORA_NODISCARD culora_status culora_loader_next(culora_context *ctx, culora_loader *ld,
                                                              culora_batch *batch);

/* Where a loader is: enough to continue with exactly the same batches, plus what it must be
 * restored into (a restore into a loader over other data or another batch layout is refused). */
typedef struct culora_data_position {
    uint64_t epoch;        /* epoch of the next batch */
    uint64_t step;         /* step within it of the next batch */
    uint64_t seed;         /* the loader's seed */
    uint64_t fingerprint;  /* culora_dataset_fingerprint of its dataset */
    uint64_t num_rows;     /* rows in the dataset */
    int32_t batch_size;
    int32_t world_size;
    int32_t shuffle;
    int32_t drop_last;
} culora_data_position;

/* Bytes of the serialized form (little-endian, with magic, version and checksum). */
#define CULORA_DATA_POSITION_BYTES 72

/* The position of the next batch (the same on every rank, so rank 0 can save it for all). */
CULORA_API void culora_loader_get_position(const culora_loader *ld, culora_data_position *pos);
/* Continues from pos. CULORA_ERR_MISUSE with a message when pos belongs to other data, another
 * seed, batch size, world size, shuffle or drop_last setting, or lies past the epoch's end. */
CULORA_API CULORA_NODISCARD culora_status culora_loader_set_position(culora_context *ctx, culora_loader *ld,
                                                                      const culora_data_position *pos);

/* Serialized form, for checkpoints. decode: CULORA_ERR_FORMAT on a bad magic, version, size or
 * checksum. */
CULORA_API void culora_data_position_encode(const culora_data_position *pos,
                                            uint8_t bytes[CULORA_DATA_POSITION_BYTES]);
CULORA_API CULORA_NODISCARD culora_status culora_data_position_decode(culora_context *ctx, const uint8_t *bytes,
                                                                       size_t n_bytes, culora_data_position *pos);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_DATA_H */
