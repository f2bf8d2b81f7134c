/*
 * relora.c — the CPU reference of the ReLoRA restart (host/relora_ops.h): merge through OpenBLAS
 * (W0 += s·B·A, fp32), A from Philox exactly as model_lora_reinit draws it, B = 0, AdamW moments
 * pruned by magnitude (an exact selection of torch.quantile's two order statistics) or at random.
 * The storage dtype is fp32 here, so masters are the copies and W0 is its own master.
 */
#include "cpu_internal.h"

#include "../philox.h"
#include "../relora_ops.h"

#include <math.h>
#include <string.h>

/* Philox words of (seed, stream, i) with the key model_rand_uniform uses ("init" in the high word). */
static void init_words(uint64_t seed, uint64_t stream, uint64_t i, uint32_t out[4])
{
    const uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32) ^ 0x696e6974u};
    culora_philox4x32_10(ctr, key, out);
}

static float init_value(const struct culora_relora_restart_args *a, uint64_t i)
{
    uint32_t o[4];
    init_words(a->init_seed, a->init_stream, i, o);
    if (a->init == CULORA_RELORA_INIT_GAUSSIAN) {
        const double u1 = ((double)(o[0] >> 5) * 67108864.0 + (double)(o[1] >> 6) + 0.5) / 9007199254740992.0;
        const double u2 = ((double)(o[2] >> 5) * 67108864.0 + (double)(o[3] >> 6)) / 9007199254740992.0;
        return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2) / a->init_scale);
    }
    const double u = ((double)(o[0] >> 5) * 67108864.0 + (double)(o[1] >> 6)) / 9007199254740992.0;
    return (float)((2.0 * u - 1.0) * a->init_scale);
}

/* k-th smallest (0-based) of v[0..n) by quickselect; v is permuted so that v[k] holds it and
 * every element after k is >= it. */
static float select_kth(float *v, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        const float pivot = v[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                const float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break; /* v[j+1 .. i-1] all equal the pivot */
    }
    return v[k];
}

/* torch.quantile(|t|, ratio) over the logical [rows, cols] elements; scratch holds rows·cols floats. */
static float magnitude_threshold(const float *t, int64_t rows, int64_t cols, int64_t ld, double ratio, float *scratch)
{
    const int64_t n = rows * cols;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            scratch[i * cols + j] = fabsf(t[i * ld + j]);
    int64_t lo, hi;
    float w;
    relora_quantile_rank(ratio, n, &lo, &hi, &w);
    const float v_lo = select_kth(scratch, n, lo);
    float v_hi = v_lo;
    if (hi > lo) /* the next order statistic: the smallest element after position lo */
        for (int64_t i = lo + 1; i < n; i++)
            v_hi = i == lo + 1 || scratch[i] < v_hi ? scratch[i] : v_hi;
    return relora_lerp(v_lo, v_hi, w);
}

static void prune_tensor(const struct culora_relora_restart_args *a, float *t, int64_t rows, int64_t cols, int64_t ld,
                         uint64_t stream, float *scratch)
{
    if (a->prune == CULORA_RELORA_PRUNE_ZERO) {
        for (int64_t i = 0; i < rows; i++)
            memset(t + i * ld, 0, (size_t)cols * sizeof *t);
        return;
    }
    if (a->prune == CULORA_RELORA_PRUNE_MAGNITUDE) {
        const float thr = magnitude_threshold(t, rows, cols, ld, a->prune_ratio, scratch);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                t[i * ld + j] = fabsf(t[i * ld + j]) > thr ? t[i * ld + j] : 0.0f;
        return;
    }
    /* RANDOM: the dropout-mask convention of host/philox.h with key prune_seed */
    const uint32_t thr = relora_random_threshold(a->prune_ratio);
    const uint32_t key[2] = {(uint32_t)a->prune_seed, (uint32_t)(a->prune_seed >> 32)};
    uint32_t w[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < rows * cols; i++) {
        if (i % 4 == 0) {
            const uint64_t g = (uint64_t)i / 4;
            const uint32_t ctr[4] = {(uint32_t)g, (uint32_t)(g >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
            culora_philox4x32_10(ctr, key, w);
        }
        float *e = &t[(i / cols) * ld + i % cols];
        if ((w[i % 4] >> 8) < thr)
            *e = 0.0f;
    }
}

/* m = 0 wherever v = 0 (host/relora_ops.h: an m without its v would step by m/eps). */
static void second_moment_guard(float *m, const float *v, int64_t rows, int64_t cols, int64_t ld)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            if (v[i * ld + j] == 0.0f)
                m[i * ld + j] = 0.0f;
}

static culora_status cpu_relora_reset_workspace(culora_backend *be, const struct culora_relora_restart_args *a,
                                                size_t *bytes)
{
    (void)be;
    const int64_t na = a->r * a->k, nb = a->d * a->r;
    *bytes = a->prune == CULORA_RELORA_PRUNE_MAGNITUDE ? (size_t)(na > nb ? na : nb) * sizeof(float) : 0;
    return CULORA_OK;
}

static culora_status cpu_relora_reset(culora_backend *be, const struct culora_relora_restart_args *a,
                                      const culora_workspace *ws, culora_stream stream)
{
    (void)be;
    (void)stream;
    const int64_t d = a->d, k = a->k, r = a->r;
    if (a->merge) { /* W0[d,k] += s·B·A */
        float *w0 = a->w0_master != NULL ? a->w0_master : (float *)a->w0;
        cpu_sgemm(false, false, d, k, r, a->scaling, a->b, a->ldb, a->a, a->lda, 1.0f, w0, a->ldw0);
        if (a->w0_master != NULL) /* (unused on this backend: S is f32) */
            for (int64_t i = 0; i < d; i++)
                memcpy((float *)a->w0 + i * a->ldw0, w0 + i * a->ldw0, (size_t)k * sizeof(float));
    }
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < k; j++)
            a->a[i * a->lda + j] = init_value(a, (uint64_t)(i * k + j));
    for (int64_t i = 0; i < d; i++)
        memset(a->b + i * a->ldb, 0, (size_t)r * sizeof(float));
    if (a->a_copy != NULL && a->a_copy != a->a)
        memcpy(a->a_copy, a->a, (size_t)(r * a->lda) * sizeof(float));
    if (a->b_copy != NULL && a->b_copy != a->b)
        memcpy(a->b_copy, a->b, (size_t)(d * a->ldb) * sizeof(float));
    if (a->prune != CULORA_RELORA_PRUNE_NONE) {
        float *scratch = ws->ptr;
        prune_tensor(a, a->a_m, r, k, a->lda, a->prune_stream + 0, scratch);
        prune_tensor(a, a->a_v, r, k, a->lda, a->prune_stream + 1, scratch);
        prune_tensor(a, a->b_m, d, r, a->ldb, a->prune_stream + 2, scratch);
        prune_tensor(a, a->b_v, d, r, a->ldb, a->prune_stream + 3, scratch);
        second_moment_guard(a->a_m, a->a_v, r, k, a->lda);
        second_moment_guard(a->b_m, a->b_v, d, r, a->ldb);
    }
    return CULORA_OK;
}

const struct culora_relora_i culora_cpu_relora_iface = {
    .family = "relora",
    .reset_workspace = cpu_relora_reset_workspace,
    .reset = cpu_relora_reset,
};
