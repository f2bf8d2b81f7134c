/*
 * model_backward.c — gradients of the last forward's loss, in reverse layer order.
 *
 * One residual-stream gradient buffer (d_stream) runs backwards through the blocks: every branch
 * adds its input gradient into it (the norms' accumulate_dx). Parameter gradients are '+=' into
 * the flat fp32 buffer (accumulation across micro-batches); frozen tensors get none.
 * After a backward the logits buffer holds dlogits.
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

culora_status model_linear_bwd(struct culora_model *m, struct mlinear *lin, const void *x, int64_t ldx, const void *dy,
                               int64_t lddy, void *dx, int64_t lddx, bool accumulate_dx)
{
    const int64_t n = m->n;
    if (lin->lora != NULL) {
        culora_lora_linear_desc d;
        model_lora_desc(m, lin, n, m->forward_count, &d);
        if (accumulate_dx)
            d.flags |= CULORA_LORA_ACCUMULATE_DX;
        struct mlora *lo = lin->lora;
        const culora_lora_linear_bwd_args a = {x, ldx, lin->W.s, lin->W.ld, lo->A.s, lo->A.ld, lo->B.s, lo->B.ld,
                                               lin->v, lin->ldv, dy, lddy, m->du, model_round_ld(m, lo->r), dx, lddx,
                                               model_grad(m, &lo->A), lo->A.ld, model_grad(m, &lo->B), lo->B.ld};
        if (lin->W.q != NULL)
            return culora_lora_linear_quant_backward(m->ctx, &d, &lin->W.q->desc, &lin->W.q->w, &a, m->ws,
                                                     m->ws_bytes, NULL);
        return culora_lora_linear_backward(m->ctx, &d, &a, m->ws, m->ws_bytes, NULL);
    }
    const void *w = lin->W.s;
    int64_t ldw = lin->W.ld;
    if (dx != NULL && lin->W.q != NULL) { /* a frozen quantized linear: dequantize W for dx */
        ldw = model_round_ld(m, lin->in);
        CULORA_TRY(culora_dequantize(m->ctx, &lin->W.q->desc, &lin->W.q->w, m->wdq, ldw, m->S, NULL));
        w = m->wdq;
    }
    if (dx != NULL) { /* dx = dy·W  ([n, out]·[out, in]) */
        const struct culora_gemm_args g = {.trans_a = false, .trans_b = false, .m = n, .n = lin->in, .k = lin->out,
                                           .alpha = 1.0f, .beta = accumulate_dx ? 1.0f : 0.0f, .a = dy, .lda = lddy,
                                           .a_dtype = m->S, .b = w, .ldb = ldw, .b_dtype = m->S,
                                           .c = dx, .ldc = lddx, .c_dtype = m->S};
        CULORA_TRY(culora_op_gemm(m->ctx, &g, m->ws, m->ws_bytes, NULL));
    }
    if (lin->W.trainable) { /* dW += dyᵀ·x  (fp32) */
        const struct culora_gemm_args g = {.trans_a = true, .trans_b = false, .m = lin->out, .n = lin->in, .k = n,
                                           .alpha = 1.0f, .beta = 1.0f, .a = dy, .lda = lddy, .a_dtype = m->S,
                                           .b = x, .ldb = ldx, .b_dtype = m->S, .c = model_grad(m, &lin->W),
                                           .ldc = lin->W.ld, .c_dtype = CULORA_DTYPE_F32};
        CULORA_TRY(culora_op_gemm(m->ctx, &g, m->ws, m->ws_bytes, NULL));
    }
    if (lin->bias.present && lin->bias.trainable) {
        const struct culora_nn_bias_grad_args b = {.n = n, .c = lin->out, .dy = dy, .lddy = lddy,
                                                   .dbias = model_grad(m, &lin->bias)};
        CULORA_TRY(culora_nn_bias_grad(m->ctx, &b, m->ws, m->ws_bytes, NULL));
    }
    return CULORA_OK;
}

static culora_status norm_bwd(struct culora_model *m, struct mnorm *nm, const void *x, const float *mean,
                              const float *rstd, const void *dout, void *dx, bool accumulate)
{
    const int64_t ld = model_round_ld(m, m->C);
    if (m->gpt2) {
        const struct culora_nn_layernorm_bwd_args a = {.n = m->n, .c = m->C, .accumulate_dx = accumulate, .x = x,
                                                       .ldx = ld, .gamma = nm->w.s, .mean = mean, .rstd = rstd,
                                                       .dout = dout, .lddout = ld, .dx = dx, .lddx = ld,
                                                       .dgamma = model_grad(m, &nm->w),
                                                       .dbeta = model_grad(m, &nm->b)};
        return culora_nn_layernorm_bwd(m->ctx, &a, m->ws, m->ws_bytes, NULL);
    }
    const struct culora_nn_rmsnorm_bwd_args a = {.n = m->n, .c = m->C, .accumulate_dx = accumulate, .x = x,
                                                 .ldx = ld, .gamma = nm->w.s, .rstd = rstd, .dout = dout,
                                                 .lddout = ld, .dx = dx, .lddx = ld, .dgamma = model_grad(m, &nm->w)};
    return culora_nn_rmsnorm_bwd(m->ctx, &a, m->ws, m->ws_bytes, NULL);
}

static culora_status attention_bwd(struct culora_model *m, struct mlayer *ly, void *dq, void *dk, void *dv,
                                   int64_t ldd)
{
    const struct culora_nn_attention_bwd_args a = {
        .batch = m->batch, .seq = m->seq, .n_heads = (int32_t)m->H, .n_kv_heads = (int32_t)m->Hkv,
        .head_dim = (int32_t)m->D, .scale = (float)(1.0 / sqrt((double)m->D)), .q = ly->qb, .ldq = ly->ldq,
        .k = ly->kb, .ldk = ly->ldk, .v = ly->vb, .ldv = ly->ldv, .lse = ly->lse, .dy = m->d_att,
        .lddy = model_round_ld(m, m->qdim), .dq = dq, .lddq = ldd, .dk = dk, .lddk = ldd, .dv = dv, .lddv = ldd};
    return culora_nn_attention_bwd(m->ctx, &a, m->ws, m->ws_bytes, NULL);
}

static culora_status layer_bwd(struct culora_model *m, struct mlayer *ly, const void *x_in, const float *inv_freq)
{
    const int64_t ldC = model_round_ld(m, m->C), ldI = model_round_ld(m, m->I), ldA = model_round_ld(m, m->qdim);
    const int64_t ldqkv = model_round_ld(m, m->qdim + 2 * m->kvdim);
    char *dq = m->d_qkv, *dk = dq + (size_t)m->qdim * m->es, *dv = dk + (size_t)m->kvdim * m->es;
    /* MLP branch: d_stream is the gradient of the block's output */
    if (m->gpt2) {
        CULORA_TRY(model_linear_bwd(m, &ly->proj_mlp, ly->h2, ldI, m->d_stream, ldC, m->d_h, ldI, false));
        const struct culora_nn_gelu_bwd_args g = {.n = m->n, .c = m->I, .x = ly->h, .ldx = ldI, .dy = m->d_h,
                                                  .lddy = ldI, .dx = m->d_h, .lddx = ldI};
        CULORA_TRY(culora_nn_gelu_bwd(m->ctx, &g, NULL));
        CULORA_TRY(model_linear_bwd(m, &ly->fc, ly->ln2_out, ldC, m->d_h, ldI, m->d_ln, ldC, false));
    } else {
        CULORA_TRY(model_linear_bwd(m, &ly->down, ly->h3, ldI, m->d_stream, ldC, m->d_h, ldI, false));
        /* dgate and dup overwrite gate and up (h, h2), which backward no longer needs */
        const struct culora_nn_swiglu_bwd_args g = {.n = m->n, .c = m->I, .gate = ly->h, .ldgate = ldI,
                                                    .up = ly->h2, .ldup = ldI, .dy = m->d_h, .lddy = ldI,
                                                    .dgate = ly->h, .lddgate = ldI, .dup = ly->h2, .lddup = ldI};
        CULORA_TRY(culora_nn_swiglu_bwd(m->ctx, &g, NULL));
        CULORA_TRY(model_linear_bwd(m, &ly->gate, ly->ln2_out, ldC, ly->h, ldI, m->d_ln, ldC, false));
        CULORA_TRY(model_linear_bwd(m, &ly->up, ly->ln2_out, ldC, ly->h2, ldI, m->d_ln, ldC, true));
    }
    CULORA_TRY(norm_bwd(m, &ly->ln2, ly->res1, ly->ln2_mean, ly->ln2_rstd, m->d_ln, m->d_stream, true));
    /* attention branch: d_stream is now the gradient of res1 */
    CULORA_TRY(model_linear_bwd(m, m->gpt2 ? &ly->proj_attn : &ly->o, ly->att_y, ldA, m->d_stream, ldC, m->d_att,
                                ldA, false));
    CULORA_TRY(attention_bwd(m, ly, dq, dk, dv, ldqkv));
    if (m->gpt2) {
        CULORA_TRY(model_linear_bwd(m, &ly->qkv, ly->ln1_out, ldC, m->d_qkv, ldqkv, m->d_ln, ldC, false));
    } else {
        const struct culora_nn_rope_args rq = {.n = m->n, .n_heads = (int32_t)m->H, .head_dim = (int32_t)m->D,
                                               .theta = (float)m->cfg.rope_theta, .inv_freq = inv_freq,
                                               .pos = m->pos, .x = dq, .ldx = ldqkv, .out = dq, .ldout = ldqkv};
        CULORA_TRY(culora_nn_rope_bwd(m->ctx, &rq, NULL));
        const struct culora_nn_rope_args rk = {.n = m->n, .n_heads = (int32_t)m->Hkv, .head_dim = (int32_t)m->D,
                                               .theta = (float)m->cfg.rope_theta, .inv_freq = inv_freq,
                                               .pos = m->pos, .x = dk, .ldx = ldqkv, .out = dk, .ldout = ldqkv};
        CULORA_TRY(culora_nn_rope_bwd(m->ctx, &rk, NULL));
        CULORA_TRY(model_linear_bwd(m, &ly->q, ly->ln1_out, ldC, dq, ldqkv, m->d_ln, ldC, false));
        CULORA_TRY(model_linear_bwd(m, &ly->k, ly->ln1_out, ldC, dk, ldqkv, m->d_ln, ldC, true));
        CULORA_TRY(model_linear_bwd(m, &ly->v, ly->ln1_out, ldC, dv, ldqkv, m->d_ln, ldC, true));
    }
    return norm_bwd(m, &ly->ln1, x_in, ly->ln1_mean, ly->ln1_rstd, m->d_ln, m->d_stream, true);
}

static culora_status embedding_bwd(struct culora_model *m)
{
    const int64_t n = m->n, ldC = model_round_ld(m, m->C);
    if (m->wte.trainable) {
        const struct culora_nn_embedding_bwd_args e = {.n = n, .c = m->C, .vocab = m->V,
                                                       .n_pos = m->gpt2 ? m->cfg.max_position_embeddings : 0,
                                                       .tokens = m->tokens, .pos = m->pos, .dout = m->d_stream,
                                                       .lddout = ldC, .dwte = model_grad(m, &m->wte),
                                                       .lddwte = m->wte.ld,
                                                       .dwpe = m->gpt2 ? model_grad(m, &m->wpe) : NULL,
                                                       .lddwpe = m->gpt2 ? m->wpe.ld : 0};
        CULORA_TRY(culora_nn_embedding_bwd(m->ctx, &e, m->ws, m->ws_bytes, NULL));
    }
    struct mlora *lo = m->emb_lora;
    if (lo == NULL)
        return CULORA_OK;
    const int64_t ldu = model_round_ld(m, lo->r);
    const float s = (float)lo->scaling;
    if (lo->B.trainable) { /* dB [C, r] += s · d_streamᵀ · u */
        const struct culora_gemm_args g = {.trans_a = true, .trans_b = false, .m = m->C, .n = lo->r, .k = n,
                                           .alpha = s, .beta = 1.0f, .a = m->d_stream, .lda = ldC, .a_dtype = m->S,
                                           .b = m->emb_u, .ldb = ldu, .b_dtype = m->S, .c = model_grad(m, &lo->B),
                                           .ldc = lo->B.ld, .c_dtype = CULORA_DTYPE_F32};
        CULORA_TRY(culora_op_gemm(m->ctx, &g, m->ws, m->ws_bytes, NULL));
    }
    if (lo->A.trainable) { /* du = s · d_stream · B [n, r];  Aᵀ[token, :] += du (an embedding gradient) */
        const struct culora_gemm_args g = {.trans_a = false, .trans_b = false, .m = n, .n = lo->r, .k = m->C,
                                           .alpha = s, .beta = 0.0f, .a = m->d_stream, .lda = ldC, .a_dtype = m->S,
                                           .b = lo->B.s, .ldb = lo->B.ld, .b_dtype = m->S, .c = m->du, .ldc = ldu,
                                           .c_dtype = m->S};
        CULORA_TRY(culora_op_gemm(m->ctx, &g, m->ws, m->ws_bytes, NULL));
        const struct culora_nn_embedding_bwd_args e = {.n = n, .c = lo->r, .vocab = m->V, .tokens = m->tokens,
                                                       .dout = m->du, .lddout = ldu, .dwte = model_grad(m, &lo->A),
                                                       .lddwte = lo->A.ld};
        CULORA_TRY(culora_nn_embedding_bwd(m->ctx, &e, m->ws, m->ws_bytes, NULL));
    }
    return CULORA_OK;
}

culora_status culora_model_backward(culora_model *m, float grad_scale, int64_t grad_denominator)
{
    if (m == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(m->ctx));
    if (m->mode == CULORA_MODE_INFERENCE)
        return culora_fail(m->ctx, CULORA_ERR_MISUSE, "culora_model_backward: the model was created for inference");
    if (!m->have_forward || !m->have_targets)
        return culora_fail(m->ctx, CULORA_ERR_MISUSE,
                           "culora_model_backward: needs a forward with targets first (and only one backward per forward)");
    if (!isfinite(grad_scale) || grad_denominator < 0)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG, "culora_model_backward: grad_scale %g, denominator %lld",
                           (double)grad_scale, (long long)grad_denominator);
    m->have_forward = false; /* the logits become dlogits */
    const int64_t ldC = model_round_ld(m, m->C);
    const struct culora_nn_cross_entropy_args ce = {.n = m->n, .vocab = m->V, .ignore_index = -100,
                                                    .grad_scale = grad_scale, .grad_denominator = grad_denominator,
                                                    .logits = m->logits, .ldlogits = m->ldV, .targets = m->targets,
                                                    .loss = m->loss_dev, .n_valid = m->n_valid_dev,
                                                    .dlogits = m->logits, .lddlogits = m->ldV};
    CULORA_TRY(culora_nn_cross_entropy(m->ctx, &ce, m->ws, m->ws_bytes, NULL));
    CULORA_TRY(model_linear_bwd(m, &m->lm_head, m->lnf_out, ldC, m->logits, m->ldV, m->d_ln, ldC, false));
    const void *x_last = m->L > 0 ? m->layers[m->L - 1].out : m->emb_out;
    CULORA_TRY(norm_bwd(m, &m->lnf, x_last, m->lnf_mean, m->lnf_rstd, m->d_ln, m->d_stream, false));
    float *inv_freq = NULL;
    CULORA_TRY(model_rope_table(m, &inv_freq));
    culora_status s = CULORA_OK;
    for (int64_t l = m->L - 1; s == CULORA_OK && l >= 0; l--)
        s = layer_bwd(m, &m->layers[l], l > 0 ? m->layers[l - 1].out : m->emb_out, inv_freq);
    free(inv_freq);
    CULORA_TRY(s);
    return embedding_bwd(m);
}
