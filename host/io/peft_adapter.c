/*
 * peft_adapter.c — culora_adapter: a LoRA config plus a list of (module, r, alpha, A, B) and the
 * full tensors PEFT stores beside them; load and save in PEFT's on-disk format
 * (peft utils/save_and_load.py, mission_anchors §2.4):
 *   adapter_config.json        LoraConfig.to_dict()
 *   adapter_model.safetensors  metadata {"format": "pt"}; keys
 *     base_model.model.<module>.lora_A.weight [r, in]   base_model.model.<module>.lora_B.weight [out, r]
 *     base_model.model.<module>.lora_embedding_A [r, num_embeddings]   ...lora_embedding_B [dim, r]
 *     base_model.model.<other>  full tensors (modules_to_save copies, embedding base layers)
 */
#define _POSIX_C_SOURCE 200809L
#include "lora_config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PREFIX "base_model.model."
#define PREFIX_LEN (sizeof PREFIX - 1)
#define CONFIG_NAME "adapter_config.json"
#define WEIGHTS_NAME "adapter_model.safetensors"

typedef struct adapter_tensor_store {
    culora_adapter_tensor view;
    int64_t shape[8];
} adapter_tensor_store;

struct culora_adapter {
    lora_config_store *cfg;
    size_t n_modules, cap_modules;
    culora_lora_module **modules; /* sorted by name */
    size_t n_tensors, cap_tensors;
    adapter_tensor_store **tensors; /* in insertion order */
};

/* ---- create / destroy / accessors ---------------------------------------------------------- */

static void module_free(culora_lora_module *m)
{
    if (m == NULL)
        return;
    free((char *)m->name);
    free(m->A);
    free(m->B);
    free(m);
}

void culora_adapter_destroy(culora_adapter *ad)
{
    if (ad == NULL)
        return;
    for (size_t i = 0; i < ad->n_modules; i++)
        module_free(ad->modules[i]);
    free(ad->modules);
    for (size_t i = 0; i < ad->n_tensors; i++) {
        free((char *)ad->tensors[i]->view.name);
        free(ad->tensors[i]->view.data);
        free(ad->tensors[i]);
    }
    free(ad->tensors);
    lora_config_store_destroy(ad->cfg);
    free(ad);
}

static culora_status adapter_new(culora_context *ctx, lora_config_store *cfg, culora_adapter **out)
{
    *out = calloc(1, sizeof **out);
    if (*out == NULL) {
        lora_config_store_destroy(cfg);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_adapter: out of memory");
    }
    (*out)->cfg = cfg;
    return CULORA_OK;
}

culora_status culora_adapter_create(culora_context *ctx, const culora_lora_config *cfg, culora_adapter **out)
{
    if (out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_adapter_create: out is NULL");
    *out = NULL;
    lora_config_store *store;
    CULORA_TRY(lora_config_store_create(ctx, "culora_adapter_create", cfg, &store));
    return adapter_new(ctx, store, out);
}

const culora_lora_config *culora_adapter_config(const culora_adapter *ad)
{
    return ad ? lora_config_view(ad->cfg) : NULL;
}

culora_status culora_adapter_match(culora_context *ctx, const culora_adapter *ad, const char *module_name,
                                   bool *targeted, int32_t *r, double *alpha)
{
    if (ad == NULL || module_name == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_adapter_match: NULL argument");
    return lora_config_match(ctx, ad->cfg, module_name, targeted, r, alpha);
}

size_t culora_adapter_n_modules(const culora_adapter *ad)
{
    return ad ? ad->n_modules : 0;
}

culora_lora_module *culora_adapter_module(const culora_adapter *ad, size_t i)
{
    return ad && i < ad->n_modules ? ad->modules[i] : NULL;
}

/* Index of the first module whose name is >= name. */
static size_t lower_bound(const culora_adapter *ad, const char *name)
{
    size_t lo = 0, hi = ad->n_modules;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ad->modules[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

culora_lora_module *culora_adapter_find_module(const culora_adapter *ad, const char *module_name)
{
    if (ad == NULL || module_name == NULL)
        return NULL;
    size_t i = lower_bound(ad, module_name);
    return i < ad->n_modules && strcmp(ad->modules[i]->name, module_name) == 0 ? ad->modules[i] : NULL;
}

size_t culora_adapter_n_tensors(const culora_adapter *ad)
{
    return ad ? ad->n_tensors : 0;
}

const culora_adapter_tensor *culora_adapter_tensor_at(const culora_adapter *ad, size_t i)
{
    return ad && i < ad->n_tensors ? &ad->tensors[i]->view : NULL;
}

/* ---- adding modules and tensors ------------------------------------------------------------ */

/* Inserts a module with explicit rank and alpha (load path; add_module resolves them). */
static culora_status insert_module(culora_context *ctx, culora_adapter *ad, const char *name, int32_t r,
                                   double alpha, int64_t in, int64_t out_f, bool embedding, culora_lora_module **out)
{
    if (r <= 0 || in <= 0 || out_f <= 0 || (uint64_t)in > ((uint64_t)1 << 40) / (uint64_t)r ||
        (uint64_t)out_f > ((uint64_t)1 << 40) / (uint64_t)r)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "module '%s': bad sizes r=%d in=%lld out=%lld", name, (int)r,
                           (long long)in, (long long)out_f);
    size_t pos = lower_bound(ad, name);
    if (pos < ad->n_modules && strcmp(ad->modules[pos]->name, name) == 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "module '%s' is already in the adapter", name);
    if (ad->n_modules == ad->cap_modules) {
        size_t cap = ad->cap_modules ? 2 * ad->cap_modules : 16;
        culora_lora_module **m = realloc(ad->modules, cap * sizeof *m);
        if (m == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "module '%s': out of memory", name);
        ad->modules = m;
        ad->cap_modules = cap;
    }
    culora_lora_module *m = calloc(1, sizeof *m);
    if (m == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "module '%s': out of memory", name);
    m->name = culora_strdup(name);
    m->A = calloc((size_t)r * (size_t)in, sizeof *m->A);
    m->B = calloc((size_t)out_f * (size_t)r, sizeof *m->B);
    if (m->name == NULL || m->A == NULL || m->B == NULL) {
        module_free(m);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "module '%s': out of memory for A and B", name);
    }
    m->embedding = embedding;
    m->r = r;
    m->alpha = alpha;
    m->scaling = lora_config_view(ad->cfg)->use_rslora ? alpha / sqrt((double)r) : alpha / (double)r;
    m->in_features = in;
    m->out_features = out_f;
    memmove(ad->modules + pos + 1, ad->modules + pos, (ad->n_modules - pos) * sizeof *ad->modules);
    ad->modules[pos] = m;
    ad->n_modules++;
    if (out != NULL)
        *out = m;
    return CULORA_OK;
}

culora_status culora_adapter_add_module(culora_context *ctx, culora_adapter *ad, const char *module_name,
                                        int64_t in_features, int64_t out_features, bool embedding,
                                        culora_lora_module **out)
{
    if (ad == NULL || module_name == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_adapter_add_module: NULL argument");
    int32_t r;
    double alpha;
    CULORA_TRY(lora_config_match(ctx, ad->cfg, module_name, NULL, &r, &alpha));
    return insert_module(ctx, ad, module_name, r, alpha, in_features, out_features, embedding, out);
}

culora_status culora_adapter_add_tensor(culora_context *ctx, culora_adapter *ad, const char *name, int32_t n_dims,
                                        const int64_t *shape, const float *data)
{
    if (ad == NULL || name == NULL || (n_dims > 0 && shape == NULL) || n_dims < 0 || n_dims > 8)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_adapter_add_tensor: bad argument");
    int64_t n = 1;
    for (int32_t d = 0; d < n_dims; d++) {
        if (shape[d] < 0 || (shape[d] > 0 && n > ((int64_t)1 << 40) / shape[d]))
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "tensor '%s': bad shape", name);
        n *= shape[d];
    }
    if (n > 0 && data == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "tensor '%s': data is NULL", name);
    for (size_t i = 0; i < ad->n_tensors; i++)
        if (strcmp(ad->tensors[i]->view.name, name) == 0)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "tensor '%s' is already in the adapter", name);
    if (ad->n_tensors == ad->cap_tensors) {
        size_t cap = ad->cap_tensors ? 2 * ad->cap_tensors : 4;
        adapter_tensor_store **t = realloc(ad->tensors, cap * sizeof *t);
        if (t == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory", name);
        ad->tensors = t;
        ad->cap_tensors = cap;
    }
    adapter_tensor_store *t = calloc(1, sizeof *t);
    float *copy = malloc((size_t)(n ? n : 1) * sizeof *copy);
    char *nm = culora_strdup(name);
    if (t == NULL || copy == NULL || nm == NULL) {
        free(t);
        free(copy);
        free(nm);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory", name);
    }
    if (n > 0)
        memcpy(copy, data, (size_t)n * sizeof *copy);
    for (int32_t d = 0; d < n_dims; d++)
        t->shape[d] = shape[d];
    t->view = (culora_adapter_tensor){nm, n_dims, t->shape, n, copy};
    ad->tensors[ad->n_tensors++] = t;
    return CULORA_OK;
}

/* ---- load ---------------------------------------------------------------------------------- */

typedef enum lora_part { PART_NONE, PART_A, PART_B, PART_EMB_A, PART_EMB_B } lora_part;

/* Splits "<module>.lora_A.weight" etc.; returns the part and the module name length. */
static lora_part classify(const char *key, size_t *module_len)
{
    static const struct {
        const char *suffix;
        lora_part part;
    } table[] = {{".lora_A.weight", PART_A},
                 {".lora_B.weight", PART_B},
                 {".lora_embedding_A", PART_EMB_A},
                 {".lora_embedding_B", PART_EMB_B}};
    size_t n = strlen(key);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t m = strlen(table[i].suffix);
        if (n > m && strcmp(key + n - m, table[i].suffix) == 0) {
            *module_len = n - m;
            return table[i].part;
        }
    }
    return PART_NONE;
}

static culora_status refuse_tensor(culora_context *ctx, const char *file, const char *key)
{
    if (strstr(key, "lora_magnitude_vector") != NULL)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: tensor '%s' is a DoRA magnitude; DoRA is not supported",
                           file, key);
    if (strstr(key, ".lora_B.bias") != NULL)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: tensor '%s' is a lora_B bias (lora_bias); not supported",
                           file, key);
    if (strstr(key, ".lora_") != NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' is not a LoRA tensor culora knows", file, key);
    return CULORA_OK;
}

/* Reads one side of a module (A or B) after its shape was checked. */
static culora_status read_f32(culora_context *ctx, const culora_tensor_info *t, float *dst)
{
    return culora_tensor_read(ctx, t, CULORA_DTYPE_F32, dst, (size_t)t->n_elems * sizeof(float));
}

static culora_status load_module(culora_context *ctx, culora_adapter *ad, const char *file, const char *module, const culora_tensor_info *a,
                                 const culora_tensor_info *b, bool embedding)
{
    const char *an = embedding ? "lora_embedding_A" : "lora_A.weight";
    const char *bn = embedding ? "lora_embedding_B" : "lora_B.weight";
    if (a == NULL || b == NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: module '%s' has %s but no %s", file, module,
                           a ? an : bn, a ? bn : an);
    if (a->n_dims != 2 || b->n_dims != 2 || a->shape[0] != b->shape[1] || a->shape[0] <= 0 || a->shape[1] <= 0 ||
        b->shape[0] <= 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT,
                           "%s: module '%s': %s must be [r, in] and %s [out, r] with the same r > 0", file, module,
                           an, bn);
    bool targeted;
    int32_t r;
    double alpha;
    CULORA_TRY(lora_config_match(ctx, ad->cfg, module, &targeted, &r, &alpha));
    if (a->shape[0] != r)
        return culora_fail(ctx, CULORA_ERR_FORMAT,
                           "%s: module '%s': %s has rank %lld but adapter_config.json gives r=%d for it", file, module,
                           an, (long long)a->shape[0], (int)r);
    const culora_lora_config *c = lora_config_view(ad->cfg);
    if (!targeted && !(c->target_modules_regex && strcmp(c->target_modules_regex, "all-linear") == 0))
        return culora_fail(ctx, CULORA_ERR_FORMAT,
                           "%s: module '%s' has LoRA weights but target_modules in adapter_config.json does not "
                           "match it", file, module);
    culora_lora_module *m;
    CULORA_TRY(insert_module(ctx, ad, module, r, alpha, a->shape[1], b->shape[0], embedding, &m));
    CULORA_TRY(read_f32(ctx, a, m->A));
    return read_f32(ctx, b, m->B);
}

static culora_status load_tensors(culora_context *ctx, culora_adapter *ad, const culora_safetensors *st,
                                  const char *file)
{
    char module[512], other[576];
    size_t n = culora_safetensors_count(st);
    for (size_t i = 0; i < n; i++) {
        const culora_tensor_info *t = culora_safetensors_at(st, i);
        if (strncmp(t->name, PREFIX, PREFIX_LEN) != 0)
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' does not start with '" PREFIX "'", file,
                               t->name);
    }
    for (size_t i = 0; i < n; i++) {
        const culora_tensor_info *t = culora_safetensors_at(st, i);
        const char *key = t->name + PREFIX_LEN;
        size_t mlen;
        lora_part part = classify(key, &mlen);
        if (part == PART_NONE) {
            CULORA_TRY(refuse_tensor(ctx, file, t->name));
            if (t->n_dims > 8)
                return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' has %d dimensions", file, t->name,
                                   (int)t->n_dims);
            float *buf = malloc((size_t)(t->n_elems ? t->n_elems : 1) * sizeof *buf);
            if (buf == NULL)
                return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory for '%s'", file, t->name);
            culora_status s = read_f32(ctx, t, buf);
            if (s == CULORA_OK)
                s = culora_adapter_add_tensor(ctx, ad, key, t->n_dims, t->shape, buf);
            free(buf);
            CULORA_TRY(s);
            continue;
        }
        if (mlen == 0 || mlen >= sizeof module)
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s': bad module name", file, t->name);
        if (part == PART_B || part == PART_EMB_B) { /* B is handled with its A, or reported unpaired */
            bool emb = part == PART_EMB_B;
            snprintf(other, sizeof other, PREFIX "%.*s.%s", (int)mlen, key, emb ? "lora_embedding_A" : "lora_A.weight");
            if (culora_safetensors_find(st, other) == NULL) {
                snprintf(module, sizeof module, "%.*s", (int)mlen, key);
                return load_module(ctx, ad, file, module, NULL, t, emb);
            }
            continue;
        }
        bool emb = part == PART_EMB_A;
        snprintf(module, sizeof module, "%.*s", (int)mlen, key);
        snprintf(other, sizeof other, PREFIX "%s.%s", module, emb ? "lora_embedding_B" : "lora_B.weight");
        CULORA_TRY(load_module(ctx, ad, file, module, t, culora_safetensors_find(st, other), emb));
    }
    return CULORA_OK;
}

culora_status culora_adapter_load(culora_context *ctx, const char *dir, culora_adapter **out)
{
    if (out == NULL || dir == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_adapter_load: NULL argument");
    *out = NULL;
    char *cfg_path = culora_path_join(dir, CONFIG_NAME);
    char *w_path = culora_path_join(dir, WEIGHTS_NAME);
    char *bin_path = culora_path_join(dir, "adapter_model.bin");
    char *text = NULL;
    size_t len = 0;
    culora_safetensors *st = NULL;
    culora_adapter *ad = NULL;
    lora_config_store *cfg = NULL;
    culora_status s = CULORA_OK;
    if (cfg_path == NULL || w_path == NULL || bin_path == NULL) {
        s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
        goto done;
    }
    CULORA_TRY_GOTO(s, culora_read_text_file(ctx, cfg_path, (size_t)16 << 20, &text, &len), done);
    CULORA_TRY_GOTO(s, lora_config_parse(ctx, cfg_path, text, len, &cfg), done);
    if (!culora_is_file(w_path) && culora_is_file(bin_path)) {
        s = culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                        "%s: only adapter_model.bin (a pickle) is present; culora loads adapter_model.safetensors",
                        dir);
        goto done;
    }
    CULORA_TRY_GOTO(s, culora_safetensors_open(ctx, w_path, &st), done);
    CULORA_TRY_GOTO(s, adapter_new(ctx, cfg, &ad), done);
    cfg = NULL; /* owned by ad */
    CULORA_TRY_GOTO(s, load_tensors(ctx, ad, st, w_path), done);
    *out = ad;
    ad = NULL;
done:
    culora_adapter_destroy(ad);
    lora_config_store_destroy(cfg);
    culora_safetensors_close(st);
    free(text);
    free(cfg_path);
    free(w_path);
    free(bin_path);
    return s;
}

/* ---- save ---------------------------------------------------------------------------------- */

static culora_status add_module_tensors(culora_context *ctx, culora_safetensors_writer *w, const culora_lora_module *m,
                                        char *names, size_t name_cap)
{
    /* names: two buffers of name_cap bytes for the A and B keys (the writer copies them) */
    char *an = names, *bn = names + name_cap;
    if ((size_t)snprintf(an, name_cap, PREFIX "%s.%s", m->name, m->embedding ? "lora_embedding_A" : "lora_A.weight") >=
            name_cap ||
        (size_t)snprintf(bn, name_cap, PREFIX "%s.%s", m->name, m->embedding ? "lora_embedding_B" : "lora_B.weight") >=
            name_cap)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "module name '%s' is too long", m->name);
    int64_t ash[2] = {m->r, m->in_features}, bsh[2] = {m->out_features, m->r};
    CULORA_TRY(culora_safetensors_writer_add(ctx, w, an, CULORA_ST_F32, 2, ash, m->A,
                                             (uint64_t)m->r * (uint64_t)m->in_features * sizeof(float)));
    return culora_safetensors_writer_add(ctx, w, bn, CULORA_ST_F32, 2, bsh, m->B,
                                         (uint64_t)m->r * (uint64_t)m->out_features * sizeof(float));
}

static culora_status ensure_dir(culora_context *ctx, const char *dir)
{
    if (mkdir(dir, 0777) == 0 || (errno == EEXIST && culora_is_dir(dir)))
        return CULORA_OK;
    return culora_fail(ctx, CULORA_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
}

culora_status culora_adapter_save(culora_context *ctx, const culora_adapter *ad, const char *dir)
{
    if (ad == NULL || dir == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_adapter_save: NULL argument");
    CULORA_TRY(ensure_dir(ctx, dir));
    enum { NAME_CAP = 1024 };
    char *cfg_path = culora_path_join(dir, CONFIG_NAME);
    char *w_path = culora_path_join(dir, WEIGHTS_NAME);
    char *names = malloc(2 * NAME_CAP);
    char *json = NULL;
    culora_safetensors_writer *w = NULL;
    culora_status s = CULORA_OK;
    if (cfg_path == NULL || w_path == NULL || names == NULL) {
        s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
        goto done;
    }
    CULORA_TRY_GOTO(s, culora_safetensors_writer_create(ctx, &w), done);
    CULORA_TRY_GOTO(s, culora_safetensors_writer_set_metadata(ctx, w, "format", "pt"), done);
    for (size_t i = 0; i < ad->n_modules; i++)
        CULORA_TRY_GOTO(s, add_module_tensors(ctx, w, ad->modules[i], names, NAME_CAP), done);
    for (size_t i = 0; i < ad->n_tensors; i++) {
        const culora_adapter_tensor *t = &ad->tensors[i]->view;
        if ((size_t)snprintf(names, NAME_CAP, PREFIX "%s", t->name) >= NAME_CAP) {
            s = culora_fail(ctx, CULORA_ERR_INVALID_ARG, "tensor name '%s' is too long", t->name);
            goto done;
        }
        CULORA_TRY_GOTO(s, culora_safetensors_writer_add(ctx, w, names, CULORA_ST_F32, t->n_dims, t->shape, t->data,
                                                         (uint64_t)t->n_elems * sizeof(float)), done);
    }
    CULORA_TRY_GOTO(s, culora_safetensors_writer_save(ctx, w, w_path), done);
    CULORA_TRY_GOTO(s, lora_config_to_json(ctx, ad->cfg, &json), done);
    CULORA_TRY_GOTO(s, culora_write_file_atomic(ctx, cfg_path, json, strlen(json)), done);
done:
    culora_safetensors_writer_destroy(w);
    free(json);
    free(names);
    free(cfg_path);
    free(w_path);
    return s;
}
