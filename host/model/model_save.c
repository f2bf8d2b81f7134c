/*
 * model_save.c — writing a Hugging Face model directory: fp32 weights with LoRA merged in,
 * GPT-2 Conv1D weights transposed back to [in, out], names as transformers' save_pretrained
 * writes them ("transformer." prefix for GPT-2), and config.json.
 */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct save_ctx {
    culora_safetensors_writer *w;
    float **bufs; /* data must outlive writer_save */
    size_t n_bufs, cap;
};

static struct mlinear *linear_of_weight(struct culora_model *m, const struct mtensor *t);

static culora_status find_linear_cb(struct culora_model *m, struct mlinear *lin, const char *peft, void *user)
{
    (void)m;
    (void)peft;
    struct {
        const struct mtensor *t;
        struct mlinear *found;
    } *q = user;
    if (&lin->W == q->t)
        q->found = lin;
    return CULORA_OK;
}

static struct mlinear *linear_of_weight(struct culora_model *m, const struct mtensor *t)
{
    struct {
        const struct mtensor *t;
        struct mlinear *found;
    } q = {t, NULL};
    (void)model_for_each_linear(m, find_linear_cb, &q);
    return q.found;
}

/* W [out, in] += s · B [out, r] · A [r, in], fp64 sums. */
static culora_status merge_into(struct culora_model *m, const struct mlora *lo, float *w, int64_t out, int64_t in)
{
    float *a = malloc((size_t)(lo->r * in) * sizeof *a), *b = malloc((size_t)(out * lo->r) * sizeof *b);
    culora_status s = a && b ? CULORA_OK : culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "save: out of host memory");
    if (s == CULORA_OK)
        s = model_tensor_download(m, &lo->A, a);
    if (s == CULORA_OK)
        s = model_tensor_download(m, &lo->B, b);
    if (s == CULORA_OK)
        for (int64_t i = 0; i < out; i++)
            for (int64_t j = 0; j < in; j++) {
                double acc = 0.0;
                for (int32_t q = 0; q < lo->r; q++)
                    acc += (double)b[i * lo->r + q] * (double)a[(int64_t)q * in + j];
                w[i * in + j] = (float)((double)w[i * in + j] + lo->scaling * acc);
            }
    free(a);
    free(b);
    return s;
}

static culora_status save_cb(struct culora_model *m, struct mtensor *t, const char *hf, bool transposed, void *user)
{
    struct save_ctx *sc = user;
    const int64_t n = t->rows * t->cols;
    float *v = malloc((size_t)n * sizeof *v);
    if (v == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "save: out of host memory");
    if (sc->n_bufs == sc->cap) {
        size_t cap = sc->cap ? 2 * sc->cap : 64;
        float **nb = realloc(sc->bufs, cap * sizeof *nb);
        if (nb == NULL) {
            free(v);
            return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "save: out of host memory");
        }
        sc->bufs = nb;
        sc->cap = cap;
    }
    sc->bufs[sc->n_bufs++] = v;
    CULORA_TRY(model_tensor_download(m, t, v));
    struct mlinear *lin = linear_of_weight(m, t);
    if (lin != NULL && lin->lora != NULL)
        CULORA_TRY(merge_into(m, lin->lora, v, lin->out, lin->in));
    if (m->emb_lora != NULL && t == &m->wte) {
        /* embedding LoRA: wte [V, C] += s · (B [C, r] · A [r, V])ᵀ = s · Aᵀ [V, r] · Bᵀ */
        const struct mlora *lo = m->emb_lora;
        float *at = malloc((size_t)(m->V * lo->r) * sizeof *at), *b = malloc((size_t)(m->C * lo->r) * sizeof *b);
        culora_status s = at && b ? CULORA_OK : culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "save: out of memory");
        if (s == CULORA_OK)
            s = model_tensor_download(m, &lo->A, at);
        if (s == CULORA_OK)
            s = model_tensor_download(m, &lo->B, b);
        if (s == CULORA_OK)
            for (int64_t vv = 0; vv < m->V; vv++)
                for (int64_t c = 0; c < m->C; c++) {
                    double acc = 0.0;
                    for (int32_t q = 0; q < lo->r; q++)
                        acc += (double)at[vv * lo->r + q] * (double)b[c * lo->r + q];
                    v[vv * m->C + c] = (float)((double)v[vv * m->C + c] + lo->scaling * acc);
                }
        free(at);
        free(b);
        CULORA_TRY(s);
    }
    int64_t shape[2];
    int32_t nd = t->rows == 1 ? 1 : 2;
    const void *data = v;
    if (nd == 1) {
        shape[0] = t->cols;
    } else if (transposed) { /* Conv1D: [in, out] on disk */
        float *tr = malloc((size_t)n * sizeof *tr);
        if (tr == NULL)
            return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "save: out of host memory");
        for (int64_t i = 0; i < t->rows; i++)
            for (int64_t j = 0; j < t->cols; j++)
                tr[j * t->rows + i] = v[i * t->cols + j];
        memcpy(v, tr, (size_t)n * sizeof *v);
        free(tr);
        shape[0] = t->cols;
        shape[1] = t->rows;
    } else {
        shape[0] = t->rows;
        shape[1] = t->cols;
    }
    char name[160];
    snprintf(name, sizeof name, "%s%s", m->gpt2 && strncmp(hf, "lm_head", 7) != 0 ? "transformer." : "", hf);
    return culora_safetensors_writer_add(m->ctx, sc->w, name, CULORA_ST_F32, nd, shape, data, (uint64_t)n * 4);
}

culora_status culora_model_save(culora_model *m, const char *dir)
{
    if (m == NULL)
        return CULORA_ERR_INVALID_ARG;
    if (dir == NULL)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG, "culora_model_save: dir is NULL");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return culora_fail(m->ctx, CULORA_ERR_IO, "culora_model_save: cannot create %s: %s", dir, strerror(errno));
    struct save_ctx sc = {NULL, NULL, 0, 0};
    culora_status s = culora_safetensors_writer_create(m->ctx, &sc.w);
    if (s == CULORA_OK)
        s = model_for_each_tensor(m, save_cb, &sc);
    if (s == CULORA_OK)
        s = culora_safetensors_writer_set_metadata(m->ctx, sc.w, "format", "pt");
    char path[4096];
    if (s == CULORA_OK && snprintf(path, sizeof path, "%s/model.safetensors", dir) >= (int)sizeof path)
        s = culora_fail(m->ctx, CULORA_ERR_INVALID_ARG, "culora_model_save: path too long");
    if (s == CULORA_OK)
        s = culora_safetensors_writer_save(m->ctx, sc.w, path);
    if (s == CULORA_OK)
        s = culora_model_config_save(m->ctx, &m->cfg, dir);
    culora_safetensors_writer_destroy(sc.w);
    for (size_t i = 0; i < sc.n_bufs; i++)
        free(sc.bufs[i]);
    free(sc.bufs);
    return s;
}
