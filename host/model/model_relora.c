/*
 * model_relora.c — ReLoRA on a LoRA-mode model (model_relora.h): restarting a LoRA pair through the
 * restart op (host/relora_ops.h), and moving tensors in and out of the trainable flat buffers.
 *
 * Flat-buffer changes keep every existing offset: tensors made trainable are appended after the
 * current end (each at a 64-element boundary, as model_layout.c places them), and freezing only
 * removes a tail. A tensor moved into the flat buffers keeps its frozen storage (foff), so it can go
 * back; that storage is unused meanwhile (the price of not re-planning the arena).
 */
#include "model_relora.h"

#include "../relora_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FLAT_ALIGN 64            /* elements, as model_layout.c's TRAIN_ALIGN */
#define LORA_STREAM 0x10000000ull /* model_lora.c's random streams of LoRA tensors */

uint64_t model_relora_init_stream(int32_t i, uint64_t round)
{
    return LORA_STREAM + ((uint64_t)i << 8) + (round << 32);
}

/* ---- slot → linear ------------------------------------------------------------------------------ */

struct find_lin {
    const struct mlora *lo;
    struct mlinear *found;
};

static culora_status find_cb(struct culora_model *m, struct mlinear *lin, const char *peft_name, void *user)
{
    (void)m;
    (void)peft_name;
    struct find_lin *f = user;
    if (lin->lora == f->lo)
        f->found = lin;
    return CULORA_OK;
}

struct mlinear *model_relora_linear(struct culora_model *m, int32_t i)
{
    if (i < 0 || i >= m->n_loras)
        return NULL;
    struct find_lin f = {&m->loras[i], NULL};
    (void)model_for_each_linear(m, find_cb, &f);
    return f.found;
}

/* ---- the flat buffers -------------------------------------------------------------------------- */

static int64_t round_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }

static void point_tensor(struct culora_model *m, struct mtensor *t)
{
    if (!t->present || t->q != NULL)
        return;
    if (t->trainable)
        t->s = m->copy != NULL ? (void *)((char *)m->copy + (size_t)t->off * m->es) : (void *)(m->master + t->off);
    else
        t->s = (char *)m->frozen + t->foff;
}

static culora_status point_cb(struct culora_model *m, struct mtensor *t, const char *hf, bool tr, void *user)
{
    (void)hf;
    (void)tr;
    (void)user;
    point_tensor(m, t);
    return CULORA_OK;
}

/* Every tensor's storage pointer from its current placement (after the flat buffers moved). */
static void point_all(struct culora_model *m)
{
    (void)model_for_each_tensor(m, point_cb, NULL);
    for (int32_t i = 0; i < m->n_loras + (m->emb_lora ? 1 : 0); i++) {
        point_tensor(m, &m->loras[i].A);
        point_tensor(m, &m->loras[i].B);
    }
    if (m->cfg.tie_word_embeddings) { /* lm_head shares wte's storage, master and gradient */
        m->lm_head.W = m->wte;
        m->lm_head.W.present = true;
    }
}

/* Reallocates the flat buffers to n elements, keeping the first min(n, n_train); new elements 0. */
static culora_status resize_flat(struct culora_model *m, int64_t n)
{
    const int64_t keep = n < m->n_train ? n : m->n_train;
    float **bufs[4] = {&m->master, &m->grad, &m->adam_m, &m->adam_v};
    void *fresh[5] = {NULL, NULL, NULL, NULL, NULL};
    culora_status s = CULORA_OK;
    const int n_bufs = m->copy != NULL ? 5 : 4;
    for (int b = 0; b < n_bufs && s == CULORA_OK; b++) {
        const size_t es = b < 4 ? sizeof(float) : m->es;
        void *old = b < 4 ? (void *)*bufs[b] : m->copy;
        s = n > 0 ? culora_malloc(m->ctx, (size_t)n * es, &fresh[b]) : CULORA_OK;
        if (s == CULORA_OK && n > 0)
            s = culora_memset(m->ctx, fresh[b], 0, (size_t)n * es, NULL);
        if (s == CULORA_OK && keep > 0)
            s = culora_memcpy(m->ctx, fresh[b], old, (size_t)keep * es, CULORA_COPY_DEVICE_TO_DEVICE, NULL);
    }
    if (s == CULORA_OK)
        s = culora_synchronize(m->ctx, NULL);
    if (s != CULORA_OK) {
        for (int b = 0; b < n_bufs; b++)
            culora_free(m->ctx, fresh[b]);
        return s;
    }
    for (int b = 0; b < 4; b++) {
        culora_free(m->ctx, *bufs[b]);
        *bufs[b] = fresh[b];
    }
    if (m->copy != NULL) {
        culora_free(m->ctx, m->copy);
        m->copy = fresh[4];
    }
    m->n_train = n;
    point_all(m);
    /* the gradient norm's workspace grows with the flat buffers */
    if (n > 0) {
        struct culora_nn_ws w;
        const struct culora_nn_grad_norm_args gn = {.n = n};
        CULORA_TRY(culora_nn_grad_norm_workspace(m->ctx, &gn, &w));
        if (w.full_bytes > m->ws_bytes) {
            void *ws = NULL;
            const size_t bytes = (w.full_bytes + 255) / 256 * 256;
            CULORA_TRY(culora_malloc(m->ctx, bytes, &ws));
            culora_free(m->ctx, m->ws);
            m->ws = ws;
            m->ws_bytes = bytes;
        }
    }
    return CULORA_OK;
}

culora_status model_relora_unfreeze(struct culora_model *m, struct mtensor *const *ts, int32_t n)
{
    if (n == 0)
        return CULORA_OK;
    int64_t end = m->n_train;
    int64_t *offs = malloc((size_t)n * sizeof *offs);
    if (offs == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    for (int32_t i = 0; i < n; i++) {
        const struct mtensor *t = ts[i];
        if (t->trainable || !t->present || t->q != NULL) {
            free(offs);
            return culora_fail(m->ctx, CULORA_ERR_INTERNAL, "model: only present, frozen, unquantized tensors can be "
                                                            "made trainable");
        }
        offs[i] = round_up(end, FLAT_ALIGN);
        end = offs[i] + t->rows * t->ld;
    }
    culora_status s = resize_flat(m, end);
    /* one tensor at a time: its frozen value becomes its master (and storage-dtype copy) */
    float *v = NULL;
    for (int32_t i = 0; i < n && s == CULORA_OK; i++) {
        struct mtensor *t = ts[i];
        float *nv = realloc(v, (size_t)(t->rows * t->cols) * sizeof *v);
        if (nv == NULL) {
            s = culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
            break;
        }
        v = nv;
        s = model_tensor_download(m, t, v);
        if (s != CULORA_OK)
            break;
        t->trainable = true;
        t->off = offs[i];
        point_tensor(m, t);
        m->n_trainable += t->rows * t->cols;
        s = model_tensor_upload(m, t, v);
    }
    free(v);
    free(offs);
    if (m->cfg.tie_word_embeddings) {
        m->lm_head.W = m->wte;
        m->lm_head.W.present = true;
    }
    return s;
}

struct tail {
    int64_t n_keep;
    culora_status s;
};

static culora_status freeze_cb(struct culora_model *m, struct mtensor *t, const char *hf, bool tr, void *user)
{
    (void)hf;
    (void)tr;
    struct tail *tl = user;
    if (!t->present || !t->trainable || t->off < tl->n_keep)
        return CULORA_OK;
    const int64_t n = t->rows * t->ld;
    void *frozen = (char *)m->frozen + t->foff;
    if (m->S == CULORA_DTYPE_F32) {
        CULORA_TRY(culora_memcpy(m->ctx, frozen, m->master + t->off, (size_t)n * sizeof(float),
                                 CULORA_COPY_DEVICE_TO_DEVICE, NULL));
    } else {
        const struct culora_nn_cast_args c = {.n = n, .src = m->master + t->off, .dst = frozen};
        CULORA_TRY(culora_nn_cast(m->ctx, &c, NULL));
    }
    t->trainable = false;
    t->off = -1;
    m->n_trainable -= t->rows * t->cols;
    return CULORA_OK;
}

culora_status model_relora_freeze_tail(struct culora_model *m, int64_t n_keep)
{
    if (n_keep >= m->n_train)
        return CULORA_OK;
    for (int32_t i = 0; i < m->n_loras + (m->emb_lora ? 1 : 0); i++)
        if ((m->loras[i].A.trainable && m->loras[i].A.off >= n_keep) ||
            (m->loras[i].B.trainable && m->loras[i].B.off >= n_keep))
            return culora_fail(m->ctx, CULORA_ERR_INTERNAL, "model: LoRA tensors lie in the tail being frozen");
    struct tail tl = {n_keep, CULORA_OK};
    CULORA_TRY(model_for_each_tensor(m, freeze_cb, &tl));
    CULORA_TRY(culora_synchronize(m->ctx, NULL));
    return resize_flat(m, n_keep);
}

/* ---- restart ------------------------------------------------------------------------------------ */

static bool gaussian_init(const struct culora_model *m)
{
    return m->lora_cfg.init_lora_weights != NULL && strcmp(m->lora_cfg.init_lora_weights, "gaussian") == 0;
}

/* The op's arguments for slot i (W0 fields for an unquantized W0). */
static void restart_args(struct culora_model *m, int32_t i, const struct mlinear *lin,
                         const struct model_relora_restart *rs, struct culora_relora_restart_args *a)
{
    const struct mlora *lo = &m->loras[i];
    memset(a, 0, sizeof *a);
    a->d = lo->B.rows;
    a->k = lo->A.cols;
    a->r = lo->r;
    a->merge = rs->merge;
    culora_lora_linear_desc d = CULORA_LORA_LINEAR_DESC_INIT; /* the scaling the forward uses, bit for bit */
    d.r = lo->r;
    d.alpha = (float)lo->alpha;
    d.flags = m->lora_cfg.use_rslora ? CULORA_LORA_RSLORA : 0u;
    a->scaling = culora_lora_scaling(&d);
    a->w0 = lin->W.s;
    a->ldw0 = lin->W.ld;
    a->w0_dtype = m->S;
    a->w0_master = rs->w0_master;
    a->a = m->master + lo->A.off;
    a->lda = lo->A.ld;
    a->b = m->master + lo->B.off;
    a->ldb = lo->B.ld;
    a->a_copy = m->copy != NULL ? lo->A.s : NULL;
    a->b_copy = m->copy != NULL ? lo->B.s : NULL;
    a->a_m = m->adam_m + lo->A.off;
    a->a_v = m->adam_v + lo->A.off;
    a->b_m = m->adam_m + lo->B.off;
    a->b_v = m->adam_v + lo->B.off;
    a->init = gaussian_init(m) ? CULORA_RELORA_INIT_GAUSSIAN : CULORA_RELORA_INIT_UNIFORM;
    a->init_scale = gaussian_init(m) ? (double)lo->r : 1.0 / sqrt((double)lo->A.cols);
    a->init_seed = rs->init_seed;
    a->init_stream = model_relora_init_stream(i, rs->round);
    a->prune = rs->prune;
    a->prune_ratio = rs->prune_ratio;
    a->prune_seed = rs->prune_seed;
    a->prune_stream = ((uint64_t)rs->step << 24) + ((uint64_t)i << 2);
}

culora_status model_relora_workspace(struct culora_model *m, int32_t prune, size_t *bytes)
{
    *bytes = 0;
    const struct model_relora_restart rs = {.merge = true, .init_seed = 1, .prune = prune, .prune_ratio = 0.5};
    for (int32_t i = 0; i < m->n_loras; i++) {
        struct mlinear *lin = model_relora_linear(m, i);
        if (lin == NULL || !m->loras[i].A.trainable || !m->loras[i].B.trainable)
            return culora_fail(m->ctx, CULORA_ERR_UNSUPPORTED,
                               "ReLoRA restarts linear LoRA pairs with trainable A and B (LoRA mode)");
        struct culora_relora_restart_args a;
        restart_args(m, i, lin, &rs, &a);
        a.merge = false; /* W0 does not change the workspace; a quantized one has no plain view */
        size_t b = 0;
        CULORA_TRY(culora_relora_restart_workspace(m->ctx, &a, &b));
        if (b > *bytes)
            *bytes = b;
    }
    return CULORA_OK;
}

/* Host copy of the dense [rows, cols] part of a backend [rows, ld] fp32 matrix. */
static culora_status download_f32(struct culora_model *m, const float *src, int64_t rows, int64_t cols, int64_t ld,
                                  float *dst)
{
    CULORA_TRY(culora_memcpy(m->ctx, dst, src, (size_t)(rows * ld) * sizeof(float), CULORA_COPY_DEVICE_TO_HOST, NULL));
    CULORA_TRY(culora_synchronize(m->ctx, NULL));
    for (int64_t i = 1; i < rows; i++)
        memmove(dst + i * cols, dst + i * ld, (size_t)cols * sizeof *dst);
    return CULORA_OK;
}

/* Quantized W0: dequantize into the fp32 scratch, restart (merging there), requantize, measure. */
static culora_status restart_quantized(struct culora_model *m, struct mlinear *lin, struct culora_relora_restart_args *a,
                                       struct model_relora_restart *rs, void *ws, size_t ws_bytes)
{
    const struct mquant *q = lin->W.q;
    const int64_t rows = lin->out, cols = lin->in, ld = model_round_ld(m, cols);
    float *wdq = m->wdq;
    a->w0 = wdq;
    a->ldw0 = ld;
    a->w0_dtype = CULORA_DTYPE_F32;
    a->w0_master = NULL;
    if (!a->merge)
        return culora_relora_restart(m->ctx, a, ws, ws_bytes, NULL);
    CULORA_TRY(culora_dequantize(m->ctx, &q->desc, &q->w, wdq, ld, CULORA_DTYPE_F32, NULL));
    CULORA_TRY(culora_relora_restart(m->ctx, a, ws, ws_bytes, NULL));
    float *want = malloc((size_t)(rows * ld) * sizeof *want), *got = malloc((size_t)(rows * ld) * sizeof *got);
    culora_status s = want && got ? CULORA_OK : culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    if (s == CULORA_OK)
        s = download_f32(m, wdq, rows, cols, ld, want);
    if (s == CULORA_OK)
        s = culora_quantize(m->ctx, &q->desc, wdq, ld, CULORA_DTYPE_F32, &q->w, m->ws, m->ws_bytes, NULL);
    if (s == CULORA_OK)
        s = culora_dequantize(m->ctx, &q->desc, &q->w, wdq, ld, CULORA_DTYPE_F32, NULL);
    if (s == CULORA_OK)
        s = download_f32(m, wdq, rows, cols, ld, got);
    if (s == CULORA_OK) {
        double err2 = 0.0, ref2 = 0.0, mx = 0.0;
        for (int64_t i = 0; i < rows * cols; i++) {
            const double e = (double)got[i] - (double)want[i];
            err2 += e * e;
            ref2 += (double)want[i] * (double)want[i];
            mx = fabs(e) > mx ? fabs(e) : mx;
        }
        rs->requant_rel = ref2 > 0.0 ? sqrt(err2 / ref2) : sqrt(err2);
        rs->requant_max = mx;
    }
    free(want);
    free(got);
    return s;
}

culora_status model_relora_restart(struct culora_model *m, int32_t i, struct model_relora_restart *rs, void *ws,
                                   size_t ws_bytes)
{
    struct mlinear *lin = model_relora_linear(m, i);
    if (lin == NULL || lin->lora == NULL || !m->loras[i].A.trainable || !m->loras[i].B.trainable)
        return culora_fail(m->ctx, CULORA_ERR_MISUSE, "ReLoRA restart: slot %d is not an attached linear LoRA pair "
                                                      "with trainable A and B",
                           (int)i);
    rs->requant_rel = rs->requant_max = 0.0;
    struct culora_relora_restart_args a;
    restart_args(m, i, lin, rs, &a);
    if (lin->W.q != NULL)
        return restart_quantized(m, lin, &a, rs, ws, ws_bytes);
    if (m->S != CULORA_DTYPE_F32 && rs->merge && rs->w0_master == NULL)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG, "ReLoRA restart: a %s base needs its fp32 master",
                           culora_dtype_name(m->S));
    return culora_relora_restart(m->ctx, &a, ws, ws_bytes, NULL);
}
