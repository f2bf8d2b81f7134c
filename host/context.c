/*
 * context.c — culora_context: create/destroy, error recording, backend memory calls.
 */
#include "context.h"
#include "backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CULORA_DEFAULT_WORKSPACE_BYTES ((size_t)32 << 20) /* cuBLAS's recommendation on sm_90 */

static void vrecord(culora_context *ctx, const char *fmt, va_list ap)
{
    if (ctx != NULL)
        vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
}

culora_status culora_fail(culora_context *ctx, culora_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(ctx, fmt, ap);
    va_end(ap);
    return status;
}

culora_status culora_fail_sticky(culora_context *ctx, culora_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(ctx, fmt, ap);
    va_end(ap);
    if (ctx != NULL)
        ctx->sticky = status;
    return status;
}

void culora_msg_prefix(culora_context *ctx, const char *what)
{
    if (ctx == NULL || what == NULL)
        return;
    char tmp[CULORA_MSG_BYTES];
    memcpy(tmp, ctx->msg, sizeof tmp);
    size_t n = strlen(what);
    if (n + 2 >= sizeof ctx->msg)
        return;
    memcpy(ctx->msg, what, n);
    memcpy(ctx->msg + n, ": ", 2);
    size_t rest = sizeof ctx->msg - n - 3;
    size_t len = 0;
    while (len < rest && tmp[len] != '\0')
        len++;
    memcpy(ctx->msg + n + 2, tmp, len);
    ctx->msg[n + 2 + len] = '\0';
}

culora_status culora_context_check(culora_context *ctx)
{
    if (ctx == NULL)
        return CULORA_ERR_INVALID_ARG;
    if (ctx->sticky != CULORA_OK)
        return ctx->sticky; /* message of the original failure is kept */
    if (ctx->be == NULL)
        return culora_fail(ctx, CULORA_ERR_MISUSE, "context was not created successfully");
    return CULORA_OK;
}

static culora_status create_backend(culora_context *ctx, const culora_context_params *p)
{
    switch (p->backend) {
    case CULORA_BACKEND_CPU:
        return culora_backend_cpu_create(ctx, p, &ctx->be);
    case CULORA_BACKEND_CUDA:
        return culora_backend_cuda_create(ctx, p, &ctx->be);
    case CULORA_BACKEND_AUTO:
        if (culora_cuda_device_count() > 0)
            return culora_backend_cuda_create(ctx, p, &ctx->be);
        return culora_backend_cpu_create(ctx, p, &ctx->be);
    default:
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_context_create: params->backend = %d is not a culora_backend_kind",
                           (int)p->backend);
    }
}

culora_status culora_context_create(const culora_context_params *params, culora_context **out)
{
    if (out == NULL)
        return CULORA_ERR_INVALID_ARG;
    *out = NULL;
    culora_context *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return CULORA_ERR_OUT_OF_MEMORY;
    *out = ctx;
    if (params == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_context_create: params is NULL");
    if (params->struct_size != sizeof(culora_context_params) || params->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_context_create: params not initialised with CULORA_CONTEXT_PARAMS_INIT "
                           "(struct_size %u, api_version %u; expected %zu, %u)",
                           params->struct_size, params->api_version, sizeof(culora_context_params),
                           CULORA_API_VERSION);
    if (params->n_threads < 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_context_create: n_threads = %d is negative",
                           (int)params->n_threads);

    culora_status s = create_backend(ctx, params);
    if (s != CULORA_OK) {
        ctx->be = NULL;
        return s;
    }
    ctx->kind = params->backend == CULORA_BACKEND_AUTO
                    ? (strcmp(ctx->be->iface->name, "cuda") == 0 ? CULORA_BACKEND_CUDA : CULORA_BACKEND_CPU)
                    : (culora_backend_kind)params->backend;

    if (params->workspace != NULL) {
        ctx->workspace = params->workspace;
        ctx->workspace_bytes = params->workspace_bytes;
    } else {
        size_t bytes = params->workspace_bytes ? params->workspace_bytes : CULORA_DEFAULT_WORKSPACE_BYTES;
        s = ctx->be->iface->alloc(ctx->be, bytes, &ctx->workspace);
        if (s != CULORA_OK) {
            culora_msg_prefix(ctx, "culora_context_create: default workspace");
            ctx->be->iface->destroy(ctx->be);
            ctx->be = NULL;
            return s;
        }
        ctx->workspace_bytes = bytes;
        ctx->owns_workspace = true;
    }
    ctx->msg[0] = '\0';
    return CULORA_OK;
}

void culora_context_destroy(culora_context *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->be != NULL) {
        if (ctx->be->iface->synchronize != NULL)
            (void)ctx->be->iface->synchronize(ctx->be, NULL);
        if (ctx->owns_workspace)
            ctx->be->iface->free(ctx->be, ctx->workspace);
        ctx->be->iface->destroy(ctx->be);
    }
    free(ctx);
}

const char *culora_context_last_error(const culora_context *ctx)
{
    if (ctx == NULL)
        return "no context (NULL)";
    return ctx->msg;
}

culora_backend_kind culora_context_backend(const culora_context *ctx)
{
    return ctx != NULL && ctx->be != NULL ? ctx->kind : CULORA_BACKEND_AUTO;
}

const char *culora_context_backend_name(const culora_context *ctx)
{
    return ctx != NULL && ctx->be != NULL ? ctx->be->iface->name : "none";
}

const char *culora_context_device_name(const culora_context *ctx)
{
    return ctx != NULL && ctx->be != NULL ? ctx->be->device_name : "none";
}

culora_stream culora_context_stream(const culora_context *ctx)
{
    return ctx != NULL && ctx->be != NULL ? ctx->be->stream : NULL;
}

culora_dtype culora_context_compute_dtype(const culora_context *ctx)
{
    return ctx != NULL && ctx->be != NULL ? ctx->be->dtype : CULORA_DTYPE_F32;
}

/* ---------------------------------------------------------------------------------------- */

culora_status culora_malloc(culora_context *ctx, size_t bytes, void **out)
{
    CULORA_TRY(culora_context_check(ctx));
    if (out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_malloc: out is NULL");
    *out = NULL;
    if (bytes == 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_malloc: bytes is 0");
    return ctx->be->iface->alloc(ctx->be, bytes, out);
}

void culora_free(culora_context *ctx, void *ptr)
{
    if (ctx == NULL || ctx->be == NULL || ptr == NULL)
        return;
    ctx->be->iface->free(ctx->be, ptr);
}

culora_status culora_memcpy(culora_context *ctx, void *dst, const void *src, size_t bytes,
                            culora_copy_kind kind, culora_stream stream)
{
    CULORA_TRY(culora_context_check(ctx));
    if (bytes == 0)
        return CULORA_OK;
    if (dst == NULL || src == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_memcpy: %s is NULL", dst == NULL ? "dst" : "src");
    if (kind != CULORA_COPY_HOST_TO_DEVICE && kind != CULORA_COPY_DEVICE_TO_HOST &&
        kind != CULORA_COPY_DEVICE_TO_DEVICE)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_memcpy: kind = %d is not a culora_copy_kind",
                           (int)kind);
    return ctx->be->iface->copy(ctx->be, dst, src, bytes, kind, stream ? stream : ctx->be->stream);
}

culora_status culora_memset(culora_context *ctx, void *dst, int value, size_t bytes, culora_stream stream)
{
    CULORA_TRY(culora_context_check(ctx));
    if (bytes == 0)
        return CULORA_OK;
    if (dst == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_memset: dst is NULL");
    return ctx->be->iface->fill(ctx->be, dst, value, bytes, stream ? stream : ctx->be->stream);
}

culora_status culora_synchronize(culora_context *ctx, culora_stream stream)
{
    CULORA_TRY(culora_context_check(ctx));
    if (ctx->be->iface->synchronize == NULL)
        return CULORA_OK;
    return ctx->be->iface->synchronize(ctx->be, stream ? stream : ctx->be->stream);
}
