/*
 * bench_relora.c — time of one ReLoRA restart (merge W0 += s·B·A, re-initialise A, B = 0, prune the
 * LoRA AdamW moments) of every adapted linear of a model, per transformer layer and in total.
 *
 *   bench_relora [--config NAME] [--layers N] [--rank R] [--prune magnitude|random|zero]
 *                [--reps N] [--backend cpu|cuda|auto] [--quick]
 * Configs (every attention and MLP linear adapted, as the reference's ReLoRA): gpt2-124m
 * (12 layers, 768), llama-1b (16 layers, 2048, 32/8 heads, intermediate 8192: Llama 3.2 1B),
 * llama-8b (32 layers, 4096, 32/8 heads, 14336: Llama 3 8B; use --layers to time a few layers and
 * extrapolate). The vocabulary is 256: a restart never touches the embeddings, and a small one
 * keeps the model's creation short. --layers N builds only N transformer blocks; the JSON line
 * then also gives the total extrapolated to the config's depth (per-layer median × layers).
 * Validation first: a restart of a layer with a random B is checked against W0 + s·B·A in fp64
 * (and, on CUDA, the fp32 master's bf16 copy). One JSON line per (config, rank, prune).
 */
#include "bench_util.h"
#include "cpu_runtime.h"

#include "culora/culora_model.h"
#include "model/model.h"
#include "model/model_relora.h"
#include "relora_ops.h"

#include <stdbool.h>

struct config {
    const char *name;
    int arch;
    int64_t layers, dim, heads, kv_heads, inter;
};

static const struct config configs[] = {
    {"gpt2-124m", CULORA_ARCH_GPT2, 12, 768, 12, 12, 3072},
    {"llama-1b", CULORA_ARCH_LLAMA, 16, 2048, 32, 8, 8192},
    {"llama-8b", CULORA_ARCH_LLAMA, 32, 4096, 32, 8, 14336},
};

static float *randoms(size_t n, uint32_t seed, float scale)
{
    float *v = malloc(n * sizeof *v);
    uint32_t x = seed * 2654435761u + 1u;
    for (size_t i = 0; v != NULL && i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        v[i] = scale * ((float)(x >> 8) / 16777216.0f - 0.5f);
    }
    return v;
}

/* Random LoRA moments (what a restart finds after training; the selection's cost depends on them). */
static void fill_moments(culora_context *ctx, struct culora_model *m)
{
    const size_t n = (size_t)m->n_train;
    float *master = malloc(n * sizeof *master), *mm = randoms(n, 7, 2e-3f), *vv = randoms(n, 8, 2e-6f);
    if (!master || !mm || !vv) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        vv[i] = fabsf(vv[i]);
    BENCH_CHECK(ctx, model_state_download(m, master, NULL, NULL));
    BENCH_CHECK(ctx, model_state_upload(m, master, mm, vv));
    free(master);
    free(mm);
    free(vv);
}

int main(int argc, char **argv)
{
    cli_cpu_runtime(argv);
    const char *cfg_name = NULL, *prune_name = "magnitude";
    int backend = CULORA_BACKEND_AUTO, reps = 3;
    int64_t layers = 0, rank = 128;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--config") == 0 && v) cfg_name = v, i++;
        else if (strcmp(a, "--layers") == 0 && v) layers = atoll(v), i++;
        else if (strcmp(a, "--rank") == 0 && v) rank = atoll(v), i++;
        else if (strcmp(a, "--prune") == 0 && v) prune_name = v, i++;
        else if (strcmp(a, "--reps") == 0 && v) reps = atoi(v), i++;
        else if (strcmp(a, "--backend") == 0 && v) {
            backend = strcmp(v, "cpu") == 0 ? CULORA_BACKEND_CPU : strcmp(v, "cuda") == 0 ? CULORA_BACKEND_CUDA
                                                                                          : CULORA_BACKEND_AUTO;
            i++;
        } else if (strcmp(a, "--quick") == 0) quick = true;
        else {
            fprintf(stderr, "usage: bench_relora [--config gpt2-124m|llama-1b|llama-8b] [--layers N] [--rank R] "
                            "[--prune magnitude|random|zero] [--reps N] [--backend cpu|cuda|auto] [--quick]\n");
            return 2;
        }
    }
    const int32_t prune = strcmp(prune_name, "random") == 0 ? CULORA_RELORA_PRUNE_RANDOM
                          : strcmp(prune_name, "zero") == 0 ? CULORA_RELORA_PRUNE_ZERO
                                                            : CULORA_RELORA_PRUNE_MAGNITUDE;
    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = backend;
    culora_context *ctx = NULL;
    if (culora_context_create(&cp, &ctx) != CULORA_OK) {
        fprintf(stderr, "bench_relora: no context: %s\n", culora_context_last_error(ctx));
        return 1;
    }
    const bool cuda = culora_context_compute_dtype(ctx) != CULORA_DTYPE_F32;
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        const struct config *cf = &configs[c];
        if (cfg_name ? strcmp(cfg_name, cf->name) != 0 : (!cuda && strcmp(cf->name, "llama-8b") == 0))
            continue;
        const int64_t L = layers > 0 && layers < cf->layers ? layers : quick ? 1 : cf->layers;
        culora_model_config mc = bench_model_config(cf->arch, L, cf->dim, cf->heads, cf->kv_heads, cf->inter, 256, 64,
                                                    500000.0);
        culora_lora_config lc = CULORA_LORA_CONFIG_INIT;
        lc.r = (int32_t)rank;
        lc.lora_alpha = 32; /* the reference's default */
        lc.target_modules = bench_block_linears(cf->arch, &lc.n_target_modules);
        culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
        mp.mode = CULORA_MODE_LORA;
        mp.lora = &lc;
        mp.max_batch = 1;
        mp.max_seq = 16;
        culora_model *model = NULL;
        const double tc = bench_now();
        BENCH_CHECK(ctx, culora_model_create(ctx, &mc, 1, &mp, &model));
        struct culora_model *m = model;
        fprintf(stderr, "bench_relora: %s, %lld layers, %d adapted linears, created in %.1f s\n", cf->name,
                (long long)L, (int)m->n_loras, bench_now() - tc);
        /* fp32 masters of W0 (bf16 backends): one buffer per slot, as the trainer keeps them */
        float **masters = calloc((size_t)m->n_loras, sizeof *masters);
        size_t ws_bytes = 0;
        void *ws = NULL;
        BENCH_CHECK(ctx, model_relora_workspace(m, prune, &ws_bytes));
        if (ws_bytes > 0)
            BENCH_CHECK(ctx, culora_malloc(ctx, ws_bytes, &ws));
        int64_t merged = 0;
        for (int32_t i = 0; i < m->n_loras; i++) {
            const struct mtensor *w = &model_relora_linear(m, i)->W;
            merged += w->rows * w->cols;
            if (!cuda)
                continue;
            void *p = NULL;
            BENCH_CHECK(ctx, culora_malloc(ctx, (size_t)(w->rows * w->ld) * sizeof(float), &p));
            masters[i] = p;
            float *h = malloc((size_t)(w->rows * w->ld) * sizeof *h), *d = malloc((size_t)(w->rows * w->cols) * sizeof *d);
            BENCH_CHECK(ctx, model_tensor_download(m, w, d));
            for (int64_t r = 0; r < w->rows; r++) {
                memcpy(h + r * w->ld, d + r * w->cols, (size_t)w->cols * sizeof *h);
                memset(h + r * w->ld + w->cols, 0, (size_t)(w->ld - w->cols) * sizeof *h);
            }
            BENCH_CHECK(ctx, culora_memcpy(ctx, p, h, (size_t)(w->rows * w->ld) * sizeof *h, CULORA_COPY_HOST_TO_DEVICE,
                                           NULL));
            BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
            free(h);
            free(d);
        }
        /* ---- validation: slot 0 with a random B against W0 + s·B·A in fp64 */
        bool valid = true;
        {
            const struct mlora *lo = &m->loras[0];
            const struct mtensor *w = &model_relora_linear(m, 0)->W;
            const int64_t d = w->rows, k = w->cols, r = lo->r;
            float *b = randoms((size_t)(d * r), 3, 0.02f), *a = malloc((size_t)(r * k) * sizeof *a);
            float *w0 = malloc((size_t)(d * k) * sizeof *w0), *w1 = malloc((size_t)(d * k) * sizeof *w1);
            BENCH_CHECK(ctx, model_tensor_upload(m, &lo->B, b));
            BENCH_CHECK(ctx, model_tensor_download(m, &lo->A, a));
            BENCH_CHECK(ctx, model_tensor_download(m, w, w0));
            struct model_relora_restart rs = {.merge = true, .w0_master = masters[0], .init_seed = 1, .round = 1,
                                              .prune = prune, .prune_ratio = 0.999, .prune_seed = 1, .step = 1};
            BENCH_CHECK(ctx, model_relora_restart(m, 0, &rs, ws, ws_bytes));
            BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
            BENCH_CHECK(ctx, model_tensor_download(m, w, w1));
            double worst = 0;
            for (int64_t i = 0; i < d; i++)
                for (int64_t j = 0; j < k; j++) {
                    double acc = 0, mag = fabs((double)w0[i * k + j]);
                    for (int64_t q = 0; q < r; q++) {
                        acc += (double)b[i * r + q] * (double)a[q * k + j];
                        mag += lo->scaling * fabs((double)b[i * r + q] * (double)a[q * k + j]);
                    }
                    const double want = (double)w0[i * k + j] + lo->scaling * acc;
                    /* fp32 sums of r products (CPU and CUDA), then the bf16 copy on CUDA (2^-9 relative) */
                    const double lim = (double)(r + 2) * ldexp(1.0, -24) * mag + (cuda ? ldexp(1.0, -8) * fabs(want) : 0);
                    const double e = fabs((double)w1[i * k + j] - want) / (lim > 0 ? lim : 1e-30);
                    worst = e > worst ? e : worst;
                }
            valid = worst <= 1.0;
            fprintf(stderr, "bench_relora: validation of %s: worst error at %.1f%% of its limit\n", m->loras[0].name,
                    100 * worst);
            free(a);
            free(b);
            free(w0);
            free(w1);
        }
        /* ---- timing: every slot, layer by layer; fresh random moments before each repetition */
        const int32_t per_layer = (int32_t)(m->n_loras / L);
        double *layer_ms = calloc((size_t)(L * reps), sizeof *layer_ms), *total_ms = calloc((size_t)reps, sizeof *total_ms);
        for (int rep = 0; rep < reps; rep++) {
            fill_moments(ctx, m);
            BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
            for (int64_t l = 0; l < L; l++) {
                const double t0 = bench_now();
                for (int32_t j = 0; j < per_layer; j++) {
                    const int32_t i = (int32_t)(l * per_layer + j);
                    struct model_relora_restart rs = {.merge = true, .w0_master = masters[i], .init_seed = 1,
                                                      .round = (uint64_t)rep + 2, .prune = prune, .prune_ratio = 0.999,
                                                      .prune_seed = 1, .step = rep + 2};
                    BENCH_CHECK(ctx, model_relora_restart(m, i, &rs, ws, ws_bytes));
                }
                BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
                const double ms = 1e3 * (bench_now() - t0);
                layer_ms[rep * L + l] = ms;
                total_ms[rep] += ms;
            }
        }
        const double t_total = bench_median(total_ms, reps), t_layer = bench_median(layer_ms, (int)(L * reps));
        char b1[32], b2[32], b3[32], b4[32];
        bench_json_num(b1, sizeof b1, t_total);
        bench_json_num(b2, sizeof b2, t_layer);
        bench_json_num(b3, sizeof b3, t_layer * (double)cf->layers);
        /* bytes a bf16/fp32-master merge must move at least: read + write fp32 master, write bf16 copy */
        bench_json_num(b4, sizeof b4, (double)merged * (cuda ? 10.0 : 8.0) / (t_total * 1e-3) / 1e9);
        printf("{\"bench\":\"relora_restart\",\"device\":\"%s\",\"config\":\"%s\",\"layers\":%lld,\"config_layers\":%lld,"
               "\"rank\":%lld,\"prune\":\"%s\",\"adapted_linears\":%d,\"merged_params\":%lld,\"valid\":%s,"
               "\"ms_total\":%s,\"ms_per_layer\":%s,\"ms_extrapolated\":%s,\"GBps_min_traffic\":%s}\n",
               culora_context_device_name(ctx), cf->name, (long long)L, (long long)cf->layers, (long long)rank,
               prune_name, (int)m->n_loras, (long long)merged, valid ? "true" : "false", b1, b2, b3, b4);
        fflush(stdout);
        for (int32_t i = 0; i < m->n_loras; i++)
            culora_free(ctx, masters[i]);
        free(masters);
        free(layer_ms);
        free(total_ms);
        culora_free(ctx, ws);
        culora_model_destroy(model);
        if (!valid)
            return 1;
    }
    culora_context_destroy(ctx);
    return 0;
}
