// test_sgmv_cuda.cpp — the CUDA segmented LoRA kernels (kernels/sgmv.cu) against the CPU
// reference on ragged and real shapes (empty segments, one row, 256 segments, stride 0, ranks that
// span several warps' strides, d beyond one block's threads), with guard regions; determinism.
// Skips without a CUDA device.
#include "sgmv_run.h"

using namespace culora_test;

namespace {

// bf16 outputs against the fp32 CPU backend: bf16_lora_tol (tests/common/test_util.h) says why.

class SgmvCudaVsCpu : public CudaTest, public ::testing::WithParamInterface<SgmvCase> {};

std::vector<int64_t> many_segments()
{
    std::vector<int64_t> l;
    for (int i = 0; i < CULORA_SGMV_MAX_SEGMENTS; i++) l.push_back(i % 7 == 3 ? 0 : 1 + i % 5);
    return l;
}

}  // namespace

TEST_P(SgmvCudaVsCpu, MatchesCpu)
{
    const SgmvCase c = GetParam();
    auto cpu = make_ctx(CULORA_BACKEND_CPU);
    auto gpu = make_ctx(CULORA_BACKEND_CUDA);
    ASSERT_TRUE(cpu && gpu);
    SgmvData s = sgmv_data(c, /*bf16_inputs=*/true);  // both backends see the same values
    std::vector<float> rv, ry, gv, gy;
    sgmv_run(cpu.get(), c, s, 2.0f, rv, ry);
    sgmv_run(gpu.get(), c, s, 2.0f, gv, gy);
    std::vector<double> dv = to_double(rv), dy = to_double(ry);
    EXPECT_TRUE(all_close("v", gv, dv, bf16_lora_tol(dv)));
    EXPECT_TRUE(all_close("y", gy, dy, bf16_lora_tol(dy)));
    // Deterministic: no atomics, fixed reduction order.
    std::vector<float> gv2, gy2;
    sgmv_run(gpu.get(), c, s, 2.0f, gv2, gy2);
    EXPECT_EQ(0, std::memcmp(gy.data(), gy2.data(), gy.size() * 4));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SgmvCudaVsCpu,
    ::testing::Values(SgmvCase{72, 50, 3, {10, 0, 1, 26}, false, 1},        // ragged tails, an empty segment
                      SgmvCase{72, 50, 3, {1}, false, 2},                   // one row
                      SgmvCase{256, 300, 16, {40, 40, 40}, true, 3},        // stride 0; d > 256 threads
                      SgmvCase{1024, 1024, 64, {60, 3, 90, 0, 17}, false, 4},  // r = 64: 16 outputs per warp
                      SgmvCase{200, 96, 8, many_segments(), false, 5},      // 256 segments
                      SgmvCase{4096, 4096, 16, {80, 80, 80, 80}, false, 6}));  // LoraHub-like: 4 × 5 examples × 16

TEST_F(CudaTest, SgmvCudaChecksTheBf16RowGrid)
{
    // The dispatcher's checks run before the kernels: a leading dimension off the bf16 8-element grid.
    auto gpu = make_ctx(CULORA_BACKEND_CUDA);
    ASSERT_TRUE(gpu);
    Buf x(gpu.get(), 16 * 12 * 2), a(gpu.get(), 2 * 16 * 2), b(gpu.get(), 8 * 8 * 2), v(gpu.get(), 16 * 8 * 2),
        y(gpu.get(), 16 * 8 * 2);
    std::vector<int64_t> seg = {0, 16};
    culora_sgmv_args args = {16, 12, 8, 2, 1, seg.data(), 1.0f, x.ptr(), 12, a.ptr(), 16, 0, b.ptr(), 8, 0,
                             v.ptr(), 8, y.ptr(), 8};
    EXPECT_EQ(culora_op_sgmv(gpu.get(), &args, nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(gpu.get())).find("leading dimension of x"), std::string::npos);
}
