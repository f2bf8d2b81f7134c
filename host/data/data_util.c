/*
 * data_util.c — growable arrays, whole-file reads, FNV-1a, UTF-8 and the GPT-2 byte ↔ unicode
 * map used by the tokenizers and the dataset.
 */
#include "data/data_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable arrays ------------------------------------------------------------------- */

culora_status culora_ivec_reserve(culora_context *ctx, culora_ivec *a, size_t cap)
{
    if (cap <= a->cap)
        return CULORA_OK;
    size_t c = a->cap ? a->cap : 16;
    while (c < cap)
        c *= 2;
    int32_t *v = realloc(a->v, c * sizeof *v);
    if (v == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory growing an id array to %zu", c);
    a->v = v;
    a->cap = c;
    return CULORA_OK;
}

culora_status culora_ivec_push(culora_context *ctx, culora_ivec *a, int32_t x)
{
    if (a->n == a->cap)
        CULORA_TRY(culora_ivec_reserve(ctx, a, a->n + 1));
    a->v[a->n++] = x;
    return CULORA_OK;
}

void culora_ivec_free(culora_ivec *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

culora_status culora_bvec_reserve(culora_context *ctx, culora_bvec *a, size_t cap)
{
    if (cap <= a->cap)
        return CULORA_OK;
    size_t c = a->cap ? a->cap : 64;
    while (c < cap)
        c *= 2;
    uint8_t *v = realloc(a->v, c);
    if (v == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory growing a buffer to %zu bytes", c);
    a->v = v;
    a->cap = c;
    return CULORA_OK;
}

culora_status culora_bvec_append(culora_context *ctx, culora_bvec *a, const void *src, size_t n)
{
    CULORA_TRY(culora_bvec_reserve(ctx, a, a->n + n));
    if (n > 0)
        memcpy(a->v + a->n, src, n);
    a->n += n;
    return CULORA_OK;
}

void culora_bvec_free(culora_bvec *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* ---- files ----------------------------------------------------------------------------- */

culora_status culora_read_whole_file(culora_context *ctx, const char *path, char **data, size_t *n_bytes)
{
    *data = NULL;
    *n_bytes = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return culora_fail(ctx, CULORA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    culora_bvec b = {0};
    culora_status s = CULORA_OK;
    for (;;) {
        s = culora_bvec_reserve(ctx, &b, b.n + 65536);
        if (s != CULORA_OK)
            break;
        size_t got = fread(b.v + b.n, 1, b.cap - b.n, f);
        b.n += got;
        if (got == 0) {
            if (ferror(f))
                s = culora_fail(ctx, CULORA_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (s == CULORA_OK)
        s = culora_bvec_reserve(ctx, &b, b.n + 1);
    if (s != CULORA_OK) {
        culora_bvec_free(&b);
        return s;
    }
    b.v[b.n] = 0;
    *data = (char *)b.v;
    *n_bytes = b.n;
    return CULORA_OK;
}

/* ---- hashing --------------------------------------------------------------------------- */

uint64_t culora_fnv1a(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- UTF-8 ----------------------------------------------------------------------------- */

size_t culora_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

size_t culora_utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- GPT-2 byte ↔ unicode ---------------------------------------------------------------
 * Bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for themselves; the other 68 bytes (0..32,
 * 127..160, 173), in increasing order, are written as U+0100, U+0101, ... (so ' ' is 'Ġ'). */

static bool printable_byte(unsigned b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

uint32_t culora_byte_to_unicode(uint8_t b)
{
    if (printable_byte(b))
        return b;
    if (b <= 32)
        return 256u + b;
    if (b <= 160)
        return 256u + 33u + (uint32_t)(b - 127);
    return 256u + 67u; /* 173 */
}

int culora_unicode_to_byte(uint32_t cp)
{
    if (cp < 256)
        return printable_byte(cp) ? (int)cp : -1;
    uint32_t k = cp - 256;
    if (k < 33)
        return (int)k;
    if (k < 67)
        return (int)(127 + k - 33);
    if (k == 67)
        return 173;
    return -1;
}

bool culora_unmap_bytes(const char *s, size_t n, uint8_t *out, size_t *out_n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = culora_utf8_decode(p + i, n - i, &cp);
        if (len == 0)
            return false;
        int b = culora_unicode_to_byte(cp);
        if (b < 0)
            return false;
        out[o++] = (uint8_t)b;
        i += len;
    }
    *out_n = o;
    return true;
}
