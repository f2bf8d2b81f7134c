// test_quant_lora_cpu.cpp — the LoRA linear layer with a quantized W0 on the CPU backend:
//   NF4 / FP4 / NF4-DQ: bit-identical to culora_lora_linear_* on the dequantized weight (that is
//     the definition) and within fp32 rounding of the fp64 reference, on ragged shapes, every
//     option (dropout, rsLoRA, LoRA-FA, accumulate dx, W0 transposed, bias);
//   int8: the forward is LLM.int8 (activations quantized), checked against a bound derived from
//     the activation rounding; backward is exactly the dequantized-weight backward.
#include "quant_test_util.h"

using namespace culora_test;

namespace {

CtxPtr cpu() { return make_ctx(CULORA_BACKEND_CPU); }

// As tests/cpu/test_lora_linear_cpu.cpp: fp32 sgemm vs fp64 over K <= 200 products of O(1) terms.
Tol fp32_tol(const std::vector<double> &ref) { return Tol{2e-5 * std::max(rms(ref), 1e-3), 1e-5, 1e-9}; }

struct QCase {
    LoraCase c;
    int32_t format;
    int32_t blocksize;
    bool dq;
};

void PrintTo(const QCase &q, std::ostream *os)
{
    *os << culora_quant_format_name(q.format) << (q.dq ? "dq" : "") << "_bs" << q.blocksize << "_" << case_name(q.c);
}

class QuantLoraCpu : public ::testing::TestWithParam<QCase> {};

// The weight the op sees: W0 as stored ([d,k], or [k,d] when transposed), quantized.
std::unique_ptr<QBufs> quantize_w0(culora_context *ctx, const QCase &p, const LoraData &in)
{
    const bool t = (p.c.flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    const int64_t rows = t ? p.c.k : p.c.d, cols = t ? p.c.d : p.c.k;
    const auto stored = t ? transpose(in.w0, p.c.d, p.c.k) : in.w0;
    return quantize_on(ctx, make_qdesc(p.format, rows, cols, p.blocksize, p.dq), stored);
}

}  // namespace

TEST_P(QuantLoraCpu, EqualsLoraOnTheDequantizedWeight)
{
    const QCase p = GetParam();
    const LoraCase c = p.c;
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    LoraData in = make_data(c, 201, false);
    auto q = quantize_w0(ctx.get(), p, in);
    const bool t = (c.flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    auto wd = dequantize_on(ctx.get(), *q);
    LoraData dq = in;
    dq.w0 = t ? transpose(wd, c.k, c.d) : wd;  // logical [d,k]

    LoraOut got = run_quant_lora(ctx.get(), c, in, *q);
    LoraOut want = run_lora(ctx.get(), c, dq, LoraLayout{});
    for (auto [name, g, w] : {std::tuple{"y", &got.y, &want.y}, std::tuple{"dx", &got.dx, &want.dx},
                              std::tuple{"dA", &got.da, &want.da}, std::tuple{"dB", &got.db, &want.db}})
        EXPECT_EQ(*g, *w) << name << " differs from the unquantized op on the dequantized weight";
    LoraRef ref = ref_lora(c, dq);
    EXPECT_TRUE(all_close("y", got.y, ref.y, fp32_tol(ref.y)));
    EXPECT_TRUE(all_close("v", got.v, ref.v, fp32_tol(ref.v)));
    EXPECT_TRUE(all_close("du", got.du, ref.du, fp32_tol(ref.du)));
    EXPECT_TRUE(all_close("dx", got.dx, ref.dx, fp32_tol(ref.dx)));
    EXPECT_TRUE(all_close("dB", got.db, ref.db, fp32_tol(ref.db)));
    if (!(c.flags & CULORA_LORA_FREEZE_A)) EXPECT_TRUE(all_close("dA", got.da, ref.da, fp32_tol(ref.da)));
    else EXPECT_EQ(got.da, in.da0);
}

static std::vector<QCase> cpu_cases()
{
    std::vector<QCase> out;
    // ragged: m=37, k=96, d=50, r=3 (d·k = 4800 = 150 blocks of 32); transposed [k,d] too
    const LoraCase ragged[] = {
        {37, 96, 50, 3, 16.0f, 0.0f, 0, true, 1, 0},
        {37, 96, 50, 3, 16.0f, 0.1f, CULORA_LORA_RSLORA, false, 2, 7},
        {37, 96, 50, 3, 16.0f, 0.0f, CULORA_LORA_ACCUMULATE_DX | CULORA_LORA_FREEZE_A, true, 3, 0},
        {37, 96, 50, 3, 16.0f, 0.2f, CULORA_LORA_W0_TRANSPOSED, true, 4, 1},
        {1, 96, 50, 3, 16.0f, 0.0f, 0, true, 5, 0},
    };
    for (const auto &c : ragged)
        for (int32_t f : {CULORA_QUANT_NF4, CULORA_QUANT_FP4}) out.push_back({c, f, 32, f == CULORA_QUANT_NF4});
    out.push_back({{64, 256, 192, 16, 32.0f, 0.0f, 0, true, 6, 0}, CULORA_QUANT_NF4, 64, true});
    out.push_back({{64, 256, 192, 16, 32.0f, 0.05f, 0, false, 7, 2}, CULORA_QUANT_NF4, 128, false});
    return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, QuantLoraCpu, ::testing::ValuesIn(cpu_cases()), [](const auto &info) {
    std::ostringstream s;
    PrintTo(info.param, &s);
    return s.str();
});

// int8: y differs from the dequantized-weight y only through the activation quantization, whose
// error per element is at most half a step, sx_i/254, on non-outlier columns (outlier columns are
// exact). So |y_int8 - y_deq| <= (sx_i/254)·Σ_j |Wdq[n,j]| (+ fp32 rounding of both sides).
// The backward uses the dequantized weight: bit-identical to the unquantized op.
TEST(QuantLoraCpuInt8, ForwardWithinActivationRoundingBackwardExact)
{
    auto ctx = cpu();
    ASSERT_TRUE(ctx);
    for (float p : {0.0f, 0.1f}) {
        LoraCase c{37, 96, 50, 3, 16.0f, p, CULORA_LORA_ACCUMULATE_DX, true, 8, 3};
        LoraData in = make_data(c, 211, false);
        in.x[(size_t)(5 * c.k + 11)] = 8.0f;  // one outlier column (11)
        auto q = quantize_on(ctx.get(), make_qdesc(CULORA_QUANT_INT8, c.d, c.k), in.w0);
        auto wd = dequantize_on(ctx.get(), *q);
        LoraData dq = in;
        dq.w0 = wd;
        LoraOut got = run_quant_lora(ctx.get(), c, in, *q);
        LoraOut want = run_lora(ctx.get(), c, dq, LoraLayout{});
        EXPECT_EQ(got.v, want.v) << "v = s·dropout(x)·Aᵀ does not involve W0";
        EXPECT_EQ(got.dx, want.dx);
        EXPECT_EQ(got.da, want.da);
        EXPECT_EQ(got.db, want.db);
        EXPECT_EQ(got.du, want.du);
        for (int64_t i = 0; i < c.m; i++) {
            float sx = 0;
            for (int64_t j = 0; j < c.k; j++)
                if (j != 11) sx = std::max(sx, std::fabs(in.x[(size_t)(i * c.k + j)]));
            for (int64_t n = 0; n < c.d; n++) {
                double l1 = 0;
                for (int64_t j = 0; j < c.k; j++) l1 += std::fabs(wd[(size_t)(n * c.k + j)]);
                const double bound = sx / 254.0 * l1 * (1 + 1e-4) + 1e-5;
                const double err = std::fabs((double)got.y[(size_t)(i * c.d + n)] - want.y[(size_t)(i * c.d + n)]);
                ASSERT_LE(err, bound) << "p " << p << " row " << i << " col " << n;
            }
        }
        EXPECT_NE(got.y, want.y) << "the int8 path must quantize the activations";
    }
}
