/*
 * model_layout.c — the model's structure (layers, linears, LoRA slots, names), the layout of its
 * parameter storage, activations and workspace, and their allocation (model.h describes them).
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAIN_ALIGN 64   /* elements: 256-byte boundaries in the fp32 flat buffers */
#define BYTE_ALIGN 256

static int64_t round_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }
static size_t round_bytes(size_t n) { return (n + BYTE_ALIGN - 1) / BYTE_ALIGN * BYTE_ALIGN; }

int64_t model_round_ld(const struct culora_model *m, int64_t cols) { return round_up(cols, m->ld_align); }

float *model_master(const struct culora_model *m, const struct mtensor *t)
{
    return t->trainable ? m->master + t->off : NULL;
}

float *model_grad(const struct culora_model *m, const struct mtensor *t)
{
    return t->trainable ? m->grad + t->off : NULL;
}

/* ---- iteration over named parts --------------------------------------------------------------- */

culora_status model_for_each_linear(struct culora_model *m, model_linear_fn f, void *user)
{
    char name[128];
    for (int64_t l = 0; l < m->L; l++) {
        struct mlayer *ly = &m->layers[l];
        if (m->gpt2) {
            struct {
                struct mlinear *lin;
                const char *suffix;
            } g[] = {{&ly->qkv, "attn.c_attn"}, {&ly->proj_attn, "attn.c_proj"}, {&ly->fc, "mlp.c_fc"},
                     {&ly->proj_mlp, "mlp.c_proj"}};
            for (size_t i = 0; i < 4; i++) {
                snprintf(name, sizeof name, "transformer.h.%lld.%s", (long long)l, g[i].suffix);
                CULORA_TRY(f(m, g[i].lin, name, user));
            }
        } else {
            struct {
                struct mlinear *lin;
                const char *suffix;
            } g[] = {{&ly->q, "self_attn.q_proj"}, {&ly->k, "self_attn.k_proj"}, {&ly->v, "self_attn.v_proj"},
                     {&ly->o, "self_attn.o_proj"}, {&ly->gate, "mlp.gate_proj"}, {&ly->up, "mlp.up_proj"},
                     {&ly->down, "mlp.down_proj"}};
            for (size_t i = 0; i < 7; i++) {
                snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, g[i].suffix);
                CULORA_TRY(f(m, g[i].lin, name, user));
            }
        }
    }
    return CULORA_OK;
}

static culora_status each_linear_tensor(struct culora_model *m, struct mlinear *lin, const char *peft_name, void *user)
{
    (void)peft_name;
    struct {
        model_tensor_fn f;
        void *user;
    } *c = user;
    CULORA_TRY(c->f(m, &lin->W, lin->hf_weight, lin->conv1d, c->user));
    if (lin->bias.present)
        CULORA_TRY(c->f(m, &lin->bias, lin->hf_bias, false, c->user));
    return CULORA_OK;
}

culora_status model_for_each_tensor(struct culora_model *m, model_tensor_fn f, void *user)
{
    char name[128];
    const char *lp = m->gpt2 ? "h" : "model.layers";
    CULORA_TRY(f(m, &m->wte, m->gpt2 ? "wte.weight" : "model.embed_tokens.weight", false, user));
    if (m->gpt2)
        CULORA_TRY(f(m, &m->wpe, "wpe.weight", false, user));
    struct {
        model_tensor_fn f;
        void *user;
    } c = {f, user};
    for (int64_t l = 0; l < m->L; l++) {
        struct mlayer *ly = &m->layers[l];
        snprintf(name, sizeof name, "%s.%lld.%s.weight", lp, (long long)l, m->gpt2 ? "ln_1" : "input_layernorm");
        CULORA_TRY(f(m, &ly->ln1.w, name, false, user));
        if (ly->ln1.b.present) {
            snprintf(name, sizeof name, "%s.%lld.ln_1.bias", lp, (long long)l);
            CULORA_TRY(f(m, &ly->ln1.b, name, false, user));
        }
        snprintf(name, sizeof name, "%s.%lld.%s.weight", lp, (long long)l,
                 m->gpt2 ? "ln_2" : "post_attention_layernorm");
        CULORA_TRY(f(m, &ly->ln2.w, name, false, user));
        if (ly->ln2.b.present) {
            snprintf(name, sizeof name, "%s.%lld.ln_2.bias", lp, (long long)l);
            CULORA_TRY(f(m, &ly->ln2.b, name, false, user));
        }
    }
    /* linears in a second sweep keep the callbacks simple */
    CULORA_TRY(model_for_each_linear(m, each_linear_tensor, &c));
    CULORA_TRY(f(m, &m->lnf.w, m->gpt2 ? "ln_f.weight" : "model.norm.weight", false, user));
    if (m->lnf.b.present)
        CULORA_TRY(f(m, &m->lnf.b, "ln_f.bias", false, user));
    if (!m->cfg.tie_word_embeddings)
        CULORA_TRY(f(m, &m->lm_head.W, "lm_head.weight", false, user));
    return CULORA_OK;
}

/* ---- structure ---------------------------------------------------------------------------------- */

static void set_tensor(struct mtensor *t, int64_t rows, int64_t cols, bool trainable)
{
    memset(t, 0, sizeof *t);
    t->rows = rows;
    t->cols = cols;
    t->present = true;
    t->trainable = trainable;
    t->off = -1;
}

static void set_linear(struct culora_model *m, struct mlinear *lin, int64_t in, int64_t out, bool bias,
                       const char *hf_prefix, bool conv1d, int32_t *index)
{
    const bool full = m->mode == CULORA_MODE_FULL;
    memset(lin, 0, sizeof *lin);
    lin->in = in;
    lin->out = out;
    set_tensor(&lin->W, out, in, full);
    if (bias)
        set_tensor(&lin->bias, 1, out, full);
    snprintf(lin->hf_weight, sizeof lin->hf_weight, "%s.weight", hf_prefix);
    snprintf(lin->hf_bias, sizeof lin->hf_bias, "%s.bias", hf_prefix);
    lin->conv1d = conv1d;
    lin->index = (*index)++;
}

static void build_structure(struct culora_model *m)
{
    const bool full = m->mode == CULORA_MODE_FULL;
    const culora_model_config *c = &m->cfg;
    int32_t index = 0;
    char pre[96];
    set_tensor(&m->wte, m->V, m->C, full);
    if (m->gpt2)
        set_tensor(&m->wpe, c->max_position_embeddings, m->C, full);
    for (int64_t l = 0; l < m->L; l++) {
        struct mlayer *ly = &m->layers[l];
        set_tensor(&ly->ln1.w, 1, m->C, full);
        set_tensor(&ly->ln2.w, 1, m->C, full);
        if (m->gpt2) {
            set_tensor(&ly->ln1.b, 1, m->C, full);
            set_tensor(&ly->ln2.b, 1, m->C, full);
#define GPT2_LIN(field, suffix, in, out)                                                  \
    snprintf(pre, sizeof pre, "h.%lld.%s", (long long)l, suffix);                       \
    set_linear(m, &ly->field, in, out, true, pre, true, &index)
            GPT2_LIN(qkv, "attn.c_attn", m->C, 3 * m->C);
            GPT2_LIN(proj_attn, "attn.c_proj", m->C, m->C);
            GPT2_LIN(fc, "mlp.c_fc", m->C, m->I);
            GPT2_LIN(proj_mlp, "mlp.c_proj", m->I, m->C);
#undef GPT2_LIN
        } else {
#define LLAMA_LIN(field, suffix, in, out, bias)                                           \
    snprintf(pre, sizeof pre, "model.layers.%lld.%s", (long long)l, suffix);            \
    set_linear(m, &ly->field, in, out, bias, pre, false, &index)
            LLAMA_LIN(q, "self_attn.q_proj", m->C, m->qdim, c->attention_bias);
            LLAMA_LIN(k, "self_attn.k_proj", m->C, m->kvdim, c->attention_bias);
            LLAMA_LIN(v, "self_attn.v_proj", m->C, m->kvdim, c->attention_bias);
            LLAMA_LIN(o, "self_attn.o_proj", m->qdim, m->C, c->attention_bias);
            LLAMA_LIN(gate, "mlp.gate_proj", m->C, m->I, c->mlp_bias);
            LLAMA_LIN(up, "mlp.up_proj", m->C, m->I, c->mlp_bias);
            LLAMA_LIN(down, "mlp.down_proj", m->I, m->C, c->mlp_bias);
#undef LLAMA_LIN
        }
    }
    set_tensor(&m->lnf.w, 1, m->C, full);
    if (m->gpt2)
        set_tensor(&m->lnf.b, 1, m->C, full);
    set_linear(m, &m->lm_head, m->C, m->V, false, "lm_head", false, &index);
    if (c->tie_word_embeddings)
        m->lm_head.W.present = false; /* storage is wte's (assigned after allocation) */
}

/* ---- LoRA slots --------------------------------------------------------------------------------- */

struct lora_pick {
    const culora_adapter *adapter; /* loaded adapter: it decides; else match against the config */
    culora_adapter *matcher;
    int32_t count;
    bool assign;                   /* second pass: fill m->loras */
};

static culora_status pick_lora(struct culora_model *m, struct mlinear *lin, const char *peft_name, void *user)
{
    struct lora_pick *pk = user;
    bool targeted = false;
    int32_t r = 0;
    double alpha = 0;
    if (pk->adapter != NULL) {
        const culora_lora_module *mod = culora_adapter_find_module(pk->adapter, peft_name);
        if (mod != NULL) {
            targeted = true;
            r = mod->r;
            alpha = mod->alpha;
            if (mod->in_features != lin->in || mod->out_features != lin->out)
                return culora_fail(m->ctx, CULORA_ERR_FORMAT,
                                   "adapter module %s is [%lld -> %lld] but the model's layer is [%lld -> %lld]",
                                   peft_name, (long long)mod->in_features, (long long)mod->out_features,
                                   (long long)lin->in, (long long)lin->out);
        }
    } else {
        CULORA_TRY(culora_adapter_match(m->ctx, pk->matcher, peft_name, &targeted, &r, &alpha));
    }
    if (!targeted)
        return CULORA_OK;
    if (pk->assign) {
        struct mlora *lo = &m->loras[pk->count];
        memset(lo, 0, sizeof *lo);
        snprintf(lo->name, sizeof lo->name, "%s", peft_name);
        lo->r = r;
        lo->alpha = alpha;
        lo->scaling = m->lora_cfg.use_rslora ? alpha / sqrt((double)r) : alpha / (double)r;
        const bool train_a = m->mode == CULORA_MODE_LORA, train_b = m->mode != CULORA_MODE_INFERENCE;
        set_tensor(&lo->A, r, lin->in, train_a);
        set_tensor(&lo->B, lin->out, r, train_b);
        lin->lora = lo;
    }
    pk->count++;
    return CULORA_OK;
}

static const char *embedding_module(const struct culora_model *m)
{
    return m->gpt2 ? "transformer.wte" : "model.embed_tokens";
}

static culora_status attach_loras(struct culora_model *m, const culora_adapter *adapter)
{
    struct lora_pick pk = {adapter, NULL, 0, false};
    culora_status s = CULORA_OK;
    if (adapter == NULL) {
        if (m->lora_cfg_store == NULL)
            return CULORA_OK;
        pk.matcher = m->lora_cfg_store;
    }
    CULORA_TRY(model_for_each_linear(m, pick_lora, &pk));
    /* embedding and head */
    bool emb = false, head = false;
    if (adapter != NULL) {
        emb = culora_adapter_find_module(adapter, embedding_module(m)) != NULL;
        head = culora_adapter_find_module(adapter, "lm_head") != NULL;
    } else {
        CULORA_TRY(culora_adapter_match(m->ctx, pk.matcher, embedding_module(m), &emb, NULL, NULL));
        CULORA_TRY(culora_adapter_match(m->ctx, pk.matcher, "lm_head", &head, NULL, NULL));
    }
    if (head)
        return culora_fail(m->ctx, CULORA_ERR_UNSUPPORTED, "LoRA on lm_head is not supported (remove it from the targets)");
    const int32_t n_lin = pk.count;
    if (n_lin == 0 && !emb)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG,
                           "LoRA targets match no module of this %s model (PEFT names such as %s)",
                           m->gpt2 ? "GPT-2" : "LLaMA",
                           m->gpt2 ? "transformer.h.0.attn.c_attn" : "model.layers.0.self_attn.q_proj");
    m->loras = calloc((size_t)(n_lin + (emb ? 1 : 0)), sizeof *m->loras);
    if (m->loras == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of memory");
    pk.count = 0;
    pk.assign = true;
    s = model_for_each_linear(m, pick_lora, &pk);
    if (s != CULORA_OK)
        return s;
    m->n_loras = n_lin;
    if (emb) {
        struct mlora *lo = &m->loras[n_lin];
        int32_t r = 0;
        double alpha = 0;
        if (adapter != NULL) {
            const culora_lora_module *mod = culora_adapter_find_module(adapter, embedding_module(m));
            r = mod->r;
            alpha = mod->alpha;
        } else {
            bool t = false;
            CULORA_TRY(culora_adapter_match(m->ctx, pk.matcher, embedding_module(m), &t, &r, &alpha));
        }
        snprintf(lo->name, sizeof lo->name, "%s", embedding_module(m));
        lo->r = r;
        lo->alpha = alpha;
        lo->scaling = m->lora_cfg.use_rslora ? alpha / sqrt((double)r) : alpha / (double)r;
        lo->embedding = true;
        const bool train_a = m->mode == CULORA_MODE_LORA, train_b = m->mode != CULORA_MODE_INFERENCE;
        set_tensor(&lo->A, m->V, r, train_a); /* A stored transposed: a [V, r] lookup table */
        set_tensor(&lo->B, m->C, r, train_b);
        m->emb_lora = lo;
    }
    return CULORA_OK;
}

/* ---- storage layout ---------------------------------------------------------------------------- */

struct planner {
    size_t frozen_bytes;
    int64_t train_elems;
    bool assign;
};

static void place(struct culora_model *m, struct planner *pl, struct mtensor *t)
{
    if (!t->present || t->q != NULL) /* quantized weights live in the quant arena */
        return;
    if (!pl->assign) {
        t->ld = model_round_ld(m, t->cols);
        const int64_t n = t->rows * t->ld;
        if (t->trainable) {
            t->off = round_up(pl->train_elems, TRAIN_ALIGN);
            pl->train_elems = t->off + n;
        } else {
            t->off = -1;
            t->foff = round_bytes(pl->frozen_bytes);
            pl->frozen_bytes = t->foff + (size_t)n * m->es;
        }
        return;
    }
    if (t->trainable)
        t->s = m->copy != NULL ? (void *)((char *)m->copy + (size_t)t->off * m->es) : (void *)(m->master + t->off);
    else
        t->s = (char *)m->frozen + t->foff;
}

static culora_status place_tensor_cb(struct culora_model *m, struct mtensor *t, const char *hf, bool tr, void *user)
{
    (void)hf;
    (void)tr;
    place(m, user, t);
    return CULORA_OK;
}

static void place_all(struct culora_model *m, struct planner *pl)
{
    (void)model_for_each_tensor(m, place_tensor_cb, pl);
    for (int32_t i = 0; i < m->n_loras + (m->emb_lora ? 1 : 0); i++) {
        place(m, pl, &m->loras[i].A);
        place(m, pl, &m->loras[i].B);
    }
}

static culora_status alloc_zero(struct culora_model *m, size_t bytes, void **out)
{
    *out = NULL;
    if (bytes == 0)
        return CULORA_OK;
    CULORA_TRY(culora_malloc(m->ctx, bytes, out));
    return culora_memset(m->ctx, *out, 0, bytes, NULL);
}

/* ---- quantized base weights ------------------------------------------------------------------ */

struct quant_pick {
    int32_t n;
    bool assign;
};

static culora_status quant_pick_cb(struct culora_model *m, struct mlinear *lin, const char *peft_name, void *user)
{
    struct quant_pick *qp = user;
    if (qp->assign) {
        struct mquant *q = &m->quants[qp->n];
        q->desc = m->quant;
        q->desc.rows = lin->out;
        q->desc.cols = lin->in;
        culora_status s = culora_quant_layout_get(m->ctx, &q->desc, &q->layout);
        if (s != CULORA_OK) {
            culora_msg_prefix(m->ctx, peft_name);
            return s;
        }
        lin->W.q = q;
    }
    qp->n++;
    return CULORA_OK;
}

/* Every base linear (not lm_head) gets quantized storage. */
static culora_status plan_quant(struct culora_model *m)
{
    struct quant_pick qp = {0, false};
    CULORA_TRY(model_for_each_linear(m, quant_pick_cb, &qp));
    m->quants = calloc((size_t)(qp.n > 0 ? qp.n : 1), sizeof *m->quants);
    if (m->quants == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of memory");
    qp = (struct quant_pick){0, true};
    CULORA_TRY(model_for_each_linear(m, quant_pick_cb, &qp));
    m->n_quants = qp.n;
    size_t bytes = 0, wmax = 0;
    for (int32_t i = 0; i < qp.n; i++) {
        struct mquant *q = &m->quants[i];
        const size_t sizes[6] = {q->layout.data_bytes, q->layout.absmax_bytes, q->layout.absmax_q_bytes,
                                 q->layout.nested_absmax_bytes, q->layout.nested_code_bytes, q->layout.offset_bytes};
        for (int j = 0; j < 6; j++) {
            q->off[j] = sizes[j] ? round_bytes(bytes) : 0;
            if (sizes[j])
                bytes = q->off[j] + sizes[j];
        }
        const size_t w = (size_t)(q->desc.rows * model_round_ld(m, q->desc.cols));
        if (w > wmax)
            wmax = w;
    }
    m->qarena_bytes = bytes;
    CULORA_TRY(alloc_zero(m, bytes, &m->qarena));
    char *base = m->qarena;
    for (int32_t i = 0; i < qp.n; i++) {
        struct mquant *q = &m->quants[i];
        q->w.data = q->layout.data_bytes ? base + q->off[0] : NULL;
        q->w.absmax = q->layout.absmax_bytes ? (float *)(base + q->off[1]) : NULL;
        q->w.absmax_q = q->layout.absmax_q_bytes ? (uint8_t *)(base + q->off[2]) : NULL;
        q->w.nested_absmax = q->layout.nested_absmax_bytes ? (float *)(base + q->off[3]) : NULL;
        q->w.nested_code = q->layout.nested_code_bytes ? (float *)(base + q->off[4]) : NULL;
        q->w.offset = q->layout.offset_bytes ? (float *)(base + q->off[5]) : NULL;
    }
    /* A dequantized weight (for dx of frozen quantized linears, and for uploads). */
    m->wdq_bytes = round_bytes(wmax * (m->es > 4 ? m->es : 4));
    return alloc_zero(m, m->wdq_bytes, &m->wdq);
}

static culora_status allocate_params(struct culora_model *m)
{
    struct planner pl = {0, 0, false};
    place_all(m, &pl);
    m->frozen_bytes = pl.frozen_bytes;
    m->n_train = pl.train_elems;
    CULORA_TRY(alloc_zero(m, m->frozen_bytes, &m->frozen));
    if (m->n_train > 0) {
        const size_t fb = (size_t)m->n_train * sizeof(float);
        void *p = NULL;
        CULORA_TRY(alloc_zero(m, fb, &p));
        m->master = p;
        CULORA_TRY(alloc_zero(m, fb, &p));
        m->grad = p;
        CULORA_TRY(alloc_zero(m, fb, &p));
        m->adam_m = p;
        CULORA_TRY(alloc_zero(m, fb, &p));
        m->adam_v = p;
        if (m->S != CULORA_DTYPE_F32)
            CULORA_TRY(alloc_zero(m, (size_t)m->n_train * m->es, &m->copy));
    }
    pl.assign = true;
    place_all(m, &pl);
    if (m->cfg.tie_word_embeddings) {
        m->lm_head.W = m->wte; /* same storage, same master and gradient */
        m->lm_head.W.present = true;
    }
    return CULORA_OK;
}

/* Parameter counts (without padding). */
static culora_status count_cb(struct culora_model *m, struct mtensor *t, const char *hf, bool tr, void *user)
{
    (void)hf;
    (void)tr;
    (void)user;
    m->n_params += t->rows * t->cols;
    if (t->trainable)
        m->n_trainable += t->rows * t->cols;
    return CULORA_OK;
}

/* ---- activations --------------------------------------------------------------------------------- */

struct act_planner {
    size_t bytes;
    bool assign;
    char *base;
};

/* Reserves rows × ld elements of esize bytes; returns the pointer in the assign pass. */
static void *reserve(struct act_planner *ap, int64_t rows, int64_t ld, size_t esize)
{
    size_t off = round_bytes(ap->bytes);
    ap->bytes = off + (size_t)(rows * ld) * esize;
    return ap->assign ? ap->base + off : NULL;
}

static int64_t max_lora_rank(const struct culora_model *m)
{
    int32_t r = 0;
    for (int32_t i = 0; i < m->n_loras + (m->emb_lora ? 1 : 0); i++)
        if (m->loras[i].r > r)
            r = m->loras[i].r;
    return r;
}

static culora_status v_buffer_cb(struct culora_model *m, struct mlinear *lin, const char *peft_name, void *user)
{
    (void)peft_name;
    struct act_planner *ap = user;
    if (lin->lora != NULL) {
        lin->ldv = model_round_ld(m, lin->lora->r);
        lin->v = reserve(ap, m->max_n, lin->ldv, m->es);
    }
    return CULORA_OK;
}

static void plan_activations(struct culora_model *m, struct act_planner *ap)
{
    const int64_t N = m->max_n, es = (int64_t)m->es;
    const int64_t ldC = model_round_ld(m, m->C), ldI = model_round_ld(m, m->I);
    const bool train = m->mode != CULORA_MODE_INFERENCE;
    m->tokens = reserve(ap, N, 1, sizeof(int32_t));
    m->pos = reserve(ap, N, 1, sizeof(int32_t));
    m->targets = reserve(ap, N, 1, sizeof(int32_t));
    m->emb_out = reserve(ap, N, ldC, (size_t)es);
    for (int64_t l = 0; l < m->L; l++) {
        struct mlayer *ly = &m->layers[l];
        ly->ln1_out = reserve(ap, N, ldC, (size_t)es);
        ly->ln1_mean = reserve(ap, N, 1, 4);
        ly->ln1_rstd = reserve(ap, N, 1, 4);
        if (m->gpt2) {
            const int64_t ld3 = model_round_ld(m, 3 * m->C);
            ly->qb = reserve(ap, N, ld3, (size_t)es);
            ly->kb = ly->qb ? (char *)ly->qb + (size_t)(m->C * es) : NULL;
            ly->vb = ly->qb ? (char *)ly->qb + (size_t)(2 * m->C * es) : NULL;
            ly->ldq = ly->ldk = ly->ldv = ld3;
        } else {
            ly->ldq = model_round_ld(m, m->qdim);
            ly->ldk = ly->ldv = model_round_ld(m, m->kvdim);
            ly->qb = reserve(ap, N, ly->ldq, (size_t)es);
            ly->kb = reserve(ap, N, ly->ldk, (size_t)es);
            ly->vb = reserve(ap, N, ly->ldv, (size_t)es);
        }
        ly->att_y = reserve(ap, N, model_round_ld(m, m->qdim), (size_t)es);
        ly->lse = reserve(ap, N * m->H, 1, 4);
        ly->res1 = reserve(ap, N, ldC, (size_t)es);
        ly->ln2_out = reserve(ap, N, ldC, (size_t)es);
        ly->ln2_mean = reserve(ap, N, 1, 4);
        ly->ln2_rstd = reserve(ap, N, 1, 4);
        ly->h = reserve(ap, N, ldI, (size_t)es);
        ly->h2 = reserve(ap, N, ldI, (size_t)es);
        ly->h3 = m->gpt2 ? NULL : reserve(ap, N, ldI, (size_t)es);
        ly->out = reserve(ap, N, ldC, (size_t)es);
    }
    (void)model_for_each_linear(m, v_buffer_cb, ap);
    m->lnf_out = reserve(ap, N, ldC, (size_t)es);
    m->lnf_mean = reserve(ap, N, 1, 4);
    m->lnf_rstd = reserve(ap, N, 1, 4);
    m->ldV = model_round_ld(m, m->V);
    m->logits = reserve(ap, N, m->ldV, (size_t)es);
    m->loss_dev = reserve(ap, 1, 1, 4);
    m->n_valid_dev = reserve(ap, 1, 1, 4);
    m->tmp_c = reserve(ap, N, ldC, (size_t)es);
    const int64_t rmax = max_lora_rank(m);
    if (m->emb_lora != NULL)
        m->emb_u = reserve(ap, N, model_round_ld(m, m->emb_lora->r), (size_t)es);
    if (train) {
        const int64_t ldqkv = model_round_ld(m, m->qdim + 2 * m->kvdim);
        m->d_stream = reserve(ap, N, ldC, (size_t)es);
        m->d_ln = reserve(ap, N, ldC, (size_t)es);
        m->d_att = reserve(ap, N, model_round_ld(m, m->qdim), (size_t)es);
        m->d_qkv = reserve(ap, N, ldqkv, (size_t)es);
        m->d_h = reserve(ap, N, ldI, (size_t)es);
        m->d_h2 = reserve(ap, N, ldI, (size_t)es);
        if (rmax > 0)
            m->du = reserve(ap, N, model_round_ld(m, rmax), (size_t)es);
    }
}

/* ---- workspace ----------------------------------------------------------------------------------- */

static culora_status lora_ws_cb(struct culora_model *m, struct mlinear *lin, const char *peft_name, void *user)
{
    (void)peft_name;
    size_t *need = user;
    if (lin->lora == NULL && lin->W.q != NULL) {
        size_t b = 0;
        CULORA_TRY(culora_quant_linear_workspace_size(m->ctx, &lin->W.q->desc, m->max_n, &b));
        if (b > *need)
            *need = b;
        return CULORA_OK;
    }
    if (lin->lora == NULL)
        return CULORA_OK;
    culora_lora_linear_desc d = CULORA_LORA_LINEAR_DESC_INIT;
    d.m = m->max_n;
    d.k = lin->in;
    d.d = lin->out;
    d.r = lin->lora->r;
    d.alpha = (float)lin->lora->alpha;
    d.dropout = (float)m->lora_cfg.lora_dropout;
    d.dtype = m->S;
    size_t f = 0, b = 0;
    if (lin->W.q != NULL)
        CULORA_TRY(culora_lora_linear_quant_workspace_size(m->ctx, &d, &lin->W.q->desc, &f, &b));
    else
        CULORA_TRY(culora_lora_linear_workspace_size(m->ctx, &d, &f, &b));
    if (f > *need)
        *need = f;
    if (b > *need)
        *need = b;
    return CULORA_OK;
}

static void ws_max(size_t *need, const struct culora_nn_ws *w)
{
    if (w->full_bytes > *need)
        *need = w->full_bytes;
}

static culora_status plan_workspace(struct culora_model *m, size_t *need)
{
    *need = 0;
    CULORA_TRY(model_for_each_linear(m, lora_ws_cb, need));
    struct culora_nn_ws w;
    const int64_t B = m->max_batch, T = m->max_seq, N = m->max_n;
    const struct culora_nn_attention_args aa = {.batch = B, .seq = T, .n_heads = (int32_t)m->H,
                                                .n_kv_heads = (int32_t)m->Hkv, .head_dim = (int32_t)m->D,
                                                .scale = 1.0f};
    CULORA_TRY(culora_nn_attention_fwd_workspace(m->ctx, &aa, &w));
    ws_max(need, &w);
    const struct culora_nn_cross_entropy_args ce = {.n = N, .vocab = m->V, .ignore_index = -100, .grad_scale = 1.0f};
    CULORA_TRY(culora_nn_cross_entropy_workspace(m->ctx, &ce, &w));
    ws_max(need, &w);
    if (m->mode != CULORA_MODE_INFERENCE) {
        const struct culora_nn_attention_bwd_args ab = {.batch = B, .seq = T, .n_heads = (int32_t)m->H,
                                                        .n_kv_heads = (int32_t)m->Hkv, .head_dim = (int32_t)m->D,
                                                        .scale = 1.0f};
        CULORA_TRY(culora_nn_attention_bwd_workspace(m->ctx, &ab, &w));
        ws_max(need, &w);
        const struct culora_nn_layernorm_bwd_args lb = {.n = N, .c = m->C};
        CULORA_TRY(culora_nn_layernorm_bwd_workspace(m->ctx, &lb, &w));
        ws_max(need, &w);
        const struct culora_nn_rmsnorm_bwd_args rb = {.n = N, .c = m->C};
        CULORA_TRY(culora_nn_rmsnorm_bwd_workspace(m->ctx, &rb, &w));
        ws_max(need, &w);
        const int64_t widest = m->I > m->qdim + 2 * m->kvdim ? m->I : m->qdim + 2 * m->kvdim;
        const struct culora_nn_bias_grad_args bg = {.n = N, .c = widest > m->V ? widest : m->V};
        CULORA_TRY(culora_nn_bias_grad_workspace(m->ctx, &bg, &w));
        ws_max(need, &w);
        const struct culora_nn_embedding_bwd_args eb = {.n = N, .c = m->C, .vocab = m->V,
                                                        .n_pos = m->gpt2 ? m->cfg.max_position_embeddings : 0};
        CULORA_TRY(culora_nn_embedding_bwd_workspace(m->ctx, &eb, &w));
        ws_max(need, &w);
        const struct culora_nn_grad_norm_args gn = {.n = m->n_train > 0 ? m->n_train : 1};
        CULORA_TRY(culora_nn_grad_norm_workspace(m->ctx, &gn, &w));
        ws_max(need, &w);
    }
    for (int32_t i = 0; i < m->n_quants; i++) { /* uploads quantize through the workspace */
        size_t b = 0;
        CULORA_TRY(culora_quantize_workspace_size(m->ctx, &m->quants[i].desc, &b));
        if (b > *need)
            *need = b;
    }
    if (m->S != CULORA_DTYPE_F32)
        *need += (size_t)32 << 20; /* what cuBLASLt may use beside an op's own scratch */
    *need = round_bytes(*need > 0 ? *need : BYTE_ALIGN);
    return CULORA_OK;
}

/* ---- entry ------------------------------------------------------------------------------------------ */

culora_status model_build(struct culora_model *m, const culora_model_params *p, const culora_adapter *adapter)
{
    const culora_model_config *c = &m->cfg;
    m->gpt2 = c->arch == CULORA_ARCH_GPT2;
    m->S = culora_context_compute_dtype(m->ctx);
    m->es = culora_dtype_size(m->S);
    m->ld_align = m->S == CULORA_DTYPE_F32 ? 1 : 8;
    m->C = c->hidden_size;
    m->I = c->intermediate_size;
    m->V = c->vocab_size;
    m->H = c->n_heads;
    m->Hkv = c->n_kv_heads;
    m->D = c->head_dim;
    m->L = c->n_layers;
    m->qdim = m->H * m->D;
    m->kvdim = m->Hkv * m->D;
    m->max_batch = p->max_batch > 0 ? p->max_batch : 1;
    m->max_seq = p->max_seq > 0 ? p->max_seq : c->max_position_embeddings;
    if (m->max_seq > c->max_position_embeddings && m->gpt2)
        return culora_fail(m->ctx, CULORA_ERR_INVALID_ARG, "model: max_seq %lld exceeds the %lld learned positions",
                           (long long)m->max_seq, (long long)c->max_position_embeddings);
    m->max_n = m->max_batch * m->max_seq;
    if (m->gpt2 && m->qdim != m->C)
        return culora_fail(m->ctx, CULORA_ERR_UNSUPPORTED, "model: GPT-2 with head_dim·n_heads != hidden_size");
    m->layers = calloc((size_t)m->L, sizeof *m->layers);
    if (m->layers == NULL)
        return culora_fail(m->ctx, CULORA_ERR_OUT_OF_MEMORY, "model: out of memory");
    build_structure(m);
    if (m->mode == CULORA_MODE_LORA || m->mode == CULORA_MODE_LORA_FA || adapter != NULL)
        CULORA_TRY(attach_loras(m, adapter));
    if (m->quant.format != 0)
        CULORA_TRY(plan_quant(m));
    CULORA_TRY(allocate_params(m));
    (void)model_for_each_tensor(m, count_cb, NULL);
    for (int32_t i = 0; i < m->n_loras + (m->emb_lora ? 1 : 0); i++) {
        const struct mlora *lo = &m->loras[i];
        const int64_t na = lo->A.rows * lo->A.cols, nb = lo->B.rows * lo->B.cols;
        m->n_params += na + nb;
        m->n_trainable += (lo->A.trainable ? na : 0) + (lo->B.trainable ? nb : 0);
    }
    struct act_planner ap = {0, false, NULL};
    plan_activations(m, &ap);
    m->act_bytes = ap.bytes;
    CULORA_TRY(alloc_zero(m, m->act_bytes, &m->act));
    ap = (struct act_planner){0, true, m->act};
    plan_activations(m, &ap);
    CULORA_TRY(plan_workspace(m, &m->ws_bytes));
    CULORA_TRY(culora_malloc(m->ctx, m->ws_bytes, &m->ws));
    return CULORA_OK;
}
