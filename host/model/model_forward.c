/*
 * model_forward.c — the forward pass of GPT-2 and LLaMA decoders through the op dispatchers.
 *
 *   GPT-2 block:  a = x + c_proj(attn(c_attn(LN1(x))));  out = a + proj(gelu_tanh(fc(LN2(a))))
 *   LLaMA block:  a = x + o(attn(rope(q(N1 x)), rope(k(N1 x)), v(N1 x)));
 *                 out = a + down(silu(gate(N2 a)) · up(N2 a))          (N = RMSNorm)
 *   logits = final_norm(x_L) · W_headᵀ (W_head = wte when tied); loss = mean cross-entropy.
 * Activations each backward needs stay in the layer's buffers (model.h).
 */
#include "model.h"
#include "model_segments.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The LoRA descriptor of a linear for the forward in flight (backward rebuilds the same one). */
void model_lora_desc(const struct culora_model *m, const struct mlinear *lin, int64_t n, uint64_t fwd_id,
                     culora_lora_linear_desc *d)
{
    culora_lora_linear_desc init = CULORA_LORA_LINEAR_DESC_INIT;
    *d = init;
    d->m = n;
    d->k = lin->in;
    d->d = lin->out;
    d->r = lin->lora->r;
    d->alpha = (float)lin->lora->alpha;
    d->dtype = m->S;
    d->flags = m->lora_cfg.use_rslora ? CULORA_LORA_RSLORA : 0u;
    if (!lin->lora->A.trainable)
        d->flags |= CULORA_LORA_FREEZE_A;
    d->dropout = m->training ? (float)m->lora_cfg.lora_dropout : 0.0f;
    d->seed = m->seed;
    d->offset = fwd_id * 4096u + (uint64_t)lin->index; /* a distinct mask per forward and layer */
}

culora_status model_linear_fwd(struct culora_model *m, struct mlinear *lin, const void *x, int64_t ldx, void *y,
                               int64_t ldy, int64_t n)
{
    const void *bias = lin->bias.present ? lin->bias.s : NULL;
    const struct mquant *q = lin->W.q;
    if (lin->lora != NULL && m->segments != NULL) /* one adapter per row segment (LoraHub) */
        return model_segments_linear_fwd(m, lin, x, ldx, y, ldy, n);
    if (lin->lora != NULL) {
        culora_lora_linear_desc d;
        model_lora_desc(m, lin, n, m->forward_count, &d);
        const culora_lora_linear_fwd_args a = {x, ldx, lin->W.s, lin->W.ld, bias, lin->lora->A.s, lin->lora->A.ld,
                                               lin->lora->B.s, lin->lora->B.ld, lin->v, lin->ldv, y, ldy};
        if (q != NULL) /* QLoRA: W0 is quantized (args.w0 is NULL) */
            return culora_lora_linear_quant_forward(m->ctx, &d, &q->desc, &q->w, &a, m->ws, m->ws_bytes, NULL);
        return culora_lora_linear_forward(m->ctx, &d, &a, m->ws, m->ws_bytes, NULL);
    }
    if (q != NULL)
        return culora_quant_linear_forward(m->ctx, &q->desc, &q->w, n, x, ldx, bias, y, ldy, m->ws, m->ws_bytes, NULL);
    const struct culora_gemm_args g = {.trans_a = false, .trans_b = true, .m = n, .n = lin->out, .k = lin->in,
                                       .alpha = 1.0f, .beta = 0.0f, .a = x, .lda = ldx, .a_dtype = m->S,
                                       .b = lin->W.s, .ldb = lin->W.ld, .b_dtype = m->S, .c = y, .ldc = ldy,
                                       .c_dtype = m->S, .bias = bias};
    return culora_op_gemm(m->ctx, &g, m->ws, m->ws_bytes, NULL);
}

/* RoPE frequencies: NULL for the default table (the op computes it), else Llama-3.1 scaling as
 * transformers' _compute_llama3_parameters does it. */
culora_status model_rope_table(struct culora_model *m, float **out)
{
    *out = NULL;
    if (m->cfg.rope_type != CULORA_ROPE_LLAMA3)
        return CULORA_OK;
    const int32_t D = (int32_t)m->D;
    float *f = malloc((size_t)(D / 2) * sizeof *f);
    if (f == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    culora_nn_rope_inv_freq((float)m->cfg.rope_theta, D, f);
    const double factor = m->cfg.rope_factor, lo = m->cfg.rope_low_freq_factor, hi = m->cfg.rope_high_freq_factor;
    const double old = (double)m->cfg.rope_original_max_position_embeddings;
    const double low_wl = old / lo, high_wl = old / hi;
    for (int32_t j = 0; j < D / 2; j++) {
        const double wl = 2.0 * 3.14159265358979323846 / (double)f[j];
        if (wl < high_wl)
            continue;
        if (wl > low_wl) {
            f[j] = (float)((double)f[j] / factor);
            continue;
        }
        const double smooth = (old / wl - lo) / (hi - lo);
        f[j] = (float)((1.0 - smooth) * (double)f[j] / factor + smooth * (double)f[j]);
    }
    *out = f;
    return CULORA_OK;
}

static culora_status norm_fwd(struct culora_model *m, const struct mnorm *nm, const void *x, void *out, float *mean,
                              float *rstd, int64_t n)
{
    const int64_t ld = model_round_ld(m, m->C);
    if (m->gpt2) {
        const struct culora_nn_layernorm_args a = {.n = n, .c = m->C, .eps = (float)m->cfg.norm_eps, .x = x,
                                                   .ldx = ld, .gamma = nm->w.s, .beta = nm->b.s, .out = out,
                                                   .ldout = ld, .mean = mean, .rstd = rstd};
        return culora_nn_layernorm_fwd(m->ctx, &a, NULL);
    }
    const struct culora_nn_rmsnorm_args a = {.n = n, .c = m->C, .eps = (float)m->cfg.norm_eps, .x = x, .ldx = ld,
                                             .gamma = nm->w.s, .out = out, .ldout = ld, .rstd = rstd};
    return culora_nn_rmsnorm_fwd(m->ctx, &a, NULL);
}

static culora_status add(struct culora_model *m, const void *a, const void *b, void *out, int64_t n)
{
    const int64_t ld = model_round_ld(m, m->C);
    const struct culora_nn_add_args g = {.n = n, .c = m->C, .a = a, .lda = ld, .b = b, .ldb = ld, .out = out,
                                         .ldout = ld};
    return culora_nn_add(m->ctx, &g, NULL);
}

static culora_status attention(struct culora_model *m, struct mlayer *ly)
{
    const struct culora_nn_attention_args a = {
        .batch = m->batch, .seq = m->seq, .n_heads = (int32_t)m->H, .n_kv_heads = (int32_t)m->Hkv,
        .head_dim = (int32_t)m->D, .scale = (float)(1.0 / sqrt((double)m->D)), .q = ly->qb, .ldq = ly->ldq,
        .k = ly->kb, .ldk = ly->ldk, .v = ly->vb, .ldv = ly->ldv, .y = ly->att_y,
        .ldy = model_round_ld(m, m->qdim), .lse = ly->lse};
    return culora_nn_attention_fwd(m->ctx, &a, m->ws, m->ws_bytes, NULL);
}

static culora_status layer_fwd(struct culora_model *m, struct mlayer *ly, const void *x, const float *inv_freq)
{
    const int64_t n = m->n, ldC = model_round_ld(m, m->C), ldI = model_round_ld(m, m->I);
    const int64_t ldA = model_round_ld(m, m->qdim);
    CULORA_TRY(norm_fwd(m, &ly->ln1, x, ly->ln1_out, ly->ln1_mean, ly->ln1_rstd, n));
    if (m->gpt2) {
        CULORA_TRY(model_linear_fwd(m, &ly->qkv, ly->ln1_out, ldC, ly->qb, ly->ldq, n));
    } else {
        CULORA_TRY(model_linear_fwd(m, &ly->q, ly->ln1_out, ldC, ly->qb, ly->ldq, n));
        CULORA_TRY(model_linear_fwd(m, &ly->k, ly->ln1_out, ldC, ly->kb, ly->ldk, n));
        CULORA_TRY(model_linear_fwd(m, &ly->v, ly->ln1_out, ldC, ly->vb, ly->ldv, n));
        const struct culora_nn_rope_args rq = {.n = n, .n_heads = (int32_t)m->H, .head_dim = (int32_t)m->D,
                                               .theta = (float)m->cfg.rope_theta, .inv_freq = inv_freq,
                                               .pos = m->pos, .x = ly->qb, .ldx = ly->ldq, .out = ly->qb,
                                               .ldout = ly->ldq};
        CULORA_TRY(culora_nn_rope_fwd(m->ctx, &rq, NULL));
        const struct culora_nn_rope_args rk = {.n = n, .n_heads = (int32_t)m->Hkv, .head_dim = (int32_t)m->D,
                                               .theta = (float)m->cfg.rope_theta, .inv_freq = inv_freq,
                                               .pos = m->pos, .x = ly->kb, .ldx = ly->ldk, .out = ly->kb,
                                               .ldout = ly->ldk};
        CULORA_TRY(culora_nn_rope_fwd(m->ctx, &rk, NULL));
    }
    CULORA_TRY(attention(m, ly));
    CULORA_TRY(model_linear_fwd(m, m->gpt2 ? &ly->proj_attn : &ly->o, ly->att_y, ldA, m->tmp_c, ldC, n));
    CULORA_TRY(add(m, x, m->tmp_c, ly->res1, n));
    CULORA_TRY(norm_fwd(m, &ly->ln2, ly->res1, ly->ln2_out, ly->ln2_mean, ly->ln2_rstd, n));
    if (m->gpt2) {
        CULORA_TRY(model_linear_fwd(m, &ly->fc, ly->ln2_out, ldC, ly->h, ldI, n));
        const struct culora_nn_gelu_args g = {.n = n, .c = m->I, .x = ly->h, .ldx = ldI, .y = ly->h2, .ldy = ldI};
        CULORA_TRY(culora_nn_gelu_fwd(m->ctx, &g, NULL));
        CULORA_TRY(model_linear_fwd(m, &ly->proj_mlp, ly->h2, ldI, m->tmp_c, ldC, n));
    } else {
        CULORA_TRY(model_linear_fwd(m, &ly->gate, ly->ln2_out, ldC, ly->h, ldI, n));
        CULORA_TRY(model_linear_fwd(m, &ly->up, ly->ln2_out, ldC, ly->h2, ldI, n));
        const struct culora_nn_swiglu_args g = {.n = n, .c = m->I, .gate = ly->h, .ldgate = ldI, .up = ly->h2,
                                                .ldup = ldI, .y = ly->h3, .ldy = ldI};
        CULORA_TRY(culora_nn_swiglu_fwd(m->ctx, &g, NULL));
        CULORA_TRY(model_linear_fwd(m, &ly->down, ly->h3, ldI, m->tmp_c, ldC, n));
    }
    return add(m, ly->res1, m->tmp_c, ly->out, n);
}

static culora_status embed(struct culora_model *m)
{
    const int64_t n = m->n, ldC = model_round_ld(m, m->C);
    const struct culora_nn_embedding_args e = {.n = n, .c = m->C, .vocab = m->V,
                                               .n_pos = m->gpt2 ? m->cfg.max_position_embeddings : 0,
                                               .tokens = m->tokens, .pos = m->gpt2 ? m->pos : NULL,
                                               .wte = m->wte.s, .ldwte = m->wte.ld,
                                               .wpe = m->gpt2 ? m->wpe.s : NULL, .ldwpe = m->gpt2 ? m->wpe.ld : 0,
                                               .out = m->emb_out, .ldout = ldC};
    CULORA_TRY(culora_nn_embedding_fwd(m->ctx, &e, NULL));
    struct mlora *lo = m->emb_lora;
    if (lo == NULL)
        return CULORA_OK;
    /* PEFT Embedding LoRA: out += s · A[:, token]ᵀ · Bᵀ; the model keeps Aᵀ [V, r] so the lookup is an embedding. */
    const int64_t ldu = model_round_ld(m, lo->r);
    const struct culora_nn_embedding_args u = {.n = n, .c = lo->r, .vocab = m->V, .tokens = m->tokens,
                                               .wte = lo->A.s, .ldwte = lo->A.ld, .out = m->emb_u, .ldout = ldu};
    CULORA_TRY(culora_nn_embedding_fwd(m->ctx, &u, NULL));
    const struct culora_gemm_args g = {.trans_a = false, .trans_b = true, .m = n, .n = m->C, .k = lo->r,
                                       .alpha = (float)lo->scaling, .beta = 1.0f, .a = m->emb_u, .lda = ldu,
                                       .a_dtype = m->S, .b = lo->B.s, .ldb = lo->B.ld, .b_dtype = m->S,
                                       .c = m->emb_out, .ldc = ldC, .c_dtype = m->S};
    return culora_op_gemm(m->ctx, &g, m->ws, m->ws_bytes, NULL);
}

culora_status culora_model_forward(culora_model *m, const int32_t *tokens, const int32_t *targets, int64_t batch,
                                   int64_t seq, float *loss)
{
    if (m == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(m->ctx));
    if (tokens == NULL)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG, "culora_model_forward: tokens is NULL");
    if (batch < 1 || seq < 1 || batch * seq > m->max_n || seq > m->max_seq)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG,
                           "culora_model_forward: batch %lld × seq %lld does not fit the model's buffers (max seq "
                           "%lld, max tokens %lld)",
                           (long long)batch, (long long)seq, (long long)m->max_seq, (long long)m->max_n);
    const int64_t n = batch * seq;
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->V)
            return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG, "culora_model_forward: token %d at position %lld is "
                                                               "outside the vocabulary [0, %lld)",
                               (int)tokens[i], (long long)i, (long long)m->V);
    int32_t *pos = malloc((size_t)n * sizeof *pos);
    if (pos == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    for (int64_t i = 0; i < n; i++)
        pos[i] = (int32_t)(i % seq);
    m->batch = batch;
    m->seq = seq;
    m->n = n;
    m->have_forward = false;
    m->have_targets = targets != NULL;
    m->forward_count++;
    culora_status s = culora_memcpy(m->ctx, m->tokens, tokens, (size_t)n * 4, CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK)
        s = culora_memcpy(m->ctx, m->pos, pos, (size_t)n * 4, CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK && targets != NULL)
        s = culora_memcpy(m->ctx, m->targets, targets, (size_t)n * 4, CULORA_COPY_HOST_TO_DEVICE, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(m->ctx, NULL); /* pos is freed next */
    free(pos);
    CULORA_TRY(s);

    float *inv_freq = NULL;
    CULORA_TRY(model_rope_table(m, &inv_freq));
    s = embed(m);
    const void *x = m->emb_out;
    for (int64_t l = 0; s == CULORA_OK && l < m->L; l++) {
        s = layer_fwd(m, &m->layers[l], x, inv_freq);
        x = m->layers[l].out;
    }
    free(inv_freq);
    CULORA_TRY(s);
    CULORA_TRY(norm_fwd(m, &m->lnf, x, m->lnf_out, m->lnf_mean, m->lnf_rstd, n));
    CULORA_TRY(model_linear_fwd(m, &m->lm_head, m->lnf_out, model_round_ld(m, m->C), m->logits, m->ldV, n));
    m->have_forward = true;
    if (targets == NULL) {
        if (loss != NULL)
            *loss = NAN;
        return culora_synchronize(m->ctx, NULL);
    }
    const struct culora_nn_cross_entropy_args ce = {.n = n, .vocab = m->V, .ignore_index = -100, .grad_scale = 1.0f,
                                                    .logits = m->logits, .ldlogits = m->ldV, .targets = m->targets,
                                                    .loss = m->loss_dev, .n_valid = m->n_valid_dev};
    CULORA_TRY(culora_nn_cross_entropy(m->ctx, &ce, m->ws, m->ws_bytes, NULL));
    float l = 0;
    CULORA_TRY(culora_memcpy(m->ctx, &l, m->loss_dev, 4, CULORA_COPY_DEVICE_TO_HOST, NULL));
    CULORA_TRY(culora_synchronize(m->ctx, NULL));
    m->last_loss = l;
    if (loss != NULL)
        *loss = l;
    return CULORA_OK;
}

culora_status culora_model_logits(culora_model *m, int64_t row_begin, int64_t n_rows, float *out)
{
    if (m == NULL)
        return CULORA_ERR_INVALID_ARG;
    if (!m->have_forward)
        return culora_fail(m->ctx, CULORA_ERR_MISUSE, "culora_model_logits: no forward pass (or a backward used the logits)");
    if (out == NULL || row_begin < 0 || n_rows < 1 || row_begin + n_rows > m->n)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG, "culora_model_logits: rows [%lld, %lld) outside [0, %lld)",
                           (long long)row_begin, (long long)(row_begin + n_rows), (long long)m->n);
    const size_t n = (size_t)(n_rows * m->ldV);
    void *raw = malloc(n * m->es);
    if (raw == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of host memory");
    culora_status s = culora_memcpy(m->ctx, raw, (const char *)m->logits + (size_t)(row_begin * m->ldV) * m->es,
                                    n * m->es, CULORA_COPY_DEVICE_TO_HOST, NULL);
    if (s == CULORA_OK)
        s = culora_synchronize(m->ctx, NULL);
    if (s == CULORA_OK)
        for (int64_t i = 0; i < n_rows; i++) {
            const char *row = (const char *)raw + (size_t)(i * m->ldV) * m->es;
            if (m->S == CULORA_DTYPE_F32)
                memcpy(out + i * m->V, row, (size_t)m->V * 4);
            else
                culora_bf16_to_f32((const uint16_t *)row, out + i * m->V, (size_t)m->V);
        }
    free(raw);
    return s;
}
