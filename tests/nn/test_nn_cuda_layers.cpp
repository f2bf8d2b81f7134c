// test_nn_cuda_layers.cpp — CUDA vs CPU for the per-token layers: embedding (forward exact,
// backward atomic-free and deterministic), LayerNorm, RMSNorm, bias gradient, RoPE, GELU,
// SwiGLU, residual add, cast; ragged and real (GPT-2 small, LLaMA-like) shapes, guard regions
// after every output (nn_run.h), the CUDA leading-dimension rule. Skips without a GPU.
#include "nn_cuda_test.h"

using namespace nn_test;

namespace {

std::vector<float> bf16_of(const std::vector<float> &v) { return round_bf16(v); }

}  // namespace

// ---- embedding ---------------------------------------------------------------------------------

TEST_F(NnCuda, EmbeddingMatchesCpu)
{
    struct C {
        int64_t n, c, vocab, n_pos;
    };
    for (C k : {C{111, 72, 515, 37}, C{37, 72, 515, 0}, C{2048, 768, 50257, 1024}, C{1024, 2048, 32000, 0}}) {
        SCOPED_TRACE("n " + std::to_string(k.n) + " c " + std::to_string(k.c) + " vocab " + std::to_string(k.vocab));
        EmbIn in{k.n, k.c, k.vocab, k.n_pos, {}, {}, {}, {}, {}, {}, {}};
        in.tokens = rnd_ids((size_t)k.n, 1, 0, (int32_t)std::min<int64_t>(k.vocab, 300));  // many repeated ids
        in.tokens[5] = -1;                                                                  // a bad id: NaN row
        if (k.n_pos) {
            in.pos.resize((size_t)k.n);
            for (int64_t i = 0; i < k.n; i++) in.pos[(size_t)i] = (int32_t)(i % k.n_pos);
        }
        in.wte = rnd((size_t)(k.vocab * k.c), 2);
        in.wpe = rnd((size_t)(std::max<int64_t>(k.n_pos, 1) * k.c), 3);
        in.dout = rnd((size_t)(k.n * k.c), 4);
        in.dwte0 = rnd((size_t)(k.vocab * k.c), 5);
        in.dwpe0 = rnd((size_t)(std::max<int64_t>(k.n_pos, 1) * k.c), 6);
        EmbOut ref, got, again;
        run_embedding(cpu.get(), in, &ref);
        run_embedding(gpu.get(), in, &got);
        // Forward: fp32 e + p rounded once on both sides: bit-exact after rounding the CPU result;
        // NaN rows compare by NaN-ness.
        const std::vector<float> want = bf16_of(ref.out);
        for (size_t i = 0; i < want.size(); i++)
            if (std::isnan(want[i]))
                ASSERT_TRUE(std::isnan(got.out[i])) << i;
            else
                ASSERT_EQ(got.out[i], want[i]) << i;
        EXPECT_TRUE(close("dwte", got.dwte, ref.dwte, colsum_tol));
        if (k.n_pos) EXPECT_TRUE(close("dwpe", got.dwpe, ref.dwpe, colsum_tol));
        run_embedding(gpu.get(), in, &again);  // no atomics: bit-identical
        EXPECT_EQ(0, std::memcmp(got.dwte.data(), again.dwte.data(), got.dwte.size() * 4));
        EXPECT_EQ(0, std::memcmp(got.dwpe.data(), again.dwpe.data(), got.dwpe.size() * 4));
    }
}

// ---- norms ----------------------------------------------------------------------------------------

namespace {

struct NormShape {
    int64_t n, c;
    bool rms;
};

class NormCudaVsCpu : public NnCuda, public ::testing::WithParamInterface<NormShape> {};

std::string norm_shape_name(const NormShape &s)
{
    return std::string(s.rms ? "rms" : "ln") + "_n" + std::to_string(s.n) + "_c" + std::to_string(s.c);
}

void PrintTo(const NormShape &s, std::ostream *os) { *os << norm_shape_name(s); }

}  // namespace

TEST_P(NormCudaVsCpu, AllOutputsMatch)
{
    const NormShape k = GetParam();
    NormIn in{k.n, k.c, k.rms, !k.rms, false, true, 1e-5f, {}, {}, {}, {}, {}, {}, {}};
    in.x = rnd((size_t)(k.n * k.c), 11, -2.0f, 3.0f);
    in.gamma = rnd((size_t)k.c, 12, 0.5f, 1.5f);
    in.beta = rnd((size_t)k.c, 13);
    in.dout = rnd((size_t)(k.n * k.c), 14);
    in.dgamma0 = std::vector<float>((size_t)k.c, 0.0f);  // zero: keeps the '+=' comparison sensitive
    in.dbeta0 = in.dgamma0;
    NormOut ref, got;
    run_norm(cpu.get(), in, &ref);
    run_norm(gpu.get(), in, &got);
    EXPECT_TRUE(close("out", got.out, ref.out, bf16_out_tol));
    EXPECT_TRUE(close("rstd", got.rstd, ref.rstd, fp32_reorder_tol));
    if (!k.rms) EXPECT_TRUE(close("mean", got.mean, ref.mean, fp32_reorder_tol));
    EXPECT_TRUE(close("dx", got.dx, ref.dx, bf16_out_tol));
    EXPECT_TRUE(close("dgamma", got.dgamma, ref.dgamma, colsum_tol));
    if (!k.rms) EXPECT_TRUE(close("dbeta", got.dbeta, ref.dbeta, colsum_tol));
    // '+=' contracts: dx accumulates with the flag; dgamma/dbeta always accumulate.
    in.accumulate_dx = true;
    in.dx0 = rnd((size_t)(k.n * k.c), 15);
    in.dgamma0 = rnd((size_t)k.c, 16);
    in.dbeta0 = rnd((size_t)k.c, 17);
    NormOut ref2, got2, got3;
    run_norm(cpu.get(), in, &ref2);
    run_norm(gpu.get(), in, &got2);
    EXPECT_TRUE(close("dx +=", got2.dx, ref2.dx, bf16_out_tol));
    EXPECT_TRUE(close("dgamma +=", got2.dgamma, ref2.dgamma, colsum_tol));
    run_norm(gpu.get(), in, &got3);  // deterministic
    EXPECT_EQ(0, std::memcmp(got2.dgamma.data(), got3.dgamma.data(), got2.dgamma.size() * 4));
    EXPECT_EQ(0, std::memcmp(got2.dx.data(), got3.dx.data(), got2.dx.size() * 4));
}

INSTANTIATE_TEST_SUITE_P(Shapes, NormCudaVsCpu,
                         ::testing::Values(NormShape{111, 72, false}, NormShape{111, 72, true}, NormShape{1, 5, false},
                                           NormShape{37, 1000, true},
                                           NormShape{1024, 768, false},   // GPT-2 small, B·T = 4·256
                                           NormShape{8192, 768, false},   // many row chunks in the column sums
                                           NormShape{1024, 2048, true}),  // LLaMA-like
                         [](const auto &info) { return norm_shape_name(info.param); });

TEST_F(NnCuda, BiasGradMatchesCpu)
{
    for (auto [n, c] : {std::pair<int64_t, int64_t>{111, 72}, {8192, 2304}}) {
        const auto dy = rnd((size_t)(n * c), 21), d0 = rnd((size_t)c, 22);
        EXPECT_TRUE(close("dbias", run_bias_grad(gpu.get(), n, c, dy, d0), run_bias_grad(cpu.get(), n, c, dy, d0),
                          colsum_tol));
    }
}

// ---- RoPE -----------------------------------------------------------------------------------------

TEST_F(NnCuda, RopeMatchesCpu)
{
    struct C {
        int64_t n;
        int heads, d;
        bool own, in_place;
    };
    // ragged: 3·37 tokens, q and k of 6 + 2 heads of 12 in one call; real: LLaMA-like q+k (32 + 8
    // heads of 64) with theta 500000, and a caller table.
    for (C k : {C{111, 8, 12, false, false}, C{111, 8, 12, true, true}, C{1024, 40, 64, false, true}}) {
        RopeIn in{k.n, k.heads, k.d, 500000.0f, k.own, k.in_place, {}, {}, {}};
        in.pos.resize((size_t)k.n);
        for (int64_t i = 0; i < k.n; i++) in.pos[(size_t)i] = (int32_t)(i % 37 + (i > 100 ? 3000 : 0));
        in.x = rnd((size_t)(k.n * k.heads * k.d), 31);
        in.table = random_vec((size_t)k.d / 2, 32, 0.001f, 1.0f);
        for (bool bwd : {false, true}) {
            SCOPED_TRACE(std::string(bwd ? "bwd" : "fwd") + " heads " + std::to_string(k.heads));
            // cos/sin of the same fp32 angle: sincosf vs fp64 differ by ~1 ulp of fp32, far
            // below the one bf16 rounding of the output.
            EXPECT_TRUE(close("rope", run_rope(gpu.get(), in, bwd), run_rope(cpu.get(), in, bwd), bf16_out_tol));
        }
    }
}

// ---- activations, add, cast -------------------------------------------------------------------------

TEST_F(NnCuda, GeluSwigluAddCastMatchCpu)
{
    for (auto [n, c] : {std::pair<int64_t, int64_t>{111, 72}, {1024, 3072}, {1024, 5632}}) {
        SCOPED_TRACE("n " + std::to_string(n) + " c " + std::to_string(c));
        const auto x = rnd((size_t)(n * c), 41, -6.0f, 6.0f), u = rnd((size_t)(n * c), 42, -2.0f, 2.0f),
                   dy = rnd((size_t)(n * c), 43);
        for (bool in_place : {false, true}) {
            std::vector<float> yr, dxr, yg, dxg;
            run_gelu(cpu.get(), n, c, x, dy, in_place, &yr, &dxr);
            run_gelu(gpu.get(), n, c, x, dy, in_place, &yg, &dxg);
            // fp32 tanhf vs fp64 tanh: ~2 ulp of fp32, then one bf16 rounding.
            EXPECT_TRUE(close("gelu y", yg, yr, bf16_out_tol));
            EXPECT_TRUE(close("gelu dx", dxg, dxr, bf16_out_tol));
            SwigluOut sr, sg;
            run_swiglu(cpu.get(), n, c, x, u, dy, in_place, &sr);
            run_swiglu(gpu.get(), n, c, x, u, dy, in_place, &sg);
            EXPECT_TRUE(close("swiglu y", sg.y, sr.y, bf16_out_tol));
            EXPECT_TRUE(close("swiglu dgate", sg.dgate, sr.dgate, bf16_out_tol));
            EXPECT_TRUE(close("swiglu dup", sg.dup, sr.dup, bf16_out_tol));
        }
        // add: the fp32 sum of two bf16 values rounded once: bit-exact against the rounded CPU sum.
        for (int alias : {0, 1, 2}) EXPECT_EQ(run_add(gpu.get(), n, c, x, u, alias), bf16_of(run_add(cpu.get(), n, c, x, u, alias)));
    }
    // cast: round to nearest even, identical to the host conversion.
    const std::vector<float> src = random_vec(1001, 44, -100.0f, 100.0f);
    F32 s(gpu.get(), src);
    SMat d(gpu.get(), 1, 1001, 1008);
    culora_nn_cast_args a{1001, s.p(), d.p()};
    ASSERT_EQ(culora_nn_cast(gpu.get(), &a, nullptr), CULORA_OK) << culora_context_last_error(gpu.get());
    EXPECT_EQ(d.get(), bf16_of(src));
    EXPECT_TRUE(d.guard("cast dst"));
}

TEST_F(NnCuda, Bf16RowsNeedLeadingDimensionsOfEight)
{
    SMat x(gpu.get(), 4, 12, 16), y(gpu.get(), 4, 12, 16);
    culora_nn_gelu_args a{4, 12, x.p(), 12, y.p(), 16};  // ld 12: rows not 16-byte aligned
    EXPECT_EQ(culora_nn_gelu_fwd(gpu.get(), &a, nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(gpu.get())).find("leading dimension of x"), std::string::npos)
        << culora_context_last_error(gpu.get());
}
