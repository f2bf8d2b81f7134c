/*
 * tokenizer_gpt2.c — loads the original GPT-2 files: encoder.json ({token: id}) and vocab.bpe
 * ("#version: 0.2" then one merge "a b" per line, in rank order). The result behaves as Hugging
 * Face's GPT2TokenizerFast built from the same files (vocab.json / merges.txt): the GPT-2
 * pre-tokenizer regex, no prefix space, "<|endoftext|>" a special token and both BOS and EOS.
 */
#include "data/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static culora_status load_encoder(culora_context *ctx, const char *path, json_t **out)
{
    char *data;
    size_t n;
    CULORA_TRY(culora_read_whole_file(ctx, path, &data, &n));
    json_error_t err;
    json_t *root = json_loadb(data, n, 0, &err);
    free(data);
    if (root == NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", path, err.line, err.column, err.text);
    if (!json_is_object(root) || json_object_size(root) == 0) {
        json_decref(root);
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: not a non-empty {token: id} object", path);
    }
    *out = root;
    return CULORA_OK;
}

static culora_status add_merges(culora_context *ctx, culora_tokenizer *tok, const char *path)
{
    char *data;
    size_t n;
    CULORA_TRY(culora_read_whole_file(ctx, path, &data, &n));
    culora_status s = CULORA_OK;
    char where[600];
    int32_t rank = 0;
    size_t line_no = 0;
    for (size_t pos = 0; pos < n && s == CULORA_OK;) {
        size_t end = pos;
        while (end < n && data[end] != '\n')
            end++;
        const char *line = data + pos;
        size_t len = end - pos;
        pos = end + 1;
        line_no++;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        /* As tokenizers' BPE::read_file: skip "#version" lines; blank lines end nothing but hold
         * no merge. */
        if (len == 0 || (len >= 8 && memcmp(line, "#version", 8) == 0))
            continue;
        snprintf(where, sizeof where, "%s:%zu", path, line_no);
        const char *sp = memchr(line, ' ', len);
        if (sp == NULL || sp == line || sp + 1 == line + len || memchr(sp + 1, ' ', (size_t)(line + len - sp - 1)))
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: \"%.*s\" is not two tokens separated by one space", where,
                            (int)(len > 64 ? 64 : len), line);
        else
            s = culora_bpe_add_merge(ctx, tok, line, (size_t)(sp - line), sp + 1, (size_t)(line + len - sp - 1),
                                     rank++, where);
    }
    free(data);
    if (s == CULORA_OK && rank == 0)
        s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: no merges", path);
    return s;
}

culora_status culora_tokenizer_load_gpt2(culora_context *ctx, const char *encoder_json, const char *vocab_bpe,
                                         culora_tokenizer **out)
{
    if (encoder_json == NULL || vocab_bpe == NULL || out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_tokenizer_load_gpt2: NULL argument");
    *out = NULL;
    json_t *enc = NULL;
    CULORA_TRY(load_encoder(ctx, encoder_json, &enc));
    culora_tokenizer *tok = NULL;
    culora_status s = CULORA_OK;
    int64_t max_id = -1;
    const char *key;
    json_t *val;
    json_object_foreach(enc, key, val)
    {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= INT32_MAX) {
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: the id of \"%.64s\" is not an integer in 0..2^31-2",
                            encoder_json, key);
            goto done;
        }
        if (json_integer_value(val) > max_id)
            max_id = json_integer_value(val);
    }
    CULORA_TRY_GOTO(s, culora_tokenizer_new_bpe(ctx, (int32_t)(max_id + 1), &tok), done);
    json_object_foreach(enc, key, val)
        CULORA_TRY_GOTO(s, culora_bpe_add_vocab(ctx, tok, (int32_t)json_integer_value(val), key, strlen(key),
                                                encoder_json), done);
    CULORA_TRY_GOTO(s, culora_bpe_finish(ctx, tok, encoder_json), done);
    CULORA_TRY_GOTO(s, add_merges(ctx, tok, vocab_bpe), done);
    CULORA_TRY_GOTO(s, culora_pretok_add_regex(ctx, tok, culora_gpt2_pattern, strlen(culora_gpt2_pattern), false,
                                               "GPT-2 pattern"), done);
    json_t *eot = json_object_get(enc, "<|endoftext|>");
    if (json_is_integer(eot)) {
        int32_t id = (int32_t)json_integer_value(eot);
        CULORA_TRY_GOTO(s, culora_tokenizer_add_token(ctx, tok, id, "<|endoftext|>", 13, true), done);
        tok->bos_id = tok->eos_id = id;
    }
done:
    json_decref(enc);
    if (s != CULORA_OK) {
        culora_tokenizer_destroy(tok);
        return s;
    }
    *out = tok;
    return CULORA_OK;
}
