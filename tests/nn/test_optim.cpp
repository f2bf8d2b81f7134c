// test_optim.cpp — CPU reference AdamW (hand-computed first step, ten steps against fp64 with
// weight decay, gradient scaling and the bf16/storage copy), the global gradient norm and the
// master-weight cast.
#include "nn_run.h"

using namespace nn_test;

TEST(OptimCpu, AdamwFirstStepHandComputed)
{
    // p = 1, g = 0.5, lr 0.1, wd 0.01: p ← 0.999; m = 0.05, v = 0.00025; bias-corrected m̂ = 0.5,
    // √v̂ = 0.5 → p ← 0.999 − 0.1·0.5/(0.5 + 1e-8) = 0.899.
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    std::vector<float> p{1.0f}, g{0.5f}, m{0.0f}, v{0.0f}, copy;
    run_adamw(ctx.get(), AdamIn{0.1, 0.9, 0.999, 1e-8, 0.01, 1.0f, 1}, p, g, m, v, &copy);
    EXPECT_NEAR(p[0], 0.899f, 1e-7);
    EXPECT_NEAR(m[0], 0.05f, 1e-8);
    EXPECT_NEAR(v[0], 0.00025f, 1e-10);
    EXPECT_EQ(copy[0], p[0]);
}

TEST(OptimCpu, AdamwTenStepsMatchFp64)
{
    const size_t n = 1000;
    std::vector<float> p = random_vec(n, 1), m(n, 0.0f), v(n, 0.0f);
    dvec pr = dv(p), mr(n, 0.0), vr(n, 0.0);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    for (int64_t step = 1; step <= 10; step++) {
        std::vector<float> g = random_vec(n, 100 + (uint64_t)step, -2.0f, 2.0f);
        const AdamIn h{1e-3 * (double)step, 0.9, 0.95, 1e-6, 0.1, 0.5f, step};  // lr changes per call
        std::vector<float> copy;
        run_adamw(ctx.get(), h, p, g, m, v, &copy);
        ref_adamw(pr, dv(g), mr, vr, h.lr, h.b1, h.b2, h.eps, h.wd, step, h.grad_scale);
        EXPECT_EQ(copy, p);
    }
    // fp32 vs fp64 over ten steps: each update is ~lr and carries ~1e-6 relative error; the
    // parameters are O(1) and accumulate ~10 such errors.
    EXPECT_TRUE(all_close("param", p, pr, Tol{1e-6, 1e-6, -1}));
    EXPECT_TRUE(all_close("m", m, mr, Tol{1e-7, 1e-5, -1}));
    EXPECT_TRUE(all_close("v", v, vr, Tol{1e-8, 1e-5, -1}));
}

TEST(OptimCpu, GradNormIsDeterministicAndPropagatesNaN)
{
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    EXPECT_EQ(run_grad_norm(ctx.get(), {3.0f, 4.0f}), 5.0f);
    const std::vector<float> g = random_vec(300001, 5);  // several 64Ki chunks and a tail
    double sq = 0;
    for (float x : g) sq += (double)x * x;
    const float got = run_grad_norm(ctx.get(), g);
    EXPECT_NEAR(got, std::sqrt(sq), 1e-6 * std::sqrt(sq));
    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    p.backend = CULORA_BACKEND_CPU;
    p.n_threads = 1;
    culora_context *c1 = nullptr;
    ASSERT_EQ(culora_context_create(&p, &c1), CULORA_OK);
    CtxPtr one(c1);
    EXPECT_EQ(run_grad_norm(one.get(), g), got);  // bit-identical with one thread
    std::vector<float> bad = g;
    bad[777] = NAN;
    EXPECT_TRUE(std::isnan(run_grad_norm(ctx.get(), bad)));
}

TEST(OptimCpu, CastCopiesOnTheFp32Backend)
{
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    const std::vector<float> src = random_vec(33, 6);
    F32 s(ctx.get(), src);
    SMat d(ctx.get(), 1, 33, 33);
    culora_nn_cast_args a{33, s.p(), d.p()};
    ASSERT_EQ(culora_nn_cast(ctx.get(), &a, nullptr), CULORA_OK);
    EXPECT_EQ(d.get(), src);
    EXPECT_TRUE(d.guard("dst"));
}
