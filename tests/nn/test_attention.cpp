// test_attention.cpp — CPU reference causal attention with grouped-query attention: a
// hand-computed case, the fp64 reference on ragged shapes (MHA, GQA, MQA; separate and fused qkv
// buffers), central finite differences of the backward, thread-count independence.
#include "nn_run.h"

using namespace nn_test;

TEST(AttentionCpu, HandComputed)
{
    // B=1, T=2, H=Hkv=1, D=1, scale 1: q = [1, 1], k = [0, ln 3], v = [1, 5].
    // Row 0 sees only key 0: y0 = 1, lse0 = 0. Row 1: scores [0, ln3] → p = [1/4, 3/4], y1 = 4,
    // lse1 = ln 4. With dy = [0, 1]: dp = [1, 5], Δ = 4, dS = p∘(dp − Δ) = [-3/4, 3/4];
    // dq1 = Σ dS·k = 0.75·ln3, dq0 = 0 (dS of row 0 is p0·(dp − Δ) with dy0 = 0 → 0);
    // dk = dSᵀ·q = [-0.75, 0.75]; dv = Pᵀ·dy = [0.25, 0.75].
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    const float l3 = (float)std::log(3.0);
    float q[] = {1, 1}, k[] = {0, l3}, v[] = {1, 5}, y[2], lse[2], dy[] = {0, 1}, dq[2], dk[2], dvv[2];
    culora_nn_attention_args f{1, 2, 1, 1, 1, 1.0f, q, 1, k, 1, v, 1, y, 1, lse};
    ASSERT_EQ(culora_nn_attention_fwd(ctx.get(), &f, nullptr, 0, nullptr), CULORA_OK)
        << culora_context_last_error(ctx.get());
    EXPECT_NEAR(y[0], 1.0f, 1e-6);
    EXPECT_NEAR(y[1], 4.0f, 1e-6);
    EXPECT_NEAR(lse[0], 0.0f, 1e-7);
    EXPECT_NEAR(lse[1], std::log(4.0), 1e-6);
    culora_nn_attention_bwd_args b{1, 2, 1, 1, 1, 1.0f, q, 1, k, 1, v, 1, lse, dy, 1, dq, 1, dk, 1, dvv, 1};
    ASSERT_EQ(culora_nn_attention_bwd(ctx.get(), &b, nullptr, 0, nullptr), CULORA_OK)
        << culora_context_last_error(ctx.get());
    EXPECT_NEAR(dq[0], 0.0f, 1e-7);
    EXPECT_NEAR(dq[1], 0.75 * std::log(3.0), 1e-6);
    EXPECT_NEAR(dk[0], -0.75f, 1e-6);
    EXPECT_NEAR(dk[1], 0.75f, 1e-6);
    EXPECT_NEAR(dvv[0], 0.25f, 1e-6);
    EXPECT_NEAR(dvv[1], 0.75f, 1e-6);
}

namespace {

AttIn make_att(const AttShape &s, bool fused, uint64_t seed)
{
    AttIn in{s, (float)(1.0 / std::sqrt((double)s.d)), fused, {}, {}, {}, {}};
    in.q = rnd((size_t)(s.n() * s.wq()), seed, -2.0f, 2.0f);  // scores of a few units: peaked softmax rows
    in.k = rnd((size_t)(s.n() * s.wkv()), seed + 1, -2.0f, 2.0f);
    in.v = rnd((size_t)(s.n() * s.wkv()), seed + 2);
    in.dy = rnd((size_t)(s.n() * s.wq()), seed + 3);
    return in;
}

struct AttCase {
    AttShape s;
    bool fused;
};

std::string att_name(const AttCase &c)
{
    return "B" + std::to_string(c.s.b) + "_T" + std::to_string(c.s.t) + "_H" + std::to_string(c.s.h) + "_KV" +
           std::to_string(c.s.hkv) + "_D" + std::to_string(c.s.d) + (c.fused ? "_fused" : "_sep");
}

void PrintTo(const AttCase &c, std::ostream *os) { *os << att_name(c); }

class AttentionCpuVsRef : public ::testing::TestWithParam<AttCase> {};

}  // namespace

TEST_P(AttentionCpuVsRef, ForwardMatchesFp64)
{
    const AttCase c = GetParam();
    const AttIn in = make_att(c.s, c.fused, 17);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    AttOut o;
    run_attention(ctx.get(), in, &o);
    dvec lse;
    const dvec y = ref_attention(c.s, in.scale, dv(in.q), dv(in.k), dv(in.v), &lse);
    EXPECT_TRUE(all_close("y", o.y, y, fp32_tol(y)));
    EXPECT_TRUE(all_close("lse", o.lse, lse, fp32_tol(lse)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionCpuVsRef,
                         ::testing::Values(AttCase{{3, 37, 6, 2, 12}, false}, AttCase{{3, 37, 6, 2, 12}, true},
                                           AttCase{{2, 9, 4, 4, 8}, false},  // MHA
                                           AttCase{{2, 9, 4, 1, 8}, true},   // MQA
                                           AttCase{{1, 1, 2, 1, 3}, false},  // one token
                                           AttCase{{1, 64, 2, 2, 16}, true}),
                         [](const auto &info) { return att_name(info.param); });

TEST(AttentionCpu, BackwardMatchesFiniteDifferences)
{
    for (AttShape s : {AttShape{2, 5, 4, 2, 4}, AttShape{1, 6, 3, 3, 2}, AttShape{2, 4, 4, 1, 3}}) {
        SCOPED_TRACE(att_name(AttCase{s, false}));
        const AttIn in = make_att(s, false, 23);
        auto ctx = cpu_ctx();
        ASSERT_TRUE(ctx);
        AttOut o;
        run_attention(ctx.get(), in, &o);
        const dvec q = dv(in.q), k = dv(in.k), v = dv(in.v), dy = dv(in.dy);
        auto loss = [&](const dvec &qq, const dvec &kk, const dvec &vv) {
            return dot(dy, ref_attention(s, in.scale, qq, kk, vv));
        };
        const dvec gq = finite_diff([&](const dvec &x) { return loss(x, k, v); }, q);
        const dvec gk = finite_diff([&](const dvec &x) { return loss(q, x, v); }, k);
        const dvec gv = finite_diff([&](const dvec &x) { return loss(q, k, x); }, v);
        EXPECT_TRUE(all_close("dq", o.dq, gq, fd_tol(gq)));
        EXPECT_TRUE(all_close("dk", o.dk, gk, fd_tol(gk)));
        EXPECT_TRUE(all_close("dv", o.dv, gv, fd_tol(gv)));
    }
}

TEST(AttentionCpu, FusedAndSeparateLayoutsAgreeAndThreadCountDoesNotMatter)
{
    const AttShape s{2, 33, 6, 2, 8};
    AttIn in = make_att(s, false, 29);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    AttOut sep, fused, one;
    run_attention(ctx.get(), in, &sep);
    in.fused = true;
    run_attention(ctx.get(), in, &fused);
    EXPECT_EQ(sep.y, fused.y);
    EXPECT_EQ(sep.dq, fused.dq);
    EXPECT_EQ(sep.dk, fused.dk);
    EXPECT_EQ(sep.dv, fused.dv);
    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    p.backend = CULORA_BACKEND_CPU;
    p.n_threads = 1;
    culora_context *c1 = nullptr;
    ASSERT_EQ(culora_context_create(&p, &c1), CULORA_OK);
    CtxPtr single(c1);
    run_attention(single.get(), in, &one);
    EXPECT_EQ(one.y, fused.y);
    EXPECT_EQ(one.lse, fused.lse);
    EXPECT_EQ(one.dq, fused.dq);
    EXPECT_EQ(one.dk, fused.dk);
    EXPECT_EQ(one.dv, fused.dv);
}
