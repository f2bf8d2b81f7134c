/*
 * atomic_file.c — write-then-rename: a temporary sibling file, fsync, rename over the target,
 * fsync of the directory. Readers see the old file or the new one, never a partial one; a
 * failure at any step leaves the old file as it was and removes the temporary.
 */
#define _POSIX_C_SOURCE 200809L
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void culora_atomic_abort(culora_atomic_file *af)
{
    if (af == NULL)
        return;
    if (af->fd >= 0)
        close(af->fd);
    af->fd = -1;
    if (af->tmp_path != NULL)
        unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
    af->tmp_path = NULL;
    af->path = NULL;
}

culora_status culora_atomic_open(culora_context *ctx, const char *path, culora_atomic_file *af)
{
    af->fd = -1;
    af->path = culora_strdup(path);
    size_t n = strlen(path) + 48;
    af->tmp_path = malloc(n);
    if (af->path == NULL || af->tmp_path == NULL) {
        culora_atomic_abort(af);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    /* O_EXCL with a pid-and-attempt name: two writers never share a temporary, and the mode
     * follows the umask like any newly created file. */
    for (unsigned attempt = 0; attempt < 1000; attempt++) {
        snprintf(af->tmp_path, n, "%s.tmp.%ld.%u", path, (long)getpid(), attempt);
        af->fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (af->fd >= 0)
            return CULORA_OK;
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    free(af->tmp_path);
    af->tmp_path = NULL; /* nothing was created */
    culora_atomic_abort(af);
    return culora_fail(ctx, CULORA_ERR_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
}

culora_status culora_atomic_write(culora_context *ctx, culora_atomic_file *af, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(af->fd, p, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return culora_fail(ctx, CULORA_ERR_IO, "%s: write failed: %s", af->tmp_path,
                               w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return CULORA_OK;
}

static culora_status fsync_dir(culora_context *ctx, const char *path)
{
    char *dir = culora_path_dirname(path);
    if (dir == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    culora_status s = CULORA_OK;
    if (fd < 0 || fsync(fd) != 0)
        s = culora_fail(ctx, CULORA_ERR_IO, "%s: cannot sync directory %s: %s", path, dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return s;
}

culora_status culora_atomic_commit(culora_context *ctx, culora_atomic_file *af)
{
    culora_status s = CULORA_OK;
    if (fsync(af->fd) != 0) {
        s = culora_fail(ctx, CULORA_ERR_IO, "%s: fsync failed: %s", af->tmp_path, strerror(errno));
        goto fail;
    }
    int rc = close(af->fd);
    af->fd = -1;
    if (rc != 0) {
        s = culora_fail(ctx, CULORA_ERR_IO, "%s: close failed: %s", af->tmp_path, strerror(errno));
        goto fail;
    }
    if (rename(af->tmp_path, af->path) != 0) {
        s = culora_fail(ctx, CULORA_ERR_IO, "%s: cannot rename %s over it: %s", af->path, af->tmp_path,
                        strerror(errno));
        goto fail;
    }
    free(af->tmp_path);
    af->tmp_path = NULL; /* renamed: nothing to remove any more */
    s = fsync_dir(ctx, af->path);
    free(af->path);
    af->path = NULL;
    return s;
fail:
    culora_atomic_abort(af);
    return s;
}

culora_status culora_write_file_atomic(culora_context *ctx, const char *path, const void *buf, size_t n)
{
    culora_atomic_file af;
    CULORA_TRY(culora_atomic_open(ctx, path, &af));
    culora_status s = culora_atomic_write(ctx, &af, buf, n);
    if (s != CULORA_OK) {
        culora_atomic_abort(&af);
        return s;
    }
    return culora_atomic_commit(ctx, &af);
}
