// test_nn_cuda_train.cpp — CUDA vs CPU for the training-step ops: fused softmax + cross-entropy
// with ignore-index (ragged vocab 515, GPT-2 vocab 50257; in place; a given denominator), AdamW
// (bit-identical to the CPU: same fp32 operations, no contraction), the gradient norm
// (deterministic) and the bf16 parameter copy. Skips without a GPU.
#include "nn_cuda_test.h"

using namespace nn_test;

TEST_F(NnCuda, CrossEntropyMatchesCpu)
{
    struct C {
        int64_t n, vocab, den;
        bool in_place;
    };
    for (C k : {C{111, 515, 0, false}, C{111, 515, 1000, true}, C{512, 50257, 0, true}, C{7, 1, 0, false}}) {
        SCOPED_TRACE("n " + std::to_string(k.n) + " vocab " + std::to_string(k.vocab));
        XentIn in{k.n, k.vocab, -100, 0.25f, k.den, k.in_place, true, {}, {}};
        in.logits = rnd((size_t)(k.n * k.vocab), 71, -8.0f, 8.0f);
        in.targets = rnd_ids((size_t)k.n, 72, 0, (int32_t)k.vocab);
        for (int64_t i = 0; i < k.n; i += 4) in.targets[(size_t)i] = -100;  // masked prompt tokens
        XentOut ref, got, again;
        run_xent(cpu.get(), in, &ref);
        run_xent(gpu.get(), in, &got);
        EXPECT_EQ(got.n_valid, ref.n_valid);
        // loss: fp32 lse over V terms vs fp64 (|lse| ≲ 20 here): ~1e-6 absolute, then the mean.
        EXPECT_NEAR(got.loss, ref.loss, 1e-5 * std::max(1.0f, std::fabs(ref.loss)));
        EXPECT_TRUE(close("losses", got.losses, ref.losses, fp32_reorder_tol));
        // dlogits: fp32 expf of identical inputs and fp32 lse, one bf16 rounding.
        EXPECT_TRUE(close("dlogits", got.dlogits, ref.dlogits, bf16_out_tol));
        run_xent(gpu.get(), in, &again);
        EXPECT_EQ(got.loss, again.loss);
        EXPECT_EQ(got.dlogits_raw, again.dlogits_raw);  // including the untouched padding columns
    }
}

TEST_F(NnCuda, CrossEntropyBadTargetGivesNaN)
{
    XentIn in{4, 9, -100, 1.0f, 0, false, true, rnd(36, 81), {1, 9, -100, 2}};
    XentOut got;
    run_xent(gpu.get(), in, &got);
    EXPECT_TRUE(std::isnan(got.loss));
    EXPECT_TRUE(std::isnan(got.dlogits[9]));
    EXPECT_EQ(got.dlogits[18], 0.0f);
    EXPECT_TRUE(std::isfinite(got.dlogits[0]));
}

TEST_F(NnCuda, AdamwIsBitIdenticalToCpu)
{
    const size_t n = 100003;
    std::vector<float> pc = random_vec(n, 91), mc(n, 0.0f), vc(n, 0.0f);
    std::vector<float> pg = pc, mg = mc, vg = vc;
    for (int64_t step = 1; step <= 5; step++) {
        const std::vector<float> g = random_vec(n, 92 + (uint64_t)step, -3.0f, 3.0f);
        const AdamIn h{3e-4 * (double)step, 0.9, 0.999, 1e-8, 0.01, 0.7f, step};
        std::vector<float> copy_c, copy_g;
        run_adamw(cpu.get(), h, pc, g, mc, vc, &copy_c);
        run_adamw(gpu.get(), h, pg, g, mg, vg, &copy_g);
        // Same fp32 operations in the same order, rounded to nearest (explicit __f*_rn on the GPU,
        // no FMA contraction in C11 on the CPU): the states must agree bit for bit.
        ASSERT_EQ(0, std::memcmp(pc.data(), pg.data(), n * 4)) << "step " << step;
        ASSERT_EQ(0, std::memcmp(mc.data(), mg.data(), n * 4)) << "step " << step;
        ASSERT_EQ(0, std::memcmp(vc.data(), vg.data(), n * 4)) << "step " << step;
        EXPECT_EQ(copy_g, round_bf16(pg));  // the bf16 copy is the rounded master
    }
}

TEST_F(NnCuda, GradNormMatchesCpuAndIsDeterministic)
{
    for (size_t n : {(size_t)1, (size_t)1000, (size_t)124439808 / 16}) {  // up to a 7.8M-parameter flat buffer
        const std::vector<float> g = random_vec(n, 101, -1e-2f, 1e-2f);
        const float c = run_grad_norm(cpu.get(), g), a = run_grad_norm(gpu.get(), g), b = run_grad_norm(gpu.get(), g);
        // fp64 sums in another order, one fp32 rounding of the sqrt: at most an ulp or two apart.
        EXPECT_NEAR(a, c, 4e-7 * c) << n;
        EXPECT_EQ(a, b);
    }
    std::vector<float> bad = random_vec(5000, 102);
    bad[4999] = INFINITY;
    EXPECT_TRUE(std::isinf(run_grad_norm(gpu.get(), bad)));
}
