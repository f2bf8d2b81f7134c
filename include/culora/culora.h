/*
 * culora.h — public C API of culora: version, status codes, contexts, memory.
 *
 * Conventions (docs/architecture.md, DESIGN §8):
 *  - Every fallible call returns culora_status; CULORA_OK is 0. The context keeps a detailed
 *    message of its last failure (culora_context_last_error), valid until the next failing call.
 *  - Objects are opaque: *_create(params, &out) / *_destroy(obj); destroying NULL is a no-op.
 *  - Parameter structs start with {struct_size, api_version}; initialise them with the
 *    matching *_INIT macro so that later versions can add fields.
 *  - Calls that enqueue GPU work take the stream last and return once the work is enqueued;
 *    nothing synchronises unless its name says so.
 *  - A context is used by one host thread at a time; separate contexts are independent.
 *  - This header needs only the C standard library: it compiles without CUDA headers.
 */
#ifndef CULORA_H
#define CULORA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CULORA_API __declspec(dllexport)
#else
#define CULORA_API __attribute__((visibility("default")))
#endif
#if defined(__GNUC__) || defined(__clang__)
#define CULORA_NODISCARD __attribute__((warn_unused_result))
#else
#define CULORA_NODISCARD
#endif

/* ---------------------------------------------------------------------------------------- */
/* Version                                                                                   */

#define CULORA_VERSION_MAJOR 0
#define CULORA_VERSION_MINOR 1
#define CULORA_VERSION_PATCH 0
#define CULORA_VERSION_CODE (CULORA_VERSION_MAJOR * 10000 + CULORA_VERSION_MINOR * 100 + CULORA_VERSION_PATCH)
/* Bumped when a parameter struct changes layout; parameter structs carry it. */
#define CULORA_API_VERSION 1u

/* Run-time version: CULORA_VERSION_CODE of the library actually loaded. */
CULORA_API int culora_version(void);
/* Version string such as "0.1.0 (cuda)"; static storage. */
CULORA_API const char *culora_version_string(void);

/* ---------------------------------------------------------------------------------------- */
/* Status codes. Values are fixed forever; new codes are appended.                           */

#define CULORA_STATUS_TABLE(X)                                                                   \
    X(OK,              0,  "success")                                                            \
    X(ERR_INVALID_ARG, 1,  "invalid argument (NULL pointer, bad shape, dtype or alignment)")     \
    X(ERR_MISUSE,      2,  "library used in the wrong state or order")                           \
    X(ERR_UNSUPPORTED, 3,  "valid request that this backend, build or device does not support")  \
    X(ERR_OUT_OF_MEMORY, 4, "out of memory")                                                     \
    X(ERR_CUDA,        5,  "CUDA runtime error")                                                 \
    X(ERR_CUBLAS,      6,  "cuBLAS / cuBLASLt error")                                            \
    X(ERR_NCCL,        7,  "NCCL error")                                                         \
    X(ERR_IO,          8,  "file or I/O error")                                                  \
    X(ERR_FORMAT,      9,  "malformed or inconsistent file contents")                            \
    X(ERR_NUMERIC,     10, "non-finite value (NaN or Inf) where finite values are required")     \
    X(ERR_INTERNAL,    11, "internal error (a bug in culora)")                                   \
    X(ERR_MPI,         12, "MPI error")                                                          \
    X(ERR_TIMEOUT,     13, "operation timed out (e.g. a dead or hung peer)")                     \
    X(ERR_PEER,        14, "a peer process of a distributed job failed or disconnected")         \
    X(ERR_MISMATCH,    15, "ranks of a distributed job disagree on state that must be identical")

typedef enum culora_status {
#define CULORA_STATUS_ENUM_(name, value, text) CULORA_##name = value,
    CULORA_STATUS_TABLE(CULORA_STATUS_ENUM_)
#undef CULORA_STATUS_ENUM_
} culora_status;

/* "CULORA_ERR_INVALID_ARG" etc.; "CULORA_STATUS_UNKNOWN" for values outside the table. Static storage. */
CULORA_API const char *culora_status_name(culora_status s);
/* One-sentence description of the code. Static storage, never NULL. */
CULORA_API const char *culora_status_string(culora_status s);

/* ---------------------------------------------------------------------------------------- */
/* Types shared by the whole API                                                             */

/* Same type as cudaStream_t, so a user passes their stream unchanged. NULL: the context's stream. */
typedef struct CUstream_st *culora_stream;

/* Element types. Values are fixed forever. */
typedef enum culora_dtype {
    CULORA_DTYPE_F32  = 0,
    CULORA_DTYPE_BF16 = 1,
    CULORA_DTYPE_F16  = 2
} culora_dtype;

/* Size in bytes of one element of dtype, 0 for an unknown value. */
CULORA_API size_t culora_dtype_size(culora_dtype dtype);
/* "f32", "bf16", "f16"; "?" for an unknown value. */
CULORA_API const char *culora_dtype_name(culora_dtype dtype);

/* Host-side conversions (round to nearest even; NaN stays NaN). n is an element count. */
CULORA_API void culora_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
CULORA_API void culora_bf16_to_f32(const uint16_t *src, float *dst, size_t n);

/* ---------------------------------------------------------------------------------------- */
/* Context: one compute backend (CPU or one CUDA device), its stream, workspace and last error. */

typedef struct culora_context culora_context;

typedef enum culora_backend_kind {
    CULORA_BACKEND_AUTO = 0, /* CUDA when this build has it and a device is present, else CPU */
    CULORA_BACKEND_CPU  = 1, /* fp32 reference backend: OpenBLAS + OpenMP */
    CULORA_BACKEND_CUDA = 2  /* bf16 storage, fp32 accumulation: cuBLASLt + culora kernels */
} culora_backend_kind;

typedef struct culora_context_params {
    uint32_t struct_size;   /* sizeof(culora_context_params); set by CULORA_CONTEXT_PARAMS_INIT */
    uint32_t api_version;   /* CULORA_API_VERSION; set by CULORA_CONTEXT_PARAMS_INIT */
    int32_t backend;        /* culora_backend_kind */
    int32_t device;         /* CUDA device ordinal (CUDA backend) */
    culora_stream stream;   /* CUDA: NULL = the context creates and owns a non-blocking stream */
    void *workspace;        /* default workspace for ops called with none; NULL = the context allocates */
    size_t workspace_bytes; /* size of workspace, or of the one to allocate (0 = 32 MiB) */
    int32_t n_threads;      /* CPU backend: OpenMP threads for this context's ops (0 = OpenMP's default) */
} culora_context_params;

#define CULORA_CONTEXT_PARAMS_INIT \
    { sizeof(culora_context_params), CULORA_API_VERSION, CULORA_BACKEND_AUTO, 0, NULL, NULL, 0, 0 }

/* Creates a context. On success *out is a usable context. On failure the status says why; *out
 * is then NULL when memory ran out, and otherwise a context that only carries the message for
 * culora_context_last_error() and must still be destroyed (the sqlite3_open convention). */
CULORA_API CULORA_NODISCARD culora_status culora_context_create(const culora_context_params *params,
                                                                culora_context **out);
/* Frees everything the context owns (not caller-given streams or workspace). NULL: no-op.
 * Waits for the context's own stream to finish first. */
CULORA_API void culora_context_destroy(culora_context *ctx);
/* Detailed message of the last failure on ctx ("" when none). Owned by ctx. ctx NULL: a static text. */
CULORA_API const char *culora_context_last_error(const culora_context *ctx);
/* Backend actually in use (CPU or CUDA, never AUTO). */
CULORA_API culora_backend_kind culora_context_backend(const culora_context *ctx);
/* Name of the backend in use: "cpu" or "cuda". */
CULORA_API const char *culora_context_backend_name(const culora_context *ctx);
/* Human-readable device: the GPU's name on CUDA ("NVIDIA H100 80GB HBM3"); on CPU the threads and
 * the OpenBLAS kernels in use ("cpu (2 threads, OpenBLAS SkylakeX)"). */
CULORA_API const char *culora_context_device_name(const culora_context *ctx);
/* The stream ops run on when they are given NULL (NULL on the CPU backend). */
CULORA_API culora_stream culora_context_stream(const culora_context *ctx);
/* Storage dtype of activations and frozen weights on this backend: F32 on CPU, BF16 on CUDA. */
CULORA_API culora_dtype culora_context_compute_dtype(const culora_context *ctx);

/* Number of CUDA devices usable by this build: 0 when built without CUDA or when no device or
 * driver is present. Never fails, never initialises anything that needs cleanup. */
CULORA_API int culora_cuda_device_count(void);

/* ---------------------------------------------------------------------------------------- */
/* Memory on the context's backend (device memory on CUDA, 64-byte aligned host memory on CPU). */

typedef enum culora_copy_kind {
    CULORA_COPY_HOST_TO_DEVICE   = 0,
    CULORA_COPY_DEVICE_TO_HOST   = 1,
    CULORA_COPY_DEVICE_TO_DEVICE = 2
} culora_copy_kind;

/* Allocates bytes on the backend (synchronous; do not call inside CUDA graph capture). */
CULORA_API CULORA_NODISCARD culora_status culora_malloc(culora_context *ctx, size_t bytes, void **out);
/* Frees memory from culora_malloc. NULL: no-op. */
CULORA_API void culora_free(culora_context *ctx, void *ptr);
/* Copies bytes; enqueue-only on CUDA (host memory must stay valid until the stream reaches it). */
CULORA_API CULORA_NODISCARD culora_status culora_memcpy(culora_context *ctx, void *dst, const void *src,
                                                        size_t bytes, culora_copy_kind kind,
                                                        culora_stream stream);
/* Sets bytes of backend memory to value; enqueue-only on CUDA. */
CULORA_API CULORA_NODISCARD culora_status culora_memset(culora_context *ctx, void *dst, int value,
                                                        size_t bytes, culora_stream stream);
/* Waits until all work enqueued on stream (NULL: the context's stream) has finished. */
CULORA_API CULORA_NODISCARD culora_status culora_synchronize(culora_context *ctx, culora_stream stream);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_H */
