/*
 * safetensors_write.c — culora_safetensors_writer: collects tensors and __metadata__, then writes
 * the file as the reference writer lays it out (safetensors tensor.rs `prepare`):
 *   - tensors sorted by dtype, descending in the Dtype enum order, then by name;
 *   - data contiguous in that order; header = compact JSON with "__metadata__" first, then the
 *     tensors in data order, each {"dtype","shape","data_offsets"}; padded with spaces to a
 *     multiple of 8 bytes so every tensor starts 8-byte aligned in the file.
 * The file is written atomically (atomic_file.c).
 */
#include "io_internal.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

typedef struct writer_tensor {
    char *name;
    culora_st_dtype dtype;
    int32_t n_dims;
    int64_t *shape;
    const void *data;
    uint64_t n_bytes;
} writer_tensor;

struct culora_safetensors_writer {
    size_t n, cap;
    writer_tensor *tensors;
    size_t n_meta, cap_meta;
    char **meta_keys;
    char **meta_values;
};

culora_status culora_safetensors_writer_create(culora_context *ctx, culora_safetensors_writer **out)
{
    if (out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_writer_create: out is NULL");
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_safetensors_writer_create: out of memory");
    return CULORA_OK;
}

void culora_safetensors_writer_destroy(culora_safetensors_writer *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].shape);
    }
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->tensors);
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

culora_status culora_safetensors_writer_add(culora_context *ctx, culora_safetensors_writer *w, const char *name,
                                            culora_st_dtype dtype, int32_t n_dims, const int64_t *shape,
                                            const void *data, uint64_t n_bytes)
{
    if (w == NULL || name == NULL || (n_dims > 0 && shape == NULL) || (n_bytes > 0 && data == NULL))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_writer_add: NULL argument");
    if (strcmp(name, "__metadata__") == 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_writer_add: '__metadata__' is reserved");
    unsigned bits = culora_st_dtype_bits(dtype);
    if (bits == 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_writer_add: tensor '%s': bad dtype %d",
                           name, (int)dtype);
    if (n_dims < 0 || n_dims > 64)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_writer_add: tensor '%s': n_dims %d",
                           name, (int)n_dims);
    uint64_t n_elems = 1;
    bool overflow = false;
    for (int32_t d = 0; d < n_dims; d++) {
        if (shape[d] < 0 || shape[d] > CULORA_ST_MAX_DIM)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                               "culora_safetensors_writer_add: tensor '%s': shape[%d] = %lld out of range", name,
                               (int)d, (long long)shape[d]);
        overflow |= __builtin_mul_overflow(n_elems, (uint64_t)shape[d], &n_elems);
    }
    uint64_t n_bits = 0;
    overflow |= __builtin_mul_overflow(n_elems, (uint64_t)bits, &n_bits);
    if (overflow || n_bits % 8 != 0 || n_bits / 8 != n_bytes)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_safetensors_writer_add: tensor '%s': %llu bytes given, shape and dtype %s need %s",
                           name, (unsigned long long)n_bytes, culora_st_dtype_name(dtype),
                           overflow ? "more than 2^64 bits" : n_bits % 8 ? "a fraction of a byte" : "another size");
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_writer_add: tensor '%s' added twice",
                               name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        writer_tensor *t = realloc(w->tensors, cap * sizeof *t);
        if (t == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_safetensors_writer_add: out of memory");
        w->tensors = t;
        w->cap = cap;
    }
    writer_tensor *t = &w->tensors[w->n];
    t->name = culora_strdup(name);
    t->shape = malloc((n_dims ? (size_t)n_dims : 1) * sizeof *t->shape);
    if (t->name == NULL || t->shape == NULL) {
        free(t->name);
        free(t->shape);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_safetensors_writer_add: out of memory");
    }
    if (n_dims > 0)
        memcpy(t->shape, shape, (size_t)n_dims * sizeof *shape);
    t->dtype = dtype;
    t->n_dims = n_dims;
    t->data = data;
    t->n_bytes = n_bytes;
    w->n++;
    return CULORA_OK;
}

culora_status culora_safetensors_writer_set_metadata(culora_context *ctx, culora_safetensors_writer *w,
                                                     const char *key, const char *value)
{
    if (w == NULL || key == NULL || value == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_writer_set_metadata: NULL argument");
    char *v = culora_strdup(value);
    if (v == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_safetensors_writer_set_metadata: out of memory");
    for (size_t i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return CULORA_OK;
        }
    }
    if (w->n_meta == w->cap_meta) {
        size_t cap = w->cap_meta ? 2 * w->cap_meta : 4;
        char **k = realloc(w->meta_keys, cap * sizeof *k);
        if (k != NULL)
            w->meta_keys = k;
        char **vv = k ? realloc(w->meta_values, cap * sizeof *vv) : NULL;
        if (vv != NULL)
            w->meta_values = vv;
        if (k == NULL || vv == NULL) {
            free(v);
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_safetensors_writer_set_metadata: out of memory");
        }
        w->cap_meta = cap;
    }
    w->meta_keys[w->n_meta] = culora_strdup(key);
    if (w->meta_keys[w->n_meta] == NULL) {
        free(v);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_safetensors_writer_set_metadata: out of memory");
    }
    w->meta_values[w->n_meta++] = v;
    return CULORA_OK;
}

static int cmp_write_order(const void *a, const void *b)
{
    const writer_tensor *x = *(const writer_tensor *const *)a;
    const writer_tensor *y = *(const writer_tensor *const *)b;
    if (x->dtype != y->dtype)
        return x->dtype > y->dtype ? -1 : 1; /* descending dtype */
    return strcmp(x->name, y->name);
}

/* Builds the padded header text in the reference layout. *out is malloc'd. */
static culora_status build_header(culora_context *ctx, const char *path, const writer_tensor *const *order,
                                  const culora_safetensors_writer *w, char **out, size_t *out_len)
{
    json_t *root = json_object();
    bool ok = root != NULL;
    if (ok && w->n_meta > 0) {
        json_t *meta = json_object();
        ok = meta != NULL && json_object_set_new(root, "__metadata__", meta) == 0;
        for (size_t i = 0; ok && i < w->n_meta; i++)
            ok = json_object_set_new(meta, w->meta_keys[i], json_string(w->meta_values[i])) == 0;
    }
    uint64_t offset = 0;
    for (size_t i = 0; ok && i < w->n; i++) {
        const writer_tensor *t = order[i];
        json_t *shape = json_array();
        ok = shape != NULL;
        for (int32_t d = 0; ok && d < t->n_dims; d++)
            ok = json_array_append_new(shape, json_integer((json_int_t)t->shape[d])) == 0;
        json_t *offs = json_pack("[II]", (json_int_t)offset, (json_int_t)(offset + t->n_bytes));
        json_t *entry = json_object();
        ok = ok && offs != NULL && entry != NULL &&
             json_object_set_new(entry, "dtype", json_string(culora_st_dtype_name(t->dtype))) == 0 &&
             json_object_set(entry, "shape", shape) == 0 && json_object_set(entry, "data_offsets", offs) == 0 &&
             json_object_set(root, t->name, entry) == 0;
        json_decref(shape);
        json_decref(offs);
        json_decref(entry);
        offset += t->n_bytes;
    }
    char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: cannot build the header (out of memory or a name "
                           "that is not valid UTF-8)", path);
    size_t n = strlen(text);
    size_t padded = (n + 7) / 8 * 8;
    if (padded > CULORA_ST_MAX_HEADER_BYTES) {
        free(text);
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: header would be %zu bytes (limit 100 MB)", path, padded);
    }
    char *buf = malloc(padded + 1);
    if (buf == NULL) {
        free(text);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    memcpy(buf, text, n);
    memset(buf + n, ' ', padded - n);
    buf[padded] = '\0';
    free(text);
    *out = buf;
    *out_len = padded;
    return CULORA_OK;
}

culora_status culora_safetensors_writer_save(culora_context *ctx, const culora_safetensors_writer *w,
                                             const char *path)
{
    if (w == NULL || path == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_writer_save: NULL argument");
    const writer_tensor **order = malloc((w->n ? w->n : 1) * sizeof *order);
    if (order == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    for (size_t i = 0; i < w->n; i++)
        order[i] = &w->tensors[i];
    qsort(order, w->n, sizeof *order, cmp_write_order);

    char *header = NULL;
    size_t header_len = 0;
    culora_atomic_file af = {-1, NULL, NULL};
    culora_status s = build_header(ctx, path, order, w, &header, &header_len);
    if (s != CULORA_OK)
        goto done;
    uint8_t len_le[8];
    for (int i = 0; i < 8; i++)
        len_le[i] = (uint8_t)((uint64_t)header_len >> (8 * i));

    CULORA_TRY_GOTO(s, culora_atomic_open(ctx, path, &af), done);
    CULORA_TRY_GOTO(s, culora_atomic_write(ctx, &af, len_le, sizeof len_le), fail);
    CULORA_TRY_GOTO(s, culora_atomic_write(ctx, &af, header, header_len), fail);
    for (size_t i = 0; i < w->n; i++)
        CULORA_TRY_GOTO(s, culora_atomic_write(ctx, &af, order[i]->data, (size_t)order[i]->n_bytes), fail);
    s = culora_atomic_commit(ctx, &af);
    goto done;
fail:
    culora_atomic_abort(&af);
done:
    free(header);
    free(order);
    return s;
}
