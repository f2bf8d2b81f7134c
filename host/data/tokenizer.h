/*
 * tokenizer.h — the culora_tokenizer object (internal), shared by tokenizer.c (public calls,
 * tables), tokenizer_bytes.c, tokenizer_bpe.c (merges, encode), pretokenize.c (regex splits),
 * tokenizer_hf.c (tokenizer.json) and tokenizer_gpt2.c (encoder.json + vocab.bpe).
 *
 * Byte-level BPE works on raw bytes: vocabulary strings are converted back from the GPT-2
 * byte-to-unicode form when loaded, so encoding never builds mapped strings. An id's "bytes" are
 * what decoding gives for it (Hugging Face's ByteLevel decoder: the unmapped bytes when every
 * character is in the map, else the string's own UTF-8).
 */
#ifndef CULORA_HOST_DATA_TOKENIZER_H
#define CULORA_HOST_DATA_TOKENIZER_H

#include "culora/culora_data.h"
#include "data/data_util.h"

#include <stdbool.h>
#include <stdint.h>

/* id flags */
#define CULORA_TOK_PRESENT 1u /* the id exists (vocabularies may have gaps) */
#define CULORA_TOK_SPECIAL 2u /* a special added token */

/* Raw bytes → id, open addressing; keys live in its own arena. */
typedef struct culora_bytemap {
    int32_t *slots;       /* entry index + 1, 0 = empty; capacity is a power of two */
    size_t cap;
    uint64_t *key_off;    /* per entry: offset of the key in arena */
    uint32_t *key_len;
    int32_t *val;
    size_t n, n_cap;
    culora_bvec arena;
} culora_bytemap;

/* A token matched in the text before pre-tokenization. */
typedef struct culora_added_token {
    char *content;
    size_t len;
    int32_t id;
    bool special;
} culora_added_token;

enum culora_pretok_kind {
    CULORA_PRETOK_REGEX = 0,       /* split into regex matches and the gaps between them ("Isolated") */
    CULORA_PRETOK_PREFIX_SPACE = 1 /* prepend ' ' to a piece that does not start with one */
};

typedef struct culora_pretok_step {
    int kind;
    void *code; /* pcre2_code_8 * for CULORA_PRETOK_REGEX */
} culora_pretok_step;

struct culora_tokenizer {
    culora_tokenizer_kind kind;
    int32_t vocab_size;
    int32_t bos_id, eos_id;

    /* per id: the bytes it decodes to, flags */
    uint64_t *id_off;
    uint32_t *id_len;
    uint8_t *id_flags;
    culora_bvec id_arena;

    /* BPE model */
    culora_bytemap vocab;   /* raw bytes of model vocabulary tokens → id */
    int32_t byte_id[256];   /* id of each single byte */
    uint64_t *merge_key;    /* (left << 32 | right), UINT64_MAX = empty; capacity power of two */
    int32_t *merge_rank;
    int32_t *merge_new;
    size_t merge_cap, n_merges;
    bool ignore_merges;     /* a piece that is itself in the vocabulary is one token (LLaMA-3) */

    /* added tokens; added_first[b] is set when some token starts with byte b */
    culora_added_token *added;
    size_t n_added;
    uint8_t added_first[256];

    /* pre-tokenizer steps, applied in order */
    culora_pretok_step *steps;
    size_t n_steps;

    /* post-processor template for one sequence: ids before and after it */
    int32_t *tmpl_pre, *tmpl_post;
    size_t n_tmpl_pre, n_tmpl_post;
};

/* ---- tokenizer.c: tables ---------------------------------------------------------------- */

/* A new BPE tokenizer with ids 0..vocab_size-1 all absent. */
culora_status culora_tokenizer_new_bpe(culora_context *ctx, int32_t vocab_size, culora_tokenizer **out);
/* Sets the bytes id decodes to and marks it present (flags |= PRESENT | extra). */
culora_status culora_tokenizer_set_id(culora_context *ctx, culora_tokenizer *tok, int32_t id, const void *bytes,
                                      size_t n, uint8_t extra_flags);
/* Registers an added token (content as written in tokenizer.json). */
culora_status culora_tokenizer_add_token(culora_context *ctx, culora_tokenizer *tok, int32_t id,
                                         const char *content, size_t len, bool special);
/* Sets the decode bytes of id from its vocabulary string by the ByteLevel decoder rule. */
culora_status culora_tokenizer_set_id_from_string(culora_context *ctx, culora_tokenizer *tok, int32_t id,
                                                  const char *s, size_t n, uint8_t extra_flags);

/* Encodes text (any tokenizer kind) and appends the ids to out. */
culora_status culora_tokenizer_encode_append(culora_context *ctx, const culora_tokenizer *tok, const char *text,
                                             size_t n, uint32_t flags, culora_ivec *out);

/* ---- tokenizer_bytes.c ------------------------------------------------------------------ */

culora_status culora_bytes_encode(culora_context *ctx, const culora_tokenizer *tok, const char *text, size_t n,
                                  culora_ivec *out);

/* ---- bytemap (tokenizer_bpe.c) ---------------------------------------------------------- */

culora_status culora_bytemap_put(culora_context *ctx, culora_bytemap *m, const void *key, size_t n, int32_t val);
/* The value for key, or -1. */
int32_t culora_bytemap_get(const culora_bytemap *m, const void *key, size_t n);
void culora_bytemap_free(culora_bytemap *m);

/* ---- tokenizer_bpe.c: model ------------------------------------------------------------- */

/* Adds a vocabulary token given in byte-mapped form: its decode bytes, and (when every
 * character is in the byte map) its raw bytes to the BPE vocabulary. where names the source. */
culora_status culora_bpe_add_vocab(culora_context *ctx, culora_tokenizer *tok, int32_t id, const char *s, size_t n,
                                   const char *where);
/* Adds merge (left, right) of the given rank; both parts and their concatenation must be in the
 * vocabulary (CULORA_ERR_FORMAT naming where, e.g. "vocab.bpe:12"). */
culora_status culora_bpe_add_merge(culora_context *ctx, culora_tokenizer *tok, const char *left, size_t left_n,
                                   const char *right, size_t right_n, int32_t rank, const char *where);
/* Checks the model after loading (every byte has a token); where names the file. */
culora_status culora_bpe_finish(culora_context *ctx, culora_tokenizer *tok, const char *where);
/* Encodes text (added tokens, pre-tokenizer, BPE, template) and appends the ids to out. */
culora_status culora_bpe_encode(culora_context *ctx, const culora_tokenizer *tok, const char *text, size_t n,
                                uint32_t flags, culora_ivec *out);

/* ---- pretokenize.c ---------------------------------------------------------------------- */

/* The GPT-2 pre-tokenizer regex (Hugging Face ByteLevel use_regex=true). */
extern const char culora_gpt2_pattern[];

/* Appends a regex split step (literal: the pattern is a plain string). where names the source. */
culora_status culora_pretok_add_regex(culora_context *ctx, culora_tokenizer *tok, const char *pattern, size_t n,
                                      bool literal, const char *where);
culora_status culora_pretok_add_prefix_space(culora_context *ctx, culora_tokenizer *tok);
void culora_pretok_free(culora_tokenizer *tok);

/* Pieces of a segment: byte ranges of work. */
typedef struct culora_pieces {
    size_t *off, *len;
    size_t n, cap;
} culora_pieces;

/* Splits seg[0..n) by the steps. work receives the bytes the pieces point into (a copy of seg,
 * plus prefixed copies); out the pieces in order. */
culora_status culora_pretok_split(culora_context *ctx, const culora_tokenizer *tok, const char *seg, size_t n,
                                  culora_bvec *work, culora_pieces *out, culora_pieces *tmp);
void culora_pieces_free(culora_pieces *p);

#endif /* CULORA_HOST_DATA_TOKENIZER_H */
