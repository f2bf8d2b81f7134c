/*
 * model_segments.h — batched multi-adapter forwards (LoraHub's batched evaluation): the token rows
 * of one forward are cut into segments and every LoRA linear applies segment i's own adapter to
 * its rows through the segmented LoRA op (host/sgmv_ops.h), while the frozen base GEMM runs once
 * over all rows. Only the forward is segmented: a segmented forward has no backward.
 */
#ifndef CULORA_HOST_MODEL_SEGMENTS_H
#define CULORA_HOST_MODEL_SEGMENTS_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Segment i covers token rows [rows[i], rows[i+1]) (row b·seq + t of the forward) and reads its
 * LoRA tensors from a copy of the model's trainable flat buffer in the storage dtype S: tensor t
 * of segment i at base + (i·stride + t->off) elements. Needs a LORA-mode model (A and B trainable,
 * so every LoRA tensor has a flat offset), no embedding LoRA and dropout off. */
struct model_segments {
    int32_t n;             /* 1 .. CULORA_SGMV_MAX_SEGMENTS */
    const int64_t *rows;   /* [n + 1] host */
    const void *base;      /* backend memory, S */
    int64_t stride;        /* elements between consecutive segments' buffers */
};

/* Makes the following forwards segmented (segs NULL: back to the model's own adapter). The
 * caller keeps segs and what it points to alive until it clears them. */
culora_status model_set_segments(struct culora_model *m, const struct model_segments *segs);

/* model_linear_fwd of an adapted linear while segments are set: y = frozen(x) for all n rows,
 * then y += segment adapters (sgmv). */
culora_status model_segments_linear_fwd(struct culora_model *m, struct mlinear *lin, const void *x, int64_t ldx,
                                        void *y, int64_t ldy, int64_t n);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_MODEL_SEGMENTS_H */
