/*
 * checkpoint.c — training checkpoints: written into a temporary directory, every file synced,
 * then renamed into place (a crash leaves either the old checkpoint set or the new one, never a
 * half-written checkpoint-<step>); a manifest with each file's size and CRC-32 is checked before
 * anything is restored.
 *
 *   checkpoint-<step>/
 *     trainer_state.safetensors  fp32 master weights, AdamW m and v of every trainable parameter
 *                                (the flat buffers, exact), and metadata: step, Adam step, skipped
 *                                steps, dropout stream, seed, world size, model identity, loader
 *                                positions (culora_data_position, hex)
 *     adapter/                   the LoRA adapter in PEFT format (LoRA modes), for users
 *     trainer_state.json         the same facts, for people
 *     manifest.json              {"format", "step", "files": [{"path", "bytes", "crc32"}]}, written last
 */
#define _POSIX_C_SOURCE 200809L
#include "trainer.h"

#include "relora.h"

#include "../io/io_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CKPT_FORMAT "culora-checkpoint"
#define CKPT_VERSION "1"

/* ---- small file-system helpers --------------------------------------------------------------- */

#define PATH_BYTES 4096

/* out = a "/" b, refusing paths that do not fit. */
static culora_status join(culora_context *ctx, char *out, const char *a, const char *b)
{
    int k = snprintf(out, PATH_BYTES, "%s/%s", a, b);
    if (k < 0 || k >= PATH_BYTES)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "checkpoint: path %s/%s is too long", a, b);
    return CULORA_OK;
}

static culora_status fsync_path(culora_context *ctx, const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return culora_fail(ctx, CULORA_ERR_IO, "checkpoint: cannot open %s to sync: %s", path, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0)
        return culora_fail(ctx, CULORA_ERR_IO, "checkpoint: fsync %s: %s", path, strerror(e));
    return CULORA_OK;
}

/* Removes a directory tree of plain files (our checkpoints are two levels deep). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    struct dirent *e;
    char child[PATH_BYTES];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (join(NULL, child, path, e->d_name) != CULORA_OK)
            continue;
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(child);
        else
            unlink(child);
    }
    closedir(d);
    rmdir(path);
}

static culora_status file_crc(culora_context *ctx, const char *path, uint64_t *bytes, uint32_t *crc)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return culora_fail(ctx, CULORA_ERR_IO, "checkpoint: cannot read %s: %s", path, strerror(errno));
    unsigned char buf[1 << 16];
    uLong c = crc32(0L, Z_NULL, 0);
    uint64_t n = 0;
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
        c = crc32(c, buf, (uInt)k);
        n += k;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return culora_fail(ctx, CULORA_ERR_IO, "checkpoint: read error in %s", path);
    *bytes = n;
    *crc = (uint32_t)c;
    return CULORA_OK;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool from_hex(const char *s, uint8_t *b, size_t n)
{
    if (s == NULL || strlen(s) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + (size_t)j];
            unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 99u;
            if (d > 15)
                return false;
            v = v * 16 + d;
        }
        b[i] = (uint8_t)v;
    }
    return true;
}

/* A fingerprint of the model's structure and LoRA layout: a checkpoint only resumes into the same. */
static uint32_t model_identity(const struct culora_model *m)
{
    char buf[256];
    uLong c = crc32(0L, Z_NULL, 0);
    snprintf(buf, sizeof buf, "%d/%lld/%lld/%lld/%lld/%lld/%d/%lld/q%d.%u.%d", (int)m->cfg.arch, (long long)m->C,
             (long long)m->L, (long long)m->V, (long long)m->I, (long long)m->Hkv, (int)m->mode,
             (long long)m->n_train, (int)m->quant.format, m->quant.flags, (int)m->quant.blocksize);
    c = crc32(c, (const Bytef *)buf, (uInt)strlen(buf));
    for (int32_t i = 0; i < m->n_loras + (m->emb_lora ? 1 : 0); i++) {
        snprintf(buf, sizeof buf, "|%s:%d", m->loras[i].name, (int)m->loras[i].r);
        c = crc32(c, (const Bytef *)buf, (uInt)strlen(buf));
    }
    return (uint32_t)c;
}

/* ---- save ------------------------------------------------------------------------------------- */

static const char *mode_name(int32_t mode)
{
    switch (mode) {
    case CULORA_MODE_FULL: return "full";
    case CULORA_MODE_LORA: return "lora";
    case CULORA_MODE_LORA_FA: return "lora-fa";
    default: return "inference";
    }
}

static culora_status write_state(culora_trainer *tr, const char *tmp)
{
    struct culora_model *m = tr->model;
    const size_t n = (size_t)m->n_train;
    float *buf = malloc(3 * (n ? n : 1) * sizeof *buf);
    if (buf == NULL)
        return culora_fail(tr->ctx, CULORA_ERR_OUT_OF_MEMORY, "checkpoint: out of host memory");
    culora_status s = model_state_download(m, buf, buf + n, buf + 2 * n);
    culora_safetensors_writer *w = NULL;
    if (s == CULORA_OK)
        s = culora_safetensors_writer_create(tr->ctx, &w);
    const int64_t shape[1] = {(int64_t)n};
    const char *names[3] = {"master", "adam_m", "adam_v"};
    for (int i = 0; i < 3 && s == CULORA_OK; i++)
        s = culora_safetensors_writer_add(tr->ctx, w, names[i], CULORA_ST_F32, 1, shape, buf + (size_t)i * n,
                                          (uint64_t)n * 4);
    char v[256];
    uint8_t pos[CULORA_DATA_POSITION_BYTES];
    char hex[2 * CULORA_DATA_POSITION_BYTES + 1];
#define META(k, ...)                                                   \
    do {                                                               \
        snprintf(v, sizeof v, __VA_ARGS__);                            \
        if (s == CULORA_OK)                                            \
            s = culora_safetensors_writer_set_metadata(tr->ctx, w, k, v); \
    } while (0)
    META("format", "%s", CKPT_FORMAT);
    META("version", "%s", CKPT_VERSION);
    META("step", "%lld", (long long)tr->step);
    META("adam_step", "%lld", (long long)tr->adam_step);
    META("bad_steps", "%lld", (long long)tr->bad_steps);
    META("forward_count", "%" PRIu64, m->forward_count);
    META("seed", "%" PRIu64, m->seed);
    META("world_size", "%d", (int)tr->world);
    META("mode", "%s", mode_name(m->mode));
    META("n_train", "%lld", (long long)m->n_train);
    META("model_identity", "%08x", model_identity(m));
    culora_data_position dp;
    culora_loader_get_position(tr->train, &dp);
    culora_data_position_encode(&dp, pos);
    to_hex(pos, sizeof pos, hex);
    META("train_position", "%s", hex);
    if (tr->eval != NULL) {
        culora_loader_get_position(tr->eval, &dp);
        culora_data_position_encode(&dp, pos);
        to_hex(pos, sizeof pos, hex);
        META("eval_position", "%s", hex);
    }
#undef META
    if (s == CULORA_OK)
        s = trainer_relora_save(tr, w); /* ReLoRA: the merged base, restart counters */
    char path[PATH_BYTES];
    if (s == CULORA_OK)
        s = join(tr->ctx, path, tmp, "trainer_state.safetensors");
    if (s == CULORA_OK)
        s = culora_safetensors_writer_save(tr->ctx, w, path);
    culora_safetensors_writer_destroy(w);
    free(buf);
    return s;
}

static culora_status write_json(culora_trainer *tr, const char *path, json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text == NULL)
        return culora_fail(tr->ctx, CULORA_ERR_OUT_OF_MEMORY, "checkpoint: out of memory");
    size_t len = strlen(text);
    culora_status s = culora_write_file_atomic(tr->ctx, path, text, len);
    free(text);
    return s;
}

static culora_status write_summary(culora_trainer *tr, const char *tmp)
{
    const culora_step_info *l = &tr->last;
    json_t *doc = json_pack("{s:s,s:I,s:I,s:I,s:s,s:f,s:f,s:I,s:i}", "format", CKPT_FORMAT, "step", (json_int_t)tr->step,
                            "total_steps", (json_int_t)tr->p.total_steps, "bad_steps", (json_int_t)tr->bad_steps,
                            "mode", mode_name(tr->model->mode), "last_loss", isfinite(l->loss) ? (double)l->loss : 0.0,
                            "last_lr", (double)l->lr, "trainable_parameters",
                            (json_int_t)culora_model_n_trainable(tr->model), "world_size", (int)tr->world);
    if (doc == NULL)
        return culora_fail(tr->ctx, CULORA_ERR_OUT_OF_MEMORY, "checkpoint: out of memory");
    char path[PATH_BYTES];
    culora_status s = join(tr->ctx, path, tmp, "trainer_state.json");
    if (s == CULORA_OK)
        s = write_json(tr, path, doc);
    json_decref(doc);
    return s;
}

static culora_status write_manifest(culora_trainer *tr, const char *tmp, const char *const *files, size_t n_files)
{
    json_t *arr = json_array();
    culora_status s = arr ? CULORA_OK : culora_fail(tr->ctx, CULORA_ERR_OUT_OF_MEMORY, "checkpoint: out of memory");
    char path[PATH_BYTES], crc_hex[16];
    for (size_t i = 0; i < n_files && s == CULORA_OK; i++) {
        uint64_t bytes = 0;
        uint32_t crc = 0;
        s = join(tr->ctx, path, tmp, files[i]);
        if (s == CULORA_OK)
            s = file_crc(tr->ctx, path, &bytes, &crc);
        snprintf(crc_hex, sizeof crc_hex, "%08x", crc);
        if (s == CULORA_OK)
            json_array_append_new(arr, json_pack("{s:s,s:I,s:s}", "path", files[i], "bytes", (json_int_t)bytes,
                                                 "crc32", crc_hex));
    }
    if (s == CULORA_OK) {
        json_t *doc = json_pack("{s:s,s:s,s:I,s:O}", "format", CKPT_FORMAT, "version", CKPT_VERSION, "step",
                                (json_int_t)tr->step, "files", arr);
        s = doc ? join(tr->ctx, path, tmp, "manifest.json")
                : culora_fail(tr->ctx, CULORA_ERR_OUT_OF_MEMORY, "checkpoint: out of memory");
        if (s == CULORA_OK)
            s = write_json(tr, path, doc);
        json_decref(doc);
    }
    json_decref(arr);
    return s;
}

/* Step number of a "checkpoint-<n>" name, or -1. */
static int64_t checkpoint_step(const char *name)
{
    if (strncmp(name, "checkpoint-", 11) != 0 || name[11] == '\0')
        return -1;
    char *end = NULL;
    long long v = strtoll(name + 11, &end, 10);
    return *end == '\0' && v >= 0 ? (int64_t)v : -1;
}

/* Deletes all but the newest `keep` complete checkpoints in dir. */
static void prune(const char *dir, int32_t keep)
{
    if (keep <= 0)
        return;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    int64_t steps[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 4096) {
        int64_t s = checkpoint_step(e->d_name);
        if (s >= 0)
            steps[n++] = s;
    }
    closedir(d);
    for (int i = 0; i < n; i++) /* sort descending */
        for (int j = i + 1; j < n; j++)
            if (steps[j] > steps[i]) {
                int64_t t = steps[i];
                steps[i] = steps[j];
                steps[j] = t;
            }
    char path[PATH_BYTES], name[64];
    for (int i = keep; i < n; i++) {
        snprintf(name, sizeof name, "checkpoint-%lld", (long long)steps[i]);
        if (join(NULL, path, dir, name) == CULORA_OK)
            remove_tree(path);
    }
}

culora_status culora_trainer_save_checkpoint(culora_trainer *tr, const char *dir)
{
    if (tr == NULL || dir == NULL)
        return tr ? culora_fail(tr->ctx, CULORA_ERR_INVALID_ARG, "checkpoint: dir is NULL") : CULORA_ERR_INVALID_ARG;
    /* a checkpoint holds rank 0's weights: every rank must have the same (else the job diverged) */
    CULORA_TRY(trainer_check_replicas(tr, "(checkpoint)"));
    culora_status s = CULORA_OK;
    if (tr->rank == 0) {
        char tmp[PATH_BYTES], fin[PATH_BYTES], old[PATH_BYTES], sub[PATH_BYTES], name[64];
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return culora_fail(tr->ctx, CULORA_ERR_IO, "checkpoint: cannot create %s: %s", dir, strerror(errno));
        snprintf(name, sizeof name, ".checkpoint-%lld.tmp", (long long)tr->step);
        CULORA_TRY(join(tr->ctx, tmp, dir, name));
        snprintf(name, sizeof name, "checkpoint-%lld", (long long)tr->step);
        CULORA_TRY(join(tr->ctx, fin, dir, name));
        snprintf(name, sizeof name, ".checkpoint-%lld.old", (long long)tr->step);
        CULORA_TRY(join(tr->ctx, old, dir, name));
        remove_tree(tmp); /* leftovers of an interrupted save */
        if (mkdir(tmp, 0777) != 0)
            return culora_fail(tr->ctx, CULORA_ERR_IO, "checkpoint: cannot create %s: %s", tmp, strerror(errno));
        const bool lora = culora_model_n_lora_modules(tr->model) > 0;
        s = write_state(tr, tmp);
        if (s == CULORA_OK && lora)
            s = join(tr->ctx, sub, tmp, "adapter");
        if (s == CULORA_OK && lora) {
            s = culora_model_save_adapter(tr->model, sub);
            if (s == CULORA_OK)
                s = fsync_path(tr->ctx, sub);
        }
        if (s == CULORA_OK)
            s = write_summary(tr, tmp);
        const char *files[] = {"trainer_state.safetensors", "trainer_state.json", "adapter/adapter_model.safetensors",
                               "adapter/adapter_config.json"};
        if (s == CULORA_OK)
            s = write_manifest(tr, tmp, files, lora ? 4 : 2);
        if (s == CULORA_OK)
            s = fsync_path(tr->ctx, tmp);
        if (s == CULORA_OK) {
            struct stat st;
            if (stat(fin, &st) == 0) { /* the same step saved again: move the old one aside first */
                remove_tree(old);
                if (rename(fin, old) != 0)
                    s = culora_fail(tr->ctx, CULORA_ERR_IO, "checkpoint: cannot replace %s: %s", fin, strerror(errno));
            }
        }
        if (s == CULORA_OK && rename(tmp, fin) != 0)
            s = culora_fail(tr->ctx, CULORA_ERR_IO, "checkpoint: cannot rename %s to %s: %s", tmp, fin, strerror(errno));
        if (s == CULORA_OK)
            s = fsync_path(tr->ctx, dir);
        if (s != CULORA_OK) {
            remove_tree(tmp);
        } else {
            remove_tree(old);
            prune(dir, tr->p.keep_checkpoints);
        }
    }
    if (tr->p.dist != NULL && tr->world > 1) { /* every rank learns whether rank 0 succeeded */
        uint64_t ok = s == CULORA_OK ? 1 : 0;
        CULORA_TRY(culora_dist_allgather_u64(tr->p.dist, ok, tr->gather));
        if (tr->gather[0] != 1 && s == CULORA_OK)
            s = culora_fail(tr->ctx, CULORA_ERR_IO, "checkpoint: rank 0 failed to write the checkpoint at step %lld",
                            (long long)tr->step);
    }
    return s;
}

/* ---- resume ----------------------------------------------------------------------------------- */

/* Checks every file of the manifest (size and CRC-32). */
static culora_status verify_manifest(culora_context *ctx, const char *ck)
{
    char path[PATH_BYTES];
    CULORA_TRY(join(ctx, path, ck, "manifest.json"));
    json_error_t err;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (doc == NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "checkpoint %s: manifest.json missing or unreadable (%s): an "
                                                   "incomplete checkpoint",
                           ck, err.text);
    culora_status s = CULORA_OK;
    const char *fmt = json_string_value(json_object_get(doc, "format"));
    json_t *files = json_object_get(doc, "files");
    if (fmt == NULL || strcmp(fmt, CKPT_FORMAT) != 0 || !json_is_array(files))
        s = culora_fail(ctx, CULORA_ERR_FORMAT, "checkpoint %s: manifest.json is not a culora checkpoint manifest", ck);
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        if (s != CULORA_OK)
            break;
        const char *rel = json_string_value(json_object_get(f, "path"));
        const char *want_crc = json_string_value(json_object_get(f, "crc32"));
        json_int_t want_bytes = json_integer_value(json_object_get(f, "bytes"));
        if (rel == NULL || want_crc == NULL || strstr(rel, "..") != NULL) {
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "checkpoint %s: malformed manifest entry %zu", ck, i);
            break;
        }
        uint64_t bytes = 0;
        uint32_t crc = 0;
        s = join(ctx, path, ck, rel);
        if (s == CULORA_OK)
            s = file_crc(ctx, path, &bytes, &crc);
        if (s != CULORA_OK)
            break;
        char got[16];
        snprintf(got, sizeof got, "%08x", crc);
        if (bytes != (uint64_t)want_bytes)
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "checkpoint %s: %s has %llu bytes, the manifest says %lld (truncated?)",
                            ck, rel, (unsigned long long)bytes, (long long)want_bytes);
        else if (strcmp(got, want_crc) != 0)
            s = culora_fail(ctx, CULORA_ERR_FORMAT, "checkpoint %s: %s is corrupted (CRC-32 %s, manifest %s)", ck, rel,
                            got, want_crc);
    }
    json_decref(doc);
    return s;
}

/* dir itself when it holds a manifest, else its newest checkpoint-<step> holding one. */
static culora_status find_checkpoint(culora_context *ctx, const char *dir, char *out, size_t n)
{
    char path[PATH_BYTES], name[PATH_BYTES];
    struct stat st;
    CULORA_TRY(join(ctx, path, dir, "manifest.json"));
    if (stat(path, &st) == 0) {
        snprintf(out, n, "%s", dir);
        return CULORA_OK;
    }
    DIR *d = opendir(dir);
    if (d == NULL)
        return culora_fail(ctx, CULORA_ERR_IO, "resume: cannot open %s: %s", dir, strerror(errno));
    int64_t best = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t s = checkpoint_step(e->d_name);
        if (s <= best)
            continue;
        if (join(ctx, name, dir, e->d_name) != CULORA_OK || join(ctx, path, name, "manifest.json") != CULORA_OK)
            continue;
        if (stat(path, &st) == 0)
            best = s;
    }
    closedir(d);
    if (best < 0)
        return culora_fail(ctx, CULORA_ERR_IO, "resume: %s holds no complete checkpoint (checkpoint-<step>/manifest.json)",
                           dir);
    snprintf(name, sizeof name, "checkpoint-%lld", (long long)best);
    if (strlen(dir) + strlen(name) + 2 > n)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "resume: path %s is too long", dir);
    return join(ctx, out, dir, name);
}

static culora_status meta_i64(culora_context *ctx, const culora_safetensors *st, const char *ck, const char *key,
                              int64_t *out)
{
    const char *v = culora_safetensors_metadata_get(st, key);
    char *end = NULL;
    if (v != NULL) {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno == 0 && end != v && *end == '\0') {
            *out = (int64_t)x;
            return CULORA_OK;
        }
    }
    return culora_fail(ctx, CULORA_ERR_FORMAT, "checkpoint %s: trainer state has no valid '%s'", ck, key);
}

static culora_status restore_position(culora_trainer *tr, const culora_safetensors *st, const char *ck, const char *key,
                                      culora_loader *ld)
{
    if (ld == NULL)
        return CULORA_OK;
    uint8_t b[CULORA_DATA_POSITION_BYTES];
    if (!from_hex(culora_safetensors_metadata_get(st, key), b, sizeof b))
        return culora_fail(tr->ctx, CULORA_ERR_FORMAT, "checkpoint %s: trainer state has no valid '%s'", ck, key);
    culora_data_position pos;
    CULORA_TRY(culora_data_position_decode(tr->ctx, b, sizeof b, &pos));
    return culora_loader_set_position(tr->ctx, ld, &pos);
}

culora_status culora_trainer_resume(culora_trainer *tr, const char *dir)
{
    if (tr == NULL || dir == NULL)
        return tr ? culora_fail(tr->ctx, CULORA_ERR_INVALID_ARG, "resume: dir is NULL") : CULORA_ERR_INVALID_ARG;
    struct culora_model *m = tr->model;
    char ck[PATH_BYTES], path[PATH_BYTES];
    CULORA_TRY(find_checkpoint(tr->ctx, dir, ck, sizeof ck));
    CULORA_TRY(verify_manifest(tr->ctx, ck));
    CULORA_TRY(join(tr->ctx, path, ck, "trainer_state.safetensors"));
    culora_safetensors *st = NULL;
    CULORA_TRY(culora_safetensors_open(tr->ctx, path, &st));
    culora_status s = CULORA_OK;
    int64_t step = 0, adam_step = 0, bad = 0, fwd = 0, world = 0, n_train = 0;
    const char *fmt = culora_safetensors_metadata_get(st, "format");
    const char *ver = culora_safetensors_metadata_get(st, "version");
    if (fmt == NULL || strcmp(fmt, CKPT_FORMAT) != 0 || ver == NULL || strcmp(ver, CKPT_VERSION) != 0)
        s = culora_fail(tr->ctx, CULORA_ERR_FORMAT, "checkpoint %s: not a version-%s culora checkpoint", ck, CKPT_VERSION);
    if (s == CULORA_OK) s = meta_i64(tr->ctx, st, ck, "step", &step);
    if (s == CULORA_OK) s = meta_i64(tr->ctx, st, ck, "adam_step", &adam_step);
    if (s == CULORA_OK) s = meta_i64(tr->ctx, st, ck, "bad_steps", &bad);
    if (s == CULORA_OK) s = meta_i64(tr->ctx, st, ck, "forward_count", &fwd);
    if (s == CULORA_OK) s = meta_i64(tr->ctx, st, ck, "world_size", &world);
    if (s == CULORA_OK) s = meta_i64(tr->ctx, st, ck, "n_train", &n_train);
    if (s == CULORA_OK) s = trainer_relora_prepare_resume(tr, step); /* the phase's trainable layout */
    if (s == CULORA_OK && world != tr->world)
        s = culora_fail(tr->ctx, CULORA_ERR_UNSUPPORTED,
                        "checkpoint %s was written by %lld ranks and this job has %d: resume with the same number of ranks "
                        "(the data order and dropout streams depend on it)",
                        ck, (long long)world, (int)tr->world);
    char ident[16];
    snprintf(ident, sizeof ident, "%08x", model_identity(m));
    const char *want_ident = culora_safetensors_metadata_get(st, "model_identity");
    if (s == CULORA_OK && (n_train != m->n_train || want_ident == NULL || strcmp(want_ident, ident) != 0))
        s = culora_fail(tr->ctx, CULORA_ERR_MISMATCH,
                        "checkpoint %s belongs to another model or LoRA setup (mode %s, %lld trainable values; this run "
                        "has mode %s, %lld): use the same model, --mode, targets and ranks",
                        ck, culora_safetensors_metadata_get(st, "mode") ? culora_safetensors_metadata_get(st, "mode") : "?",
                        (long long)n_train, mode_name(m->mode), (long long)m->n_train);
    const size_t n = (size_t)m->n_train;
    float *buf = s == CULORA_OK ? malloc(3 * (n ? n : 1) * sizeof *buf) : NULL;
    if (s == CULORA_OK && buf == NULL)
        s = culora_fail(tr->ctx, CULORA_ERR_OUT_OF_MEMORY, "resume: out of host memory");
    const char *names[3] = {"master", "adam_m", "adam_v"};
    for (int i = 0; i < 3 && s == CULORA_OK; i++) {
        const culora_tensor_info *t = culora_safetensors_find(st, names[i]);
        if (t == NULL || t->dtype != CULORA_ST_F32 || (size_t)t->n_elems != n)
            s = culora_fail(tr->ctx, CULORA_ERR_FORMAT, "checkpoint %s: tensor '%s' missing or not F32 [%zu]", ck,
                            names[i], n);
        else
            s = culora_tensor_read(tr->ctx, t, CULORA_DTYPE_F32, buf + (size_t)i * n, n * 4);
    }
    if (s == CULORA_OK)
        s = restore_position(tr, st, ck, "train_position", tr->train);
    if (s == CULORA_OK)
        s = restore_position(tr, st, ck, "eval_position", tr->eval);
    if (s == CULORA_OK)
        s = model_state_upload(m, buf, buf + n, buf + 2 * n);
    if (s == CULORA_OK)
        s = trainer_relora_restore(tr, st, ck);
    free(buf);
    culora_safetensors_close(st);
    CULORA_TRY(s);
    tr->step = step;
    tr->adam_step = adam_step;
    tr->bad_steps = bad;
    m->forward_count = (uint64_t)fwd;
    return CULORA_OK;
}
