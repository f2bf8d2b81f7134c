/*
 * cuda_none.c — stands in for the CUDA backend in builds without CUDA (CULORA_CUDA=OFF).
 */
#include "../backend.h"

int culora_cuda_device_count(void) { return 0; }

const char *culora_version_string(void) { return "0.1.0 (cpu)"; }

culora_status culora_backend_cuda_create(culora_context *ctx, const culora_context_params *params,
                                         culora_backend **out)
{
    (void)params;
    (void)out;
    return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "cuda backend: this build of culora has no CUDA support "
                                                    "(configure with nvcc available and -DCULORA_CUDA=ON)");
}
