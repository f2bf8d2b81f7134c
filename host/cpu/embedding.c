/*
 * embedding.c — CPU reference of the token (+ learned position) embedding and its backward.
 *
 *   out[i,:] = wte[tokens[i],:] (+ wpe[pos[i],:])           [n,c] '='   (NaN row for a bad id)
 *   dwte[v,:] += Σ_{i: tokens[i]=v} dout[i,:]                fp32 '+=', token order
 *   dwpe[p,:] += Σ_{i: pos[i]=p} dout[i,:]                   fp32 '+='
 * The backward splits the columns among threads; each thread walks all tokens in order, so the
 * sums never race and do not depend on the thread count.
 */
#include "cpu_nn.h"

#include <math.h>

culora_status cpu_embedding_fwd(culora_backend *be, const struct culora_nn_embedding_args *a, culora_stream s)
{
    (void)s;
    const int32_t *tok = a->tokens, *pos = a->pos;
    const float *wte = a->wte, *wpe = a->wpe;
    float *out = a->out;
    const int64_t n = a->n, c = a->c, vocab = a->vocab, n_pos = a->n_pos;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * a->c)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = tok[i], p = wpe ? pos[i] : 0;
        float *o = out + i * a->ldout;
        if (t < 0 || t >= vocab || (wpe && (p < 0 || p >= n_pos))) {
            for (int64_t j = 0; j < c; j++)
                o[j] = NAN;
            continue;
        }
        const float *e = wte + t * a->ldwte;
        if (wpe) {
            const float *pe = wpe + p * a->ldwpe;
            for (int64_t j = 0; j < c; j++)
                o[j] = e[j] + pe[j];
        } else {
            for (int64_t j = 0; j < c; j++)
                o[j] = e[j];
        }
    }
    return CULORA_OK;
}

/* dst[ids[i],:] += src[i,:] for every in-range id, columns split among threads. */
static void index_add_rows(const culora_backend *be, int64_t n, int64_t c, const int32_t *ids, int64_t n_rows,
                           const float *src, int64_t ldsrc, float *dst, int64_t lddst)
{
    const int64_t chunk = 64;
    const int64_t n_chunks = (c + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * c)) schedule(static)
    for (int64_t cb = 0; cb < n_chunks; cb++) {
        const int64_t j0 = cb * chunk, j1 = j0 + chunk < c ? j0 + chunk : c;
        for (int64_t i = 0; i < n; i++) {
            const int64_t id = ids[i];
            if (id < 0 || id >= n_rows)
                continue;
            const float *x = src + i * ldsrc;
            float *d = dst + id * lddst;
            for (int64_t j = j0; j < j1; j++)
                d[j] += x[j];
        }
    }
}

culora_status cpu_embedding_bwd(culora_backend *be, const struct culora_nn_embedding_bwd_args *a,
                                const culora_workspace *ws, culora_stream s)
{
    (void)ws;
    (void)s;
    if (a->dwte)
        index_add_rows(be, a->n, a->c, a->tokens, a->vocab, a->dout, a->lddout, a->dwte, a->lddwte);
    if (a->dwpe)
        index_add_rows(be, a->n, a->c, a->pos, a->n_pos, a->dout, a->lddout, a->dwpe, a->lddwpe);
    return CULORA_OK;
}
