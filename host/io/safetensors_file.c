/*
 * safetensors_file.c — opening one safetensors file: open, fstat, mmap read-only, validate.
 */
#define _POSIX_C_SOURCE 200809L
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void culora_st_unmap(culora_st_file *f)
{
    if (f->mapped && f->bytes != NULL)
        munmap((void *)f->bytes, f->size);
    f->bytes = NULL;
    f->size = 0;
    f->mapped = false;
}

culora_status culora_st_file_open(culora_context *ctx, const char *path, culora_st_file *out)
{
    memset(out, 0, sizeof *out);
    out->path = culora_strdup(path);
    if (out->path == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);

    culora_status s = CULORA_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s = culora_fail(ctx, CULORA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        s = culora_fail(ctx, CULORA_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        s = culora_fail(ctx, CULORA_ERR_IO, "%s: not a regular file", path);
        close(fd);
        goto fail;
    }
    size_t size = (size_t)sb.st_size;
    if (size >= 8) { /* shorter files are refused by the parser; mmap of 0 bytes is an error */
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            s = culora_fail(ctx, CULORA_ERR_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(errno));
            close(fd);
            goto fail;
        }
        out->bytes = p;
        out->mapped = true;
    }
    out->size = size;
    close(fd);

    static const uint8_t empty[1] = {0};
    s = culora_st_parse(ctx, path, out->bytes ? out->bytes : empty, size, out);
    if (s != CULORA_OK)
        goto fail;
    return CULORA_OK;

fail:
    culora_st_file_release(out);
    return s;
}
