/*
 * model_optim.c — what the trainer does to the trainable parameters: the global gradient norm,
 * one AdamW update of the flat buffers (one op call for every parameter), and moving the flat
 * state for checkpoints.
 */
#include "model.h"

#include <stdlib.h>

culora_status model_grad_norm(struct culora_model *m, float *norm)
{
    *norm = 0.0f;
    if (m->n_train == 0)
        return CULORA_OK;
    float *dev = m->loss_dev; /* [1] scratch on the backend */
    const struct culora_nn_grad_norm_args a = {.n = m->n_train, .grad = m->grad, .norm = dev};
    CULORA_TRY(culora_nn_grad_norm(m->ctx, &a, m->ws, m->ws_bytes, NULL));
    CULORA_TRY(culora_memcpy(m->ctx, norm, dev, sizeof *norm, CULORA_COPY_DEVICE_TO_HOST, NULL));
    return culora_synchronize(m->ctx, NULL);
}

culora_status model_adamw(struct culora_model *m, double lr, double beta1, double beta2, double eps,
                          double weight_decay, int64_t step, float grad_scale)
{
    if (m->n_train == 0)
        return CULORA_OK;
    const struct culora_nn_adamw_args a = {.n = m->n_train, .lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps,
                                           .weight_decay = weight_decay, .step = step, .grad_scale = grad_scale,
                                           .param = m->master, .grad = m->grad, .m = m->adam_m, .v = m->adam_v,
                                           .param_copy = m->copy};
    return culora_nn_adamw(m->ctx, &a, NULL);
}

float *model_grad_buffer(struct culora_model *m, int64_t *n)
{
    *n = m->n_train;
    return m->grad;
}

static culora_status move(struct culora_model *m, void *dst, const void *src, culora_copy_kind kind)
{
    CULORA_TRY(culora_memcpy(m->ctx, dst, src, (size_t)m->n_train * sizeof(float), kind, NULL));
    return culora_synchronize(m->ctx, NULL);
}

culora_status model_state_download(struct culora_model *m, float *master, float *adam_m, float *adam_v)
{
    if (m->n_train == 0)
        return CULORA_OK;
    if (master)
        CULORA_TRY(move(m, master, m->master, CULORA_COPY_DEVICE_TO_HOST));
    if (adam_m)
        CULORA_TRY(move(m, adam_m, m->adam_m, CULORA_COPY_DEVICE_TO_HOST));
    if (adam_v)
        CULORA_TRY(move(m, adam_v, m->adam_v, CULORA_COPY_DEVICE_TO_HOST));
    return CULORA_OK;
}

culora_status model_state_upload(struct culora_model *m, const float *master, const float *adam_m,
                                 const float *adam_v)
{
    if (m->n_train == 0)
        return CULORA_OK;
    CULORA_TRY(move(m, m->master, master, CULORA_COPY_HOST_TO_DEVICE));
    CULORA_TRY(move(m, m->adam_m, adam_m, CULORA_COPY_HOST_TO_DEVICE));
    CULORA_TRY(move(m, m->adam_v, adam_v, CULORA_COPY_HOST_TO_DEVICE));
    if (m->copy != NULL) { /* refresh the storage-dtype copies from the restored masters */
        const struct culora_nn_cast_args c = {.n = m->n_train, .src = m->master, .dst = m->copy};
        CULORA_TRY(culora_nn_cast(m->ctx, &c, NULL));
    }
    return culora_synchronize(m->ctx, NULL);
}
