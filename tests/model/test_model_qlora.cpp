// test_model_qlora.cpp — QLoRA: the base linears stored NF4 (double-quantized) or int8 and frozen,
// LoRA trained on top. The quantized model computes exactly what an unquantized model holding the
// dequantized weights computes (same adapter): logits, loss and LoRA gradients; its loss differs
// from the full-precision model by the quantization error only; training lowers the loss.
#include "test_util.h"

#include "culora/culora_model.h"
#include "culora/culora_quant.h"

#include <unistd.h>

extern "C" {
#include "model/model.h"
}

using namespace culora_test;

namespace {

std::string data(const std::string &rel) { return std::string(CULORA_TEST_DATA_DIR) + "/model/" + rel; }

culora_model *load(culora_context *ctx, const std::string &dir, int mode, const char *adapter, int32_t qformat,
                   uint32_t qflags)
{
    culora_model_params p = CULORA_MODEL_PARAMS_INIT;
    p.mode = mode;
    p.adapter_dir = adapter;
    p.max_batch = 2;
    p.max_seq = 16;
    p.quant_format = qformat;
    p.quant_flags = qflags;
    culora_model *m = nullptr;
    EXPECT_EQ(culora_model_load(ctx, dir.c_str(), &p, &m), CULORA_OK) << culora_context_last_error(ctx);
    return m;
}

std::vector<float> grads(culora_model *m)
{
    int64_t n = 0;
    float *g = model_grad_buffer(m, &n);
    std::vector<float> v((size_t)n);
    EXPECT_EQ(culora_memcpy(m->ctx, v.data(), g, v.size() * 4, CULORA_COPY_DEVICE_TO_HOST, nullptr), CULORA_OK);
    return v;
}

// A fixed batch for the fixture models (vocab 96).
void batch(std::vector<int32_t> &tok, std::vector<int32_t> &tgt)
{
    tok.resize(32);
    tgt.resize(32);
    for (int i = 0; i < 32; i++) {
        tok[(size_t)i] = (i * 37 + 11) % 96;
        tgt[(size_t)i] = (i % 16 == 15) ? -100 : (i * 53 + 7) % 96;
    }
}

}  // namespace

TEST(ModelQlora, Nf4ModelEqualsTheModelOfItsDequantizedWeights)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    const std::string adapter = data("llama_adapter");
    culora_model *q = load(ctx.get(), data("llama"), CULORA_MODE_LORA, adapter.c_str(), CULORA_QUANT_NF4,
                           CULORA_QUANT_DOUBLE_QUANT);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(culora_model_quant_format(q), CULORA_QUANT_NF4);
    // The dequantized base, written as an ordinary model: load it without the adapter, save.
    culora_model *qbase = load(ctx.get(), data("llama"), CULORA_MODE_INFERENCE, nullptr, CULORA_QUANT_NF4,
                               CULORA_QUANT_DOUBLE_QUANT);
    ASSERT_NE(qbase, nullptr);
    const std::string dq = ::testing::TempDir() + "qlora_dq_" + std::to_string(getpid());
    ASSERT_EQ(culora_model_save(qbase, dq.c_str()), CULORA_OK) << culora_context_last_error(ctx.get());
    culora_model_destroy(qbase);
    culora_model *ref = load(ctx.get(), dq, CULORA_MODE_LORA, adapter.c_str(), 0, 0);
    ASSERT_NE(ref, nullptr);

    std::vector<int32_t> tok, tgt;
    batch(tok, tgt);
    float lq = 0, lr = 0;
    ASSERT_EQ(culora_model_forward(q, tok.data(), tgt.data(), 2, 16, &lq), CULORA_OK) << culora_context_last_error(ctx.get());
    ASSERT_EQ(culora_model_forward(ref, tok.data(), tgt.data(), 2, 16, &lr), CULORA_OK);
    // Both run fp32 ops on the same fp32 weights (NF4 dequantization is exact in fp32): identical.
    EXPECT_EQ(lq, lr);
    std::vector<float> a((size_t)(32 * 96)), b((size_t)(32 * 96));
    ASSERT_EQ(culora_model_logits(q, 0, 32, a.data()), CULORA_OK);
    ASSERT_EQ(culora_model_logits(ref, 0, 32, b.data()), CULORA_OK);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
    ASSERT_EQ(culora_model_zero_grad(q), CULORA_OK);
    ASSERT_EQ(culora_model_zero_grad(ref), CULORA_OK);
    ASSERT_EQ(culora_model_backward(q, 1.0f, 0), CULORA_OK) << culora_context_last_error(ctx.get());
    ASSERT_EQ(culora_model_backward(ref, 1.0f, 0), CULORA_OK);
    std::vector<float> gq = grads(q), gr = grads(ref);
    ASSERT_EQ(gq.size(), gr.size());
    EXPECT_EQ(0, std::memcmp(gq.data(), gr.data(), gq.size() * 4));

    // Against full precision the loss moves by the 4-bit quantization error only.
    culora_model *full = load(ctx.get(), data("llama"), CULORA_MODE_LORA, adapter.c_str(), 0, 0);
    float lf = 0;
    ASSERT_EQ(culora_model_forward(full, tok.data(), tgt.data(), 2, 16, &lf), CULORA_OK);
    std::cout << "  loss: fp32 base " << lf << ", NF4-DQ base " << lq << "\n";
    EXPECT_NE(lf, lq);
    EXPECT_NEAR(lf, lq, 0.05);  // random N(0,0.02) weights; NF4 keeps ~4 bits per weight
    culora_model_destroy(full);
    culora_model_destroy(ref);
    culora_model_destroy(q);
    std::string cmd = "rm -rf '" + dq + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(ModelQlora, TrainingOnQuantizedBasesLowersTheLoss)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    const std::string adapter = data("llama_adapter");
    for (int32_t fmt : {(int32_t)CULORA_QUANT_NF4, (int32_t)CULORA_QUANT_INT8}) {
        culora_model *m = load(ctx.get(), data("llama"), CULORA_MODE_LORA, adapter.c_str(), fmt,
                               fmt == CULORA_QUANT_NF4 ? CULORA_QUANT_DOUBLE_QUANT : 0u);
        ASSERT_NE(m, nullptr);
        std::vector<int32_t> tok, tgt;
        batch(tok, tgt);
        float first = 0, last = 0;
        for (int step = 1; step <= 8; step++) {
            float l = 0;
            ASSERT_EQ(culora_model_forward(m, tok.data(), tgt.data(), 2, 16, &l), CULORA_OK);
            if (step == 1) first = l;
            last = l;
            ASSERT_EQ(culora_model_zero_grad(m), CULORA_OK);
            ASSERT_EQ(culora_model_backward(m, 1.0f, 0), CULORA_OK) << culora_context_last_error(ctx.get());
            ASSERT_EQ(model_adamw(m, 1e-2, 0.9, 0.999, 1e-8, 0.0, step, 1.0f), CULORA_OK);
        }
        std::cout << "  " << culora_quant_format_name(fmt) << " base: loss " << first << " -> " << last << "\n";
        EXPECT_LT(last, first - 0.05f);  // memorising one batch: the loss must fall
        culora_model_destroy(m);
    }
}

TEST(ModelQlora, RefusedCombinations)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    culora_model_params p = CULORA_MODEL_PARAMS_INIT;
    p.mode = CULORA_MODE_FULL;
    p.quant_format = CULORA_QUANT_NF4;
    culora_model *m = nullptr;
    EXPECT_EQ(culora_model_load(ctx.get(), data("llama").c_str(), &p, &m), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("full fine-tuning"), std::string::npos);
    p.mode = CULORA_MODE_INFERENCE;
    p.quant_format = CULORA_QUANT_NF4;
    p.quant_blocksize = 48;
    EXPECT_EQ(culora_model_load(ctx.get(), data("llama").c_str(), &p, &m), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("blocksize"), std::string::npos)
        << culora_context_last_error(ctx.get());
}
