/*
 * bench_train.c — training throughput: tokens/s and model-FLOP utilisation of one optimizer step
 * (forward, backward, AdamW) on random tokens, for GPT-2 and LLaMA-style configs, full
 * fine-tuning or LoRA (r=16 on attention and MLP).
 *
 *   bench_train [--config NAME] [--mode full|lora|qlora] [--batch B] [--seq T] [--steps N] [--warmup N]
 *               [--backend cpu|cuda|auto] [--peak-tflops P] [--quick]
 * Configs: gpt2-124m (12 layers, 768, vocab 50257), llama-1b (16 layers, 2048, 32/8 heads,
 * intermediate 8192, vocab 128256), and the small CPU configs gpt2-small-cpu (4 layers, 256, 4
 * heads, vocab 50257) and llama-small-cpu (4 layers, 256, 4/2 heads, vocab 32000). Defaults: the
 * GPU configs at seq 1024 on CUDA, the small configs at seq 256 on the CPU.
 * FLOPs per token: full = 6·N_matmul + attention (6·L·T·C fwd+bwd); LoRA = 4·N_matmul (no weight
 * gradients) + attention + the LoRA terms. One JSON line per (config, mode).
 * The same step is what bench/peers/ measure for PyTorch + PEFT, so the two can be compared.
 */
#include "bench_util.h"
#include "cpu_runtime.h"

#include "culora/culora_model.h"
#include "culora/culora_quant.h"
#include "model/model.h"

#include <math.h>
#include <stdbool.h>

struct config {
    const char *name;
    int arch;
    int64_t layers, dim, heads, kv_heads, inter, vocab;
};

static const struct config configs[] = {
    {"gpt2-124m", CULORA_ARCH_GPT2, 12, 768, 12, 12, 3072, 50257},
    {"llama-1b", CULORA_ARCH_LLAMA, 16, 2048, 32, 8, 8192, 128256},
    {"gpt2-small-cpu", CULORA_ARCH_GPT2, 4, 256, 4, 4, 1024, 50257},
    {"llama-small-cpu", CULORA_ARCH_LLAMA, 4, 256, 4, 2, 704, 32000},
};

/* Parameters in the matrix multiplications (linears + lm_head), per token ×2 = forward FLOPs. */
static double matmul_params(const struct config *c)
{
    const double C = (double)c->dim, I = (double)c->inter, D = C / (double)c->heads;
    double per_layer;
    if (c->arch == CULORA_ARCH_GPT2)
        per_layer = C * 3 * C + C * C + 2 * C * I;
    else
        per_layer = C * ((double)c->heads + 2.0 * (double)c->kv_heads) * D + C * C + 3 * C * I;
    return (double)c->layers * per_layer + C * (double)c->vocab;
}

int main(int argc, char **argv)
{
    cli_cpu_runtime(argv);
    const char *cfg_name = NULL, *mode_name = "lora";
    int backend = CULORA_BACKEND_AUTO;
    int64_t batch = 0, seq = 0, steps = 0, warmup = -1;
    double peak = 0;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) quick = true;
        else if (strcmp(a, "--config") == 0 && v) { cfg_name = v; i++; }
        else if (strcmp(a, "--mode") == 0 && v) { mode_name = v; i++; }
        else if (strcmp(a, "--batch") == 0 && v) { batch = atoll(v); i++; }
        else if (strcmp(a, "--seq") == 0 && v) { seq = atoll(v); i++; }
        else if (strcmp(a, "--steps") == 0 && v) { steps = atoll(v); i++; }
        else if (strcmp(a, "--warmup") == 0 && v) { warmup = atoll(v); i++; }
        else if (strcmp(a, "--peak-tflops") == 0 && v) { peak = atof(v); i++; }
        else if (strcmp(a, "--backend") == 0 && v) {
            backend = strcmp(v, "cpu") == 0 ? CULORA_BACKEND_CPU : strcmp(v, "cuda") == 0 ? CULORA_BACKEND_CUDA
                                                                                          : CULORA_BACKEND_AUTO;
            i++;
        } else {
            fprintf(stderr, "usage: bench_train [--config gpt2-124m|llama-1b|gpt2-small-cpu|llama-small-cpu] "
                            "[--mode full|lora|qlora] [--batch B] [--seq T] [--steps N] [--warmup N] "
                            "[--backend cpu|cuda|auto] [--peak-tflops P] [--quick]\n");
            return 2;
        }
    }
    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = backend;
    culora_context *ctx = NULL;
    BENCH_CHECK(ctx, culora_context_create(&cp, &ctx));
    const bool cpu = culora_context_backend(ctx) == CULORA_BACKEND_CPU;
    if (cfg_name == NULL)
        cfg_name = cpu ? "gpt2-small-cpu" : "gpt2-124m";
    const struct config *c = NULL;
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        if (strcmp(configs[i].name, cfg_name) == 0)
            c = &configs[i];
    if (c == NULL) {
        fprintf(stderr, "bench_train: unknown config %s\n", cfg_name);
        return 2;
    }
    if (seq <= 0) seq = cpu ? 256 : 1024;
    if (batch <= 0) batch = cpu ? 4 : 8;
    if (steps <= 0) steps = quick ? 3 : (cpu ? 5 : 20);
    if (warmup < 0) warmup = quick ? 1 : 2;
    if (peak <= 0) peak = cpu ? 0 : 989.0; /* H100 SXM dense bf16 */

    const bool full = strcmp(mode_name, "full") == 0, qlora = strcmp(mode_name, "qlora") == 0;
    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;
    lc.r = 16;
    lc.lora_alpha = 32;
    lc.target_modules = bench_block_linears(c->arch, &lc.n_target_modules);
    lc.fan_in_fan_out = c->arch == CULORA_ARCH_GPT2;
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.mode = full ? CULORA_MODE_FULL : CULORA_MODE_LORA;
    mp.lora = full ? NULL : &lc;
    mp.max_batch = batch;
    mp.max_seq = seq;
    if (qlora) {
        mp.quant_format = CULORA_QUANT_NF4;
        mp.quant_flags = CULORA_QUANT_DOUBLE_QUANT;
    }
    culora_model_config mc = bench_model_config(c->arch, c->layers, c->dim, c->heads, c->kv_heads, c->inter, c->vocab,
                                                seq > 1024 ? seq : 1024, 500000.0);
    culora_model *m = NULL;
    fprintf(stderr, "bench_train: %s %s on %s (%s), batch %lld × seq %lld, %lld steps after %lld warm-up\n", cfg_name,
            mode_name, culora_context_backend_name(ctx), culora_context_device_name(ctx), (long long)batch,
            (long long)seq, (long long)steps, (long long)warmup);
    BENCH_CHECK(ctx, culora_model_create(ctx, &mc, 1, &mp, &m));

    const int64_t n = batch * seq;
    int32_t *tok = malloc((size_t)n * sizeof *tok), *tgt = malloc((size_t)n * sizeof *tgt);
    uint64_t r = 12345;
    for (int64_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((r >> 33) % (uint64_t)c->vocab);
    }
    for (int64_t i = 0; i < n; i++)
        tgt[i] = (i + 1) % seq == 0 ? -100 : tok[i + 1];
    double times[64];
    const int64_t total = warmup + (steps < 64 ? steps : 64);
    float loss = 0;
    for (int64_t s = 0; s < total; s++) {
        const double t0 = bench_now();
        BENCH_CHECK(ctx, culora_model_zero_grad(m));
        BENCH_CHECK(ctx, culora_model_forward(m, tok, tgt, batch, seq, &loss)); /* synchronises */
        BENCH_CHECK(ctx, culora_model_backward(m, 1.0f, 0));
        BENCH_CHECK(ctx, model_adamw(m, 1e-4, 0.9, 0.999, 1e-8, 0.0, s + 1, 1.0f));
        BENCH_CHECK(ctx, culora_synchronize(ctx, NULL));
        if (s >= warmup)
            times[s - warmup] = bench_now() - t0;
    }
    const int ns = (int)(total - warmup);
    const double t = bench_median(times, ns);
    const double tok_s = (double)n / t;
    const double N = matmul_params(c), L = (double)c->layers, C = (double)c->dim, T = (double)seq;
    const double attn = 6.0 * L * T * C; /* causal attention, fwd (2·L·T·C) + bwd (4·L·T·C), per token */
    const double lora_extra = full ? 0.0 : 6.0 * (double)culora_model_n_trainable(m);
    const double flops_tok = (full ? 6.0 * N : 4.0 * N) + attn + lora_extra;
    const double tflops = flops_tok * tok_s / 1e12;
    char mfu[32];
    bench_json_num(mfu, sizeof mfu, peak > 0 ? tflops / peak : NAN);
    printf("{\"bench\":\"train\",\"config\":\"%s\",\"mode\":\"%s\",\"backend\":\"%s\",\"device\":\"%s\",\"batch\":%lld,"
           "\"seq\":%lld,\"params\":%lld,\"trainable\":%lld,\"step_ms\":%.3f,\"tokens_per_s\":%.1f,\"tflops\":%.4f,"
           "\"mfu\":%s,\"loss\":%.4f,\"steps\":%d}\n",
           cfg_name, mode_name, culora_context_backend_name(ctx), culora_context_device_name(ctx), (long long)batch,
           (long long)seq, (long long)culora_model_n_params(m), (long long)culora_model_n_trainable(m), 1e3 * t, tok_s,
           tflops, mfu, (double)loss, ns);
    free(tok);
    free(tgt);
    culora_model_destroy(m);
    culora_context_destroy(ctx);
    return isfinite(loss) ? 0 : 1;
}
