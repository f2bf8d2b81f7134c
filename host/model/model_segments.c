/*
 * model_segments.c — segmented (multi-adapter) forwards for LoraHub's batched evaluation
 * (model_segments.h): the frozen part of each adapted linear runs once over every row, the LoRA
 * part per segment through culora_op_sgmv.
 */
#include "model_segments.h"

#include "../sgmv_ops.h"

culora_status model_set_segments(struct culora_model *m, const struct model_segments *segs)
{
    if (segs == NULL) {
        m->segments = NULL;
        return CULORA_OK;
    }
    if (m->mode != CULORA_MODE_LORA)
        return culora_fail(m->ctx, CULORA_ERR_MISUSE, "model: segmented forwards need a LORA-mode model");
    if (m->emb_lora != NULL)
        return culora_fail(m->ctx, CULORA_ERR_UNSUPPORTED, "model: segmented forwards do not apply embedding LoRA");
    if (segs->n < 1 || segs->n > CULORA_SGMV_MAX_SEGMENTS || segs->rows == NULL || segs->base == NULL ||
        segs->stride < m->n_train)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG,
                           "model: bad segments (n %d, stride %lld for %lld trainable elements)", (int)segs->n,
                           (long long)segs->stride, (long long)m->n_train);
    m->segments = segs;
    return CULORA_OK;
}

culora_status model_segments_linear_fwd(struct culora_model *m, struct mlinear *lin, const void *x, int64_t ldx,
                                        void *y, int64_t ldy, int64_t n)
{
    const struct model_segments *sg = m->segments;
    const struct mlora *lo = lin->lora;
    if (sg->rows[sg->n] != n)
        return culora_fail(m->ctx, CULORA_ERR_MISUSE, "model: the segments cover %lld rows, the forward has %lld",
                           (long long)sg->rows[sg->n], (long long)n);
    if (lo->A.off < 0 || lo->B.off < 0)
        return culora_fail(m->ctx, CULORA_ERR_MISUSE, "model: %s has frozen LoRA tensors; segments need LORA mode",
                           lo->name);
    culora_lora_linear_desc d;
    model_lora_desc(m, lin, n, m->forward_count, &d);
    if (d.dropout > 0.0f)
        return culora_fail(m->ctx, CULORA_ERR_MISUSE, "model: segmented forwards run with dropout off "
                                                      "(culora_model_set_training(m, false))");
    struct mlinear frozen = *lin; /* the same layer without its adapter: the plain or quantized base */
    frozen.lora = NULL;
    CULORA_TRY(model_linear_fwd(m, &frozen, x, ldx, y, ldy, n));
    const char *base = sg->base;
    const struct culora_sgmv_args a = {
        .m = n, .k = lin->in, .d = lin->out, .r = lo->r, .n_segments = sg->n, .seg = sg->rows,
        .scale = culora_lora_scaling(&d), .x = x, .ldx = ldx,
        .a = base + (size_t)lo->A.off * m->es, .lda = lo->A.ld, .stride_a = sg->stride,
        .b = base + (size_t)lo->B.off * m->es, .ldb = lo->B.ld, .stride_b = sg->stride,
        .v = lin->v, .ldv = lin->ldv, .y = y, .ldy = ldy};
    return culora_op_sgmv(m->ctx, &a, NULL);
}
