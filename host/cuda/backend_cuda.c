/*
 * backend_cuda.c — the CUDA backend: one device, a stream, a cuBLASLt handle and its plan
 * cache. bf16 storage, fp32 accumulation. Ops live in kernels/ (.cu files).
 */
#include "cuda_backend.h"
#include "../nn_ops.h"
#include "../quant_ops.h"
#include "../relora_ops.h"
#include "../sgmv_ops.h"

#include <stdio.h>
#include <stdlib.h>

int culora_cuda_device_count(void)
{
    int n = 0; /* cudaGetDeviceCount leaves n untouched when there is no driver */
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

const char *culora_version_string(void) { return "0.1.0 (cpu, cuda)"; }

static int is_sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
        return 1;
    default:
        return 0;
    }
}

culora_status culora_cuda_fail(culora_backend *be, cudaError_t err, const char *what, const char *file, int line)
{
    culora_context *ctx = be ? be->ctx : NULL;
    if (is_sticky(err))
        return culora_fail_sticky(ctx, CULORA_ERR_CUDA, "CUDA error %s (%s) in %s at %s:%d; the context is unusable",
                                  cudaGetErrorName(err), cudaGetErrorString(err), what, file, line);
    (void)cudaGetLastError(); /* clear the non-sticky error */
    return culora_fail(ctx, err == cudaErrorMemoryAllocation ? CULORA_ERR_OUT_OF_MEMORY : CULORA_ERR_CUDA,
                       "CUDA error %s (%s) in %s at %s:%d", cudaGetErrorName(err), cudaGetErrorString(err), what,
                       file, line);
}

culora_status culora_cublas_fail(culora_backend *be, cublasStatus_t st, const char *what, const char *file, int line)
{
    return culora_fail(be ? be->ctx : NULL, CULORA_ERR_CUBLAS, "cuBLASLt error %d in %s at %s:%d", (int)st, what,
                       file, line);
}

static void cuda_destroy(culora_backend *be)
{
    if (be == NULL)
        return;
    struct cuda_impl *impl = cuda_impl_of(be);
    if (impl != NULL) {
        cuda_gemm_plans_destroy(impl);
        if (impl->lt)
            cublasLtDestroy(impl->lt);
        if (impl->owns_stream && impl->stream)
            cudaStreamDestroy(impl->stream);
        free(impl);
    }
    free(be);
}

static culora_status cuda_alloc(culora_backend *be, size_t bytes, void **out)
{
    CULORA_CUDA_TRY(be, cudaSetDevice(cuda_impl_of(be)->device));
    CULORA_CUDA_TRY(be, cudaMalloc(out, bytes));
    return CULORA_OK;
}

static void cuda_free(culora_backend *be, void *ptr)
{
    (void)cudaSetDevice(cuda_impl_of(be)->device);
    (void)cudaFree(ptr);
}

static culora_status cuda_copy(culora_backend *be, void *dst, const void *src, size_t bytes, culora_copy_kind kind,
                               culora_stream stream)
{
    enum cudaMemcpyKind k = kind == CULORA_COPY_HOST_TO_DEVICE   ? cudaMemcpyHostToDevice
                            : kind == CULORA_COPY_DEVICE_TO_HOST ? cudaMemcpyDeviceToHost
                                                                 : cudaMemcpyDeviceToDevice;
    CULORA_CUDA_TRY(be, cudaMemcpyAsync(dst, src, bytes, k, (cudaStream_t)stream));
    return CULORA_OK;
}

static culora_status cuda_fill(culora_backend *be, void *dst, int value, size_t bytes, culora_stream stream)
{
    CULORA_CUDA_TRY(be, cudaMemsetAsync(dst, value, bytes, (cudaStream_t)stream));
    return CULORA_OK;
}

static culora_status cuda_synchronize(culora_backend *be, culora_stream stream)
{
    CULORA_CUDA_TRY(be, cudaStreamSynchronize((cudaStream_t)stream));
    return CULORA_OK;
}

static const struct culora_backend_i cuda_iface = {
    .name = "cuda",
    .destroy = cuda_destroy,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy = cuda_copy,
    .fill = cuda_fill,
    .synchronize = cuda_synchronize,
    .lora_linear_workspace = cuda_lora_linear_workspace,
    .lora_linear_fwd = cuda_lora_linear_fwd,
    .lora_linear_bwd = cuda_lora_linear_bwd,
    .lora_merge = cuda_lora_merge,
    .gemm = cuda_gemm,
    .axpby = cuda_axpby,
};

culora_status culora_backend_cuda_create(culora_context *ctx, const culora_context_params *params,
                                         culora_backend **out)
{
    int n = culora_cuda_device_count();
    if (n == 0)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "cuda backend: no CUDA device or driver is available");
    if (params->device < 0 || params->device >= n)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "cuda backend: device %d does not exist (%d present)",
                           (int)params->device, n);
    culora_backend *be = calloc(1, sizeof *be);
    struct cuda_impl *impl = calloc(1, sizeof *impl);
    if (be == NULL || impl == NULL) {
        free(be);
        free(impl);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "cuda backend: out of memory");
    }
    be->iface = &cuda_iface;
    be->quant = &culora_cuda_quant_iface;
    be->nn = &culora_cuda_nn_iface;
    be->relora = &culora_cuda_relora_iface;
    be->sgmv = &culora_cuda_sgmv_iface;
    be->ctx = ctx;
    be->dtype = CULORA_DTYPE_BF16;
    be->ld_align = 8; /* 16-byte rows for bf16: what cuBLASLt's fast kernels and our vector loads need */
    be->impl = impl;
    impl->device = params->device;

    culora_status s = CULORA_OK;
    cudaError_t e = cudaSetDevice(impl->device);
    if (e == cudaSuccess && params->stream == NULL) {
        e = cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking);
        impl->owns_stream = (e == cudaSuccess);
    } else if (e == cudaSuccess) {
        impl->stream = (cudaStream_t)params->stream;
    }
    if (e != cudaSuccess) {
        s = culora_cuda_fail(be, e, "cuda backend create", __FILE__, __LINE__);
        cuda_destroy(be);
        return s;
    }
    cublasStatus_t st = cublasLtCreate(&impl->lt);
    if (st != CUBLAS_STATUS_SUCCESS) {
        impl->lt = NULL;
        s = culora_cublas_fail(be, st, "cublasLtCreate", __FILE__, __LINE__);
        cuda_destroy(be);
        return s;
    }
    be->stream = (culora_stream)impl->stream;
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, impl->device) == cudaSuccess)
        snprintf(be->device_name, sizeof be->device_name, "%.255s", prop.name);
    else
        snprintf(be->device_name, sizeof be->device_name, "cuda device %d", impl->device);
    *out = be;
    return CULORA_OK;
}
