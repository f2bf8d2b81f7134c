// test_activation.cpp — CPU reference GELU (tanh), SwiGLU and the residual add: hand-computed
// values, the fp64 reference, central finite differences, in-place aliases.
#include "nn_run.h"

using namespace nn_test;

TEST(ActivationCpu, GeluHandComputed)
{
    // gelu_tanh(1) = 0.5·(1 + tanh(0.7978845608·1.044715)) = 0.8411919906; gelu(0) = 0;
    // gelu(-3) = -0.0036373920; gelu'(0) = 0.5, gelu'(1) = 1.0829640838.
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    float x[] = {1, 0, -3}, y[3], dy[] = {1, 1, 1}, dx[3];
    culora_nn_gelu_args f{1, 3, x, 3, y, 3};
    ASSERT_EQ(culora_nn_gelu_fwd(ctx.get(), &f, nullptr), CULORA_OK);
    EXPECT_NEAR(y[0], 0.8411919906f, 1e-7);
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_NEAR(y[2], -0.0036373920f, 1e-9);
    culora_nn_gelu_bwd_args b{1, 3, x, 3, dy, 3, dx, 3};
    ASSERT_EQ(culora_nn_gelu_bwd(ctx.get(), &b, nullptr), CULORA_OK);
    EXPECT_NEAR(dx[0], 1.0829640838f, 1e-6);
    EXPECT_NEAR(dx[1], 0.5f, 1e-7);
}

TEST(ActivationCpu, GeluNegativeTailKeepsItsRelativeAccuracy)
{
    // gelu(x) for x << 0 is x·σ(2u) ~ 1e-20 and smaller: computed as 0.5·x·(1 + tanh(u)) in fp64 it
    // loses every digit to cancellation (gelu(−8) came out −0). Reference in long double from
    // the σ form; the fp32 result is the rounded fp64 value, so 1 ulp (2^-23 relative) is the bar
    // (x >= −10: every result a normal fp32, gelu(−10) ≈ −1e-37).
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    float x[] = {-3.5f, -5.0f, -6.25f, -8.0f, -9.5f, -10.0f}, y[6], dy[] = {1, 1, 1, 1, 1, 1}, dx[6];
    culora_nn_gelu_args f{1, 6, x, 6, y, 6};
    ASSERT_EQ(culora_nn_gelu_fwd(ctx.get(), &f, nullptr), CULORA_OK);
    culora_nn_gelu_bwd_args b{1, 6, x, 6, dy, 6, dx, 6};
    ASSERT_EQ(culora_nn_gelu_bwd(ctx.get(), &b, nullptr), CULORA_OK);
    for (int i = 0; i < 6; i++) {
        const long double v = x[i], K = 0.7978845608028654L, C = 0.044715L;
        const long double e = expl(-2 * K * (v + C * v * v * v)), s = 1 / (1 + e);
        const long double yr = v * s, gr = s + 2 * v * s * (e * s) * K * (1 + 3 * C * v * v);
        EXPECT_LE(fabsl(y[i] - yr), fabsl(yr) * 0x1p-23L) << "gelu(" << x[i] << ") = " << y[i] << ", want " << (double)yr;
        EXPECT_LE(fabsl(dx[i] - gr), fabsl(gr) * 0x1p-23L) << "gelu'(" << x[i] << ") = " << dx[i] << ", want " << (double)gr;
    }
}

TEST(ActivationCpu, GeluMatchesReferenceAndFiniteDifferences)
{
    const int64_t n = 37, c = 72;
    auto x = rnd((size_t)(n * c), 3, -5.0f, 5.0f), dy = rnd((size_t)(n * c), 4);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    for (bool in_place : {false, true}) {
        SCOPED_TRACE(in_place ? "in place" : "out of place");
        std::vector<float> y, dx;
        run_gelu(ctx.get(), n, c, x, dy, in_place, &y, &dx);
        dvec yr(x.size()), gr(x.size());
        for (size_t i = 0; i < x.size(); i++) {
            yr[i] = gelu_ref(x[i]);
            // elementwise: the finite difference of one element is the whole gradient
            gr[i] = dy[i] * finite_diff([](const dvec &v) { return gelu_ref(v[0]); }, dvec{x[i]})[0];
        }
        EXPECT_TRUE(all_close("y", y, yr, fp32_tol(yr)));
        EXPECT_TRUE(all_close("dx", dx, gr, fd_tol(gr)));
    }
}

TEST(ActivationCpu, SwigluHandComputed)
{
    // gate 1, up 2: silu(1) = 0.7310585786, y = 1.4621171573; dy = 1:
    // dgate = up·σ(1)·(1 + 1·(1 − σ(1))) = 2·0.7310585786·1.2689414214 = 1.8553410, dup = silu(1).
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    float g[] = {1}, u[] = {2}, y[1], dy[] = {1}, dg[1], du[1];
    culora_nn_swiglu_args f{1, 1, g, 1, u, 1, y, 1};
    ASSERT_EQ(culora_nn_swiglu_fwd(ctx.get(), &f, nullptr), CULORA_OK);
    EXPECT_NEAR(y[0], 1.4621171573f, 1e-6);
    culora_nn_swiglu_bwd_args b{1, 1, g, 1, u, 1, dy, 1, dg, 1, du, 1};
    ASSERT_EQ(culora_nn_swiglu_bwd(ctx.get(), &b, nullptr), CULORA_OK);
    EXPECT_NEAR(dg[0], 1.8553410f, 1e-6);
    EXPECT_NEAR(du[0], 0.7310585786f, 1e-7);
}

TEST(ActivationCpu, SwigluMatchesReferenceAndFiniteDifferences)
{
    const int64_t n = 37, c = 44;
    auto g = rnd((size_t)(n * c), 5, -6.0f, 6.0f), u = rnd((size_t)(n * c), 6, -2.0f, 2.0f),
         dy = rnd((size_t)(n * c), 7);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    for (bool in_place : {false, true}) {
        SCOPED_TRACE(in_place ? "in place" : "out of place");
        SwigluOut o;
        run_swiglu(ctx.get(), n, c, g, u, dy, in_place, &o);
        dvec yr(g.size()), dgr(g.size()), dur(g.size());
        for (size_t i = 0; i < g.size(); i++) {
            yr[i] = silu_ref(g[i]) * u[i];
            const dvec gu = finite_diff([](const dvec &v) { return silu_ref(v[0]) * v[1]; }, dvec{g[i], u[i]});
            dgr[i] = dy[i] * gu[0];
            dur[i] = dy[i] * gu[1];
        }
        EXPECT_TRUE(all_close("y", o.y, yr, fp32_tol(yr)));
        EXPECT_TRUE(all_close("dgate", o.dgate, dgr, fd_tol(dgr)));
        EXPECT_TRUE(all_close("dup", o.dup, dur, fd_tol(dur)));
    }
}

TEST(ActivationCpu, ResidualAddOutOfPlaceAndInPlace)
{
    const int64_t n = 9, c = 13;
    auto a = rnd((size_t)(n * c), 8), b = rnd((size_t)(n * c), 9);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    std::vector<float> want(a.size());
    for (size_t i = 0; i < a.size(); i++) want[i] = a[i] + b[i];
    for (int alias : {0, 1, 2}) EXPECT_EQ(run_add(ctx.get(), n, c, a, b, alias), want) << "alias " << alias;
}
