/*
 * bench_adapters.c — inference latency of adapter baselines, the LoRA paper's Table 1 (Hu et al.,
 * arXiv 2106.09685; reference/perf_anchors.md §5): one forward pass of GPT-2 medium (24 layers,
 * d = 1024, 16 heads, MLP 4096, vocab 50257, 1024 positions, tied head; LM head included) at
 * batch × seq 32×512, 16×256 and 1×128, for
 *   none       no adapter: fine-tuned weights, or LoRA merged into them (zero added latency)
 *   lora       LoRA unmerged, r = 4 on W_q and W_v, α = 32 (the paper's GPT-2 setting), through the
 *              fused culora_lora_linear op (adapter_model.h)
 *   adapter_l  Lin et al.'s adapter (one per block, after the MLP, with a LayerNorm)
 *   adapter_h  Houlsby et al.'s adapters (two per block)
 * Bottleneck sizes reproduce the table's |Θ| (perf_anchors §5): 0.5M column (32×512) AdapterL
 * r = 9 (0.52M), AdapterH r = 5 (0.54M); 11M columns AdapterL r = 224 (11.09M), AdapterH r = 112
 * (11.06M). Weights are random (culora_model_create for the base).
 *
 * Before anything is timed:
 *   1. every variant against an fp64 host reference (adapter_ref.c) on a small GPT-2 (2 layers,
 *      d = 64, ragged ranks, random non-zero adapters), and each adapter must move the logits by far
 *      more than the tolerance (so the check sees it);
 *   2. at the benchmarked size, each variant with identity adapters (zero up-projection / LoRA B)
 *      against culora_model_forward's logits on 1×8 tokens;
 *   3. every timed configuration runs once and its logits must be finite; on CUDA the captured graph
 *      must reproduce the eager logits bit for bit.
 * A failed check prints "wrong" > 0, skips the timing of that case and makes the exit status 1.
 *
 * Timing: wall clock around one forward pass and culora_synchronize (the paper times single
 * passes). Samples are taken round-robin over the variants of a setting (one pass of each in turn),
 * so a change in machine load hits every variant alike. Reported: median (the table), mean, std,
 * min. CUDA: eager launches for every cell, plus CUDA-graph replay at batch 1 (the table uses the
 * graph there). Defaults: CUDA 20 warm-up passes and 100 samples (--quick: 5 and 20); CPU 1 and
 * 3 — the CPU backend is a reference, not a serving path: one full-size pass at 1×512 takes ~30 s on
 * the 2-core development machine.
 * Scaling on the CPU (every run's JSON says what ran): --batch-div N divides each setting's batch by
 * N (at least 1; default 32 on the CPU, so every setting runs at batch 1 — 1×512, 1×256, 1×128 —
 * with the full-size model); --layers N uses N blocks instead of 24. --quick on the CPU is a smoke
 * run: 4 layers, no warm-up, one sample.
 * Output: one JSON line per (setting, variant, launch) with ms and the % over "none"; a Markdown
 * table with the paper's numbers on stderr. scripts/plot-adapters draws the chart from the JSON.
 */
#include "bench_util.h"

#include "adapter_model.h"
#include "cpu_runtime.h"
#include "cuda_graph.h"
#include "model/model.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#define N_KINDS 4

struct setting {
    const char *name;
    int64_t batch, seq;      /* the paper's */
    int32_t r_l, r_h;        /* bottleneck of AdapterL / AdapterH */
    double paper_ms[N_KINDS]; /* none, lora (not in the table: NAN), adapter_l, adapter_h */
};

static const struct setting settings[] = {
    {"32x512", 32, 512, 9, 5, {1449.4, NAN, 1482.0, 1492.2}},
    {"16x256", 16, 256, 224, 112, {338.0, NAN, 354.8, 366.3}},
    {"1x128", 1, 128, 224, 112, {19.8, NAN, 23.9, 25.8}},
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

#define LORA_R 4
#define LORA_ALPHA 32.0f

struct opts {
    bool quick, graphs;
    int backend;
    int64_t batch_div, layers;
    int warmup, samples;
    bool use[N_SETTINGS];
};

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static int32_t rand_token(int64_t vocab)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (int32_t)(rng_state % (uint64_t)vocab);
}

static culora_model_config gpt2_config(int64_t layers, int64_t d, int64_t heads, int64_t vocab, int64_t positions)
{
    return bench_model_config(CULORA_ARCH_GPT2, layers, d, heads, heads, 4 * d, vocab, positions, 0.0);
}

static culora_model *make_base(culora_context *ctx, const culora_model_config *cfg, int64_t max_seq)
{
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.mode = CULORA_MODE_INFERENCE;
    mp.max_batch = 1;
    mp.max_seq = max_seq; /* the model's own buffers serve the culora_model_forward check only */
    culora_model *m = NULL;
    BENCH_CHECK(ctx, culora_model_create(ctx, cfg, 20210617u, &mp, &m));
    return m;
}

/* Elements outside |got - ref| <= tol·(rms(ref) + |ref|); *err = max |got - ref| / rms(ref). */
static int64_t count_wrong(const float *got, const double *ref, int64_t n, double tol, double *err)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += ref[i] * ref[i];
    const double rms = sqrt(ss / (double)n) + 1e-300;
    int64_t bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - ref[i]);
        if (!(e <= tol * (rms + fabs(ref[i]))))
            bad++;
        worst = isnan(e) ? INFINITY : fmax(worst, e / rms);
    }
    *err = worst;
    return bad;
}

static double rel_rms_diff(const double *a, const double *b, int64_t n)
{
    double ss = 0, sd = 0;
    for (int64_t i = 0; i < n; i++) {
        ss += b[i] * b[i];
        sd += (a[i] - b[i]) * (a[i] - b[i]);
    }
    return sqrt(sd / (ss + 1e-300));
}

static void print_check(const char *check, const char *variant, int32_t r, double err, double tol, int64_t wrong,
                        double sensitivity)
{
    char sens[32];
    bench_json_num(sens, sizeof sens, sensitivity);
    printf("{\"bench\":\"adapters\",\"check\":\"%s\",\"variant\":\"%s\",\"r\":%d,\"max_err_rel_rms\":%.3g,"
           "\"tol\":%.3g,\"sensitivity\":%s,\"wrong\":%lld}\n",
           check, variant, (int)r, err, tol, sens, (long long)wrong);
    fflush(stdout);
}

/* ---- check 1: every variant against the fp64 reference on a small GPT-2 ------------------------------- */

static int check_reference(culora_context *ctx)
{
    const bool bf16 = culora_context_compute_dtype(ctx) == CULORA_DTYPE_BF16;
    /* fp32 (CPU): the reference differs by fp32 rounding of sums over K <= 256 and of the stored
     * activations, ~1e-6 of RMS through two layers; 1e-4 leaves two orders of margin.
     * bf16 (CUDA): every activation is stored in bf16 (relative rounding 2^-9); about ten roundings
     * on the path to a logit give ~1-2% of RMS; 1/16 of (RMS + |ref|) leaves 3-6x margin. */
    const double tol = bf16 ? 1.0 / 16 : 1e-4;
    const culora_model_config cfg = gpt2_config(2, 64, 4, 101, 32);
    culora_model *base = make_base(ctx, &cfg, 1);
    const int64_t B = 2, T = 7, n = B * T, V = cfg.vocab_size;
    int32_t *tok = bench_xmalloc((size_t)n * sizeof *tok);
    for (int64_t i = 0; i < n; i++)
        tok[i] = rand_token(V);
    adapter_buffers *buf = NULL;
    BENCH_CHECK(ctx, adapter_buffers_create(base, B, T, 5, 3, &buf));
    BENCH_CHECK(ctx, adapter_buffers_set_tokens(buf, tok, B, T));
    float *got = bench_xmalloc((size_t)(n * V) * sizeof *got);
    double *ref[N_KINDS];
    const int32_t r[N_KINDS] = {0, 3, 5, 4}; /* ragged ranks: LoRA q/v 3 (fused rank 6), L 5, H 4 */
    int failures = 0;
    for (int k = 0; k < N_KINDS; k++) {
        const struct adapter_params p = {.kind = k, .r = r[k], .lora_alpha = 8.0f, .seed = 77u + (uint64_t)k};
        adapter_model *am = NULL;
        BENCH_CHECK(ctx, adapter_model_create(&p, buf, &am));
        ref[k] = bench_xmalloc((size_t)(n * V) * sizeof *ref[k]);
        BENCH_CHECK(ctx, adapter_reference_forward(am, tok, B, T, ref[k]));
        BENCH_CHECK(ctx, adapter_model_forward(am));
        BENCH_CHECK(ctx, adapter_buffers_logits(buf, got));
        double err = 0;
        const int64_t wrong = count_wrong(got, ref[k], n * V, tol, &err);
        /* The adapter must change the logits by much more than the tolerance, or the check is blind. */
        const double sens = k == ADAPTER_NONE ? NAN : rel_rms_diff(ref[k], ref[ADAPTER_NONE], n * V);
        const bool blind = k != ADAPTER_NONE && !(sens > 10 * tol);
        print_check("fp64_reference", adapter_kind_name(k), r[k], err, tol, wrong + (blind ? 1 : 0), sens);
        if (wrong > 0 || blind) {
            fprintf(stderr, "bench_adapters: %s differs from the fp64 reference: %lld of %lld logits out of "
                            "tolerance (max error %.3g of RMS)%s\n",
                    adapter_kind_name(k), (long long)wrong, (long long)(n * V), err,
                    blind ? "; the adapter barely changes the logits, the check cannot see it" : "");
            failures++;
        }
        adapter_model_destroy(am);
    }
    for (int k = 0; k < N_KINDS; k++)
        free(ref[k]);
    free(got);
    free(tok);
    adapter_buffers_destroy(buf);
    culora_model_destroy(base);
    return failures;
}

/* ---- check 2: identity adapters reproduce culora_model_forward at the benchmarked size -------------- */

static int check_identity(culora_context *ctx, culora_model *base, int32_t r_l, int32_t r_h)
{
    const bool bf16 = culora_context_compute_dtype(ctx) == CULORA_DTYPE_BF16;
    /* none / AdapterL / AdapterH run culora_model_forward's ops in its order (an identity adapter adds
     * exact zeros), so only LoRA's c_attn differs: its GEMM sums K = C + 8 products (8 of them zero)
     * in another order. fp32: ~1e-7 relative per element, grown through 24 layers: 1e-4 of RMS.
     * bf16: one c_attn output may round to the neighbouring bf16 value (2^-8 relative) and that
     * propagates through the layers; 1/16 of (RMS + |ref|) as in check 1. */
    const double tol = bf16 ? 1.0 / 16 : 1e-4;
    const culora_model_config *cfg = culora_model_get_config(base);
    const int64_t T = 8, V = cfg->vocab_size;
    int32_t tok[8];
    for (int64_t i = 0; i < T; i++)
        tok[i] = rand_token(V);
    float *want = bench_xmalloc((size_t)(T * V) * sizeof *want), *got = bench_xmalloc((size_t)(T * V) * sizeof *got);
    double *want_d = bench_xmalloc((size_t)(T * V) * sizeof *want_d);
    BENCH_CHECK(ctx, culora_model_forward(base, tok, NULL, 1, T, NULL));
    BENCH_CHECK(ctx, culora_model_logits(base, 0, T, want));
    for (int64_t i = 0; i < T * V; i++)
        want_d[i] = want[i];
    const int32_t r[N_KINDS] = {0, LORA_R, r_l, r_h};
    adapter_buffers *buf = NULL;
    BENCH_CHECK(ctx, adapter_buffers_create(base, 1, T, r_l > r_h ? r_l : r_h, LORA_R, &buf));
    BENCH_CHECK(ctx, adapter_buffers_set_tokens(buf, tok, 1, T));
    int failures = 0;
    for (int k = 0; k < N_KINDS; k++) {
        const struct adapter_params p = {.kind = k, .r = r[k], .lora_alpha = LORA_ALPHA, .seed = 5u, .zero_up = true};
        adapter_model *am = NULL;
        BENCH_CHECK(ctx, adapter_model_create(&p, buf, &am));
        BENCH_CHECK(ctx, adapter_model_forward(am));
        BENCH_CHECK(ctx, adapter_buffers_logits(buf, got));
        double err = 0;
        const int64_t wrong = count_wrong(got, want_d, T * V, tol, &err);
        print_check("identity_vs_model_forward", adapter_kind_name(k), r[k], err, tol, wrong, NAN);
        if (wrong > 0) {
            fprintf(stderr, "bench_adapters: %s with identity adapters differs from culora_model_forward: %lld "
                            "logits out of tolerance (max error %.3g of RMS)\n",
                    adapter_kind_name(k), (long long)wrong, err);
            failures++;
        }
        adapter_model_destroy(am);
    }
    adapter_buffers_destroy(buf);
    free(want);
    free(want_d);
    free(got);
    return failures;
}

/* ---- timing ------------------------------------------------------------------------------------------ */

struct cell {
    int kind;
    bool graph;
    adapter_model *am;
    bench_graph *g;
    double *t;    /* samples, seconds */
    double ms;    /* median */
    bool ok;
};

/* GEMM FLOPs of one forward (2 per multiply-add), as the ops execute them: attention's two T×T×D
 * products per head in full (the CPU reference and the CUDA v1 kernel compute all of S), the fused
 * LoRA as x·Aᵀ (rank 2r) plus the block-sparse B with its zeros. Norms and elementwise passes are
 * left out. What a compute-bound backend's % over "none" should approach. */
static double forward_flops(const culora_model_config *c, int kind, int32_t r, int64_t batch, int64_t seq)
{
    const double n = (double)(batch * seq), C = (double)c->hidden_size, I = (double)c->intermediate_size;
    const double L = (double)c->n_layers, T = (double)seq, V = (double)c->vocab_size;
    double f = n * L * 2.0 * (3 * C * C + C * C + 2 * C * I) + L * (double)batch * 4.0 * T * T * C + n * 2.0 * C * V;
    if (kind == ADAPTER_LORA)
        f += n * L * 2.0 * (C * 2 * r + 2 * r * 3 * C);
    else if (kind == ADAPTER_L)
        f += n * L * 4.0 * C * r;
    else if (kind == ADAPTER_H)
        f += n * L * 8.0 * C * r;
    return f;
}

static culora_status forward_fn(void *user) { return adapter_model_forward(user); }

static culora_status run_cell(culora_context *ctx, struct cell *c)
{
    if (c->graph)
        return bench_graph_launch(c->g, culora_context_stream(ctx));
    return adapter_model_forward(c->am);
}

static int64_t count_nonfinite(const float *v, int64_t n)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += !isfinite(v[i]);
    return bad;
}

static void stats(double *t, int n, double *median, double *mean, double *std, double *min)
{
    double s = 0, ss = 0;
    *min = INFINITY;
    for (int i = 0; i < n; i++) {
        s += t[i];
        *min = fmin(*min, t[i]);
    }
    *mean = s / n;
    for (int i = 0; i < n; i++)
        ss += (t[i] - *mean) * (t[i] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
    *median = bench_median(t, n);
}

static int bench_setting(culora_context *ctx, culora_model *base, const struct setting *st, const struct opts *o)
{
    const bool cuda = culora_context_backend(ctx) == CULORA_BACKEND_CUDA;
    const culora_model_config *cfg = culora_model_get_config(base);
    const int64_t batch = st->batch / o->batch_div > 0 ? st->batch / o->batch_div : 1, seq = st->seq;
    const int64_t n = batch * seq, V = cfg->vocab_size;
    const int32_t r[N_KINDS] = {0, LORA_R, st->r_l, st->r_h};
    adapter_buffers *buf = NULL;
    BENCH_CHECK(ctx, adapter_buffers_create(base, batch, seq, st->r_l > st->r_h ? st->r_l : st->r_h, LORA_R, &buf));
    int32_t *tok = bench_xmalloc((size_t)n * sizeof *tok);
    for (int64_t i = 0; i < n; i++)
        tok[i] = rand_token(V);
    BENCH_CHECK(ctx, adapter_buffers_set_tokens(buf, tok, batch, seq));
    free(tok);
    float *logits = bench_xmalloc((size_t)(n * V) * sizeof *logits), *eager = NULL;
    const bool graphs = cuda && o->graphs && batch == 1;
    struct cell cells[2 * N_KINDS];
    int nc = 0, failures = 0;
    for (int k = 0; k < N_KINDS; k++) {
        const struct adapter_params p = {.kind = k, .r = r[k], .lora_alpha = LORA_ALPHA, .seed = 1000u + (uint64_t)k};
        adapter_model *am = NULL;
        BENCH_CHECK(ctx, adapter_model_create(&p, buf, &am));
        for (int gi = 0; gi < (graphs ? 2 : 1); gi++)
            cells[nc++] = (struct cell){.kind = k, .graph = gi == 1, .am = am, .ms = NAN, .ok = true};
    }
    /* check 3: one pass of each, finite logits; the graph reproduces the eager pass exactly */
    for (int c = 0; c < nc; c++) {
        struct cell *ce = &cells[c];
        int64_t wrong = 0;
        char err[512] = "";
        if (ce->graph) {
            culora_status s = bench_graph_capture(culora_context_stream(ctx), forward_fn, ce->am, &ce->g, err,
                                                  sizeof err);
            if (s != CULORA_OK) {
                fprintf(stderr, "bench_adapters: CUDA graph capture of %s failed: %s (%s)\n",
                        adapter_kind_name(ce->kind), err, culora_context_last_error(ctx));
                wrong = 1;
            }
        }
        if (wrong == 0) {
            BENCH_CHECK(ctx, run_cell(ctx, ce));
            BENCH_CHECK(ctx, adapter_buffers_logits(buf, logits));
            wrong = count_nonfinite(logits, n * V);
            if (ce->graph && eager != NULL && memcmp(eager, logits, (size_t)(n * V) * sizeof *logits) != 0) {
                fprintf(stderr, "bench_adapters: the CUDA graph of %s does not reproduce its eager logits\n",
                        adapter_kind_name(ce->kind));
                wrong++;
            }
            if (!ce->graph && graphs) { /* the graph cell of this kind follows */
                free(eager);
                eager = bench_xmalloc((size_t)(n * V) * sizeof *eager);
                memcpy(eager, logits, (size_t)(n * V) * sizeof *eager);
            }
        }
        if (wrong > 0) {
            ce->ok = false;
            failures++;
            printf("{\"bench\":\"adapters\",\"check\":\"timed_config\",\"setting\":\"%s\",\"variant\":\"%s\","
                   "\"launch\":\"%s\",\"wrong\":%lld}\n",
                   st->name, adapter_kind_name(ce->kind), ce->graph ? "graph" : "eager", (long long)wrong);
        }
    }
    free(eager);
    free(logits);
    /* warm-up, then samples round-robin over the cells */
    for (int i = 0; i < o->warmup; i++)
        for (int c = 0; c < nc; c++)
            if (cells[c].ok)
                BENCH_CHECK(ctx, run_cell(ctx, &cells[c]));
    BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
    for (int c = 0; c < nc; c++)
        cells[c].t = bench_xmalloc((size_t)o->samples * sizeof(double));
    for (int si = 0; si < o->samples; si++)
        for (int c = 0; c < nc; c++) {
            if (!cells[c].ok)
                continue;
            const double t0 = bench_now();
            BENCH_CHECK(ctx, run_cell(ctx, &cells[c]));
            BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
            cells[c].t[si] = bench_now() - t0;
        }
    for (int c = 0; c < nc; c++) {
        struct cell *ce = &cells[c];
        if (!ce->ok)
            continue;
        double med, mean, sd, mn;
        stats(ce->t, o->samples, &med, &mean, &sd, &mn);
        ce->ms = 1e3 * med;
        double none_ms = NAN;
        for (int j = 0; j < nc; j++)
            if (cells[j].kind == ADAPTER_NONE && cells[j].graph == ce->graph)
                none_ms = cells[j].ms;
        const double fl = forward_flops(cfg, ce->kind, r[ce->kind], batch, seq);
        const double fl_pct = 100.0 * (fl / forward_flops(cfg, ADAPTER_NONE, 0, batch, seq) - 1.0);
        char pct[32], paper_ms[32], paper_pct[32];
        bench_json_num(pct, sizeof pct, ce->kind == ADAPTER_NONE ? 0.0 : 100.0 * (ce->ms / none_ms - 1.0));
        bench_json_num(paper_ms, sizeof paper_ms, st->paper_ms[ce->kind]);
        bench_json_num(paper_pct, sizeof paper_pct, 100.0 * (st->paper_ms[ce->kind] / st->paper_ms[0] - 1.0));
        printf("{\"bench\":\"adapters\",\"backend\":\"%s\",\"device\":\"%s\",\"dtype\":\"%s\",\"setting\":\"%s\","
               "\"batch\":%lld,\"seq\":%lld,\"paper_batch\":%lld,\"batch_div\":%lld,\"layers\":%lld,\"d\":%lld,"
               "\"variant\":\"%s\",\"r\":%d,\"params\":%lld,\"launch\":\"%s\",\"ms\":%.4f,\"mean_ms\":%.4f,"
               "\"std_ms\":%.4f,\"min_ms\":%.4f,\"pct_vs_none\":%s,\"gflop\":%.2f,\"flop_pct_vs_none\":%.3f,"
               "\"tflops\":%.4f,\"paper_ms\":%s,\"paper_pct\":%s,\"samples\":%d,\"warmup\":%d,\"wrong\":0}\n",
               culora_context_backend_name(ctx), culora_context_device_name(ctx),
               culora_dtype_name(culora_context_compute_dtype(ctx)), st->name, (long long)batch, (long long)seq,
               (long long)st->batch, (long long)o->batch_div, (long long)cfg->n_layers, (long long)cfg->hidden_size,
               adapter_kind_name(ce->kind), (int)r[ce->kind], (long long)adapter_model_n_params(ce->am),
               ce->graph ? "graph" : "eager", ce->ms, 1e3 * mean, 1e3 * sd, 1e3 * mn, pct, fl * 1e-9, fl_pct,
               fl / (ce->ms * 1e-3) * 1e-12, paper_ms, paper_pct, o->samples, o->warmup);
        fflush(stdout);
    }
    /* the table row (stderr): the graph cells where there are any, like the timing the table uses */
    fprintf(stderr, "| %s (run %lldx%lld) |", st->name, (long long)batch, (long long)seq);
    for (int k = 0; k < N_KINDS; k++) {
        double ms = NAN, none = NAN;
        for (int c = 0; c < nc; c++)
            if (cells[c].graph == graphs) {
                if (cells[c].kind == k)
                    ms = cells[c].ms;
                if (cells[c].kind == ADAPTER_NONE)
                    none = cells[c].ms;
            }
        if (k == ADAPTER_NONE)
            fprintf(stderr, " %.2f (paper %.1f) |", ms, st->paper_ms[0]);
        else if (k == ADAPTER_LORA)
            fprintf(stderr, " %.2f (%+.1f%%) |", ms, 100.0 * (ms / none - 1.0));
        else
            fprintf(stderr, " %.2f (%+.1f%%; paper %+.1f%%) |", ms, 100.0 * (ms / none - 1.0),
                    100.0 * (st->paper_ms[k] / st->paper_ms[0] - 1.0));
    }
    fprintf(stderr, "\n");
    for (int c = 0; c < nc; c++) {
        free(cells[c].t);
        bench_graph_destroy(cells[c].g);
        if (!cells[c].graph)
            adapter_model_destroy(cells[c].am);
    }
    adapter_buffers_destroy(buf);
    return failures;
}

/* ---- driver ---------------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_adapters [--quick] [--backend cpu|cuda|auto] [--settings 32x512,16x256,1x128]\n"
            "                      [--batch-div N] [--layers N] [--warmup N] [--samples N] [--no-graphs]\n"
            "  GPT-2 medium forward latency: no adapter, unmerged LoRA (q, v; r=4), AdapterL, AdapterH.\n"
            "  One JSON line per (setting, variant, launch) on stdout; a Markdown table on stderr.\n"
            "  --batch-div N  divides every setting's batch by N (default: 32 on the CPU, 1 on CUDA)\n"
            "  --layers N     transformer blocks (default 24, GPT-2 medium; 4 with --quick on the CPU)\n");
}

int main(int argc, char **argv)
{
    cli_cpu_runtime(argv);
    struct opts o = {.graphs = true, .backend = CULORA_BACKEND_AUTO, .batch_div = 0, .layers = 0, .warmup = -1,
                     .samples = -1};
    bool any_setting = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) o.quick = true;
        else if (strcmp(a, "--no-graphs") == 0) o.graphs = false;
        else if (strcmp(a, "--backend") == 0 && val) {
            o.backend = strcmp(val, "cpu") == 0 ? CULORA_BACKEND_CPU : strcmp(val, "cuda") == 0 ? CULORA_BACKEND_CUDA
                                                                                               : CULORA_BACKEND_AUTO;
            i++;
        } else if (strcmp(a, "--batch-div") == 0 && val) { o.batch_div = atoll(val); i++; }
        else if (strcmp(a, "--layers") == 0 && val) { o.layers = atoll(val); i++; }
        else if (strcmp(a, "--warmup") == 0 && val) { o.warmup = atoi(val); i++; }
        else if (strcmp(a, "--samples") == 0 && val) { o.samples = atoi(val); i++; }
        else if (strcmp(a, "--settings") == 0 && val) {
            for (size_t s = 0; s < N_SETTINGS; s++) {
                const char *hit = strstr(val, settings[s].name);
                /* whole names only ("1x128" is not inside "16x256", but check the edges anyway) */
                o.use[s] = hit != NULL && (hit == val || hit[-1] == ',') &&
                           (hit[strlen(settings[s].name)] == '\0' || hit[strlen(settings[s].name)] == ',');
                any_setting |= o.use[s];
            }
            if (!any_setting) { usage(); return 2; }
            i++;
        } else { usage(); return 2; }
    }
    if (!any_setting)
        for (size_t s = 0; s < N_SETTINGS; s++)
            o.use[s] = true;
    if (o.layers < 0 || o.warmup < -1 || o.samples == 0 || o.samples < -1 || o.batch_div < 0) {
        usage();
        return 2;
    }
    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = o.backend;
    culora_context *ctx = NULL;
    BENCH_CHECK(ctx, culora_context_create(&cp, &ctx));
    const bool cpu = culora_context_backend(ctx) == CULORA_BACKEND_CPU;
    if (o.batch_div == 0) o.batch_div = cpu ? 32 : 1;
    if (o.layers == 0) o.layers = cpu && o.quick ? 4 : 24;
    if (o.warmup < 0) o.warmup = cpu ? (o.quick ? 0 : 1) : (o.quick ? 5 : 20);
    if (o.samples < 0) o.samples = cpu ? (o.quick ? 1 : 3) : (o.quick ? 20 : 100);
    fprintf(stderr, "bench_adapters: backend %s (%s), GPT-2 medium with %lld layers, batch / %lld, %d warm-up + %d "
                    "samples per cell%s\n",
            culora_context_backend_name(ctx), culora_context_device_name(ctx), (long long)o.layers,
            (long long)o.batch_div, o.warmup, o.samples,
            cpu ? "; no CUDA graphs on the CPU" : (bench_graph_available() ? "" : "; this build has no CUDA graphs"));

    int failures = check_reference(ctx);
    const culora_model_config cfg = gpt2_config(o.layers, 1024, 16, 50257, 1024);
    double t0 = bench_now();
    culora_model *base = make_base(ctx, &cfg, 8);
    fprintf(stderr, "bench_adapters: random GPT-2 medium base (%lld parameters) in %.1f s\n",
            (long long)culora_model_n_params(base), bench_now() - t0);
    failures += check_identity(ctx, base, 224, 112);
    if (failures > 0) {
        fprintf(stderr, "bench_adapters: %d validation failure(s); nothing timed\n", failures);
        culora_model_destroy(base);
        culora_context_destroy(ctx);
        return 1;
    }
    fprintf(stderr, "| batch×seq | none ms | LoRA unmerged ms | AdapterL ms | AdapterH ms |\n|---|---|---|---|---|\n");
    for (size_t s = 0; s < N_SETTINGS; s++)
        if (o.use[s])
            failures += bench_setting(ctx, base, &settings[s], &o);
    culora_model_destroy(base);
    culora_context_destroy(ctx);
    return failures ? 1 : 0;
}
