/*
 * adapter_ref.c — fp64 host reference of adapter_model's forward (plain loops, written from the
 * math in adapter_model.h, not from its op calls): GPT-2 block with LoRA on q and v, AdapterH or
 * AdapterL, on the base model's weights (read back as fp32) and the adapter's host copies.
 * For small configurations: every product is a triple loop.
 */
#include "adapter_model.h"

#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* y[n, out] (+)= x[n, in]·Wᵀ + b    W [out, in] fp32, b [out] or NULL */
static void linear(const double *x, int64_t n, int64_t in, const float *w, const float *b, int64_t out, double *y,
                   bool accumulate)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b != NULL ? (double)b[o] : 0.0;
            for (int64_t j = 0; j < in; j++)
                acc += x[i * in + j] * (double)w[o * in + j];
            y[i * out + o] = accumulate ? y[i * out + o] + acc : acc;
        }
}

static void layernorm(const double *x, int64_t n, int64_t c, const float *g, const float *b, double eps, double *y)
{
    for (int64_t i = 0; i < n; i++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < c; j++)
            mean += x[i * c + j];
        mean /= (double)c;
        for (int64_t j = 0; j < c; j++)
            var += (x[i * c + j] - mean) * (x[i * c + j] - mean);
        const double rstd = 1.0 / sqrt(var / (double)c + eps);
        for (int64_t j = 0; j < c; j++)
            y[i * c + j] = (x[i * c + j] - mean) * rstd * (double)g[j] + (double)b[j];
    }
}

static void gelu(double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.5 * x[i] * (1.0 + tanh(0.7978845608028654 * (x[i] + 0.044715 * x[i] * x[i] * x[i])));
}

/* io[n, C] += Up(gelu(Down(in))) */
static void bottleneck(const struct adapter_host_layer *h, int i, const double *in, int64_t n, int64_t C, int64_t r,
                       double *tmp, double *io)
{
    linear(in, n, C, h->down[i], h->down_b[i], r, tmp, false);
    gelu(tmp, n * r);
    linear(tmp, n, r, h->up[i], h->up_b[i], C, io, true);
}

/* Causal multi-head attention: qkv [B·T, 3C] → y [B·T, C]. */
static void attention(const double *qkv, int64_t B, int64_t T, int64_t H, int64_t D, double *y)
{
    const int64_t C = H * D;
    double *p = malloc((size_t)T * sizeof *p);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                const double *q = qkv + (b * T + t) * 3 * C + h * D;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j <= t; j++) {
                    const double *k = qkv + (b * T + j) * 3 * C + C + h * D;
                    double s = 0;
                    for (int64_t d = 0; d < D; d++)
                        s += q[d] * k[d];
                    p[j] = s / sqrt((double)D);
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int64_t j = 0; j <= t; j++)
                    sum += (p[j] = exp(p[j] - mx));
                double *out = y + (b * T + t) * C + h * D;
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j <= t; j++)
                        acc += p[j] * qkv[(b * T + j) * 3 * C + 2 * C + h * D + d];
                    out[d] = acc / sum;
                }
            }
    free(p);
}

/* fp32 host copy of a model tensor (dense [rows, cols]); NULL on failure. */
static float *fetch(struct culora_model *m, const struct mtensor *t)
{
    float *v = malloc((size_t)(t->rows * t->cols) * sizeof *v);
    if (v != NULL && model_tensor_download(m, t, v) != CULORA_OK) {
        free(v);
        v = NULL;
    }
    return v;
}

culora_status adapter_reference_forward(adapter_model *am, const int32_t *tokens, int64_t B, int64_t T,
                                        double *logits)
{
    struct culora_model *m = adapter_model_base(am);
    const struct adapter_params *p = adapter_model_params(am);
    const int64_t C = m->C, I = m->I, V = m->V, H = m->H, D = m->D, n = B * T, r = p->r;
    const double eps = m->cfg.norm_eps;
    double *x = calloc((size_t)(n * C), sizeof *x), *res = calloc((size_t)(n * C), sizeof *res);
    double *ln = calloc((size_t)(n * C), sizeof *ln), *qkv = calloc((size_t)(n * 3 * C), sizeof *qkv);
    double *att = calloc((size_t)(n * C), sizeof *att), *t = calloc((size_t)(n * C), sizeof *t);
    double *h = calloc((size_t)(n * I), sizeof *h), *tmp = calloc((size_t)(n * (2 * r + 1)), sizeof *tmp);
    float *wte = fetch(m, &m->wte), *wpe = fetch(m, &m->wpe);
    culora_status s = CULORA_OK;
    if (!m->cfg.tie_word_embeddings) {
        s = culora_fail(m->ctx, CULORA_ERR_UNSUPPORTED, "adapter reference: GPT-2 with an untied head");
        goto done;
    }
    if (!x || !res || !ln || !qkv || !att || !t || !h || !tmp || !wte || !wpe) {
        s = culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter reference: out of host memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < C; j++)
            x[i * C + j] = (double)wte[tokens[i] * C + j] + (double)wpe[(i % T) * C + j];
    for (int64_t l = 0; l < m->L && s == CULORA_OK; l++) {
        const struct mlayer *ly = &m->layers[l];
        const struct adapter_host_layer *hl = adapter_model_host_layer(am, l);
        float *w[12] = {fetch(m, &ly->ln1.w), fetch(m, &ly->ln1.b),           fetch(m, &ly->qkv.W),
                        fetch(m, &ly->qkv.bias), fetch(m, &ly->proj_attn.W),   fetch(m, &ly->proj_attn.bias),
                        fetch(m, &ly->ln2.w),  fetch(m, &ly->ln2.b),           fetch(m, &ly->fc.W),
                        fetch(m, &ly->fc.bias), fetch(m, &ly->proj_mlp.W),     fetch(m, &ly->proj_mlp.bias)};
        for (int k = 0; k < 12; k++)
            if (w[k] == NULL)
                s = culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter reference: cannot read layer %lld",
                                (long long)l);
        if (s == CULORA_OK) {
            layernorm(x, n, C, w[0], w[1], eps, ln);
            linear(ln, n, C, w[2], w[3], 3 * C, qkv, false);
            if (p->kind == ADAPTER_LORA) { /* qkv += s·(ln·Aᵀ)·Bᵀ, A [2r, C], B [3C, 2r] */
                const double sc = (double)p->lora_alpha / (double)r;
                linear(ln, n, C, hl->lora_a, NULL, 2 * r, tmp, false);
                for (int64_t k = 0; k < n * 2 * r; k++)
                    tmp[k] *= sc;
                linear(tmp, n, 2 * r, hl->lora_b, NULL, 3 * C, qkv, true);
            }
            attention(qkv, B, T, H, D, att);
            linear(att, n, C, w[4], w[5], C, t, false);
            if (p->kind == ADAPTER_H)
                bottleneck(hl, 0, t, n, C, r, tmp, t);
            for (int64_t k = 0; k < n * C; k++)
                res[k] = x[k] + t[k];
            layernorm(res, n, C, w[6], w[7], eps, ln);
            linear(ln, n, C, w[8], w[9], I, h, false);
            gelu(h, n * I);
            linear(h, n, I, w[10], w[11], C, t, false);
            if (p->kind == ADAPTER_H)
                bottleneck(hl, 1, t, n, C, r, tmp, t);
            for (int64_t k = 0; k < n * C; k++)
                x[k] = res[k] + t[k];
            if (p->kind == ADAPTER_L) {
                layernorm(x, n, C, hl->ln_w, hl->ln_b, eps, ln);
                bottleneck(hl, 0, ln, n, C, r, tmp, x);
            }
        }
        for (int k = 0; k < 12; k++)
            free(w[k]);
    }
    if (s == CULORA_OK) {
        float *g = fetch(m, &m->lnf.w), *b = fetch(m, &m->lnf.b);
        if (g == NULL || b == NULL) {
            s = culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "adapter reference: cannot read ln_f");
        } else {
            layernorm(x, n, C, g, b, eps, ln);
            linear(ln, n, C, wte, NULL, V, logits, false); /* tied head */
        }
        free(g);
        free(b);
    }
done:
    free(x); free(res); free(ln); free(qkv); free(att); free(t); free(h); free(tmp);
    free(wte); free(wpe);
    return s;
}
