// test_lora_linear_cpu.cpp — the CPU reference LoRA linear: hand-computed values, central finite
// differences in fp64, the fp64 reference on ragged shapes and every option, =/+= contracts,
// dropout mask identity between forward and backward, merge/unmerge.
#include "lora_ref.h"

using namespace culora_test;

namespace {

CtxPtr cpu() { return make_ctx(CULORA_BACKEND_CPU); }

// fp32 sgemm against an fp64 reference: each output sums at most K = max(k, d, m) ≤ 200 products
// of O(1) values, so the rounding error is ≲ K·2^-24·|terms| ≈ 1e-5 of the data scale. 2e-5 of
// the RMS plus 1e-5 relative leaves headroom without hiding a wrong term (a wrong term is O(1)).
Tol fp32_tol(const std::vector<double> &ref) { return Tol{2e-5 * std::max(rms(ref), 1e-3), 1e-5, 1e-9}; }

}  // namespace

TEST(LoraLinearCpu, HandComputedExample)
{
    // x [2,3], W0 [2,3], bias [2], A [1,3], B [2,1], alpha 2, r 1 → s = 2.
    //   x·W0ᵀ = [[-2, 2.5], [-2, 7]];  v = s·x·Aᵀ = [[12], [30]];  v·Bᵀ = [[6, -12], [15, -30]]
    //   y = x·W0ᵀ + bias + v·Bᵀ = [[4.1, -9.7], [13.1, -23.2]]
    // With dy = I: du = s·dy·B = [[1], [-2]]; dB = dyᵀ·v = [[12], [30]];
    //   dA = duᵀ·x = [[-7, -8, -9]]; dx = dy·W0 + du·A = [[2, 1, 0], [-1.5, -1, -2]].
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    float x[] = {1, 2, 3, 4, 5, 6}, w[] = {1, 0, -1, 0.5f, 1, 0}, bias[] = {0.1f, -0.2f}, a[] = {1, 1, 1},
          b[] = {0.5f, -1}, v[2], y[4], dy[] = {1, 0, 0, 1}, du[2], dx[6], da[3] = {0, 0, 0}, db[2] = {0, 0};
    culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
    desc.m = 2; desc.k = 3; desc.d = 2; desc.r = 1; desc.alpha = 2.0f; desc.dtype = CULORA_DTYPE_F32;
    culora_lora_linear_fwd_args fa = {x, 3, w, 3, bias, a, 3, b, 1, v, 1, y, 2};
    ASSERT_EQ(culora_lora_linear_forward(ctx.get(), &desc, &fa, nullptr, 0, nullptr), CULORA_OK);
    const float y_want[] = {4.1f, -9.7f, 13.1f, -23.2f};
    for (int i = 0; i < 4; i++) EXPECT_NEAR(y[i], y_want[i], 1e-5) << i;
    EXPECT_FLOAT_EQ(v[0], 12.0f);
    EXPECT_FLOAT_EQ(v[1], 30.0f);
    culora_lora_linear_bwd_args ba = {x, 3, w, 3, a, 3, b, 1, v, 1, dy, 2, du, 1, dx, 3, da, 3, db, 1};
    ASSERT_EQ(culora_lora_linear_backward(ctx.get(), &desc, &ba, nullptr, 0, nullptr), CULORA_OK);
    EXPECT_FLOAT_EQ(du[0], 1.0f);
    EXPECT_FLOAT_EQ(du[1], -2.0f);
    EXPECT_FLOAT_EQ(db[0], 12.0f);
    EXPECT_FLOAT_EQ(db[1], 30.0f);
    const float da_want[] = {-7, -8, -9}, dx_want[] = {2, 1, 0, -1.5f, -1, -2};
    for (int i = 0; i < 3; i++) EXPECT_FLOAT_EQ(da[i], da_want[i]) << i;
    for (int i = 0; i < 6; i++) EXPECT_FLOAT_EQ(dx[i], dx_want[i]) << i;
    // rsLoRA with r = 1: s = alpha/sqrt(1) = 2, same numbers; r = 4 would differ (checked below).
    desc.flags = CULORA_LORA_RSLORA;
    EXPECT_FLOAT_EQ(culora_lora_scaling(&desc), 2.0f);
    desc.r = 4;
    EXPECT_FLOAT_EQ(culora_lora_scaling(&desc), 1.0f);
    desc.flags = 0;
    EXPECT_FLOAT_EQ(culora_lora_scaling(&desc), 0.5f);
}

// ---- finite differences -----------------------------------------------------------------------

class LoraFiniteDiff : public ::testing::TestWithParam<LoraCase> {};

// L = Σ dy ⊙ y(x, A, B). Central differences of L in fp64 with the reference forward (the mask is
// fixed by (seed, offset)) against the CPU backend's fp32 backward: dx, dA, dB.
TEST_P(LoraFiniteDiff, BackwardMatchesCentralDifferences)
{
    LoraCase c = GetParam();
    c.flags &= ~(uint32_t)CULORA_LORA_ACCUMULATE_DX;
    LoraData in = make_data(c, 11, false);
    std::fill(in.da0.begin(), in.da0.end(), 0.0f);
    std::fill(in.db0.begin(), in.db0.end(), 0.0f);
    auto loss = [&](const LoraData &dd) {
        LoraRef r = ref_lora(c, dd);
        double l = 0;
        for (size_t i = 0; i < r.y.size(); i++) l += r.y[i] * dd.dy[i];
        return l;
    };
    const double h = 1e-3;  // L is linear in each of x, A, B separately: the central difference is exact up to rounding
    auto fd = [&](std::vector<float> LoraData::*field) {
        std::vector<double> g((in.*field).size());
        for (size_t i = 0; i < g.size(); i++) {
            LoraData p = in, q = in;
            (p.*field)[i] += (float)h;
            (q.*field)[i] -= (float)h;
            double hp = (double)(p.*field)[i] - (double)(in.*field)[i], hq = (double)(in.*field)[i] - (double)(q.*field)[i];
            g[i] = (loss(p) - loss(q)) / (hp + hq);
        }
        return g;
    };
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    LoraOut out = run_lora(ctx.get(), c, in, LoraLayout{});
    std::vector<double> gx = fd(&LoraData::x), ga = fd(&LoraData::a), gb = fd(&LoraData::b);
    // fp32 backward vs fp64 differences of an fp64 loss: ~K·2^-24 relative error in the backend,
    // ~1e-12/h in the differences; 1e-4 of the gradient's RMS is ≥ 10x both.
    EXPECT_TRUE(all_close("dx", out.dx, gx, Tol{1e-4 * rms(gx), 1e-4, -1}));
    EXPECT_TRUE(all_close("dB", out.db, gb, Tol{1e-4 * rms(gb), 1e-4, -1}));
    if (c.flags & CULORA_LORA_FREEZE_A) {
        for (float v : out.da) EXPECT_EQ(v, 0.0f);  // LoRA-FA: dA untouched
    } else {
        EXPECT_TRUE(all_close("dA", out.da, ga, Tol{1e-4 * rms(ga), 1e-4, -1}));
    }
    // The analytic fp64 reference agrees with the differences too (it is the oracle below).
    LoraRef r = ref_lora(c, in);
    EXPECT_TRUE(all_close("ref dx", std::vector<float>(r.dx.begin(), r.dx.end()), gx, Tol{1e-6 * rms(gx), 1e-6, -1}));
}

INSTANTIATE_TEST_SUITE_P(Shapes, LoraFiniteDiff,
                         ::testing::Values(LoraCase{5, 7, 6, 3, 6.0f, 0.0f, 0, true, 1, 0},
                                           LoraCase{4, 9, 5, 2, 4.0f, 0.3f, 0, false, 77, 5},
                                           LoraCase{3, 6, 8, 4, 8.0f, 0.2f, CULORA_LORA_RSLORA, true, 9, 1},
                                           LoraCase{5, 4, 7, 2, 2.0f, 0.0f, CULORA_LORA_W0_TRANSPOSED, false, 3, 0},
                                           LoraCase{6, 5, 4, 3, 3.0f, 0.5f,
                                                    CULORA_LORA_FREEZE_A | CULORA_LORA_W0_TRANSPOSED, true, 5, 2}),
                         [](const auto &info) { return case_name(info.param); });

// ---- fp64 reference on ragged shapes and every option -----------------------------------------

class LoraCpuVsRef : public ::testing::TestWithParam<LoraCase> {};

TEST_P(LoraCpuVsRef, AllOutputsMatch)
{
    const LoraCase c = GetParam();
    LoraData in = make_data(c, 21, false);
    LoraRef ref = ref_lora(c, in);
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    for (int64_t pad : {0, 3}) {
        LoraOut out = run_lora(ctx.get(), c, in, LoraLayout{false, pad});
        SCOPED_TRACE("pad " + std::to_string(pad));
        EXPECT_TRUE(all_close("v", out.v, ref.v, fp32_tol(ref.v)));
        EXPECT_TRUE(all_close("y", out.y, ref.y, fp32_tol(ref.y)));
        EXPECT_TRUE(all_close("du", out.du, ref.du, fp32_tol(ref.du)));
        EXPECT_TRUE(all_close("dx", out.dx, ref.dx, fp32_tol(ref.dx)));
        EXPECT_TRUE(all_close("dA", out.da, ref.da, fp32_tol(ref.da)));
        EXPECT_TRUE(all_close("dB", out.db, ref.db, fp32_tol(ref.db)));
    }
    // The augmented layout gives the same numbers on the CPU backend.
    LoraOut aug = run_lora(ctx.get(), c, in, LoraLayout{true, 0});
    EXPECT_TRUE(all_close("y (augmented)", aug.y, ref.y, fp32_tol(ref.y)));
    EXPECT_TRUE(all_close("dx (augmented)", aug.dx, ref.dx, fp32_tol(ref.dx)));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LoraCpuVsRef,
    ::testing::Values(LoraCase{37, 72, 50, 3, 16.0f, 0.0f, 0, true, 1, 0},
                      LoraCase{37, 72, 50, 3, 16.0f, 0.1f, CULORA_LORA_ACCUMULATE_DX, false, 2, 9},
                      LoraCase{37, 72, 50, 3, 16.0f, 0.0f, CULORA_LORA_RSLORA | CULORA_LORA_W0_TRANSPOSED, true, 3, 0},
                      LoraCase{17, 33, 65, 8, 8.0f, 0.25f, CULORA_LORA_FREEZE_A | CULORA_LORA_ACCUMULATE_DX, true, 4, 1},
                      LoraCase{1, 40, 24, 1, 1.0f, 0.0f, 0, false, 5, 0},
                      LoraCase{64, 128, 96, 16, 32.0f, 0.05f, 0, true, 6, 123}),
    [](const auto &info) { return case_name(info.param); });

// ---- contracts ----------------------------------------------------------------------------------

TEST(LoraLinearCpu, GradientsAccumulateAndDxAssignsUnlessAsked)
{
    LoraCase c{9, 12, 10, 2, 4.0f, 0.0f, 0, false, 1, 0};
    LoraData in = make_data(c, 31, false);
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    // run_lora pre-fills dx with NaN when not accumulating: every element must be written.
    LoraOut out = run_lora(ctx.get(), c, in, LoraLayout{});
    for (float v : out.dx) ASSERT_TRUE(std::isfinite(v));
    LoraRef ref = ref_lora(c, in);  // includes da0 and db0: dA and dB are '+='
    EXPECT_TRUE(all_close("dA +=", out.da, ref.da, fp32_tol(ref.da)));
    EXPECT_TRUE(all_close("dB +=", out.db, ref.db, fp32_tol(ref.db)));
    c.flags = CULORA_LORA_ACCUMULATE_DX;
    LoraOut acc = run_lora(ctx.get(), c, in, LoraLayout{});
    for (size_t i = 0; i < acc.dx.size(); i++) EXPECT_NEAR(acc.dx[i], out.dx[i] + in.dx0[i], 1e-5) << i;
}

TEST(LoraLinearCpu, DropoutMaskIsTheSameInForwardAndBackward)
{
    // With B chosen so that y's LoRA part isolates v, and dA = duᵀ·xd, a backward that regenerated
    // a different mask than the forward would disagree with the reference built from one mask.
    // Also check v directly against the mask from culora_dropout_keep.
    LoraCase c{6, 16, 5, 2, 2.0f, 0.4f, 0, false, 99, 3};
    LoraData in = make_data(c, 41, false);
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    LoraOut out = run_lora(ctx.get(), c, in, LoraLayout{});
    const double s = ref_scaling(c);
    int dropped = 0;
    for (int64_t i = 0; i < c.m; i++)
        for (int64_t j = 0; j < c.r; j++) {
            double acc = 0;
            for (int64_t t = 0; t < c.k; t++) {
                int keep = culora_dropout_keep(c.seed, c.offset, i * c.k + t, c.p);
                dropped += !keep;
                acc += keep ? in.x[(size_t)(i * c.k + t)] / (1.0 - c.p) * in.a[(size_t)(j * c.k + t)] : 0.0;
            }
            EXPECT_NEAR(out.v[(size_t)(i * c.r + j)], s * acc, 1e-5) << i << "," << j;
        }
    EXPECT_GT(dropped, 0);
    LoraRef ref = ref_lora(c, in);
    EXPECT_TRUE(all_close("dA", out.da, ref.da, fp32_tol(ref.da)));
    EXPECT_TRUE(all_close("dx", out.dx, ref.dx, fp32_tol(ref.dx)));
    // A different offset gives a different mask, hence different outputs.
    LoraCase c2 = c;
    c2.offset = 4;
    LoraOut other = run_lora(ctx.get(), c2, in, LoraLayout{});
    double diff = 0;
    for (size_t i = 0; i < out.v.size(); i++) diff += std::fabs(out.v[i] - other.v[i]);
    EXPECT_GT(diff, 1e-3);
}

TEST(LoraLinearCpu, Deterministic)
{
    LoraCase c{37, 72, 50, 3, 16.0f, 0.1f, 0, true, 1, 0};
    LoraData in = make_data(c, 51, false);
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    LoraOut a = run_lora(ctx.get(), c, in, LoraLayout{}), b = run_lora(ctx.get(), c, in, LoraLayout{});
    EXPECT_EQ(0, std::memcmp(a.y.data(), b.y.data(), a.y.size() * 4));
    EXPECT_EQ(0, std::memcmp(a.dx.data(), b.dx.data(), a.dx.size() * 4));
    EXPECT_EQ(0, std::memcmp(a.da.data(), b.da.data(), a.da.size() * 4));
    EXPECT_EQ(0, std::memcmp(a.db.data(), b.db.data(), a.db.size() * 4));
}

// ---- merge / unmerge ------------------------------------------------------------------------------

TEST(LoraLinearCpu, MergeAddsScaledProductAndUnmergeRestores)
{
    for (uint32_t flags : {0u, (uint32_t)CULORA_LORA_W0_TRANSPOSED, (uint32_t)CULORA_LORA_RSLORA}) {
        LoraCase c{1, 24, 20, 4, 8.0f, 0.0f, flags, false, 1, 0};
        LoraData in = make_data(c, 61, false);
        auto ctx = cpu();
        ASSERT_TRUE(ctx);
        const bool t = (flags & CULORA_LORA_W0_TRANSPOSED) != 0;
        std::vector<float> w = t ? transpose(in.w0, c.d, c.k) : in.w0;
        const std::vector<float> w_orig = w;
        culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
        desc.k = c.k; desc.d = c.d; desc.r = c.r; desc.alpha = c.alpha; desc.flags = flags; desc.dtype = CULORA_DTYPE_F32;
        const int64_t ldw = t ? c.d : c.k;
        ASSERT_EQ(culora_lora_merge(ctx.get(), &desc, w.data(), ldw, in.a.data(), c.k, in.b.data(), c.r, nullptr),
                  CULORA_OK);
        const double s = ref_scaling(c);
        std::vector<double> want(w.size());
        for (int64_t i = 0; i < c.d; i++)
            for (int64_t j = 0; j < c.k; j++) {
                double delta = 0;
                for (int64_t q = 0; q < c.r; q++) delta += (double)in.b[(size_t)(i * c.r + q)] * in.a[(size_t)(q * c.k + j)];
                size_t idx = t ? (size_t)(j * c.d + i) : (size_t)(i * c.k + j);
                want[idx] = (double)w_orig[idx] + s * delta;
            }
        EXPECT_TRUE(all_close("merged W0", w, want, Tol{1e-6, 1e-6, -1}));
        ASSERT_EQ(culora_lora_unmerge(ctx.get(), &desc, w.data(), ldw, in.a.data(), c.k, in.b.data(), c.r, nullptr),
                  CULORA_OK);
        // fp32: W0 + Δ - Δ rounds twice; |Δ| ≲ s·r·|a||b| ≈ 2 here, so each rounding is ≤ 2·2^-24 ≈ 1.2e-7.
        EXPECT_TRUE(all_close("unmerged W0", w, to_double(w_orig), Tol{5e-7, 0, -1}));
    }
}

TEST(LoraLinearCpu, MergedForwardEqualsUnmergedForward)
{
    LoraCase c{11, 24, 20, 4, 8.0f, 0.0f, 0, true, 1, 0};
    LoraData in = make_data(c, 71, false);
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    LoraOut lora = run_lora(ctx.get(), c, in, LoraLayout{});
    culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
    desc.k = c.k; desc.d = c.d; desc.r = c.r; desc.alpha = c.alpha; desc.dtype = CULORA_DTYPE_F32;
    LoraData merged = in;
    ASSERT_EQ(culora_lora_merge(ctx.get(), &desc, merged.w0.data(), c.k, in.a.data(), c.k, in.b.data(), c.r, nullptr),
              CULORA_OK);
    std::fill(merged.b.begin(), merged.b.end(), 0.0f);  // the adapter is now inside W0
    LoraOut plain = run_lora(ctx.get(), c, merged, LoraLayout{});
    EXPECT_TRUE(all_close("merged y", plain.y, to_double(lora.y), Tol{1e-5, 1e-5, -1}));
}
