/*
 * embed_stream.cu — culora inside someone else's CUDA program.
 *
 * The program owns its stream and its buffers (plain cudaMalloc), runs its own kernel to produce
 * the layer input, calls culora's fused LoRA forward on the same stream, and consumes the result
 * with another kernel of its own — no synchronisation in between. It links the shared library and
 * includes only the public headers. Exit status 77 (skip) when no CUDA device is present.
 */
#include "culora/culora.h"
#include "culora/culora_ops.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <vector>

#define CUDA_OK(call)                                                                            \
    do {                                                                                         \
        cudaError_t e_ = (call);                                                                 \
        if (e_ != cudaSuccess) {                                                                 \
            std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(e_));              \
            return 1;                                                                            \
        }                                                                                        \
    } while (0)
#define CULORA_OK_(ctx, call)                                                                    \
    do {                                                                                         \
        culora_status s_ = (call);                                                               \
        if (s_ != CULORA_OK) {                                                                   \
            std::fprintf(stderr, "%s failed: %s\n", #call, culora_context_last_error(ctx));      \
            return 1;                                                                            \
        }                                                                                        \
    } while (0)

// The application's own kernels: fill x[m, ldx] (first k columns) and sum each row of y.
__global__ void make_input(__nv_bfloat16 *x, int m, int k, int ldx)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < m * k) x[(i / k) * ldx + i % k] = __float2bfloat16(0.01f * (float)((i * 37) % 101 - 50));
}

__global__ void row_sums(const __nv_bfloat16 *y, int m, int d, float *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    float s = 0;
    for (int j = 0; j < d; j++) s += __bfloat162float(y[i * d + j]);
    out[i] = s;
}

int main()
{
    if (culora_cuda_device_count() == 0) {
        std::printf("embed_stream: no CUDA device, skipping\n");
        return 77;
    }
    const int m = 64, k = 128, d = 96, r = 8, ldx = k + r, ldw = k + r;
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

    // culora uses the application's stream; its default workspace is allocated once here.
    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    p.backend = CULORA_BACKEND_CUDA;
    p.stream = (culora_stream)stream;
    culora_context *ctx = nullptr;
    CULORA_OK_(ctx, culora_context_create(&p, &ctx));

    // Augmented buffers: x | v and [[W0, B], [A, 0]], from plain cudaMalloc.
    __nv_bfloat16 *x, *w, *y;
    float *sums;
    CUDA_OK(cudaMalloc(&x, sizeof(__nv_bfloat16) * m * ldx));
    CUDA_OK(cudaMalloc(&w, sizeof(__nv_bfloat16) * (d + r) * ldw));
    CUDA_OK(cudaMalloc(&y, sizeof(__nv_bfloat16) * m * d));
    CUDA_OK(cudaMalloc(&sums, sizeof(float) * m));
    std::vector<__nv_bfloat16> wh((size_t)(d + r) * ldw);
    for (size_t i = 0; i < wh.size(); i++) wh[i] = __float2bfloat16(0.02f * (float)((i * 13) % 29 - 14));
    CUDA_OK(cudaMemcpyAsync(w, wh.data(), wh.size() * sizeof wh[0], cudaMemcpyHostToDevice, stream));

    make_input<<<(m * k + 255) / 256, 256, 0, stream>>>(x, m, k, ldx);
    culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
    desc.m = m; desc.k = k; desc.d = d; desc.r = r; desc.alpha = 16.0f; desc.dtype = CULORA_DTYPE_BF16;
    desc.flags = CULORA_LORA_REQUIRE_FUSED;
    culora_lora_linear_fwd_args fa = {x, ldx, w, ldw, nullptr, w + (size_t)d * ldw, ldw, w + k, ldw, x + k, ldx, y, d};
    CULORA_OK_(ctx, culora_lora_linear_forward(ctx, &desc, &fa, nullptr, 0, (culora_stream)stream));
    row_sums<<<1, 64, 0, stream>>>(y, m, d, sums);

    std::vector<float> h(m);
    CUDA_OK(cudaMemcpyAsync(h.data(), sums, sizeof(float) * m, cudaMemcpyDeviceToHost, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    double total = 0;
    for (float v : h) total += v;
    std::printf("embed_stream: fused LoRA forward on the application's stream, sum of outputs %.4f\n", total);
    int ok = std::isfinite(total) ? 0 : 1;

    culora_context_destroy(ctx);
    cudaFree(x); cudaFree(w); cudaFree(y); cudaFree(sums);
    cudaStreamDestroy(stream);
    return ok;
}
