/*
 * dataset.c — culora_dataset: files → documents (dataset_parse.c) → one token stream with loss
 * flags → rows of seq_len + 1 tokens (PACK or PAD layout; see dataset.h). Everything is
 * tokenized once, at creation; a row is then a copy out of the stream.
 */
#include "data/dataset.h"
#include "data/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- documents -------------------------------------------------------------------------- */

static culora_status push_token(culora_doc_builder *b, int32_t id, uint8_t loss)
{
    CULORA_TRY(culora_ivec_push(b->ctx, &b->ds->tokens, id));
    return culora_bvec_append(b->ctx, &b->ds->loss, &loss, 1);
}

static culora_status push_row(culora_doc_builder *b, int64_t start, int64_t len)
{
    culora_dataset *ds = b->ds;
    if (ds->n_rows == ds->rows_cap) {
        int64_t cap = ds->rows_cap ? ds->rows_cap * 2 : 1024;
        int64_t *st = realloc(ds->row_start, (size_t)cap * sizeof *st);
        if (st != NULL)
            ds->row_start = st;
        int32_t *ln = realloc(ds->row_len, (size_t)cap * sizeof *ln);
        if (ln != NULL)
            ds->row_len = ln;
        if (st == NULL || ln == NULL)
            return culora_fail(b->ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory growing the row table");
        ds->rows_cap = cap;
    }
    ds->row_start[ds->n_rows] = start;
    ds->row_len[ds->n_rows] = (int32_t)len;
    ds->n_rows++;
    return CULORA_OK;
}

static culora_status encode_part(culora_doc_builder *b, const char *s, size_t n, uint8_t loss, const char *file,
                                 size_t line)
{
    b->scratch.n = 0;
    culora_status st = culora_tokenizer_encode_append(b->ctx, b->tok, s, n, b->encode_flags, &b->scratch);
    if (st != CULORA_OK) {
        char where[512];
        if (line > 0)
            snprintf(where, sizeof where, "%s:%zu", file, line);
        else
            snprintf(where, sizeof where, "%s", file);
        culora_msg_prefix(b->ctx, where);
        return st;
    }
    for (size_t i = 0; i < b->scratch.n; i++)
        CULORA_TRY(push_token(b, b->scratch.v[i], loss));
    return CULORA_OK;
}

culora_status culora_dataset_add_document(culora_doc_builder *b, const char *prompt, size_t prompt_n,
                                          const char *text, size_t text_n, const char *file, size_t line)
{
    culora_dataset *ds = b->ds;
    if (prompt == NULL && text_n == 0)
        return CULORA_OK; /* an empty text teaches nothing: skipped */
    int64_t start = (int64_t)ds->tokens.n;
    if (b->bos_id >= 0)
        CULORA_TRY(push_token(b, b->bos_id, 0));
    if (prompt != NULL)
        CULORA_TRY(encode_part(b, prompt, prompt_n, 0, file, line));
    CULORA_TRY(encode_part(b, text, text_n, 1, file, line));
    if (b->eos_id >= 0)
        CULORA_TRY(push_token(b, b->eos_id, 1));
    ds->n_docs++;
    if (ds->layout != CULORA_DATA_PAD)
        return CULORA_OK;
    int64_t len = (int64_t)ds->tokens.n - start;
    if (len > (int64_t)ds->seq_len + 1) {
        if (!b->truncate) {
            char where[512];
            if (line > 0)
                snprintf(where, sizeof where, "%s:%zu", file, line);
            else
                snprintf(where, sizeof where, "%s", file);
            return culora_fail(b->ctx, CULORA_ERR_FORMAT,
                               "%s: document of %lld tokens is longer than seq_len + 1 = %d tokens "
                               "(use the PACK layout, a longer seq_len, or truncate)",
                               where, (long long)len, (int)ds->seq_len + 1);
        }
        len = (int64_t)ds->seq_len + 1;
    }
    if (len < 2)
        return CULORA_OK; /* a one-token document has nothing to predict */
    return push_row(b, start, len);
}

/* ---- rows ------------------------------------------------------------------------------- */

static void row_span(const culora_dataset *ds, int64_t row, int64_t *start, int64_t *len)
{
    if (ds->layout == CULORA_DATA_PAD) {
        *start = ds->row_start[row];
        *len = ds->row_len[row];
        return;
    }
    int64_t n = (int64_t)ds->tokens.n;
    *start = row * ds->seq_len;
    *len = n - *start < (int64_t)ds->seq_len + 1 ? n - *start : (int64_t)ds->seq_len + 1;
}

static void fill_row(const culora_dataset *ds, int64_t row, int32_t *input_ids, int32_t *target_ids,
                     uint8_t *loss_mask, int64_t *n_loss)
{
    int64_t start, len;
    row_span(ds, row, &start, &len);
    int64_t count = 0;
    for (int64_t t = 0; t < ds->seq_len; t++) {
        if (t + 1 < len) {
            uint8_t l = ds->loss.v[start + t + 1];
            input_ids[t] = ds->tokens.v[start + t];
            target_ids[t] = l ? ds->tokens.v[start + t + 1] : CULORA_IGNORE_INDEX;
            if (loss_mask != NULL)
                loss_mask[t] = l;
            count += l;
        } else {
            input_ids[t] = ds->pad_id;
            target_ids[t] = CULORA_IGNORE_INDEX;
            if (loss_mask != NULL)
                loss_mask[t] = 0;
        }
    }
    if (n_loss != NULL)
        *n_loss = count;
}

void culora_dataset_fill_row(const culora_dataset *ds, int64_t row, int32_t *input_ids, int32_t *target_ids,
                             uint8_t *loss_mask, int64_t *n_loss)
{
    fill_row(ds, row, input_ids, target_ids, loss_mask, n_loss);
}

static void finish(culora_dataset *ds)
{
    int64_t n = (int64_t)ds->tokens.n;
    if (ds->layout == CULORA_DATA_PACK)
        ds->n_rows = n >= 2 ? (n - 1 + ds->seq_len - 1) / ds->seq_len : 0;
    ds->n_loss_tokens = 0;
    for (int64_t r = 0; r < ds->n_rows; r++) {
        int64_t start, len;
        row_span(ds, r, &start, &len);
        for (int64_t t = 1; t < len; t++)
            ds->n_loss_tokens += ds->loss.v[start + t];
    }
    int32_t head[3] = {ds->layout, ds->seq_len, ds->pad_id};
    uint64_t h = culora_fnv1a(CULORA_FNV_OFFSET, head, sizeof head);
    h = culora_fnv1a(h, &ds->n_rows, sizeof ds->n_rows);
    h = culora_fnv1a(h, ds->tokens.v, ds->tokens.n * sizeof *ds->tokens.v);
    h = culora_fnv1a(h, ds->loss.v, ds->loss.n);
    if (ds->layout == CULORA_DATA_PAD) {
        h = culora_fnv1a(h, ds->row_start, (size_t)ds->n_rows * sizeof *ds->row_start);
        h = culora_fnv1a(h, ds->row_len, (size_t)ds->n_rows * sizeof *ds->row_len);
    }
    ds->fingerprint = h;
}

/* ---- create / destroy ------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static culora_data_format format_of(const char *name, int32_t format)
{
    if (format != CULORA_DATA_FORMAT_AUTO)
        return (culora_data_format)format;
    return ends_with(name, ".jsonl") || ends_with(name, ".json") ? CULORA_DATA_FORMAT_JSONL : CULORA_DATA_FORMAT_TEXT;
}

static culora_status check_id(culora_context *ctx, const culora_tokenizer *tok, const char *what, int32_t id)
{
    if (culora_tokenizer_id_bytes(tok, id, NULL) == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_params: %s %d is not in the vocabulary (size %d)",
                           what, (int)id, (int)culora_tokenizer_vocab_size(tok));
    return CULORA_OK;
}

/* Checks params and resolves the special ids into b. */
static culora_status begin(culora_context *ctx, const culora_tokenizer *tok, const culora_dataset_params *p,
                           culora_doc_builder *b)
{
    if (tok == NULL || p == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_create: NULL tokenizer or params");
    if (p->struct_size != sizeof(culora_dataset_params) || p->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_dataset_create: params not initialised with CULORA_DATASET_PARAMS_INIT "
                           "(struct_size %u, api_version %u; expected %zu, %u)",
                           p->struct_size, p->api_version, sizeof(culora_dataset_params), CULORA_API_VERSION);
    if (p->seq_len < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_params: seq_len = %d, must be >= 1",
                           (int)p->seq_len);
    if (p->layout != CULORA_DATA_PACK && p->layout != CULORA_DATA_PAD)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_params: unknown layout %d", (int)p->layout);
    if (p->format < CULORA_DATA_FORMAT_AUTO || p->format > CULORA_DATA_FORMAT_JSONL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_params: unknown format %d", (int)p->format);
    memset(b, 0, sizeof *b);
    b->ctx = ctx;
    b->tok = tok;
    b->truncate = p->truncate;
    b->encode_flags = p->parse_special ? CULORA_ENCODE_SPECIAL : 0;
    /* BOS AUTO: the one the tokenizer's own template adds (LLaMA-3), none otherwise (GPT-2). */
    int32_t tmpl_bos = tok->n_tmpl_pre == 1 ? tok->tmpl_pre[0] : -1;
    b->bos_id = p->bos_id == CULORA_TOKEN_AUTO ? tmpl_bos : p->bos_id == CULORA_TOKEN_NONE ? -1 : p->bos_id;
    b->eos_id = p->eos_id == CULORA_TOKEN_AUTO ? tok->eos_id : p->eos_id == CULORA_TOKEN_NONE ? -1 : p->eos_id;
    int32_t pad = p->pad_id == CULORA_TOKEN_AUTO || p->pad_id == CULORA_TOKEN_NONE ? (b->eos_id >= 0 ? b->eos_id : 0)
                                                                                   : p->pad_id;
    if (b->bos_id >= 0 || p->bos_id < CULORA_TOKEN_NONE)
        CULORA_TRY(check_id(ctx, tok, "bos_id", b->bos_id));
    if (b->eos_id >= 0 || p->eos_id < CULORA_TOKEN_NONE)
        CULORA_TRY(check_id(ctx, tok, "eos_id", b->eos_id));
    CULORA_TRY(check_id(ctx, tok, "pad_id", pad));
    b->ds = calloc(1, sizeof *b->ds);
    if (b->ds == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory allocating a dataset");
    b->ds->layout = p->layout;
    b->ds->seq_len = p->seq_len;
    b->ds->pad_id = pad;
    return CULORA_OK;
}

static culora_status end(culora_doc_builder *b, const char *what, culora_status s, culora_dataset **out)
{
    culora_ivec_free(&b->scratch);
    if (s == CULORA_OK) {
        finish(b->ds);
        if (b->ds->n_rows == 0)
            s = culora_fail(b->ctx, CULORA_ERR_FORMAT,
                            "%s: no rows: the data holds %zu token(s), a row needs at least 2", what, b->ds->tokens.n);
    }
    if (s != CULORA_OK) {
        culora_dataset_destroy(b->ds);
        return s;
    }
    *out = b->ds;
    return CULORA_OK;
}

culora_status culora_dataset_create(culora_context *ctx, const culora_tokenizer *tok, const char *const *paths,
                                    int n_paths, const culora_dataset_params *params, culora_dataset **out)
{
    if (out == NULL || paths == NULL || n_paths < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_create: no paths or out is NULL");
    *out = NULL;
    for (int i = 0; i < n_paths; i++)
        if (paths[i] == NULL)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_create: paths[%d] is NULL", i);
    culora_doc_builder b;
    CULORA_TRY(begin(ctx, tok, params, &b));
    culora_status s = CULORA_OK;
    for (int i = 0; i < n_paths && s == CULORA_OK; i++) {
        char *data;
        size_t n;
        s = culora_read_whole_file(ctx, paths[i], &data, &n);
        if (s == CULORA_OK) {
            s = culora_dataset_parse(&b, paths[i], data, n, format_of(paths[i], params->format));
            free(data);
        }
    }
    return end(&b, n_paths == 1 ? paths[0] : "dataset", s, out);
}

culora_status culora_dataset_create_from_memory(culora_context *ctx, const culora_tokenizer *tok, const char *name,
                                                const char *data, size_t bytes, const culora_dataset_params *params,
                                                culora_dataset **out)
{
    if (out == NULL || (data == NULL && bytes > 0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_create_from_memory: NULL argument");
    *out = NULL;
    if (name == NULL)
        name = "<memory>";
    culora_doc_builder b;
    CULORA_TRY(begin(ctx, tok, params, &b));
    culora_status s = culora_dataset_parse(&b, name, data, bytes, format_of(name, params->format));
    return end(&b, name, s, out);
}

void culora_dataset_destroy(culora_dataset *ds)
{
    if (ds == NULL)
        return;
    culora_ivec_free(&ds->tokens);
    culora_bvec_free(&ds->loss);
    free(ds->row_start);
    free(ds->row_len);
    free(ds);
}

/* ---- queries ---------------------------------------------------------------------------- */

int64_t culora_dataset_num_rows(const culora_dataset *ds) { return ds->n_rows; }
int64_t culora_dataset_num_documents(const culora_dataset *ds) { return ds->n_docs; }
int64_t culora_dataset_num_tokens(const culora_dataset *ds) { return (int64_t)ds->tokens.n; }
int64_t culora_dataset_num_loss_tokens(const culora_dataset *ds) { return ds->n_loss_tokens; }
int32_t culora_dataset_seq_len(const culora_dataset *ds) { return ds->seq_len; }
uint64_t culora_dataset_fingerprint(const culora_dataset *ds) { return ds->fingerprint; }

culora_status culora_dataset_get_row(culora_context *ctx, const culora_dataset *ds, int64_t row, int32_t *input_ids,
                                     int32_t *target_ids, uint8_t *loss_mask, int64_t *n_loss_tokens)
{
    if (ds == NULL || input_ids == NULL || target_ids == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_get_row: NULL argument");
    if (row < 0 || row >= ds->n_rows)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dataset_get_row: row %lld outside 0..%lld",
                           (long long)row, (long long)ds->n_rows - 1);
    fill_row(ds, row, input_ids, target_ids, loss_mask, n_loss_tokens);
    return CULORA_OK;
}
