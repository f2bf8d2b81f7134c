/*
 * safetensors_parse.c — validation of one safetensors file held in memory.
 *
 * Layout: u64 little-endian N, N bytes of UTF-8 JSON header, then the data region. The rules are
 * the reference reader's (safetensors tensor.rs read_metadata + Metadata::validate), plus what a
 * strict C loader adds (docs/formats.md): header starts with '{'; duplicate keys rejected by the
 * JSON parser itself; dims <= 2^48-1. Every defect is CULORA_ERR_FORMAT with a message naming the
 * file and, where there is one, the tensor. Nothing here reads outside buf[0..size).
 */
#include "io_internal.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

/* name is part of every message; the macro argument only documents that. */
#define ST_FAIL(ctx, name, ...) culora_fail((ctx), CULORA_ERR_FORMAT, __VA_ARGS__)

static uint64_t read_u64_le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Frees the parse results (tensors, metadata), not the bytes or the path. */
static void free_parsed(culora_st_file *f)
{
    for (size_t i = 0; i < f->n_tensors; i++) {
        free((char *)f->tensors[i].info.name);
        free((int64_t *)f->tensors[i].info.shape);
    }
    free(f->tensors);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    f->tensors = NULL;
    f->meta_keys = f->meta_values = NULL;
    f->n_tensors = f->n_meta = 0;
}

/* json integer >= 0 (not a real, not a bool). */
static bool json_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static culora_status parse_metadata(culora_context *ctx, const char *name, json_t *meta, culora_st_file *f)
{
    if (json_is_null(meta))
        return CULORA_OK;
    if (!json_is_object(meta))
        return ST_FAIL(ctx, name, "%s: __metadata__ is not a JSON object (must map strings to strings)", name);
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
    if (f->meta_keys == NULL || f->meta_values == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory for __metadata__", name);
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        if (!json_is_string(value))
            return ST_FAIL(ctx, name, "%s: __metadata__ entry '%s' is not a string (values must be strings)", name,
                           key);
        f->meta_keys[f->n_meta] = culora_strdup(key);
        f->meta_values[f->n_meta] = culora_strdup(json_string_value(value));
        f->n_meta++;
        if (f->meta_keys[f->n_meta - 1] == NULL || f->meta_values[f->n_meta - 1] == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory for __metadata__", name);
    }
    return CULORA_OK;
}

/* Parses one tensor entry into t (name already set). */
static culora_status parse_entry(culora_context *ctx, const char *name, const char *tname, json_t *entry,
                                 culora_st_tensor *t)
{
    if (!json_is_object(entry))
        return ST_FAIL(ctx, name, "%s: tensor '%s': entry is not a JSON object", name, tname);

    json_t *jd = json_object_get(entry, "dtype");
    json_t *js = json_object_get(entry, "shape");
    json_t *jo = json_object_get(entry, "data_offsets");
    if (jd == NULL || js == NULL || jo == NULL)
        return ST_FAIL(ctx, name, "%s: tensor '%s': missing \"%s\"", name, tname,
                       jd == NULL ? "dtype" : js == NULL ? "shape" : "data_offsets");
    if (!json_is_string(jd))
        return ST_FAIL(ctx, name, "%s: tensor '%s': dtype is not a string", name, tname);
    if (!culora_st_dtype_parse(json_string_value(jd), &t->info.dtype))
        return ST_FAIL(ctx, name, "%s: tensor '%s': unknown dtype '%s'", name, tname, json_string_value(jd));

    if (!json_is_array(js))
        return ST_FAIL(ctx, name, "%s: tensor '%s': shape is not an array", name, tname);
    size_t nd = json_array_size(js);
    if (nd > 64)
        return ST_FAIL(ctx, name, "%s: tensor '%s': shape has %zu dimensions (at most 64 accepted)", name, tname,
                       nd);
    int64_t *shape = malloc((nd ? nd : 1) * sizeof *shape);
    if (shape == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    t->info.shape = shape;
    t->info.n_dims = (int32_t)nd;
    uint64_t n_elems = 1;
    bool overflow = false;
    for (size_t d = 0; d < nd; d++) {
        uint64_t dim;
        if (!json_uint(json_array_get(js, d), &dim))
            return ST_FAIL(ctx, name, "%s: tensor '%s': shape[%zu] is not a non-negative integer", name, tname, d);
        if (dim > (uint64_t)CULORA_ST_MAX_DIM)
            return ST_FAIL(ctx, name, "%s: tensor '%s': shape[%zu] = %llu is larger than 2^48-1", name, tname, d,
                           (unsigned long long)dim);
        shape[d] = (int64_t)dim;
        if (__builtin_mul_overflow(n_elems, dim, &n_elems))
            overflow = true;
    }
    unsigned bits = culora_st_dtype_bits(t->info.dtype);
    uint64_t n_bits = 0;
    if (overflow || n_elems > (uint64_t)INT64_MAX || __builtin_mul_overflow(n_elems, (uint64_t)bits, &n_bits))
        return ST_FAIL(ctx, name, "%s: tensor '%s': element count of the shape overflows", name, tname);
    if (n_bits % 8 != 0)
        return ST_FAIL(ctx, name, "%s: tensor '%s': %llu elements of %s do not fill whole bytes", name, tname,
                       (unsigned long long)n_elems, culora_st_dtype_name(t->info.dtype));
    t->info.n_elems = (int64_t)n_elems;

    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_uint(json_array_get(jo, 0), &t->begin) ||
        !json_uint(json_array_get(jo, 1), &t->end))
        return ST_FAIL(ctx, name, "%s: tensor '%s': data_offsets is not [begin, end] with non-negative integers",
                       name, tname);
    if (t->end < t->begin)
        return ST_FAIL(ctx, name, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin", name, tname,
                       (unsigned long long)t->begin, (unsigned long long)t->end);
    t->info.n_bytes = t->end - t->begin;
    if (t->info.n_bytes != n_bits / 8)
        return ST_FAIL(ctx, name,
                       "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape and dtype %s need %llu",
                       name, tname, (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)t->info.n_bytes, culora_st_dtype_name(t->info.dtype),
                       (unsigned long long)(n_bits / 8));
    return CULORA_OK;
}

static int cmp_by_offsets(const void *a, const void *b)
{
    const culora_st_tensor *x = *(const culora_st_tensor *const *)a;
    const culora_st_tensor *y = *(const culora_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->info.name, y->info.name);
}

/* Offsets sorted: contiguous from 0, no overlap, covering the data region exactly. */
static culora_status check_layout(culora_context *ctx, const char *name, culora_st_file *f, uint64_t data_len)
{
    culora_st_tensor **order = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *order);
    if (order == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    for (size_t i = 0; i < f->n_tensors; i++)
        order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, cmp_by_offsets);

    culora_status s = CULORA_OK;
    uint64_t pos = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < f->n_tensors && s == CULORA_OK; i++) {
        const culora_st_tensor *t = order[i];
        if (t->begin < pos)
            s = ST_FAIL(ctx, name, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' (ends at %llu)",
                        name, t->info.name, (unsigned long long)t->begin, (unsigned long long)t->end, prev,
                        (unsigned long long)pos);
        else if (t->begin > pos && prev == NULL)
            s = ST_FAIL(ctx, name, "%s: tensor '%s': data_offsets [%llu, %llu] leave a gap: the first tensor must "
                        "start at 0", name, t->info.name, (unsigned long long)t->begin, (unsigned long long)t->end);
        else if (t->begin > pos)
            s = ST_FAIL(ctx, name, "%s: tensor '%s': data_offsets [%llu, %llu] leave a gap of %llu bytes after "
                        "tensor '%s'", name, t->info.name, (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)(t->begin - pos), prev);
        else if (t->end > data_len)
            s = ST_FAIL(ctx, name, "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the file (data "
                        "region is %llu bytes)", name, t->info.name, (unsigned long long)t->begin,
                        (unsigned long long)t->end, (unsigned long long)data_len);
        pos = t->end;
        prev = t->info.name;
    }
    if (s == CULORA_OK && pos != data_len)
        s = ST_FAIL(ctx, name, "%s: data region is %llu bytes but the tensors cover %llu (%s)", name,
                    (unsigned long long)data_len, (unsigned long long)pos,
                    prev ? "trailing bytes after the last tensor" : "no tensors, yet data follows the header");
    free(order);
    return s;
}

static culora_status parse_header(culora_context *ctx, const char *name, json_t *root, culora_st_file *f,
                                  const uint8_t *data, uint64_t data_len)
{
    if (!json_is_object(root))
        return ST_FAIL(ctx, name, "%s: header is not a JSON object", name);
    size_t n = json_object_size(root);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (f->tensors == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu tensors", name, n);

    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            CULORA_TRY(parse_metadata(ctx, name, value, f));
            continue;
        }
        culora_st_tensor *t = &f->tensors[f->n_tensors++];
        t->info.name = culora_strdup(key);
        t->info.file = f->path;
        if (t->info.name == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
        CULORA_TRY(parse_entry(ctx, name, key, value, t));
    }
    CULORA_TRY(check_layout(ctx, name, f, data_len));
    for (size_t i = 0; i < f->n_tensors; i++)
        f->tensors[i].info.data = data + f->tensors[i].begin;
    return CULORA_OK;
}

culora_status culora_st_parse(culora_context *ctx, const char *name, const uint8_t *buf, size_t size,
                              culora_st_file *out)
{
    /* out->path / mapping are set by the caller; everything else starts empty. */
    if (size < 8)
        return ST_FAIL(ctx, name, "%s: file is %zu bytes, shorter than the 8-byte header length", name, size);
    uint64_t n = read_u64_le(buf);
    if (n > CULORA_ST_MAX_HEADER_BYTES)
        return ST_FAIL(ctx, name, "%s: header length %llu is larger than the 100 MB limit", name,
                       (unsigned long long)n);
    if (n > (uint64_t)size - 8)
        return ST_FAIL(ctx, name, "%s: header length %llu runs past the end of the file (%zu bytes)", name,
                       (unsigned long long)n, size);
    if (n == 0 || buf[8] != '{')
        return ST_FAIL(ctx, name, "%s: header does not start with '{'", name);
    out->header_len = n;

    json_error_t err;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        return ST_FAIL(ctx, name, "%s: header is not valid JSON at byte %d: %s", name, err.position, err.text);
    culora_status s = parse_header(ctx, name, root, out, buf + 8 + n, (uint64_t)size - 8 - n);
    json_decref(root);
    if (s != CULORA_OK)
        free_parsed(out);
    return s;
}

void culora_st_file_release(culora_st_file *f)
{
    if (f == NULL)
        return;
    free_parsed(f);
    culora_st_unmap(f);
    free(f->path);
    memset(f, 0, sizeof *f);
}
