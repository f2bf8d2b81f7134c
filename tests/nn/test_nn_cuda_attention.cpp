// test_nn_cuda_attention.cpp — CUDA vs CPU causal GQA attention, forward and backward: ragged
// shapes (B=3, T=37, 6 heads over 2 kv heads, D=12: every padding path), MHA/MQA, GPT-2 small
// and LLaMA-like real shapes, fused and separate qkv buffers, a workspace that forces one
// sequence per pass, bit-identical reruns. Skips without a GPU.
#include "nn_cuda_test.h"

using namespace nn_test;

namespace {

struct AttCudaCase {
    AttShape s;
    bool fused;
    float lo, hi;  // input range: scores of a few units
};

std::string case_name(const AttCudaCase &c)
{
    return "B" + std::to_string(c.s.b) + "_T" + std::to_string(c.s.t) + "_H" + std::to_string(c.s.h) + "_KV" +
           std::to_string(c.s.hkv) + "_D" + std::to_string(c.s.d) + (c.fused ? "_fused" : "_sep");
}

AttIn make_in(const AttCudaCase &c, uint64_t seed)
{
    AttIn in{c.s, (float)(1.0 / std::sqrt((double)c.s.d)), c.fused, {}, {}, {}, {}};
    in.q = rnd((size_t)(c.s.n() * c.s.wq()), seed, c.lo, c.hi);
    in.k = rnd((size_t)(c.s.n() * c.s.wkv()), seed + 1, c.lo, c.hi);
    in.v = rnd((size_t)(c.s.n() * c.s.wkv()), seed + 2);
    in.dy = rnd((size_t)(c.s.n() * c.s.wq()), seed + 3);
    return in;
}

class AttentionCudaVsCpu : public NnCuda, public ::testing::WithParamInterface<AttCudaCase> {};

void expect_match(const AttOut &got, const AttOut &ref)
{
    // y: P rounded to bf16 before P·V, then y rounded (bf16_attn_out_tol says why).
    EXPECT_TRUE(close("y", got.y, ref.y, bf16_attn_out_tol));
    EXPECT_TRUE(close("lse", got.lse, ref.lse, fp32_reorder_tol));  // fp32 scores of bf16-exact q, k
    // dq, dk, dv: P and dS rounded to bf16 as GEMM operands, then the result rounded.
    EXPECT_TRUE(close("dq", got.dq, ref.dq, bf16_attn_grad_tol));
    EXPECT_TRUE(close("dk", got.dk, ref.dk, bf16_attn_grad_tol));
    EXPECT_TRUE(close("dv", got.dv, ref.dv, bf16_attn_grad_tol));
}

void PrintTo(const AttCudaCase &c, std::ostream *os) { *os << case_name(c); }

}  // namespace

TEST_P(AttentionCudaVsCpu, ForwardAndBackwardMatch)
{
    const AttCudaCase c = GetParam();
    const AttIn in = make_in(c, 51);
    AttOut ref, got;
    run_attention(cpu.get(), in, &ref);
    run_attention(gpu.get(), in, &got);
    expect_match(got, ref);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionCudaVsCpu,
    ::testing::Values(AttCudaCase{{3, 37, 6, 2, 12}, false, -2.0f, 2.0f},  // ragged: T, D off the 8-grid
                      AttCudaCase{{3, 37, 6, 2, 12}, true, -2.0f, 2.0f},
                      AttCudaCase{{2, 17, 4, 4, 8}, true, -2.0f, 2.0f},   // MHA
                      AttCudaCase{{2, 17, 4, 1, 6}, false, -2.0f, 2.0f},  // MQA
                      AttCudaCase{{1, 1, 2, 1, 3}, false, -2.0f, 2.0f},   // one token
                      AttCudaCase{{2, 256, 12, 12, 64}, true, -1.0f, 1.0f},  // GPT-2 small (C = 768)
                      AttCudaCase{{1, 256, 32, 8, 64}, true, -1.0f, 1.0f}),  // LLaMA-like (C = 2048, GQA 4)
    [](const auto &info) { return case_name(info.param); });

TEST_F(NnCuda, AttentionInChunksOfOneSequenceAndDeterministic)
{
    const AttCudaCase c{{3, 37, 6, 2, 12}, true, -2.0f, 2.0f};
    const AttIn in = make_in(c, 61);
    AttOut ref, small, a, b;
    run_attention(cpu.get(), in, &ref);
    run_attention(gpu.get(), in, &small, 1);  // 1 byte asked: the op gets its minimum, one sequence per pass
    expect_match(small, ref);
    run_attention(gpu.get(), in, &a);
    run_attention(gpu.get(), in, &b);
    for (auto [x, y] : {std::pair{&a.y, &b.y}, {&a.lse, &b.lse}, {&a.dq, &b.dq}, {&a.dk, &b.dk}, {&a.dv, &b.dv}})
        EXPECT_EQ(0, std::memcmp(x->data(), y->data(), x->size() * 4));
}

TEST_F(NnCuda, AttentionWorkspaceQueryGrowsWithBatchAndSeq)
{
    culora_nn_attention_args a{1, 256, 12, 12, 64, 0.125f, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, 0, nullptr};
    struct culora_nn_ws w1, w4, wt;
    ASSERT_EQ(culora_nn_attention_fwd_workspace(gpu.get(), &a, &w1), CULORA_OK);
    a.batch = 4;
    ASSERT_EQ(culora_nn_attention_fwd_workspace(gpu.get(), &a, &w4), CULORA_OK);
    a.seq = 512;
    ASSERT_EQ(culora_nn_attention_fwd_workspace(gpu.get(), &a, &wt), CULORA_OK);
    EXPECT_EQ(w1.min_bytes, w4.min_bytes);  // one sequence per pass is always enough
    EXPECT_GT(w4.full_bytes, w1.full_bytes);
    // The score matrix dominates: doubling T roughly quadruples it (H·T²·4 bytes per sequence).
    EXPECT_GT(wt.min_bytes, 3 * w4.min_bytes);
    EXPECT_GE(w1.min_bytes, (size_t)12 * 256 * 256 * 4);
}
