/*
 * bench_quant.c — quantized frozen weights: NF4 batch-1 GEMV, dequantize throughput, and the
 * QLoRA / int8 LoRA layer against the bf16 LoRA layer.
 *
 * Suites (reference/perf_anchors.md §2-3, §7.3; targets from issue 5):
 *   gemv     y = W·x, m = 1, W [4096×4096], [14336×4096], [4096×14336]: nf4, nf4-dq (fused
 *            dequant-GEMV kernel) and bf16 (cuBLASLt GEMV, the baseline). Reports time, effective
 *            GB/s (bytes of W + scales + x + y), % of the device's peak HBM bandwidth, speed-up over
 *            bf16. Targets: >= 85% of bandwidth, >= 3.3× over bf16.
 *   dequant  W [14336×4096] nf4 / nf4-dq -> bf16: GB/s read + written.
 *   layer    LoRA forward + backward at M = 8192, k = d = 4096, r = 16: bf16 W0 (culora's fused
 *            augmented path, the baseline), nf4-dq, nf4, int8 W0. Reports ms and the ratio to bf16
 *            (target <= 1.15×).
 * Every variant is first validated against the CPU backend (fp32) on the same quantized bytes — at
 * the timed shape for gemv and dequant, at M = 256, k = d = 512 for layer (the CPU reference of the
 * full layer takes minutes) — with the tolerance of tests/quant/test_quant_cuda.cpp (2^-7 of the RMS
 * plus 2^-7 relative; dequant bit-exact). A wrong variant is reported ("wrong" > 0), not timed, and
 * makes the exit status 1.
 * Timing: median of samples, each a batch of calls between synchronisations (bench_util.h). The
 * GEMV and dequant suites cycle through enough copies of the weight to exceed twice a 50 MB L2, so
 * every call streams W from HBM. On the CPU backend shapes are divided by --scale (default 4 for
 * gemv/dequant, 8 for layer; the JSON says so).
 * Peak bandwidth: --peak-gbps, else from the device name (H100 SXM 3350, H100 PCIe 2000, H200 4800,
 * A100 2039 GB/s); null when unknown.
 * Output: one JSON line per measurement.
 */
#include "bench_util.h"
#include "cpu_runtime.h"

#include "backend.h"
#include "culora/culora_ops.h"
#include "culora/culora_quant.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

struct opts {
    bool quick;
    int backend;
    int64_t scale;
    int warmup, samples, inner;
    double peak_gbps;
    const char *only; /* suite name or NULL */
};

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* n random values scaled, rounded to bf16 (both backends then see the same inputs). */
static float *host_random(int64_t n, float scale)
{
    float *v = bench_xmalloc((size_t)n * sizeof *v);
    uint16_t *h = bench_xmalloc((size_t)n * sizeof *h);
    for (int64_t i = 0; i < n; i++)
        v[i] = scale * frand();
    culora_f32_to_bf16(v, h, (size_t)n);
    culora_bf16_to_f32(h, v, (size_t)n);
    free(h);
    return v;
}

/* Uploads dense fp32 [rows, cols] into a [rows, ld] buffer in the context's storage dtype. */
static void *upload(culora_context *ctx, const float *src, int64_t rows, int64_t cols, int64_t ld)
{
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    const size_t es = culora_dtype_size(dt);
    uint8_t *img = calloc((size_t)(rows * ld), es);
    for (int64_t i = 0; i < rows; i++) {
        if (dt == CULORA_DTYPE_F32)
            memcpy(img + (size_t)(i * ld) * 4, src + i * cols, (size_t)cols * 4);
        else
            culora_f32_to_bf16(src + i * cols, (uint16_t *)(img + (size_t)(i * ld) * 2), (size_t)cols);
    }
    void *d = bench_dalloc(ctx, (size_t)(rows * ld) * es);
    BENCH_CHECK(ctx, culora_memcpy(ctx, d, img, (size_t)(rows * ld) * es, CULORA_COPY_HOST_TO_DEVICE, NULL));
    BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
    free(img);
    return d;
}

static culora_context *make_ctx(int backend)
{
    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = backend;
    culora_context *ctx = NULL;
    BENCH_CHECK(ctx, culora_context_create(&cp, &ctx));
    return ctx;
}

/* ---- quantized weights in backend memory ---------------------------------------------------- */

static void qweight_alloc(culora_context *ctx, const culora_quant_desc *d, culora_quant_weight *w)
{
    culora_quant_layout l;
    BENCH_CHECK(ctx, culora_quant_layout_get(ctx, d, &l));
    memset(w, 0, sizeof *w);
    if (l.data_bytes) w->data = bench_dalloc(ctx, l.data_bytes);
    if (l.absmax_bytes) w->absmax = bench_dalloc(ctx, l.absmax_bytes);
    if (l.absmax_q_bytes) w->absmax_q = bench_dalloc(ctx, l.absmax_q_bytes);
    if (l.nested_absmax_bytes) w->nested_absmax = bench_dalloc(ctx, l.nested_absmax_bytes);
    if (l.nested_code_bytes) w->nested_code = bench_dalloc(ctx, l.nested_code_bytes);
    if (l.offset_bytes) w->offset = bench_dalloc(ctx, l.offset_bytes);
}

static void qweight_free(culora_context *ctx, culora_quant_weight *w)
{
    culora_free(ctx, w->data);
    culora_free(ctx, w->absmax);
    culora_free(ctx, w->absmax_q);
    culora_free(ctx, w->nested_absmax);
    culora_free(ctx, w->nested_code);
    culora_free(ctx, w->offset);
}

static size_t qweight_bytes(culora_context *ctx, const culora_quant_desc *d)
{
    culora_quant_layout l;
    BENCH_CHECK(ctx, culora_quant_layout_get(ctx, d, &l));
    return l.data_bytes + l.absmax_bytes + l.absmax_q_bytes + l.nested_absmax_bytes + l.nested_code_bytes +
           l.offset_bytes;
}

/* Quantizes host w on the CPU (the reference bytes) and returns a host copy. */
static culora_quant_host *quantize_host(culora_context *cpu, const culora_quant_desc *d, const float *w)
{
    culora_quant_host *h = NULL;
    BENCH_CHECK(cpu, culora_quant_host_create(cpu, d, CULORA_ST_BF16, &h));
    size_t wsb = 0;
    BENCH_CHECK(cpu, culora_quantize_workspace_size(cpu, d, &wsb));
    void *ws = bench_xmalloc(wsb);
    BENCH_CHECK(cpu, culora_quantize(cpu, d, w, d->cols, CULORA_DTYPE_F32, culora_quant_host_weight(h), ws, wsb, NULL));
    free(ws);
    return h;
}

static double peak_of(culora_context *ctx, const struct opts *o, const char **source)
{
    if (o->peak_gbps > 0) {
        *source = "flag";
        return o->peak_gbps;
    }
    const char *name = culora_context_device_name(ctx);
    *source = "device name";
    if (strstr(name, "H200")) return 4800;
    if (strstr(name, "H100") && strstr(name, "PCIe")) return 2000;
    if (strstr(name, "H100")) return 3350;
    if (strstr(name, "A100")) return 2039;
    *source = "unknown";
    return NAN;
}

/* Median ms of `call` (a batch of o->inner calls per sample; i counts calls for copy rotation). */
typedef void (*bench_fn)(void *state, int64_t i);

static double time_ms(culora_context *ctx, bench_fn fn, void *state, const struct opts *o)
{
    int64_t it = 0;
    for (int i = 0; i < o->warmup; i++)
        fn(state, it++);
    BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
    double samples[256];
    const int ns = o->samples < 256 ? o->samples : 256;
    for (int s = 0; s < ns; s++) {
        const double t0 = bench_now();
        for (int i = 0; i < o->inner; i++)
            fn(state, it++);
        BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
        samples[s] = (bench_now() - t0) / o->inner;
    }
    return 1e3 * bench_median(samples, ns);
}

/* ---- gemv --------------------------------------------------------------------------------- */

struct gemv_state {
    culora_context *ctx;
    bool bf16;
    culora_quant_desc d;
    culora_quant_weight *q; /* n_copies */
    void **w;               /* bf16 copies */
    int n_copies;
    void *x, *y, *ws;
    size_t ws_bytes;
};

static void gemv_call(void *p, int64_t i)
{
    struct gemv_state *s = p;
    const int c = (int)(i % s->n_copies);
    const int64_t n = s->d.rows, k = s->d.cols;
    if (s->bf16) {
        const culora_dtype dt = culora_context_compute_dtype(s->ctx);
        struct culora_gemm_args g = {false, true, 1, n, k, 1.0f, 0.0f, s->x, k, dt, s->w[c], k, dt, s->y, n, dt, NULL};
        BENCH_CHECK(s->ctx, culora_op_gemm(s->ctx, &g, s->ws, s->ws_bytes, NULL));
    } else {
        BENCH_CHECK(s->ctx, culora_quant_linear_forward(s->ctx, &s->d, &s->q[c], 1, s->x, k, NULL, s->y, n, s->ws,
                                                        s->ws_bytes, NULL));
    }
}

static int n_copies_for(size_t bytes, bool cpu)
{
    if (cpu)
        return 1;
    const size_t want = (size_t)200 << 20; /* > 2 × a 50 MB L2 */
    int n = (int)((want + bytes - 1) / bytes);
    return n < 1 ? 1 : (n > 32 ? 32 : n);
}

static void bench_gemv(culora_context *ctx, culora_context *cpu, const struct opts *o, int *failures)
{
    static const int64_t full[][2] = {{4096, 4096}, {14336, 4096}, {4096, 14336}};
    const bool on_cpu = culora_context_backend(ctx) == CULORA_BACKEND_CPU;
    const char *peak_src;
    const double peak = peak_of(ctx, o, &peak_src);
    const int n_shapes = o->quick ? 2 : 3;
    for (int si = 0; si < n_shapes; si++) {
        const int64_t n = full[si][0] / o->scale, k = full[si][1] / o->scale;
        float *w = host_random(n * k, 1.0f / sqrtf((float)k)), *x = host_random(k, 1.0f);
        const culora_dtype dt = culora_context_compute_dtype(ctx);
        const size_t es = culora_dtype_size(dt);
        void *dx = upload(ctx, x, 1, k, k);
        void *dy = bench_dalloc(ctx, (size_t)n * es);
        /* fp32 reference: y = W·x with the dequantized weight of each variant (CPU backend) */
        double ms_bf16 = NAN;
        const char *names[3] = {"bf16", "nf4", "nf4-dq"};
        for (int v = 0; v < 3; v++) {
            struct gemv_state s;
            memset(&s, 0, sizeof s);
            s.ctx = ctx;
            s.bf16 = v == 0;
            culora_quant_desc d = CULORA_QUANT_DESC_INIT;
            d.format = CULORA_QUANT_NF4;
            d.flags = v == 2 ? CULORA_QUANT_DOUBLE_QUANT : 0u;
            d.rows = n;
            d.cols = k;
            s.d = d;
            culora_quant_host *h = NULL;
            float *ref = bench_xmalloc((size_t)n * sizeof *ref);
            size_t w_bytes;
            if (s.bf16) {
                for (int64_t j = 0; j < n; j++) { /* W is bf16-exact (host_random) */
                    double acc = 0;
                    for (int64_t t = 0; t < k; t++)
                        acc += (double)w[j * k + t] * x[t];
                    ref[j] = (float)acc;
                }
                w_bytes = (size_t)(n * k) * es;
                s.n_copies = n_copies_for(w_bytes, on_cpu);
                s.w = bench_xmalloc((size_t)s.n_copies * sizeof *s.w);
                for (int c = 0; c < s.n_copies; c++)
                    s.w[c] = upload(ctx, w, n, k, k);
                s.ws_bytes = (size_t)32 << 20;
            } else {
                h = quantize_host(cpu, &d, w);
                size_t wsb = 0;
                BENCH_CHECK(cpu, culora_quant_linear_workspace_size(cpu, &d, 1, &wsb));
                void *cws = bench_xmalloc(wsb);
                BENCH_CHECK(cpu, culora_quant_linear_forward(cpu, &d, culora_quant_host_weight(h), 1, x, k, NULL, ref,
                                                             n, cws, wsb, NULL));
                free(cws);
                w_bytes = qweight_bytes(ctx, &d);
                s.n_copies = n_copies_for(w_bytes, on_cpu);
                s.q = bench_xmalloc((size_t)s.n_copies * sizeof *s.q);
                for (int c = 0; c < s.n_copies; c++) {
                    qweight_alloc(ctx, &d, &s.q[c]);
                    BENCH_CHECK(ctx, culora_quant_copy(ctx, &d, &s.q[c], culora_quant_host_weight(h),
                                                       CULORA_COPY_HOST_TO_DEVICE, NULL));
                }
                BENCH_CHECK(ctx, culora_quant_linear_workspace_size(ctx, &d, 1, &s.ws_bytes));
                s.ws_bytes += (size_t)32 << 20;
            }
            s.x = dx;
            s.y = dy;
            s.ws = bench_dalloc(ctx, s.ws_bytes);
            gemv_call(&s, 0);
            float *got = bench_download(ctx, dy, 1, n, n, dt);
            /* bf16 output rounding and, for bf16 W, cuBLASLt's order: 2^-7 as in the tests */
            const int64_t wrong = bench_count_wrong(got, ref, n, on_cpu ? 1e-4 : 1.0 / 128, NULL);
            double ms = NAN;
            if (wrong > 0) {
                fprintf(stderr, "bench_quant: gemv %s [%lld x %lld] is WRONG (%lld elements); not timed\n", names[v],
                        (long long)n, (long long)k, (long long)wrong);
                (*failures)++;
            } else {
                ms = time_ms(ctx, gemv_call, &s, o);
            }
            if (v == 0)
                ms_bf16 = ms;
            const double bytes = (double)w_bytes + (double)(k + n) * (double)es;
            const double gbps = bytes / (ms * 1e-3) / 1e9;
            char pct[32], spd[32], pk[32];
            bench_json_num(pct, sizeof pct, 100.0 * gbps / peak);
            bench_json_num(spd, sizeof spd, ms_bf16 / ms);
            bench_json_num(pk, sizeof pk, peak);
            printf("{\"bench\":\"quant\",\"suite\":\"gemv\",\"backend\":\"%s\",\"device\":\"%s\",\"variant\":\"%s\","
                   "\"rows\":%lld,\"cols\":%lld,\"scale\":%lld,\"ms\":%.5f,\"us\":%.2f,\"bytes\":%.0f,\"gbps\":%.1f,"
                   "\"peak_gbps\":%s,\"peak_source\":\"%s\",\"pct_of_peak\":%s,\"speedup_vs_bf16\":%s,"
                   "\"weight_copies\":%d,\"wrong\":%lld}\n",
                   culora_context_backend_name(ctx), culora_context_device_name(ctx), names[v], (long long)n,
                   (long long)k, (long long)o->scale, ms, ms * 1e3, bytes, gbps, pk, peak_src, pct, spd, s.n_copies,
                   (long long)wrong);
            fflush(stdout);
            free(got);
            free(ref);
            culora_free(ctx, s.ws);
            for (int c = 0; c < s.n_copies; c++) {
                if (s.bf16) culora_free(ctx, s.w[c]);
                else qweight_free(ctx, &s.q[c]);
            }
            free(s.w);
            free(s.q);
            culora_quant_host_destroy(h);
        }
        culora_free(ctx, dx);
        culora_free(ctx, dy);
        free(w);
        free(x);
    }
}

/* ---- dequant ------------------------------------------------------------------------------- */

struct deq_state {
    culora_context *ctx;
    culora_quant_desc d;
    culora_quant_weight *q;
    int n_copies;
    void *out;
};

static void deq_call(void *p, int64_t i)
{
    struct deq_state *s = p;
    BENCH_CHECK(s->ctx, culora_dequantize(s->ctx, &s->d, &s->q[i % s->n_copies], s->out, s->d.cols,
                                          culora_context_compute_dtype(s->ctx), NULL));
}

static void bench_dequant(culora_context *ctx, culora_context *cpu, const struct opts *o, int *failures)
{
    const bool on_cpu = culora_context_backend(ctx) == CULORA_BACKEND_CPU;
    const int64_t n = 14336 / o->scale, k = 4096 / o->scale;
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    float *w = host_random(n * k, 0.02f);
    for (int v = 0; v < 2; v++) {
        struct deq_state s;
        memset(&s, 0, sizeof s);
        s.ctx = ctx;
        culora_quant_desc d = CULORA_QUANT_DESC_INIT;
        d.rows = n;
        d.cols = k;
        d.flags = v ? CULORA_QUANT_DOUBLE_QUANT : 0u;
        s.d = d;
        culora_quant_host *h = quantize_host(cpu, &d, w);
        const size_t qb = qweight_bytes(ctx, &d);
        s.n_copies = n_copies_for(qb, on_cpu);
        s.q = bench_xmalloc((size_t)s.n_copies * sizeof *s.q);
        for (int c = 0; c < s.n_copies; c++) {
            qweight_alloc(ctx, &d, &s.q[c]);
            BENCH_CHECK(ctx, culora_quant_copy(ctx, &d, &s.q[c], culora_quant_host_weight(h), CULORA_COPY_HOST_TO_DEVICE,
                                               NULL));
        }
        s.out = bench_dalloc(ctx, (size_t)(n * k) * culora_dtype_size(dt));
        /* bit-exact: the CPU's dequantization in the same dtype */
        float *ref = bench_xmalloc((size_t)(n * k) * 4);
        uint16_t *ref16 = bench_xmalloc((size_t)(n * k) * 2);
        BENCH_CHECK(cpu, culora_dequantize(cpu, &d, culora_quant_host_weight(h), ref, k, CULORA_DTYPE_F32, NULL));
        if (dt == CULORA_DTYPE_BF16) {
            culora_f32_to_bf16(ref, ref16, (size_t)(n * k));
            culora_bf16_to_f32(ref16, ref, (size_t)(n * k));
        }
        deq_call(&s, 0);
        float *got = bench_download(ctx, s.out, n, k, k, dt);
        int64_t wrong = 0;
        for (int64_t i = 0; i < n * k; i++)
            wrong += memcmp(&got[i], &ref[i], 4) != 0;
        double ms = NAN;
        if (wrong) {
            fprintf(stderr, "bench_quant: dequant %s is WRONG (%lld elements differ); not timed\n", v ? "nf4-dq" : "nf4",
                    (long long)wrong);
            (*failures)++;
        } else {
            ms = time_ms(ctx, deq_call, &s, o);
        }
        const double bytes = (double)qb + (double)(n * k) * (double)culora_dtype_size(dt);
        printf("{\"bench\":\"quant\",\"suite\":\"dequant\",\"backend\":\"%s\",\"device\":\"%s\",\"variant\":\"%s\","
               "\"rows\":%lld,\"cols\":%lld,\"scale\":%lld,\"out\":\"%s\",\"ms\":%.5f,\"bytes\":%.0f,\"gbps\":%.1f,"
               "\"weight_copies\":%d,\"wrong\":%lld}\n",
               culora_context_backend_name(ctx), culora_context_device_name(ctx), v ? "nf4-dq" : "nf4", (long long)n,
               (long long)k, (long long)o->scale, culora_dtype_name(dt), ms, bytes, bytes / (ms * 1e-3) / 1e9,
               s.n_copies, (long long)wrong);
        fflush(stdout);
        free(got);
        free(ref);
        free(ref16);
        culora_free(ctx, s.out);
        for (int c = 0; c < s.n_copies; c++)
            qweight_free(ctx, &s.q[c]);
        free(s.q);
        culora_quant_host_destroy(h);
    }
    free(w);
}

/* ---- layer: LoRA fwd + bwd, bf16 vs quantized W0 ------------------------------------------------ */

enum { V_BF16, V_NF4DQ, V_NF4, V_INT8, N_LAYER_VARIANTS };
static const char *const layer_names[] = {"bf16", "nf4-dq", "nf4", "int8"};

/* Buffers of one layer problem. bf16 uses the augmented layout (culora's fused path):
 * xa = [x | v] [m, ldx], wa = [[W0, B], [A, 0]] [(d+r), ldw], dya = [dy | du] [m, lddy]; the
 * quantized variants use separate buffers x, a, b, v, dy, du with the same strides. */
struct layer {
    culora_context *ctx;
    int variant;
    int64_t m, k, d;
    int32_t r;
    int64_t ldx, ldw, lddy, ldy, lddx;
    void *xa, *wa, *dya, *y, *dx, *a, *b;
    float *da, *db;
    culora_quant_desc qd;
    culora_quant_weight q;
    void *ws;
    size_t ws_bytes;
};

static int64_t round8(int64_t v) { return (v + 7) / 8 * 8; }

static culora_lora_linear_desc layer_desc(const struct layer *L)
{
    culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
    desc.m = L->m;
    desc.k = L->k;
    desc.d = L->d;
    desc.r = L->r;
    desc.alpha = 2.0f * (float)L->r;
    desc.dtype = culora_context_compute_dtype(L->ctx);
    if (L->variant == V_BF16 && culora_context_backend(L->ctx) == CULORA_BACKEND_CUDA)
        desc.flags |= CULORA_LORA_REQUIRE_FUSED;
    return desc;
}

static void layer_call(void *p, int64_t i)
{
    (void)i;
    struct layer *L = p;
    const culora_lora_linear_desc desc = layer_desc(L);
    const size_t es = culora_dtype_size(desc.dtype);
    char *xa = L->xa, *wa = L->wa, *dya = L->dya;
    const int64_t k = L->k, d = L->d;
    if (L->variant == V_BF16) {
        const culora_lora_linear_fwd_args fa = {xa, L->ldx, wa, L->ldw, NULL, wa + (size_t)(d * L->ldw) * es, L->ldw,
                                                wa + (size_t)k * es, L->ldw, xa + (size_t)k * es, L->ldx, L->y, L->ldy};
        const culora_lora_linear_bwd_args ba = {xa, L->ldx, wa, L->ldw, wa + (size_t)(d * L->ldw) * es, L->ldw,
                                                wa + (size_t)k * es, L->ldw, xa + (size_t)k * es, L->ldx, dya, L->lddy,
                                                dya + (size_t)d * es, L->lddy, L->dx, L->lddx, L->da, k, L->db, L->r};
        BENCH_CHECK(L->ctx, culora_lora_linear_forward(L->ctx, &desc, &fa, L->ws, L->ws_bytes, NULL));
        BENCH_CHECK(L->ctx, culora_lora_linear_backward(L->ctx, &desc, &ba, L->ws, L->ws_bytes, NULL));
        return;
    }
    /* separate operands: x in xa (ld ldx), v beside it, A / B in their own buffers */
    const int64_t ldr = round8(L->r);
    const culora_lora_linear_fwd_args fa = {xa, L->ldx, NULL, 0, NULL, L->a, L->ldx, L->b, ldr, xa + (size_t)k * es,
                                            L->ldx, L->y, L->ldy};
    const culora_lora_linear_bwd_args ba = {xa, L->ldx, NULL, 0, L->a, L->ldx, L->b, ldr, xa + (size_t)k * es, L->ldx,
                                            dya, L->lddy, dya + (size_t)d * es, L->lddy, L->dx, L->lddx, L->da, k, L->db,
                                            L->r};
    BENCH_CHECK(L->ctx, culora_lora_linear_quant_forward(L->ctx, &desc, &L->qd, &L->q, &fa, L->ws, L->ws_bytes, NULL));
    BENCH_CHECK(L->ctx, culora_lora_linear_quant_backward(L->ctx, &desc, &L->qd, &L->q, &ba, L->ws, L->ws_bytes, NULL));
}

struct layer_host {
    float *x, *w0, *a, *b, *dy;
};

static void layer_setup(struct layer *L, culora_context *ctx, culora_context *cpu, int variant, int64_t m, int64_t k,
                        int64_t d, int32_t r, const struct layer_host *h)
{
    memset(L, 0, sizeof *L);
    L->ctx = ctx;
    L->variant = variant;
    L->m = m;
    L->k = k;
    L->d = d;
    L->r = r;
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    const size_t es = culora_dtype_size(dt);
    const bool cpu_be = dt == CULORA_DTYPE_F32;
    L->ldx = cpu_be ? k + r : round8(k + r);
    L->ldw = L->ldx;
    L->lddy = cpu_be ? d + r : round8(d + r);
    L->ldy = cpu_be ? d : round8(d);
    L->lddx = cpu_be ? k : round8(k);
    L->xa = upload(ctx, h->x, m, k, L->ldx);   /* x in columns [0,k); v is written beside it */
    L->dya = upload(ctx, h->dy, m, d, L->lddy); /* dy in columns [0,d); du beside it */
    L->y = bench_dalloc(ctx, (size_t)(m * L->ldy) * es);
    L->dx = bench_dalloc(ctx, (size_t)(m * L->lddx) * es);
    L->da = bench_dalloc(ctx, (size_t)(r * k) * 4);
    L->db = bench_dalloc(ctx, (size_t)(d * r) * 4);
    culora_lora_linear_desc desc = layer_desc(L);
    size_t fw = 0, bw = 0;
    if (variant == V_BF16) {
        /* wa = [[W0, B], [A, 0]] */
        float *wa = calloc((size_t)((d + r) * L->ldw), 4);
        for (int64_t i = 0; i < d; i++) {
            memcpy(wa + i * L->ldw, h->w0 + i * k, (size_t)k * 4);
            memcpy(wa + i * L->ldw + k, h->b + i * r, (size_t)r * 4);
        }
        for (int64_t i = 0; i < r; i++)
            memcpy(wa + (d + i) * L->ldw, h->a + i * k, (size_t)k * 4);
        L->wa = upload(ctx, wa, d + r, L->ldw, L->ldw);
        free(wa);
        BENCH_CHECK(ctx, culora_lora_linear_workspace_size(ctx, &desc, &fw, &bw));
    } else {
        L->a = upload(ctx, h->a, r, k, L->ldx);
        L->b = upload(ctx, h->b, d, r, round8(r));
        culora_quant_desc qd = CULORA_QUANT_DESC_INIT;
        qd.format = variant == V_INT8 ? CULORA_QUANT_INT8 : CULORA_QUANT_NF4;
        qd.flags = variant == V_NF4DQ ? CULORA_QUANT_DOUBLE_QUANT : 0u;
        qd.rows = d;
        qd.cols = k;
        L->qd = qd;
        culora_quant_host *qh = quantize_host(cpu, &qd, h->w0);
        qweight_alloc(ctx, &qd, &L->q);
        BENCH_CHECK(ctx, culora_quant_copy(ctx, &qd, &L->q, culora_quant_host_weight(qh), CULORA_COPY_HOST_TO_DEVICE,
                                           NULL));
        BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
        culora_quant_host_destroy(qh);
        BENCH_CHECK(ctx, culora_lora_linear_quant_workspace_size(ctx, &desc, &qd, &fw, &bw));
    }
    L->ws_bytes = (fw > bw ? fw : bw) + (cpu_be ? 0 : ((size_t)32 << 20));
    L->ws = bench_dalloc(ctx, L->ws_bytes);
}

static void layer_free(struct layer *L)
{
    void *all[] = {L->xa, L->wa, L->dya, L->y, L->dx, L->a, L->b, L->da, L->db, L->ws};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        culora_free(L->ctx, all[i]);
    qweight_free(L->ctx, &L->q);
}

/* Runs fwd + bwd once and returns y, dx, dA, dB concatenated (fp32). */
static float *layer_outputs(struct layer *L, int64_t *n_out)
{
    const culora_dtype dt = culora_context_compute_dtype(L->ctx);
    BENCH_CHECK(L->ctx, culora_memset(L->ctx, L->da, 0, (size_t)(L->r * L->k) * 4, NULL));
    BENCH_CHECK(L->ctx, culora_memset(L->ctx, L->db, 0, (size_t)(L->d * L->r) * 4, NULL));
    layer_call(L, 0);
    BENCH_CHECK(L->ctx, culora_synchronize(L->ctx, NULL));
    const int64_t ny = L->m * L->d, nx = L->m * L->k, na = L->r * L->k, nb = L->d * L->r;
    float *out = bench_xmalloc((size_t)(ny + nx + na + nb) * 4);
    float *y = bench_download(L->ctx, L->y, L->m, L->d, L->ldy, dt), *dx = bench_download(L->ctx, L->dx, L->m, L->k, L->lddx, dt);
    float *da = bench_download(L->ctx, L->da, L->r, L->k, L->k, CULORA_DTYPE_F32);
    float *db = bench_download(L->ctx, L->db, L->d, L->r, L->r, CULORA_DTYPE_F32);
    memcpy(out, y, (size_t)ny * 4);
    memcpy(out + ny, dx, (size_t)nx * 4);
    memcpy(out + ny + nx, da, (size_t)na * 4);
    memcpy(out + ny + nx + na, db, (size_t)nb * 4);
    free(y);
    free(dx);
    free(da);
    free(db);
    *n_out = ny + nx + na + nb;
    return out;
}

static struct layer_host layer_host_data(int64_t m, int64_t k, int64_t d, int32_t r)
{
    struct layer_host h;
    h.x = host_random(m * k, 1.0f);
    h.w0 = host_random(d * k, 1.0f / sqrtf((float)k));
    h.a = host_random(r * k, 1.0f / sqrtf((float)k));
    h.b = host_random(d * r, 1.0f / sqrtf((float)r));
    h.dy = host_random(m * d, 1.0f);
    return h;
}

static void layer_host_free(struct layer_host *h)
{
    free(h->x); free(h->w0); free(h->a); free(h->b); free(h->dy);
}

static void bench_layer(culora_context *ctx, culora_context *cpu, const struct opts *o, int *failures)
{
    const bool on_cpu = culora_context_backend(ctx) == CULORA_BACKEND_CPU;
    const int64_t scale = on_cpu ? 2 * o->scale : 1;
    const int64_t M = 8192 / scale, K = 4096 / scale, D = 4096 / scale;
    const int32_t R = 16;
    /* validation shape: the CPU reference of each variant on the same quantized bytes */
    const int64_t vm = 256, vk = 512, vd = 512;
    struct layer_host vh = layer_host_data(vm, vk, vd, R), th = layer_host_data(M, K, D, R);
    double ms[N_LAYER_VARIANTS];
    for (int v = 0; v < N_LAYER_VARIANTS; v++) {
        struct layer Lr, Lg;
        layer_setup(&Lr, cpu, cpu, v, vm, vk, vd, R, &vh);
        layer_setup(&Lg, ctx, cpu, v, vm, vk, vd, R, &vh);
        int64_t n = 0;
        float *ref = layer_outputs(&Lr, &n), *got = layer_outputs(&Lg, &n);
        /* y, dx, dA, dB each against its own RMS: dA and dB are sums over m rows, far larger
         * than y and dx, and one RMS over all four would misjudge both groups. bf16 W0: 2^-7 as
         * bench_lora_linear. Quantized W0: the dequantized weight is rounded to bf16 once more
         * before the GEMM (the CPU keeps it in fp32), as tests/quant/test_quant_cuda.cpp allows
         * with 2^-5 of the RMS (H100 2026-11-26: ~22 of 278k elements beyond 2^-7). */
        const double tol = on_cpu ? 1e-4 : (v == V_BF16 ? 1.0 / 128 : 1.0 / 32);
        const int64_t parts[4] = {vm * vd, vm * vk, R * vk, vd * R};
        int64_t wrong = 0, off = 0;
        for (int q = 0; q < 4; q++) {
            wrong += bench_count_wrong(got + off, ref + off, parts[q], tol, NULL);
            off += parts[q];
        }
        if (off != n)
            wrong = n; /* layer_outputs changed its layout: fail loudly */
        free(ref);
        free(got);
        layer_free(&Lr);
        layer_free(&Lg);
        ms[v] = NAN;
        if (wrong > 0) {
            fprintf(stderr, "bench_quant: layer %s is WRONG at m=%lld k=%lld d=%lld (%lld elements); not timed\n",
                    layer_names[v], (long long)vm, (long long)vk, (long long)vd, (long long)wrong);
            (*failures)++;
        } else {
            struct layer L;
            layer_setup(&L, ctx, cpu, v, M, K, D, R, &th);
            ms[v] = time_ms(ctx, layer_call, &L, o);
            layer_free(&L);
        }
        char ratio[32], ms_s[32];
        bench_json_num(ratio, sizeof ratio, ms[v] / ms[V_BF16]);
        bench_json_num(ms_s, sizeof ms_s, ms[v]); /* null when not timed */
        printf("{\"bench\":\"quant\",\"suite\":\"layer\",\"backend\":\"%s\",\"device\":\"%s\",\"variant\":\"%s\","
               "\"m\":%lld,\"k\":%lld,\"d\":%lld,\"r\":%d,\"scale\":%lld,\"ms\":%s,\"ratio_to_bf16\":%s,"
               "\"validated_at\":[%lld,%lld,%lld],\"wrong\":%lld}\n",
               culora_context_backend_name(ctx), culora_context_device_name(ctx), layer_names[v], (long long)M,
               (long long)K, (long long)D, (int)R, (long long)scale, ms_s, ratio, (long long)vm, (long long)vk,
               (long long)vd, (long long)wrong);
        fflush(stdout);
    }
    layer_host_free(&vh);
    layer_host_free(&th);
}

/* ---- driver ------------------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: bench_quant [--quick] [--backend cpu|cuda|auto] [--suite gemv|dequant|layer]\n"
                    "                   [--scale N] [--peak-gbps G] [--warmup N] [--samples N] [--inner N]\n"
                    "  One JSON line per measurement; see the header of bench/bench_quant.c.\n");
}

int main(int argc, char **argv)
{
    cli_cpu_runtime(argv);
    struct opts o = {0};
    o.backend = CULORA_BACKEND_AUTO;
    o.warmup = o.samples = o.inner = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) o.quick = true;
        else if (strcmp(a, "--backend") == 0 && val) {
            o.backend = strcmp(val, "cpu") == 0 ? CULORA_BACKEND_CPU : strcmp(val, "cuda") == 0 ? CULORA_BACKEND_CUDA
                                                                                               : CULORA_BACKEND_AUTO;
            i++;
        } else if (strcmp(a, "--suite") == 0 && val) { o.only = val; i++; }
        else if (strcmp(a, "--scale") == 0 && val) { o.scale = atoll(val); i++; }
        else if (strcmp(a, "--peak-gbps") == 0 && val) { o.peak_gbps = atof(val); i++; }
        else if (strcmp(a, "--warmup") == 0 && val) { o.warmup = atoi(val); i++; }
        else if (strcmp(a, "--samples") == 0 && val) { o.samples = atoi(val); i++; }
        else if (strcmp(a, "--inner") == 0 && val) { o.inner = atoi(val); i++; }
        else { usage(); return 2; }
    }
    culora_context *ctx = make_ctx(o.backend);
    culora_context *cpu = make_ctx(CULORA_BACKEND_CPU);
    const bool on_cpu = culora_context_backend(ctx) == CULORA_BACKEND_CPU;
    if (o.scale <= 0) o.scale = on_cpu ? 4 : 1;
    if (o.warmup < 0) o.warmup = on_cpu ? 1 : (o.quick ? 5 : 20);
    if (o.samples < 0) o.samples = on_cpu ? 3 : (o.quick ? 7 : 20);
    if (o.inner < 0) o.inner = on_cpu ? 1 : (o.quick ? 5 : 20);
    fprintf(stderr, "bench_quant: backend %s (%s), scale 1/%lld, warmup %d, %d samples x %d calls\n",
            culora_context_backend_name(ctx), culora_context_device_name(ctx), (long long)o.scale, o.warmup, o.samples,
            o.inner);
    int failures = 0;
    if (o.only == NULL || strcmp(o.only, "gemv") == 0) bench_gemv(ctx, cpu, &o, &failures);
    if (o.only == NULL || strcmp(o.only, "dequant") == 0) bench_dequant(ctx, cpu, &o, &failures);
    if (o.only == NULL || strcmp(o.only, "layer") == 0) bench_layer(ctx, cpu, &o, &failures);
    culora_context_destroy(cpu);
    culora_context_destroy(ctx);
    return failures ? 1 : 0;
}
