/*
 * common.cuh — small device helpers shared by kernel files: bf16 conversion, ceil-div.
 */
#ifndef CULORA_KERNELS_COMMON_CUH
#define CULORA_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <stdint.h>

#define CULORA_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

/* Launch configuration for simple grid-stride elementwise kernels. */
#define CULORA_EW_THREADS 256
static inline unsigned int culora_ew_blocks(int64_t n_items)
{
    int64_t b = CULORA_CEIL_DIV(n_items, (int64_t)CULORA_EW_THREADS);
    if (b < 1) b = 1;
    if (b > 65535LL * 32) b = 65535LL * 32; /* grid-stride loops cover the rest */
    return (unsigned int)b;
}

__device__ __forceinline__ float culora_load_f(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void culora_store_f(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

#endif /* CULORA_KERNELS_COMMON_CUH */
