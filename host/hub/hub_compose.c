/*
 * hub_compose.c — LoraHub composition on the host: which adapters can be composed, and the
 * composed adapter for given weights (culora_hub.h).
 *
 *   SEPARATE (LoraHub):  Â = Σ wᵢAᵢ,  B̂ = Σ wᵢBᵢ                      rank r
 *   CONCAT (exact):      A' = [A₁; …; A_N],  B' = [w₁B₁ | … | w_N B_N]   rank N·r, B'A' = Σ wᵢBᵢAᵢ
 * Sums in fp64, stored fp32. The CONCAT config multiplies every rank by N and every alpha by N
 * (by √N with rsLoRA), so each module keeps its scaling s.
 */
#include "hub_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *label(const char *const *names, int32_t i, char *buf, size_t n)
{
    if (names != NULL && names[i] != NULL)
        return names[i];
    snprintf(buf, n, "adapter %d", (int)i);
    return buf;
}

culora_status culora_hub_check_adapters(culora_context *ctx, const culora_adapter *const *adapters, int32_t n,
                                        const char *const *names)
{
    if (adapters == NULL || n < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: no adapters to compose");
    char b0[32], bi[32];
    for (int32_t i = 0; i < n; i++) {
        const culora_adapter *ad = adapters[i];
        const char *ni = label(names, i, bi, sizeof bi);
        if (ad == NULL)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: %s is NULL", ni);
        const culora_lora_config *c = culora_adapter_config(ad);
        if (culora_adapter_n_tensors(ad) > 0 || c->n_modules_to_save > 0)
            return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                               "hub: %s saves full modules (modules_to_save); only LoRA weights can be composed", ni);
        if (culora_adapter_n_modules(ad) == 0)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: %s has no LoRA modules", ni);
        for (size_t j = 0; j < culora_adapter_n_modules(ad); j++)
            if (culora_adapter_module(ad, j)->embedding)
                return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                                   "hub: %s adapts the embedding %s; composition supports linear modules only", ni,
                                   culora_adapter_module(ad, j)->name);
    }
    const culora_adapter *a0 = adapters[0];
    const char *n0 = label(names, 0, b0, sizeof b0);
    const bool rs0 = culora_adapter_config(a0)->use_rslora;
    for (int32_t i = 1; i < n; i++) {
        const culora_adapter *ad = adapters[i];
        const char *ni = label(names, i, bi, sizeof bi);
        if (culora_adapter_config(ad)->use_rslora != rs0)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: %s has use_rslora %s, %s has %s", ni,
                               rs0 ? "false" : "true", n0, rs0 ? "true" : "false");
        for (size_t j = 0; j < culora_adapter_n_modules(a0); j++) {
            const culora_lora_module *m0 = culora_adapter_module(a0, j);
            const culora_lora_module *mi = culora_adapter_find_module(ad, m0->name);
            if (mi == NULL)
                return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                                   "hub: the adapters target different modules: %s lacks %s, which %s adapts", ni,
                                   m0->name, n0);
            if (mi->r != m0->r)
                return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: %s has rank %d on %s, %s has %d", ni,
                                   (int)mi->r, m0->name, n0, (int)m0->r);
            if (mi->alpha != m0->alpha)
                return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: %s has lora_alpha %g on %s, %s has %g", ni,
                                   mi->alpha, m0->name, n0, m0->alpha);
            if (mi->in_features != m0->in_features || mi->out_features != m0->out_features)
                return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                                   "hub: %s has %s of shape %lld -> %lld, %s has %lld -> %lld (another base model?)",
                                   ni, m0->name, (long long)mi->in_features, (long long)mi->out_features, n0,
                                   (long long)m0->in_features, (long long)m0->out_features);
        }
        for (size_t j = 0; j < culora_adapter_n_modules(ad); j++) {
            const culora_lora_module *mi = culora_adapter_module(ad, j);
            if (culora_adapter_find_module(a0, mi->name) == NULL)
                return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                                   "hub: the adapters target different modules: %s adapts %s, which %s lacks", ni,
                                   mi->name, n0);
        }
    }
    return CULORA_OK;
}

/* ---- the CONCAT config ----------------------------------------------------------------------- */

void hub_config_free(struct hub_config *c)
{
    free(c->rank_pattern);
    free(c->alpha_pattern);
    memset(c, 0, sizeof *c);
}

culora_status hub_config_make(culora_context *ctx, const culora_lora_config *src, int32_t n, int32_t mode,
                              struct hub_config *out)
{
    memset(out, 0, sizeof *out);
    out->cfg = *src;
    if (mode == CULORA_HUB_SEPARATE)
        return CULORA_OK;
    const double alpha_mult = src->use_rslora ? sqrt((double)n) : (double)n;
    out->cfg.r = src->r * n;
    out->cfg.lora_alpha = src->lora_alpha * alpha_mult;
    if (src->n_rank_pattern > 0) {
        out->rank_pattern = malloc(src->n_rank_pattern * sizeof *out->rank_pattern);
        if (out->rank_pattern == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of memory");
        for (size_t i = 0; i < src->n_rank_pattern; i++)
            out->rank_pattern[i] = (culora_lora_pattern){src->rank_pattern[i].key, src->rank_pattern[i].value * n};
        out->cfg.rank_pattern = out->rank_pattern;
    }
    if (src->n_alpha_pattern > 0) {
        out->alpha_pattern = malloc(src->n_alpha_pattern * sizeof *out->alpha_pattern);
        if (out->alpha_pattern == NULL) {
            hub_config_free(out);
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of memory");
        }
        for (size_t i = 0; i < src->n_alpha_pattern; i++)
            out->alpha_pattern[i] =
                (culora_lora_pattern){src->alpha_pattern[i].key, src->alpha_pattern[i].value * alpha_mult};
        out->cfg.alpha_pattern = out->alpha_pattern;
    }
    return CULORA_OK;
}

/* ---- host composition ---------------------------------------------------------------------- */

static culora_status compose_module(culora_context *ctx, const culora_adapter *const *adapters, int32_t n,
                                    const double *w, int32_t mode, const culora_lora_module *m0,
                                    culora_lora_module *out)
{
    const int64_t r = m0->r, in = m0->in_features, d = m0->out_features;
    const int64_t R = mode == CULORA_HUB_CONCAT ? r * n : r;
    if (out->r != R || out->in_features != in || out->out_features != d)
        return culora_fail(ctx, CULORA_ERR_INTERNAL, "hub: composed module %s has rank %d, expected %lld",
                           m0->name, (int)out->r, (long long)R);
    if (mode == CULORA_HUB_CONCAT) {
        for (int32_t i = 0; i < n; i++) {
            const culora_lora_module *mi = culora_adapter_find_module(adapters[i], m0->name);
            memcpy(out->A + (int64_t)i * r * in, mi->A, (size_t)(r * in) * sizeof(float));
            for (int64_t row = 0; row < d; row++)
                for (int64_t j = 0; j < r; j++)
                    out->B[row * R + i * r + j] = (float)(w[i] * (double)mi->B[row * r + j]);
        }
        return CULORA_OK;
    }
    double *acc = calloc((size_t)(r * in > d * r ? r * in : d * r), sizeof *acc);
    if (acc == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "hub: out of memory");
    for (int pass = 0; pass < 2; pass++) { /* A, then B */
        const int64_t cnt = pass == 0 ? r * in : d * r;
        memset(acc, 0, (size_t)cnt * sizeof *acc);
        for (int32_t i = 0; i < n; i++) {
            const culora_lora_module *mi = culora_adapter_find_module(adapters[i], m0->name);
            const float *src = pass == 0 ? mi->A : mi->B;
            for (int64_t e = 0; e < cnt; e++)
                acc[e] += w[i] * (double)src[e];
        }
        float *dst = pass == 0 ? out->A : out->B;
        for (int64_t e = 0; e < cnt; e++)
            dst[e] = (float)acc[e];
    }
    free(acc);
    return CULORA_OK;
}

culora_status culora_hub_compose_adapters(culora_context *ctx, const culora_adapter *const *adapters, int32_t n,
                                          const char *const *names, const double *w, int32_t mode,
                                          culora_adapter **out)
{
    if (out == NULL || w == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: %s is NULL", out == NULL ? "out" : "w");
    *out = NULL;
    if (mode != CULORA_HUB_SEPARATE && mode != CULORA_HUB_CONCAT)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: composition mode %d is neither SEPARATE nor CONCAT",
                           (int)mode);
    CULORA_TRY(culora_hub_check_adapters(ctx, adapters, n, names));
    for (int32_t i = 0; i < n; i++)
        if (!isfinite(w[i]))
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "hub: weight %d is not finite", (int)i);
    struct hub_config hc;
    CULORA_TRY(hub_config_make(ctx, culora_adapter_config(adapters[0]), n, mode, &hc));
    culora_adapter *ad = NULL;
    culora_status s = culora_adapter_create(ctx, &hc.cfg, &ad);
    const culora_adapter *a0 = adapters[0];
    for (size_t j = 0; s == CULORA_OK && j < culora_adapter_n_modules(a0); j++) {
        const culora_lora_module *m0 = culora_adapter_module(a0, j);
        culora_lora_module *mo = NULL;
        s = culora_adapter_add_module(ctx, ad, m0->name, m0->in_features, m0->out_features, false, &mo);
        if (s == CULORA_OK && fabs(mo->scaling - m0->scaling) > 1e-12 * fabs(m0->scaling))
            s = culora_fail(ctx, CULORA_ERR_INTERNAL, "hub: composed %s has scaling %g, the adapters %g", m0->name,
                            mo->scaling, m0->scaling);
        if (s == CULORA_OK)
            s = compose_module(ctx, adapters, n, w, mode, m0, mo);
    }
    hub_config_free(&hc);
    if (s != CULORA_OK) {
        culora_adapter_destroy(ad);
        return s;
    }
    *out = ad;
    return CULORA_OK;
}
