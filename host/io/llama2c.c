/*
 * llama2c.c — a llama2.c checkpoint (the "version 0" .bin that karpathy/llama2.c run.c reads and
 * export.py --version 0 writes) -> a Hugging Face LLaMA directory: config.json +
 * model.safetensors (F32), the layout transformers' LlamaForCausalLM loads.
 *
 * File: 7 little-endian int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len} (vocab_size < 0: the classifier is not tied to the embedding), then fp32 arrays,
 * row-major, matrices [out, in], each stacked over the L layers (hs = dim / n_heads,
 * kv = n_kv_heads * hs):
 *   tok_embeddings [V, dim]   rms_att [L, dim]   wq [L, dim, dim]   wk [L, kv, dim]
 *   wv [L, kv, dim]   wo [L, dim, dim]   rms_ffn [L, dim]   w1 [L, hidden, dim]
 *   w2 [L, dim, hidden]   w3 [L, hidden, dim]   rms_final [dim]
 *   freq_cis_real, freq_cis_imag [seq_len, hs/2] each (legacy RoPE tables; run.c skips them)
 *   wcls [V, dim] (only when vocab_size < 0)
 * The file must be exactly that long. Names: tok_embeddings -> model.embed_tokens, rms_att ->
 * input_layernorm, wq/wk/wv/wo -> self_attn.q/k/v/o_proj, rms_ffn -> post_attention_layernorm,
 * w1/w3/w2 -> mlp.gate/up/down_proj, rms_final -> model.norm, wcls -> lm_head.
 *
 * RoPE: llama2.c rotates adjacent pairs (2i, 2i+1) of each head; transformers' rotate_half
 * rotates (i, i + hs/2). The rows of wq and wk are permuted per head as transformers'
 * convert_llama_weights_to_hf.py permute() does,
 *   w.view(n_heads, hs/2, 2, dim).transpose(1, 2).reshape(n_heads * hs, dim),
 * i.e. new row h*hs + j*hs/2 + i = old row h*hs + 2i + j, so both compute the same attention.
 * The training constants llama2.c does not store are those of its model.py: rms_norm_eps 1e-5,
 * rope_theta 10000; BOS 1 and EOS 2 as in its sentencepiece tokenizers.
 */
#define _POSIX_C_SOURCE 200809L
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define L2C_HEADER_BYTES 28
#define L2C_MAGIC 0x616b3432u /* "ak42": export.py version 1 and 2 files, which start with a magic */

typedef struct l2c_header {
    int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; /* as in the file */
    int64_t vocab;     /* |vocab_size| */
    bool shared;       /* classifier tied to the token embedding (vocab_size > 0) */
    int64_t head_size; /* dim / n_heads */
    int64_t kv_dim;    /* n_kv_heads * head_size */
} l2c_header;

/* The arrays of the file in order. */
enum {
    A_TOK, A_RMS_ATT, A_WQ, A_WK, A_WV, A_WO, A_RMS_FFN, A_W1, A_W2, A_W3, A_RMS_FINAL, A_FREQ_RE, A_FREQ_IM,
    A_WCLS, A_COUNT
};

typedef struct l2c_array {
    const char *name;   /* llama2.c's name (in messages) */
    int64_t n_layers;   /* 1 for a global array, 0 when absent (wcls of a tied model) */
    uint64_t per_layer; /* elements per layer */
    uint64_t offset;    /* first element, counted from the end of the header */
} l2c_array;

typedef struct l2c_layout {
    l2c_array a[A_COUNT];
    uint64_t n_floats; /* all arrays together */
} l2c_layout;

/* One tensor of the output: HF name (printf format with the layer), array, shape. */
typedef struct hf_tensor {
    const char *fmt;
    int array;
    bool permute; /* q/k rows for rotate_half */
} hf_tensor;

static const hf_tensor layer_tensors[] = {
    {"model.layers.%lld.input_layernorm.weight", A_RMS_ATT, false},
    {"model.layers.%lld.self_attn.q_proj.weight", A_WQ, true},
    {"model.layers.%lld.self_attn.k_proj.weight", A_WK, true},
    {"model.layers.%lld.self_attn.v_proj.weight", A_WV, false},
    {"model.layers.%lld.self_attn.o_proj.weight", A_WO, false},
    {"model.layers.%lld.post_attention_layernorm.weight", A_RMS_FFN, false},
    {"model.layers.%lld.mlp.gate_proj.weight", A_W1, false},
    {"model.layers.%lld.mlp.down_proj.weight", A_W2, false},
    {"model.layers.%lld.mlp.up_proj.weight", A_W3, false},
};

/* ---- header and layout -------------------------------------------------------------------- */

static int32_t le_i32(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t s;
    memcpy(&s, &v, sizeof s);
    return s;
}

static culora_status header_fail(culora_context *ctx, const char *path, const char *field, int64_t v,
                                 const char *problem)
{
    return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: llama2.c header: %s = %lld %s", path, field, (long long)v,
                       problem);
}

static culora_status parse_header(culora_context *ctx, const char *path, const uint8_t *b, l2c_header *h)
{
    memset(h, 0, sizeof *h);
    uint32_t magic = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    if (magic == L2C_MAGIC)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "%s: llama2.c export version %d (magic \"ak42\") is not supported; culora converts the "
                           "legacy format run.c reads (export.py --version 0)",
                           path, (int)le_i32(b + 4));
    h->dim = le_i32(b);
    h->hidden_dim = le_i32(b + 4);
    h->n_layers = le_i32(b + 8);
    h->n_heads = le_i32(b + 12);
    h->n_kv_heads = le_i32(b + 16);
    h->vocab_size = le_i32(b + 20);
    h->seq_len = le_i32(b + 24);
    const struct {
        const char *name;
        int64_t v;
    } pos[] = {
        {"dim", h->dim}, {"hidden_dim", h->hidden_dim}, {"n_layers", h->n_layers}, {"n_heads", h->n_heads},
        {"n_kv_heads", h->n_kv_heads}, {"seq_len", h->seq_len},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0)
            return header_fail(ctx, path, pos[i].name, pos[i].v, "must be positive");
    if (h->vocab_size == 0)
        return header_fail(ctx, path, "vocab_size", 0, "must not be zero (negative: untied classifier)");
    if (h->dim % h->n_heads != 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: llama2.c header: dim %lld is not a multiple of n_heads %lld",
                           path, (long long)h->dim, (long long)h->n_heads);
    if (h->n_heads % h->n_kv_heads != 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT,
                           "%s: llama2.c header: n_heads %lld is not a multiple of n_kv_heads %lld", path,
                           (long long)h->n_heads, (long long)h->n_kv_heads);
    h->head_size = h->dim / h->n_heads;
    if (h->head_size % 2 != 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT,
                           "%s: llama2.c header: head size dim / n_heads = %lld must be even for RoPE", path,
                           (long long)h->head_size);
    h->shared = h->vocab_size > 0;
    h->vocab = h->shared ? h->vocab_size : -h->vocab_size;
    h->kv_dim = h->n_kv_heads * h->head_size;
    return CULORA_OK;
}

/* *out = a * b; false on overflow. */
static bool mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return false;
    *out = a * b;
    return true;
}

/* Offsets of every array; false when the total does not fit in 64 bits. */
static bool compute_layout(const l2c_header *h, l2c_layout *lay)
{
    uint64_t dim = (uint64_t)h->dim, hid = (uint64_t)h->hidden_dim, kv = (uint64_t)h->kv_dim;
    uint64_t L = (uint64_t)h->n_layers, V = (uint64_t)h->vocab;
    uint64_t half_table = (uint64_t)h->seq_len * (uint64_t)(h->head_size / 2);
    struct {
        const char *name;
        uint64_t rows, cols;
        bool layered;
        bool present;
    } def[A_COUNT] = {
        [A_TOK] = {"tok_embeddings", V, dim, false, true},
        [A_RMS_ATT] = {"rms_att", 1, dim, true, true},
        [A_WQ] = {"wq", dim, dim, true, true},
        [A_WK] = {"wk", kv, dim, true, true},
        [A_WV] = {"wv", kv, dim, true, true},
        [A_WO] = {"wo", dim, dim, true, true},
        [A_RMS_FFN] = {"rms_ffn", 1, dim, true, true},
        [A_W1] = {"w1", hid, dim, true, true},
        [A_W2] = {"w2", dim, hid, true, true},
        [A_W3] = {"w3", hid, dim, true, true},
        [A_RMS_FINAL] = {"rms_final", 1, dim, false, true},
        [A_FREQ_RE] = {"freq_cis_real", 1, half_table, false, true},
        [A_FREQ_IM] = {"freq_cis_imag", 1, half_table, false, true},
        [A_WCLS] = {"wcls", V, dim, false, !h->shared},
    };
    uint64_t off = 0;
    for (int i = 0; i < A_COUNT; i++) {
        uint64_t per, total;
        if (!mul_u64(def[i].rows, def[i].cols, &per))
            return false;
        uint64_t n = !def[i].present ? 0 : def[i].layered ? L : 1;
        if (!mul_u64(per, n, &total) || off > UINT64_MAX - total)
            return false;
        lay->a[i] = (l2c_array){def[i].name, (int64_t)n, per, off};
        off += total;
    }
    lay->n_floats = off;
    return off <= (UINT64_MAX - L2C_HEADER_BYTES) / 4;
}

/* ---- weights ------------------------------------------------------------------------------- */

/* Refuses NaN and Inf (all exponent bits set): a trained checkpoint holds none, and random or
 * misaligned bytes almost always do. The legacy RoPE tables are not weights and are skipped. */
static culora_status check_finite(culora_context *ctx, const char *path, const l2c_layout *lay,
                                  const uint8_t *weights)
{
    for (int i = 0; i < A_COUNT; i++) {
        if (i == A_FREQ_RE || i == A_FREQ_IM)
            continue;
        const l2c_array *a = &lay->a[i];
        uint64_t n = a->per_layer * (uint64_t)a->n_layers;
        const uint8_t *p = weights + a->offset * 4;
        for (uint64_t k = 0; k < n; k++) {
            uint32_t bits;
            memcpy(&bits, p + k * 4, 4);
            if ((bits & 0x7f800000u) == 0x7f800000u)
                return culora_fail(ctx, CULORA_ERR_FORMAT,
                                   "%s: llama2.c array %s holds a non-finite value (%s) at layer %llu, element %llu "
                                   "(file offset %llu): not a trained checkpoint, or a damaged one",
                                   path, a->name, (bits & 0x007fffffu) ? "NaN" : "Inf",
                                   (unsigned long long)(k / a->per_layer), (unsigned long long)(k % a->per_layer),
                                   (unsigned long long)(L2C_HEADER_BYTES + (a->offset + k) * 4));
        }
    }
    return CULORA_OK;
}

/* Rows of one head-stacked [n_heads * hs, dim] matrix from adjacent-pair to rotate_half order. */
static void permute_rows(float *dst, const uint8_t *src, int64_t n_heads, int64_t hs, int64_t dim)
{
    size_t row_bytes = (size_t)dim * sizeof(float);
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t j = 0; j < 2; j++)
            for (int64_t i = 0; i < hs / 2; i++)
                memcpy(dst + (size_t)(h * hs + j * (hs / 2) + i) * (size_t)dim,
                       src + (size_t)(h * hs + 2 * i + j) * row_bytes, row_bytes);
}

static culora_status ensure_dir(culora_context *ctx, const char *dir)
{
    if (mkdir(dir, 0777) == 0 || (errno == EEXIST && culora_is_dir(dir)))
        return CULORA_OK;
    return culora_fail(ctx, CULORA_ERR_IO, "%s: cannot create directory: %s", dir,
                       errno == EEXIST ? "a file of that name exists" : strerror(errno));
}

/* The config.json of the converted model. */
static void hf_config(const l2c_header *h, culora_model_config *c)
{
    memset(c, 0, sizeof *c);
    c->arch = CULORA_ARCH_LLAMA;
    snprintf(c->architecture, sizeof c->architecture, "LlamaForCausalLM");
    c->vocab_size = h->vocab;
    c->hidden_size = h->dim;
    c->n_layers = h->n_layers;
    c->n_heads = h->n_heads;
    c->n_kv_heads = h->n_kv_heads;
    c->head_dim = h->head_size;
    c->intermediate_size = h->hidden_dim;
    c->max_position_embeddings = h->seq_len;
    c->norm_eps = 1e-5;
    c->activation = CULORA_ACT_SILU;
    c->tie_word_embeddings = h->shared;
    c->rope_type = CULORA_ROPE_DEFAULT;
    c->rope_theta = 10000.0;
    c->bos_token_id = 1;
    c->eos_token_id = 2;
}

/* Adds one tensor (a slice of the mapping, or a permuted copy) to the writer: [rows, cols], or
 * [cols] for rows == 0 (a norm weight). */
static culora_status add_tensor(culora_context *ctx, culora_safetensors_writer *w, const char *name,
                                const l2c_array *a, int64_t rows, const void *data)
{
    int64_t cols = rows == 0 ? (int64_t)a->per_layer : (int64_t)a->per_layer / rows;
    int64_t shape[2] = {rows == 0 ? cols : rows, cols};
    return culora_safetensors_writer_add(ctx, w, name, CULORA_ST_F32, rows == 0 ? 1 : 2, shape, data,
                                         a->per_layer * sizeof(float));
}

static culora_status write_model(culora_context *ctx, const l2c_header *h, const l2c_layout *lay,
                                 const uint8_t *weights, const char *out_dir)
{
    const l2c_array *A = lay->a;
    size_t q_elems = (size_t)A[A_WQ].per_layer * (size_t)h->n_layers;
    size_t k_elems = (size_t)A[A_WK].per_layer * (size_t)h->n_layers;
    float *wq = malloc(q_elems * sizeof(float));
    float *wk = malloc(k_elems * sizeof(float));
    char *st_path = culora_path_join(out_dir, "model.safetensors");
    culora_safetensors_writer *w = NULL;
    culora_status s = CULORA_OK;
    if (wq == NULL || wk == NULL || st_path == NULL) {
        s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory for the permuted q/k weights", out_dir);
        goto done;
    }
    CULORA_TRY_GOTO(s, culora_safetensors_writer_create(ctx, &w), done);
    CULORA_TRY_GOTO(s, culora_safetensors_writer_set_metadata(ctx, w, "format", "pt"), done);
    CULORA_TRY_GOTO(s, add_tensor(ctx, w, "model.embed_tokens.weight", &A[A_TOK], h->vocab,
                                  weights + A[A_TOK].offset * 4), done);
    for (int64_t l = 0; l < h->n_layers; l++) {
        for (size_t t = 0; t < sizeof layer_tensors / sizeof layer_tensors[0]; t++) {
            const hf_tensor *ht = &layer_tensors[t];
            const l2c_array *a = &A[ht->array];
            const uint8_t *src = weights + (a->offset + (uint64_t)l * a->per_layer) * 4;
            int64_t rows = ht->array == A_RMS_ATT || ht->array == A_RMS_FFN ? 0
                           : ht->array == A_W1 || ht->array == A_W3       ? h->hidden_dim
                           : ht->array == A_WK || ht->array == A_WV       ? h->kv_dim
                                                                          : h->dim;
            const void *data = src;
            if (ht->permute) {
                bool is_q = ht->array == A_WQ;
                float *dst = (is_q ? wq : wk) + (size_t)l * (size_t)a->per_layer;
                permute_rows(dst, src, is_q ? h->n_heads : h->n_kv_heads, h->head_size, h->dim);
                data = dst;
            }
            char name[96];
            snprintf(name, sizeof name, ht->fmt, (long long)l);
            CULORA_TRY_GOTO(s, add_tensor(ctx, w, name, a, rows, data), done);
        }
    }
    CULORA_TRY_GOTO(s, add_tensor(ctx, w, "model.norm.weight", &A[A_RMS_FINAL], 0,
                                  weights + A[A_RMS_FINAL].offset * 4), done);
    if (!h->shared)
        CULORA_TRY_GOTO(s, add_tensor(ctx, w, "lm_head.weight", &A[A_WCLS], h->vocab,
                                      weights + A[A_WCLS].offset * 4), done);
    CULORA_TRY_GOTO(s, culora_safetensors_writer_save(ctx, w, st_path), done);
done:
    culora_safetensors_writer_destroy(w);
    free(st_path);
    free(wq);
    free(wk);
    return s;
}

/* ---- entry --------------------------------------------------------------------------------- */

/* Checks the mapped file bytes[0..size) and writes out_dir. */
static culora_status convert_bytes(culora_context *ctx, const char *bin_path, const uint8_t *bytes, size_t size,
                                   const char *out_dir)
{
    l2c_header h;
    CULORA_TRY(parse_header(ctx, bin_path, bytes, &h));
    char dims[200];
    snprintf(dims, sizeof dims,
             "dim %lld, hidden_dim %lld, n_layers %lld, n_heads %lld, n_kv_heads %lld, vocab_size %lld, seq_len %lld",
             (long long)h.dim, (long long)h.hidden_dim, (long long)h.n_layers, (long long)h.n_heads,
             (long long)h.n_kv_heads, (long long)h.vocab_size, (long long)h.seq_len);
    l2c_layout lay;
    if (!compute_layout(&h, &lay))
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: the llama2.c header (%s) implies more than 2^64 bytes",
                           bin_path, dims);
    uint64_t want = L2C_HEADER_BYTES + lay.n_floats * 4;
    if ((uint64_t)size != want)
        return culora_fail(ctx, CULORA_ERR_FORMAT,
                           "%s: file is %zu bytes but the llama2.c header (%s) implies %llu bytes (28-byte header, "
                           "%llu fp32 values incl. the legacy RoPE tables%s): %s",
                           bin_path, size, dims, (unsigned long long)want, (unsigned long long)lay.n_floats,
                           h.shared ? "" : " and the untied classifier",
                           (uint64_t)size < want ? "truncated, or not a llama2.c checkpoint"
                                                 : "trailing bytes, or not a llama2.c checkpoint");
    const uint8_t *weights = bytes + L2C_HEADER_BYTES;
    CULORA_TRY(check_finite(ctx, bin_path, &lay, weights));

    culora_model_config cfg;
    hf_config(&h, &cfg);
    CULORA_TRY(ensure_dir(ctx, out_dir));
    /* weights first: a directory with a config.json has its weights */
    CULORA_TRY(write_model(ctx, &h, &lay, weights, out_dir));
    return culora_model_config_save(ctx, &cfg, out_dir);
}

culora_status culora_llama2c_convert(culora_context *ctx, const char *bin_path, const char *out_dir)
{
    if (bin_path == NULL || out_dir == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_llama2c_convert: NULL argument");
    int fd = open(bin_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return culora_fail(ctx, CULORA_ERR_IO, "%s: cannot open: %s", bin_path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return culora_fail(ctx, CULORA_ERR_IO, "%s: not a regular file", bin_path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < L2C_HEADER_BYTES) {
        close(fd);
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: %zu bytes is too short for a llama2.c header (%d bytes)",
                           bin_path, size, L2C_HEADER_BYTES);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return culora_fail(ctx, CULORA_ERR_IO, "%s: cannot map %zu bytes: %s", bin_path, size, strerror(e));
    culora_status s = convert_bytes(ctx, bin_path, map, size, out_dir);
    munmap(map, size);
    return s;
}
