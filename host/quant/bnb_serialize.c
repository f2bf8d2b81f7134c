/*
 * bnb_serialize.c — quantized weights in host memory, and their bitsandbytes serialization:
 * the tensors Linear4bit / Linear8bitLt put in a Hugging Face checkpoint (culora_quant.h lists
 * them), read from and written to safetensors through culora_io.h.
 *
 * The 4-bit quant state is JSON in a U8 tensor, written byte for byte as bitsandbytes writes it
 * (QuantState.as_dict(packed=True) → json.dumps): keys in its order, ", " and ": " separators,
 * nested_offset as Python's repr() of the fp32 offset widened to double.
 */
#include "quant_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct culora_quant_host {
    culora_quant_desc desc;
    culora_quant_layout layout;
    culora_st_dtype orig_dtype;
    culora_quant_weight w;      /* host buffers (calloc), NULL where the layout has none */
    float quant_map[16];        /* the 4-bit code, saved as NAME.quant_map */
    uint8_t weight_format;      /* int8: 0 = "row" */
    char state[512];            /* 4-bit quant-state JSON (built by save) */
};

/* ---------------------------------------------------------------------------------------- */
/* Host copies                                                                               */

culora_status culora_quant_host_create(culora_context *ctx, const culora_quant_desc *desc, culora_st_dtype orig_dtype,
                                       culora_quant_host **out)
{
    static const char op[] = "culora_quant_host_create";
    if (out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: out is NULL", op);
    *out = NULL;
    CULORA_TRY(culora_quant_check_desc(ctx, op, desc));
    if (culora_quant_torch_dtype_name(orig_dtype) == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: orig_dtype %s is not F32, F16 or BF16", op,
                           culora_st_dtype_name(orig_dtype));
    culora_quant_host *h = calloc(1, sizeof *h);
    if (h == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", op);
    h->desc = *desc;
    h->orig_dtype = orig_dtype;
    culora_quant_layout_of(desc, &h->layout);
    const culora_quant_layout *l = &h->layout;
    bool ok = true;
#define ALLOC(member, bytes)                                         \
    if ((bytes) > 0) {                                               \
        h->w.member = calloc(1, (bytes));                            \
        ok = ok && h->w.member != NULL;                              \
    }
    ALLOC(data, l->data_bytes)
    ALLOC(absmax, l->absmax_bytes)
    ALLOC(absmax_q, l->absmax_q_bytes)
    ALLOC(nested_absmax, l->nested_absmax_bytes)
    ALLOC(nested_code, l->nested_code_bytes)
    ALLOC(offset, l->offset_bytes)
#undef ALLOC
    if (!ok) {
        culora_quant_host_destroy(h);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes of packed weight", op,
                           l->data_bytes);
    }
    if (culora_quant_is_4bit(desc->format)) {
        struct culora_code4 c4;
        culora_code4_get(desc->format, &c4);
        memcpy(h->quant_map, c4.code, sizeof h->quant_map);
    }
    *out = h;
    return CULORA_OK;
}

void culora_quant_host_destroy(culora_quant_host *h)
{
    if (h == NULL)
        return;
    free(h->w.data);
    free(h->w.absmax);
    free(h->w.absmax_q);
    free(h->w.nested_absmax);
    free(h->w.nested_code);
    free(h->w.offset);
    free(h);
}

const culora_quant_desc *culora_quant_host_desc(const culora_quant_host *h) { return h ? &h->desc : NULL; }
const culora_quant_weight *culora_quant_host_weight(const culora_quant_host *h) { return h ? &h->w : NULL; }
culora_st_dtype culora_quant_host_orig_dtype(const culora_quant_host *h) { return h ? h->orig_dtype : CULORA_ST_F32; }

/* ---------------------------------------------------------------------------------------- */
/* Python repr() of a double (shortest round-trip digits; fixed notation for 1e-4 <= |v| < 1e16) */

static void py_float_repr(double v, char *out, size_t n)
{
    if (v == 0.0) {
        snprintf(out, n, "%s", signbit(v) ? "-0.0" : "0.0");
        return;
    }
    char sci[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, v);
        if (strtod(sci, NULL) == v)
            break;
    }
    /* sci = [-]d[.ddd]e±XX */
    char digits[24];
    int nd = 0;
    const char *s = sci;
    const bool neg = *s == '-';
    if (neg)
        s++;
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            digits[nd++] = *s;
    digits[nd] = '\0';
    const int e = atoi(s + 1);
    char buf[64];
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    if (e < -4 || e >= 16) {
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%c", digits[0]);
        if (nd > 1)
            o += (size_t)snprintf(buf + o, sizeof buf - o, ".%s", digits + 1);
        snprintf(buf + o, sizeof buf - o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (e < 0) {
        o += (size_t)snprintf(buf + o, sizeof buf - o, "0.");
        for (int i = 0; i < -e - 1; i++)
            buf[o++] = '0';
        snprintf(buf + o, sizeof buf - o, "%s", digits);
    } else {
        for (int i = 0; i <= e || i < nd; i++) {
            if (i == e + 1)
                buf[o++] = '.';
            buf[o++] = i < nd ? digits[i] : '0';
        }
        if (nd <= e + 1) {
            buf[o++] = '.';
            buf[o++] = '0';
        }
        buf[o] = '\0';
    }
    const size_t len = strlen(buf);
    if (len < n)
        memcpy(out, buf, len + 1);
    else if (n > 0)
        out[0] = '\0';
}

/* ---------------------------------------------------------------------------------------- */
/* Save                                                                                      */

static const char *quant_type_of(int32_t format) { return format == CULORA_QUANT_FP4 ? "fp4" : "nf4"; }

culora_status culora_quant_host_save(culora_context *ctx, culora_quant_host *h, culora_safetensors_writer *w,
                                     const char *name)
{
    static const char op[] = "culora_quant_host_save";
    if (h == NULL || w == NULL || name == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op, h == NULL ? "h" : w == NULL ? "w" : "name");
    const culora_quant_desc *d = &h->desc;
    const culora_quant_layout *l = &h->layout;
    const size_t nlen = strlen(name);
    char key[1024];
    if (nlen + 48 > sizeof key)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: tensor name of %zu bytes is too long", op, nlen);

    if (d->format == CULORA_QUANT_INT8) {
        if (nlen < 6 || strcmp(name + nlen - 6, "weight") != 0)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                               "%s: int8 weight name '%s' must end in \"weight\" (its scales are saved as PREFIX \"SCB\")",
                               op, name);
        const int64_t shape[2] = {d->rows, d->cols};
        CULORA_TRY(culora_safetensors_writer_add(ctx, w, name, CULORA_ST_I8, 2, shape, h->w.data, l->data_bytes));
        snprintf(key, sizeof key, "%.*sSCB", (int)(nlen - 6), name);
        CULORA_TRY(culora_safetensors_writer_add(ctx, w, key, CULORA_ST_F32, 1, &d->rows, h->w.absmax, l->absmax_bytes));
        snprintf(key, sizeof key, "%.*sweight_format", (int)(nlen - 6), name);
        h->weight_format = 0;
        return culora_safetensors_writer_add(ctx, w, key, CULORA_ST_U8, 0, NULL, &h->weight_format, 1);
    }

    const bool dq = culora_quant_is_dq(d);
    const char *qt = quant_type_of(d->format);
    int len = snprintf(h->state, sizeof h->state,
                       "{\"quant_type\": \"%s\", \"blocksize\": %d, \"dtype\": \"%s\", \"shape\": [%lld, %lld]", qt,
                       (int)d->blocksize, culora_quant_torch_dtype_name(h->orig_dtype), (long long)d->rows,
                       (long long)d->cols);
    if (dq) {
        char off[64];
        py_float_repr((double)*h->w.offset, off, sizeof off);
        len += snprintf(h->state + len, sizeof h->state - (size_t)len,
                        ", \"nested_blocksize\": %d, \"nested_dtype\": \"float32\", \"nested_offset\": %s",
                        CULORA_QUANT_NESTED_BLOCKSIZE, off);
    }
    len += snprintf(h->state + len, sizeof h->state - (size_t)len, "}");

    const int64_t packed_shape[2] = {(int64_t)l->data_bytes, 1};
    CULORA_TRY(culora_safetensors_writer_add(ctx, w, name, CULORA_ST_U8, 2, packed_shape, h->w.data, l->data_bytes));
    snprintf(key, sizeof key, "%s.absmax", name);
    if (dq)
        CULORA_TRY(culora_safetensors_writer_add(ctx, w, key, CULORA_ST_U8, 1, &l->n_blocks, h->w.absmax_q,
                                                 l->absmax_q_bytes));
    else
        CULORA_TRY(culora_safetensors_writer_add(ctx, w, key, CULORA_ST_F32, 1, &l->n_blocks, h->w.absmax,
                                                 l->absmax_bytes));
    const int64_t n16 = 16, n256 = 256, n_state = len;
    snprintf(key, sizeof key, "%s.quant_map", name);
    CULORA_TRY(culora_safetensors_writer_add(ctx, w, key, CULORA_ST_F32, 1, &n16, h->quant_map, sizeof h->quant_map));
    if (dq) {
        snprintf(key, sizeof key, "%s.nested_absmax", name);
        CULORA_TRY(culora_safetensors_writer_add(ctx, w, key, CULORA_ST_F32, 1, &l->n_nested_blocks,
                                                 h->w.nested_absmax, l->nested_absmax_bytes));
        snprintf(key, sizeof key, "%s.nested_quant_map", name);
        CULORA_TRY(culora_safetensors_writer_add(ctx, w, key, CULORA_ST_F32, 1, &n256, h->w.nested_code,
                                                 l->nested_code_bytes));
    }
    snprintf(key, sizeof key, "%s.quant_state.bitsandbytes__%s", name, qt);
    return culora_safetensors_writer_add(ctx, w, key, CULORA_ST_U8, 1, &n_state, h->state, (uint64_t)len);
}

/* ---------------------------------------------------------------------------------------- */
/* Load                                                                                      */

static const culora_tensor_info *find_suffix(const culora_safetensors *st, const char *name, const char *suffix)
{
    char key[1024];
    const size_t a = strlen(name), b = strlen(suffix);
    if (a + b + 1 > sizeof key)
        return NULL;
    memcpy(key, name, a);
    memcpy(key + a, suffix, b + 1);
    return culora_safetensors_find(st, key);
}

/* PREFIX of an int8 weight NAME = PREFIX "weight", or NULL-terminated failure. */
static bool int8_prefix(const char *name, char *prefix, size_t n)
{
    const size_t len = strlen(name);
    if (len < 6 || strcmp(name + len - 6, "weight") != 0 || len - 6 + 1 > n)
        return false;
    memcpy(prefix, name, len - 6);
    prefix[len - 6] = '\0';
    return true;
}

int32_t culora_quant_probe(const culora_safetensors *st, const char *name)
{
    if (st == NULL || name == NULL)
        return 0;
    if (find_suffix(st, name, ".quant_state.bitsandbytes__nf4"))
        return CULORA_QUANT_NF4;
    if (find_suffix(st, name, ".quant_state.bitsandbytes__fp4"))
        return CULORA_QUANT_FP4;
    char prefix[1024];
    const culora_tensor_info *t = culora_safetensors_find(st, name);
    if (t != NULL && t->dtype == CULORA_ST_I8 && int8_prefix(name, prefix, sizeof prefix) &&
        find_suffix(st, prefix, "SCB"))
        return CULORA_QUANT_INT8;
    return 0;
}

/* Checks dtype and element count of tensor t (named for messages) and copies it into dst. */
static culora_status take(culora_context *ctx, const char *op, const culora_tensor_info *t, const char *what,
                          culora_st_dtype dtype, int64_t n_elems, void *dst, size_t bytes)
{
    if (t == NULL)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor %s is missing", op, what);
    if (t->dtype != dtype)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' has dtype %s; %s expected", op, t->name,
                           culora_st_dtype_name(t->dtype), culora_st_dtype_name(dtype));
    if (t->n_elems != n_elems || t->n_bytes != bytes)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' has %lld elements; %lld expected", op, t->name,
                           (long long)t->n_elems, (long long)n_elems);
    memcpy(dst, t->data, bytes);
    return CULORA_OK;
}

static culora_st_dtype dtype_from_torch(const char *s)
{
    if (strcmp(s, "bfloat16") == 0) return CULORA_ST_BF16;
    if (strcmp(s, "float16") == 0) return CULORA_ST_F16;
    if (strcmp(s, "float32") == 0) return CULORA_ST_F32;
    return CULORA_ST_DTYPE_COUNT;
}

static culora_status load_int8(culora_context *ctx, const char *op, const culora_safetensors *st, const char *name,
                               culora_quant_host **out)
{
    char prefix[1024], what[1100];
    const culora_tensor_info *t = culora_safetensors_find(st, name);
    if (!int8_prefix(name, prefix, sizeof prefix))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: int8 weight name '%s' must end in \"weight\"", op, name);
    if (t->n_dims != 2)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: int8 tensor '%s' has %d dims; [rows, cols] expected", op, name,
                           (int)t->n_dims);
    const culora_tensor_info *fmt = find_suffix(st, prefix, "weight_format");
    if (fmt != NULL) {
        uint8_t f = 1;
        if (fmt->dtype != CULORA_ST_U8 || fmt->n_elems != 1)
            return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' must be a U8 scalar", op, fmt->name);
        memcpy(&f, fmt->data, 1);
        if (f != 0)
            return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                               "%s: tensor '%s' = %d: only the row-wise int8 layout (0, \"row\") is supported", op,
                               fmt->name, (int)f);
    }
    culora_quant_desc d = CULORA_QUANT_DESC_INIT;
    d.format = CULORA_QUANT_INT8;
    d.rows = t->shape[0];
    d.cols = t->shape[1];
    CULORA_TRY(culora_quant_host_create(ctx, &d, CULORA_ST_F16, out));
    culora_quant_host *h = *out;
    culora_status s;
    snprintf(what, sizeof what, "'%s'", name);
    CULORA_TRY_GOTO(s, take(ctx, op, t, what, CULORA_ST_I8, d.rows * d.cols, h->w.data, h->layout.data_bytes), fail);
    snprintf(what, sizeof what, "'%sSCB'", prefix);
    CULORA_TRY_GOTO(s, take(ctx, op, find_suffix(st, prefix, "SCB"), what, CULORA_ST_F32, d.rows, h->w.absmax,
                            h->layout.absmax_bytes), fail);
    return CULORA_OK;
fail:
    culora_quant_host_destroy(h);
    *out = NULL;
    return s;
}

static culora_status load_4bit(culora_context *ctx, const char *op, const culora_safetensors *st, const char *name,
                               int32_t format, culora_quant_host **out)
{
    const char *qt = quant_type_of(format);
    char suffix[64], what[1100];
    snprintf(suffix, sizeof suffix, ".quant_state.bitsandbytes__%s", qt);
    const culora_tensor_info *ts = find_suffix(st, name, suffix);
    if (ts->dtype != CULORA_ST_U8 || ts->n_dims != 1)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' must be U8 [len] (JSON)", op, ts->name);
    json_error_t jerr;
    json_t *js = json_loadb((const char *)ts->data, (size_t)ts->n_bytes, 0, &jerr);
    if (js == NULL || !json_is_object(js)) {
        json_decref(js);
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: tensor '%s' is not a JSON object: %s", op, ts->name,
                           jerr.text);
    }
    culora_status s = CULORA_OK;
    culora_quant_host *h = NULL;
    const json_t *jqt = json_object_get(js, "quant_type"), *jbs = json_object_get(js, "blocksize"),
                 *jdt = json_object_get(js, "dtype"), *jsh = json_object_get(js, "shape"),
                 *jnbs = json_object_get(js, "nested_blocksize"), *jndt = json_object_get(js, "nested_dtype"),
                 *joff = json_object_get(js, "nested_offset");
    culora_quant_desc d = CULORA_QUANT_DESC_INIT;
    d.format = format;
    if (!json_is_string(jqt) || strcmp(json_string_value(jqt), qt) != 0) {
        s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: '%s': quant_type must be \"%s\"", op, ts->name, qt);
        goto done;
    }
    if (!json_is_integer(jbs) || !json_is_string(jdt) || !json_is_array(jsh)) {
        s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: '%s': blocksize (integer), dtype (string) and shape (list) are "
                                                "required", op, ts->name);
        goto done;
    }
    const culora_st_dtype orig = dtype_from_torch(json_string_value(jdt));
    if (orig == CULORA_ST_DTYPE_COUNT) {
        s = culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: '%s': dtype \"%s\" (float32, float16, bfloat16 supported)",
                        op, ts->name, json_string_value(jdt));
        goto done;
    }
    if (json_array_size(jsh) != 2 || !json_is_integer(json_array_get(jsh, 0)) ||
        !json_is_integer(json_array_get(jsh, 1))) {
        s = culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: '%s': shape must be [rows, cols] (2-D weights only)", op,
                        ts->name);
        goto done;
    }
    d.rows = (int64_t)json_integer_value(json_array_get(jsh, 0));
    d.cols = (int64_t)json_integer_value(json_array_get(jsh, 1));
    const json_int_t bs = json_integer_value(jbs);
    if (bs != 32 && bs != 64 && bs != 128 && bs != 256) {
        s = culora_fail(ctx, bs >= 512 && bs <= 4096 ? CULORA_ERR_UNSUPPORTED : CULORA_ERR_FORMAT,
                        "%s: '%s': blocksize %lld (culora supports 32, 64, 128, 256)", op, ts->name, (long long)bs);
        goto done;
    }
    d.blocksize = (int32_t)bs;
    const bool dq = jnbs != NULL || joff != NULL;
    if (dq) {
        if (!json_is_integer(jnbs) || json_integer_value(jnbs) != CULORA_QUANT_NESTED_BLOCKSIZE ||
            !json_is_string(jndt) || strcmp(json_string_value(jndt), "float32") != 0 || !json_is_number(joff)) {
            s = culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                            "%s: '%s': double quantization needs nested_blocksize 256, nested_dtype \"float32\" and a "
                            "numeric nested_offset", op, ts->name);
            goto done;
        }
        d.flags |= CULORA_QUANT_DOUBLE_QUANT;
    }
    if (culora_quant_check_desc(ctx, op, &d) != CULORA_OK) {
        s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: '%s': shape [%lld, %lld] with blocksize %d is not a valid 4-bit "
                                                "weight for culora", op, ts->name, (long long)d.rows,
                        (long long)d.cols, (int)d.blocksize);
        goto done;
    }
    CULORA_TRY_GOTO(s, culora_quant_host_create(ctx, &d, orig, &h), done);
    const culora_quant_layout *l = &h->layout;

    const culora_tensor_info *tw = culora_safetensors_find(st, name);
    if (tw != NULL && tw->dtype != CULORA_ST_U8) {
        s = culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: '%s' is stored as %s (bnb_4bit_quant_storage); only uint8 "
                                                     "is supported", op, name, culora_st_dtype_name(tw->dtype));
        goto done;
    }
    snprintf(what, sizeof what, "'%s'", name);
    CULORA_TRY_GOTO(s, take(ctx, op, tw, what, CULORA_ST_U8, (int64_t)l->data_bytes, h->w.data, l->data_bytes), done);
    snprintf(what, sizeof what, "'%s.absmax'", name);
    if (dq)
        CULORA_TRY_GOTO(s, take(ctx, op, find_suffix(st, name, ".absmax"), what, CULORA_ST_U8, l->n_blocks,
                                h->w.absmax_q, l->absmax_q_bytes), done);
    else
        CULORA_TRY_GOTO(s, take(ctx, op, find_suffix(st, name, ".absmax"), what, CULORA_ST_F32, l->n_blocks,
                                h->w.absmax, l->absmax_bytes), done);
    float qmap[16];
    snprintf(what, sizeof what, "'%s.quant_map'", name);
    CULORA_TRY_GOTO(s, take(ctx, op, find_suffix(st, name, ".quant_map"), what, CULORA_ST_F32, 16, qmap, sizeof qmap),
                    done);
    if (memcmp(qmap, h->quant_map, sizeof qmap) != 0) {
        s = culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "%s: '%s.quant_map' differs from bitsandbytes' %s code", op, name,
                        qt);
        goto done;
    }
    if (dq) {
        snprintf(what, sizeof what, "'%s.nested_absmax'", name);
        CULORA_TRY_GOTO(s, take(ctx, op, find_suffix(st, name, ".nested_absmax"), what, CULORA_ST_F32,
                                l->n_nested_blocks, h->w.nested_absmax, l->nested_absmax_bytes), done);
        snprintf(what, sizeof what, "'%s.nested_quant_map'", name);
        CULORA_TRY_GOTO(s, take(ctx, op, find_suffix(st, name, ".nested_quant_map"), what, CULORA_ST_F32, 256,
                                h->w.nested_code, l->nested_code_bytes), done);
        *h->w.offset = (float)json_number_value(joff);
    }
done:
    json_decref(js);
    if (s != CULORA_OK) {
        culora_quant_host_destroy(h);
        return s;
    }
    *out = h;
    return CULORA_OK;
}

culora_status culora_quant_host_load(culora_context *ctx, const culora_safetensors *st, const char *name,
                                     culora_quant_host **out)
{
    static const char op[] = "culora_quant_host_load";
    if (out == NULL || st == NULL || name == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "%s: %s is NULL", op,
                           out == NULL ? "out" : st == NULL ? "st" : "name");
    *out = NULL;
    const int32_t format = culora_quant_probe(st, name);
    if (format == 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT,
                           "%s: '%s' is not a bitsandbytes-quantized weight (no '%s.quant_state.bitsandbytes__nf4|fp4', "
                           "no I8 tensor with SCB)", op, name, name);
    if (format == CULORA_QUANT_INT8)
        return load_int8(ctx, op, st, name, out);
    return load_4bit(ctx, op, st, name, format, out);
}
