/*
 * bench_dist.c — data-parallel cost: the per-step all-reduce of the flat LoRA gradient buffer
 * against the step's compute, and the communicator's all-reduce bandwidth over a size sweep.
 *
 *   bench_dist [--quick] [--device cpu|cuda|auto] [--config NAME] [--steps N] [--threads N]
 *   mpirun -np 2 bench_dist ...          (MPI communicator, CPU backend; NCCL on CUDA)
 *   RANK=.. WORLD_SIZE=.. MASTER_ADDR=.. MASTER_PORT=.. bench_dist ...   (TCP on the CPU, NCCL on CUDA)
 * Alone on a GPU it builds a one-rank NCCL communicator (NCCL cannot put two ranks on one GPU):
 * that times NCCL's fixed cost and checks its results, not a network.
 *
 * Rows (JSON lines, printed by rank 0):
 *   "check"      the communicator's all-reduce / broadcast / allgather on known values (before timing)
 *   "allreduce"  culora_dist_allreduce_mean_f32 + culora_dist_wait on n floats: median ms over
 *                samples (each sample: barrier, then `inner` back-to-back calls; rank 0's clock),
 *                algbw = bytes / time and busbw = algbw · 2(n−1)/n (nccl-tests' definitions, so the
 *                numbers compare with nccl-tests' all_reduce_perf)
 *   "step"       one optimizer step of the trainer on a LLaMA-style model with LoRA r=16 on every
 *                linear: compute_ms (a trainer without a communicator: forward, backward, norm,
 *                AdamW), step_ms (the same trainer with the communicator: + the all-reduce of the
 *                gradient buffer and two small allgathers), allreduce_ms (the gradient buffer alone),
 *                grad_bytes, and comm_fraction = (step_ms − compute_ms) / step_ms
 * Configs: cpu-small (4 layers, 256 wide, 8/4 heads, MLP 688, batch 2 × 128; 1.2 MB of LoRA
 * gradients) for the CPU; gpu-small (4 layers of a 1B-class LLaMA: 2048 wide, 16/8 heads, MLP
 * 5632, batch 4 × 512; 9.6 MB of LoRA gradients, kept to 4 layers so that the host-side random
 * initialisation stays short in gpu-check) for CUDA. Byte-level text (vocabulary 256), so the
 * language-model head is small in both.
 * The exit status is 1 when a check fails.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "cpu_runtime.h"

#include "culora/culora_data.h"
#include "culora/culora_dist.h"
#include "culora/culora_model.h"
#include "culora/culora_train.h"
#include "model/model.h"

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

extern char **environ;

struct config {
    const char *name;
    int64_t layers, dim, heads, kv_heads, inter;
    int32_t batch, seq;
};

static const struct config configs[] = {
    {"cpu-small", 4, 256, 8, 4, 688, 2, 128},
    {"gpu-small", 4, 2048, 16, 8, 5632, 4, 512},
};

struct opts {
    bool quick;
    const char *device, *config;
    int steps, threads;
};

struct job {
    culora_context *ctx;
    culora_dist *dist; /* NULL: one process without a communicator */
    int rank, world;
    const char *comm;
};

static double elapsed_ms(double t0) { return (bench_now() - t0) * 1e3; }

/* The slowest rank's value (a collective: every rank calls it). */
static double max_over_ranks(struct job *j, double v)
{
    if (j->dist == NULL || j->world == 1)
        return v;
    uint64_t bits, *all = calloc((size_t)j->world, sizeof *all);
    if (all == NULL)
        exit(1);
    memcpy(&bits, &v, sizeof bits);
    BENCH_CHECK(j->ctx, culora_dist_allgather_u64(j->dist, bits, all));
    for (int r = 0; r < j->world; r++) {
        double x;
        memcpy(&x, &all[r], sizeof x);
        if (x > v)
            v = x;
    }
    free(all);
    return v;
}

/* ---- checks on known values ------------------------------------------------------------------ */

static int check(struct job *j)
{
    if (j->dist == NULL)
        return 0;
    enum { N = 4099 };
    float host[N];
    for (int i = 0; i < N; i++) /* rank r contributes r + (i mod 1024): the mean is exact in fp32 */
        host[i] = (float)j->rank + (float)(i % 1024);
    float *dev = NULL;
    BENCH_CHECK(j->ctx, culora_malloc(j->ctx, sizeof host, (void **)&dev));
    BENCH_CHECK(j->ctx, culora_memcpy(j->ctx, dev, host, sizeof host, CULORA_COPY_HOST_TO_DEVICE, NULL));
    BENCH_CHECK(j->ctx, culora_dist_allreduce_mean_f32(j->dist, dev, N, NULL));
    BENCH_CHECK(j->ctx, culora_dist_wait(j->dist, NULL));
    BENCH_CHECK(j->ctx, culora_memcpy(j->ctx, host, dev, sizeof host, CULORA_COPY_DEVICE_TO_HOST, NULL));
    BENCH_CHECK(j->ctx, culora_synchronize(j->ctx, NULL));
    long long wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += host[i] != 0.5f * (float)(j->world - 1) + (float)(i % 1024);
    /* broadcast from the last rank */
    for (int i = 0; i < N; i++)
        host[i] = (float)(j->rank * 7 + i);
    BENCH_CHECK(j->ctx, culora_memcpy(j->ctx, dev, host, sizeof host, CULORA_COPY_HOST_TO_DEVICE, NULL));
    BENCH_CHECK(j->ctx, culora_dist_broadcast(j->dist, dev, sizeof host, j->world - 1, NULL));
    BENCH_CHECK(j->ctx, culora_dist_wait(j->dist, NULL));
    BENCH_CHECK(j->ctx, culora_memcpy(j->ctx, host, dev, sizeof host, CULORA_COPY_DEVICE_TO_HOST, NULL));
    BENCH_CHECK(j->ctx, culora_synchronize(j->ctx, NULL));
    for (int i = 0; i < N; i++)
        wrong += host[i] != (float)((j->world - 1) * 7 + i);
    uint64_t *all = calloc((size_t)j->world, sizeof *all);
    BENCH_CHECK(j->ctx, culora_dist_allgather_u64(j->dist, 1000u + (uint64_t)j->rank, all));
    for (int r = 0; r < j->world; r++)
        wrong += all[r] != 1000u + (uint64_t)r;
    free(all);
    culora_free(j->ctx, dev);
    wrong = (long long)max_over_ranks(j, (double)wrong);
    if (j->rank == 0)
        printf("{\"bench\":\"dist\",\"row\":\"check\",\"backend\":\"%s\",\"comm\":\"%s\",\"world\":%d,\"wrong\":%lld}\n",
               culora_context_backend_name(j->ctx), j->comm, j->world, wrong);
    fflush(stdout);
    return wrong != 0;
}

/* ---- all-reduce sweep ------------------------------------------------------------------------- */

/* Median ms of one all-reduce of n floats at dev. */
static double time_allreduce(struct job *j, float *dev, size_t n, int samples, int inner)
{
    double *ms = calloc((size_t)samples, sizeof *ms);
    for (int w = 0; w < 2; w++) { /* warm-up */
        BENCH_CHECK(j->ctx, culora_dist_allreduce_mean_f32(j->dist, dev, n, NULL));
        BENCH_CHECK(j->ctx, culora_dist_wait(j->dist, NULL));
    }
    for (int s = 0; s < samples; s++) {
        BENCH_CHECK(j->ctx, culora_dist_barrier(j->dist));
        const double t0 = bench_now();
        for (int i = 0; i < inner; i++)
            BENCH_CHECK(j->ctx, culora_dist_allreduce_mean_f32(j->dist, dev, n, NULL));
        BENCH_CHECK(j->ctx, culora_dist_wait(j->dist, NULL));
        ms[s] = elapsed_ms(t0) / inner;
    }
    const double m = bench_median(ms, samples);
    free(ms);
    return max_over_ranks(j, m);
}

static void sweep(struct job *j, const struct opts *o)
{
    if (j->dist == NULL)
        return;
    const size_t max_bytes = o->quick ? (16u << 20) : (256u << 20);
    float *dev = NULL;
    BENCH_CHECK(j->ctx, culora_malloc(j->ctx, max_bytes, (void **)&dev));
    BENCH_CHECK(j->ctx, culora_memset(j->ctx, dev, 0, max_bytes, NULL));
    for (size_t bytes = 4096; bytes <= max_bytes; bytes *= o->quick ? 16 : 4) {
        const size_t n = bytes / sizeof(float);
        const int inner = bytes <= (1u << 20) ? 20 : 3, samples = o->quick ? 5 : 11;
        const double ms = time_allreduce(j, dev, n, samples, inner);
        const double algbw = (double)bytes / (ms * 1e-3) / 1e9;
        const double busbw = algbw * 2.0 * (double)(j->world - 1) / (double)j->world;
        if (j->rank == 0)
            printf("{\"bench\":\"dist\",\"row\":\"allreduce\",\"backend\":\"%s\",\"device\":\"%s\",\"comm\":\"%s\","
                   "\"world\":%d,\"bytes\":%zu,\"ms\":%.4f,\"algbw_gbs\":%.3f,\"busbw_gbs\":%.3f,\"samples\":%d,"
                   "\"inner\":%d}\n",
                   culora_context_backend_name(j->ctx), culora_context_device_name(j->ctx), j->comm, j->world, bytes,
                   ms, algbw, busbw, samples, inner);
        fflush(stdout);
    }
    culora_free(j->ctx, dev);
}

/* ---- one training step -------------------------------------------------------------------------- */

static char *make_text(size_t bytes)
{
    char *t = malloc(bytes + 1);
    if (t == NULL)
        exit(1);
    uint64_t x = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < bytes; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t[i] = (char)(' ' + (int)(x % 95)); /* printable ASCII */
    }
    t[bytes] = '\0';
    return t;
}

static double time_step(struct job *j, culora_trainer *tr)
{
    const double t0 = bench_now();
    BENCH_CHECK(j->ctx, culora_trainer_step(tr, NULL));
    BENCH_CHECK(j->ctx, culora_synchronize(j->ctx, NULL));
    return elapsed_ms(t0);
}

static void step_row(struct job *j, const struct opts *o, const struct config *c)
{
    culora_tokenizer *tok = NULL;
    culora_dataset *ds = NULL;
    culora_loader *ld = NULL;
    culora_model *model = NULL;
    culora_trainer *alone = NULL, *dp = NULL;
    const size_t text_bytes = (size_t)c->batch * (size_t)c->seq * (size_t)j->world * 64 + 1024;
    char *text = make_text(text_bytes);
    BENCH_CHECK(j->ctx, culora_tokenizer_create_bytes(j->ctx, &tok));
    culora_dataset_params dsp = CULORA_DATASET_PARAMS_INIT;
    dsp.format = CULORA_DATA_FORMAT_TEXT;
    dsp.seq_len = c->seq;
    BENCH_CHECK(j->ctx, culora_dataset_create_from_memory(j->ctx, tok, "bench.txt", text, text_bytes, &dsp, &ds));
    culora_loader_params lp = CULORA_LOADER_PARAMS_INIT;
    lp.batch_size = c->batch;
    lp.rank = j->rank;
    lp.world_size = j->world;
    BENCH_CHECK(j->ctx, culora_loader_create(j->ctx, ds, &lp, &ld));

    culora_model_config cfg = bench_model_config(CULORA_ARCH_LLAMA, c->layers, c->dim, c->heads, c->kv_heads, c->inter,
                                                 256, c->seq, 10000.0);
    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;
    lc.r = 16;
    lc.lora_alpha = 32;
    lc.target_modules = bench_block_linears(CULORA_ARCH_LLAMA, &lc.n_target_modules);
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.mode = CULORA_MODE_LORA;
    mp.lora = &lc;
    mp.seed = 1;
    mp.max_batch = c->batch;
    mp.max_seq = c->seq;
    BENCH_CHECK(j->ctx, culora_model_create(j->ctx, &cfg, 7, &mp, &model));
    int64_t n_grad = 0;
    float *grad = model_grad_buffer(model, &n_grad);
    const size_t grad_bytes = (size_t)n_grad * sizeof(float);

    culora_train_params tp = CULORA_TRAIN_PARAMS_INIT;
    tp.total_steps = 1000000;
    tp.lr = 1e-4;
    tp.schedule = CULORA_LR_CONSTANT;
    BENCH_CHECK(j->ctx, culora_trainer_create(model, ld, NULL, &tp, &alone));
    if (j->dist != NULL) {
        tp.dist = j->dist;
        BENCH_CHECK(j->ctx, culora_trainer_create(model, ld, NULL, &tp, &dp));
    }
    /* steps without and with the communicator alternate, so that a machine whose load changes
     * (a shared CI box) slows both alike */
    const int warmup = o->quick ? 1 : 3, steps = o->steps > 0 ? o->steps : (o->quick ? 3 : 10);
    double *t_alone = calloc((size_t)steps, sizeof *t_alone), *t_dp = calloc((size_t)steps, sizeof *t_dp);
    if (t_alone == NULL || t_dp == NULL)
        exit(1);
    for (int i = 0; i < warmup + steps; i++) {
        const double a = time_step(j, alone), b = dp ? time_step(j, dp) : a;
        if (i >= warmup) {
            t_alone[i - warmup] = a;
            t_dp[i - warmup] = b;
        }
    }
    const double compute_ms = max_over_ranks(j, bench_median(t_alone, steps));
    const double step_ms = max_over_ranks(j, bench_median(t_dp, steps));
    free(t_alone);
    free(t_dp);
    const double ar_ms = j->dist ? time_allreduce(j, grad, (size_t)n_grad, o->quick ? 5 : 11, 3) : 0.0;
    if (j->rank == 0) {
        char frac[32];
        bench_json_num(frac, sizeof frac, j->dist ? (step_ms - compute_ms) / step_ms : NAN);
        printf("{\"bench\":\"dist\",\"row\":\"step\",\"config\":\"%s\",\"backend\":\"%s\",\"device\":\"%s\",\"comm\":\"%s\","
               "\"world\":%d,\"tokens_per_rank\":%d,\"trainable\":%lld,\"grad_bytes\":%zu,\"compute_ms\":%.3f,"
               "\"step_ms\":%.3f,\"allreduce_ms\":%.4f,\"comm_fraction\":%s,\"steps\":%d}\n",
               c->name, culora_context_backend_name(j->ctx), culora_context_device_name(j->ctx), j->comm, j->world,
               c->batch * c->seq, (long long)n_grad, grad_bytes, compute_ms, step_ms, ar_ms, frac, steps);
        fflush(stdout);
    }
    culora_trainer_destroy(dp);
    culora_trainer_destroy(alone);
    culora_model_destroy(model);
    culora_loader_destroy(ld);
    culora_dataset_destroy(ds);
    culora_tokenizer_destroy(tok);
    free(text);
}

/* ---- main ------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    cli_cpu_runtime(argv);
    struct opts o = {false, "auto", NULL, 0, -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o.quick = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "bench_dist: unknown option or missing value: %s\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--device") == 0) o.device = v;
        else if (strcmp(a, "--config") == 0) o.config = v;
        else if (strcmp(a, "--steps") == 0) o.steps = atoi(v);
        else if (strcmp(a, "--threads") == 0) o.threads = atoi(v);
        else {
            fprintf(stderr, "bench_dist: unknown option %s\n", a);
            return 2;
        }
    }
    /* the launcher's variables first: each rank drives its local GPU */
    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = CULORA_BACKEND_CPU;
    culora_context *boot = NULL;
    if (culora_context_create(&cp, &boot) != CULORA_OK)
        return 1;
    culora_dist_params dp = CULORA_DIST_PARAMS_INIT;
    BENCH_CHECK(boot, culora_dist_env_parse(boot, environ, &dp.env));
    culora_context_destroy(boot);
    cp.backend = strcmp(o.device, "cpu") == 0    ? CULORA_BACKEND_CPU
                 : strcmp(o.device, "cuda") == 0 ? CULORA_BACKEND_CUDA
                 : culora_cuda_device_count() > 0 ? CULORA_BACKEND_CUDA
                                                  : CULORA_BACKEND_CPU;
    cp.device = dp.env.local_rank;
    /* ranks sharing a machine's cores: one thread each unless told */
    cp.n_threads = o.threads >= 0 ? o.threads : (dp.env.world_size > 1 ? 1 : 0);
    struct job j = {NULL, NULL, 0, 1, "none"};
    if (culora_context_create(&cp, &j.ctx) != CULORA_OK) {
        fprintf(stderr, "bench_dist: cannot create a %s context\n", o.device);
        return 1;
    }
    const bool cuda = culora_context_backend(j.ctx) == CULORA_BACKEND_CUDA;
    dp.timeout_s = 120;
    if (dp.env.world_size > 1 || cuda) {
        /* alone on a GPU: a one-rank NCCL communicator (when this build has NCCL) */
        dp.kind = dp.env.world_size > 1 ? CULORA_DIST_AUTO : CULORA_DIST_NCCL;
        culora_status s = culora_dist_create(j.ctx, &dp, &j.dist);
        if (s != CULORA_OK && dp.env.world_size > 1) {
            fprintf(stderr, "bench_dist: joining the job failed: %s: %s\n", culora_status_name(s),
                    culora_context_last_error(j.ctx));
            return 1;
        }
        if (s != CULORA_OK) /* no NCCL in this build: compute only */
            j.dist = NULL;
    }
    if (j.dist != NULL) {
        j.rank = culora_dist_rank(j.dist);
        j.world = culora_dist_world_size(j.dist);
        j.comm = culora_dist_kind_name(j.dist);
    }
    const char *cname = o.config ? o.config : cuda ? "gpu-small" : "cpu-small";
    const struct config *c = NULL;
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        if (strcmp(configs[i].name, cname) == 0)
            c = &configs[i];
    if (c == NULL) {
        fprintf(stderr, "bench_dist: unknown config %s (cpu-small, gpu-small)\n", cname);
        return 2;
    }
    int rc = check(&j);
    if (rc == 0) {
        sweep(&j, &o);
        step_row(&j, &o, c);
    }
    culora_dist_destroy(j.dist);
    culora_context_destroy(j.ctx);
    return rc;
}
