/*
 * quantize.c — `culora quantize`: writes a bitsandbytes-quantized copy of a safetensors model, in
 * the layout transformers saves for BitsAndBytesConfig(load_in_4bit / load_in_8bit) models, so the
 * output loads in transformers and in culora (culora_quant_host_load).
 *
 * Until the model loader exists the command works on tensors, not modules: every 2-D F32 / F16 /
 * BF16 tensor whose name ends in "weight" is quantized, except names containing a --skip entry
 * (default: embeddings and the LM head, which transformers keeps unquantized too); every other
 * tensor is copied unchanged. int8 weights are rounded to fp16 first, as bitsandbytes'
 * Int8Params does. The result is the same on every backend (culora_quantize is bit-exact).
 */
#define _POSIX_C_SOURCE 200809L
#include "culora/culora.h"
#include "culora/culora_io.h"
#include "culora/culora_quant.h"

#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run(int argc, char **argv);

const struct culora_cli_command culora_cli_quantize = {
    "quantize", "write a bitsandbytes-quantized copy of a model (nf4, nf4-dq, fp4, fp4-dq, int8)", run};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: culora quantize --model DIR_OR_FILE --format FORMAT --out DIR [options]\n"
            "\n"
            "  --model PATH        a .safetensors file, a sharded index, or a model directory\n"
            "  --format FORMAT     nf4 | nf4-dq | fp4 | fp4-dq | int8 (-dq: double-quantized absmax)\n"
            "  --out DIR           output directory: model.safetensors (+ config.json with the\n"
            "                      quantization_config transformers expects, when the model has one)\n"
            "  --blocksize N       4-bit block size: 32, 64 (default), 128, 256\n"
            "  --skip A,B,...      leave tensors whose name contains any entry unquantized\n"
            "                      (default: embed,lm_head,wte,wpe)\n"
            "  --backend B         cpu (default) | cuda | auto: where to quantize (same bytes either way)\n"
            "\n"
            "Quantized: 2-D F32/F16/BF16 tensors named *weight that are not skipped (4-bit: element count\n"
            "a multiple of the block size). Everything else is copied unchanged.\n");
}

/* ---------------------------------------------------------------------------------------- */

struct opts {
    const char *model, *out, *skip;
    int32_t format;
    bool dq;
    int32_t blocksize;
    int backend;
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool skipped(const char *name, const char *skip)
{
    char buf[256];
    for (const char *p = skip; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && n < sizeof buf) {
            memcpy(buf, p, n);
            buf[n] = '\0';
            if (strstr(name, buf) != NULL)
                return true;
        }
        p += n + (e ? 1 : 0);
    }
    return false;
}

/* fp32 -> nearest fp16 value (ties to even; overflow to ±inf), returned as fp32. */
static float round_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t sign = u & 0x80000000u, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u)
        return f;                                   /* inf, NaN */
    if (a >= 0x477ff000u)
        return sign ? -INFINITY : INFINITY;         /* >= 65520: rounds past 65504 */
    if (a < 0x38800000u) {                          /* below 2^-14: fp16 subnormal, step 2^-24 */
        const float m = rintf(fabsf(f) * 0x1p24f) * 0x1p-24f;
        return sign ? -m : m;
    }
    const uint32_t r = (a + 0xfffu + ((a >> 13) & 1u)) & ~0x1fffu; /* keep 10 mantissa bits */
    const uint32_t v = sign | r;
    float out;
    memcpy(&out, &v, 4);
    return out;
}

static bool quantizable(const culora_tensor_info *t, const struct opts *o)
{
    if (t->n_dims != 2 || !ends_with(t->name, "weight") || skipped(t->name, o->skip))
        return false;
    if (t->dtype != CULORA_ST_F32 && t->dtype != CULORA_ST_F16 && t->dtype != CULORA_ST_BF16)
        return false;
    if (o->format != CULORA_QUANT_INT8 && (t->shape[0] * t->shape[1]) % o->blocksize != 0)
        return false;
    return true;
}

static int fail(culora_context *ctx, culora_status s, const char *what)
{
    fprintf(stderr, "culora quantize: %s: %s (%s)\n", what, culora_context_last_error(ctx), culora_status_name(s));
    return 1;
}

#define TRY(expr)             \
    do {                      \
        s = (expr);           \
        if (s != CULORA_OK)   \
            goto done;        \
    } while (0)

/* Quantizes tensor t into a new host copy on ctx's backend. */
static culora_status quantize_tensor(culora_context *ctx, const culora_tensor_info *t, const struct opts *o,
                                     culora_quant_host **out)
{
    culora_quant_desc d = CULORA_QUANT_DESC_INIT;
    d.format = o->format;
    d.flags = o->dq ? CULORA_QUANT_DOUBLE_QUANT : 0u;
    d.rows = t->shape[0];
    d.cols = t->shape[1];
    d.blocksize = o->blocksize;
    culora_status s;
    culora_quant_host *h = NULL;
    float *w = malloc((size_t)t->n_elems * sizeof *w);
    void *dw = NULL, *ws = NULL;
    culora_quant_weight dq = {0};
    culora_quant_layout lay;
    if (w == NULL)
        return CULORA_ERR_OUT_OF_MEMORY;
    TRY(culora_tensor_read(ctx, t, CULORA_DTYPE_F32, w, (size_t)t->n_elems * sizeof *w));
    if (o->format == CULORA_QUANT_INT8)
        for (int64_t i = 0; i < t->n_elems; i++)
            w[i] = round_to_f16(w[i]);
    TRY(culora_quant_host_create(ctx, &d, t->dtype, &h));
    TRY(culora_quant_layout_get(ctx, &d, &lay));
    size_t wsb = 0;
    TRY(culora_quantize_workspace_size(ctx, &d, &wsb));
    if (wsb > 0)
        TRY(culora_malloc(ctx, wsb, &ws));
    const culora_quant_weight *hw = culora_quant_host_weight(h);
    if (culora_context_backend(ctx) == CULORA_BACKEND_CPU) { /* backend memory is host memory */
        s = culora_quantize(ctx, &d, w, d.cols, CULORA_DTYPE_F32, hw, ws, wsb, NULL);
    } else {
        const size_t wbytes = (size_t)t->n_elems * sizeof *w;
        TRY(culora_malloc(ctx, wbytes, &dw));
        const size_t sizes[6] = {lay.data_bytes, lay.absmax_bytes, lay.absmax_q_bytes, lay.nested_absmax_bytes,
                                 lay.nested_code_bytes, lay.offset_bytes};
        void **slots[6] = {&dq.data, (void **)&dq.absmax, (void **)&dq.absmax_q, (void **)&dq.nested_absmax,
                           (void **)&dq.nested_code, (void **)&dq.offset};
        for (int i = 0; i < 6; i++)
            if (sizes[i] > 0)
                TRY(culora_malloc(ctx, sizes[i], slots[i]));
        TRY(culora_memcpy(ctx, dw, w, wbytes, CULORA_COPY_HOST_TO_DEVICE, NULL));
        TRY(culora_quantize(ctx, &d, dw, d.cols, CULORA_DTYPE_F32, &dq, ws, wsb, NULL));
        TRY(culora_quant_copy(ctx, &d, hw, &dq, CULORA_COPY_DEVICE_TO_HOST, NULL));
        s = culora_synchronize(ctx, NULL);
    }
done:
    free(w);
    culora_free(ctx, dw);
    culora_free(ctx, ws);
    culora_free(ctx, dq.data);
    culora_free(ctx, dq.absmax);
    culora_free(ctx, dq.absmax_q);
    culora_free(ctx, dq.nested_absmax);
    culora_free(ctx, dq.nested_code);
    culora_free(ctx, dq.offset);
    if (s != CULORA_OK) {
        culora_quant_host_destroy(h);
        return s;
    }
    *out = h;
    return CULORA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* config.json                                                                               */

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* mkdir -p */
static bool make_dirs(const char *path)
{
    char *p = strdup(path);
    bool ok = p != NULL;
    for (char *q = p ? p + 1 : NULL; ok && q && *q; q++)
        if (*q == '/') {
            *q = '\0';
            ok = mkdir(p, 0777) == 0 || errno == EEXIST;
            *q = '/';
        }
    ok = ok && (mkdir(path, 0777) == 0 || errno == EEXIST) && is_dir(path);
    free(p);
    return ok;
}

/* The directory a model path lives in (the path itself for a directory). Caller frees. */
static char *model_dir(const char *path)
{
    if (is_dir(path))
        return strdup(path);
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    char *d = strndup(path, (size_t)(slash - path));
    return d;
}

static const char *compute_dtype(culora_st_dtype dt)
{
    return dt == CULORA_ST_BF16 ? "bfloat16" : dt == CULORA_ST_F16 ? "float16" : "float32";
}

/* BitsAndBytesConfig.to_dict() as transformers 5 writes it. skip_modules: NULL = null. */
static json_t *quantization_config(const struct opts *o, culora_st_dtype dtype, json_t *skip_modules)
{
    const bool four = o->format != CULORA_QUANT_INT8;
    json_t *q = json_object();
    json_object_set_new(q, "_load_in_4bit", json_boolean(four));
    json_object_set_new(q, "_load_in_8bit", json_boolean(!four));
    json_object_set_new(q, "bnb_4bit_compute_dtype", json_string(four ? compute_dtype(dtype) : "float32"));
    json_object_set_new(q, "bnb_4bit_quant_storage", json_string("uint8"));
    json_object_set_new(q, "bnb_4bit_quant_type", json_string(o->format == CULORA_QUANT_NF4 ? "nf4" : "fp4"));
    json_object_set_new(q, "bnb_4bit_use_double_quant", json_boolean(o->dq));
    json_object_set_new(q, "llm_int8_enable_fp32_cpu_offload", json_false());
    json_object_set_new(q, "llm_int8_has_fp16_weight", json_false());
    json_object_set_new(q, "llm_int8_skip_modules", skip_modules ? skip_modules : json_null());
    json_object_set_new(q, "llm_int8_threshold", json_real(CULORA_QUANT_INT8_THRESHOLD));
    json_object_set_new(q, "load_in_4bit", json_boolean(four));
    json_object_set_new(q, "load_in_8bit", json_boolean(!four));
    json_object_set_new(q, "quant_method", json_string("bitsandbytes"));
    return q;
}

/* Copies small side files a model directory carries (tokenizer, generation config). */
static void copy_side_files(const char *src_dir, const char *out_dir)
{
    static const char *names[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                  "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *src = join(src_dir, names[i]), *dst = join(out_dir, names[i]);
        FILE *in = src ? fopen(src, "rb") : NULL;
        FILE *out = in && dst ? fopen(dst, "wb") : NULL;
        if (in && out) {
            char buf[65536];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, in)) > 0)
                if (fwrite(buf, 1, n, out) != n)
                    break;
        }
        if (in) fclose(in);
        if (out) fclose(out);
        free(src);
        free(dst);
    }
}

/* ---------------------------------------------------------------------------------------- */

static int parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->blocksize = 64;
    o->skip = "embed,lm_head,wte,wpe";
    o->backend = CULORA_BACKEND_CPU;
    const char *format = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "culora quantize: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--model") == 0) o->model = v;
        else if (strcmp(a, "--out") == 0) o->out = v;
        else if (strcmp(a, "--format") == 0) format = v;
        else if (strcmp(a, "--skip") == 0) o->skip = v;
        else if (strcmp(a, "--blocksize") == 0) o->blocksize = atoi(v);
        else if (strcmp(a, "--backend") == 0) {
            o->backend = strcmp(v, "cuda") == 0 ? CULORA_BACKEND_CUDA
                         : strcmp(v, "auto") == 0 ? CULORA_BACKEND_AUTO
                         : strcmp(v, "cpu") == 0 ? CULORA_BACKEND_CPU : -1;
            if (o->backend < 0) {
                fprintf(stderr, "culora quantize: --backend %s: cpu, cuda or auto\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "culora quantize: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (o->model == NULL || o->out == NULL || format == NULL) {
        usage(stderr);
        return 2;
    }
    static const struct { const char *name; int32_t format; bool dq; } formats[] = {
        {"nf4", CULORA_QUANT_NF4, false}, {"nf4-dq", CULORA_QUANT_NF4, true}, {"fp4", CULORA_QUANT_FP4, false},
        {"fp4-dq", CULORA_QUANT_FP4, true}, {"int8", CULORA_QUANT_INT8, false}};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(format, formats[i].name) == 0) {
            o->format = formats[i].format;
            o->dq = formats[i].dq;
        }
    if (o->format == 0) {
        fprintf(stderr, "culora quantize: --format %s: nf4, nf4-dq, fp4, fp4-dq or int8\n", format);
        return 2;
    }
    if (o->format != CULORA_QUANT_INT8 && o->blocksize != 32 && o->blocksize != 64 && o->blocksize != 128 &&
        o->blocksize != 256) {
        fprintf(stderr, "culora quantize: --blocksize %d: 32, 64, 128 or 256\n", o->blocksize);
        return 2;
    }
    return -1;
}

static int run(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;

    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = o.backend;
    culora_context *ctx = NULL;
    culora_status s = culora_context_create(&cp, &ctx);
    if (s != CULORA_OK) {
        rc = fail(ctx, s, "context");
        culora_context_destroy(ctx);
        return rc;
    }
    culora_safetensors *st = NULL;
    culora_safetensors_writer *w = NULL;
    culora_quant_host **hosts = NULL;
    json_t *skip_modules = json_array();
    char *src_dir = NULL, *out_file = NULL, *cfg_in = NULL, *cfg_out = NULL;
    rc = 1;
    if ((s = culora_safetensors_open(ctx, o.model, &st)) != CULORA_OK) {
        fail(ctx, s, o.model);
        goto done;
    }
    if (!make_dirs(o.out)) {
        fprintf(stderr, "culora quantize: cannot create %s: %s\n", o.out, strerror(errno));
        goto done;
    }
    if ((s = culora_safetensors_writer_create(ctx, &w)) != CULORA_OK ||
        (s = culora_safetensors_writer_set_metadata(ctx, w, "format", "pt")) != CULORA_OK) {
        fail(ctx, s, "writer");
        goto done;
    }
    const size_t n = culora_safetensors_count(st);
    hosts = calloc(n ? n : 1, sizeof *hosts);
    size_t n_quant = 0;
    uint64_t bytes_in = 0, bytes_out = 0;
    culora_st_dtype dtype = CULORA_ST_BF16;
    for (size_t i = 0; i < n; i++) {
        const culora_tensor_info *t = culora_safetensors_at(st, i);
        bytes_in += t->n_bytes;
        if (!quantizable(t, &o)) {
            if (t->n_dims == 2 && ends_with(t->name, ".weight") && !skipped(t->name, "embed,wte,wpe")) {
                /* a linear-looking weight left as is: tell transformers to keep its module */
                json_array_append_new(skip_modules, json_stringn(t->name, strlen(t->name) - strlen(".weight")));
            }
            if ((s = culora_safetensors_writer_add(ctx, w, t->name, t->dtype, t->n_dims, t->shape, t->data,
                                                   t->n_bytes)) != CULORA_OK) {
                fail(ctx, s, t->name);
                goto done;
            }
            bytes_out += t->n_bytes;
            continue;
        }
        dtype = t->dtype;
        if ((s = quantize_tensor(ctx, t, &o, &hosts[i])) != CULORA_OK) {
            fail(ctx, s, t->name);
            goto done;
        }
        if ((s = culora_quant_host_save(ctx, hosts[i], w, t->name)) != CULORA_OK) {
            fail(ctx, s, t->name);
            goto done;
        }
        culora_quant_layout lay;
        if (culora_quant_layout_get(ctx, culora_quant_host_desc(hosts[i]), &lay) == CULORA_OK)
            bytes_out += lay.data_bytes + lay.absmax_bytes + lay.absmax_q_bytes + lay.nested_absmax_bytes +
                         lay.nested_code_bytes + 64;
        n_quant++;
    }
    out_file = join(o.out, "model.safetensors");
    if ((s = culora_safetensors_writer_save(ctx, w, out_file)) != CULORA_OK) {
        fail(ctx, s, out_file);
        goto done;
    }

    src_dir = model_dir(o.model);
    cfg_in = join(src_dir, "config.json");
    cfg_out = join(o.out, "config.json");
    json_error_t jerr;
    json_t *cfg = json_load_file(cfg_in, 0, &jerr);
    if (cfg != NULL && json_is_object(cfg)) {
        /* transformers' default keeps lm_head; name the modules only when more were left out */
        bool only_head = true;
        size_t k;
        json_t *v;
        json_array_foreach(skip_modules, k, v)
            only_head = only_head && strstr(json_string_value(v), "lm_head") != NULL;
        json_object_set_new(cfg, "quantization_config",
                            quantization_config(&o, dtype, only_head ? NULL : json_incref(skip_modules)));
        if (json_dump_file(cfg, cfg_out, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
            fprintf(stderr, "culora quantize: cannot write %s\n", cfg_out);
            json_decref(cfg);
            goto done;
        }
        copy_side_files(src_dir, o.out);
    } else {
        fprintf(stderr, "culora quantize: note: no config.json beside %s; wrote weights only\n", o.model);
    }
    json_decref(cfg);
    printf("culora quantize: %zu of %zu tensors quantized to %s%s (blocksize %d), %.1f MB -> %.1f MB: %s\n", n_quant,
           n, culora_quant_format_name(o.format), o.dq ? "-dq" : "", o.format == CULORA_QUANT_INT8 ? 0 : o.blocksize,
           (double)bytes_in / 1e6, (double)bytes_out / 1e6, out_file);
    rc = 0;
done:
    if (hosts != NULL)
        for (size_t i = 0; i < culora_safetensors_count(st); i++)
            culora_quant_host_destroy(hosts[i]);
    free(hosts);
    json_decref(skip_modules);
    culora_safetensors_writer_destroy(w);
    culora_safetensors_close(st);
    culora_context_destroy(ctx);
    free(src_dir);
    free(out_file);
    free(cfg_in);
    free(cfg_out);
    return rc;
}
