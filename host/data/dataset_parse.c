/*
 * dataset_parse.c — documents of a data file: a text file is one document; a JSONL file holds
 * one JSON object per line, {"text": ...} or {"prompt": ..., "completion": ...} (other keys are
 * ignored, blank lines skipped). Every error names the file and the line.
 */
#include "data/dataset.h"

#include <jansson.h>
#include <string.h>

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v')
            return false;
    return true;
}

static culora_status parse_line(culora_doc_builder *b, const char *name, size_t line_no, const char *line, size_t len)
{
    culora_context *ctx = b->ctx;
    json_error_t err;
    json_t *obj = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    if (obj == NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s:%zu: invalid JSON at column %d: %s", name, line_no, err.column,
                           err.text);
    culora_status s = CULORA_OK;
    json_t *text = json_object_get(obj, "text"), *prompt = json_object_get(obj, "prompt");
    json_t *completion = json_object_get(obj, "completion");
    if (!json_is_object(obj)) {
        s = culora_fail(ctx, CULORA_ERR_FORMAT,
                        "%s:%zu: not a JSON object (JSONL needs one {\"text\": ...} or {\"prompt\": ..., "
                        "\"completion\": ...} object per line)",
                        name, line_no);
    } else if (text != NULL) {
        if (prompt != NULL || completion != NULL)
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s:%zu: has both \"text\" and \"prompt\"/\"completion\"", name,
                            line_no);
        else if (!json_is_string(text))
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s:%zu: \"text\" is not a string", name, line_no);
        else
            s = culora_dataset_add_document(b, NULL, 0, json_string_value(text), json_string_length(text), name,
                                            line_no);
    } else if (prompt != NULL || completion != NULL) {
        if (prompt == NULL || completion == NULL)
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s:%zu: \"%s\" without \"%s\"", name, line_no,
                            prompt ? "prompt" : "completion", prompt ? "completion" : "prompt");
        else if (!json_is_string(prompt) || !json_is_string(completion))
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s:%zu: \"%s\" is not a string", name, line_no,
                            json_is_string(prompt) ? "completion" : "prompt");
        else if (json_string_length(completion) == 0)
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s:%zu: empty \"completion\" (nothing to learn)", name, line_no);
        else
            s = culora_dataset_add_document(b, json_string_value(prompt), json_string_length(prompt),
                                            json_string_value(completion), json_string_length(completion), name,
                                            line_no);
    } else {
        s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s:%zu: no \"text\" or \"prompt\"/\"completion\" field", name,
                        line_no);
    }
    json_decref(obj);
    return s;
}

static culora_status parse_jsonl(culora_doc_builder *b, const char *name, const char *data, size_t n)
{
    size_t line_no = 0;
    for (size_t pos = 0; pos < n;) {
        const char *nl = memchr(data + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - data) : n;
        const char *line = data + pos;
        size_t len = end - pos;
        line_no++;
        pos = end + 1;
        if (line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
            line += 3, len -= 3;
        if (blank(line, len))
            continue;
        CULORA_TRY(parse_line(b, name, line_no, line, len));
    }
    return CULORA_OK;
}

culora_status culora_dataset_parse(culora_doc_builder *b, const char *name, const char *data, size_t n,
                                   culora_data_format format)
{
    if (n == 0)
        return culora_fail(b->ctx, CULORA_ERR_FORMAT, "%s: empty file", name);
    int64_t docs_before = b->ds->n_docs;
    if (format == CULORA_DATA_FORMAT_JSONL)
        CULORA_TRY(parse_jsonl(b, name, data, n));
    else
        CULORA_TRY(culora_dataset_add_document(b, NULL, 0, data, n, name, 0));
    if (b->ds->n_docs == docs_before)
        return culora_fail(b->ctx, CULORA_ERR_FORMAT, "%s: no documents (only blank lines or empty texts)", name);
    return CULORA_OK;
}
