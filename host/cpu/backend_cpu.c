/*
 * backend_cpu.c — the CPU reference backend: fp32 storage and math, host memory, synchronous.
 */
#include "cpu_internal.h"
#include "../nn_ops.h"
#include "../quant_ops.h"
#include "../relora_ops.h"
#include "../sgmv_ops.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CPU_ALIGN 64

static void cpu_destroy(culora_backend *be)
{
    if (be == NULL)
        return;
    free(be->impl);
    free(be);
}

static culora_status cpu_alloc(culora_backend *be, size_t bytes, void **out)
{
    size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    void *p = aligned_alloc(CPU_ALIGN, rounded);
    if (p == NULL)
        return culora_fail(be->ctx, CULORA_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes", bytes);
    *out = p;
    return CULORA_OK;
}

static void cpu_free(culora_backend *be, void *ptr)
{
    (void)be;
    free(ptr);
}

static culora_status cpu_copy(culora_backend *be, void *dst, const void *src, size_t bytes, culora_copy_kind kind,
                              culora_stream stream)
{
    (void)be;
    (void)kind;
    (void)stream;
    memmove(dst, src, bytes);
    return CULORA_OK;
}

static culora_status cpu_fill(culora_backend *be, void *dst, int value, size_t bytes, culora_stream stream)
{
    (void)be;
    (void)stream;
    memset(dst, value, bytes);
    return CULORA_OK;
}

static const struct culora_backend_i cpu_iface = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .synchronize = NULL, /* synchronous */
    .lora_linear_workspace = cpu_lora_linear_workspace,
    .lora_linear_fwd = cpu_lora_linear_fwd,
    .lora_linear_bwd = cpu_lora_linear_bwd,
    .lora_merge = cpu_lora_merge,
    .gemm = cpu_gemm,
    .axpby = cpu_axpby,
};

culora_status culora_backend_cpu_create(culora_context *ctx, const culora_context_params *params,
                                        culora_backend **out)
{
    culora_backend *be = calloc(1, sizeof *be);
    struct cpu_impl *impl = calloc(1, sizeof *impl);
    if (be == NULL || impl == NULL) {
        free(be);
        free(impl);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "cpu backend: out of memory");
    }
    impl->n_threads = params->n_threads > 0 ? params->n_threads : omp_get_max_threads();
    be->iface = &cpu_iface;
    be->quant = &culora_cpu_quant_iface;
    be->nn = &culora_cpu_nn_iface;
    be->relora = &culora_cpu_relora_iface;
    be->sgmv = &culora_cpu_sgmv_iface;
    be->ctx = ctx;
    be->dtype = CULORA_DTYPE_F32;
    be->ld_align = 1;
    be->stream = NULL;
    be->impl = impl;
    snprintf(be->device_name, sizeof be->device_name, "cpu (%d threads, OpenBLAS %s)", impl->n_threads,
             openblas_get_corename());
    *out = be;
    return CULORA_OK;
}
