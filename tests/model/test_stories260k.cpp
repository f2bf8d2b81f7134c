// test_stories260k.cpp — the LLaMA forward and greedy generation on real pretrained weights:
// stories260K (llama2.c) converted by culora, against transformers' logits and its 200-token
// greedy continuation (fixture: tests/gen/gen_stories260k_fixture.py). Skips without ../shared/data.
#include "test_util.h"

#include "culora/culora_io.h"
#include "culora/culora_model.h"

#include <jansson.h>
#include <unistd.h>

using namespace culora_test;

namespace {

std::vector<int32_t> ints(json_t *arr)
{
    std::vector<int32_t> v;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) v.push_back((int32_t)json_integer_value(e));
    return v;
}

}  // namespace

TEST(Stories260k, LogitsAndGreedyGenerationMatchTransformers)
{
    CULORA_REQUIRE_SHARED_DATA(shared);
    json_error_t err;
    json_t *doc = json_load_file((std::string(CULORA_TEST_DATA_DIR) + "/io/stories260k_logits.json").c_str(), 0, &err);
    ASSERT_NE(doc, nullptr) << err.text;
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    const std::string dir = ::testing::TempDir() + "stories260k_hf_" + std::to_string(getpid());
    ASSERT_EQ(culora_llama2c_convert(ctx.get(), (shared + "/stories260K.bin").c_str(), dir.c_str()), CULORA_OK)
        << culora_context_last_error(ctx.get());
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.max_seq = 256;
    culora_model *m = nullptr;
    ASSERT_EQ(culora_model_load(ctx.get(), dir.c_str(), &mp, &m), CULORA_OK) << culora_context_last_error(ctx.get());

    std::vector<int32_t> tokens = ints(json_object_get(doc, "tokens")), positions = ints(json_object_get(doc, "positions"));
    ASSERT_EQ(culora_model_forward(m, tokens.data(), nullptr, 1, (int64_t)tokens.size(), nullptr), CULORA_OK);
    const int64_t V = culora_model_get_config(m)->vocab_size;
    json_t *logits = json_object_get(doc, "logits");
    for (size_t i = 0; i < positions.size(); i++) {
        std::vector<float> got((size_t)V);
        ASSERT_EQ(culora_model_logits(m, positions[i], 1, got.data()), CULORA_OK);
        std::vector<double> want;
        size_t j;
        json_t *e;
        json_array_foreach(json_array_get(logits, i), j, e) want.push_back(json_number_value(e));
        // The fixture's notes: fp32 on both sides, logits of order 10, different summation orders.
        EXPECT_TRUE(all_close(("position " + std::to_string(positions[i])).c_str(), got, want, Tol{1e-4, 1e-4, 1e-10}));
    }

    json_t *greedy = json_object_get(doc, "greedy");
    std::vector<int32_t> want = ints(json_object_get(greedy, "tokens"));
    std::vector<int32_t> prompt_ids = ints(json_object_get(greedy, "prompt"));
    ASSERT_EQ(prompt_ids.size(), 1u);
    const int32_t prompt = prompt_ids[0];
    culora_generate_params gp = CULORA_GENERATE_PARAMS_INIT;
    gp.max_new_tokens = (int32_t)want.size();
    gp.temperature = 0.0f;
    std::vector<int32_t> out(1 + want.size());
    int64_t n = 0;
    ASSERT_EQ(culora_model_generate(m, &prompt, 1, &gp, out.data(), &n), CULORA_OK) << culora_context_last_error(ctx.get());
    ASSERT_EQ(n, (int64_t)want.size() + 1);
    // The smallest top-1/top-2 margin along the reference continuation is 2.9e-3 (step 37): far above
    // fp32 differences (~1e-5), so every token must agree.
    for (size_t i = 0; i < want.size(); i++) ASSERT_EQ(out[i + 1], want[i]) << "generated token " << i;
    culora_model_destroy(m);
    json_decref(doc);
    std::string cmd = "rm -rf '" + dir + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
}
