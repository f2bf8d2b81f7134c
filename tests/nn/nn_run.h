// nn_run.h — run each transformer op on a context (CPU or CUDA) from host data: upload into
// guarded backend buffers with padded leading dimensions, call the dispatcher, check the status
// and every guard region, download the outputs. The CPU tests compare these outputs with fp64
// references, the CUDA tests compare the CUDA outputs with the CPU ones.
#pragma once

#include "nn_test.h"

namespace nn_test {

#define NN_OK(ctx, call) ASSERT_EQ((call), CULORA_OK) << culora_context_last_error(ctx)
#define NN_GUARD(buf, name) EXPECT_TRUE((buf).guard(name))

// Workspace an op asks for, allocated on ctx.
template <typename Args, typename Query>
std::unique_ptr<Workspace> workspace_for(culora_context *ctx, const Args &a, Query q)
{
    struct culora_nn_ws ws = {0, 0};
    EXPECT_EQ(q(ctx, &a, &ws), CULORA_OK) << culora_context_last_error(ctx);
    return std::make_unique<Workspace>(ctx, ws.full_bytes);
}

// ---- embedding --------------------------------------------------------------------------------

struct EmbIn {
    int64_t n, c, vocab, n_pos;  // n_pos 0: no position table
    std::vector<int32_t> tokens, pos;
    std::vector<float> wte, wpe, dout, dwte0, dwpe0;
};
struct EmbOut {
    std::vector<float> out, dwte, dwpe;
};

inline void run_embedding(culora_context *ctx, const EmbIn &in, EmbOut *o)
{
    const bool pe = in.n_pos > 0;
    I32 tok(ctx, in.tokens);
    std::unique_ptr<I32> pos(pe ? new I32(ctx, in.pos) : nullptr);
    SMat wte(ctx, in.wte, in.vocab, in.c, ld_for(in.c)), out(ctx, in.n, in.c, ld_for(in.c, 2));
    std::unique_ptr<SMat> wpe(pe ? new SMat(ctx, in.wpe, in.n_pos, in.c, ld_for(in.c)) : nullptr);
    culora_nn_embedding_args f{in.n, in.c, in.vocab, in.n_pos, tok.p(), pe ? pos->p() : nullptr, wte.p(), wte.ld(),
                               pe ? wpe->p() : nullptr, pe ? wpe->ld() : 0, out.p(), out.ld()};
    NN_OK(ctx, culora_nn_embedding_fwd(ctx, &f, nullptr));
    o->out = out.get();
    NN_GUARD(out, "out");
    // backward: fp32 table gradients with a dense-but-padded leading dimension
    SMat dout(ctx, in.dout, in.n, in.c, ld_for(in.c));
    const int64_t ldg = in.c + 3;
    std::vector<float> g0((size_t)(in.vocab * ldg), 0.0f), p0((size_t)(std::max<int64_t>(in.n_pos, 1) * ldg), 0.0f);
    for (int64_t i = 0; i < in.vocab; i++)
        for (int64_t j = 0; j < in.c; j++) g0[(size_t)(i * ldg + j)] = in.dwte0[(size_t)(i * in.c + j)];
    for (int64_t i = 0; i < in.n_pos; i++)
        for (int64_t j = 0; j < in.c; j++) p0[(size_t)(i * ldg + j)] = in.dwpe0[(size_t)(i * in.c + j)];
    F32 dwte(ctx, g0), dwpe(ctx, p0);
    culora_nn_embedding_bwd_args b{in.n, in.c, in.vocab, in.n_pos, tok.p(), pe ? pos->p() : nullptr, dout.p(),
                                   dout.ld(), dwte.p(), ldg, pe ? dwpe.p() : nullptr, ldg};
    auto ws = workspace_for(ctx, b, culora_nn_embedding_bwd_workspace);
    NN_OK(ctx, culora_nn_embedding_bwd(ctx, &b, ws->p(), ws->bytes(), nullptr));
    std::vector<float> gw = dwte.get(), gp = dwpe.get();
    NN_GUARD(dwte, "dwte");
    NN_GUARD(dwpe, "dwpe");
    o->dwte.assign((size_t)(in.vocab * in.c), 0.0f);
    o->dwpe.assign((size_t)(in.n_pos * in.c), 0.0f);
    for (int64_t i = 0; i < in.vocab; i++)
        for (int64_t j = 0; j < in.c; j++) o->dwte[(size_t)(i * in.c + j)] = gw[(size_t)(i * ldg + j)];
    for (int64_t i = 0; i < in.n_pos; i++)
        for (int64_t j = 0; j < in.c; j++) o->dwpe[(size_t)(i * in.c + j)] = gp[(size_t)(i * ldg + j)];
}

// ---- LayerNorm / RMSNorm ------------------------------------------------------------------------

struct NormIn {
    int64_t n, c;
    bool rms, has_beta, accumulate_dx, param_grads;
    float eps;
    std::vector<float> x, gamma, beta, dout, dx0, dgamma0, dbeta0;
};
struct NormOut {
    std::vector<float> out, mean, rstd, dx, dgamma, dbeta;
};

inline void run_norm(culora_context *ctx, const NormIn &in_, NormOut *o)
{
    NormIn in = in_;
    const int64_t n = in.n, c = in.c;
    for (auto *v : {&in.beta, &in.dgamma0, &in.dbeta0})
        if (v->empty()) v->assign((size_t)c, 0.0f);
    if (in.dx0.empty()) in.dx0.assign((size_t)(n * c), 0.0f);
    SMat x(ctx, in.x, n, c, ld_for(c)), gamma(ctx, in.gamma, 1, c, c), beta(ctx, in.beta, 1, c, c);
    SMat out(ctx, n, c, ld_for(c, 2));
    F32 mean(ctx, (size_t)n), rstd(ctx, (size_t)n);
    if (in.rms) {
        culora_nn_rmsnorm_args f{n, c, in.eps, x.p(), x.ld(), gamma.p(), out.p(), out.ld(), rstd.p()};
        NN_OK(ctx, culora_nn_rmsnorm_fwd(ctx, &f, nullptr));
    } else {
        culora_nn_layernorm_args f{n,       c,        in.eps,   x.p(),    x.ld(),   gamma.p(),
                                   in.has_beta ? beta.p() : nullptr,  out.p(), out.ld(), mean.p(), rstd.p()};
        NN_OK(ctx, culora_nn_layernorm_fwd(ctx, &f, nullptr));
        o->mean = mean.get();
        NN_GUARD(mean, "mean");
    }
    o->out = out.get();
    o->rstd = rstd.get();
    NN_GUARD(out, "out");
    NN_GUARD(rstd, "rstd");

    SMat dout(ctx, in.dout, n, c, ld_for(c)), dx(ctx, n, c, ld_for(c, 3));
    if (in.accumulate_dx) dx.set(in.dx0);
    F32 dgamma(ctx, in.dgamma0), dbeta(ctx, in.dbeta0);
    float *dg = in.param_grads ? dgamma.p() : nullptr, *db = in.param_grads && in.has_beta ? dbeta.p() : nullptr;
    if (in.rms) {
        culora_nn_rmsnorm_bwd_args b{n, c, in.accumulate_dx, x.p(), x.ld(), gamma.p(), rstd.p(), dout.p(), dout.ld(),
                                     dx.p(), dx.ld(), dg};
        auto ws = workspace_for(ctx, b, culora_nn_rmsnorm_bwd_workspace);
        NN_OK(ctx, culora_nn_rmsnorm_bwd(ctx, &b, ws->p(), ws->bytes(), nullptr));
    } else {
        culora_nn_layernorm_bwd_args b{n, c, in.accumulate_dx, x.p(), x.ld(), gamma.p(), mean.p(), rstd.p(), dout.p(),
                                       dout.ld(), dx.p(), dx.ld(), dg, db};
        auto ws = workspace_for(ctx, b, culora_nn_layernorm_bwd_workspace);
        NN_OK(ctx, culora_nn_layernorm_bwd(ctx, &b, ws->p(), ws->bytes(), nullptr));
    }
    o->dx = dx.get();
    o->dgamma = dgamma.get();
    o->dbeta = dbeta.get();
    NN_GUARD(dx, "dx");
    NN_GUARD(dgamma, "dgamma");
    NN_GUARD(dbeta, "dbeta");
}

inline std::vector<float> run_bias_grad(culora_context *ctx, int64_t n, int64_t c, const std::vector<float> &dy,
                                        const std::vector<float> &dbias0)
{
    SMat d(ctx, dy, n, c, ld_for(c));
    F32 db(ctx, dbias0);
    culora_nn_bias_grad_args a{n, c, d.p(), d.ld(), db.p()};
    auto ws = workspace_for(ctx, a, culora_nn_bias_grad_workspace);
    EXPECT_EQ(culora_nn_bias_grad(ctx, &a, ws->p(), ws->bytes(), nullptr), CULORA_OK) << culora_context_last_error(ctx);
    EXPECT_TRUE(db.guard("dbias"));
    return db.get();
}

// ---- RoPE ---------------------------------------------------------------------------------------------

struct RopeIn {
    int64_t n;
    int heads, d;
    float theta;
    bool own_table, in_place;
    std::vector<int32_t> pos;
    std::vector<float> x, table;  // table: inv_freq given by the caller when own_table
};

// Forward (backward when bwd) of x; returns [n, heads·d].
inline std::vector<float> run_rope(culora_context *ctx, const RopeIn &in, bool bwd)
{
    const int64_t w = (int64_t)in.heads * in.d;
    I32 pos(ctx, in.pos);
    SMat x(ctx, in.x, in.n, w, ld_for(w)), out(ctx, in.n, w, ld_for(w, 2));
    SMat &dst = in.in_place ? x : out;
    culora_nn_rope_args a{in.n, in.heads, in.d, in.theta, in.own_table ? in.table.data() : nullptr, pos.p(),
                          x.p(), x.ld(), dst.p(), dst.ld()};
    std::vector<float> r;
    EXPECT_EQ(bwd ? culora_nn_rope_bwd(ctx, &a, nullptr) : culora_nn_rope_fwd(ctx, &a, nullptr), CULORA_OK)
        << culora_context_last_error(ctx);
    r = dst.get();
    EXPECT_TRUE(dst.guard("rope out"));
    return r;
}

// ---- attention ------------------------------------------------------------------------------------

struct AttIn {
    AttShape s;
    float scale;
    bool fused;  // q, k, v as column ranges of one [n, (H+2Hkv)·D] buffer (and dq, dk, dv likewise)
    std::vector<float> q, k, v, dy;
};
struct AttOut {
    std::vector<float> y, lse, dq, dk, dv;
};

inline std::vector<float> pack_cols(const std::vector<std::pair<const std::vector<float> *, int64_t>> &parts,
                                    int64_t n)
{
    int64_t w = 0;
    for (auto &p : parts) w += p.second;
    std::vector<float> out((size_t)(n * w));
    int64_t off = 0;
    for (auto &p : parts) {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < p.second; j++) out[(size_t)(i * w + off + j)] = (*p.first)[(size_t)(i * p.second + j)];
        off += p.second;
    }
    return out;
}

inline std::vector<float> take_cols(const std::vector<float> &m, int64_t n, int64_t w, int64_t off, int64_t cols)
{
    std::vector<float> out((size_t)(n * cols));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < cols; j++) out[(size_t)(i * cols + j)] = m[(size_t)(i * w + off + j)];
    return out;
}

// Runs forward and backward. workspace_bytes > 0 overrides the full workspace (to force chunks).
inline void run_attention(culora_context *ctx, const AttIn &in, AttOut *o, size_t workspace_bytes = 0)
{
    const AttShape &s = in.s;
    const int64_t n = s.n(), wq = s.wq(), wkv = s.wkv(), wall = wq + 2 * wkv;
    F32 lse(ctx, (size_t)(s.b * s.h * s.t));
    std::unique_ptr<SMat> qkv, q, k, v, dqkv, dq, dk, dv;
    const void *pq, *pk, *pv;
    int64_t ldq, ldk, ldv;
    const size_t es = culora_dtype_size(culora_context_compute_dtype(ctx));
    if (in.fused) {
        qkv.reset(new SMat(ctx, pack_cols({{&in.q, wq}, {&in.k, wkv}, {&in.v, wkv}}, n), n, wall, ld_for(wall)));
        pq = qkv->p();
        pk = (const char *)qkv->p() + wq * es;
        pv = (const char *)qkv->p() + (wq + wkv) * es;
        ldq = ldk = ldv = qkv->ld();
    } else {
        q.reset(new SMat(ctx, in.q, n, wq, ld_for(wq)));
        k.reset(new SMat(ctx, in.k, n, wkv, ld_for(wkv, 2)));
        v.reset(new SMat(ctx, in.v, n, wkv, ld_for(wkv, 3)));
        pq = q->p(), pk = k->p(), pv = v->p();
        ldq = q->ld(), ldk = k->ld(), ldv = v->ld();
    }
    SMat y(ctx, n, wq, ld_for(wq, 2));
    culora_nn_attention_args f{s.b, s.t, s.h, s.hkv, s.d, in.scale, pq, ldq, pk, ldk, pv, ldv, y.p(), y.ld(), lse.p()};
    {
        struct culora_nn_ws need = {0, 0};
        NN_OK(ctx, culora_nn_attention_fwd_workspace(ctx, &f, &need));
        Workspace ws(ctx, workspace_bytes ? std::max(workspace_bytes, need.min_bytes) : need.full_bytes);
        NN_OK(ctx, culora_nn_attention_fwd(ctx, &f, ws.p(), ws.bytes(), nullptr));
    }
    o->y = y.get();
    o->lse = lse.get();
    NN_GUARD(y, "y");
    NN_GUARD(lse, "lse");

    SMat dy(ctx, in.dy, n, wq, ld_for(wq));
    void *pdq, *pdk, *pdv;
    int64_t lddq, lddk, lddv;
    if (in.fused) {
        dqkv.reset(new SMat(ctx, n, wall, ld_for(wall, 2)));
        pdq = dqkv->p();
        pdk = (char *)dqkv->p() + wq * es;
        pdv = (char *)dqkv->p() + (wq + wkv) * es;
        lddq = lddk = lddv = dqkv->ld();
    } else {
        dq.reset(new SMat(ctx, n, wq, ld_for(wq, 3)));
        dk.reset(new SMat(ctx, n, wkv, ld_for(wkv)));
        dv.reset(new SMat(ctx, n, wkv, ld_for(wkv, 2)));
        pdq = dq->p(), pdk = dk->p(), pdv = dv->p();
        lddq = dq->ld(), lddk = dk->ld(), lddv = dv->ld();
    }
    culora_nn_attention_bwd_args b{s.b, s.t, s.h,  s.hkv,  s.d,    in.scale, pq,   ldq,  pk,   ldk, pv,
                                   ldv, lse.p(), dy.p(), dy.ld(), pdq, lddq,   pdk, lddk, pdv, lddv};
    {
        struct culora_nn_ws need = {0, 0};
        NN_OK(ctx, culora_nn_attention_bwd_workspace(ctx, &b, &need));
        Workspace ws(ctx, workspace_bytes ? std::max(workspace_bytes, need.min_bytes) : need.full_bytes);
        NN_OK(ctx, culora_nn_attention_bwd(ctx, &b, ws.p(), ws.bytes(), nullptr));
    }
    if (in.fused) {
        std::vector<float> all = dqkv->get();
        o->dq = take_cols(all, n, wall, 0, wq);
        o->dk = take_cols(all, n, wall, wq, wkv);
        o->dv = take_cols(all, n, wall, wq + wkv, wkv);
        NN_GUARD(*dqkv, "dqkv");
    } else {
        o->dq = dq->get();
        o->dk = dk->get();
        o->dv = dv->get();
        NN_GUARD(*dq, "dq");
        NN_GUARD(*dk, "dk");
        NN_GUARD(*dv, "dv");
    }
}

// ---- activations ----------------------------------------------------------------------------------

// GELU forward and backward; in_place: y over x and dx over dy.
inline void run_gelu(culora_context *ctx, int64_t n, int64_t c, const std::vector<float> &xin,
                     const std::vector<float> &dyin, bool in_place, std::vector<float> *y, std::vector<float> *dx)
{
    SMat x(ctx, xin, n, c, ld_for(c)), yb(ctx, n, c, ld_for(c, 2)), dy(ctx, dyin, n, c, ld_for(c, 3)),
        dxb(ctx, n, c, ld_for(c));
    SMat xcopy(ctx, xin, n, c, ld_for(c));  // backward needs the forward input when x was overwritten
    SMat &yo = in_place ? x : yb;
    culora_nn_gelu_args f{n, c, x.p(), x.ld(), yo.p(), yo.ld()};
    NN_OK(ctx, culora_nn_gelu_fwd(ctx, &f, nullptr));
    *y = yo.get();
    NN_GUARD(yo, "y");
    SMat &dxo = in_place ? dy : dxb;
    culora_nn_gelu_bwd_args b{n, c, xcopy.p(), xcopy.ld(), dy.p(), dy.ld(), dxo.p(), dxo.ld()};
    NN_OK(ctx, culora_nn_gelu_bwd(ctx, &b, nullptr));
    *dx = dxo.get();
    NN_GUARD(dxo, "dx");
}

struct SwigluOut {
    std::vector<float> y, dgate, dup;
};

// SwiGLU forward and backward with gate and up as the two halves of one [n, 2c] buffer (the
// fused gate_up projection); in_place: y over gate, dgate over gate's copy and dup over up's.
inline void run_swiglu(culora_context *ctx, int64_t n, int64_t c, const std::vector<float> &gate,
                       const std::vector<float> &up, const std::vector<float> &dyin, bool in_place, SwigluOut *o)
{
    const size_t es = culora_dtype_size(culora_context_compute_dtype(ctx));
    const std::vector<float> gu = pack_cols({{&gate, c}, {&up, c}}, n);
    SMat a(ctx, gu, n, 2 * c, ld_for(2 * c)), yb(ctx, n, c, ld_for(c, 2)), dy(ctx, dyin, n, c, ld_for(c)),
        grads(ctx, n, 2 * c, ld_for(2 * c, 2));
    void *g = a.p(), *u = (char *)a.p() + c * es;
    culora_nn_swiglu_args f{n, c, g, a.ld(), u, a.ld(), yb.p(), yb.ld()};
    NN_OK(ctx, culora_nn_swiglu_fwd(ctx, &f, nullptr));
    o->y = yb.get();
    NN_GUARD(yb, "y");
    SMat a2(ctx, gu, n, 2 * c, ld_for(2 * c));
    void *dg = in_place ? a2.p() : grads.p(), *du = in_place ? (char *)a2.p() + c * es : (char *)grads.p() + c * es;
    const int64_t ldg = in_place ? a2.ld() : grads.ld();
    culora_nn_swiglu_bwd_args b{n,  c,  in_place ? a2.p() : g, in_place ? a2.ld() : a.ld(), in_place ? du : u,
                                in_place ? a2.ld() : a.ld(), dy.p(), dy.ld(), dg, ldg, du, ldg};
    NN_OK(ctx, culora_nn_swiglu_bwd(ctx, &b, nullptr));
    std::vector<float> all = in_place ? a2.get() : grads.get();
    o->dgate = take_cols(all, n, 2 * c, 0, c);
    o->dup = take_cols(all, n, 2 * c, c, c);
    NN_GUARD(grads, "dgate|dup");
    NN_GUARD(a2, "gate|up copy");
}

inline std::vector<float> run_add(culora_context *ctx, int64_t n, int64_t c, const std::vector<float> &av,
                                  const std::vector<float> &bv, int alias /* 0: out, 1: a, 2: b */)
{
    SMat a(ctx, av, n, c, ld_for(c)), b(ctx, bv, n, c, ld_for(c, 2)), out(ctx, n, c, ld_for(c, 3));
    SMat &o = alias == 1 ? a : alias == 2 ? b : out;
    culora_nn_add_args args{n, c, a.p(), a.ld(), b.p(), b.ld(), o.p(), o.ld()};
    EXPECT_EQ(culora_nn_add(ctx, &args, nullptr), CULORA_OK) << culora_context_last_error(ctx);
    EXPECT_TRUE(o.guard("out"));
    return o.get();
}

// ---- cross-entropy ----------------------------------------------------------------------------------

struct XentIn {
    int64_t n, vocab;
    int32_t ignore;
    float grad_scale;
    int64_t den;
    bool in_place, want_grad;
    std::vector<float> logits;
    std::vector<int32_t> targets;
};
struct XentOut {
    float loss;
    int32_t n_valid;
    std::vector<float> losses, dlogits;
    std::vector<uint8_t> dlogits_raw;  // whole padded buffer
};

inline void run_xent(culora_context *ctx, const XentIn &in, XentOut *o)
{
    SMat logits(ctx, in.logits, in.n, in.vocab, ld_for(in.vocab)), dl(ctx, in.n, in.vocab, ld_for(in.vocab, 2));
    I32 tgt(ctx, in.targets);
    F32 loss(ctx, 1), losses(ctx, (size_t)in.n);
    I32 nv(ctx, 1);
    SMat &d = in.in_place ? logits : dl;
    culora_nn_cross_entropy_args a{in.n,     in.vocab,    in.ignore, in.grad_scale,
                                   in.den,   logits.p(),  logits.ld(), tgt.p(),
                                   loss.p(), losses.p(),  nv.p(),      in.want_grad ? d.p() : nullptr,
                                   d.ld()};
    auto ws = workspace_for(ctx, a, culora_nn_cross_entropy_workspace);
    NN_OK(ctx, culora_nn_cross_entropy(ctx, &a, ws->p(), ws->bytes(), nullptr));
    o->loss = loss.get()[0];
    o->n_valid = nv.get()[0];
    o->losses = losses.get();
    if (in.want_grad) {
        o->dlogits = d.get();
        o->dlogits_raw = d.bytes();
    }
    NN_GUARD(loss, "loss");
    NN_GUARD(losses, "losses");
    NN_GUARD(nv, "n_valid");
    NN_GUARD(d, "dlogits");
}

// ---- optimizer ----------------------------------------------------------------------------------------

struct AdamIn {
    double lr, b1, b2, eps, wd;
    float grad_scale;
    int64_t step;
};

// One AdamW step in place on host vectors; copy receives the storage-dtype copy (as floats).
inline void run_adamw(culora_context *ctx, const AdamIn &h, std::vector<float> &p, const std::vector<float> &g,
                      std::vector<float> &m, std::vector<float> &v, std::vector<float> *copy)
{
    const int64_t n = (int64_t)p.size();
    F32 pb(ctx, p), gb(ctx, g), mb(ctx, m), vb(ctx, v);
    SMat cb(ctx, 1, n, n);
    culora_nn_adamw_args a{n,  h.lr, h.b1, h.b2, h.eps, h.wd, h.step, h.grad_scale, pb.p(), gb.p(), mb.p(), vb.p(),
                           copy ? cb.p() : nullptr};
    NN_OK(ctx, culora_nn_adamw(ctx, &a, nullptr));
    p = pb.get();
    m = mb.get();
    v = vb.get();
    if (copy) *copy = cb.get();
    NN_GUARD(pb, "param");
    NN_GUARD(mb, "m");
    NN_GUARD(vb, "v");
    NN_GUARD(cb, "param_copy");
}

inline float run_grad_norm(culora_context *ctx, const std::vector<float> &g)
{
    F32 gb(ctx, g), nb(ctx, 1);
    culora_nn_grad_norm_args a{(int64_t)g.size(), gb.p(), nb.p()};
    auto ws = workspace_for(ctx, a, culora_nn_grad_norm_workspace);
    EXPECT_EQ(culora_nn_grad_norm(ctx, &a, ws->p(), ws->bytes(), nullptr), CULORA_OK) << culora_context_last_error(ctx);
    EXPECT_TRUE(nb.guard("norm"));
    return nb.get()[0];
}

}  // namespace nn_test
