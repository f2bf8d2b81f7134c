// test_quant_ops.cpp — quantize / dequantize / frozen linear on the CPU backend: layouts, error
// bounds of the formats, leading dimensions and dtypes, the frozen linear against fp64 references,
// and bad input (every check of the dispatchers returns the right status and names the problem).
#include "quant_test_util.h"

using namespace culora_test;

namespace {

CtxPtr cpu() { return make_ctx(CULORA_BACKEND_CPU); }

std::vector<float> randn(size_t n, uint64_t seed, float scale)
{
    std::mt19937_64 g(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (auto &x : v) x = nd(g);
    return v;
}

// Status and message of one call.
::testing::AssertionResult fails_with(culora_context *ctx, culora_status got, culora_status want, const char *needle)
{
    const std::string msg = culora_context_last_error(ctx);
    if (got != want)
        return ::testing::AssertionFailure() << "status " << culora_status_name(got) << ", want "
                                             << culora_status_name(want) << " (" << msg << ")";
    if (msg.find(needle) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << msg << "\" does not mention \"" << needle << "\"";
    return ::testing::AssertionSuccess() << msg;
}

}  // namespace

TEST(QuantLayout, Sizes)
{
    culora_quant_layout l;
    auto d = make_qdesc(CULORA_QUANT_NF4, 4096, 4096, 64, true);
    ASSERT_EQ(culora_quant_layout_get(nullptr, &d, &l), CULORA_OK);
    EXPECT_EQ(l.n_blocks, 262144);
    EXPECT_EQ(l.n_nested_blocks, 1024);
    EXPECT_EQ(l.data_bytes, 8388608u);
    EXPECT_EQ(l.absmax_bytes, 0u);
    EXPECT_EQ(l.absmax_q_bytes, 262144u);
    EXPECT_EQ(l.nested_absmax_bytes, 4096u);
    EXPECT_EQ(l.nested_code_bytes, 1024u);
    EXPECT_EQ(l.offset_bytes, 4u);
    // 0.5 + 1/64 + 4/(64·256) bytes per weight plus the 1 KiB code: QLoRA's 4.127 bits.
    const double bits = 8.0 * (double)(l.data_bytes + l.absmax_q_bytes + l.nested_absmax_bytes) / (4096.0 * 4096.0);
    EXPECT_NEAR(bits, 4.127, 0.001);
    d = make_qdesc(CULORA_QUANT_FP4, 10, 96, 32);  // 960 / 32 = 30 blocks, no DQ
    ASSERT_EQ(culora_quant_layout_get(nullptr, &d, &l), CULORA_OK);
    EXPECT_EQ(l.n_blocks, 30);
    EXPECT_EQ(l.absmax_bytes, 120u);
    EXPECT_EQ(l.absmax_q_bytes, 0u);
    d = make_qdesc(CULORA_QUANT_INT8, 7, 33);
    ASSERT_EQ(culora_quant_layout_get(nullptr, &d, &l), CULORA_OK);
    EXPECT_EQ(l.data_bytes, 231u);
    EXPECT_EQ(l.absmax_bytes, 28u);
    EXPECT_STREQ(culora_quant_format_name(CULORA_QUANT_INT8), "int8");
}

// Round trip error of each format, from the format's definition: a 4-bit value lands on the
// nearest code, so |w - deq| <= absmax · (largest gap between adjacent codes) / 2 (+1 fp32 ulp of
// the product); NF4's largest gap is -0.6961928 - (-1) (bottom), FP4's 1 - 0.6666667. int8:
// |w - deq| <= scb / 254 (half a step of scb/127) plus two fp32 roundings.
TEST(QuantRoundTrip, ErrorWithinHalfTheLargestCodeGap)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    const int64_t rows = 24, cols = 160;
    auto w = randn((size_t)(rows * cols), 5, 0.05f);
    w[17] = 3.0f;  // an outlier block
    for (int32_t fmt : {CULORA_QUANT_NF4, CULORA_QUANT_FP4})
        for (int32_t bs : {32, 64, 128}) {
            if ((rows * cols) % bs) continue;
            const auto d = make_qdesc(fmt, rows, cols, bs);
            auto q = quantize_on(ctx.get(), d, w);
            auto deq = dequantize_on(ctx.get(), *q);
            const float *absmax = q->w()->absmax;
            const double gap = fmt == CULORA_QUANT_NF4 ? 1.0 - 0.6961928009986877 : 1.0 - 2.0 / 3.0;
            for (int64_t e = 0; e < rows * cols; e++) {
                const double am = absmax[e / bs];
                ASSERT_LE(std::fabs((double)w[(size_t)e] - deq[(size_t)e]), am * gap / 2 * (1 + 1e-6) + 1e-30)
                    << culora_quant_format_name(fmt) << " bs " << bs << " e " << e;
            }
        }
    const auto d = make_qdesc(CULORA_QUANT_INT8, rows, cols);
    auto q = quantize_on(ctx.get(), d, w);
    auto deq = dequantize_on(ctx.get(), *q);
    for (int64_t e = 0; e < rows * cols; e++) {
        const double scb = q->w()->absmax[e / cols];
        ASSERT_LE(std::fabs((double)w[(size_t)e] - deq[(size_t)e]), scb / 254 * (1 + 1e-5)) << "int8 e " << e;
    }
}

// Double quantization changes only the absmax; its error is bounded by half a step of the 8-bit
// dynamic code near ±1 (the largest step, 1/128 of the nested absmax ... well under 1%), so the
// dequantized weights stay within the 4-bit bound computed with the decoded absmax.
TEST(QuantRoundTrip, DoubleQuantStaysCloseToPlain)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    const int64_t rows = 64, cols = 320;  // 320 blocks: one full nested block and a partial one
    auto w = randn((size_t)(rows * cols), 6, 0.02f);
    auto plain = quantize_on(ctx.get(), make_qdesc(CULORA_QUANT_NF4, rows, cols, 64), w);
    auto dq = quantize_on(ctx.get(), make_qdesc(CULORA_QUANT_NF4, rows, cols, 64, true), w);
    auto a = dequantize_on(ctx.get(), *plain), b = dequantize_on(ctx.get(), *dq);
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) {
        num += (double)(a[i] - b[i]) * (a[i] - b[i]);
        den += (double)a[i] * a[i];
    }
    EXPECT_LT(num / den, 1e-4) << "relative MSE between plain and double-quantized";
    EXPECT_GT(num, 0.0) << "double quantization must change something";
    // The packed 4-bit codes do not depend on DQ.
    EXPECT_EQ(0, std::memcmp(plain->w()->data, dq->w()->data, (size_t)(rows * cols / 2)));
}

TEST(QuantOps, LeadingDimensionsAndInputDtypesDoNotChangeResults)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    const int64_t rows = 6, cols = 96;
    auto w = round_bf16(randn((size_t)(rows * cols), 7, 1.0f));
    for (int32_t fmt : {CULORA_QUANT_NF4, CULORA_QUANT_FP4, CULORA_QUANT_INT8})
        for (bool dq : {false, true}) {
            if (dq && fmt == CULORA_QUANT_INT8) continue;
            const auto d = make_qdesc(fmt, rows, cols, 32, dq);
            auto ref = quantize_on(ctx.get(), d, w)->download();
            for (auto [bf16, pad] : {std::pair{false, 5}, std::pair{true, 0}, std::pair{true, 3}}) {
                auto got = quantize_on(ctx.get(), d, w, bf16, pad)->download();
                for (auto &[name, bytes] : ref)
                    EXPECT_EQ(bytes, got[name]) << name << " fmt " << fmt << " bf16 " << bf16 << " pad " << pad;
            }
            auto q = quantize_on(ctx.get(), d, w);
            auto dense = dequantize_on(ctx.get(), *q), padded = dequantize_on(ctx.get(), *q, CULORA_DTYPE_F32, 7);
            EXPECT_EQ(dense, padded);
            auto b16 = dequantize_on(ctx.get(), *q, CULORA_DTYPE_BF16, 1);
            EXPECT_EQ(b16, round_bf16(dense)) << "bf16 output is the fp32 value rounded to nearest even";
        }
}

// Blocks may straddle rows when cols is not a multiple of the blocksize (bitsandbytes blocks the
// flattened tensor): [4, 96] with blocksize 64 has blocks [0,64), [64,128) (row 0 tail + row 1
// head), ..., [320,384) (row 3 cols 32..95).
TEST(QuantOps, BlocksFollowTheFlattenedTensor)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    auto w = randn(4 * 96, 8, 1.0f);
    for (int e = 3 * 96; e < 4 * 96; e++) w[(size_t)e] = 0.0f;  // row 3 zero
    w[70] = 10.0f;  // row 0, col 70: block 1, which also holds row 1's first 32 values
    const auto d = make_qdesc(CULORA_QUANT_NF4, 4, 96, 64);
    auto q = quantize_on(ctx.get(), d, w, false, 3);
    ASSERT_NE(q->w()->absmax, nullptr);
    const float *am = q->w()->absmax;
    EXPECT_EQ(am[1], 10.0f);
    float m2 = 0;
    for (int e = 128; e < 192; e++) m2 = std::max(m2, std::fabs(w[(size_t)e]));
    EXPECT_EQ(am[2], m2);
    EXPECT_GT(am[4], 0.0f);  // [256,320): row 2's last 32 values and row 3's first 32 (zeros)
    EXPECT_EQ(am[5], 0.0f);  // [320,384): row 3 only
}

// ---- frozen linear ------------------------------------------------------------------------------

TEST(QuantLinear, FrozenForwardMatchesDequantizedFp64)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    const int64_t m = 5, k = 128, n = 40;
    auto w = randn((size_t)(n * k), 9, 0.1f);
    auto x = randn((size_t)(m * k), 10, 1.0f);
    auto bias = randn((size_t)n, 11, 0.5f);
    for (int32_t fmt : {CULORA_QUANT_NF4, CULORA_QUANT_FP4}) {
        const auto d = make_qdesc(fmt, n, k, 64, fmt == CULORA_QUANT_NF4);
        auto q = quantize_on(ctx.get(), d, w);
        auto wd = dequantize_on(ctx.get(), *q);
        std::vector<double> ref((size_t)(m * n));
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double acc = bias[(size_t)j];
                for (int64_t t = 0; t < k; t++) acc += (double)x[(size_t)(i * k + t)] * wd[(size_t)(j * k + t)];
                ref[(size_t)(i * n + j)] = acc;
            }
        size_t wsb = 0;
        ASSERT_EQ(culora_quant_linear_workspace_size(ctx.get(), &d, m, &wsb), CULORA_OK);
        std::vector<float> ws(wsb / 4 + 1), y((size_t)(m * n));
        ASSERT_EQ(culora_quant_linear_forward(ctx.get(), &d, q->w(), m, x.data(), k, bias.data(), y.data(), n,
                                              ws.data(), wsb, nullptr),
                  CULORA_OK)
            << culora_context_last_error(ctx.get());
        // fp32 sgemm over k = 128 products of O(0.1) terms: ~1e-6 of the RMS; 1e-5 leaves room.
        EXPECT_TRUE(all_close("y", y, ref, Tol{1e-5 * rms(ref), 1e-5, -1}));
    }
}

// Independent fp64 emulation of the LLM.int8 product (docs/kernels/int8.md) on dequantizable data.
static std::vector<double> int8_ref(const std::vector<float> &x, int64_t m, int64_t k, const std::vector<int8_t> &cb,
                                    const std::vector<float> &scb, int64_t n, float t, const std::vector<float> &bias)
{
    std::vector<bool> out((size_t)k, false);
    for (int64_t j = 0; j < k; j++)
        for (int64_t i = 0; i < m; i++) out[(size_t)j] = out[(size_t)j] || (t > 0 && std::fabs(x[(size_t)(i * k + j)]) >= t);
    std::vector<double> y((size_t)(m * n));
    for (int64_t i = 0; i < m; i++) {
        float sx = 0;
        for (int64_t j = 0; j < k; j++)
            if (t == 0 || std::fabs(x[(size_t)(i * k + j)]) < t) sx = std::max(sx, std::fabs(x[(size_t)(i * k + j)]));
        const float s = 127.0f / sx;
        for (int64_t c = 0; c < n; c++) {
            int64_t acc = 0;
            double o = 0;
            for (int64_t j = 0; j < k; j++) {
                const float xv = x[(size_t)(i * k + j)];
                const int8_t wq = cb[(size_t)(c * k + j)];
                if (out[(size_t)j]) o += (double)xv * ((double)wq * scb[(size_t)c] / 127.0);
                else acc += (int64_t)std::nearbyint(xv * s) * wq;
            }
            y[(size_t)(i * n + c)] = (double)acc * sx * scb[(size_t)c] / (127.0 * 127.0) + o + bias[(size_t)c];
        }
    }
    return y;
}

TEST(QuantLinear, Int8ForwardIsLlmInt8WithAndWithoutOutliers)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    const int64_t m = 6, k = 96, n = 20;
    auto w = randn((size_t)(n * k), 12, 0.1f);
    auto x = randn((size_t)(m * k), 13, 1.0f);  // all |x| < 6 with this seed (checked below)
    auto bias = randn((size_t)n, 14, 0.5f);
    for (float v : x) ASSERT_LT(std::fabs(v), 6.0f);
    const auto d6 = make_qdesc(CULORA_QUANT_INT8, n, k, 0, false, 6.0f), d0 = make_qdesc(CULORA_QUANT_INT8, n, k, 0, false, 0.0f);
    auto q = quantize_on(ctx.get(), d6, w);
    std::vector<int8_t> cb((size_t)(n * k));
    std::memcpy(cb.data(), q->w()->data, cb.size());
    std::vector<float> scb(q->w()->absmax, q->w()->absmax + n);
    auto run = [&](const culora_quant_desc &d, const std::vector<float> &xin) {
        size_t wsb = 0;
        EXPECT_EQ(culora_quant_linear_workspace_size(ctx.get(), &d, m, &wsb), CULORA_OK);
        std::vector<float> ws(wsb / 4 + 1), y((size_t)(m * n));
        EXPECT_EQ(culora_quant_linear_forward(ctx.get(), &d, q->w(), m, xin.data(), k, bias.data(), y.data(), n,
                                              ws.data(), wsb, nullptr),
                  CULORA_OK)
            << culora_context_last_error(ctx.get());
        return y;
    };
    // int32 accumulation is exact and the epilogue is three fp32 roundings: 1e-6 relative of
    // the data scale covers them and the fp32 sum over the outlier columns.
    auto tol = [](const std::vector<double> &r) { return Tol{1e-6 * rms(r), 2e-6, -1}; };
    // Not taken: no |x| >= 6, so threshold 6 and threshold 0 are the same computation.
    auto y6 = run(d6, x), y0 = run(d0, x);
    EXPECT_EQ(y6, y0);
    EXPECT_TRUE(all_close("no outliers", y6, int8_ref(x, m, k, cb, scb, n, 6.0f, bias), tol(to_double(y6))));
    // Taken: column 17 holds a 9.0 in one row. With threshold 6 it leaves the int8 product; with
    // threshold 0 the 9.0 becomes row 2's absmax and coarsens every other value of that row.
    auto xo = x;
    xo[(size_t)(2 * k + 17)] = 9.0f;
    auto yo6 = run(d6, xo), yo0 = run(d0, xo);
    auto r6 = int8_ref(xo, m, k, cb, scb, n, 6.0f, bias), r0 = int8_ref(xo, m, k, cb, scb, n, 0.0f, bias);
    EXPECT_TRUE(all_close("outlier column, t=6", yo6, r6, tol(r6)));
    EXPECT_TRUE(all_close("outlier column, t=0", yo0, r0, tol(r0)));
    double diff = 0;
    for (size_t i = 0; i < yo6.size(); i++) diff = std::max(diff, (double)std::fabs(yo6[i] - yo0[i]));
    EXPECT_GT(diff, 1e-3) << "the outlier path must change the result";
    // The decomposition is closer to the exact product with the dequantized weight than plain int8.
    auto wd = dequantize_on(ctx.get(), *q);
    double e6 = 0, e0 = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < n; c++) {
            double exact = bias[(size_t)c];
            for (int64_t j = 0; j < k; j++) exact += (double)xo[(size_t)(i * k + j)] * wd[(size_t)(c * k + j)];
            e6 += std::pow(yo6[(size_t)(i * n + c)] - exact, 2);
            e0 += std::pow(yo0[(size_t)(i * n + c)] - exact, 2);
        }
    EXPECT_LT(e6, e0);
}

// ---- bad input ----------------------------------------------------------------------------------

TEST(QuantBadInput, DescriptorErrorsNameTheProblem)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    culora_quant_layout l;
    auto d = make_qdesc(CULORA_QUANT_NF4, 4, 64, 48);
    EXPECT_TRUE(fails_with(ctx.get(), culora_quant_layout_get(ctx.get(), &d, &l), CULORA_ERR_INVALID_ARG, "blocksize = 48"));
    d = make_qdesc(CULORA_QUANT_NF4, 3, 30, 64);
    EXPECT_TRUE(fails_with(ctx.get(), culora_quant_layout_get(ctx.get(), &d, &l), CULORA_ERR_INVALID_ARG,
                           "not a multiple of blocksize 64"));
    d = make_qdesc(7, 4, 64);
    EXPECT_TRUE(fails_with(ctx.get(), culora_quant_layout_get(ctx.get(), &d, &l), CULORA_ERR_INVALID_ARG, "format = 7"));
    d = make_qdesc(CULORA_QUANT_INT8, 4, 64, 0, true);
    EXPECT_TRUE(fails_with(ctx.get(), culora_quant_layout_get(ctx.get(), &d, &l), CULORA_ERR_INVALID_ARG,
                           "DOUBLE_QUANT applies to 4-bit"));
    d = make_qdesc(CULORA_QUANT_INT8, 4, 64, 0, false, -1.0f);
    EXPECT_TRUE(fails_with(ctx.get(), culora_quant_layout_get(ctx.get(), &d, &l), CULORA_ERR_INVALID_ARG, "threshold"));
    d = make_qdesc(CULORA_QUANT_NF4, 0, 64);
    EXPECT_TRUE(fails_with(ctx.get(), culora_quant_layout_get(ctx.get(), &d, &l), CULORA_ERR_INVALID_ARG, "shape [0,64]"));
    d = make_qdesc(CULORA_QUANT_NF4, 4, 64);
    d.flags = 0x10;
    EXPECT_TRUE(fails_with(ctx.get(), culora_quant_layout_get(ctx.get(), &d, &l), CULORA_ERR_INVALID_ARG, "unknown bits"));
    d = make_qdesc(CULORA_QUANT_NF4, 4, 64);
    d.struct_size = 0;
    EXPECT_TRUE(fails_with(ctx.get(), culora_quant_layout_get(ctx.get(), &d, &l), CULORA_ERR_INVALID_ARG,
                           "CULORA_QUANT_DESC_INIT"));
    d = make_qdesc(CULORA_QUANT_NF4, 4, 64);
    EXPECT_TRUE(fails_with(ctx.get(), culora_quant_layout_get(ctx.get(), &d, nullptr), CULORA_ERR_INVALID_ARG, "out is NULL"));
}

TEST(QuantBadInput, NonFiniteWeightsAreRejectedWithTheirPosition)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    for (int32_t fmt : {CULORA_QUANT_NF4, CULORA_QUANT_INT8})
        for (float bad : {NAN, INFINITY, -INFINITY}) {
            const auto d = make_qdesc(fmt, 4, 64, 64, false);
            auto w = randn(4 * 64, 15, 1.0f);
            w[2 * 64 + 9] = bad;
            culora_status s = CULORA_OK;
            quantize_on(ctx.get(), d, w, false, 0, &s);
            EXPECT_TRUE(fails_with(ctx.get(), s, CULORA_ERR_INVALID_ARG, "w[2,9] is not finite"));
            quantize_on(ctx.get(), d, w, true, 0, &s);  // as bf16
            EXPECT_TRUE(fails_with(ctx.get(), s, CULORA_ERR_INVALID_ARG, "w[2,9] is not finite"));
        }
}

TEST(QuantBadInput, BuffersDtypesWorkspaceAndOverlap)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    auto *c = ctx.get();
    const auto d = make_qdesc(CULORA_QUANT_NF4, 4, 64, 64, true);
    QBufs q(c, d);
    std::vector<float> w(4 * 64, 0.5f);
    size_t need = 0;
    ASSERT_EQ(culora_quantize_workspace_size(c, &d, &need), CULORA_OK);
    ASSERT_GT(need, 0u);
    std::vector<uint8_t> ws(need);
    EXPECT_TRUE(fails_with(c, culora_quantize(c, &d, w.data(), 64, CULORA_DTYPE_F16, q.w(), ws.data(), need, nullptr),
                           CULORA_ERR_INVALID_ARG, "F32 or BF16"));
    EXPECT_TRUE(fails_with(c, culora_quantize(c, &d, nullptr, 64, CULORA_DTYPE_F32, q.w(), ws.data(), need, nullptr),
                           CULORA_ERR_INVALID_ARG, "w is NULL"));
    EXPECT_TRUE(fails_with(c, culora_quantize(c, &d, w.data(), 32, CULORA_DTYPE_F32, q.w(), ws.data(), need, nullptr),
                           CULORA_ERR_INVALID_ARG, "leading dimension of w"));
    EXPECT_TRUE(fails_with(c, culora_quantize(c, &d, w.data(), 64, CULORA_DTYPE_F32, nullptr, ws.data(), need, nullptr),
                           CULORA_ERR_INVALID_ARG, "q is NULL"));
    culora_quant_weight missing = *q.w();
    missing.absmax_q = nullptr;
    EXPECT_TRUE(fails_with(c, culora_quantize(c, &d, w.data(), 64, CULORA_DTYPE_F32, &missing, ws.data(), need, nullptr),
                           CULORA_ERR_INVALID_ARG, "q->absmax_q is NULL"));
    missing = *q.w();
    missing.offset = (float *)((char *)missing.offset + 1);
    EXPECT_TRUE(fails_with(c, culora_quantize(c, &d, w.data(), 64, CULORA_DTYPE_F32, &missing, ws.data(), need, nullptr),
                           CULORA_ERR_INVALID_ARG, "q->offset"));
    EXPECT_TRUE(fails_with(c, culora_quantize(c, &d, w.data(), 64, CULORA_DTYPE_F32, q.w(), ws.data(), need - 1, nullptr),
                           CULORA_ERR_INVALID_ARG, "workspace"));
    culora_quant_weight alias = *q.w();
    alias.data = w.data();  // packed output over the input
    EXPECT_TRUE(fails_with(c, culora_quantize(c, &d, w.data(), 64, CULORA_DTYPE_F32, &alias, ws.data(), need, nullptr),
                           CULORA_ERR_INVALID_ARG, "output data overlaps w"));
    ASSERT_EQ(culora_quantize(c, &d, w.data(), 64, CULORA_DTYPE_F32, q.w(), ws.data(), need, nullptr), CULORA_OK)
        << culora_context_last_error(c);
    std::vector<float> out(4 * 64);
    EXPECT_TRUE(fails_with(c, culora_dequantize(c, &d, q.w(), out.data(), 64, CULORA_DTYPE_F16, nullptr),
                           CULORA_ERR_INVALID_ARG, "out dtype"));
    EXPECT_TRUE(fails_with(c, culora_dequantize(c, &d, q.w(), out.data(), 63, CULORA_DTYPE_F32, nullptr),
                           CULORA_ERR_INVALID_ARG, "leading dimension of out"));
    EXPECT_TRUE(fails_with(c, culora_dequantize(c, &d, q.w(), q.w()->data, 64, CULORA_DTYPE_BF16, nullptr),
                           CULORA_ERR_INVALID_ARG, "output out overlaps data"));
    EXPECT_EQ(culora_dequantize(c, &d, q.w(), out.data(), 64, CULORA_DTYPE_F32, nullptr), CULORA_OK);
    EXPECT_TRUE(fails_with(c, culora_dequantize(nullptr, &d, q.w(), out.data(), 64, CULORA_DTYPE_F32, nullptr),
                           CULORA_ERR_INVALID_ARG, ""));
}

TEST(QuantBadInput, LinearArguments)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    auto *c = ctx.get();
    const int64_t m = 3, k = 64, n = 8;
    const auto d = make_qdesc(CULORA_QUANT_NF4, n, k);
    auto q = quantize_on(c, d, randn((size_t)(n * k), 16, 1.0f));
    std::vector<float> x((size_t)(m * k), 1.0f), y((size_t)(m * n)), ws(1 << 16);
    EXPECT_TRUE(fails_with(c, culora_quant_linear_forward(c, &d, q->w(), 0, x.data(), k, nullptr, y.data(), n, ws.data(),
                                                          ws.size() * 4, nullptr),
                           CULORA_ERR_INVALID_ARG, "m = 0"));
    EXPECT_TRUE(fails_with(c, culora_quant_linear_forward(c, &d, q->w(), m, x.data(), k - 1, nullptr, y.data(), n,
                                                          ws.data(), ws.size() * 4, nullptr),
                           CULORA_ERR_INVALID_ARG, "leading dimension of x"));
    EXPECT_TRUE(fails_with(c, culora_quant_linear_forward(c, &d, q->w(), m, x.data(), k, nullptr, x.data(), n, ws.data(),
                                                          ws.size() * 4, nullptr),
                           CULORA_ERR_INVALID_ARG, "output y overlaps x"));
    EXPECT_TRUE(fails_with(c, culora_quant_linear_forward(c, &d, q->w(), m, x.data(), k, nullptr, y.data(), n, ws.data(),
                                                          16, nullptr),
                           CULORA_ERR_INVALID_ARG, "workspace"));
    // LoRA on a quantized W0: shape agreement, w0 must be NULL, no fused path, int8 not transposed.
    culora_lora_linear_desc ld = CULORA_LORA_LINEAR_DESC_INIT;
    ld.m = m; ld.k = k; ld.d = n + 1; ld.r = 2; ld.alpha = 4; ld.dtype = CULORA_DTYPE_F32;
    size_t f = 0;
    EXPECT_TRUE(fails_with(c, culora_lora_linear_quant_workspace_size(c, &ld, &d, &f, nullptr), CULORA_ERR_INVALID_ARG,
                           "does not match W0 [9,64]"));
    ld.d = n;
    ld.flags = CULORA_LORA_REQUIRE_FUSED;
    EXPECT_TRUE(fails_with(c, culora_lora_linear_quant_workspace_size(c, &ld, &d, &f, nullptr), CULORA_ERR_UNSUPPORTED,
                           "REQUIRE_FUSED"));
    ld.flags = CULORA_LORA_W0_TRANSPOSED;
    const auto di = make_qdesc(CULORA_QUANT_INT8, k, n);
    EXPECT_TRUE(fails_with(c, culora_lora_linear_quant_workspace_size(c, &ld, &di, &f, nullptr), CULORA_ERR_UNSUPPORTED,
                           "int8 W0 with CULORA_LORA_W0_TRANSPOSED"));
    ld.flags = 0;
    std::vector<float> a(2 * k), b(n * 2), v(m * 2);
    culora_lora_linear_fwd_args fa = {x.data(), k, x.data(), k, nullptr, a.data(), k, b.data(), 2, v.data(), 2, y.data(), n};
    EXPECT_TRUE(fails_with(c, culora_lora_linear_quant_forward(c, &ld, &d, q->w(), &fa, ws.data(), ws.size() * 4, nullptr),
                           CULORA_ERR_INVALID_ARG, "args->w0 must be NULL"));
    fa.w0 = nullptr;
    EXPECT_EQ(culora_lora_linear_quant_forward(c, &ld, &d, q->w(), &fa, ws.data(), ws.size() * 4, nullptr), CULORA_OK)
        << culora_context_last_error(c);
    fa.y = a.data();
    EXPECT_TRUE(fails_with(c, culora_lora_linear_quant_forward(c, &ld, &d, q->w(), &fa, ws.data(), ws.size() * 4, nullptr),
                           CULORA_ERR_INVALID_ARG, "output y overlaps a"));
    // v in the spare columns of x's buffer ([x | v], one leading dimension) is a valid layout.
    std::vector<float> xv((size_t)(m * (k + 2)), 1.0f);
    fa = {xv.data(), k + 2, nullptr, 0, nullptr, a.data(), k, b.data(), 2, xv.data() + k, k + 2, y.data(), n};
    EXPECT_EQ(culora_lora_linear_quant_forward(c, &ld, &d, q->w(), &fa, ws.data(), ws.size() * 4, nullptr), CULORA_OK)
        << culora_context_last_error(c);
    fa.v = xv.data() + k - 1;  // one column into x
    EXPECT_TRUE(fails_with(c, culora_lora_linear_quant_forward(c, &ld, &d, q->w(), &fa, ws.data(), ws.size() * 4, nullptr),
                           CULORA_ERR_INVALID_ARG, "output v overlaps x"));
    const auto big = make_qdesc(CULORA_QUANT_INT8, 2, 140000);
    EXPECT_TRUE(fails_with(c, culora_quant_linear_forward(c, &big, q->w(), 1, x.data(), 140000, nullptr, y.data(), 2,
                                                          ws.data(), ws.size() * 4, nullptr),
                           CULORA_ERR_UNSUPPORTED, "int32 accumulator"));
}
