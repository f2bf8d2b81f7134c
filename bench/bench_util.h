/*
 * bench_util.h — shared by culora's benchmarks: wall-clock timing around synchronised batches,
 * medians, the JSON-line output every benchmark prints (one line per measurement), validation
 * against a reference (bench_count_wrong), host/device buffers, and the model shapes they build.
 *
 * Timing: `inner` calls are enqueued back to back and the batch is timed from before the first
 * to after culora_synchronize(); a sample is batch time / inner, the result the median of the
 * samples. On a GPU this includes launch overhead, which is what a training loop pays.
 */
#ifndef CULORA_BENCH_UTIL_H
#define CULORA_BENCH_UTIL_H

#include "culora/culora.h"
#include "culora/culora_io.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Formats v for JSON: a number, or null when it is not finite. */
static inline void bench_json_num(char *buf, size_t n, double v)
{
    if (isfinite(v))
        snprintf(buf, n, "%.4f", v);
    else
        snprintf(buf, n, "null");
}

/* Validation before timing: the number of elements outside |got - ref| <= tol·(rms(ref) + |ref|).
 * When max_rel_rms is not NULL it is raised to max |got - ref| / rms(ref) (infinity for a NaN). */
static inline int64_t bench_count_wrong(const float *got, const float *ref, int64_t n, double tol,
                                        double *max_rel_rms)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)ref[i] * ref[i];
    const double rms = sqrt(ss / (double)n) + 1e-30;
    int64_t bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - (double)ref[i]);
        if (!(e <= tol * (rms + fabs((double)ref[i]))))
            bad++;
        if (e / rms > worst || isnan(e))
            worst = isnan(e) ? INFINITY : e / rms;
    }
    if (max_rel_rms != NULL)
        *max_rel_rms = fmax(*max_rel_rms, worst);
    return bad;
}

/* Exits with a message on failure: benchmarks are programs, not library code. */
#define BENCH_CHECK(ctx, call)                                                                     \
    do {                                                                                           \
        culora_status bench_s_ = (call);                                                           \
        if (bench_s_ != CULORA_OK) {                                                               \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,              \
                    culora_status_name(bench_s_), culora_context_last_error(ctx));                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)


/* Host memory, or exit with a message. */
static inline void *bench_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL) {
        fprintf(stderr, "bench: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* A zeroed device buffer of the context's backend. */
static inline void *bench_dalloc(culora_context *ctx, size_t bytes)
{
    void *p = NULL;
    BENCH_CHECK(ctx, culora_malloc(ctx, bytes ? bytes : 1, &p));
    BENCH_CHECK(ctx, culora_memset(ctx, p, 0, bytes ? bytes : 1, NULL));
    return p;
}

/* Downloads a [rows, cols] region with leading dimension ld (dtype dt: F32 or BF16) into dense fp32. */
static inline float *bench_download(culora_context *ctx, const void *src, int64_t rows, int64_t cols, int64_t ld,
                                    culora_dtype dt)
{
    const size_t es = culora_dtype_size(dt), n = (size_t)((rows - 1) * ld + cols);
    uint8_t *raw = bench_xmalloc(n * es);
    float *out = bench_xmalloc((size_t)(rows * cols) * sizeof *out);
    BENCH_CHECK(ctx, culora_memcpy(ctx, raw, src, n * es, CULORA_COPY_DEVICE_TO_HOST, NULL));
    BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
    for (int64_t i = 0; i < rows; i++) {
        if (dt == CULORA_DTYPE_F32)
            memcpy(out + i * cols, raw + (size_t)(i * ld) * 4, (size_t)cols * 4);
        else
            culora_bf16_to_f32((const uint16_t *)(raw + (size_t)(i * ld) * 2), out + i * cols, (size_t)cols);
    }
    free(raw);
    return out;
}

/* A random-weights model's shape in the two families the benchmarks use: GPT-2 (GELU, tied head,
 * biases, learned positions) or LLaMA (SwiGLU, RoPE with rope_theta, untied, no biases). No BOS/EOS. */
static inline culora_model_config bench_model_config(culora_arch arch, int64_t layers, int64_t dim, int64_t heads,
                                                     int64_t kv_heads, int64_t inter, int64_t vocab,
                                                     int64_t max_pos, double rope_theta)
{
    culora_model_config m;
    memset(&m, 0, sizeof m);
    const int gpt2 = arch == CULORA_ARCH_GPT2;
    m.arch = arch;
    snprintf(m.architecture, sizeof m.architecture, "%s", gpt2 ? "GPT2LMHeadModel" : "LlamaForCausalLM");
    m.vocab_size = vocab;
    m.hidden_size = dim;
    m.n_layers = layers;
    m.n_heads = heads;
    m.n_kv_heads = kv_heads;
    m.head_dim = dim / heads;
    m.intermediate_size = inter;
    m.max_position_embeddings = max_pos;
    m.norm_eps = 1e-5;
    m.activation = gpt2 ? CULORA_ACT_GELU_TANH : CULORA_ACT_SILU;
    m.tie_word_embeddings = gpt2;
    m.attention_bias = gpt2;
    m.mlp_bias = gpt2;
    m.rope_type = gpt2 ? CULORA_ROPE_NONE : CULORA_ROPE_DEFAULT;
    m.rope_theta = gpt2 ? 0.0 : rope_theta;
    m.bos_token_id = m.eos_token_id = -1;
    return m;
}

/* PEFT names of every linear of a block (LoRA targets): GPT-2's c_attn, c_proj, c_fc; LLaMA's seven
 * projections. *n gets the count. */
static inline const char *const *bench_block_linears(culora_arch arch, size_t *n)
{
    static const char *const gpt2[] = {"c_attn", "c_proj", "c_fc"};
    static const char *const llama[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    const int g = arch == CULORA_ARCH_GPT2;
    *n = g ? 3 : 7;
    return g ? gpt2 : llama;
}

#endif /* CULORA_BENCH_UTIL_H */
