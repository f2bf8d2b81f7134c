/*
 * adapter_model.c — GPT-2 forward with the LoRA paper's adapter baselines (adapter_model.h):
 * adapter weights (random, host copies kept), buffers, and the forward pass on the op dispatchers.
 * The block follows host/model/model_forward.c (same ops in the same order), so with identity
 * adapters the logits are culora_model_forward's.
 */
#include "adapter_model.h"

#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct adapter_layer_dev {
    void *down[2], *down_b[2], *up[2], *up_b[2]; /* [r, ldC], [r], [C, ldr], [C] (S) */
    void *ln_w, *ln_b;                           /* [C] (S) */
    void *wqkv;                                  /* LORA: [[Wqkv, B], [A, 0]] [(3C + 2r), ldw] (S) */
};

struct adapter_buffers {
    struct culora_model *m;
    culora_context *ctx;
    culora_dtype S;
    size_t es;
    int64_t C, I, V, H, D, ldC, ldI, ldV, ld3, ldA; /* ldA: LN output with room for the widest LoRA */
    int32_t max_bottleneck, max_lora_r;
    int64_t max_batch, max_seq, max_n, batch, seq, n;
    int32_t *tokens, *pos;
    void *x, *res, *ln, *qkv, *att, *t, *h, *bott, *logits;
    float *lse; /* [n, H] fp32: attention's log-sum-exp (the op writes it; unused here) */
    void *ws;
    size_t ws_bytes;
};

struct adapter_model {
    struct culora_model *m;
    adapter_buffers *b;
    culora_context *ctx;
    struct adapter_params p;
    culora_dtype S;
    size_t es;
    int64_t C, L;
    int64_t ldC, ldA, ldr, ldw; /* ldA = ldw: the fused LoRA's [x | v] and [W0 | B] rows */
    int32_t rl;                 /* LORA: the fused op's rank 2r */
    struct adapter_layer_dev *dev;
    struct adapter_host_layer *host;
    int64_t n_params;
};

const char *adapter_kind_name(int kind)
{
    switch (kind) {
    case ADAPTER_NONE: return "none";
    case ADAPTER_LORA: return "lora";
    case ADAPTER_L: return "adapter_l";
    case ADAPTER_H: return "adapter_h";
    default: return "?";
    }
}

/* ---- weights ------------------------------------------------------------------------------------ */

static float *host_normal(uint64_t seed, uint64_t stream, int64_t n, double mean, double std)
{
    float *v = malloc((size_t)n * sizeof *v);
    if (v != NULL)
        for (int64_t i = 0; i < n; i++)
            v[i] = (float)(mean + std * model_rand_normal(seed, stream, (uint64_t)i));
    return v;
}

/* Uploads dense host [rows, cols] into a new backend buffer [rows, ld] (S, padding zero). */
static culora_status upload_new(adapter_model *am, const float *src, int64_t rows, int64_t cols, int64_t ld,
                                void **out)
{
    *out = NULL;
    const size_t n = (size_t)(rows * ld);
    float *pad = calloc(n, sizeof *pad);
    void *img = am->S == CULORA_DTYPE_F32 ? (void *)pad : malloc(n * 2);
    culora_status s = CULORA_OK;
    if (pad == NULL || img == NULL) {
        s = culora_fail(am->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter model: out of host memory");
        goto done;
    }
    for (int64_t i = 0; i < rows; i++)
        memcpy(pad + i * ld, src + i * cols, (size_t)cols * sizeof *pad);
    if (am->S != CULORA_DTYPE_F32)
        culora_f32_to_bf16(pad, img, n);
    s = culora_malloc(am->ctx, n * am->es, out);
    if (s == CULORA_OK)
        s = culora_memcpy(am->ctx, *out, img, n * am->es, CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(am->ctx, NULL); /* the host image is freed next */
done:
    if (img != pad)
        free(img);
    free(pad);
    return s;
}

/* One bottleneck adapter (slot i) of layer l: host weights and their device copies. */
static culora_status make_bottleneck(adapter_model *am, int64_t l, int i)
{
    struct adapter_host_layer *hl = &am->host[l];
    struct adapter_layer_dev *dl = &am->dev[l];
    const int64_t C = am->C, r = am->p.r;
    const uint64_t st = (uint64_t)(l * 16 + i * 4), seed = am->p.seed;
    hl->down[i] = host_normal(seed, st + 0, r * C, 0.0, 1.0 / sqrt((double)C));
    hl->down_b[i] = host_normal(seed, st + 1, r, 0.0, 0.02);
    hl->up[i] = host_normal(seed, st + 2, C * r, 0.0, am->p.zero_up ? 0.0 : 1.0 / sqrt((double)r));
    hl->up_b[i] = host_normal(seed, st + 3, C, 0.0, am->p.zero_up ? 0.0 : 0.02);
    if (!hl->down[i] || !hl->down_b[i] || !hl->up[i] || !hl->up_b[i])
        return culora_fail(am->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter model: out of host memory");
    CULORA_TRY(upload_new(am, hl->down[i], r, C, am->ldC, &dl->down[i]));
    CULORA_TRY(upload_new(am, hl->down_b[i], 1, r, am->ldr, &dl->down_b[i]));
    CULORA_TRY(upload_new(am, hl->up[i], C, r, am->ldr, &dl->up[i]));
    return upload_new(am, hl->up_b[i], 1, C, am->ldC, &dl->up_b[i]);
}

/* LoRA on q and v of layer l as one rank-2r op on c_attn (adapter_model.h): the augmented
 * [[Wqkv, B], [A, 0]] buffer, built from the base's c_attn weight. */
static culora_status make_lora(adapter_model *am, int64_t l)
{
    struct adapter_host_layer *hl = &am->host[l];
    const int64_t C = am->C, r = am->p.r, rl = am->rl, d3 = 3 * C, ldw = am->ldw;
    const uint64_t st = (uint64_t)(l * 16 + 8), seed = am->p.seed;
    hl->lora_a = host_normal(seed, st, rl * C, 0.0, 1.0 / sqrt((double)C));
    hl->lora_b = calloc((size_t)(d3 * rl), sizeof(float));
    float *bq = host_normal(seed, st + 1, C * r, 0.0, am->p.zero_up ? 0.0 : 1.0 / sqrt((double)r));
    float *bv = host_normal(seed, st + 2, C * r, 0.0, am->p.zero_up ? 0.0 : 1.0 / sqrt((double)r));
    float *w = malloc((size_t)(d3 * C) * sizeof *w);
    float *aug = calloc((size_t)((d3 + rl) * ldw), sizeof *aug);
    culora_status s = CULORA_OK;
    if (!hl->lora_a || !hl->lora_b || !bq || !bv || !w || !aug) {
        s = culora_fail(am->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter model: out of host memory");
        goto done;
    }
    for (int64_t i = 0; i < C; i++)
        for (int64_t j = 0; j < r; j++) {
            hl->lora_b[i * rl + j] = bq[i * r + j];                /* q rows, columns 0..r-1 */
            hl->lora_b[(2 * C + i) * rl + r + j] = bv[i * r + j];  /* v rows, columns r..2r-1 */
        }
    s = model_tensor_download(am->m, &am->m->layers[l].qkv.W, w);
    if (s != CULORA_OK)
        goto done;
    for (int64_t i = 0; i < d3; i++) {
        memcpy(aug + i * ldw, w + i * C, (size_t)C * sizeof *aug);
        memcpy(aug + i * ldw + C, hl->lora_b + i * rl, (size_t)rl * sizeof *aug);
    }
    for (int64_t j = 0; j < rl; j++)
        memcpy(aug + (d3 + j) * ldw, hl->lora_a + j * C, (size_t)C * sizeof *aug);
    s = upload_new(am, aug, d3 + rl, ldw, ldw, &am->dev[l].wqkv);
done:
    free(bq);
    free(bv);
    free(w);
    free(aug);
    return s;
}

static culora_status make_weights(adapter_model *am)
{
    const int64_t C = am->C, r = am->p.r, L = am->L;
    for (int64_t l = 0; l < L; l++) {
        switch (am->p.kind) {
        case ADAPTER_LORA:
            CULORA_TRY(make_lora(am, l));
            break;
        case ADAPTER_H:
            CULORA_TRY(make_bottleneck(am, l, 0));
            CULORA_TRY(make_bottleneck(am, l, 1));
            break;
        case ADAPTER_L: {
            struct adapter_host_layer *hl = &am->host[l];
            const uint64_t st = (uint64_t)(l * 16 + 12);
            CULORA_TRY(make_bottleneck(am, l, 0));
            hl->ln_w = host_normal(am->p.seed, st, C, 1.0, 0.1);
            hl->ln_b = host_normal(am->p.seed, st + 1, C, 0.0, 0.1);
            if (!hl->ln_w || !hl->ln_b)
                return culora_fail(am->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter model: out of host memory");
            CULORA_TRY(upload_new(am, hl->ln_w, 1, C, am->ldC, &am->dev[l].ln_w));
            CULORA_TRY(upload_new(am, hl->ln_b, 1, C, am->ldC, &am->dev[l].ln_b));
            break;
        }
        default:
            break;
        }
    }
    const int64_t bottleneck = 2 * C * r + r + C;
    switch (am->p.kind) {
    case ADAPTER_LORA: am->n_params = L * 2 * (r * C + C * r); break; /* A and B of q and of v */
    case ADAPTER_L: am->n_params = L * (bottleneck + 2 * C); break;
    case ADAPTER_H: am->n_params = 2 * L * bottleneck; break;
    default: am->n_params = 0; break;
    }
    return CULORA_OK;
}

/* ---- buffers ------------------------------------------------------------------------------------- */

static culora_status dalloc(culora_context *ctx, size_t bytes, void **out)
{
    CULORA_TRY(culora_malloc(ctx, bytes, out));
    return culora_memset(ctx, *out, 0, bytes, NULL);
}

/* The fused LoRA op on c_attn: rank 2r (q's r and v's r), s = 2α / 2r = α / r, the paper's scaling. */
static culora_lora_linear_desc lora_desc(culora_context *ctx, culora_dtype S, int64_t C, int32_t r, float alpha,
                                         int64_t n)
{
    culora_lora_linear_desc d = CULORA_LORA_LINEAR_DESC_INIT;
    d.m = n;
    d.k = C;
    d.d = 3 * C;
    d.r = 2 * r;
    d.alpha = 2.0f * alpha;
    d.dtype = S;
    if (culora_context_backend(ctx) == CULORA_BACKEND_CUDA)
        d.flags |= CULORA_LORA_REQUIRE_FUSED; /* the point of the row: the rank term inside the GEMM */
    return d;
}

static culora_status plan_workspace(adapter_buffers *b)
{
    struct culora_nn_ws w;
    const struct culora_nn_attention_args aa = {.batch = b->max_batch, .seq = b->max_seq,
                                                .n_heads = (int32_t)b->H, .n_kv_heads = (int32_t)b->H,
                                                .head_dim = (int32_t)b->D, .scale = 1.0f};
    CULORA_TRY(culora_nn_attention_fwd_workspace(b->ctx, &aa, &w));
    size_t need = w.full_bytes;
    if (b->max_lora_r > 0) {
        const culora_lora_linear_desc d = lora_desc(b->ctx, b->S, b->C, b->max_lora_r, 1.0f, b->max_n);
        size_t f = 0;
        CULORA_TRY(culora_lora_linear_workspace_size(b->ctx, &d, &f, NULL));
        need = f > need ? f : need;
    }
    if (b->S != CULORA_DTYPE_F32)
        need += (size_t)32 << 20; /* what cuBLASLt may use beside an op's own scratch (as the model) */
    b->ws_bytes = (need + 255) / 256 * 256;
    if (b->ws_bytes == 0)
        b->ws_bytes = 256;
    return culora_malloc(b->ctx, b->ws_bytes, &b->ws);
}

culora_status adapter_buffers_create(culora_model *base, int64_t max_batch, int64_t max_seq, int32_t max_bottleneck,
                                     int32_t max_lora_r, adapter_buffers **out)
{
    *out = NULL;
    if (base == NULL)
        return CULORA_ERR_INVALID_ARG;
    struct culora_model *m = base;
    if (!m->gpt2)
        return culora_fail(m->ctx, CULORA_ERR_UNSUPPORTED, "adapter model: the base must be a GPT-2 model");
    if (max_batch < 1 || max_seq < 1 || max_seq > m->cfg.max_position_embeddings || max_bottleneck < 0 ||
        max_lora_r < 0)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG,
                           "adapter buffers: %lld × %lld tokens (positions: %lld), r %d / %d", (long long)max_batch,
                           (long long)max_seq, (long long)m->cfg.max_position_embeddings, (int)max_bottleneck,
                           (int)max_lora_r);
    adapter_buffers *b = calloc(1, sizeof *b);
    if (b == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter buffers: out of host memory");
    b->m = m;
    b->ctx = m->ctx;
    b->S = m->S;
    b->es = m->es;
    b->C = m->C;
    b->I = m->I;
    b->V = m->V;
    b->H = m->H;
    b->D = m->D;
    b->ldC = model_round_ld(m, m->C);
    b->ldI = model_round_ld(m, m->I);
    b->ldV = m->ldV;
    b->ld3 = model_round_ld(m, 3 * m->C);
    b->ldA = model_round_ld(m, m->C + 2 * max_lora_r);
    b->max_bottleneck = max_bottleneck;
    b->max_lora_r = max_lora_r;
    b->max_batch = max_batch;
    b->max_seq = max_seq;
    b->max_n = max_batch * max_seq;
    const size_t N = (size_t)b->max_n, es = b->es;
    const size_t ldr = (size_t)model_round_ld(m, max_bottleneck > 0 ? max_bottleneck : 1);
    struct {
        void **ptr;
        size_t bytes;
    } bufs[] = {{(void **)&b->tokens, N * 4},         {(void **)&b->pos, N * 4},
                {&b->x, N * (size_t)b->ldC * es},     {&b->res, N * (size_t)b->ldC * es},
                {&b->ln, N * (size_t)b->ldA * es},    {&b->qkv, N * (size_t)b->ld3 * es},
                {&b->att, N * (size_t)b->ldC * es},   {&b->t, N * (size_t)b->ldC * es},
                {&b->h, N * (size_t)b->ldI * es},     {&b->bott, N * ldr * es},
                {&b->logits, N * (size_t)b->ldV * es}, {(void **)&b->lse, N * (size_t)b->H * 4}};
    culora_status s = CULORA_OK;
    for (size_t i = 0; s == CULORA_OK && i < sizeof bufs / sizeof bufs[0]; i++)
        s = dalloc(b->ctx, bufs[i].bytes, bufs[i].ptr);
    if (s == CULORA_OK)
        s = plan_workspace(b);
    if (s != CULORA_OK) {
        adapter_buffers_destroy(b);
        return s;
    }
    *out = b;
    return CULORA_OK;
}

void adapter_buffers_destroy(adapter_buffers *b)
{
    if (b == NULL)
        return;
    void *bufs[] = {b->tokens, b->pos, b->x, b->res, b->ln, b->qkv, b->att, b->t, b->h, b->bott, b->logits, b->lse,
                    b->ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        culora_free(b->ctx, bufs[i]);
    free(b);
}

culora_status adapter_buffers_set_tokens(adapter_buffers *b, const int32_t *tokens, int64_t batch, int64_t seq)
{
    if (batch < 1 || seq < 1 || seq > b->max_seq || batch * seq > b->max_n)
        return culora_fail(b->ctx, CULORA_ERR_INVALID_ARG, "adapter buffers: %lld × %lld tokens do not fit %lld × %lld",
                           (long long)batch, (long long)seq, (long long)b->max_batch, (long long)b->max_seq);
    const int64_t n = batch * seq;
    int32_t *pos = malloc((size_t)n * sizeof *pos);
    if (pos == NULL)
        return culora_fail(b->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter buffers: out of host memory");
    culora_status s = CULORA_OK;
    for (int64_t i = 0; i < n; i++) {
        pos[i] = (int32_t)(i % seq);
        if (tokens[i] < 0 || tokens[i] >= b->V)
            s = culora_fail(b->ctx, CULORA_ERR_INVALID_ARG, "adapter buffers: token %d outside [0, %lld)",
                            (int)tokens[i], (long long)b->V);
    }
    if (s == CULORA_OK)
        s = culora_memcpy(b->ctx, b->tokens, tokens, (size_t)n * 4, CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK)
        s = culora_memcpy(b->ctx, b->pos, pos, (size_t)n * 4, CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(b->ctx, NULL); /* pos is freed next */
    free(pos);
    if (s == CULORA_OK) {
        b->batch = batch;
        b->seq = seq;
        b->n = n;
    }
    return s;
}

culora_status adapter_buffers_logits(adapter_buffers *b, float *out)
{
    const size_t n = (size_t)(b->n * b->ldV);
    void *raw = malloc(n * b->es);
    if (raw == NULL)
        return culora_fail(b->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter buffers: out of host memory");
    culora_status s = culora_memcpy(b->ctx, raw, b->logits, n * b->es, CULORA_COPY_DEVICE_TO_HOST, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(b->ctx, NULL);
    for (int64_t i = 0; s == CULORA_OK && i < b->n; i++) {
        const char *row = (const char *)raw + (size_t)(i * b->ldV) * b->es;
        if (b->S == CULORA_DTYPE_F32)
            memcpy(out + i * b->V, row, (size_t)b->V * 4);
        else
            culora_bf16_to_f32((const uint16_t *)row, out + i * b->V, (size_t)b->V);
    }
    free(raw);
    return s;
}

/* ---- adapter models ------------------------------------------------------------------------------ */

culora_status adapter_model_create(const struct adapter_params *p, adapter_buffers *buffers, adapter_model **out)
{
    *out = NULL;
    if (p == NULL || buffers == NULL)
        return CULORA_ERR_INVALID_ARG;
    adapter_buffers *b = buffers;
    if (p->kind < ADAPTER_NONE || p->kind > ADAPTER_H || (p->kind != ADAPTER_NONE && p->r < 1) ||
        (p->kind == ADAPTER_LORA && p->r > b->max_lora_r) ||
        ((p->kind == ADAPTER_L || p->kind == ADAPTER_H) && p->r > b->max_bottleneck))
        return culora_fail(b->ctx, CULORA_ERR_INVALID_ARG,
                           "adapter model: %s with r = %d (the buffers hold bottleneck <= %d, LoRA r <= %d)",
                           adapter_kind_name(p->kind), (int)p->r, (int)b->max_bottleneck, (int)b->max_lora_r);
    adapter_model *am = calloc(1, sizeof *am);
    if (am == NULL)
        return culora_fail(b->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter model: out of host memory");
    struct culora_model *m = b->m;
    am->m = m;
    am->b = b;
    am->ctx = b->ctx;
    am->p = *p;
    am->S = b->S;
    am->es = b->es;
    am->C = m->C;
    am->L = m->L;
    am->rl = p->kind == ADAPTER_LORA ? 2 * p->r : 0;
    am->ldC = b->ldC;
    am->ldA = model_round_ld(m, m->C + am->rl);
    am->ldw = am->ldA;
    am->ldr = model_round_ld(m, p->r > 0 ? p->r : 1);
    culora_status s = CULORA_OK;
    am->dev = calloc((size_t)am->L, sizeof *am->dev);
    am->host = calloc((size_t)am->L, sizeof *am->host);
    if (am->dev == NULL || am->host == NULL)
        s = culora_fail(am->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter model: out of host memory");
    if (s == CULORA_OK)
        s = make_weights(am);
    if (s != CULORA_OK) {
        adapter_model_destroy(am);
        return s;
    }
    *out = am;
    return CULORA_OK;
}

void adapter_model_destroy(adapter_model *am)
{
    if (am == NULL)
        return;
    for (int64_t l = 0; am->dev != NULL && l < am->L; l++) {
        struct adapter_layer_dev *d = &am->dev[l];
        void *all[] = {d->down[0], d->down[1], d->down_b[0], d->down_b[1], d->up[0], d->up[1], d->up_b[0],
                       d->up_b[1], d->ln_w, d->ln_b, d->wqkv};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            culora_free(am->ctx, all[i]);
    }
    for (int64_t l = 0; am->host != NULL && l < am->L; l++) {
        struct adapter_host_layer *h = &am->host[l];
        float *all[] = {h->down[0], h->down[1], h->down_b[0], h->down_b[1], h->up[0], h->up[1], h->up_b[0],
                        h->up_b[1], h->ln_w, h->ln_b, h->lora_a, h->lora_b};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            free(all[i]);
    }
    free(am->dev);
    free(am->host);
    free(am);
}

int64_t adapter_model_n_params(const adapter_model *am) { return am->n_params; }
const struct adapter_params *adapter_model_params(const adapter_model *am) { return &am->p; }
const struct adapter_host_layer *adapter_model_host_layer(const adapter_model *am, int64_t l) { return &am->host[l]; }
culora_context *adapter_model_context(const adapter_model *am) { return am->ctx; }
culora_model *adapter_model_base(const adapter_model *am) { return am->m; }

/* ---- forward -------------------------------------------------------------------------------------- */

/* c = a·bᵀ (+ bias) (+ c when accumulate) over the current n rows. */
static culora_status gemm(adapter_model *am, const void *a, int64_t lda, const void *w, int64_t ldw, const void *bias,
                          void *c, int64_t ldc, int64_t n_out, int64_t k, bool accumulate)
{
    const struct culora_gemm_args g = {.trans_a = false, .trans_b = true, .m = am->b->n, .n = n_out, .k = k,
                                       .alpha = 1.0f, .beta = accumulate ? 1.0f : 0.0f, .a = a, .lda = lda,
                                       .a_dtype = am->S, .b = w, .ldb = ldw, .b_dtype = am->S, .c = c, .ldc = ldc,
                                       .c_dtype = am->S, .bias = bias};
    return culora_op_gemm(am->ctx, &g, am->b->ws, am->b->ws_bytes, NULL);
}

static culora_status layernorm(adapter_model *am, const void *gamma, const void *beta, const void *x, void *out,
                               int64_t ldout)
{
    const struct culora_nn_layernorm_args a = {.n = am->b->n, .c = am->C, .eps = (float)am->m->cfg.norm_eps,
                                               .x = x, .ldx = am->ldC, .gamma = gamma, .beta = beta, .out = out,
                                               .ldout = ldout};
    return culora_nn_layernorm_fwd(am->ctx, &a, NULL);
}

static culora_status gelu(adapter_model *am, void *x, int64_t c, int64_t ld)
{
    const struct culora_nn_gelu_args g = {.n = am->b->n, .c = c, .x = x, .ldx = ld, .y = x, .ldy = ld};
    return culora_nn_gelu_fwd(am->ctx, &g, NULL);
}

static culora_status add(adapter_model *am, const void *a, const void *b, void *out)
{
    const struct culora_nn_add_args g = {.n = am->b->n, .c = am->C, .a = a, .lda = am->ldC, .b = b,
                                         .ldb = am->ldC, .out = out, .ldout = am->ldC};
    return culora_nn_add(am->ctx, &g, NULL);
}

/* io += Up(gelu(Down(in)))  (adapter slot i of layer d; the up GEMM accumulates into io). */
static culora_status bottleneck(adapter_model *am, const struct adapter_layer_dev *d, int i, const void *in,
                                int64_t ldin, void *io)
{
    const int64_t r = am->p.r;
    void *bott = am->b->bott;
    CULORA_TRY(gemm(am, in, ldin, d->down[i], am->ldC, d->down_b[i], bott, am->ldr, r, am->C, false));
    CULORA_TRY(gelu(am, bott, r, am->ldr));
    return gemm(am, bott, am->ldr, d->up[i], am->ldr, d->up_b[i], io, am->ldC, am->C, r, true);
}

static culora_status block(adapter_model *am, int64_t l)
{
    struct mlayer *ly = &am->m->layers[l];
    const struct adapter_layer_dev *d = &am->dev[l];
    adapter_buffers *b = am->b;
    const int kind = am->p.kind;
    const int64_t C = am->C;
    const size_t es = am->es;
    /* attention: ln = LN1(x); qkv = c_attn(ln) (LoRA: fused rank term); att; t = c_proj(att) */
    const int64_t ldln = kind == ADAPTER_LORA ? am->ldA : am->ldC;
    CULORA_TRY(layernorm(am, ly->ln1.w.s, ly->ln1.b.s, b->x, b->ln, ldln));
    if (kind == ADAPTER_LORA) {
        const culora_lora_linear_desc desc = lora_desc(am->ctx, am->S, C, am->p.r, am->p.lora_alpha, b->n);
        const char *w = d->wqkv;
        char *ln = b->ln;
        const culora_lora_linear_fwd_args a = {ln, am->ldA, w, am->ldw, ly->qkv.bias.s,
                                               w + (size_t)(3 * C * am->ldw) * es, am->ldw, w + (size_t)C * es,
                                               am->ldw, ln + (size_t)C * es, am->ldA, b->qkv, b->ld3};
        CULORA_TRY(culora_lora_linear_forward(am->ctx, &desc, &a, b->ws, b->ws_bytes, NULL));
    } else {
        CULORA_TRY(gemm(am, b->ln, am->ldC, ly->qkv.W.s, ly->qkv.W.ld, ly->qkv.bias.s, b->qkv, b->ld3, 3 * C, C,
                        false));
    }
    const char *q = b->qkv;
    const struct culora_nn_attention_args at = {
        .batch = b->batch, .seq = b->seq, .n_heads = (int32_t)b->H, .n_kv_heads = (int32_t)b->H,
        .head_dim = (int32_t)b->D, .scale = (float)(1.0 / sqrt((double)b->D)), .q = q, .ldq = b->ld3,
        .k = q + (size_t)C * es, .ldk = b->ld3, .v = q + (size_t)(2 * C) * es, .ldv = b->ld3, .y = b->att,
        .ldy = am->ldC, .lse = b->lse};
    CULORA_TRY(culora_nn_attention_fwd(am->ctx, &at, b->ws, b->ws_bytes, NULL));
    CULORA_TRY(gemm(am, b->att, am->ldC, ly->proj_attn.W.s, ly->proj_attn.W.ld, ly->proj_attn.bias.s, b->t, am->ldC,
                    C, C, false));
    if (kind == ADAPTER_H)
        CULORA_TRY(bottleneck(am, d, 0, b->t, am->ldC, b->t));
    CULORA_TRY(add(am, b->x, b->t, b->res));
    /* MLP: ln = LN2(res); h = gelu(c_fc(ln)); t = c_proj(h); x = res + t */
    CULORA_TRY(layernorm(am, ly->ln2.w.s, ly->ln2.b.s, b->res, b->ln, am->ldC));
    CULORA_TRY(gemm(am, b->ln, am->ldC, ly->fc.W.s, ly->fc.W.ld, ly->fc.bias.s, b->h, b->ldI, b->I, C, false));
    CULORA_TRY(gelu(am, b->h, b->I, b->ldI));
    CULORA_TRY(gemm(am, b->h, b->ldI, ly->proj_mlp.W.s, ly->proj_mlp.W.ld, ly->proj_mlp.bias.s, b->t, am->ldC, C,
                    b->I, false));
    if (kind == ADAPTER_H)
        CULORA_TRY(bottleneck(am, d, 1, b->t, am->ldC, b->t));
    CULORA_TRY(add(am, b->res, b->t, b->x));
    if (kind == ADAPTER_L) {
        CULORA_TRY(layernorm(am, d->ln_w, d->ln_b, b->x, b->ln, am->ldC));
        CULORA_TRY(bottleneck(am, d, 0, b->ln, am->ldC, b->x));
    }
    return CULORA_OK;
}

culora_status adapter_model_forward(adapter_model *am)
{
    adapter_buffers *b = am->b;
    if (b->n == 0)
        return culora_fail(am->ctx, CULORA_ERR_MISUSE, "adapter model: no tokens set");
    struct culora_model *m = am->m;
    const struct culora_nn_embedding_args e = {.n = b->n, .c = am->C, .vocab = b->V,
                                               .n_pos = m->cfg.max_position_embeddings, .tokens = b->tokens,
                                               .pos = b->pos, .wte = m->wte.s, .ldwte = m->wte.ld,
                                               .wpe = m->wpe.s, .ldwpe = m->wpe.ld, .out = b->x, .ldout = am->ldC};
    CULORA_TRY(culora_nn_embedding_fwd(am->ctx, &e, NULL));
    for (int64_t l = 0; l < am->L; l++)
        CULORA_TRY(block(am, l));
    CULORA_TRY(layernorm(am, m->lnf.w.s, m->lnf.b.s, b->x, b->ln, am->ldC));
    return gemm(am, b->ln, am->ldC, m->lm_head.W.s, m->lm_head.W.ld, NULL, b->logits, b->ldV, b->V, am->C, false);
}
