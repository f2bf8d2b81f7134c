/*
 * model_generate.c — autoregressive generation: greedy or sampled (temperature, top-k, top-p)
 * from the logits of the last position. No KV cache yet: every token re-runs the forward over the
 * last max_seq tokens (cost grows with the square of the length; fine for short samples).
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cand {
    int32_t id;
    double p;
};

static int by_prob_desc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Picks the next id from logits[V]; cand is scratch [V]. */
static int32_t pick(const float *logits, int64_t V, const culora_generate_params *p, uint64_t draw, struct cand *cand)
{
    if (p->temperature <= 0.0f) {
        int32_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (logits[i] > logits[best])
                best = (int32_t)i;
        return best;
    }
    double mx = -INFINITY;
    for (int64_t i = 0; i < V; i++)
        if (logits[i] > mx)
            mx = logits[i];
    double z = 0.0;
    for (int64_t i = 0; i < V; i++) {
        cand[i].id = (int32_t)i;
        cand[i].p = exp(((double)logits[i] - mx) / (double)p->temperature);
        z += cand[i].p;
    }
    qsort(cand, (size_t)V, sizeof *cand, by_prob_desc);
    int64_t keep = V;
    if (p->top_k > 0 && p->top_k < keep)
        keep = p->top_k;
    if (p->top_p < 1.0f) {
        double acc = 0.0;
        for (int64_t i = 0; i < keep; i++) {
            acc += cand[i].p / z;
            if (acc >= (double)p->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double kz = 0.0;
    for (int64_t i = 0; i < keep; i++)
        kz += cand[i].p;
    const double u = model_rand_uniform(p->seed, 0x67656e00ull /* "gen" */, draw) * kz;
    double acc = 0.0;
    for (int64_t i = 0; i < keep; i++) {
        acc += cand[i].p;
        if (u < acc)
            return cand[i].id;
    }
    return cand[keep - 1].id;
}

culora_status culora_model_generate(culora_model *m, const int32_t *prompt, int64_t n_prompt,
                                    const culora_generate_params *p, int32_t *out, int64_t *n_out)
{
    if (m == NULL)
        return CULORA_ERR_INVALID_ARG;
    if (p == NULL || out == NULL || n_out == NULL || prompt == NULL)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG, "culora_model_generate: NULL argument");
    if (p->struct_size != sizeof(culora_generate_params) || p->api_version != CULORA_API_VERSION)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG,
                           "culora_model_generate: params not initialised with CULORA_GENERATE_PARAMS_INIT");
    if (n_prompt < 1 || p->max_new_tokens < 0 || !(p->temperature >= 0.0f) || !(p->top_p > 0.0f && p->top_p <= 1.0f) ||
        p->top_k < 0)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG,
                           "culora_model_generate: need a prompt of >= 1 token, max_new_tokens >= 0, temperature >= 0, "
                           "top_p in (0, 1], top_k >= 0");
    memcpy(out, prompt, (size_t)n_prompt * sizeof *out);
    int64_t n = n_prompt;
    float *logits = malloc((size_t)m->V * sizeof *logits);
    struct cand *cand = malloc((size_t)m->V * sizeof *cand);
    if (logits == NULL || cand == NULL) {
        free(logits);
        free(cand);
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_model_generate: out of host memory");
    }
    const bool was_training = m->training;
    m->training = false;
    culora_status s = CULORA_OK;
    for (int32_t t = 0; t < p->max_new_tokens && s == CULORA_OK; t++) {
        const int64_t len = n < m->max_seq ? n : m->max_seq; /* a window of the last max_seq tokens */
        s = culora_model_forward(m, out + (n - len), NULL, 1, len, NULL);
        if (s == CULORA_OK)
            s = culora_model_logits(m, len - 1, 1, logits);
        if (s != CULORA_OK)
            break;
        const int32_t id = pick(logits, m->V, p, (uint64_t)t, cand);
        out[n++] = id;
        if (id == p->eos_id)
            break;
    }
    m->training = was_training;
    free(logits);
    free(cand);
    *n_out = n;
    return s;
}
