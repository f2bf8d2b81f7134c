/*
 * model_weights.c — moving parameter values between the host (fp32, dense [rows, cols]) and the
 * model's storage; random initialisation; loading a Hugging Face safetensors set.
 */
#include "model.h"

#include "../philox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- host random numbers -------------------------------------------------------------------------- */

static void philox_words(uint64_t seed, uint64_t stream, uint64_t i, uint32_t out[4])
{
    const uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32) ^ 0x696e6974u /* "init" */};
    culora_philox4x32_10(ctr, key, out);
}

double model_rand_uniform(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint32_t o[4];
    philox_words(seed, stream, i, o);
    return ((double)(o[0] >> 5) * 67108864.0 + (double)(o[1] >> 6)) / 9007199254740992.0;
}

double model_rand_normal(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint32_t o[4];
    philox_words(seed, stream, i, o);
    const double u1 = ((double)(o[0] >> 5) * 67108864.0 + (double)(o[1] >> 6) + 0.5) / 9007199254740992.0;
    const double u2 = ((double)(o[2] >> 5) * 67108864.0 + (double)(o[3] >> 6)) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- upload / download -------------------------------------------------------------------------- */

/* Host image [rows, ld] of a dense [rows, cols] fp32 matrix, padding zero. */
static float *pad_rows(const struct mtensor *t, const float *src)
{
    float *p = calloc((size_t)(t->rows * t->ld), sizeof *p);
    if (p == NULL)
        return NULL;
    for (int64_t i = 0; i < t->rows; i++)
        memcpy(p + i * t->ld, src + i * t->cols, (size_t)t->cols * sizeof *p);
    return p;
}

static culora_status upload_s(struct culora_model *m, void *dst, const float *padded, size_t n)
{
    if (m->S == CULORA_DTYPE_F32)
        return culora_memcpy(m->ctx, dst, padded, n * 4, CULORA_COPY_HOST_TO_DEVICE, NULL);
    uint16_t *h = malloc(n * sizeof *h);
    if (h == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    culora_f32_to_bf16(padded, h, n);
    culora_status s = culora_memcpy(m->ctx, dst, h, n * 2, CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(m->ctx, NULL); /* h is freed next */
    free(h);
    return s;
}

/* A quantized weight: fp32 rows padded to the backend's alignment go through the scratch buffer
 * into culora_quantize (bitsandbytes' rounding, from fp32 as a float checkpoint holds it). */
static culora_status upload_quantized(struct culora_model *m, const struct mtensor *t, const float *src)
{
    const int64_t ld = model_round_ld(m, t->cols);
    const struct mtensor view = {.rows = t->rows, .cols = t->cols, .ld = ld};
    float *p = pad_rows(&view, src);
    if (p == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    culora_status s = culora_memcpy(m->ctx, m->wdq, p, (size_t)(t->rows * ld) * 4, CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK)
        s = culora_quantize(m->ctx, &t->q->desc, m->wdq, ld, CULORA_DTYPE_F32, &t->q->w, m->ws, m->ws_bytes, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(m->ctx, NULL);
    free(p);
    return s;
}

static culora_status download_quantized(struct culora_model *m, const struct mtensor *t, float *dst)
{
    const int64_t ld = model_round_ld(m, t->cols);
    float *p = malloc((size_t)(t->rows * ld) * sizeof *p);
    if (p == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    culora_status s = culora_dequantize(m->ctx, &t->q->desc, &t->q->w, m->wdq, ld, CULORA_DTYPE_F32, NULL);
    if (s == CULORA_OK)
        s = culora_memcpy(m->ctx, p, m->wdq, (size_t)(t->rows * ld) * 4, CULORA_COPY_DEVICE_TO_HOST, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(m->ctx, NULL);
    if (s == CULORA_OK)
        for (int64_t i = 0; i < t->rows; i++)
            memcpy(dst + i * t->cols, p + i * ld, (size_t)t->cols * sizeof *dst);
    free(p);
    return s;
}

culora_status model_tensor_upload(struct culora_model *m, const struct mtensor *t, const float *src)
{
    if (t->q != NULL)
        return upload_quantized(m, t, src);
    const size_t n = (size_t)(t->rows * t->ld);
    float *p = pad_rows(t, src);
    if (p == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    culora_status s = CULORA_OK;
    if (t->trainable) {
        s = culora_memcpy(m->ctx, m->master + t->off, p, n * 4, CULORA_COPY_HOST_TO_DEVICE, NULL);
        if (s == CULORA_OK && m->copy != NULL)
            s = upload_s(m, t->s, p, n);
    } else {
        s = upload_s(m, t->s, p, n);
    }
    if (s == CULORA_OK)
        s = culora_synchronize(m->ctx, NULL);
    free(p);
    return s;
}

culora_status model_tensor_download(struct culora_model *m, const struct mtensor *t, float *dst)
{
    if (t->q != NULL)
        return download_quantized(m, t, dst);
    const size_t n = (size_t)(t->rows * t->ld);
    float *p = malloc(n * sizeof *p);
    void *raw = p;
    if (p == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    culora_status s;
    if (t->trainable || m->S == CULORA_DTYPE_F32) {
        s = culora_memcpy(m->ctx, p, t->trainable ? (const void *)(m->master + t->off) : t->s, n * 4,
                          CULORA_COPY_DEVICE_TO_HOST, NULL);
        if (s == CULORA_OK)
            s = culora_synchronize(m->ctx, NULL);
    } else {
        uint16_t *h = malloc(n * sizeof *h);
        raw = h;
        s = h ? culora_memcpy(m->ctx, h, t->s, n * 2, CULORA_COPY_DEVICE_TO_HOST, NULL)
              : culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
        if (s == CULORA_OK)
            s = culora_synchronize(m->ctx, NULL);
        if (s == CULORA_OK)
            culora_bf16_to_f32(h, p, n);
        free(h);
        raw = p;
    }
    if (s == CULORA_OK)
        for (int64_t i = 0; i < t->rows; i++)
            memcpy(dst + i * t->cols, p + i * t->ld, (size_t)t->cols * sizeof *dst);
    free(raw);
    return s;
}

/* ---- random initialisation ------------------------------------------------------------------------ */

struct init_ctx {
    uint64_t seed;
    uint64_t stream;
};

static culora_status init_cb(struct culora_model *m, struct mtensor *t, const char *hf, bool transposed, void *user)
{
    (void)transposed;
    struct init_ctx *ic = user;
    const uint64_t stream = ic->stream++;
    const int64_t n = t->rows * t->cols;
    float *v = malloc((size_t)n * sizeof *v);
    if (v == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    const size_t len = strlen(hf);
    const bool is_bias = len > 5 && strcmp(hf + len - 5, ".bias") == 0;
    const bool is_norm = t->rows == 1 && !is_bias; /* 1-D weights are norm gains */
    /* GPT-2 scales the residual projections by 1/sqrt(2·n_layer) (HF GPT2PreTrainedModel._init_weights) */
    const bool resid_proj = m->gpt2 && strstr(hf, "c_proj.weight") != NULL;
    const double std = resid_proj ? 0.02 / sqrt(2.0 * (double)m->L) : 0.02;
    /* element i depends on (seed, stream, i) alone, so the threads give the same tensor as one:
     * GPT-2 medium's 355M values took 21 s on one core of the H100 machine */
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        v[i] = is_bias ? 0.0f : is_norm ? 1.0f : (float)(std * model_rand_normal(ic->seed, stream, (uint64_t)i));
    culora_status s = model_tensor_upload(m, t, v);
    free(v);
    return s;
}

culora_status model_init_random(struct culora_model *m, uint64_t seed)
{
    struct init_ctx ic = {seed, 0};
    return model_for_each_tensor(m, init_cb, &ic);
}

/* ---- loading ------------------------------------------------------------------------------------------ */

static culora_status load_cb(struct culora_model *m, struct mtensor *t, const char *hf, bool transposed, void *user)
{
    const culora_safetensors *st = user;
    const culora_tensor_info *info = culora_model_find_tensor(&m->cfg, st, hf);
    if (info == NULL)
        return culora_fail(m->ctx, CULORA_ERR_FORMAT, "model weights: tensor '%s' is missing", hf);
    const int64_t n = t->rows * t->cols;
    if (info->n_elems != n)
        return culora_fail(m->ctx, CULORA_ERR_FORMAT, "model weights: tensor '%s' has %lld elements, expected %lld",
                           hf, (long long)info->n_elems, (long long)n);
    float *v = malloc((size_t)n * sizeof *v), *tr = NULL;
    if (v == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    culora_status s = culora_tensor_read(m->ctx, info, CULORA_DTYPE_F32, v, (size_t)n * sizeof *v);
    if (s == CULORA_OK && transposed) { /* Conv1D [in, out] → [out, in] */
        tr = malloc((size_t)n * sizeof *tr);
        if (tr == NULL) {
            s = culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
        } else {
            for (int64_t i = 0; i < t->cols; i++)
                for (int64_t j = 0; j < t->rows; j++)
                    tr[j * t->cols + i] = v[i * t->rows + j];
        }
    }
    if (s == CULORA_OK)
        s = model_tensor_upload(m, t, tr ? tr : v);
    free(v);
    free(tr);
    return s;
}

culora_status model_load_weights(struct culora_model *m, const culora_safetensors *st)
{
    return model_for_each_tensor(m, load_cb, (void *)st);
}
