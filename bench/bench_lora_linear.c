/*
 * bench_lora_linear.c — LoRA linear forward + backward: frozen linear vs unfused LoRA vs culora.
 *
 * Variants (all on the same inputs, same backend):
 *   frozen   the frozen layer alone: y = x·W0ᵀ, dx = dy·W0 (two GEMMs) — the floor
 *   unfused  LoRA as PyTorch + PEFT runs it through autograd: base GEMM, lora_A GEMM, lora_B GEMM,
 *            scale-and-add kernel; backward: scale kernel, dB, dt, dA, base dx, LoRA dx GEMMs and an
 *            add kernel (11 launches)
 *   fused    culora_lora_linear_forward + _backward on the augmented layout (CULORA_LORA_REQUIRE_FUSED
 *            when dropout is 0)
 * Suites (reference/perf_anchors.md §8): K1 M=8192, k=d∈{4096,5120,8192}, r=16; K3 rank sweep
 * r∈{8..128} at 4096²; K4 small M∈{128..1024}. --quick runs a subset. On the CPU backend every M,
 * k, d is divided by --scale (default 8) to keep runs short; the JSON says so.
 *
 * Every variant is validated against the CPU backend (fp32) before it is timed; a wrong result
 * is reported ("wrong" > 0), not timed, and makes the exit status 1.
 * Output: one JSON line per (shape, variant) with ms, TFLOP/s, ratio to frozen, speed-up over unfused.
 */
#include "bench_util.h"
#include "cpu_runtime.h"

#include "backend.h"
#include "culora/culora_ops.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

struct problem {
    const char *suite;
    int64_t m, k, d;
    int32_t r;
};

struct opts {
    bool quick;
    int backend;
    int64_t scale;
    float dropout;
    int warmup, samples, inner;
    struct problem custom;
    bool has_custom;
};

/* All buffers of one problem on the benchmarked context. Augmented layout:
 * xa = [x | v] [m, ldx], wa = [[W0, B], [A, 0]] [(d+r), ldw], dya = [dy | du] [m, lddy]. */
struct bufs {
    int64_t ldx, ldw, lddy, ldy, lddx, ldr;
    void *xa, *wa, *dya, *y, *dx, *bias;
    float *da, *db;
    void *a, *b, *t, *z, *dz, *dt, *dx2; /* unfused */
    void *ws;
    size_t ws_bytes;
};

static int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* Host matrices (fp32, dense row-major), rounded to bf16 when the backend stores bf16. */
struct host {
    float *x, *w0, *a, *b, *dy;
};

static float *host_random(int64_t n, float scale, bool bf16)
{
    float *v = malloc((size_t)n * sizeof *v);
    if (v == NULL) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++)
        v[i] = scale * frand();
    if (bf16) {
        uint16_t *h = malloc((size_t)n * sizeof *h);
        culora_f32_to_bf16(v, h, (size_t)n);
        culora_bf16_to_f32(h, v, (size_t)n);
        free(h);
    }
    return v;
}

/* Uploads a dense [rows, cols] fp32 host matrix into a [rows, ld] region at dst (backend dtype). */
static void upload(culora_context *ctx, void *dst, int64_t ld, const float *src, int64_t rows, int64_t cols)
{
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    const size_t es = culora_dtype_size(dt);
    uint8_t *row = malloc((size_t)cols * es);
    for (int64_t i = 0; i < rows; i++) {
        if (dt == CULORA_DTYPE_F32)
            memcpy(row, src + i * cols, (size_t)cols * 4);
        else
            culora_f32_to_bf16(src + i * cols, (uint16_t *)row, (size_t)cols);
        BENCH_CHECK(ctx, culora_memcpy(ctx, (char *)dst + (size_t)(i * ld) * es, row, (size_t)cols * es,
                                       CULORA_COPY_HOST_TO_DEVICE, NULL));
        BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
    }
    free(row);
}

static culora_lora_linear_desc make_desc(culora_context *ctx, const struct problem *p, float dropout, bool fused)
{
    culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
    desc.m = p->m;
    desc.k = p->k;
    desc.d = p->d;
    desc.r = p->r;
    desc.alpha = 2.0f * (float)p->r;
    desc.dropout = dropout;
    desc.seed = 1234;
    desc.dtype = culora_context_compute_dtype(ctx);
    if (fused && dropout == 0.0f && culora_context_backend(ctx) == CULORA_BACKEND_CUDA)
        desc.flags |= CULORA_LORA_REQUIRE_FUSED; /* the CPU backend has one path only */
    return desc;
}

/* ---- the three variants ------------------------------------------------------------------ */

static void gemm(culora_context *ctx, struct bufs *B, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const void *a, int64_t lda, const void *b, int64_t ldb, float beta, void *c, int64_t ldc, bool c_f32)
{
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    struct culora_gemm_args g = {ta, tb, m, n, k, alpha, beta, a, lda, dt, b, ldb, dt, c, ldc,
                                 c_f32 ? CULORA_DTYPE_F32 : dt, NULL};
    BENCH_CHECK(ctx, culora_op_gemm(ctx, &g, B->ws, B->ws_bytes, NULL));
}

static void axpby(culora_context *ctx, int64_t m, int64_t n, float alpha, const void *x, int64_t ldx, float beta,
                  void *y, int64_t ldy)
{
    struct culora_axpby_args g = {m, n, alpha, beta, x, ldx, y, ldy};
    BENCH_CHECK(ctx, culora_op_axpby(ctx, &g, NULL));
}

static void run_frozen(culora_context *ctx, const struct problem *p, struct bufs *B)
{
    gemm(ctx, B, false, true, p->m, p->d, p->k, 1.0f, B->xa, B->ldx, B->wa, B->ldw, 0.0f, B->y, B->ldy, false);
    gemm(ctx, B, false, false, p->m, p->k, p->d, 1.0f, B->dya, B->lddy, B->wa, B->ldw, 0.0f, B->dx, B->lddx, false);
}

static void run_unfused(culora_context *ctx, const struct problem *p, struct bufs *B, float s)
{
    const int64_t m = p->m, k = p->k, d = p->d, r = p->r;
    /* forward: result = base(x); result += lora_B(lora_A(x)) * s */
    gemm(ctx, B, false, true, m, d, k, 1.0f, B->xa, B->ldx, B->wa, B->ldw, 0.0f, B->y, B->ldy, false);
    gemm(ctx, B, false, true, m, r, k, 1.0f, B->xa, B->ldx, B->a, B->ldx, 0.0f, B->t, B->ldr, false);
    gemm(ctx, B, false, true, m, d, r, 1.0f, B->t, B->ldr, B->b, B->ldr, 0.0f, B->z, B->ldy, false);
    axpby(ctx, m, d, s, B->z, B->ldy, 1.0f, B->y, B->ldy);
    /* backward (autograd order): dz = s·dy; dB += dzᵀ·t; dt = dz·B; dA += dtᵀ·x; dx = dy·W0 + dt·A */
    axpby(ctx, m, d, s, B->dya, B->lddy, 0.0f, B->dz, B->ldy);
    gemm(ctx, B, true, false, d, r, m, 1.0f, B->dz, B->ldy, B->t, B->ldr, 1.0f, B->db, r, true);
    gemm(ctx, B, false, false, m, r, d, 1.0f, B->dz, B->ldy, B->b, B->ldr, 0.0f, B->dt, B->ldr, false);
    gemm(ctx, B, true, false, r, k, m, 1.0f, B->dt, B->ldr, B->xa, B->ldx, 1.0f, B->da, k, true);
    gemm(ctx, B, false, false, m, k, d, 1.0f, B->dya, B->lddy, B->wa, B->ldw, 0.0f, B->dx, B->lddx, false);
    gemm(ctx, B, false, false, m, k, r, 1.0f, B->dt, B->ldr, B->a, B->ldx, 0.0f, B->dx2, B->lddx, false);
    axpby(ctx, m, k, 1.0f, B->dx2, B->lddx, 1.0f, B->dx, B->lddx);
}

static void run_fused(culora_context *ctx, const struct problem *p, struct bufs *B, float dropout)
{
    const culora_lora_linear_desc desc = make_desc(ctx, p, dropout, true);
    const size_t es = culora_dtype_size(desc.dtype);
    char *xa = B->xa, *wa = B->wa, *dya = B->dya;
    const culora_lora_linear_fwd_args fa = {xa, B->ldx, wa, B->ldw, NULL, wa + (size_t)(p->d * B->ldw) * es, B->ldw,
                                            wa + (size_t)p->k * es, B->ldw, xa + (size_t)p->k * es, B->ldx, B->y,
                                            B->ldy};
    const culora_lora_linear_bwd_args ba = {xa, B->ldx, wa, B->ldw, wa + (size_t)(p->d * B->ldw) * es, B->ldw,
                                            wa + (size_t)p->k * es, B->ldw, xa + (size_t)p->k * es, B->ldx, dya,
                                            B->lddy, dya + (size_t)p->d * es, B->lddy, B->dx, B->lddx, B->da, p->k,
                                            B->db, p->r};
    BENCH_CHECK(ctx, culora_lora_linear_forward(ctx, &desc, &fa, B->ws, B->ws_bytes, NULL));
    BENCH_CHECK(ctx, culora_lora_linear_backward(ctx, &desc, &ba, B->ws, B->ws_bytes, NULL));
}

/* ---- validation ---------------------------------------------------------------------------- */

struct ref {
    float *y, *dx, *da, *db;    /* LoRA */
    float *y0, *dx0;            /* frozen */
};

/* CPU backend (fp32) on the same host data: the reference every variant must meet. */
static struct ref make_ref(const struct problem *p, const struct host *h, float dropout)
{
    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = CULORA_BACKEND_CPU;
    culora_context *cpu = NULL;
    BENCH_CHECK(cpu, culora_context_create(&cp, &cpu));
    const int64_t m = p->m, k = p->k, d = p->d, r = p->r;
    struct ref R;
    R.y = calloc((size_t)(m * d), 4);
    R.dx = calloc((size_t)(m * k), 4);
    R.da = calloc((size_t)(r * k), 4);
    R.db = calloc((size_t)(d * r), 4);
    R.y0 = calloc((size_t)(m * d), 4);
    R.dx0 = calloc((size_t)(m * k), 4);
    float *v = calloc((size_t)(m * r), 4), *du = calloc((size_t)(m * r), 4);
    culora_lora_linear_desc desc = make_desc(cpu, p, dropout, false);
    size_t fw = 0, bw = 0;
    BENCH_CHECK(cpu, culora_lora_linear_workspace_size(cpu, &desc, &fw, &bw));
    size_t wsb = fw > bw ? fw : bw;
    void *ws = wsb ? malloc(wsb) : NULL;
    const culora_lora_linear_fwd_args fa = {h->x, k, h->w0, k, NULL, h->a, k, h->b, r, v, r, R.y, d};
    const culora_lora_linear_bwd_args ba = {h->x, k, h->w0, k, h->a, k, h->b, r, v, r, h->dy, d, du, r,
                                            R.dx, k, R.da, k, R.db, r};
    BENCH_CHECK(cpu, culora_lora_linear_forward(cpu, &desc, &fa, ws, wsb, NULL));
    BENCH_CHECK(cpu, culora_lora_linear_backward(cpu, &desc, &ba, ws, wsb, NULL));
    struct culora_gemm_args g1 = {false, true, m, d, k, 1.0f, 0.0f, h->x, k, CULORA_DTYPE_F32, h->w0, k,
                                  CULORA_DTYPE_F32, R.y0, d, CULORA_DTYPE_F32, NULL};
    struct culora_gemm_args g2 = {false, false, m, k, d, 1.0f, 0.0f, h->dy, d, CULORA_DTYPE_F32, h->w0, k,
                                  CULORA_DTYPE_F32, R.dx0, k, CULORA_DTYPE_F32, NULL};
    BENCH_CHECK(cpu, culora_op_gemm(cpu, &g1, NULL, 0, NULL));
    BENCH_CHECK(cpu, culora_op_gemm(cpu, &g2, NULL, 0, NULL));
    free(ws);
    free(v);
    free(du);
    culora_context_destroy(cpu);
    return R;
}

static void free_ref(struct ref *R)
{
    free(R->y); free(R->dx); free(R->da); free(R->db); free(R->y0); free(R->dx0);
}

/* ---- driver ---------------------------------------------------------------------------------- */

static void bench_problem(culora_context *ctx, const struct problem *p0, const struct opts *o, int *failures)
{
    struct problem pr = *p0;
    const bool on_cpu = culora_context_backend(ctx) == CULORA_BACKEND_CPU;
    const int64_t scale = o->scale;
    pr.m /= scale;
    pr.k /= scale;
    pr.d /= scale;
    const struct problem *p = &pr;
    const int64_t m = p->m, k = p->k, d = p->d, r = p->r;
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    const size_t es = culora_dtype_size(dt);
    const bool bf16 = dt == CULORA_DTYPE_BF16;

    struct host h;
    h.x = host_random(m * k, 1.0f, bf16);
    h.w0 = host_random(d * k, 1.0f / sqrtf((float)k), bf16);
    h.a = host_random(r * k, 1.0f / sqrtf((float)k), bf16);
    h.b = host_random(d * r, 1.0f / sqrtf((float)r), bf16);
    h.dy = host_random(m * d, 1.0f, bf16);

    struct bufs B;
    B.ldx = round8(k + r);
    B.ldw = B.ldx;
    B.lddy = round8(d + r);
    B.ldy = round8(d);
    B.lddx = round8(k);
    B.ldr = round8(r);
    B.xa = bench_dalloc(ctx, (size_t)(m * B.ldx) * es);
    B.wa = bench_dalloc(ctx, (size_t)((d + r) * B.ldw) * es);
    B.dya = bench_dalloc(ctx, (size_t)(m * B.lddy) * es);
    B.y = bench_dalloc(ctx, (size_t)(m * B.ldy) * es);
    B.dx = bench_dalloc(ctx, (size_t)(m * B.lddx) * es);
    B.bias = NULL;
    B.da = bench_dalloc(ctx, (size_t)(r * k) * 4);
    B.db = bench_dalloc(ctx, (size_t)(d * r) * 4);
    B.a = bench_dalloc(ctx, (size_t)(r * B.ldx) * es);
    B.b = bench_dalloc(ctx, (size_t)(d * B.ldr) * es);
    B.t = bench_dalloc(ctx, (size_t)(m * B.ldr) * es);
    B.z = bench_dalloc(ctx, (size_t)(m * B.ldy) * es);
    B.dz = bench_dalloc(ctx, (size_t)(m * B.ldy) * es);
    B.dt = bench_dalloc(ctx, (size_t)(m * B.ldr) * es);
    B.dx2 = bench_dalloc(ctx, (size_t)(m * B.lddx) * es);
    culora_lora_linear_desc desc = make_desc(ctx, p, o->dropout, false);
    size_t fw = 0, bw = 0;
    BENCH_CHECK(ctx, culora_lora_linear_workspace_size(ctx, &desc, &fw, &bw));
    B.ws_bytes = (fw > bw ? fw : bw) + ((size_t)32 << 20); /* + what cuBLASLt may use */
    B.ws = bench_dalloc(ctx, B.ws_bytes);

    upload(ctx, B.xa, B.ldx, h.x, m, k);
    upload(ctx, B.wa, B.ldw, h.w0, d, k);
    upload(ctx, (char *)B.wa + (size_t)k * es, B.ldw, h.b, d, r);
    upload(ctx, (char *)B.wa + (size_t)(d * B.ldw) * es, B.ldw, h.a, r, k);
    upload(ctx, B.dya, B.lddy, h.dy, m, d);
    upload(ctx, B.a, B.ldx, h.a, r, k);
    upload(ctx, B.b, B.ldr, h.b, d, r);

    struct ref R = make_ref(p, &h, o->dropout);
    const float s = culora_lora_scaling(&desc);
    /* bf16: 2^-7·(RMS + |ref|) for frozen and fused (one rounding of each output, v and du
     * rounded once). The unfused chain rounds t = x·Aᵀ, z = t·Bᵀ, the base output y0 and
     * y = y0 + s·z separately, each a part up to ~5.5·RMS in the tail of 33M elements:
     * 3·2^-9·5.5 ≈ 0.032·RMS (H100 2026-11-26: worst 0.034·RMS), so 2^-4 for it.
     * fp32 on the CPU backend: 1e-4 (different summation orders only). */
    const double tol_fused = bf16 ? 1.0 / 128 : 1e-4, tol_unfused = bf16 ? 1.0 / 16 : 1e-4;
    const char *names[3] = {"frozen", "unfused", "fused"};
    const double flops_frozen = 4.0 * (double)m * (double)k * (double)d;
    const double flops_lora = flops_frozen + 6.0 * (double)m * r * (double)(k + d);
    double ms[3] = {0, 0, 0};

    for (int v = 0; v < 3; v++) {
        if (v == 1 && o->dropout > 0.0f) {
            ms[v] = NAN; /* the unfused baseline here has no dropout */
            continue;
        }
        BENCH_CHECK(ctx, culora_memset(ctx, B.da, 0, (size_t)(r * k) * 4, NULL));
        BENCH_CHECK(ctx, culora_memset(ctx, B.db, 0, (size_t)(d * r) * 4, NULL));
        if (v == 0) run_frozen(ctx, p, &B);
        else if (v == 1) run_unfused(ctx, p, &B, s);
        else run_fused(ctx, p, &B, o->dropout);
        BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
        float *y = bench_download(ctx, B.y, m, d, B.ldy, dt), *dx = bench_download(ctx, B.dx, m, k, B.lddx, dt);
        int64_t wrong = 0;
        double err = 0;
        const double tol = v == 1 ? tol_unfused : tol_fused;
        if (v == 0) {
            wrong += bench_count_wrong(y, R.y0, m * d, tol, &err);
            wrong += bench_count_wrong(dx, R.dx0, m * k, tol, &err);
        } else {
            float *da = bench_download(ctx, B.da, r, k, k, CULORA_DTYPE_F32), *db = bench_download(ctx, B.db, d, r, r, CULORA_DTYPE_F32);
            wrong += bench_count_wrong(y, R.y, m * d, tol, &err);
            wrong += bench_count_wrong(dx, R.dx, m * k, tol, &err);
            wrong += bench_count_wrong(da, R.da, r * k, tol, &err);
            wrong += bench_count_wrong(db, R.db, d * r, tol, &err);
            free(da);
            free(db);
        }
        free(y);
        free(dx);
        if (wrong > 0) {
            fprintf(stderr, "bench_lora_linear: %s is WRONG on %s m=%lld k=%lld d=%lld r=%d: %lld elements out of "
                            "tolerance (max error %.3g of RMS); not timed\n",
                    names[v], p->suite, (long long)m, (long long)k, (long long)d, (int)r, (long long)wrong, err);
            (*failures)++;
            ms[v] = NAN;
            printf("{\"bench\":\"lora_linear\",\"suite\":\"%s\",\"backend\":\"%s\",\"variant\":\"%s\",\"m\":%lld,"
                   "\"k\":%lld,\"d\":%lld,\"r\":%d,\"wrong\":%lld,\"max_err_rel_rms\":%.3g}\n",
                   p->suite, culora_context_backend_name(ctx), names[v], (long long)m, (long long)k, (long long)d,
                   (int)r, (long long)wrong, err);
            continue;
        }
        for (int i = 0; i < o->warmup; i++) {
            if (v == 0) run_frozen(ctx, p, &B);
            else if (v == 1) run_unfused(ctx, p, &B, s);
            else run_fused(ctx, p, &B, o->dropout);
        }
        BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
        double samples[256];
        const int ns = o->samples < 256 ? o->samples : 256;
        for (int si = 0; si < ns; si++) {
            double t0 = bench_now();
            for (int i = 0; i < o->inner; i++) {
                if (v == 0) run_frozen(ctx, p, &B);
                else if (v == 1) run_unfused(ctx, p, &B, s);
                else run_fused(ctx, p, &B, o->dropout);
            }
            BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
            samples[si] = (bench_now() - t0) / o->inner;
        }
        ms[v] = 1e3 * bench_median(samples, ns);
        const double fl = v == 0 ? flops_frozen : flops_lora;
        char vs_unfused[32];
        bench_json_num(vs_unfused, sizeof vs_unfused, v == 2 ? ms[1] / ms[2] : (v == 1 ? 1.0 : NAN));
        printf("{\"bench\":\"lora_linear\",\"suite\":\"%s\",\"backend\":\"%s\",\"device\":\"%s\",\"variant\":\"%s\","
               "\"m\":%lld,\"k\":%lld,\"d\":%lld,\"r\":%d,\"dropout\":%g,\"scale\":%lld,\"ms\":%.4f,\"tflops\":%.3f,"
               "\"ratio_to_frozen\":%.4f,\"speedup_vs_unfused\":%s,\"samples\":%d,\"inner\":%d,\"wrong\":0,"
               "\"max_err_rel_rms\":%.3g}\n",
               p->suite, culora_context_backend_name(ctx), culora_context_device_name(ctx), names[v], (long long)m,
               (long long)k, (long long)d, (int)r, (double)o->dropout, (long long)scale, ms[v], fl / (ms[v] * 1e-3) / 1e12,
               ms[v] / ms[0], vs_unfused, ns, o->inner, err);
        fflush(stdout);
    }
    (void)on_cpu;
    free_ref(&R);
    free(h.x); free(h.w0); free(h.a); free(h.b); free(h.dy);
    void *all[] = {B.xa, B.wa, B.dya, B.y, B.dx, B.da, B.db, B.a, B.b, B.t, B.z, B.dz, B.dt, B.dx2, B.ws};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        culora_free(ctx, all[i]);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_lora_linear [--quick] [--backend cpu|cuda|auto] [--scale N] [--dropout P]\n"
            "                         [--shape M,K,D,R] [--warmup N] [--samples N] [--inner N]\n"
            "  Prints one JSON line per (shape, variant). CPU default --scale 8 (M, k, d divided by it).\n");
}

int main(int argc, char **argv)
{
    cli_cpu_runtime(argv);
    struct opts o = {0};
    o.backend = CULORA_BACKEND_AUTO;
    o.scale = 0;
    o.warmup = -1;
    o.samples = -1;
    o.inner = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) o.quick = true;
        else if (strcmp(a, "--backend") == 0 && val) {
            o.backend = strcmp(val, "cpu") == 0 ? CULORA_BACKEND_CPU : strcmp(val, "cuda") == 0 ? CULORA_BACKEND_CUDA
                                                                                               : CULORA_BACKEND_AUTO;
            i++;
        } else if (strcmp(a, "--scale") == 0 && val) { o.scale = atoll(val); i++; }
        else if (strcmp(a, "--dropout") == 0 && val) { o.dropout = (float)atof(val); i++; }
        else if (strcmp(a, "--warmup") == 0 && val) { o.warmup = atoi(val); i++; }
        else if (strcmp(a, "--samples") == 0 && val) { o.samples = atoi(val); i++; }
        else if (strcmp(a, "--inner") == 0 && val) { o.inner = atoi(val); i++; }
        else if (strcmp(a, "--shape") == 0 && val) {
            long long M, K, D;
            int R;
            if (sscanf(val, "%lld,%lld,%lld,%d", &M, &K, &D, &R) != 4) { usage(); return 2; }
            o.custom = (struct problem){"custom", M, K, D, R};
            o.has_custom = true;
            i++;
        } else { usage(); return 2; }
    }
    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = o.backend;
    culora_context *ctx = NULL;
    BENCH_CHECK(ctx, culora_context_create(&cp, &ctx));
    const bool cpu = culora_context_backend(ctx) == CULORA_BACKEND_CPU;
    if (o.scale <= 0) o.scale = cpu ? 8 : 1;
    if (o.warmup < 0) o.warmup = cpu ? 1 : (o.quick ? 10 : 20);
    if (o.samples < 0) o.samples = cpu ? 3 : (o.quick ? 10 : 20);
    if (o.inner < 0) o.inner = cpu ? 1 : (o.quick ? 5 : 10);
    fprintf(stderr, "bench_lora_linear: backend %s (%s), scale 1/%lld, warmup %d, %d samples x %d calls\n",
            culora_context_backend_name(ctx), culora_context_device_name(ctx), (long long)o.scale, o.warmup, o.samples,
            o.inner);

    static const struct problem full[] = {
        {"K1", 8192, 4096, 4096, 16}, {"K1", 8192, 5120, 5120, 16}, {"K1", 8192, 8192, 8192, 16},
        {"K3", 8192, 4096, 4096, 8},  {"K3", 8192, 4096, 4096, 32}, {"K3", 8192, 4096, 4096, 64},
        {"K3", 8192, 4096, 4096, 128}, {"K4", 128, 4096, 4096, 16}, {"K4", 256, 4096, 4096, 16},
        {"K4", 512, 4096, 4096, 16},  {"K4", 1024, 4096, 4096, 16},
    };
    static const struct problem quick[] = {
        {"K1", 8192, 4096, 4096, 16}, {"K3", 8192, 4096, 4096, 64}, {"K4", 512, 4096, 4096, 16},
    };
    int failures = 0;
    if (o.has_custom) {
        bench_problem(ctx, &o.custom, &o, &failures);
    } else {
        const struct problem *list = o.quick ? quick : full;
        size_t n = o.quick ? sizeof quick / sizeof quick[0] : sizeof full / sizeof full[0];
        for (size_t i = 0; i < n; i++)
            bench_problem(ctx, &list[i], &o, &failures);
    }
    culora_context_destroy(ctx);
    return failures ? 1 : 0;
}
