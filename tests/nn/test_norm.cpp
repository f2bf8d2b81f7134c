// test_norm.cpp — CPU reference LayerNorm, RMSNorm and bias gradient: hand-computed values, the
// fp64 reference on ragged shapes with padded leading dimensions, central finite differences of
// the backward, the '+=' / '=' contracts and frozen (NULL) parameter gradients.
#include "nn_run.h"

using namespace nn_test;

TEST(NormCpu, LayerNormHandComputed)
{
    // x = [1 2 3 4]: mean 2.5, biased var 1.25, eps 0 → rstd = 1/sqrt(1.25) = 0.894427191;
    // xhat = [-1.3416408, -0.4472136, 0.4472136, 1.3416408]; gamma = [1 2 1 2], beta = [0.5 0 0 -1]
    // → out = [-0.8416408, -0.8944272, 0.4472136, 1.6832816].
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    float x[] = {1, 2, 3, 4}, g[] = {1, 2, 1, 2}, b[] = {0.5f, 0, 0, -1}, out[4], mean, rstd;
    culora_nn_layernorm_args a{1, 4, 0.0f, x, 4, g, b, out, 4, &mean, &rstd};
    ASSERT_EQ(culora_nn_layernorm_fwd(ctx.get(), &a, nullptr), CULORA_OK) << culora_context_last_error(ctx.get());
    const float want[] = {-0.8416408f, -0.8944272f, 0.4472136f, 1.6832816f};
    for (int i = 0; i < 4; i++) EXPECT_NEAR(out[i], want[i], 1e-6) << i;
    EXPECT_FLOAT_EQ(mean, 2.5f);
    EXPECT_NEAR(rstd, 0.894427191, 1e-7);
    // Backward with dout = [1 0 0 0]: g = dout·gamma = [1 0 0 0], mean(g) = 0.25,
    // mean(g·xhat) = -0.3354102; dx = rstd·(g − 0.25 − xhat·(-0.3354102)) = rstd·[0.3, -0.4, -0.1, 0.2]
    // = [0.2683282, -0.3577709, -0.0894427, 0.1788854]; dgamma += dout·xhat, dbeta += dout.
    float dout[] = {1, 0, 0, 0}, dx[4], dg[] = {10, 10, 10, 10}, db[] = {1, 1, 1, 1};
    culora_nn_layernorm_bwd_args ba{1, 4, false, x, 4, g, &mean, &rstd, dout, 4, dx, 4, dg, db};
    ASSERT_EQ(culora_nn_layernorm_bwd(ctx.get(), &ba, nullptr, 0, nullptr), CULORA_OK);
    const float dx_want[] = {0.2683282f, -0.3577709f, -0.0894427f, 0.1788854f};
    for (int i = 0; i < 4; i++) EXPECT_NEAR(dx[i], dx_want[i], 1e-6) << i;
    EXPECT_NEAR(dg[0], 10 - 1.3416408f, 1e-6);
    for (int i = 1; i < 4; i++) EXPECT_FLOAT_EQ(dg[i], 10.0f);
    EXPECT_FLOAT_EQ(db[0], 2.0f);
    for (int i = 1; i < 4; i++) EXPECT_FLOAT_EQ(db[i], 1.0f);
}

TEST(NormCpu, RmsNormHandComputed)
{
    // x = [3 4]: mean(x²) = 12.5, eps 0 → rstd = 0.28284271; gamma = [2 1] → out = [1.6970563, 1.1313708].
    // dout = [1 1]: g = [2 1], xhat = [0.8485281, 1.1313708], mean(g·xhat) = 1.4142136,
    // dx = rstd·(g − xhat·1.4142136) = rstd·[0.8, -0.6] = [0.2262742, -0.1697056]; dgamma = xhat.
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    float x[] = {3, 4}, g[] = {2, 1}, out[2], rstd;
    culora_nn_rmsnorm_args a{1, 2, 0.0f, x, 2, g, out, 2, &rstd};
    ASSERT_EQ(culora_nn_rmsnorm_fwd(ctx.get(), &a, nullptr), CULORA_OK);
    EXPECT_NEAR(out[0], 1.6970563f, 1e-6);
    EXPECT_NEAR(out[1], 1.1313708f, 1e-6);
    float dout[] = {1, 1}, dx[2], dg[] = {0, 0};
    culora_nn_rmsnorm_bwd_args ba{1, 2, false, x, 2, g, &rstd, dout, 2, dx, 2, dg};
    ASSERT_EQ(culora_nn_rmsnorm_bwd(ctx.get(), &ba, nullptr, 0, nullptr), CULORA_OK);
    EXPECT_NEAR(dx[0], 0.2262742f, 1e-6);
    EXPECT_NEAR(dx[1], -0.1697056f, 1e-6);
    EXPECT_NEAR(dg[0], 0.8485281f, 1e-6);
    EXPECT_NEAR(dg[1], 1.1313708f, 1e-6);
}

namespace {

struct NormCase {
    int64_t n, c;
    bool rms, has_beta;
    float eps;
};

NormIn make_norm(const NormCase &k, uint64_t seed)
{
    NormIn in{k.n, k.c, k.rms, k.has_beta, false, true, k.eps, {}, {}, {}, {}, {}, {}, {}};
    in.x = random_vec((size_t)(k.n * k.c), seed, -2.0f, 3.0f);  // nonzero mean exercises the centring
    in.gamma = random_vec((size_t)k.c, seed + 1, 0.5f, 1.5f);
    in.beta = random_vec((size_t)k.c, seed + 2);
    in.dout = random_vec((size_t)(k.n * k.c), seed + 3);
    in.dx0 = random_vec((size_t)(k.n * k.c), seed + 4);
    in.dgamma0 = random_vec((size_t)k.c, seed + 5);
    in.dbeta0 = random_vec((size_t)k.c, seed + 6);
    return in;
}

std::string norm_name(const NormCase &k)
{
    return std::string(k.rms ? "rms" : "ln") + (k.has_beta ? "_beta" : "") + "_n" + std::to_string(k.n) + "_c" +
           std::to_string(k.c);
}

void PrintTo(const NormCase &k, std::ostream *os) { *os << norm_name(k); }

class NormCpuVsRef : public ::testing::TestWithParam<NormCase> {};

}  // namespace

TEST_P(NormCpuVsRef, ForwardMatchesFp64AndBackwardMatchesFiniteDifferences)
{
    const NormCase k = GetParam();
    const NormIn in = make_norm(k, 7);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    NormOut o;
    run_norm(ctx.get(), in, &o);
    const int64_t n = k.n, c = k.c;
    dvec mean, rstd, beta = dv(in.beta);
    dvec y = k.rms ? ref_rmsnorm(dv(in.x), dv(in.gamma), n, c, k.eps, &rstd)
                   : ref_layernorm(dv(in.x), dv(in.gamma), k.has_beta ? &beta : nullptr, n, c, k.eps, &mean, &rstd);
    EXPECT_TRUE(all_close("out", o.out, y, fp32_tol(y)));
    EXPECT_TRUE(all_close("rstd", o.rstd, rstd, fp32_tol(rstd)));
    if (!k.rms) EXPECT_TRUE(all_close("mean", o.mean, mean, Tol{1e-6 * std::max(rms(mean), 1.0), 1e-6, -1}));

    // L(x, gamma, beta) = Σ dout ⊙ norm(x): central differences of the fp64 forward.
    const dvec dout = dv(in.dout);
    auto loss = [&](const dvec &x, const dvec &g, const dvec &b) {
        return dot(dout, k.rms ? ref_rmsnorm(x, g, n, c, k.eps) : ref_layernorm(x, g, k.has_beta ? &b : nullptr, n, c, k.eps));
    };
    const dvec x = dv(in.x), g = dv(in.gamma);
    dvec gx = finite_diff([&](const dvec &v) { return loss(v, g, beta); }, x);
    dvec gg = finite_diff([&](const dvec &v) { return loss(x, v, beta); }, g);
    EXPECT_TRUE(all_close("dx", o.dx, gx, fd_tol(gx)));
    // dgamma, dbeta are '+=': subtract the initial values before comparing.
    std::vector<float> dgam(o.dgamma.size()), dbet(o.dbeta.size());
    for (size_t j = 0; j < dgam.size(); j++) {
        dgam[j] = o.dgamma[j] - in.dgamma0[j];
        dbet[j] = o.dbeta[j] - in.dbeta0[j];
    }
    // The initial values (|.| <= 1) are added in fp32: allow their rounding (2^-24) on top.
    Tol tg = fd_tol(gg);
    tg.atol += 1e-7;
    EXPECT_TRUE(all_close("dgamma", dgam, gg, tg));
    if (k.has_beta && !k.rms) {
        dvec gb = finite_diff([&](const dvec &v) { return loss(x, g, v); }, beta);
        Tol tb = fd_tol(gb);
        tb.atol += 1e-7;
        EXPECT_TRUE(all_close("dbeta", dbet, gb, tb));
    } else {
        EXPECT_EQ(o.dbeta, in.dbeta0);  // no beta: dbeta untouched
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, NormCpuVsRef,
                         ::testing::Values(NormCase{5, 8, false, true, 1e-5f}, NormCase{7, 13, false, false, 1e-5f},
                                           NormCase{6, 9, true, false, 1e-6f}, NormCase{1, 1, false, true, 1e-5f},
                                           NormCase{3, 72, true, false, 1e-5f}, NormCase{37, 72, false, true, 1e-5f}),
                         [](const auto &info) { return norm_name(info.param); });

TEST(NormCpu, AccumulateDxAndFrozenParameters)
{
    for (bool rms : {false, true}) {
        SCOPED_TRACE(rms ? "rms" : "layernorm");
        NormIn in = make_norm(NormCase{9, 24, rms, true, 1e-5f}, 31);
        auto ctx = cpu_ctx();
        ASSERT_TRUE(ctx);
        NormOut plain, acc, frozen;
        run_norm(ctx.get(), in, &plain);  // dx '=' (the NaN prefill must be overwritten everywhere)
        for (float v : plain.dx) ASSERT_TRUE(std::isfinite(v));
        in.accumulate_dx = true;
        run_norm(ctx.get(), in, &acc);
        for (size_t i = 0; i < acc.dx.size(); i++) EXPECT_NEAR(acc.dx[i], plain.dx[i] + in.dx0[i], 1e-5) << i;
        in.param_grads = false;  // frozen gamma/beta: NULL gradients, nothing written
        run_norm(ctx.get(), in, &frozen);
        EXPECT_EQ(frozen.dgamma, in.dgamma0);
        EXPECT_EQ(frozen.dbeta, in.dbeta0);
    }
}

TEST(NormCpu, BiasGradIsAColumnSumAccumulated)
{
    const int64_t n = 37, c = 50;
    auto dy = random_vec((size_t)(n * c), 41);
    auto d0 = random_vec((size_t)c, 42);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    std::vector<float> got = run_bias_grad(ctx.get(), n, c, dy, d0);
    dvec want((size_t)c);
    for (int64_t j = 0; j < c; j++) {
        want[j] = d0[j];
        for (int64_t i = 0; i < n; i++) want[j] += dy[(size_t)(i * c + j)];
    }
    EXPECT_TRUE(all_close("dbias", got, want, fp32_tol(want)));
}

TEST(NormCpu, DeterministicAcrossThreadCounts)
{
    NormIn in = make_norm(NormCase{64, 200, false, true, 1e-5f}, 51);
    NormOut a, b;
    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    p.backend = CULORA_BACKEND_CPU;
    p.n_threads = 1;
    culora_context *c1 = nullptr;
    ASSERT_EQ(culora_context_create(&p, &c1), CULORA_OK);
    CtxPtr one(c1);
    run_norm(one.get(), in, &a);
    p.n_threads = 2;
    culora_context *c2 = nullptr;
    ASSERT_EQ(culora_context_create(&p, &c2), CULORA_OK);
    CtxPtr two(c2);
    run_norm(two.get(), in, &b);
    EXPECT_EQ(0, std::memcmp(a.dx.data(), b.dx.data(), a.dx.size() * 4));
    EXPECT_EQ(0, std::memcmp(a.dgamma.data(), b.dgamma.data(), a.dgamma.size() * 4));
    EXPECT_EQ(0, std::memcmp(a.dbeta.data(), b.dbeta.data(), a.dbeta.size() * 4));
}
