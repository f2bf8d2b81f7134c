/*
 * attention.c — CPU reference of causal self-attention with grouped-query attention.
 *
 * For sequence b, query head h (kv head h/g, g = H/Hkv), per head matrices Q [T,D], K, V:
 *   S = scale·Q·Kᵀ,  lse_t = log Σ_{j<=t} exp(S_tj),  P_tj = exp(S_tj − lse_t) (0 for j > t),  Y = P·V
 * Backward, dP = dY·Vᵀ, Δ_t = Σ_j P_tj·dP_tj, dS = scale·P∘(dP − Δ):
 *   dQ = dS·K,  dK = Σ_{h in group} dSᵀ·Q,  dV = Σ_{h in group} Pᵀ·dY
 * One head at a time: the four products are fp32 OpenBLAS GEMMs reading q, k, v, dy in place
 * (head h is the column range h·D.. of each row, so the leading dimension is the row's) and
 * writing y, dq, dk, dv in place (dk, dv accumulate over the group with beta = 1); the row-wise
 * softmax pieces run in parallel over rows with fp64 sums. Each output element is computed by one
 * GEMM or one row loop in a fixed order: results do not depend on the OpenMP thread count.
 * Workspace: one T×T fp32 score matrix (forward), two (backward) — the T² memory of this
 * reference; docs/kernels/nn.md.
 */
#include "cpu_nn.h"

#include <math.h>

struct att {
    int64_t b, t;
    int32_t h, hkv, d, g;
    float scale;
};

/* Row t of S: softmax over j <= t written over S as P (zeros above the diagonal); returns lse
 * (given_lse NULL) or uses the given one (backward recompute). */
static void softmax_rows(const culora_backend *be, float *S, int64_t T, float *lse_out, const float *lse_in)
{
#pragma omp parallel for num_threads(cpu_threads_for(be, T * T)) schedule(dynamic, 8)
    for (int64_t t = 0; t < T; t++) {
        float *s = S + t * T;
        double l;
        if (lse_in) {
            l = lse_in[t];
        } else {
            float mx = -INFINITY;
            for (int64_t j = 0; j <= t; j++)
                mx = s[j] > mx ? s[j] : mx;
            double sum = 0.0;
            for (int64_t j = 0; j <= t; j++)
                sum += exp((double)s[j] - mx);
            l = mx + log(sum);
            lse_out[t] = (float)l;
        }
        for (int64_t j = 0; j <= t; j++)
            s[j] = (float)exp((double)s[j] - l);
        for (int64_t j = t + 1; j < T; j++)
            s[j] = 0.0f;
    }
}

/* dP (over itself) → dS = scale·P∘(dP − Δ) row by row. */
static void softmax_bwd_rows(const culora_backend *be, const float *P, float *dP, int64_t T, float scale)
{
#pragma omp parallel for num_threads(cpu_threads_for(be, T * T)) schedule(dynamic, 8)
    for (int64_t t = 0; t < T; t++) {
        const float *p = P + t * T;
        float *d = dP + t * T;
        double delta = 0.0;
        for (int64_t j = 0; j <= t; j++)
            delta += (double)p[j] * d[j];
        for (int64_t j = 0; j <= t; j++)
            d[j] = (float)((double)scale * p[j] * ((double)d[j] - delta));
        for (int64_t j = t + 1; j < T; j++)
            d[j] = 0.0f;
    }
}

/* ---- forward ----------------------------------------------------------------------------------- */

culora_status cpu_attention_fwd_workspace(culora_backend *be, const struct culora_nn_attention_args *a,
                                          struct culora_nn_ws *ws)
{
    (void)be;
    ws->min_bytes = ws->full_bytes = (size_t)(a->seq * a->seq) * sizeof(float);
    return CULORA_OK;
}

culora_status cpu_attention_fwd(culora_backend *be, const struct culora_nn_attention_args *a,
                                const culora_workspace *ws, culora_stream s)
{
    (void)s;
    const struct att A = {a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim, a->n_heads / a->n_kv_heads,
                          a->scale};
    const int64_t T = A.t;
    float *S = ws->ptr;
    for (int64_t b = 0; b < A.b; b++)
        for (int32_t h = 0; h < A.h; h++) {
            const int32_t kh = h / A.g;
            const float *q = (const float *)a->q + b * T * a->ldq + (int64_t)h * A.d;
            const float *k = (const float *)a->k + b * T * a->ldk + (int64_t)kh * A.d;
            const float *v = (const float *)a->v + b * T * a->ldv + (int64_t)kh * A.d;
            float *y = (float *)a->y + b * T * a->ldy + (int64_t)h * A.d;
            cpu_sgemm(false, true, T, T, A.d, A.scale, q, a->ldq, k, a->ldk, 0.0f, S, T);
            softmax_rows(be, S, T, a->lse + (b * A.h + h) * T, NULL);
            cpu_sgemm(false, false, T, A.d, T, 1.0f, S, T, v, a->ldv, 0.0f, y, a->ldy);
        }
    return CULORA_OK;
}

/* ---- backward ---------------------------------------------------------------------------------- */

culora_status cpu_attention_bwd_workspace(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                          struct culora_nn_ws *ws)
{
    (void)be;
    ws->min_bytes = ws->full_bytes = 2 * (size_t)(a->seq * a->seq) * sizeof(float);
    return CULORA_OK;
}

culora_status cpu_attention_bwd(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                const culora_workspace *ws, culora_stream s)
{
    (void)s;
    const struct att A = {a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim, a->n_heads / a->n_kv_heads,
                          a->scale};
    const int64_t T = A.t;
    float *P = ws->ptr, *dS = P + T * T;
    for (int64_t b = 0; b < A.b; b++)
        for (int32_t h = 0; h < A.h; h++) {
            const int32_t kh = h / A.g;
            const float beta = h % A.g == 0 ? 0.0f : 1.0f; /* dk, dv: '=' for the group's first head, then sum */
            const float *q = (const float *)a->q + b * T * a->ldq + (int64_t)h * A.d;
            const float *k = (const float *)a->k + b * T * a->ldk + (int64_t)kh * A.d;
            const float *v = (const float *)a->v + b * T * a->ldv + (int64_t)kh * A.d;
            const float *dy = (const float *)a->dy + b * T * a->lddy + (int64_t)h * A.d;
            float *dq = (float *)a->dq + b * T * a->lddq + (int64_t)h * A.d;
            float *dk = (float *)a->dk + b * T * a->lddk + (int64_t)kh * A.d;
            float *dv = (float *)a->dv + b * T * a->lddv + (int64_t)kh * A.d;
            cpu_sgemm(false, true, T, T, A.d, A.scale, q, a->ldq, k, a->ldk, 0.0f, P, T);
            softmax_rows(be, P, T, NULL, a->lse + (b * A.h + h) * T);
            cpu_sgemm(true, false, T, A.d, T, 1.0f, P, T, dy, a->lddy, beta, dv, a->lddv);
            cpu_sgemm(false, true, T, T, A.d, 1.0f, dy, a->lddy, v, a->ldv, 0.0f, dS, T);
            softmax_bwd_rows(be, P, dS, T, A.scale);
            cpu_sgemm(false, false, T, A.d, T, 1.0f, dS, T, k, a->ldk, 0.0f, dq, a->lddq);
            cpu_sgemm(true, false, T, A.d, T, 1.0f, dS, T, q, a->ldq, beta, dk, a->lddk);
        }
    return CULORA_OK;
}
