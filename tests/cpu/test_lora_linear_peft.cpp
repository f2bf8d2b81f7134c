// test_lora_linear_peft.cpp — external oracle: the CPU backend reproduces PyTorch + PEFT's LoRA
// linear (output and autograd gradients), for nn.Linear with and without bias, rsLoRA, r = 16,
// and GPT-2's Conv1D (fan_in_fan_out, W0 stored [in, out]). Fixture: tests/gen/gen_peft_lora_linear.py.
#include "json_test_util.h"
#include "lora_ref.h"

#include <jansson.h>

using namespace culora_test;

namespace {

std::vector<float> floats(json_t *obj, const char *key) { return json_floats(json_object_get(obj, key)); }

}  // namespace

TEST(LoraLinearPeft, CpuBackendMatchesPeftFixtures)
{
    const std::string path = std::string(CULORA_TEST_DATA_DIR) + "/peft_lora_linear.json";
    json_error_t err;
    json_t *doc = json_load_file(path.c_str(), 0, &err);
    ASSERT_NE(doc, nullptr) << path << ": " << err.text;
    json_t *cases = json_object_get(doc, "cases");
    ASSERT_GE(json_array_size(cases), 4u);
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    size_t idx;
    json_t *cj;
    json_array_foreach(cases, idx, cj) {
        const std::string name = json_string_value(json_object_get(cj, "name"));
        SCOPED_TRACE(name);
        LoraCase c{};
        c.m = json_integer_value(json_object_get(cj, "m"));
        c.k = json_integer_value(json_object_get(cj, "k"));
        c.d = json_integer_value(json_object_get(cj, "d"));
        c.r = (int32_t)json_integer_value(json_object_get(cj, "r"));
        c.alpha = (float)json_number_value(json_object_get(cj, "alpha"));
        c.bias = json_is_true(json_object_get(cj, "has_bias"));
        if (json_is_true(json_object_get(cj, "use_rslora"))) c.flags |= CULORA_LORA_RSLORA;
        const bool fifo = json_is_true(json_object_get(cj, "fan_in_fan_out"));
        if (fifo) c.flags |= CULORA_LORA_W0_TRANSPOSED;

        culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
        desc.r = c.r; desc.alpha = c.alpha; desc.flags = c.flags;
        EXPECT_NEAR(culora_lora_scaling(&desc), json_number_value(json_object_get(cj, "scaling")), 1e-6);

        LoraData in;
        in.x = floats(cj, "x");
        std::vector<float> w = floats(cj, "w0");  // as PEFT's base layer stores it
        in.w0 = fifo ? transpose(w, c.k, c.d) : w;  // logical [d, k]
        in.bias = c.bias ? floats(cj, "bias") : std::vector<float>((size_t)c.d, 0.0f);
        in.a = floats(cj, "lora_A");
        in.b = floats(cj, "lora_B");
        in.dy = floats(cj, "dy");
        in.dx0.assign((size_t)(c.m * c.k), 0.0f);
        in.da0.assign((size_t)(c.r * c.k), 0.0f);
        in.db0.assign((size_t)(c.d * c.r), 0.0f);
        ASSERT_EQ(in.x.size(), (size_t)(c.m * c.k));
        ASSERT_EQ(in.a.size(), (size_t)(c.r * c.k));
        ASSERT_EQ(in.b.size(), (size_t)(c.d * c.r));

        LoraOut out = run_lora(ctx.get(), c, in, LoraLayout{});
        auto want = [&](const char *key) { return to_double(floats(cj, key)); };
        // Both sides are fp32 with different summation orders over at most 40 terms: ≲ 40·2^-24
        // ≈ 2.4e-6 relative to the terms; 1e-5 of the RMS (+1e-5 relative) is the bound.
        auto tol = [](const std::vector<double> &r) { return Tol{1e-5 * rms(r), 1e-5, 1e-10}; };
        std::vector<double> y = want("y"), dx = want("dx"), da = want("dA"), db = want("dB");
        EXPECT_TRUE(all_close("y", out.y, y, tol(y)));
        EXPECT_TRUE(all_close("dx", out.dx, dx, tol(dx)));
        EXPECT_TRUE(all_close("dA", out.da, da, tol(da)));
        EXPECT_TRUE(all_close("dB", out.db, db, tol(db)));
    }
    json_decref(doc);
}
