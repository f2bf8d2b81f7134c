/*
 * io_util.c — small path, file and string helpers for host/io.
 */
#define _POSIX_C_SOURCE 200809L
#include "io_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *culora_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

char *culora_path_join(const char *dir, const char *name)
{
    size_t nd = strlen(dir), nn = strlen(name);
    bool slash = nd > 0 && dir[nd - 1] != '/';
    char *p = malloc(nd + nn + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, nd);
    if (slash)
        p[nd++] = '/';
    memcpy(p + nd, name, nn + 1);
    return p;
}

char *culora_path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return culora_strdup(".");
    if (slash == path)
        return culora_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

bool culora_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

bool culora_is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

culora_status culora_read_text_file(culora_context *ctx, const char *path, size_t max_bytes, char **out,
                                    size_t *out_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return culora_fail(ctx, CULORA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    culora_status s = CULORA_OK;
    while (buf != NULL) {
        if (len + 1 >= cap) {
            if (cap > max_bytes) {
                s = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                s = culora_fail(ctx, CULORA_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (buf == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (s != CULORA_OK) {
        free(buf);
        return s;
    }
    buf[len] = '\0';
    *out = buf;
    if (out_len != NULL)
        *out_len = len;
    return CULORA_OK;
}
