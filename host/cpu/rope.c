/*
 * rope.c — CPU reference of rotary position embedding, Hugging Face rotate_half layout.
 *
 * Per head of D elements, j < D/2, angle = pos·inv_freq[j] (an fp32 product, as HF computes it):
 *   forward   out[j] = x[j]·cos − x[j+D/2]·sin      out[j+D/2] = x[j+D/2]·cos + x[j]·sin
 *   backward  the transpose: rotation by −angle.
 * cos/sin of the fp32 angle in fp64. In place (out == x) is safe: each pair is read before it
 * is written.
 */
#include "cpu_nn.h"

#include <math.h>

static culora_status rope(culora_backend *be, const struct culora_nn_rope_args *a, double sign)
{
    float freq[CULORA_NN_ROPE_MAX_DIM / 2];
    const int32_t half = a->head_dim / 2;
    if (a->inv_freq)
        for (int32_t j = 0; j < half; j++)
            freq[j] = a->inv_freq[j];
    else
        culora_nn_rope_inv_freq(a->theta, a->head_dim, freq);
    const int64_t n = a->n;
    const int32_t heads = a->n_heads, d = a->head_dim;
#pragma omp parallel for num_threads(cpu_threads_for(be, n * (int64_t)a->n_heads * a->head_dim)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float p = (float)a->pos[i];
        const float *x = (const float *)a->x + i * a->ldx;
        float *o = (float *)a->out + i * a->ldout;
        for (int32_t j = 0; j < half; j++) {
            const float angle = p * freq[j];
            const double cs = cos((double)angle), sn = sign * sin((double)angle);
            for (int32_t h = 0; h < heads; h++) {
                const int64_t lo = (int64_t)h * d + j, hi = lo + half;
                const double x1 = x[lo], x2 = x[hi];
                o[lo] = (float)(x1 * cs - x2 * sn);
                o[hi] = (float)(x2 * cs + x1 * sn);
            }
        }
    }
    return CULORA_OK;
}

culora_status cpu_rope_fwd(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s)
{
    (void)s;
    return rope(be, a, 1.0);
}

culora_status cpu_rope_bwd(culora_backend *be, const struct culora_nn_rope_args *a, culora_stream s)
{
    (void)s;
    return rope(be, a, -1.0);
}
