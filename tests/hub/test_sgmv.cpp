// test_sgmv.cpp — the CPU reference of the segmented LoRA op against an fp64 computation on
// ragged segments (empty ones, one row, a shared adapter), and the dispatcher's argument checks.
#include "sgmv_run.h"

using namespace culora_test;

namespace {

class SgmvCpu : public ::testing::TestWithParam<SgmvCase> {};

}  // namespace

TEST_P(SgmvCpu, MatchesFp64)
{
    const SgmvCase c = GetParam();
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    SgmvData s = sgmv_data(c, false);
    std::vector<float> v, y;
    sgmv_run(ctx.get(), c, s, 1.75f, v, y);
    std::vector<double> rv, ry;
    sgmv_ref(c, s, 1.75f, rv, ry);
    // fp32 sums of k (then r) products of O(1) values: a few ulps of the sum of |terms|, which is
    // at most ~k·0.3 here; 1e-5 absolute/relative leaves a 10x margin. A wrong segment's adapter
    // or a skipped row is off by O(0.1).
    EXPECT_TRUE(all_close("v", v, rv, Tol{1e-5, 1e-5, 1e-10}));
    EXPECT_TRUE(all_close("y", y, ry, Tol{1e-5, 1e-5, 1e-10}));
}

INSTANTIATE_TEST_SUITE_P(Shapes, SgmvCpu,
                         ::testing::Values(SgmvCase{72, 50, 3, {10, 0, 1, 26}, false, 1},  // ragged, an empty segment
                                           SgmvCase{72, 50, 3, {37}, false, 2},            // one segment
                                           SgmvCase{64, 96, 8, {5, 5, 5, 5}, true, 3},     // stride 0
                                           SgmvCase{33, 17, 5, {0, 7, 0}, false, 4}));     // empty first and last

TEST(SgmvDispatch, RefusesBadArguments)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    std::vector<float> x(40 * 8), a(2 * 2 * 8), b(2 * 6 * 2), v(40 * 2), y(40 * 6);
    std::vector<int64_t> seg = {0, 30, 40};
    culora_sgmv_args ok = {40, 8, 6, 2, 2, seg.data(), 1.0f, x.data(), 8, a.data(), 8, 16, b.data(), 2, 12,
                           v.data(), 2, y.data(), 6};
    ASSERT_EQ(culora_op_sgmv(ctx.get(), &ok, nullptr), CULORA_OK) << culora_context_last_error(ctx.get());
    auto expect_bad = [&](culora_sgmv_args a2, const char *needle) {
        EXPECT_EQ(culora_op_sgmv(ctx.get(), &a2, nullptr), CULORA_ERR_INVALID_ARG) << needle;
        EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find(needle), std::string::npos)
            << culora_context_last_error(ctx.get());
    };
    std::vector<int64_t> short_seg = {0, 30, 39}, back = {0, 41, 40};
    culora_sgmv_args a2 = ok;
    a2.seg = short_seg.data();
    expect_bad(a2, "span");
    a2 = ok;
    a2.seg = back.data();
    expect_bad(a2, "before it starts");
    a2 = ok;
    a2.n_segments = CULORA_SGMV_MAX_SEGMENTS + 1;
    expect_bad(a2, "n_segments");
    a2 = ok;
    a2.y = x.data();
    a2.ldy = 8;
    a2.d = 6;
    expect_bad(a2, "overlaps");
    a2 = ok;
    a2.v = a.data();
    expect_bad(a2, "overlaps");
    // v in spare columns of x's rows (x [40, 8] and v [40, 2] in one [40, 10] buffer) is valid.
    std::vector<float> xv(40 * 10);
    a2 = ok;
    a2.x = xv.data();
    a2.ldx = 10;
    a2.v = xv.data() + 8;
    a2.ldv = 10;
    EXPECT_EQ(culora_op_sgmv(ctx.get(), &a2, nullptr), CULORA_OK) << culora_context_last_error(ctx.get());
    a2.v = xv.data() + 7;  // one column into x
    expect_bad(a2, "overlaps");
    a2 = ok;
    a2.stride_a = -16;
    expect_bad(a2, "stride");
    a2 = ok;
    a2.x = nullptr;
    expect_bad(a2, "x is NULL");
    a2 = ok;
    a2.seg = nullptr;
    expect_bad(a2, "seg is NULL");
    a2 = ok;
    a2.lda = 4;
    expect_bad(a2, "leading dimension of a");
}
