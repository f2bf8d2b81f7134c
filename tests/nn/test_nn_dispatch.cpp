// test_nn_dispatch.cpp — the nn dispatchers reject bad arguments with CULORA_ERR_INVALID_ARG and
// a message naming the argument, before the backend runs: NULLs, shapes, leading dimensions,
// overlaps (exact in-place aliases allowed only where documented), workspace size, scalars.
#include "nn_run.h"

using namespace nn_test;

namespace {

struct NnDispatch : ::testing::Test {
    CtxPtr ctx = cpu_ctx();
    std::vector<float> f = std::vector<float>(4096, 0.5f), g = std::vector<float>(4096, 0.25f),
                       h = std::vector<float>(4096, 0.0f), k = std::vector<float>(4096, 0.0f);
    std::vector<int32_t> ids = std::vector<int32_t>(64, 1);
    culora_context *c() { return ctx.get(); }
    void SetUp() override { ASSERT_TRUE(ctx); }
};

}  // namespace

TEST_F(NnDispatch, EmbeddingArguments)
{
    culora_nn_embedding_args a{4, 8, 10, 0, ids.data(), nullptr, f.data(), 8, nullptr, 0, h.data(), 8};
    EXPECT_EQ(culora_nn_embedding_fwd(c(), &a, nullptr), CULORA_OK) << culora_context_last_error(c());
    NN_EXPECT_REJECTS(c(), culora_nn_embedding_fwd(c(), nullptr, nullptr), "args is NULL");
    a.tokens = nullptr;
    NN_EXPECT_REJECTS(c(), culora_nn_embedding_fwd(c(), &a, nullptr), "tokens is NULL");
    a.tokens = ids.data();
    a.ldwte = 7;
    NN_EXPECT_REJECTS(c(), culora_nn_embedding_fwd(c(), &a, nullptr), "leading dimension of wte");
    a.ldwte = 8;
    a.out = f.data() + 8;  // inside wte
    NN_EXPECT_REJECTS(c(), culora_nn_embedding_fwd(c(), &a, nullptr), "output out overlaps wte");
    a.out = h.data();
    a.wpe = g.data();  // positions need pos and n_pos
    a.n_pos = 0;
    NN_EXPECT_REJECTS(c(), culora_nn_embedding_fwd(c(), &a, nullptr), "n_pos");
    a.n_pos = 4;
    NN_EXPECT_REJECTS(c(), culora_nn_embedding_fwd(c(), &a, nullptr), "pos is NULL");
    culora_nn_embedding_bwd_args b{4, 8, 10, 0, ids.data(), nullptr, f.data(), 8, h.data(), 8, nullptr, 0};
    EXPECT_EQ(culora_nn_embedding_bwd(c(), &b, nullptr, 0, nullptr), CULORA_OK);
    b.dwte = f.data();
    NN_EXPECT_REJECTS(c(), culora_nn_embedding_bwd(c(), &b, nullptr, 0, nullptr), "output dwte overlaps dout");
}

TEST_F(NnDispatch, NormArguments)
{
    culora_nn_layernorm_args a{4, 8, 1e-5f, f.data(), 8, g.data(), nullptr, h.data(), 8, k.data(), k.data() + 4};
    EXPECT_EQ(culora_nn_layernorm_fwd(c(), &a, nullptr), CULORA_OK) << culora_context_last_error(c());
    a.eps = -1;
    NN_EXPECT_REJECTS(c(), culora_nn_layernorm_fwd(c(), &a, nullptr), "eps");
    a.eps = 1e-5f;
    a.c = 0;
    NN_EXPECT_REJECTS(c(), culora_nn_layernorm_fwd(c(), &a, nullptr), "c = 0");
    a.c = 8;
    a.out = f.data();  // out over x: not allowed for norms (backward needs x)
    NN_EXPECT_REJECTS(c(), culora_nn_layernorm_fwd(c(), &a, nullptr), "output out overlaps x");
    a.out = h.data();
    a.rstd = k.data() + 2;  // overlaps mean
    NN_EXPECT_REJECTS(c(), culora_nn_layernorm_fwd(c(), &a, nullptr), "output mean overlaps output rstd");
    culora_nn_rmsnorm_bwd_args b{4, 8, false, f.data(), 8, g.data(), nullptr, g.data() + 64, 8, h.data(), 8, nullptr};
    NN_EXPECT_REJECTS(c(), culora_nn_rmsnorm_bwd(c(), &b, nullptr, 0, nullptr), "rstd is NULL");
    b.rstd = k.data();
    EXPECT_EQ(culora_nn_rmsnorm_bwd(c(), &b, nullptr, 0, nullptr), CULORA_OK) << culora_context_last_error(c());
    b.dgamma = h.data() + 1;  // inside dx
    NN_EXPECT_REJECTS(c(), culora_nn_rmsnorm_bwd(c(), &b, nullptr, 0, nullptr), "output dx overlaps output dgamma");
    culora_nn_bias_grad_args bg{4, 8, f.data(), 8, nullptr};
    NN_EXPECT_REJECTS(c(), culora_nn_bias_grad(c(), &bg, nullptr, 0, nullptr), "dbias is NULL");
}

TEST_F(NnDispatch, RopeArguments)
{
    culora_nn_rope_args a{4, 2, 6, 10000.0f, nullptr, ids.data(), f.data(), 12, h.data(), 12};
    EXPECT_EQ(culora_nn_rope_fwd(c(), &a, nullptr), CULORA_OK) << culora_context_last_error(c());
    a.out = f.data();  // exact alias: in place is allowed
    EXPECT_EQ(culora_nn_rope_fwd(c(), &a, nullptr), CULORA_OK) << culora_context_last_error(c());
    a.out = f.data() + 1;  // partial overlap is not
    NN_EXPECT_REJECTS(c(), culora_nn_rope_bwd(c(), &a, nullptr), "only an exact alias");
    a.out = h.data();
    a.head_dim = 5;
    NN_EXPECT_REJECTS(c(), culora_nn_rope_fwd(c(), &a, nullptr), "head_dim = 5 must be even");
    a.head_dim = 6;
    a.theta = 0.5f;
    NN_EXPECT_REJECTS(c(), culora_nn_rope_fwd(c(), &a, nullptr), "theta");
    const float bad[3] = {1.0f, NAN, 0.1f};
    a.inv_freq = bad;
    NN_EXPECT_REJECTS(c(), culora_nn_rope_fwd(c(), &a, nullptr), "inv_freq[1]");
}

TEST_F(NnDispatch, AttentionArguments)
{
    // B=1, T=4, H=4, Hkv=2, D=2: q [4, 8], k, v [4, 4]
    std::vector<float> lse(64);
    culora_nn_attention_args a{1, 4, 4, 2, 2, 0.7f, f.data(), 8, g.data(), 4, g.data() + 64, 4, h.data(), 8, lse.data()};
    EXPECT_EQ(culora_nn_attention_fwd(c(), &a, nullptr, 0, nullptr), CULORA_OK) << culora_context_last_error(c());
    a.n_kv_heads = 3;
    NN_EXPECT_REJECTS(c(), culora_nn_attention_fwd(c(), &a, nullptr, 0, nullptr), "n_kv_heads = 3 does not divide");
    a.n_kv_heads = 2;
    a.scale = 0;
    NN_EXPECT_REJECTS(c(), culora_nn_attention_fwd(c(), &a, nullptr, 0, nullptr), "scale");
    a.scale = 0.7f;
    a.y = g.data() + 64;  // y over v
    NN_EXPECT_REJECTS(c(), culora_nn_attention_fwd(c(), &a, nullptr, 0, nullptr), "output y overlaps v");
    a.y = h.data();
    std::vector<uint8_t> tiny(8);
    NN_EXPECT_REJECTS(c(), culora_nn_attention_fwd(c(), &a, tiny.data(), tiny.size(), nullptr), "workspace of 8 bytes");
    culora_nn_attention_bwd_args b{1,  4, 4, 2, 2, 0.7f, f.data(), 8, g.data(), 4, g.data() + 64, 4, lse.data(),
                                   f.data() + 128, 8, h.data(), 8, k.data(), 4, k.data() + 8, 4};
    // dk rows [4,4] at k, dv at k+8: they share rows 2..3 of the same buffer
    NN_EXPECT_REJECTS(c(), culora_nn_attention_bwd(c(), &b, nullptr, 0, nullptr), "output dk overlaps output dv");
    b.dv = k.data() + 64;
    EXPECT_EQ(culora_nn_attention_bwd(c(), &b, nullptr, 0, nullptr), CULORA_OK) << culora_context_last_error(c());
}

TEST_F(NnDispatch, ActivationArguments)
{
    culora_nn_gelu_args a{4, 8, f.data(), 8, f.data(), 8};  // in place
    EXPECT_EQ(culora_nn_gelu_fwd(c(), &a, nullptr), CULORA_OK);
    a.ldy = 9;  // same pointer, different leading dimension: not an exact alias
    NN_EXPECT_REJECTS(c(), culora_nn_gelu_fwd(c(), &a, nullptr), "output y overlaps x");
    culora_nn_swiglu_bwd_args s{4, 8, f.data(), 16, f.data() + 8, 16, g.data(), 8, f.data(), 16, f.data(), 16};
    NN_EXPECT_REJECTS(c(), culora_nn_swiglu_bwd(c(), &s, nullptr), "output dgate overlaps output dup");
    s.dup = f.data() + 8;  // dgate over gate, dup over up: exact aliases
    EXPECT_EQ(culora_nn_swiglu_bwd(c(), &s, nullptr), CULORA_OK) << culora_context_last_error(c());
    culora_nn_add_args ad{4, 8, f.data(), 8, g.data(), 8, nullptr, 8};
    NN_EXPECT_REJECTS(c(), culora_nn_add(c(), &ad, nullptr), "out is NULL");
}

TEST_F(NnDispatch, CrossEntropyArguments)
{
    float loss;
    culora_nn_cross_entropy_args a{4, 8, -100, 1.0f, 0, f.data(), 8, ids.data(), &loss, nullptr, nullptr, f.data(), 8};
    EXPECT_EQ(culora_nn_cross_entropy(c(), &a, nullptr, 0, nullptr), CULORA_OK) << culora_context_last_error(c());
    a.loss = nullptr;
    NN_EXPECT_REJECTS(c(), culora_nn_cross_entropy(c(), &a, nullptr, 0, nullptr), "loss is NULL");
    a.loss = &loss;
    a.grad_denominator = -1;
    NN_EXPECT_REJECTS(c(), culora_nn_cross_entropy(c(), &a, nullptr, 0, nullptr), "grad_denominator");
    a.grad_denominator = 0;
    a.losses = f.data() + 4;  // inside logits
    NN_EXPECT_REJECTS(c(), culora_nn_cross_entropy(c(), &a, nullptr, 0, nullptr), "losses");
}

TEST_F(NnDispatch, OptimizerArguments)
{
    culora_nn_adamw_args a{8, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1, 1.0f, f.data(), g.data(), h.data(), k.data(),
                           nullptr};
    EXPECT_EQ(culora_nn_adamw(c(), &a, nullptr), CULORA_OK);
    a.step = 0;
    NN_EXPECT_REJECTS(c(), culora_nn_adamw(c(), &a, nullptr), "step = 0");
    a.step = 1;
    a.beta2 = 1.0;
    NN_EXPECT_REJECTS(c(), culora_nn_adamw(c(), &a, nullptr), "beta2");
    a.beta2 = 0.999;
    a.m = f.data() + 4;
    NN_EXPECT_REJECTS(c(), culora_nn_adamw(c(), &a, nullptr), "output param overlaps output m");
    culora_nn_grad_norm_args gn{8, g.data(), g.data() + 3};
    NN_EXPECT_REJECTS(c(), culora_nn_grad_norm(c(), &gn, nullptr, 0, nullptr), "output norm overlaps grad");
    culora_nn_cast_args ca{0, f.data(), h.data()};
    NN_EXPECT_REJECTS(c(), culora_nn_cast(c(), &ca, nullptr), "n = 0");
}
