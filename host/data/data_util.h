/*
 * data_util.h — small helpers of the data module: growable arrays, whole-file reads, FNV-1a
 * hashing, UTF-8 and the GPT-2 byte ↔ unicode map (internal).
 */
#ifndef CULORA_HOST_DATA_UTIL_H
#define CULORA_HOST_DATA_UTIL_H

#include "context.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Growable array of int32 ids. */
typedef struct culora_ivec {
    int32_t *v;
    size_t n, cap;
} culora_ivec;

/* Growable byte array. */
typedef struct culora_bvec {
    uint8_t *v;
    size_t n, cap;
} culora_bvec;

culora_status culora_ivec_reserve(culora_context *ctx, culora_ivec *a, size_t cap);
culora_status culora_ivec_push(culora_context *ctx, culora_ivec *a, int32_t x);
void culora_ivec_free(culora_ivec *a);

culora_status culora_bvec_reserve(culora_context *ctx, culora_bvec *a, size_t cap);
culora_status culora_bvec_append(culora_context *ctx, culora_bvec *a, const void *src, size_t n);
void culora_bvec_free(culora_bvec *a);

/* Reads a whole file into a malloc'd buffer (NUL added after the last byte). CULORA_ERR_IO with
 * the path and the system's reason. */
culora_status culora_read_whole_file(culora_context *ctx, const char *path, char **data, size_t *n_bytes);

/* FNV-1a, 64 bit, continuing from h (start with CULORA_FNV_OFFSET). */
#define CULORA_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t culora_fnv1a(uint64_t h, const void *data, size_t n);

/* Decodes one UTF-8 code point from s[0..n); returns its length (1..4) and sets *cp, or 0 for an
 * invalid or truncated sequence. */
size_t culora_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Encodes cp (< 0x110000) into out (4 bytes); returns the length. */
size_t culora_utf8_encode(uint32_t cp, uint8_t out[4]);

/* GPT-2 bytes_to_unicode(): the code point byte b is written as in byte-level vocabularies. */
uint32_t culora_byte_to_unicode(uint8_t b);
/* Inverse: the byte code point cp stands for, or -1 when cp is not in the map. */
int culora_unicode_to_byte(uint32_t cp);
/* Converts a vocabulary string (byte-mapped form) to raw bytes into out (capacity >= n bytes).
 * Returns false when s is not valid UTF-8 or holds a code point outside the map. */
bool culora_unmap_bytes(const char *s, size_t n, uint8_t *out, size_t *out_n);

#endif /* CULORA_HOST_DATA_UTIL_H */
