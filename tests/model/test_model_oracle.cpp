// test_model_oracle.cpp — the transformer on the CPU backend against PyTorch + transformers + PEFT
// (fixtures: tests/gen/gen_model_fixtures.py): tiny GPT-2 and LLaMA (GQA) models with a LoRA
// adapter on every attention and MLP linear — logits, loss, every LoRA gradient, and the losses of
// five AdamW steps.
#include "json_test_util.h"
#include "test_util.h"

#include "culora/culora_model.h"

#include <jansson.h>

extern "C" {
#include "model/model.h"
}

using namespace culora_test;

namespace {

std::string data(const std::string &rel) { return std::string(CULORA_TEST_DATA_DIR) + "/model/" + rel; }

struct ModelDeleter {
    void operator()(culora_model *m) const { culora_model_destroy(m); }
};
using ModelPtr = std::unique_ptr<culora_model, ModelDeleter>;

ModelPtr load(culora_context *ctx, const std::string &arch, int mode)
{
    culora_model_params p = CULORA_MODEL_PARAMS_INIT;
    p.mode = mode;
    std::string ad = data(arch + "_adapter");
    p.adapter_dir = ad.c_str();
    p.max_batch = 2;
    p.max_seq = 16;
    culora_model *m = nullptr;
    culora_status s = culora_model_load(ctx, data(arch).c_str(), &p, &m);
    EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
    return ModelPtr(m);
}

// The fp32 gradient of a trainable tensor, dense [rows, cols].
std::vector<float> grad_of(culora_model *m, const mtensor &t)
{
    std::vector<float> padded((size_t)(t.rows * t.ld)), out((size_t)(t.rows * t.cols));
    EXPECT_EQ(culora_memcpy(m->ctx, padded.data(), model_grad(m, &t), padded.size() * 4, CULORA_COPY_DEVICE_TO_HOST,
                            nullptr),
              CULORA_OK);
    for (int64_t i = 0; i < t.rows; i++)
        for (int64_t j = 0; j < t.cols; j++) out[(size_t)(i * t.cols + j)] = padded[(size_t)(i * t.ld + j)];
    return out;
}

class ModelOracle : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(ModelOracle, LogitsLossAndLoraGradientsMatchPeft)
{
    const std::string arch = GetParam();
    json_error_t err;
    json_t *doc = json_load_file(data(arch + "_oracle.json").c_str(), 0, &err);
    ASSERT_NE(doc, nullptr) << err.text;
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    ModelPtr m = load(ctx.get(), arch, CULORA_MODE_LORA);
    ASSERT_TRUE(m);
    EXPECT_EQ(culora_model_n_lora_modules(m.get()), arch == "gpt2" ? 8 : 14);
    const int64_t B = json_integer_value(json_object_get(doc, "batch")), T = json_integer_value(json_object_get(doc, "seq"));
    const int64_t V = json_integer_value(json_object_get(doc, "vocab"));
    std::vector<int32_t> tokens = json_ints(json_object_get(doc, "tokens")),
                         targets = json_ints(json_object_get(doc, "targets"));
    float loss = 0;
    ASSERT_EQ(culora_model_forward(m.get(), tokens.data(), targets.data(), B, T, &loss), CULORA_OK)
        << culora_context_last_error(ctx.get());
    // fp32 on both sides; sums over at most 96 terms in different orders: relative error ~1e-6.
    EXPECT_NEAR(loss, json_number_value(json_object_get(doc, "loss")), 2e-5);
    std::vector<float> logits((size_t)(B * T * V));
    ASSERT_EQ(culora_model_logits(m.get(), 0, B * T, logits.data()), CULORA_OK);
    std::vector<double> want = to_double(json_floats(json_object_get(doc, "logits")));
    EXPECT_TRUE(all_close("logits", logits, want, Tol{2e-5 * rms(want), 2e-5, 1e-10}));

    ASSERT_EQ(culora_model_backward(m.get(), 1.0f, 0), CULORA_OK) << culora_context_last_error(ctx.get());
    json_t *grads = json_object_get(doc, "lora_grads");
    ASSERT_EQ((int)json_object_size(grads), culora_model_n_lora_modules(m.get()));
    for (int32_t i = 0; i < m->n_loras; i++) {
        const mlora &lo = m->loras[i];
        json_t *g = json_object_get(grads, lo.name);
        ASSERT_NE(g, nullptr) << "no PEFT gradient for " << lo.name;
        std::vector<double> ga = to_double(json_floats(json_object_get(g, "lora_A"))),
                            gb = to_double(json_floats(json_object_get(g, "lora_B")));
        // Gradients pass through a few more fp32 sums than the logits: 1e-4 of their RMS.
        EXPECT_TRUE(all_close((std::string(lo.name) + ".lora_A").c_str(), grad_of(m.get(), lo.A), ga,
                              Tol{1e-4 * rms(ga), 1e-4, 1e-8}));
        EXPECT_TRUE(all_close((std::string(lo.name) + ".lora_B").c_str(), grad_of(m.get(), lo.B), gb,
                              Tol{1e-4 * rms(gb), 1e-4, 1e-8}));
    }
    json_decref(doc);
}

TEST_P(ModelOracle, FiveAdamwStepsGiveTorchsLosses)
{
    const std::string arch = GetParam();
    json_error_t err;
    json_t *doc = json_load_file(data(arch + "_oracle.json").c_str(), 0, &err);
    ASSERT_NE(doc, nullptr) << err.text;
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    ModelPtr m = load(ctx.get(), arch, CULORA_MODE_LORA);
    ASSERT_TRUE(m);
    const int64_t B = json_integer_value(json_object_get(doc, "batch")), T = json_integer_value(json_object_get(doc, "seq"));
    std::vector<int32_t> tokens = json_ints(json_object_get(doc, "tokens")),
                         targets = json_ints(json_object_get(doc, "targets"));
    json_t *ad = json_object_get(doc, "adamw");
    std::vector<float> want = json_floats(json_object_get(ad, "losses"));
    for (size_t step = 0; step < want.size(); step++) {
        float loss = 0;
        ASSERT_EQ(culora_model_forward(m.get(), tokens.data(), targets.data(), B, T, &loss), CULORA_OK);
        // Five optimizer steps compound fp32 differences; Adam's normalised updates keep them small.
        EXPECT_NEAR(loss, want[step], 1e-4) << "step " << step;
        if (step + 1 == want.size()) break;
        ASSERT_EQ(culora_model_zero_grad(m.get()), CULORA_OK);
        ASSERT_EQ(culora_model_backward(m.get(), 1.0f, 0), CULORA_OK);
        ASSERT_EQ(model_adamw(m.get(), json_number_value(json_object_get(ad, "lr")),
                              json_number_value(json_object_get(ad, "beta1")),
                              json_number_value(json_object_get(ad, "beta2")),
                              json_number_value(json_object_get(ad, "eps")),
                              json_number_value(json_object_get(ad, "weight_decay")), (int64_t)step + 1, 1.0f),
                  CULORA_OK)
            << culora_context_last_error(ctx.get());
    }
    json_decref(doc);
}

INSTANTIATE_TEST_SUITE_P(Archs, ModelOracle, ::testing::Values("gpt2", "llama"));
