// test_embedding_rope.cpp — CPU reference embedding (token + learned position lookup, backward
// '+=' into the tables, repeated ids, bad ids) and RoPE (hand-computed rotation, fp64 reference,
// backward = transpose, in place, per-token positions, caller-given inv_freq).
#include "nn_run.h"

using namespace nn_test;

namespace {

EmbIn make_emb(int64_t n, int64_t c, int64_t vocab, int64_t n_pos, uint64_t seed)
{
    EmbIn in{n, c, vocab, n_pos, {}, {}, {}, {}, {}, {}, {}};
    in.tokens = rnd_ids((size_t)n, seed, 0, (int32_t)vocab);
    if (n >= 4) in.tokens[3] = in.tokens[1] = in.tokens[0];  // repeated ids must accumulate
    if (n_pos > 0) {
        in.pos.resize((size_t)n);
        for (int64_t i = 0; i < n; i++) in.pos[(size_t)i] = (int32_t)(i % n_pos);
    }
    in.wte = rnd((size_t)(vocab * c), seed + 1);
    in.wpe = rnd((size_t)(std::max<int64_t>(n_pos, 1) * c), seed + 2);
    in.dout = rnd((size_t)(n * c), seed + 3);
    in.dwte0 = rnd((size_t)(vocab * c), seed + 4);
    in.dwpe0 = rnd((size_t)(std::max<int64_t>(n_pos, 1) * c), seed + 5);
    return in;
}

}  // namespace

TEST(EmbeddingCpu, LookupAddsPositionsAndBackwardAccumulates)
{
    for (int64_t n_pos : {0, 5}) {
        SCOPED_TRACE(n_pos ? "gpt2 (learned positions)" : "llama (no positions)");
        const int64_t n = 13, c = 7, vocab = 11;
        EmbIn in = make_emb(n, c, vocab, n_pos, 3);
        auto ctx = cpu_ctx();
        ASSERT_TRUE(ctx);
        EmbOut o;
        run_embedding(ctx.get(), in, &o);
        // Forward: a copy (plus one fp32 add): exact up to that add's rounding.
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++) {
                float want = in.wte[(size_t)(in.tokens[i] * c + j)];
                if (n_pos) want += in.wpe[(size_t)(in.pos[i] * c + j)];
                ASSERT_EQ(o.out[(size_t)(i * c + j)], want) << i << "," << j;
            }
        // Backward: dwte = dwte0 + Σ over the rows with that token, in fp64 for the reference.
        dvec want_t = dv(in.dwte0), want_p = dv(in.dwpe0);
        want_p.resize((size_t)(n_pos * c));
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < c; j++) {
                want_t[(size_t)(in.tokens[i] * c + j)] += in.dout[(size_t)(i * c + j)];
                if (n_pos) want_p[(size_t)(in.pos[i] * c + j)] += in.dout[(size_t)(i * c + j)];
            }
        // A few fp32 additions of O(1) values: 1e-6 absolute is ~10 roundings.
        EXPECT_TRUE(all_close("dwte", o.dwte, want_t, Tol{1e-6, 1e-6, -1}));
        if (n_pos) EXPECT_TRUE(all_close("dwpe", o.dwpe, want_p, Tol{1e-6, 1e-6, -1}));
    }
}

TEST(EmbeddingCpu, OutOfRangeIdsGiveNaNRowsAndAreSkippedInBackward)
{
    const int64_t n = 4, c = 3, vocab = 5;
    EmbIn in = make_emb(n, c, vocab, 3, 9);
    in.tokens = {0, 5, -1, 2};  // 5 and -1 are outside [0, 5)
    in.pos = {0, 1, 2, 7};      // 7 is outside [0, 3)
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    EmbOut o;
    run_embedding(ctx.get(), in, &o);
    for (int64_t j = 0; j < c; j++) {
        EXPECT_TRUE(std::isfinite(o.out[(size_t)j]));
        EXPECT_TRUE(std::isnan(o.out[(size_t)(1 * c + j)]));
        EXPECT_TRUE(std::isnan(o.out[(size_t)(2 * c + j)]));
        EXPECT_TRUE(std::isnan(o.out[(size_t)(3 * c + j)]));
    }
    // Row 3's token (2) is valid even though its position is not: its dwte row still gets dout.
    for (int64_t j = 0; j < c; j++) {
        EXPECT_FLOAT_EQ(o.dwte[(size_t)(2 * c + j)], in.dwte0[(size_t)(2 * c + j)] + in.dout[(size_t)(3 * c + j)]);
        EXPECT_FLOAT_EQ(o.dwte[(size_t)(1 * c + j)], in.dwte0[(size_t)(1 * c + j)]);  // untouched
    }
}

// ---- RoPE ----------------------------------------------------------------------------------------------

TEST(RopeCpu, HandComputedRotation)
{
    // D = 4, theta = 10000: inv_freq = [1, 0.01]. Position 1, x = [1 2 3 4]:
    //   j=0: angle 1    → out0 = 1·cos1 − 3·sin1, out2 = 3·cos1 + 1·sin1
    //   j=1: angle 0.01 → out1 = 2·cos.01 − 4·sin.01, out3 = 4·cos.01 + 2·sin.01
    // Position 0 leaves x unchanged.
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    float x[] = {1, 2, 3, 4, 1, 2, 3, 4}, out[8];
    int32_t pos[] = {1, 0};
    culora_nn_rope_args a{2, 1, 4, 10000.0f, nullptr, pos, x, 4, out, 4};
    ASSERT_EQ(culora_nn_rope_fwd(ctx.get(), &a, nullptr), CULORA_OK) << culora_context_last_error(ctx.get());
    const double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.01), s2 = std::sin(0.01);
    EXPECT_NEAR(out[0], 1 * c1 - 3 * s1, 1e-6);
    EXPECT_NEAR(out[1], 2 * c2 - 4 * s2, 1e-6);
    EXPECT_NEAR(out[2], 3 * c1 + 1 * s1, 1e-6);
    EXPECT_NEAR(out[3], 4 * c2 + 2 * s2, 1e-6);
    for (int i = 4; i < 8; i++) EXPECT_EQ(out[i], x[i]);
    float inv[2];
    culora_nn_rope_inv_freq(10000.0f, 4, inv);
    EXPECT_EQ(inv[0], 1.0f);
    EXPECT_FLOAT_EQ(inv[1], 0.01f);
}

namespace {

RopeIn make_rope(int64_t n, int heads, int d, bool own_table, uint64_t seed)
{
    RopeIn in{n, heads, d, 500000.0f, own_table, false, {}, {}, {}};
    // Packed sequences: positions restart (0..9, then 0..), plus a large position.
    in.pos.resize((size_t)n);
    for (int64_t i = 0; i < n; i++) in.pos[(size_t)i] = (int32_t)(i % 10);
    in.pos.back() = 4000;
    in.x = rnd((size_t)(n * heads * d), seed);
    if (own_table) {  // e.g. a rope_scaling variant: any table
        in.table = random_vec((size_t)d / 2, seed + 1, 0.001f, 1.0f);
    }
    return in;
}

}  // namespace

TEST(RopeCpu, MatchesReferenceBackwardIsTransposeAndInPlaceWorks)
{
    for (bool own : {false, true}) {
        SCOPED_TRACE(own ? "caller table" : "theta");
        RopeIn in = make_rope(23, 3, 10, own, 5);
        auto ctx = cpu_ctx();
        ASSERT_TRUE(ctx);
        const std::vector<float> freq = own ? in.table : inv_freq_of(in.theta, in.d);
        const dvec y = ref_rope(dv(in.x), in.pos, in.n, in.heads, in.d, freq);
        const dvec yb = ref_rope(dv(in.x), in.pos, in.n, in.heads, in.d, freq, -1.0);
        std::vector<float> f = run_rope(ctx.get(), in, false), b = run_rope(ctx.get(), in, true);
        EXPECT_TRUE(all_close("fwd", f, y, fp32_tol(y)));
        EXPECT_TRUE(all_close("bwd", b, yb, fp32_tol(yb)));
        in.in_place = true;
        EXPECT_EQ(run_rope(ctx.get(), in, false), f);
        // Backward is the transpose: <R x, w> = <x, Rᵀ w> for random w (finite differences of a
        // linear map are exact, so this is the gradient check).
        const dvec w = dv(rnd(in.x.size(), 77));
        RopeIn win = in;
        win.in_place = false;
        win.x = fv(w);
        std::vector<float> rtw = run_rope(ctx.get(), win, true);
        EXPECT_NEAR(dot(dv(f), w), dot(dv(in.x), dv(rtw)), 1e-4);
    }
}
