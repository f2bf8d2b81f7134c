/*
 * attention.c — CPU reference of causal self-attention with grouped-query attention.
 *
 * For sequence b, query head h (kv head h/g, g = H/Hkv) and query position t:
 *   s_j = scale·q_t·k_j (j <= t),  lse_t = log Σ_j exp(s_j),  p_j = exp(s_j − lse_t),  y_t = Σ_j p_j·v_j
 * Backward, with dp_tj = dy_t·v_j and Δ_t = Σ_j p_tj·dp_tj:
 *   dS_tj = scale·p_tj·(dp_tj − Δ_t),  dq_t = Σ_j dS_tj·k_j,
 *   dk_j = Σ_{h in group} Σ_{t>=j} dS_tj·q_t,  dv_j = Σ_{h in group} Σ_{t>=j} p_tj·dy_t
 * Nothing of size T² is stored: the forward walks rows, the backward a row pass (dq, Δ) and a
 * column pass (dk, dv) that recomputes p and dp. Every output element is owned by one loop
 * iteration, so results do not depend on the thread count. fp64 accumulation.
 * Workspace (host): per thread T + D doubles (forward), 2T + 2D doubles plus Δ for every row
 * (backward).
 */
#include "cpu_nn.h"

#include <math.h>
#include <omp.h>

struct att {
    int64_t b, t;
    int32_t h, hkv, d, g;
    double scale;
};

static double dot(const float *a, const float *b, int32_t d)
{
    double s = 0.0;
    for (int32_t i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* ---- forward ----------------------------------------------------------------------------------- */

culora_status cpu_attention_fwd_workspace(culora_backend *be, const struct culora_nn_attention_args *a,
                                          struct culora_nn_ws *ws)
{
    ws->min_bytes = ws->full_bytes = (size_t)cpu_threads(be) * (size_t)(a->seq + a->head_dim) * sizeof(double);
    return CULORA_OK;
}

culora_status cpu_attention_fwd(culora_backend *be, const struct culora_nn_attention_args *a,
                                const culora_workspace *ws, culora_stream s)
{
    (void)s;
    const struct att A = {a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim, a->n_heads / a->n_kv_heads,
                          (double)a->scale};
    const int64_t rows = A.b * A.h * A.t, per_thread = A.t + A.d;
    double *scratch = ws->ptr;
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(dynamic, 16)
    for (int64_t r = 0; r < rows; r++) {
        /* r = (b·H + h)·T + t: the layout of lse */
        const int64_t t = r % A.t, bh = r / A.t, b = bh / A.h;
        const int32_t h = (int32_t)(bh % A.h), kvh = h / A.g;
        double *sc = scratch + (int64_t)omp_get_thread_num() * per_thread, *acc = sc + A.t;
        const float *q = (const float *)a->q + (b * A.t + t) * a->ldq + (int64_t)h * A.d;
        double mx = -INFINITY;
        for (int64_t j = 0; j <= t; j++) {
            const float *k = (const float *)a->k + (b * A.t + j) * a->ldk + (int64_t)kvh * A.d;
            sc[j] = A.scale * dot(q, k, A.d);
            mx = sc[j] > mx ? sc[j] : mx;
        }
        double sum = 0.0;
        for (int64_t j = 0; j <= t; j++)
            sum += exp(sc[j] - mx);
        const double lse = mx + log(sum);
        for (int32_t i = 0; i < A.d; i++)
            acc[i] = 0.0;
        for (int64_t j = 0; j <= t; j++) {
            const double p = exp(sc[j] - lse);
            const float *v = (const float *)a->v + (b * A.t + j) * a->ldv + (int64_t)kvh * A.d;
            for (int32_t i = 0; i < A.d; i++)
                acc[i] += p * v[i];
        }
        float *y = (float *)a->y + (b * A.t + t) * a->ldy + (int64_t)h * A.d;
        for (int32_t i = 0; i < A.d; i++)
            y[i] = (float)acc[i];
        a->lse[r] = (float)lse;
    }
    return CULORA_OK;
}

/* ---- backward ---------------------------------------------------------------------------------- */

culora_status cpu_attention_bwd_workspace(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                          struct culora_nn_ws *ws)
{
    const size_t rows = (size_t)(a->batch * a->n_heads * a->seq);
    const size_t per_thread = (size_t)(2 * a->seq + 2 * a->head_dim);
    ws->min_bytes = ws->full_bytes = (rows + (size_t)cpu_threads(be) * per_thread) * sizeof(double);
    return CULORA_OK;
}

culora_status cpu_attention_bwd(culora_backend *be, const struct culora_nn_attention_bwd_args *a,
                                const culora_workspace *ws, culora_stream s)
{
    (void)s;
    const struct att A = {a->batch, a->seq, a->n_heads, a->n_kv_heads, a->head_dim, a->n_heads / a->n_kv_heads,
                          (double)a->scale};
    const int64_t rows = A.b * A.h * A.t, per_thread = 2 * A.t + 2 * A.d;
    double *delta = ws->ptr, *scratch = delta + rows;
#define Q(bb, tt, hh) ((const float *)a->q + ((bb) * A.t + (tt)) * a->ldq + (int64_t)(hh) * A.d)
#define K(bb, tt, hh) ((const float *)a->k + ((bb) * A.t + (tt)) * a->ldk + (int64_t)(hh) * A.d)
#define V(bb, tt, hh) ((const float *)a->v + ((bb) * A.t + (tt)) * a->ldv + (int64_t)(hh) * A.d)
#define DY(bb, tt, hh) ((const float *)a->dy + ((bb) * A.t + (tt)) * a->lddy + (int64_t)(hh) * A.d)

    /* Row pass: p, dp, Δ and dq for each query row. */
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(dynamic, 16)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = r % A.t, bh = r / A.t, b = bh / A.h;
        const int32_t h = (int32_t)(bh % A.h), kvh = h / A.g;
        double *p = scratch + (int64_t)omp_get_thread_num() * per_thread, *dp = p + A.t, *acc = dp + A.t;
        const double lse = a->lse[r];
        double dl = 0.0;
        for (int64_t j = 0; j <= t; j++) {
            p[j] = exp(A.scale * dot(Q(b, t, h), K(b, j, kvh), A.d) - lse);
            dp[j] = dot(DY(b, t, h), V(b, j, kvh), A.d);
            dl += p[j] * dp[j];
        }
        delta[r] = dl;
        for (int32_t i = 0; i < A.d; i++)
            acc[i] = 0.0;
        for (int64_t j = 0; j <= t; j++) {
            const double ds = A.scale * p[j] * (dp[j] - dl);
            const float *k = K(b, j, kvh);
            for (int32_t i = 0; i < A.d; i++)
                acc[i] += ds * k[i];
        }
        float *dq = (float *)a->dq + (b * A.t + t) * a->lddq + (int64_t)h * A.d;
        for (int32_t i = 0; i < A.d; i++)
            dq[i] = (float)acc[i];
    }

    /* Column pass: dk and dv for each (sequence, kv head, key position), over the group's heads. */
    const int64_t cols = A.b * A.hkv * A.t;
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(dynamic, 16)
    for (int64_t cix = 0; cix < cols; cix++) {
        const int64_t j = cix % A.t, bk = cix / A.t, b = bk / A.hkv;
        const int32_t kvh = (int32_t)(bk % A.hkv);
        double *dk = scratch + (int64_t)omp_get_thread_num() * per_thread + 2 * A.t, *dv = dk + A.d;
        for (int32_t i = 0; i < A.d; i++)
            dk[i] = dv[i] = 0.0;
        const float *k = K(b, j, kvh), *v = V(b, j, kvh);
        for (int32_t gi = 0; gi < A.g; gi++) {
            const int32_t h = kvh * A.g + gi;
            for (int64_t t = j; t < A.t; t++) {
                const int64_t r = (b * A.h + h) * A.t + t;
                const float *q = Q(b, t, h), *dy = DY(b, t, h);
                const double p = exp(A.scale * dot(q, k, A.d) - (double)a->lse[r]);
                const double ds = A.scale * p * (dot(dy, v, A.d) - delta[r]);
                for (int32_t i = 0; i < A.d; i++) {
                    dk[i] += ds * q[i];
                    dv[i] += p * dy[i];
                }
            }
        }
        float *odk = (float *)a->dk + (b * A.t + j) * a->lddk + (int64_t)kvh * A.d;
        float *odv = (float *)a->dv + (b * A.t + j) * a->lddv + (int64_t)kvh * A.d;
        for (int32_t i = 0; i < A.d; i++) {
            odk[i] = (float)dk[i];
            odv[i] = (float)dv[i];
        }
    }
#undef Q
#undef K
#undef V
#undef DY
    return CULORA_OK;
}
