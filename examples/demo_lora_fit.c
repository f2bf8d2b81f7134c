/*
 * demo_lora_fit.c — the `make demo` program: a LoRA linear layer learns a low-rank change.
 *
 * A frozen layer W0 [d,k] and a "teacher" W* = W0 + ΔW with ΔW of rank r. The adapter (A random,
 * B = 0, as PEFT initialises it) is trained with plain SGD on the mean squared error
 *     L = 1/(2m) · Σ (x·W0ᵀ + s·x·Aᵀ·Bᵀ − x·W*ᵀ)²
 * through culora_lora_linear_forward / _backward. The loss falls towards 0 because the adapter can
 * represent ΔW exactly. Runs on the CUDA backend when a GPU is present, else on the CPU backend.
 * Uses only the public API (culora.h, culora_ops.h).
 */
#include "culora/culora.h"
#include "culora/culora_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(ctx, call)                                                                                   \
    do {                                                                                                   \
        culora_status s_ = (call);                                                                         \
        if (s_ != CULORA_OK) {                                                                             \
            fprintf(stderr, "demo: %s failed: %s: %s\n", #call, culora_status_name(s_), culora_context_last_error(ctx)); \
            exit(1);                                                                                       \
        }                                                                                                  \
    } while (0)

static unsigned long long rng = 88172645463325252ull;
static float urand(void) /* uniform [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}

/* Host fp32 <-> backend storage dtype. */
static void to_backend(culora_context *ctx, void *dst, const float *src, size_t n)
{
    if (culora_context_compute_dtype(ctx) == CULORA_DTYPE_F32) {
        CHECK(ctx, culora_memcpy(ctx, dst, src, n * 4, CULORA_COPY_HOST_TO_DEVICE, NULL));
    } else {
        uint16_t *h = malloc(n * 2);
        culora_f32_to_bf16(src, h, n);
        CHECK(ctx, culora_memcpy(ctx, dst, h, n * 2, CULORA_COPY_HOST_TO_DEVICE, NULL));
        CHECK(ctx, culora_synchronize(ctx, NULL));
        free(h);
    }
    CHECK(ctx, culora_synchronize(ctx, NULL));
}

static void from_backend(culora_context *ctx, float *dst, const void *src, size_t n)
{
    if (culora_context_compute_dtype(ctx) == CULORA_DTYPE_F32) {
        CHECK(ctx, culora_memcpy(ctx, dst, src, n * 4, CULORA_COPY_DEVICE_TO_HOST, NULL));
        CHECK(ctx, culora_synchronize(ctx, NULL));
    } else {
        uint16_t *h = malloc(n * 2);
        CHECK(ctx, culora_memcpy(ctx, h, src, n * 2, CULORA_COPY_DEVICE_TO_HOST, NULL));
        CHECK(ctx, culora_synchronize(ctx, NULL));
        culora_bf16_to_f32(h, dst, n);
        free(h);
    }
}

static void *alloc(culora_context *ctx, size_t bytes)
{
    void *p = NULL;
    CHECK(ctx, culora_malloc(ctx, bytes, &p));
    return p;
}

int main(void)
{
    enum { M = 256, K = 64, D = 48, R = 4, STEPS = 60 };
    const float alpha = 8.0f, lr = 0.2f;

    culora_context_params params = CULORA_CONTEXT_PARAMS_INIT; /* AUTO: CUDA if present, else CPU */
    culora_context *ctx = NULL;
    CHECK(ctx, culora_context_create(&params, &ctx));
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    const size_t es = culora_dtype_size(dt);
    printf("culora %s demo: LoRA linear fits a rank-%d change, backend %s (%s), m=%d k=%d d=%d\n",
           culora_version_string(), R, culora_context_backend_name(ctx), culora_context_device_name(ctx), M, K, D);

    /* Host data: x, W0, the teacher's low-rank change U·V, and the adapter A (random), B (zero). */
    static float x[M * K], w0[D * K], y_star[M * D], a[R * K], b[D * R], y[M * D], dy[M * D], da[R * K], db[D * R];
    static float u[D * R], vt[R * K];
    for (int i = 0; i < M * K; i++) x[i] = urand();
    for (int i = 0; i < D * K; i++) w0[i] = urand() / sqrtf((float)K);
    for (int i = 0; i < D * R; i++) u[i] = urand();
    for (int i = 0; i < R * K; i++) vt[i] = urand() / sqrtf((float)K);
    for (int i = 0; i < R * K; i++) a[i] = urand() / sqrtf((float)K); /* kaiming-like scale */
    memset(b, 0, sizeof b);
    for (int i = 0; i < M; i++) /* y* = x·(W0 + U·Vᵀ)ᵀ */
        for (int j = 0; j < D; j++) {
            double acc = 0;
            for (int t = 0; t < K; t++) {
                double w = w0[j * K + t];
                for (int q = 0; q < R; q++) w += (double)u[j * R + q] * vt[q * K + t];
                acc += (double)x[i * K + t] * w;
            }
            y_star[i * D + j] = (float)acc;
        }

    void *xb = alloc(ctx, (size_t)M * K * es), *wb = alloc(ctx, (size_t)D * K * es), *ab = alloc(ctx, (size_t)R * K * es),
         *bb = alloc(ctx, (size_t)D * 8 * es), *vb = alloc(ctx, (size_t)M * 8 * es), *yb = alloc(ctx, (size_t)M * D * es),
         *dyb = alloc(ctx, (size_t)M * D * es), *dub = alloc(ctx, (size_t)M * 8 * es);
    float *dab = alloc(ctx, sizeof da), *dbb = alloc(ctx, sizeof db);
    to_backend(ctx, xb, x, M * K);
    to_backend(ctx, wb, w0, D * K);

    culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
    desc.m = M;
    desc.k = K;
    desc.d = D;
    desc.r = R;
    desc.alpha = alpha;
    desc.dtype = dt;
    const culora_lora_linear_fwd_args fa = {xb, K, wb, K, NULL, ab, K, bb, 8, vb, 8, yb, D};
    const culora_lora_linear_bwd_args ba = {xb, K, wb, K, ab, K, bb, 8, vb, 8, dyb, D, dub, 8, NULL, 0, dab, K, dbb, R};
    /* B's leading dimension is 8 (16-byte rows for bf16), so upload it row by row padded. */
    static float bpad[D * 8];

    double first = 0, last = 0;
    for (int step = 0; step <= STEPS; step++) {
        to_backend(ctx, ab, a, R * K);
        for (int i = 0; i < D; i++)
            for (int q = 0; q < 8; q++) bpad[i * 8 + q] = q < R ? b[i * R + q] : 0.0f;
        to_backend(ctx, bb, bpad, D * 8);
        CHECK(ctx, culora_lora_linear_forward(ctx, &desc, &fa, NULL, 0, NULL));
        from_backend(ctx, y, yb, M * D);
        double loss = 0;
        for (int i = 0; i < M * D; i++) {
            double e = (double)y[i] - y_star[i];
            loss += 0.5 * e * e / M;
            dy[i] = (float)(e / M);
        }
        if (step == 0) first = loss;
        last = loss;
        if (step % 10 == 0) printf("step %3d  loss %.6f\n", step, loss);
        if (step == STEPS) break;
        to_backend(ctx, dyb, dy, M * D);
        CHECK(ctx, culora_memset(ctx, dab, 0, sizeof da, NULL));
        CHECK(ctx, culora_memset(ctx, dbb, 0, sizeof db, NULL));
        CHECK(ctx, culora_lora_linear_backward(ctx, &desc, &ba, NULL, 0, NULL));
        CHECK(ctx, culora_memcpy(ctx, da, dab, sizeof da, CULORA_COPY_DEVICE_TO_HOST, NULL));
        CHECK(ctx, culora_memcpy(ctx, db, dbb, sizeof db, CULORA_COPY_DEVICE_TO_HOST, NULL));
        CHECK(ctx, culora_synchronize(ctx, NULL));
        for (int i = 0; i < R * K; i++) a[i] -= lr * da[i]; /* SGD on the fp32 master weights */
        for (int i = 0; i < D * R; i++) b[i] -= lr * db[i];
    }
    printf("loss %.6f -> %.6f (%.1fx lower) after %d SGD steps\n", first, last, first / last, STEPS);

    void *all[] = {xb, wb, ab, bb, vb, yb, dyb, dub, dab, dbb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) culora_free(ctx, all[i]);
    culora_context_destroy(ctx);
    return last < first ? 0 : 1;
}
