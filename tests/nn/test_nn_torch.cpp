// test_nn_torch.cpp — external oracle: the CPU backend reproduces PyTorch and Hugging Face
// transformers (tests/data/nn/*.json, written by tests/gen/gen_nn_fixtures.py): LayerNorm,
// LlamaRMSNorm, LlamaRotaryEmbedding + apply_rotary_pos_emb (rotate_half, restarting positions),
// repeat_kv causal attention (GQA), GELU-tanh, SiLU·up, cross_entropy(ignore_index=-100),
// torch.optim.AdamW (three steps) and nn.Embedding — outputs and autograd gradients.
#include "json_test_util.h"
#include "nn_run.h"

#include <jansson.h>

using namespace nn_test;

namespace {

struct Json {
    json_t *doc = nullptr;
    explicit Json(const char *file)
    {
        const std::string path = std::string(CULORA_TEST_DATA_DIR) + "/nn/" + file;
        json_error_t err;
        doc = json_load_file(path.c_str(), 0, &err);
        EXPECT_NE(doc, nullptr) << path << ": " << err.text;
    }
    ~Json() { json_decref(doc); }
    json_t *first_case() const { return json_array_get(json_object_get(doc, "cases"), 0); }
};

std::vector<float> floats(json_t *obj, const char *key)
{
    std::vector<float> v = culora_test::json_floats(json_object_get(obj, key));
    EXPECT_FALSE(v.empty()) << key;
    return v;
}

std::vector<int32_t> ints(json_t *obj, const char *key) { return culora_test::json_ints(json_object_get(obj, key)); }

int64_t num(json_t *obj, const char *key) { return json_integer_value(json_object_get(obj, key)); }
double real(json_t *obj, const char *key) { return json_number_value(json_object_get(obj, key)); }

// PyTorch computes in fp32 (its reductions too); the CPU backend in fp32 with fp64 reductions.
// Over the ≤ 37-term sums here they differ by a few fp32 ulps (~1e-6 relative); 1e-5 relative
// and of the RMS is 10x that and 1000x below any wrong term.
Tol torch_tol(const dvec &ref) { return Tol{1e-5 * std::max(rms(ref), 1e-30), 1e-5, 1e-10}; }

::testing::AssertionResult match(const char *what, const std::vector<float> &got, const std::vector<float> &torch_v)
{
    const dvec r = dv(torch_v);
    return all_close(what, got, r, torch_tol(r));
}

}  // namespace

TEST(NnTorch, LayerNormMatchesTorch)
{
    Json j("layernorm.json");
    ASSERT_TRUE(j.doc);
    size_t idx;
    json_t *c;
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    json_array_foreach(json_object_get(j.doc, "cases"), idx, c) {
        const bool bias = json_object_get(c, "beta") != nullptr;
        NormIn in{num(c, "n"), num(c, "c"), false, bias, false, true, (float)real(c, "eps"),
                  floats(c, "x"), floats(c, "gamma"), bias ? floats(c, "beta") : std::vector<float>{}, floats(c, "dy"),
                  {}, {}, {}};
        NormOut o;
        run_norm(ctx.get(), in, &o);
        EXPECT_TRUE(match("y", o.out, floats(c, "y")));
        EXPECT_TRUE(match("dx", o.dx, floats(c, "dx")));
        EXPECT_TRUE(match("dgamma", o.dgamma, floats(c, "dgamma")));
        if (bias) EXPECT_TRUE(match("dbeta", o.dbeta, floats(c, "dbeta")));
    }
}

TEST(NnTorch, RmsNormMatchesLlamaRMSNorm)
{
    Json j("rmsnorm.json");
    ASSERT_TRUE(j.doc);
    json_t *c = j.first_case();
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    NormIn in{num(c, "n"), num(c, "c"), true, false, false, true, (float)real(c, "eps"), floats(c, "x"),
              floats(c, "gamma"), {}, floats(c, "dy"), {}, {}, {}};
    NormOut o;
    run_norm(ctx.get(), in, &o);
    EXPECT_TRUE(match("y", o.out, floats(c, "y")));
    EXPECT_TRUE(match("dx", o.dx, floats(c, "dx")));
    EXPECT_TRUE(match("dgamma", o.dgamma, floats(c, "dgamma")));
}

TEST(NnTorch, RopeMatchesHuggingFaceRotateHalf)
{
    Json j("rope.json");
    ASSERT_TRUE(j.doc);
    json_t *c = j.first_case();
    const int64_t n = num(c, "batch") * num(c, "seq");
    const int h = (int)num(c, "n_heads"), hkv = (int)num(c, "n_kv_heads"), d = (int)num(c, "head_dim");
    const float theta = (float)real(c, "theta");
    // inv_freq as HF computes it, to an ulp (powf vs torch's pow).
    const std::vector<float> hf = floats(c, "inv_freq"), ours = inv_freq_of(theta, d);
    for (size_t i = 0; i < hf.size(); i++) EXPECT_NEAR(ours[i], hf[i], 2.5e-7 * hf[i]) << i;
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    const std::vector<int32_t> pos = ints(c, "pos");
    RopeIn q{n, h, d, theta, false, false, pos, floats(c, "q"), {}}, k{n, hkv, d, theta, false, false, pos,
                                                                       floats(c, "k"), {}};
    EXPECT_TRUE(match("q_out", run_rope(ctx.get(), q, false), floats(c, "q_out")));
    EXPECT_TRUE(match("k_out", run_rope(ctx.get(), k, false), floats(c, "k_out")));
    // Backward: the gradient that flows to q and k from gradients on the rotated outputs.
    q.x = floats(c, "dq_out");
    k.x = floats(c, "dk_out");
    EXPECT_TRUE(match("dq", run_rope(ctx.get(), q, true), floats(c, "dq")));
    EXPECT_TRUE(match("dk", run_rope(ctx.get(), k, true), floats(c, "dk")));
}

TEST(NnTorch, GqaAttentionMatchesRepeatKvCausalAttention)
{
    Json j("attention.json");
    ASSERT_TRUE(j.doc);
    json_t *c = j.first_case();
    const AttShape s{num(c, "batch"), num(c, "seq"), (int)num(c, "n_heads"), (int)num(c, "n_kv_heads"),
                     (int)num(c, "head_dim")};
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    for (bool fused : {false, true}) {
        AttIn in{s, (float)real(c, "scale"), fused, floats(c, "q"), floats(c, "k"), floats(c, "v"), floats(c, "dy")};
        AttOut o;
        run_attention(ctx.get(), in, &o);
        EXPECT_TRUE(match("y", o.y, floats(c, "y")));
        EXPECT_TRUE(match("lse", o.lse, floats(c, "lse")));
        EXPECT_TRUE(match("dq", o.dq, floats(c, "dq")));
        EXPECT_TRUE(match("dk", o.dk, floats(c, "dk")));
        EXPECT_TRUE(match("dv", o.dv, floats(c, "dv")));
    }
}

TEST(NnTorch, GeluTanhAndSwigluMatchTorch)
{
    Json j("activations.json");
    ASSERT_TRUE(j.doc);
    const int64_t n = num(j.doc, "n"), c = num(j.doc, "c");
    json_t *g = json_object_get(j.doc, "gelu"), *s = json_object_get(j.doc, "swiglu");
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    std::vector<float> y, dx;
    run_gelu(ctx.get(), n, c, floats(g, "x"), floats(g, "dy"), false, &y, &dx);
    EXPECT_TRUE(match("gelu y", y, floats(g, "y")));
    EXPECT_TRUE(match("gelu dx", dx, floats(g, "dx")));
    SwigluOut o;
    run_swiglu(ctx.get(), n, c, floats(s, "gate"), floats(s, "up"), floats(s, "dy"), false, &o);
    EXPECT_TRUE(match("swiglu y", o.y, floats(s, "y")));
    EXPECT_TRUE(match("swiglu dgate", o.dgate, floats(s, "dgate")));
    EXPECT_TRUE(match("swiglu dup", o.dup, floats(s, "dup")));
}

TEST(NnTorch, CrossEntropyMatchesIgnoreIndexMean)
{
    Json j("cross_entropy.json");
    ASSERT_TRUE(j.doc);
    json_t *c = j.first_case();
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    XentIn in{num(c, "n"), num(c, "vocab"), -100, 1.0f, 0, false, true, floats(c, "logits"), ints(c, "targets")};
    XentOut o;
    run_xent(ctx.get(), in, &o);
    const double want = real(c, "loss");
    EXPECT_NEAR(o.loss, want, 1e-5 * std::fabs(want));
    EXPECT_TRUE(match("losses", o.losses, floats(c, "losses")));
    EXPECT_TRUE(match("dlogits", o.dlogits, floats(c, "dlogits")));
}

TEST(NnTorch, AdamwMatchesTorchOptimAdamW)
{
    Json j("adamw.json");
    ASSERT_TRUE(j.doc);
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    std::vector<float> p = floats(j.doc, "param0"), m(p.size(), 0.0f), v(p.size(), 0.0f);
    const AdamIn h{real(j.doc, "lr"), real(j.doc, "beta1"), real(j.doc, "beta2"), real(j.doc, "eps"),
                   real(j.doc, "weight_decay"), 1.0f, 0};
    size_t idx;
    json_t *st;
    json_array_foreach(json_object_get(j.doc, "steps"), idx, st) {
        AdamIn hs = h;
        hs.step = (int64_t)idx + 1;
        run_adamw(ctx.get(), hs, p, floats(st, "grad"), m, v, nullptr);
        SCOPED_TRACE("step " + std::to_string(hs.step));
        // The same fp32 operations as torch's single-tensor AdamW, but torch's vectorised lerp /
        // addcmul / addcdiv fuse a multiply-add (one rounding) where culora rounds twice: results
        // differ by about an ulp of the operands, not of the result (m = m + 0.1·(g − m) with
        // |g − m| <= 4 can cancel to 0.01: 16 ulps of m, 1.5e-8 absolute). atol = 1e-7 (|p| <= 1),
        // 1e-7 (m, terms <= 0.4), 2e-8 (v, terms <= 0.2) is ~ one ulp of the operands.
        EXPECT_TRUE(all_close("param", p, dv(floats(st, "param")), Tol{1e-7, 5e-7, -1}));
        EXPECT_TRUE(all_close("m", m, dv(floats(st, "m")), Tol{1e-7, 5e-7, -1}));
        EXPECT_TRUE(all_close("v", v, dv(floats(st, "v")), Tol{2e-8, 5e-7, -1}));
    }
}

TEST(NnTorch, EmbeddingMatchesNnEmbedding)
{
    Json j("embedding.json");
    ASSERT_TRUE(j.doc);
    const int64_t n = num(j.doc, "n"), c = num(j.doc, "c"), vocab = num(j.doc, "vocab");
    auto ctx = cpu_ctx();
    ASSERT_TRUE(ctx);
    EmbIn in{n, c, vocab, 0, ints(j.doc, "tokens"), {}, floats(j.doc, "wte"), {}, floats(j.doc, "dy"),
             std::vector<float>((size_t)(vocab * c), 0.0f), {}};
    EmbOut o;
    run_embedding(ctx.get(), in, &o);
    EXPECT_EQ(o.out, floats(j.doc, "y"));  // a copy
    EXPECT_TRUE(match("dwte", o.dwte, floats(j.doc, "dwte")));
}
