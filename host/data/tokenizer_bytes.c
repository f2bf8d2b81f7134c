/*
 * tokenizer_bytes.c — the byte tokenizer: id = byte value, vocabulary 256, no special tokens.
 * The dependency-free default: any bytes encode, decoding gives them back.
 */
#include "data/tokenizer.h"

#include <stdlib.h>

culora_status culora_tokenizer_create_bytes(culora_context *ctx, culora_tokenizer **out)
{
    if (out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_tokenizer_create_bytes: out is NULL");
    culora_tokenizer *tok = NULL;
    CULORA_TRY(culora_tokenizer_new_bpe(ctx, 256, &tok));
    tok->kind = CULORA_TOKENIZER_BYTES;
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        culora_status s = culora_tokenizer_set_id(ctx, tok, b, &c, 1, 0);
        if (s != CULORA_OK) {
            culora_tokenizer_destroy(tok);
            return s;
        }
        tok->byte_id[b] = b;
    }
    *out = tok;
    return CULORA_OK;
}

culora_status culora_bytes_encode(culora_context *ctx, const culora_tokenizer *tok, const char *text, size_t n,
                                  culora_ivec *out)
{
    (void)tok;
    CULORA_TRY(culora_ivec_reserve(ctx, out, out->n + n));
    for (size_t i = 0; i < n; i++)
        out->v[out->n++] = (uint8_t)text[i];
    return CULORA_OK;
}
