/*
 * context.h — the culora_context object (internal) and the error-recording helpers every
 * library file uses. Library code never prints: it records a message here and returns a status.
 */
#ifndef CULORA_HOST_CONTEXT_H
#define CULORA_HOST_CONTEXT_H

#include "culora/culora.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct culora_backend;

#define CULORA_MSG_BYTES 1024

struct culora_context {
    struct culora_backend *be;   /* NULL in a context that failed to create */
    culora_backend_kind kind;
    culora_status sticky;        /* a sticky (unrecoverable) error: every later call returns it */
    char msg[CULORA_MSG_BYTES];  /* last failure message */
    void *workspace;             /* default workspace (backend memory) */
    size_t workspace_bytes;
    bool owns_workspace;
};

/* Records a formatted message on ctx (may be NULL) and returns status, so callers can write
 * `return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "x is NULL");`. */
culora_status culora_fail(culora_context *ctx, culora_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Marks ctx unusable (e.g. a sticky CUDA error) and records the message. */
culora_status culora_fail_sticky(culora_context *ctx, culora_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes the message already recorded on ctx with "what: " (for adding call-site context). */
void culora_msg_prefix(culora_context *ctx, const char *what);

/* Checks that ctx can run work: non-NULL, created successfully, not sticky-failed. */
culora_status culora_context_check(culora_context *ctx);

#ifdef __cplusplus
}
#endif

#define CULORA_TRY(expr)                          \
    do {                                          \
        culora_status culora_try_s_ = (expr);     \
        if (culora_try_s_ != CULORA_OK)           \
            return culora_try_s_;                 \
    } while (0)

#define CULORA_TRY_GOTO(status_var, expr, label)  \
    do {                                          \
        (status_var) = (expr);                    \
        if ((status_var) != CULORA_OK)            \
            goto label;                           \
    } while (0)

#endif /* CULORA_HOST_CONTEXT_H */
