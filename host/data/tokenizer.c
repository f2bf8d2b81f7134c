/*
 * tokenizer.c — the public tokenizer calls (encode, decode, lookups, destroy) and the per-id
 * tables every tokenizer kind fills. Loading lives in tokenizer_hf.c / tokenizer_gpt2.c, the BPE
 * algorithm in tokenizer_bpe.c, the byte tokenizer in tokenizer_bytes.c.
 */
#include "data/tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* ---- tables ----------------------------------------------------------------------------- */

culora_status culora_tokenizer_new_bpe(culora_context *ctx, int32_t vocab_size, culora_tokenizer **out)
{
    *out = NULL;
    if (vocab_size <= 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "tokenizer has an empty vocabulary");
    culora_tokenizer *tok = calloc(1, sizeof *tok);
    if (tok == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory allocating a tokenizer");
    tok->kind = CULORA_TOKENIZER_BPE;
    tok->vocab_size = vocab_size;
    tok->bos_id = tok->eos_id = -1;
    for (int b = 0; b < 256; b++)
        tok->byte_id[b] = -1;
    tok->id_off = calloc((size_t)vocab_size, sizeof *tok->id_off);
    tok->id_len = calloc((size_t)vocab_size, sizeof *tok->id_len);
    tok->id_flags = calloc((size_t)vocab_size, sizeof *tok->id_flags);
    if (tok->id_off == NULL || tok->id_len == NULL || tok->id_flags == NULL) {
        culora_tokenizer_destroy(tok);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory allocating a vocabulary of %d",
                           (int)vocab_size);
    }
    *out = tok;
    return CULORA_OK;
}

culora_status culora_tokenizer_set_id(culora_context *ctx, culora_tokenizer *tok, int32_t id, const void *bytes,
                                      size_t n, uint8_t extra_flags)
{
    if (id < 0 || id >= tok->vocab_size)
        return culora_fail(ctx, CULORA_ERR_INTERNAL, "token id %d outside 0..%d", (int)id, (int)tok->vocab_size - 1);
    if (n > UINT32_MAX)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "token %d is %zu bytes long", (int)id, n);
    tok->id_off[id] = tok->id_arena.n;
    tok->id_len[id] = (uint32_t)n;
    tok->id_flags[id] |= (uint8_t)(CULORA_TOK_PRESENT | extra_flags);
    return culora_bvec_append(ctx, &tok->id_arena, bytes, n);
}

culora_status culora_tokenizer_set_id_from_string(culora_context *ctx, culora_tokenizer *tok, int32_t id,
                                                  const char *s, size_t n, uint8_t extra_flags)
{
    /* Hugging Face ByteLevel decoder: a token whose characters are all in the byte map decodes
     * to those bytes; any other token decodes to its own UTF-8. */
    uint8_t stack[256];
    uint8_t *raw = n <= sizeof stack ? stack : malloc(n);
    if (raw == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory");
    size_t raw_n;
    culora_status s_;
    if (culora_unmap_bytes(s, n, raw, &raw_n))
        s_ = culora_tokenizer_set_id(ctx, tok, id, raw, raw_n, extra_flags);
    else
        s_ = culora_tokenizer_set_id(ctx, tok, id, s, n, extra_flags);
    if (raw != stack)
        free(raw);
    return s_;
}

culora_status culora_tokenizer_add_token(culora_context *ctx, culora_tokenizer *tok, int32_t id,
                                         const char *content, size_t len, bool special)
{
    if (len == 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "added token %d has empty content", (int)id);
    culora_added_token *a = realloc(tok->added, (tok->n_added + 1) * sizeof *a);
    if (a == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory");
    tok->added = a;
    char *c = malloc(len + 1);
    if (c == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(c, content, len);
    c[len] = '\0';
    a[tok->n_added++] = (culora_added_token){.content = c, .len = len, .id = id, .special = special};
    tok->added_first[(uint8_t)content[0]] = 1;
    return culora_tokenizer_set_id_from_string(ctx, tok, id, content, len, special ? CULORA_TOK_SPECIAL : 0);
}

/* ---- public calls ----------------------------------------------------------------------- */

void culora_tokenizer_destroy(culora_tokenizer *tok)
{
    if (tok == NULL)
        return;
    free(tok->id_off);
    free(tok->id_len);
    free(tok->id_flags);
    culora_bvec_free(&tok->id_arena);
    culora_bytemap_free(&tok->vocab);
    free(tok->merge_key);
    free(tok->merge_rank);
    free(tok->merge_new);
    for (size_t i = 0; i < tok->n_added; i++)
        free(tok->added[i].content);
    free(tok->added);
    culora_pretok_free(tok);
    free(tok->tmpl_pre);
    free(tok->tmpl_post);
    free(tok);
}

culora_tokenizer_kind culora_tokenizer_get_kind(const culora_tokenizer *tok) { return tok->kind; }
int32_t culora_tokenizer_vocab_size(const culora_tokenizer *tok) { return tok->vocab_size; }
int32_t culora_tokenizer_bos_id(const culora_tokenizer *tok) { return tok->bos_id; }
int32_t culora_tokenizer_eos_id(const culora_tokenizer *tok) { return tok->eos_id; }

int culora_tokenizer_is_special(const culora_tokenizer *tok, int32_t id)
{
    if (tok->kind == CULORA_TOKENIZER_BYTES || id < 0 || id >= tok->vocab_size)
        return 0;
    return (tok->id_flags[id] & CULORA_TOK_SPECIAL) != 0;
}

int32_t culora_tokenizer_token_to_id(const culora_tokenizer *tok, const char *token)
{
    if (token == NULL)
        return -1;
    size_t n = strlen(token);
    if (tok->kind == CULORA_TOKENIZER_BYTES)
        return n == 1 ? (int32_t)(uint8_t)token[0] : -1;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == n && memcmp(tok->added[i].content, token, n) == 0)
            return tok->added[i].id;
    uint8_t stack[256];
    uint8_t *raw = n <= sizeof stack ? stack : malloc(n);
    if (raw == NULL)
        return -1;
    size_t raw_n;
    int32_t id = culora_unmap_bytes(token, n, raw, &raw_n) ? culora_bytemap_get(&tok->vocab, raw, raw_n) : -1;
    if (raw != stack)
        free(raw);
    return id;
}

size_t culora_tokenizer_max_tokens(const culora_tokenizer *tok, size_t text_bytes)
{
    /* Every id covers at least one byte of the text, except template ids and the prefix space
     * the ByteLevel pre-tokenizer may add to each piece (at most one per text byte). */
    size_t per_byte = 1;
    for (size_t i = 0; i < tok->n_steps; i++)
        if (tok->steps[i].kind == CULORA_PRETOK_PREFIX_SPACE)
            per_byte = 2;
    return text_bytes * per_byte + 1 + tok->n_tmpl_pre + tok->n_tmpl_post;
}

culora_status culora_tokenizer_encode_append(culora_context *ctx, const culora_tokenizer *tok, const char *text,
                                             size_t n, uint32_t flags, culora_ivec *out)
{
    if (tok->kind == CULORA_TOKENIZER_BYTES)
        return culora_bytes_encode(ctx, tok, text, n, out);
    return culora_bpe_encode(ctx, tok, text, n, flags, out);
}

culora_status culora_tokenizer_encode(culora_context *ctx, const culora_tokenizer *tok, const char *text,
                                      size_t text_bytes, uint32_t flags, int32_t *ids, size_t capacity,
                                      size_t *n_ids)
{
    if (tok == NULL || n_ids == NULL || (text == NULL && text_bytes > 0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_tokenizer_encode: NULL argument");
    *n_ids = 0;
    culora_ivec v = {0};
    culora_status s = culora_tokenizer_encode_append(ctx, tok, text, text_bytes, flags, &v);
    if (s == CULORA_OK) {
        *n_ids = v.n;
        if (ids != NULL) {
            if (capacity < v.n)
                s = culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                                "culora_tokenizer_encode: %zu ids do not fit the capacity of %zu", v.n, capacity);
            else if (v.n > 0)
                memcpy(ids, v.v, v.n * sizeof *ids);
        }
    }
    culora_ivec_free(&v);
    return s;
}

const char *culora_tokenizer_id_bytes(const culora_tokenizer *tok, int32_t id, size_t *n_bytes)
{
    if (id < 0 || id >= tok->vocab_size || !(tok->id_flags[id] & CULORA_TOK_PRESENT)) {
        if (n_bytes != NULL)
            *n_bytes = 0;
        return NULL;
    }
    if (n_bytes != NULL)
        *n_bytes = tok->id_len[id];
    return (const char *)tok->id_arena.v + tok->id_off[id];
}

culora_status culora_tokenizer_decode(culora_context *ctx, const culora_tokenizer *tok, const int32_t *ids,
                                      size_t n_ids, uint32_t flags, char *text, size_t capacity, size_t *n_bytes)
{
    if (tok == NULL || n_bytes == NULL || (ids == NULL && n_ids > 0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_tokenizer_decode: NULL argument");
    *n_bytes = 0;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t len;
        if (culora_tokenizer_id_bytes(tok, ids[i], &len) == NULL)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                               "culora_tokenizer_decode: id %d at position %zu is not in the vocabulary (size %d)",
                               (int)ids[i], i, (int)tok->vocab_size);
        if ((flags & CULORA_DECODE_SKIP_SPECIAL) && culora_tokenizer_is_special(tok, ids[i]))
            continue;
        total += len;
    }
    *n_bytes = total;
    if (text == NULL)
        return CULORA_OK;
    if (capacity < total + 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_tokenizer_decode: %zu bytes and a NUL do not fit the capacity of %zu", total,
                           capacity);
    size_t o = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if ((flags & CULORA_DECODE_SKIP_SPECIAL) && culora_tokenizer_is_special(tok, ids[i]))
            continue;
        size_t len;
        const char *b = culora_tokenizer_id_bytes(tok, ids[i], &len);
        memcpy(text + o, b, len);
        o += len;
    }
    text[o] = '\0';
    return CULORA_OK;
}
