/*
 * io_internal.h — shared by the files of host/io: one parsed safetensors file, the atomic file
 * writer, path and JSON helpers. Not installed.
 */
#ifndef CULORA_HOST_IO_INTERNAL_H
#define CULORA_HOST_IO_INTERNAL_H

#include "culora/culora_io.h"
#include "context.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header the reader accepts (the reference's MAX_HEADER_SIZE). */
#define CULORA_ST_MAX_HEADER_BYTES ((uint64_t)100000000)
/* Largest dimension the reader accepts (the schema's 2^48 - 1). */
#define CULORA_ST_MAX_DIM ((int64_t)(((uint64_t)1 << 48) - 1))

/* ---- dtypes (st_dtype.c) ------------------------------------------------------------------ */

/* Parses a header dtype string; false when unknown. */
bool culora_st_dtype_parse(const char *name, culora_st_dtype *out);

/* ---- one safetensors file (safetensors_parse.c, safetensors_file.c) ----------------------- */

typedef struct culora_st_tensor {
    culora_tensor_info info; /* name, shape owned here; data points into the file's bytes */
    uint64_t begin, end;     /* data_offsets, relative to the data region */
} culora_st_tensor;

typedef struct culora_st_file {
    char *path;              /* owned copy of the path (used in messages) */
    const uint8_t *bytes;    /* whole file contents (mapping, or a caller's buffer) */
    size_t size;
    bool mapped;             /* bytes is an mmap of size bytes */
    uint64_t header_len;     /* N */
    size_t n_tensors;        /* in header order */
    culora_st_tensor *tensors;
    size_t n_meta;           /* __metadata__ entries in header order */
    char **meta_keys;
    char **meta_values;
} culora_st_file;

/* Validates the safetensors bytes buf[0..size) and fills *out (tensors point into buf, which
 * must outlive *out). name is used in messages only. On failure *out is left empty. */
culora_status culora_st_parse(culora_context *ctx, const char *name, const uint8_t *buf, size_t size,
                              culora_st_file *out);
/* Opens path, maps it and parses it. */
culora_status culora_st_file_open(culora_context *ctx, const char *path, culora_st_file *out);
/* Unmaps f's bytes when they are a mapping (safetensors_file.c). */
void culora_st_unmap(culora_st_file *f);
/* Frees what culora_st_parse / culora_st_file_open filled in (unmaps a mapping). */
void culora_st_file_release(culora_st_file *f);

/* ---- atomic files (atomic_file.c) -------------------------------------------------------- */

typedef struct culora_atomic_file {
    int fd;                  /* -1 when closed */
    char *path;              /* final path */
    char *tmp_path;          /* temporary sibling */
} culora_atomic_file;

/* Creates a temporary file next to path (mode 0666 & ~umask). */
culora_status culora_atomic_open(culora_context *ctx, const char *path, culora_atomic_file *af);
/* Writes all n bytes (retrying short writes and EINTR). */
culora_status culora_atomic_write(culora_context *ctx, culora_atomic_file *af, const void *buf, size_t n);
/* fsync, close, rename over path, fsync the directory. On failure the temporary is removed. */
culora_status culora_atomic_commit(culora_context *ctx, culora_atomic_file *af);
/* Closes and removes the temporary (after a failure). Safe to call twice. */
void culora_atomic_abort(culora_atomic_file *af);
/* Whole-file convenience: open, write, commit. */
culora_status culora_write_file_atomic(culora_context *ctx, const char *path, const void *buf, size_t n);

/* ---- paths and JSON (io_util.c) ---------------------------------------------------------- */

/* malloc'd "dir/name" (dir "" gives name). NULL when out of memory. */
char *culora_path_join(const char *dir, const char *name);
/* malloc'd directory part of path ("." when it has none). */
char *culora_path_dirname(const char *path);
/* malloc'd copy; NULL in, NULL out. */
char *culora_strdup(const char *s);
bool culora_is_dir(const char *path);
bool culora_is_file(const char *path);
/* Reads a whole (small) file into a malloc'd NUL-terminated buffer; ERR_IO on failure. */
culora_status culora_read_text_file(culora_context *ctx, const char *path, size_t max_bytes, char **out,
                                    size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_IO_INTERNAL_H */
