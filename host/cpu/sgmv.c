/*
 * sgmv.c — CPU reference of the segmented LoRA op (host/sgmv_ops.h), fp32:
 *   for each segment i with rows R_i = [seg[i], seg[i+1]):
 *     v[R_i] = scale·x[R_i]·A_iᵀ      (OpenBLAS sgemm)
 *     y[R_i] += v[R_i]·B_iᵀ
 * Two GEMMs per non-empty segment, in segment order. Ref for kernels/sgmv.cu.
 */
#include "cpu_internal.h"

#include "../sgmv_ops.h"

static culora_status cpu_sgmv_fwd(culora_backend *be, const struct culora_sgmv_args *a, culora_stream stream)
{
    (void)be;
    (void)stream;
    const float *x = a->x, *A = a->a, *B = a->b;
    float *v = a->v, *y = a->y;
    for (int32_t i = 0; i < a->n_segments; i++) {
        const int64_t r0 = a->seg[i], rows = a->seg[i + 1] - r0;
        if (rows == 0)
            continue;
        const float *ai = A + (int64_t)i * a->stride_a, *bi = B + (int64_t)i * a->stride_b;
        cpu_sgemm(false, true, rows, a->r, a->k, a->scale, x + r0 * a->ldx, a->ldx, ai, a->lda, 0.0f,
                  v + r0 * a->ldv, a->ldv);
        cpu_sgemm(false, true, rows, a->d, a->r, 1.0f, v + r0 * a->ldv, a->ldv, bi, a->ldb, 1.0f, y + r0 * a->ldy,
                  a->ldy);
    }
    return CULORA_OK;
}

const struct culora_sgmv_i culora_cpu_sgmv_iface = {
    .family = "sgmv",
    .fwd = cpu_sgmv_fwd,
};
