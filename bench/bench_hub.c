/*
 * bench_hub.c — LoraHub (culora_hub.h) speed: candidates scored per second with a whole CMA-ES
 * population in one segmented forward ("batched") against one forward per candidate
 * ("sequential"), and the wall time of whole searches in LoraHub's setting (20 adapters of rank
 * 16 on q_proj and v_proj, 5 examples, budget 40) — CMA batched, CMA sequential, gradient.
 *
 * The model is a random LLaMA-style decoder (sizes below; --hidden/--layers/--seq/--vocab change
 * them), the adapters random (A ~ U(±1/√in), B ~ U(±0.05)), the examples random lowercase
 * prompt/completion pairs of seq tokens (byte ids). Before timing, the batched and sequential
 * losses of one population are compared (CPU: 1e-5 relative, fp32 reordering only; CUDA: 2e-2,
 * bf16 activations rounded at different points) and the run stops if they disagree.
 *
 * Output: one JSON line per measurement ({"bench":"hub","suite":"score"|"search",...}).
 * Usage: bench_hub [--quick] [--backend cpu|cuda|auto] [--adapters N] [--examples E] [--budget B]
 *                  [--hidden H] [--layers L] [--seq T] [--vocab V] [--reps R]
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "cpu_runtime.h"

#include "culora/culora_hub.h"

#include <stdbool.h>
#include <stdint.h>

struct opts {
    bool quick;
    const char *backend;
    int n_adapters, n_examples, budget, reps;
    int64_t hidden, layers, seq, vocab;
};

/* Process CPU time (all threads): less sensitive than wall time to other jobs on a shared machine. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }

static culora_model_config make_config(const struct opts *o)
{
    const int64_t heads = o->hidden / 32; /* head_dim 32, GQA 2:1 when the head count is even */
    return bench_model_config(CULORA_ARCH_LLAMA, o->layers, o->hidden, heads, heads % 2 == 0 ? heads / 2 : heads,
                              (o->hidden * 8 / 3 + 63) / 64 * 64, o->vocab, o->seq, 10000.0);
}

/* A random adapter on q_proj and v_proj of every layer (LoraHub's targets), rank 16, alpha 32. */
static culora_adapter *make_adapter(culora_context *ctx, const culora_model_config *cfg, uint64_t seed)
{
    static const char *targets[] = {"q_proj", "v_proj"};
    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;
    lc.r = 16;
    lc.lora_alpha = 32;
    lc.target_modules = targets;
    lc.n_target_modules = 2;
    culora_adapter *ad = NULL;
    BENCH_CHECK(ctx, culora_adapter_create(ctx, &lc, &ad));
    uint64_t s = seed;
    for (int64_t l = 0; l < cfg->n_layers; l++)
        for (int t = 0; t < 2; t++) {
            char name[128];
            snprintf(name, sizeof name, "model.layers.%lld.self_attn.%s", (long long)l, targets[t]);
            const int64_t in = cfg->hidden_size, out = (t == 0 ? cfg->n_heads : cfg->n_kv_heads) * cfg->head_dim;
            culora_lora_module *m = NULL;
            BENCH_CHECK(ctx, culora_adapter_add_module(ctx, ad, name, in, out, false, &m));
            const double ba = 1.0 / sqrt((double)in);
            for (int64_t i = 0; i < m->r * in; i++)
                m->A[i] = (float)((2.0 * rng_uniform(&s) - 1.0) * ba);
            for (int64_t i = 0; i < out * m->r; i++)
                m->B[i] = (float)((2.0 * rng_uniform(&s) - 1.0) * 0.05);
        }
    return ad;
}

/* E rows of T tokens: a prompt of T/2 and a completion of T - T/2 lowercase letters. */
static culora_dataset *make_examples(culora_context *ctx, int E, int64_t T)
{
    const size_t cap = (size_t)E * (size_t)(T + 64);
    char *txt = malloc(cap);
    if (txt == NULL)
        exit(1);
    uint64_t s = 7;
    size_t n = 0;
    for (int e = 0; e < E; e++) {
        n += (size_t)snprintf(txt + n, cap - n, "{\"prompt\": \"");
        for (int64_t i = 0; i < T / 2; i++)
            txt[n++] = (char)('a' + rng_next(&s) % 26);
        n += (size_t)snprintf(txt + n, cap - n, "\", \"completion\": \"");
        for (int64_t i = T / 2; i < T; i++)
            txt[n++] = (char)('a' + rng_next(&s) % 26);
        n += (size_t)snprintf(txt + n, cap - n, "\"}\n");
    }
    culora_tokenizer *tok = NULL;
    BENCH_CHECK(ctx, culora_tokenizer_create_bytes(ctx, &tok));
    culora_dataset_params dp = CULORA_DATASET_PARAMS_INIT;
    dp.format = CULORA_DATA_FORMAT_JSONL;
    dp.layout = CULORA_DATA_PAD;
    dp.seq_len = (int32_t)T;
    culora_dataset *ds = NULL;
    BENCH_CHECK(ctx, culora_dataset_create_from_memory(ctx, tok, "bench.jsonl", txt, n, &dp, &ds));
    culora_tokenizer_destroy(tok);
    free(txt);
    return ds;
}

struct setup {
    culora_context *ctx;
    culora_model_config cfg;
    culora_adapter **ads;
    culora_dataset *ex;
    const struct opts *o;
};

static culora_hub *make_hub(const struct setup *su, int method, int batched, double *setup_s)
{
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;
    p.method = method;
    p.batched = batched;
    p.budget = su->o->budget;
    const culora_hub_base base = {NULL, &su->cfg, 3};
    culora_hub *hub = NULL;
    const double t0 = bench_now();
    BENCH_CHECK(su->ctx, culora_hub_create(su->ctx, &base, (const culora_adapter *const *)su->ads, su->o->n_adapters,
                                           NULL, su->ex, &p, &hub));
    if (setup_s != NULL)
        *setup_s = bench_now() - t0;
    return hub;
}

static void header_fields(const struct setup *su, char *buf, size_t n)
{
    snprintf(buf, n,
             "\"backend\":\"%s\",\"device\":\"%s\",\"adapters\":%d,\"examples\":%d,\"seq\":%lld,\"hidden\":%lld,"
             "\"layers\":%lld,\"vocab\":%lld,\"rank\":16",
             culora_context_backend_name(su->ctx), culora_context_device_name(su->ctx), su->o->n_adapters,
             su->o->n_examples, (long long)su->o->seq, (long long)su->o->hidden, (long long)su->o->layers,
             (long long)su->o->vocab);
}

static void bench_score(const struct setup *su)
{
    culora_hub *hub = make_hub(su, CULORA_HUB_CMA, 1, NULL);
    const int lambda = culora_hub_popsize(hub), N = su->o->n_adapters;
    double *w = malloc((size_t)lambda * (size_t)N * sizeof *w);
    double *lb = malloc((size_t)lambda * sizeof *lb), *ls = malloc((size_t)lambda * sizeof *ls);
    if (w == NULL || lb == NULL || ls == NULL)
        exit(1);
    uint64_t s = 11;
    for (int i = 0; i < lambda * N; i++)
        w[i] = 3.0 * rng_uniform(&s) - 1.5;
    /* validate */
    BENCH_CHECK(su->ctx, culora_hub_evaluate(hub, w, lambda, 1, lb, NULL));
    BENCH_CHECK(su->ctx, culora_hub_evaluate(hub, w, lambda, 0, ls, NULL));
    const bool cpu = culora_context_compute_dtype(su->ctx) == CULORA_DTYPE_F32;
    const double tol = cpu ? 1e-5 : 2e-2;
    double worst = 0;
    for (int c = 0; c < lambda; c++) {
        const double d = fabs(lb[c] - ls[c]) / fabs(ls[c]);
        worst = d > worst ? d : worst;
    }
    if (!(worst <= tol)) {
        fprintf(stderr, "bench_hub: batched and sequential losses differ by %.3g relative (limit %.3g)\n", worst, tol);
        exit(1);
    }
    char hdr[512];
    header_fields(su, hdr, sizeof hdr);
    /* Interleaved repetitions (batched, sequential, batched, ...) so that load on a shared machine
     * hits both alike; wall and process CPU time, medians. */
    const int R = su->o->reps;
    double *t = malloc((size_t)(4 * R) * sizeof *t);
    if (t == NULL)
        exit(1);
    for (int r = 0; r < R; r++)
        for (int batched = 1; batched >= 0; batched--) {
            const double t0 = bench_now(), c0 = cpu_now();
            BENCH_CHECK(su->ctx, culora_hub_evaluate(hub, w, lambda, batched, lb, NULL));
            t[(1 - batched) * 2 * R + r] = bench_now() - t0;
            t[(1 - batched) * 2 * R + R + r] = cpu_now() - c0;
        }
    for (int batched = 1; batched >= 0; batched--) {
        double *tw = t + (1 - batched) * 2 * R, *tc = tw + R;
        const double wall = bench_median(tw, R), cpu_s = bench_median(tc, R);
        printf("{\"bench\":\"hub\",\"suite\":\"score\",\"mode\":\"%s\",%s,\"popsize\":%d,\"ms_per_population\":%.3f,"
               "\"cpu_ms_per_population\":%.3f,\"candidates_per_s\":%.3f,\"max_rel_diff_batched_vs_sequential\":%.3g}\n",
               batched ? "batched" : "sequential", hdr, lambda, 1e3 * wall, 1e3 * cpu_s, (double)lambda / wall, worst);
    }
    fflush(stdout);
    free(t);
    free(w);
    free(lb);
    free(ls);
    culora_hub_destroy(hub);
}

static void bench_search(const struct setup *su, int method, int batched)
{
    double setup_s = 0;
    culora_hub *hub = make_hub(su, method, batched, &setup_s);
    double *w = malloc((size_t)su->o->n_adapters * sizeof *w);
    if (w == NULL)
        exit(1);
    double obj = 0, loss = 0;
    int64_t evals = 0;
    const double t0 = bench_now(), c0 = cpu_now();
    BENCH_CHECK(su->ctx, culora_hub_run(hub, w, &obj, &loss, &evals));
    const double wall = bench_now() - t0, cpu_s = cpu_now() - c0;
    char hdr[512];
    header_fields(su, hdr, sizeof hdr);
    printf("{\"bench\":\"hub\",\"suite\":\"search\",\"method\":\"%s\",\"mode\":\"%s\",%s,\"popsize\":%d,"
           "\"budget\":%d,\"evaluations\":%lld,\"wall_s\":%.3f,\"cpu_s\":%.3f,\"setup_s\":%.3f,\"objective\":%.5f,\"loss\":%.5f}\n",
           method == CULORA_HUB_CMA ? "cma" : "grad", method == CULORA_HUB_GRAD ? "backward" : batched ? "batched" : "sequential",
           hdr, culora_hub_popsize(hub), su->o->budget, (long long)evals, wall, cpu_s, setup_s, obj, loss);
    fflush(stdout);
    free(w);
    culora_hub_destroy(hub);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_hub [--quick] [--backend cpu|cuda|auto] [--adapters N] [--examples E] "
                    "[--budget B] [--hidden H] [--layers L] [--seq T] [--vocab V] [--reps R]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    cli_cpu_runtime(argv);
    struct opts o = {false, "auto", 20, 5, 40, 0, 0, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o.quick = true;
            continue;
        }
        if (val == NULL)
            usage();
        i++;
        if (strcmp(a, "--backend") == 0) o.backend = val;
        else if (strcmp(a, "--adapters") == 0) o.n_adapters = atoi(val);
        else if (strcmp(a, "--examples") == 0) o.n_examples = atoi(val);
        else if (strcmp(a, "--budget") == 0) o.budget = atoi(val);
        else if (strcmp(a, "--reps") == 0) o.reps = atoi(val);
        else if (strcmp(a, "--hidden") == 0) o.hidden = atoll(val);
        else if (strcmp(a, "--layers") == 0) o.layers = atoll(val);
        else if (strcmp(a, "--seq") == 0) o.seq = atoll(val);
        else if (strcmp(a, "--vocab") == 0) o.vocab = atoll(val);
        else usage();
    }
    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = strcmp(o.backend, "cpu") == 0    ? CULORA_BACKEND_CPU
                 : strcmp(o.backend, "cuda") == 0 ? CULORA_BACKEND_CUDA
                                                  : CULORA_BACKEND_AUTO;
    culora_context *ctx = NULL;
    if (culora_context_create(&cp, &ctx) != CULORA_OK) {
        fprintf(stderr, "bench_hub: no %s context: %s\n", o.backend, culora_context_last_error(ctx));
        return 1;
    }
    const bool cpu = culora_context_compute_dtype(ctx) == CULORA_DTYPE_F32;
    /* Sizes: a small decoder on the CPU (this is a 2-core reference); on a GPU a ~0.1B (quick) or
     * ~0.8B model, the size of LoraHub's Flan-T5-large. */
    if (o.hidden == 0) o.hidden = cpu ? (o.quick ? 64 : 256) : (o.quick ? 1024 : 2048);
    if (o.layers == 0) o.layers = cpu ? (o.quick ? 2 : 4) : (o.quick ? 8 : 16);
    if (o.seq == 0) o.seq = cpu ? (o.quick ? 32 : 64) : (o.quick ? 128 : 256);
    if (o.vocab == 0) o.vocab = cpu ? (o.quick ? 256 : 2048) : 32000;
    if (o.reps == 0) o.reps = o.quick ? 2 : 5;
    if (o.n_adapters < 1 || o.n_examples < 1 || o.budget < 1 || o.reps < 1 || o.hidden < 32 || o.hidden % 32 != 0 ||
        o.layers < 1 || o.seq < 2 || o.vocab < 256)
        usage();

    struct setup su = {ctx, make_config(&o), NULL, NULL, &o};
    su.ads = calloc((size_t)o.n_adapters, sizeof *su.ads);
    if (su.ads == NULL)
        return 1;
    for (int i = 0; i < o.n_adapters; i++)
        su.ads[i] = make_adapter(ctx, &su.cfg, 1000 + (uint64_t)i);
    su.ex = make_examples(ctx, o.n_examples, o.seq);

    bench_score(&su);
    bench_search(&su, CULORA_HUB_CMA, 1);
    bench_search(&su, CULORA_HUB_CMA, 0);
    bench_search(&su, CULORA_HUB_GRAD, 1);

    for (int i = 0; i < o.n_adapters; i++)
        culora_adapter_destroy(su.ads[i]);
    free(su.ads);
    culora_dataset_destroy(su.ex);
    culora_context_destroy(ctx);
    return 0;
}
