/*
 * tokenizer_hf.c — loads a Hugging Face tokenizer.json with a byte-level BPE model (GPT-2,
 * LLaMA-3 and models trained with tokenizers' ByteLevelBPETokenizer).
 *
 * Read: model (type BPE: vocab, merges as "a b" strings or [a, b] pairs, ignore_merges),
 * added_tokens, pre_tokenizer (ByteLevel, Split with a Regex or String pattern and Isolated
 * behaviour, Sequence; ByteLevel last), post_processor (ByteLevel, TemplateProcessing, Sequence),
 * decoder (ByteLevel). Anything else that would change the ids is refused with
 * CULORA_ERR_UNSUPPORTED naming it; truncation and padding are ignored (the dataset has its own).
 */
#include "data/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_of(json_t *obj)
{
    json_t *t = json_object_get(obj, "type");
    return json_is_string(t) ? json_string_value(t) : NULL;
}

static bool is_null_or_absent(json_t *j) { return j == NULL || json_is_null(j); }

static culora_status add_vocab(culora_context *ctx, culora_tokenizer *tok, json_t *vocab, const char *path)
{
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val)
    {
        if (!json_is_integer(val))
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: model.vocab[\"%.64s\"] is not an integer id", path, key);
        CULORA_TRY(culora_bpe_add_vocab(ctx, tok, (int32_t)json_integer_value(val), key, strlen(key), path));
    }
    return CULORA_OK;
}

static culora_status add_merges(culora_context *ctx, culora_tokenizer *tok, json_t *merges, const char *path)
{
    if (!json_is_array(merges))
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: model.merges is not an array", path);
    char where[600];
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m)
    {
        if (i > INT32_MAX)
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: too many merges", path);
        snprintf(where, sizeof where, "%s: model.merges[%zu]", path, i);
        const char *a, *b;
        size_t a_n, b_n;
        if (json_is_string(m)) { /* "a b" (tokenizers < 0.20) */
            a = json_string_value(m);
            const char *sp = strchr(a, ' ');
            if (sp == NULL || strchr(sp + 1, ' ') != NULL)
                return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: \"%.64s\" is not two tokens separated by one space",
                                   where, a);
            a_n = (size_t)(sp - a);
            b = sp + 1;
            b_n = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) { /* ["a", "b"] */
            a = json_string_value(json_array_get(m, 0));
            a_n = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            b_n = json_string_length(json_array_get(m, 1));
        } else {
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: neither \"a b\" nor [\"a\", \"b\"]", where);
        }
        CULORA_TRY(culora_bpe_add_merge(ctx, tok, a, a_n, b, b_n, (int32_t)i, where));
    }
    return CULORA_OK;
}

static culora_status check_model(culora_context *ctx, json_t *model, const char *path)
{
    const char *type = type_of(model);
    if (type != NULL && strcmp(type, "BPE") != 0)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: model type \"%s\": only byte-level BPE is supported",
                           path, type);
    if (!json_is_object(json_object_get(model, "vocab")))
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: model.vocab is missing or not an object", path);
    json_t *dropout = json_object_get(model, "dropout");
    if (!is_null_or_absent(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", path);
    if (json_is_true(json_object_get(model, "byte_fallback")))
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: byte_fallback BPE (SentencePiece-style) is not supported, only byte-level BPE", path);
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(model, affixes[k]);
        if (!is_null_or_absent(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: BPE %s is not supported", path, affixes[k]);
    }
    return CULORA_OK;
}

/* Largest id in model.vocab and added_tokens, + 1. */
static culora_status count_ids(culora_context *ctx, json_t *root, const char *path, int32_t *n)
{
    int64_t max_id = -1;
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(json_object_get(root, "model"), "vocab"), key, val)
    {
        if (json_is_integer(val) && json_integer_value(val) > max_id)
            max_id = json_integer_value(val);
        if (json_is_integer(val) && json_integer_value(val) < 0)
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: model.vocab[\"%.64s\"] has a negative id", path, key);
    }
    size_t i;
    json_array_foreach(json_object_get(root, "added_tokens"), i, val)
    {
        json_t *id = json_object_get(val, "id");
        if (json_is_integer(id) && json_integer_value(id) > max_id)
            max_id = json_integer_value(id);
    }
    if (max_id >= INT32_MAX)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: token id %lld is too large", path, (long long)max_id);
    *n = (int32_t)(max_id + 1);
    return CULORA_OK;
}

static culora_status add_added_tokens(culora_context *ctx, culora_tokenizer *tok, json_t *list, const char *path)
{
    if (is_null_or_absent(list))
        return CULORA_OK;
    if (!json_is_array(list))
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: added_tokens is not an array", path);
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        json_t *id = json_object_get(t, "id"), *content = json_object_get(t, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || !json_is_string(content) ||
            json_string_length(content) == 0)
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: added_tokens[%zu] needs an id >= 0 and a non-empty content",
                               path, i);
        const char *flags[] = {"single_word", "lstrip", "rstrip"};
        for (int k = 0; k < 3; k++)
            if (json_is_true(json_object_get(t, flags[k])))
                return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: added token \"%.64s\" has %s=true (not supported)",
                                   path, json_string_value(content), flags[k]);
        CULORA_TRY(culora_tokenizer_add_token(ctx, tok, (int32_t)json_integer_value(id), json_string_value(content),
                                              json_string_length(content), json_is_true(json_object_get(t, "special"))));
    }
    return CULORA_OK;
}

/* One pre-tokenizer (recursing through Sequence). *saw_byte_level tracks that ByteLevel came
 * and that nothing follows it. */
static culora_status add_pre_tokenizer(culora_context *ctx, culora_tokenizer *tok, json_t *pt, const char *path,
                                       bool *saw_byte_level)
{
    const char *type = type_of(pt);
    if (type == NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: a pre_tokenizer has no type", path);
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(pt, "pretokenizers");
        if (!json_is_array(list))
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: pre_tokenizer Sequence has no pretokenizers array", path);
        size_t i;
        json_t *sub;
        json_array_foreach(list, i, sub) CULORA_TRY(add_pre_tokenizer(ctx, tok, sub, path, saw_byte_level));
        return CULORA_OK;
    }
    if (*saw_byte_level)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: pre_tokenizer %s after ByteLevel is not supported (ByteLevel must be last)", path, type);
    if (strcmp(type, "ByteLevel") == 0) {
        *saw_byte_level = true;
        if (json_is_true(json_object_get(pt, "add_prefix_space")))
            CULORA_TRY(culora_pretok_add_prefix_space(ctx, tok));
        json_t *use_regex = json_object_get(pt, "use_regex");
        if (is_null_or_absent(use_regex) || json_is_true(use_regex))
            CULORA_TRY(culora_pretok_add_regex(ctx, tok, culora_gpt2_pattern, strlen(culora_gpt2_pattern), false,
                                               path));
        return CULORA_OK;
    }
    if (strcmp(type, "Split") == 0) {
        json_t *behavior = json_object_get(pt, "behavior");
        if (!json_is_string(behavior) || strcmp(json_string_value(behavior), "Isolated") != 0)
            return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: Split pre_tokenizer behavior \"%s\" (only Isolated)",
                               path, json_is_string(behavior) ? json_string_value(behavior) : "?");
        if (json_is_true(json_object_get(pt, "invert")))
            return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: Split pre_tokenizer with invert=true", path);
        json_t *pattern = json_object_get(pt, "pattern");
        json_t *re = json_object_get(pattern, "Regex"), *str = json_object_get(pattern, "String");
        if (json_is_string(re))
            return culora_pretok_add_regex(ctx, tok, json_string_value(re), json_string_length(re), false, path);
        if (json_is_string(str))
            return culora_pretok_add_regex(ctx, tok, json_string_value(str), json_string_length(str), true, path);
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: Split pre_tokenizer pattern is neither Regex nor String", path);
    }
    return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: pre_tokenizer type \"%s\" is not supported", path, type);
}

static culora_status push_ids(culora_context *ctx, int32_t **arr, size_t *n, json_t *ids, const char *path,
                              const char *name)
{
    if (!json_is_array(ids))
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: post_processor special token \"%s\" has no ids", path, name);
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        if (!json_is_integer(id))
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: post_processor special token \"%s\": id not an integer",
                               path, name);
        int32_t *a = realloc(*arr, (*n + 1) * sizeof *a);
        if (a == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory");
        *arr = a;
        a[(*n)++] = (int32_t)json_integer_value(id);
    }
    return CULORA_OK;
}

static culora_status add_post_processor(culora_context *ctx, culora_tokenizer *tok, json_t *pp, const char *path)
{
    if (is_null_or_absent(pp))
        return CULORA_OK;
    const char *type = type_of(pp);
    if (type != NULL && strcmp(type, "ByteLevel") == 0)
        return CULORA_OK; /* only trims offsets; ids are unchanged */
    if (type != NULL && strcmp(type, "Sequence") == 0) {
        size_t i;
        json_t *sub;
        json_array_foreach(json_object_get(pp, "processors"), i, sub) CULORA_TRY(add_post_processor(ctx, tok, sub, path));
        return CULORA_OK;
    }
    if (type == NULL || strcmp(type, "TemplateProcessing") != 0)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: post_processor type \"%s\" is not supported", path,
                           type ? type : "?");
    if (tok->n_tmpl_pre + tok->n_tmpl_post > 0)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: more than one TemplateProcessing", path);
    json_t *single = json_object_get(pp, "single"), *specials = json_object_get(pp, "special_tokens");
    if (!json_is_array(single))
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: TemplateProcessing has no \"single\" template", path);
    bool after = false;
    size_t i;
    json_t *piece;
    json_array_foreach(single, i, piece)
    {
        json_t *sp = json_object_get(piece, "SpecialToken");
        if (json_object_get(piece, "Sequence") != NULL) {
            if (after)
                return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: TemplateProcessing with two sequences", path);
            after = true;
            continue;
        }
        const char *name = json_string_value(json_object_get(sp, "id"));
        if (name == NULL)
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: TemplateProcessing single[%zu] is malformed", path, i);
        json_t *ids = json_object_get(json_object_get(specials, name), "ids");
        if (after)
            CULORA_TRY(push_ids(ctx, &tok->tmpl_post, &tok->n_tmpl_post, ids, path, name));
        else
            CULORA_TRY(push_ids(ctx, &tok->tmpl_pre, &tok->n_tmpl_pre, ids, path, name));
    }
    size_t n = tok->n_tmpl_pre + tok->n_tmpl_post;
    for (size_t k = 0; k < n; k++) {
        int32_t id = k < tok->n_tmpl_pre ? tok->tmpl_pre[k] : tok->tmpl_post[k - tok->n_tmpl_pre];
        if (culora_tokenizer_id_bytes(tok, id, NULL) == NULL)
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: post_processor uses id %d, which is not in the vocabulary",
                               path, (int)id);
    }
    return CULORA_OK;
}

static culora_status check_decoder(culora_context *ctx, json_t *dec, const char *path)
{
    const char *type = type_of(dec);
    if (type != NULL && strcmp(type, "Sequence") == 0 && json_array_size(json_object_get(dec, "decoders")) == 1)
        return check_decoder(ctx, json_array_get(json_object_get(dec, "decoders"), 0), path);
    if (type == NULL || strcmp(type, "ByteLevel") != 0)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: decoder \"%s\" is not supported (only ByteLevel)", path,
                           type ? type : "null");
    return CULORA_OK;
}

static culora_status check_normalizer(culora_context *ctx, json_t *norm, const char *path)
{
    if (is_null_or_absent(norm))
        return CULORA_OK;
    const char *type = type_of(norm);
    if (type != NULL && strcmp(type, "Sequence") == 0 && json_array_size(json_object_get(norm, "normalizers")) == 0)
        return CULORA_OK;
    return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported", path,
                       type ? type : "?");
}

/* bos_token / eos_token of a tokenizer_config.json: a string, {"content": ...} or null. */
static const char *config_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int32_t first_present(const culora_tokenizer *tok, const char *const *names)
{
    for (; *names != NULL; names++) {
        int32_t id = culora_tokenizer_token_to_id(tok, *names);
        if (id >= 0)
            return id;
    }
    return -1;
}

static void find_bos_eos(culora_tokenizer *tok, const char *path)
{
    static const char *const eos_names[] = {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", NULL};
    static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", "<bos>", NULL};
    tok->eos_id = first_present(tok, eos_names);
    if (tok->n_tmpl_pre == 1)
        tok->bos_id = tok->tmpl_pre[0];
    else
        tok->bos_id = first_present(tok, bos_names);
    if (tok->bos_id < 0 && tok->eos_id >= 0 && culora_tokenizer_token_to_id(tok, "<|endoftext|>") == tok->eos_id)
        tok->bos_id = tok->eos_id; /* GPT-2: one token for both */

    /* tokenizer_config.json beside the file names them for sure. */
    size_t n = strlen(path);
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    char *cfg_path = malloc(dir + sizeof "tokenizer_config.json");
    if (cfg_path == NULL || n == 0)
        goto done;
    memcpy(cfg_path, path, dir);
    memcpy(cfg_path + dir, "tokenizer_config.json", sizeof "tokenizer_config.json");
    json_t *cfg = json_load_file(cfg_path, 0, NULL);
    if (cfg != NULL) {
        const char *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
        if (bos != NULL && culora_tokenizer_token_to_id(tok, bos) >= 0)
            tok->bos_id = culora_tokenizer_token_to_id(tok, bos);
        if (eos != NULL && culora_tokenizer_token_to_id(tok, eos) >= 0)
            tok->eos_id = culora_tokenizer_token_to_id(tok, eos);
        json_decref(cfg);
    }
done:
    free(cfg_path);
}

culora_status culora_tokenizer_load_hf(culora_context *ctx, const char *path, culora_tokenizer **out)
{
    if (path == NULL || out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_tokenizer_load_hf: NULL argument");
    *out = NULL;
    char *data;
    size_t n;
    CULORA_TRY(culora_read_whole_file(ctx, path, &data, &n));
    json_error_t err;
    json_t *root = json_loadb(data, n, 0, &err);
    free(data);
    if (root == NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", path, err.line, err.column, err.text);
    culora_tokenizer *tok = NULL;
    culora_status s = CULORA_OK;
    bool saw_byte_level = false;
    json_t *model = json_object_get(root, "model"), *pre = json_object_get(root, "pre_tokenizer");
    if (!json_is_object(root) || !json_is_object(model)) {
        s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: no \"model\" object: not a tokenizer.json", path);
        goto done;
    }
    int32_t vocab_size = 0;
    CULORA_TRY_GOTO(s, check_model(ctx, model, path), done);
    CULORA_TRY_GOTO(s, check_normalizer(ctx, json_object_get(root, "normalizer"), path), done);
    CULORA_TRY_GOTO(s, check_decoder(ctx, json_object_get(root, "decoder"), path), done);
    CULORA_TRY_GOTO(s, count_ids(ctx, root, path, &vocab_size), done);
    CULORA_TRY_GOTO(s, culora_tokenizer_new_bpe(ctx, vocab_size, &tok), done);
    tok->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    CULORA_TRY_GOTO(s, add_vocab(ctx, tok, json_object_get(model, "vocab"), path), done);
    CULORA_TRY_GOTO(s, add_merges(ctx, tok, json_object_get(model, "merges"), path), done);
    CULORA_TRY_GOTO(s, culora_bpe_finish(ctx, tok, path), done);
    CULORA_TRY_GOTO(s, add_added_tokens(ctx, tok, json_object_get(root, "added_tokens"), path), done);
    if (!is_null_or_absent(pre))
        CULORA_TRY_GOTO(s, add_pre_tokenizer(ctx, tok, pre, path, &saw_byte_level), done);
    if (!saw_byte_level) {
        s = culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: no ByteLevel pre_tokenizer: not a byte-level BPE tokenizer",
                        path);
        goto done;
    }
    CULORA_TRY_GOTO(s, add_post_processor(ctx, tok, json_object_get(root, "post_processor"), path), done);
    find_bos_eos(tok, path);
done:
    json_decref(root);
    if (s != CULORA_OK) {
        culora_tokenizer_destroy(tok);
        return s;
    }
    *out = tok;
    return CULORA_OK;
}
