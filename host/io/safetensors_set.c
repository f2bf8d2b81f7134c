/*
 * safetensors_set.c — culora_safetensors: one file or a sharded set behind one name index.
 *
 * A sharded set is described by model.safetensors.index.json:
 *   {"metadata": {...}, "weight_map": {"tensor name": "shard file name", ...}}
 * Shards are plain file names in the index's directory. The index and the shards must agree
 * exactly: every listed tensor is in its shard, every tensor of a shard is listed for that shard.
 */
#include "io_internal.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

#define INDEX_MAX_BYTES ((size_t)64 << 20)

struct culora_safetensors {
    size_t n_files;
    culora_st_file *files;
    size_t n_tensors;
    const culora_tensor_info **sorted; /* by name */
    size_t n_meta;
    const char **meta_keys; /* point into files */
    const char **meta_values;
};

void culora_safetensors_close(culora_safetensors *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n_files; i++)
        culora_st_file_release(&st->files[i]);
    free(st->files);
    free(st->sorted);
    free(st->meta_keys);
    free(st->meta_values);
    free(st);
}

static int cmp_info_name(const void *a, const void *b)
{
    const culora_tensor_info *x = *(const culora_tensor_info *const *)a;
    const culora_tensor_info *y = *(const culora_tensor_info *const *)b;
    return strcmp(x->name, y->name);
}

/* Builds the sorted name index and the merged metadata once all files are parsed. */
static culora_status build_index(culora_context *ctx, culora_safetensors *st)
{
    size_t n = 0, nm = 0;
    for (size_t f = 0; f < st->n_files; f++) {
        n += st->files[f].n_tensors;
        nm += st->files[f].n_meta;
    }
    st->sorted = malloc((n ? n : 1) * sizeof *st->sorted);
    st->meta_keys = malloc((nm ? nm : 1) * sizeof *st->meta_keys);
    st->meta_values = malloc((nm ? nm : 1) * sizeof *st->meta_values);
    if (st->sorted == NULL || st->meta_keys == NULL || st->meta_values == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "safetensors: out of memory for the tensor index");
    for (size_t f = 0; f < st->n_files; f++) {
        for (size_t i = 0; i < st->files[f].n_tensors; i++)
            st->sorted[st->n_tensors++] = &st->files[f].tensors[i].info;
        for (size_t i = 0; i < st->files[f].n_meta; i++) {
            if (culora_safetensors_metadata_get(st, st->files[f].meta_keys[i]) != NULL)
                continue; /* first shard wins */
            st->meta_keys[st->n_meta] = st->files[f].meta_keys[i];
            st->meta_values[st->n_meta] = st->files[f].meta_values[i];
            st->n_meta++;
        }
    }
    qsort(st->sorted, st->n_tensors, sizeof *st->sorted, cmp_info_name);
    for (size_t i = 1; i < st->n_tensors; i++) {
        if (strcmp(st->sorted[i - 1]->name, st->sorted[i]->name) == 0)
            return culora_fail(ctx, CULORA_ERR_FORMAT, "tensor '%s' is in two shards: %s and %s",
                               st->sorted[i]->name, st->sorted[i - 1]->file, st->sorted[i]->file);
    }
    return CULORA_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The shard names the index refers to: checked, sorted, distinct. */
static culora_status index_shards(culora_context *ctx, const char *index_path, json_t *weight_map,
                                  const char ***out, size_t *n_out)
{
    size_t n = json_object_size(weight_map);
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (names == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
    size_t k = 0;
    const char *key;
    json_t *value;
    json_object_foreach(weight_map, key, value) {
        const char *shard = json_string_value(value);
        if (shard == NULL) {
            free(names);
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: weight_map entry for tensor '%s' is not a string",
                               index_path, key);
        }
        if (shard[0] == '\0' || strchr(shard, '/') != NULL || strcmp(shard, ".") == 0 ||
            strcmp(shard, "..") == 0) {
            free(names);
            return culora_fail(ctx, CULORA_ERR_FORMAT,
                               "%s: tensor '%s': shard name '%s' is not a plain file name in the index's directory",
                               index_path, key, shard);
        }
        names[k++] = shard;
    }
    qsort(names, k, sizeof *names, cmp_str);
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        if (m == 0 || strcmp(names[m - 1], names[i]) != 0)
            names[m++] = names[i];
    *out = names;
    *n_out = m;
    return CULORA_OK;
}

static culora_status open_index(culora_context *ctx, const char *index_path, culora_safetensors *st)
{
    char *text = NULL;
    size_t len = 0;
    CULORA_TRY(culora_read_text_file(ctx, index_path, INDEX_MAX_BYTES, &text, &len));
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (root == NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: not valid JSON at line %d column %d: %s", index_path,
                           err.line, err.column, err.text);

    culora_status s = CULORA_OK;
    const char **shards = NULL;
    size_t n_shards = 0;
    char *dir = NULL;
    json_t *weight_map = json_object_get(root, "weight_map");
    json_t *meta = json_object_get(root, "metadata");
    if (!json_is_object(root) || !json_is_object(weight_map)) {
        s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
        goto done;
    }
    if (meta != NULL && !json_is_object(meta) && !json_is_null(meta)) {
        s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: \"metadata\" is not an object", index_path);
        goto done;
    }
    CULORA_TRY_GOTO(s, index_shards(ctx, index_path, weight_map, &shards, &n_shards), done);
    dir = culora_path_dirname(index_path);
    st->files = calloc(n_shards ? n_shards : 1, sizeof *st->files);
    if (dir == NULL || st->files == NULL) {
        s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
        goto done;
    }
    for (size_t i = 0; i < n_shards; i++) {
        char *path = culora_path_join(dir, shards[i]);
        if (path == NULL) {
            s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
        s = culora_st_file_open(ctx, path, &st->files[i]);
        free(path);
        if (s != CULORA_OK) {
            culora_msg_prefix(ctx, index_path);
            goto done;
        }
        st->n_files++;
        /* every tensor of the shard must be listed for this shard */
        for (size_t t = 0; t < st->files[i].n_tensors; t++) {
            const char *tname = st->files[i].tensors[t].info.name;
            const char *listed = json_string_value(json_object_get(weight_map, tname));
            if (listed == NULL || strcmp(listed, shards[i]) != 0) {
                s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' is in shard %s but the index %s%s",
                                index_path, tname, shards[i], listed ? "maps it to " : "does not list it",
                                listed ? listed : "");
                goto done;
            }
        }
    }
    /* every listed tensor must be in its shard */
    CULORA_TRY_GOTO(s, build_index(ctx, st), done);
    const char *key;
    json_t *value;
    json_object_foreach(weight_map, key, value) {
        const culora_tensor_info *t = culora_safetensors_find(st, key);
        if (t == NULL) {
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' is listed in shard %s but is not in it",
                            index_path, key, json_string_value(value));
            goto done;
        }
    }
done:
    free(shards);
    free(dir);
    json_decref(root);
    return s;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

culora_status culora_safetensors_open(culora_context *ctx, const char *path, culora_safetensors **out)
{
    if (out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_open: out is NULL");
    *out = NULL;
    if (path == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_safetensors_open: path is NULL");

    culora_safetensors *st = calloc(1, sizeof *st);
    if (st == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    culora_status s = CULORA_OK;
    char *single = NULL, *index = NULL;
    if (culora_is_dir(path)) {
        single = culora_path_join(path, "model.safetensors");
        index = culora_path_join(path, "model.safetensors.index.json");
        if (single == NULL || index == NULL) {
            s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            goto done;
        }
        if (!culora_is_file(single)) {
            free(single);
            single = NULL;
            if (!culora_is_file(index)) {
                s = culora_fail(ctx, CULORA_ERR_IO,
                                "%s: directory has neither model.safetensors nor model.safetensors.index.json", path);
                goto done;
            }
        }
    } else if (ends_with(path, ".json")) {
        index = culora_strdup(path);
    } else {
        single = culora_strdup(path);
    }
    if (single == NULL && index == NULL) {
        s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto done;
    }

    if (single != NULL) {
        st->files = calloc(1, sizeof *st->files);
        if (st->files == NULL) {
            s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            goto done;
        }
        CULORA_TRY_GOTO(s, culora_st_file_open(ctx, single, &st->files[0]), done);
        st->n_files = 1;
        CULORA_TRY_GOTO(s, build_index(ctx, st), done);
    } else {
        CULORA_TRY_GOTO(s, open_index(ctx, index, st), done);
    }
done:
    free(single);
    free(index);
    if (s != CULORA_OK) {
        culora_safetensors_close(st);
        return s;
    }
    *out = st;
    return CULORA_OK;
}

size_t culora_safetensors_count(const culora_safetensors *st)
{
    return st ? st->n_tensors : 0;
}

const culora_tensor_info *culora_safetensors_at(const culora_safetensors *st, size_t i)
{
    return st && i < st->n_tensors ? st->sorted[i] : NULL;
}

const culora_tensor_info *culora_safetensors_find(const culora_safetensors *st, const char *name)
{
    if (st == NULL || name == NULL)
        return NULL;
    size_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->sorted[mid]->name, name);
        if (c == 0)
            return st->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t culora_safetensors_n_files(const culora_safetensors *st)
{
    return st ? st->n_files : 0;
}

const char *culora_safetensors_file(const culora_safetensors *st, size_t i)
{
    return st && i < st->n_files ? st->files[i].path : NULL;
}

size_t culora_safetensors_metadata_count(const culora_safetensors *st)
{
    return st ? st->n_meta : 0;
}

void culora_safetensors_metadata_at(const culora_safetensors *st, size_t i, const char **key, const char **value)
{
    bool ok = st != NULL && i < st->n_meta;
    if (key != NULL)
        *key = ok ? st->meta_keys[i] : NULL;
    if (value != NULL)
        *value = ok ? st->meta_values[i] : NULL;
}

const char *culora_safetensors_metadata_get(const culora_safetensors *st, const char *key)
{
    if (st == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0)
            return st->meta_values[i];
    return NULL;
}
