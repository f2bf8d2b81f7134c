// test_cross_entropy.cpp — CPU reference fused softmax + cross-entropy: hand-computed loss and
// gradient, ignore-index (masked prompt tokens), the fp64 reference on ragged vocabularies, the
// gradient against finite differences, in-place dlogits, padded columns untouched, denominators,
// bad targets → NaN.
#include "nn_run.h"

using namespace nn_test;

TEST(CrossEntropyCpu, HandComputedWithIgnoredRow)
{
    // Row 0: logits [0, ln 3], target 1 → p = [1/4, 3/4], loss = ln(4) − ln(3) = 0.2876821.
    // Row 1: target −100 (ignored). Mean over 1 valid row; dlogits row 0 = [1/4, −1/4], row 1 = 0.
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    const float l3 = (float)std::log(3.0);
    float logits[] = {0, l3, 5, -5}, loss = -1, losses[2], dl[4];
    int32_t tgt[] = {1, -100}, nv = -1;
    culora_nn_cross_entropy_args a{2, 2, -100, 1.0f, 0, logits, 2, tgt, &loss, losses, &nv, dl, 2};
    ASSERT_EQ(culora_nn_cross_entropy(ctx.get(), &a, nullptr, 0, nullptr), CULORA_OK)
        << culora_context_last_error(ctx.get());
    EXPECT_NEAR(loss, std::log(4.0 / 3.0), 1e-7);
    EXPECT_EQ(nv, 1);
    EXPECT_NEAR(losses[0], std::log(4.0 / 3.0), 1e-7);
    EXPECT_EQ(losses[1], 0.0f);
    EXPECT_NEAR(dl[0], 0.25f, 1e-7);
    EXPECT_NEAR(dl[1], -0.25f, 1e-7);
    EXPECT_EQ(dl[2], 0.0f);
    EXPECT_EQ(dl[3], 0.0f);
    // Every row ignored: loss 0, n_valid 0, dlogits 0 (no division by zero).
    tgt[0] = -100;
    ASSERT_EQ(culora_nn_cross_entropy(ctx.get(), &a, nullptr, 0, nullptr), CULORA_OK);
    EXPECT_EQ(loss, 0.0f);
    EXPECT_EQ(nv, 0);
    for (float v : dl) EXPECT_EQ(v, 0.0f);
}

namespace {

XentIn make_xent(int64_t n, int64_t vocab, uint64_t seed)
{
    XentIn in{n, vocab, -100, 1.0f, 0, false, true, {}, {}};
    in.logits = rnd((size_t)(n * vocab), seed, -4.0f, 4.0f);
    in.targets = rnd_ids((size_t)n, seed + 1, 0, (int32_t)vocab);
    for (int64_t i = 0; i < n; i += 3) in.targets[(size_t)i] = -100;  // masked prompt tokens
    return in;
}

}  // namespace

TEST(CrossEntropyCpu, MatchesReferenceAndFiniteDifferences)
{
    for (int64_t vocab : {515, 7, 1}) {
        SCOPED_TRACE("vocab " + std::to_string(vocab));
        XentIn in = make_xent(37, vocab, 11);
        in.grad_scale = 0.5f;  // e.g. 1/grad_accum
        auto ctx = cpu_ctx();
        ASSERT_TRUE(ctx);
        XentOut o;
        run_xent(ctx.get(), in, &o);
        const XentRef r = ref_xent(dv(in.logits), in.targets, in.n, vocab, -100, 0.5, 0);
        EXPECT_EQ(o.n_valid, r.n_valid);
        EXPECT_NEAR(o.loss, r.loss, 1e-6 * std::max(1.0, std::fabs(r.loss)));
        EXPECT_TRUE(all_close("losses", o.losses, r.losses, fp32_tol(r.losses)));
        EXPECT_TRUE(all_close("dlogits", o.dlogits, r.dlogits, fp32_tol(r.dlogits)));
        // The gradient is the derivative of grad_scale·(mean loss): central differences on a few rows.
        if (vocab <= 7) {
            auto loss = [&](const dvec &x) { return 0.5 * ref_xent(x, in.targets, in.n, vocab, -100, 1, 0).loss; };
            const dvec g = finite_diff(loss, dv(in.logits));
            EXPECT_TRUE(all_close("dlogits vs fd", o.dlogits, g, fd_tol(g)));
        }
    }
}

TEST(CrossEntropyCpu, InPlaceGivenDenominatorLossOnlyAndPaddingUntouched)
{
    XentIn in = make_xent(13, 515, 21);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    XentOut plain, inplace, den, fwd_only;
    run_xent(ctx.get(), in, &plain);
    in.in_place = true;
    run_xent(ctx.get(), in, &inplace);
    EXPECT_EQ(plain.dlogits, inplace.dlogits);
    EXPECT_EQ(plain.loss, inplace.loss);
    // The padded columns vocab..ld-1 of dlogits keep the NaN bytes they were filled with.
    const int64_t ld = ld_for(in.vocab, 2);
    for (int64_t i = 0; i < in.n; i++)
        for (int64_t j = in.vocab; j < ld; j++) {
            float v;
            std::memcpy(&v, &plain.dlogits_raw[(size_t)((i * ld + j) * 4)], 4);
            ASSERT_TRUE(std::isnan(v)) << i << "," << j;
        }
    // A denominator for a whole accumulated batch (e.g. 100 valid tokens over 4 micro-batches).
    in.in_place = false;
    in.den = 100;
    run_xent(ctx.get(), in, &den);
    const double f = (double)plain.n_valid / 100.0;
    for (size_t i = 0; i < den.dlogits.size(); i++) ASSERT_NEAR(den.dlogits[i], plain.dlogits[i] * f, 1e-8) << i;
    EXPECT_EQ(den.loss, plain.loss);  // the reported loss is always this call's mean
    in.want_grad = false;
    run_xent(ctx.get(), in, &fwd_only);
    EXPECT_EQ(fwd_only.loss, plain.loss);
}

TEST(CrossEntropyCpu, BadTargetGivesNaN)
{
    XentIn in = make_xent(5, 9, 31);
    in.targets = {1, 9, -100, -7, 2};  // 9 and −7 are neither valid nor the ignore index
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    XentOut o;
    run_xent(ctx.get(), in, &o);
    EXPECT_TRUE(std::isnan(o.loss));
    EXPECT_TRUE(std::isnan(o.losses[1]));
    EXPECT_TRUE(std::isnan(o.losses[3]));
    EXPECT_TRUE(std::isfinite(o.losses[0]));
    for (int64_t j = 0; j < 9; j++) {
        EXPECT_TRUE(std::isnan(o.dlogits[(size_t)(9 + j)]));
        EXPECT_TRUE(std::isfinite(o.dlogits[(size_t)j]));
        EXPECT_EQ(o.dlogits[(size_t)(18 + j)], 0.0f);
    }
}
