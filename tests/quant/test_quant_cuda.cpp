// test_quant_cuda.cpp — the CUDA quantization ops against the CPU reference: quantize and dequantize
// bit for bit (every format, block size, DQ, input dtype, leading dimension, the bitsandbytes
// fixtures with their zero / subnormal / tie blocks); the fused GEMV, the dequantize-then-GEMM
// path and the LLM.int8 product within stated tolerances; LoRA forward / backward with NF4,
// NF4-DQ, FP4 and int8 W0; outliers taken and not taken; non-finite weights; determinism; CUDA
// graph capture; guard regions after every buffer. Every test skips without a CUDA device.
#include "quant_test_util.h"

#include <cuda_runtime_api.h>

#include <tuple>

using namespace culora_test;

namespace {

std::vector<float> randn(size_t n, uint64_t seed, float scale)
{
    std::mt19937_64 g(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (auto &x : v) x = nd(g);
    return v;
}

// bf16 outputs against the fp32 CPU backend: bf16_lora_tol (tests/common/test_util.h) says why.

struct Ctxs {
    CtxPtr cpu = make_ctx(CULORA_BACKEND_CPU);
    CtxPtr gpu = make_ctx(CULORA_BACKEND_CUDA);
    bool ok() const { return cpu && gpu; }
};

class QuantCuda : public CudaTest {};

::testing::AssertionResult same_buffers(const QBufs &a, const QBufs &b)
{
    auto x = a.download(), y = b.download();
    for (auto &[name, bytes] : x) {
        if (y[name].size() != bytes.size()) return ::testing::AssertionFailure() << name << ": sizes differ";
        auto r = same_bytes(name.c_str(), y[name].data(), bytes.data(), bytes.size());
        if (!r) return r;
    }
    return ::testing::AssertionSuccess();
}

}  // namespace

// ---- quantize / dequantize: bit for bit ---------------------------------------------------------

TEST_F(QuantCuda, QuantizeAndDequantizeAreBitIdenticalToCpu)
{
    Ctxs c;
    ASSERT_TRUE(c.ok());
    struct Shape {
        int64_t rows, cols;
    };
    // [4,96]: blocks straddle rows (bs 32/64/128); [40, 512] at bs 32: 640 blocks, 3 nested blocks
    // (the last partial); [3, 88]: cols % 8 != 0 takes the scalar-store dequant path.
    const Shape shapes[] = {{4, 96}, {40, 512}, {3, 88}, {16, 256}};
    int checked = 0;
    for (const Shape s : shapes)
        for (int32_t fmt : {CULORA_QUANT_NF4, CULORA_QUANT_FP4, CULORA_QUANT_INT8})
            for (int32_t bs : {32, 64, 128, 256})
                for (bool dq : {false, true}) {
                    if (fmt == CULORA_QUANT_INT8 && (dq || bs != 64)) continue;
                    if (fmt != CULORA_QUANT_INT8 && (s.rows * s.cols) % bs) continue;
                    SCOPED_TRACE(std::string(culora_quant_format_name(fmt)) + (dq ? "-dq" : "") + " bs " +
                                 std::to_string(bs) + " [" + std::to_string(s.rows) + "," + std::to_string(s.cols) + "]");
                    const auto d = make_qdesc(fmt, s.rows, s.cols, bs, dq);
                    auto w = randn((size_t)(s.rows * s.cols), 100 + (uint64_t)checked, 0.05f);
                    w[3] = 0.0f;
                    for (int i = 0; i < std::min<int64_t>(bs, s.rows * s.cols); i++) w[(size_t)i] *= 1e-39f;  // subnormals
                    for (bool bf16 : {false, true})
                        for (int64_t pad : {0, 5}) {
                            auto qc = quantize_on(c.cpu.get(), d, w, bf16, pad);
                            auto qg = quantize_on(c.gpu.get(), d, w, bf16, pad);
                            EXPECT_TRUE(same_buffers(*qc, *qg)) << "bf16 input " << bf16 << " pad " << pad;
                            EXPECT_TRUE(qg->guards_intact());
                        }
                    auto qc = quantize_on(c.cpu.get(), d, w);
                    auto qg = quantize_on(c.gpu.get(), d, w);
                    for (culora_dtype odt : {CULORA_DTYPE_F32, CULORA_DTYPE_BF16})
                        for (int64_t pad : {0, 3, 8}) {
                            auto a = dequantize_on(c.cpu.get(), *qc, odt, pad), b = dequantize_on(c.gpu.get(), *qg, odt, pad);
                            ASSERT_EQ(a.size(), b.size());
                            EXPECT_TRUE(same_floats("dequant", b.data(), a.data(), a.size())) << "out dtype " << odt << " pad " << pad;
                        }
                    checked++;
                }
    EXPECT_GT(checked, 20);
}

TEST_F(QuantCuda, BitsandbytesFixturesQuantizeToTheSameBytes)
{
    auto gpu = make_ctx(CULORA_BACKEND_CUDA);
    ASSERT_TRUE(gpu);
    struct F {
        const char *file;
        int32_t fmt, bs;
        bool dq;
        const char *packed, *absmax;
    } files[] = {
        {"nf4_bs64.safetensors", CULORA_QUANT_NF4, 64, false, "packed", "absmax"},
        {"nf4_bs32.safetensors", CULORA_QUANT_NF4, 32, false, "packed", "absmax"},
        {"fp4_bs128.safetensors", CULORA_QUANT_FP4, 128, false, "packed", "absmax"},
        {"nf4_dq_bs64.safetensors", CULORA_QUANT_NF4, 64, true, "packed", "absmax_q"},
        {"fp4_dq_bs32.safetensors", CULORA_QUANT_FP4, 32, true, "packed", "absmax_q"},
        {"int8_rowwise.safetensors", CULORA_QUANT_INT8, 64, false, "cb", "scb"},
    };
    for (const F &f : files) {
        SCOPED_TRACE(f.file);
        Fixture fx(f.file);
        ASSERT_TRUE(fx.ok());
        auto shape = fx.shape("input");
        auto q = quantize_on(gpu.get(), make_qdesc(f.fmt, shape[0], shape[1], f.bs, f.dq), fx.floats("input"));
        auto got = q->download();
        auto packed = fx.bytes(f.packed), absmax = fx.bytes(f.absmax);
        EXPECT_TRUE(same_bytes("codes", got["data"].data(), packed.data(), packed.size()));
        const std::string am = f.dq ? "absmax_q" : "absmax";
        EXPECT_TRUE(same_bytes("absmax", got[am].data(), absmax.data(), absmax.size()));
        if (f.dq) {
            auto nested = fx.bytes("nested_absmax"), offset = fx.bytes("offset"), code = fx.bytes("nested_code");
            EXPECT_TRUE(same_bytes("nested_absmax", got["nested_absmax"].data(), nested.data(), nested.size()));
            EXPECT_TRUE(same_bytes("offset", got["offset"].data(), offset.data(), offset.size()));
            EXPECT_TRUE(same_bytes("nested_code", got["nested_code"].data(), code.data(), code.size()));
        }
        auto deq = dequantize_on(gpu.get(), *q);
        auto want = fx.floats("dequant");
        EXPECT_TRUE(same_floats("dequant", deq.data(), want.data(), want.size()));
    }
}

TEST_F(QuantCuda, NonFiniteWeightsAreReportedWithTheirPosition)
{
    auto gpu = make_ctx(CULORA_BACKEND_CUDA);
    ASSERT_TRUE(gpu);
    for (int32_t fmt : {CULORA_QUANT_NF4, CULORA_QUANT_INT8})
        for (float bad : {NAN, INFINITY}) {
            auto w = randn(4 * 64, 3, 1.0f);
            w[2 * 64 + 9] = bad;
            w[3 * 64 + 1] = bad;  // the first one is reported
            culora_status s = CULORA_OK;
            quantize_on(gpu.get(), make_qdesc(fmt, 4, 64, 64, fmt == CULORA_QUANT_NF4), w, true, 0, &s);
            EXPECT_EQ(s, CULORA_ERR_INVALID_ARG);
            EXPECT_NE(std::string(culora_context_last_error(gpu.get())).find("w[2,9] is not finite"), std::string::npos)
                << culora_context_last_error(gpu.get());
        }
}

// ---- frozen linear: GEMV, dequantize + GEMM, LLM.int8 ----------------------------------------

namespace {

// y = x·Wᵀ + bias on ctx (x bf16-representable), returned as fp32.
std::vector<float> frozen_forward(culora_context *ctx, const QBufs &q, int64_t m, const std::vector<float> &x,
                                  const std::vector<float> &bias, int64_t x_offset_elems = 0)
{
    const culora_quant_desc &d = q.desc();
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    const size_t es = culora_dtype_size(dt);
    const int64_t al = dt == CULORA_DTYPE_F32 ? 1 : 8, ldx = round_up(d.cols, al), ldy = round_up(d.rows, al);
    Buf bx(ctx, (size_t)(m * ldx + x_offset_elems) * es), by(ctx, (size_t)(m * ldy) * es), bb(ctx, (size_t)d.rows * es);
    auto xh = pack_matrix(ctx, x, m, d.cols, ldx);
    std::vector<uint8_t> xs((size_t)x_offset_elems * es, 0);
    xs.insert(xs.end(), xh.begin(), xh.end());
    bx.upload(xs.data(), xs.size());
    bb.upload(pack_matrix(ctx, bias, 1, d.rows, d.rows).data(), bb.bytes());
    size_t wsb = 0;
    EXPECT_EQ(culora_quant_linear_workspace_size(ctx, &d, m, &wsb), CULORA_OK);
    Buf ws(ctx, wsb + (dt == CULORA_DTYPE_F32 ? 0 : ((size_t)4 << 20)));
    const void *xp = (const char *)bx.ptr() + (size_t)x_offset_elems * es;
    EXPECT_EQ(culora_quant_linear_forward(ctx, &d, q.w(), m, xp, ldx, bb.ptr(), by.ptr(), ldy, ws.ptr(), ws.bytes(), nullptr),
              CULORA_OK)
        << culora_context_last_error(ctx);
    EXPECT_EQ(culora_synchronize(ctx, nullptr), CULORA_OK);
    for (const Buf *b : {&bx, &by, &bb, &ws}) EXPECT_TRUE(b->guard_intact("frozen linear buffer"));
    std::vector<uint8_t> raw(by.bytes());
    by.download(raw.data(), raw.size());
    return unpack_matrix(raw, dt, m, d.rows, ldy);
}

}  // namespace

TEST_F(QuantCuda, FrozenLinearMatchesCpuOnEveryPath)
{
    Ctxs c;
    ASSERT_TRUE(c.ok());
    struct P {
        int32_t fmt;
        bool dq;
        int64_t m, n, k;
        int64_t x_offset;  // elements: 0 keeps x 16-byte aligned (GEMV), 4 breaks it (dequant path)
    } cases[] = {
        {CULORA_QUANT_NF4, false, 1, 4096, 4096, 0},  // fused GEMV at a real shape
        {CULORA_QUANT_NF4, true, 1, 1000, 1024, 0},   // GEMV, DQ, rows not a multiple of 4 warps
        {CULORA_QUANT_FP4, false, 1, 96, 320, 0},     // GEMV, fp4
        {CULORA_QUANT_NF4, true, 1, 96, 320, 4},      // misaligned x: dequantize + GEMM
        {CULORA_QUANT_NF4, false, 1, 56, 72, 0},      // cols % 32 != 0 (56·72 = 63 blocks of 64): dequantize + GEMM
        {CULORA_QUANT_NF4, true, 37, 200, 512, 0},    // m > 1: dequantize + GEMM
        {CULORA_QUANT_INT8, false, 37, 200, 512, 0},  // LLM.int8, no outliers
        {CULORA_QUANT_INT8, false, 1, 256, 1024, 0},  // LLM.int8, one row
    };
    for (const P &p : cases) {
        SCOPED_TRACE(std::string(culora_quant_format_name(p.fmt)) + (p.dq ? "-dq" : "") + " m " + std::to_string(p.m) +
                     " n " + std::to_string(p.n) + " k " + std::to_string(p.k) + " x+" + std::to_string(p.x_offset));
        const auto d = make_qdesc(p.fmt, p.n, p.k, 64, p.dq);
        auto w = randn((size_t)(p.n * p.k), 21, 0.02f);
        auto x = round_bf16(randn((size_t)(p.m * p.k), 22, 1.0f));
        auto bias = round_bf16(randn((size_t)p.n, 23, 0.1f));
        auto qc = quantize_on(c.cpu.get(), d, w), qg = quantize_on(c.gpu.get(), d, w);
        auto ref = to_double(frozen_forward(c.cpu.get(), *qc, p.m, x, bias));
        auto got = frozen_forward(c.gpu.get(), *qg, p.m, x, bias, p.x_offset);
        // One bf16 rounding of y (2^-9 relative), the bf16 W of the dequant path (2^-9 per term,
        // averaging down over k) and fp32 summation order (~1e-6): 2^-7 leaves headroom.
        EXPECT_TRUE(all_close("y", got, ref, bf16_lora_tol(ref)));
    }
}

TEST_F(QuantCuda, Int8OutlierColumnsTakenAndNotTaken)
{
    Ctxs c;
    ASSERT_TRUE(c.ok());
    const int64_t m = 40, n = 96, k = 256;
    auto w = randn((size_t)(n * k), 31, 0.05f);
    auto x = round_bf16(randn((size_t)(m * k), 32, 1.0f));
    for (auto &v : x) v = std::max(-5.0f, std::min(5.0f, v));
    auto bias = round_bf16(randn((size_t)n, 33, 0.1f));
    auto xo = x;
    xo[(size_t)(3 * k + 17)] = 9.0f;     // outlier column 17
    xo[(size_t)(30 * k + 200)] = -6.0f;  // |x| >= 6: column 200 too
    for (float t : {6.0f, 0.0f}) {
        const auto d = make_qdesc(CULORA_QUANT_INT8, n, k, 0, false, t);
        auto qc = quantize_on(c.cpu.get(), d, w), qg = quantize_on(c.gpu.get(), d, w);
        for (const auto *xin : {&x, &xo}) {
            auto ref = to_double(frozen_forward(c.cpu.get(), *qc, m, *xin, bias));
            auto got = frozen_forward(c.gpu.get(), *qg, m, *xin, bias);
            // Same int8 codes and int32 sums on both sides; the epilogue differs in FMA use and
            // the bf16 output rounding only.
            EXPECT_TRUE(all_close(xin == &x ? "no outliers" : "outliers", got, ref, bf16_lora_tol(ref))) << "t " << t;
        }
    }
}

// ---- LoRA with a quantized W0 -------------------------------------------------------------------

namespace {

struct QCase {
    LoraCase c;
    int32_t fmt;
    bool dq;
};

void PrintTo(const QCase &p, std::ostream *os) { *os << culora_quant_format_name(p.fmt) << (p.dq ? "dq_" : "_") << case_name(p.c); }

class QuantLoraCudaVsCpu : public CudaTest, public ::testing::WithParamInterface<QCase> {};

}  // namespace

TEST_P(QuantLoraCudaVsCpu, AllOutputsMatch)
{
    const QCase p = GetParam();
    const LoraCase c = p.c;
    Ctxs ctx;
    ASSERT_TRUE(ctx.ok());
    LoraData in = make_data(c, 301, /*bf16_inputs=*/true);
    std::fill(in.da0.begin(), in.da0.end(), 0.0f);
    std::fill(in.db0.begin(), in.db0.end(), 0.0f);
    const bool t = (c.flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    const auto stored = t ? transpose(in.w0, c.d, c.k) : in.w0;
    const auto d = make_qdesc(p.fmt, t ? c.k : c.d, t ? c.d : c.k, 64, p.dq);
    auto qc = quantize_on(ctx.cpu.get(), d, stored), qg = quantize_on(ctx.gpu.get(), d, stored);
    EXPECT_TRUE(same_buffers(*qc, *qg));
    LoraOut ref = run_quant_lora(ctx.cpu.get(), c, in, *qc);
    LoraOut got = run_quant_lora(ctx.gpu.get(), c, in, *qg);
    for (auto [name, g, r] : {std::tuple{"v", &got.v, &ref.v}, std::tuple{"y", &got.y, &ref.y},
                              std::tuple{"du", &got.du, &ref.du}, std::tuple{"dx", &got.dx, &ref.dx},
                              std::tuple{"dB", &got.db, &ref.db}}) {
        std::vector<double> rd = to_double(*r);
        EXPECT_TRUE(all_close(name, *g, rd, bf16_lora_tol(rd)));
    }
    if (!(c.flags & CULORA_LORA_FREEZE_A)) {
        std::vector<double> rd = to_double(ref.da);
        EXPECT_TRUE(all_close("dA", got.da, rd, bf16_lora_tol(rd)));
    }
}

static std::vector<QCase> lora_cases()
{
    const LoraCase cs[] = {
        {37, 128, 96, 3, 16.0f, 0.0f, 0, true, 1, 0},                                        // ragged m and r
        {37, 128, 96, 3, 16.0f, 0.1f, CULORA_LORA_RSLORA | CULORA_LORA_ACCUMULATE_DX, false, 2, 7},
        {37, 128, 96, 3, 16.0f, 0.0f, CULORA_LORA_W0_TRANSPOSED | CULORA_LORA_FREEZE_A, true, 3, 0},
        {1, 1024, 512, 16, 32.0f, 0.0f, 0, true, 4, 0},                                     // batch 1: fused GEMV
        {1, 1024, 512, 16, 32.0f, 0.1f, 0, false, 5, 1},                                    // batch 1, dropout
        {512, 1024, 1024, 16, 32.0f, 0.0f, 0, false, 6, 0},                                 // training-size
    };
    std::vector<QCase> out;
    for (const auto &c : cs) {
        out.push_back({c, CULORA_QUANT_NF4, true});
        out.push_back({c, CULORA_QUANT_NF4, false});
        if (c.m == 37 && c.flags == 0) out.push_back({c, CULORA_QUANT_FP4, false});
        if (!(c.flags & CULORA_LORA_W0_TRANSPOSED)) out.push_back({c, CULORA_QUANT_INT8, false});
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, QuantLoraCudaVsCpu, ::testing::ValuesIn(lora_cases()), [](const auto &info) {
    std::ostringstream s;
    PrintTo(info.param, &s);
    return s.str();
});

TEST_F(QuantCuda, LoraWithQuantizedW0IsBitIdenticalAcrossRuns)
{
    auto gpu = make_ctx(CULORA_BACKEND_CUDA);
    ASSERT_TRUE(gpu);
    for (int32_t fmt : {CULORA_QUANT_NF4, CULORA_QUANT_INT8})
        for (int64_t m : {1, 256}) {
            LoraCase c{m, 512, 384, 8, 16.0f, 0.1f, 0, true, 9, 0};
            LoraData in = make_data(c, 311, true);
            in.x[5] = 7.5f;  // an int8 outlier column
            auto q = quantize_on(gpu.get(), make_qdesc(fmt, c.d, c.k, 64, fmt == CULORA_QUANT_NF4), in.w0);
            LoraOut a = run_quant_lora(gpu.get(), c, in, *q), b = run_quant_lora(gpu.get(), c, in, *q);
            EXPECT_EQ(a.y, b.y);
            EXPECT_EQ(a.dx, b.dx);
            EXPECT_EQ(a.da, b.da);
            EXPECT_EQ(a.db, b.db);
        }
}

TEST_F(QuantCuda, ForwardCapturesIntoACudaGraph)
{
    // The forward paths only enqueue (the int8 outlier count stays on the device): a capture
    // replays to the same bits as the direct call.
    cudaStream_t user = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&user, cudaStreamNonBlocking), cudaSuccess);
    CtxPtr gpu = make_ctx(CULORA_BACKEND_CUDA, 0, (culora_stream)user);
    ASSERT_TRUE(gpu);
    for (int32_t fmt : {CULORA_QUANT_NF4, CULORA_QUANT_INT8})
        for (int64_t m : {1, 64}) {
            const int64_t n = 256, k = 512;
            const auto d = make_qdesc(fmt, n, k, 64, fmt == CULORA_QUANT_NF4);
            auto q = quantize_on(gpu.get(), d, randn((size_t)(n * k), 41, 0.05f));
            auto x = randn((size_t)(m * k), 42, 1.0f);
            x[7] = 8.0f;
            Buf bx(gpu.get(), (size_t)(m * k) * 2), by(gpu.get(), (size_t)(m * n) * 2);
            bx.upload(pack_matrix(gpu.get(), x, m, k, k).data(), bx.bytes());
            size_t wsb = 0;
            ASSERT_EQ(culora_quant_linear_workspace_size(gpu.get(), &d, m, &wsb), CULORA_OK);
            Buf ws(gpu.get(), wsb + ((size_t)4 << 20));
            ASSERT_EQ(culora_quant_linear_forward(gpu.get(), &d, q->w(), m, bx.ptr(), k, nullptr, by.ptr(), n, ws.ptr(),
                                                  ws.bytes(), nullptr),
                      CULORA_OK);
            std::vector<uint8_t> direct(by.bytes()), replay(by.bytes());
            by.download(direct.data(), direct.size());
            cudaGraph_t graph = nullptr;
            cudaGraphExec_t exec = nullptr;
            ASSERT_EQ(cudaStreamBeginCapture(user, cudaStreamCaptureModeThreadLocal), cudaSuccess);
            culora_status s = culora_quant_linear_forward(gpu.get(), &d, q->w(), m, bx.ptr(), k, nullptr, by.ptr(), n,
                                                          ws.ptr(), ws.bytes(), (culora_stream)user);
            ASSERT_EQ(cudaStreamEndCapture(user, &graph), cudaSuccess);
            ASSERT_EQ(s, CULORA_OK) << culora_context_last_error(gpu.get());
            ASSERT_EQ(culora_memset(gpu.get(), by.ptr(), 0xFF, by.bytes(), nullptr), CULORA_OK);
            ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
            ASSERT_EQ(cudaGraphLaunch(exec, user), cudaSuccess);
            ASSERT_EQ(cudaStreamSynchronize(user), cudaSuccess);
            by.download(replay.data(), replay.size());
            EXPECT_EQ(direct, replay) << culora_quant_format_name(fmt) << " m " << m;
            cudaGraphExecDestroy(exec);
            cudaGraphDestroy(graph);
        }
    gpu.reset();
    cudaStreamDestroy(user);
}
