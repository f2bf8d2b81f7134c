// test_hf_config_write.cpp — culora_model_config_save: save -> culora_model_config_load gives the
// same struct back (GPT-2 and LLaMA configs written by transformers, llama3 RoPE scaling, configs
// built by hand), the text is what transformers writes (sorted keys, 1e-05, 10000.0), the write is
// atomic, and configs the file cannot express are refused before anything is written.
// With CULORA_IO_EXPORT_DIR=DIR the configs go to DIR/config_*/config.json, with DIR/config_*.culora.json
// beside them (the struct and the parameter tensors culora expects) for tests/gen/check_config_write.py,
// which loads them with transformers' AutoConfig / AutoModelForCausalLM.
#include "io_test_util.h"

#include <cmath>
#include <memory>

using namespace culora_io_test;

namespace {

void expect_config_eq(const culora_model_config &a, const culora_model_config &b)
{
    EXPECT_EQ(a.arch, b.arch);
    EXPECT_STREQ(a.architecture, b.architecture);
    EXPECT_EQ(a.vocab_size, b.vocab_size);
    EXPECT_EQ(a.hidden_size, b.hidden_size);
    EXPECT_EQ(a.n_layers, b.n_layers);
    EXPECT_EQ(a.n_heads, b.n_heads);
    EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
    EXPECT_EQ(a.head_dim, b.head_dim);
    EXPECT_EQ(a.intermediate_size, b.intermediate_size);
    EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
    EXPECT_EQ(a.norm_eps, b.norm_eps);  // exact: the text reads back as the same double
    EXPECT_EQ(a.activation, b.activation);
    EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
    EXPECT_EQ(a.attention_bias, b.attention_bias);
    EXPECT_EQ(a.mlp_bias, b.mlp_bias);
    EXPECT_EQ(a.rope_type, b.rope_type);
    EXPECT_EQ(a.rope_theta, b.rope_theta);
    EXPECT_EQ(a.rope_factor, b.rope_factor);
    EXPECT_EQ(a.rope_low_freq_factor, b.rope_low_freq_factor);
    EXPECT_EQ(a.rope_high_freq_factor, b.rope_high_freq_factor);
    EXPECT_EQ(a.rope_original_max_position_embeddings, b.rope_original_max_position_embeddings);
    EXPECT_EQ(a.bos_token_id, b.bos_token_id);
    EXPECT_EQ(a.eos_token_id, b.eos_token_id);
}

culora_model_config llama_by_hand()
{
    culora_model_config c{};
    c.arch = CULORA_ARCH_LLAMA;  // architecture left empty: the name follows arch
    c.vocab_size = 96;
    c.hidden_size = 24;
    c.n_layers = 2;
    c.n_heads = 6;
    c.n_kv_heads = 2;
    c.head_dim = 6;  // hidden_size / n_heads would be 4: head_dim is written explicitly
    c.intermediate_size = 40;
    c.max_position_embeddings = 64;
    c.norm_eps = 1e-6;
    c.activation = CULORA_ACT_SILU;
    c.tie_word_embeddings = false;
    c.attention_bias = true;
    c.mlp_bias = false;
    c.rope_type = CULORA_ROPE_DEFAULT;
    c.rope_theta = 500000.0;
    c.bos_token_id = -1;
    c.eos_token_id = 5;
    return c;
}

culora_model_config gpt2_by_hand()
{
    culora_model_config c{};
    c.arch = CULORA_ARCH_GPT2;
    snprintf(c.architecture, sizeof c.architecture, "GPT2LMHeadModel");
    c.vocab_size = 100;
    c.hidden_size = 32;
    c.n_layers = 3;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.head_dim = 8;
    c.intermediate_size = 96;  // not 4 * n_embd: written as n_inner
    c.max_position_embeddings = 40;
    c.norm_eps = 1e-5;
    c.activation = CULORA_ACT_RELU;
    c.tie_word_embeddings = false;
    c.attention_bias = true;
    c.mlp_bias = true;
    c.rope_type = CULORA_ROPE_NONE;
    c.bos_token_id = -1;
    c.eos_token_id = -1;
    return c;
}

class ConfigWrite : public IoTest {
  protected:
    std::unique_ptr<TempDir> tmp;
    std::string out;
    void SetUp() override
    {
        IoTest::SetUp();
        const char *env = getenv("CULORA_IO_EXPORT_DIR");
        if (env != nullptr && *env) {
            out = env;
            mkdir(out.c_str(), 0755);
        } else {
            tmp = std::make_unique<TempDir>();
            out = tmp->path();
        }
    }

    // Saves c into out/name/, loads it back, compares, and writes out/name/culora.json.
    void round_trip(const std::string &name, const culora_model_config &c, culora_model_config *back_out = nullptr)
    {
        std::string dir = out + "/" + name;
        mkdir(dir.c_str(), 0755);
        ASSERT_EQ(culora_model_config_save(ctx, &c, dir.c_str()), CULORA_OK) << msg();
        culora_model_config back{};
        ASSERT_EQ(culora_model_config_load(ctx, dir.c_str(), &back), CULORA_OK) << msg();
        culora_model_config want = c;
        if (want.architecture[0] == '\0')
            snprintf(want.architecture, sizeof want.architecture, "%s",
                     c.arch == CULORA_ARCH_GPT2 ? "GPT2LMHeadModel" : "LlamaForCausalLM");
        expect_config_eq(back, want);
        EXPECT_EQ(list_dir(dir), std::vector<std::string>{"config.json"}) << "no temporary left behind";
        if (tmp == nullptr)  // exporting: out/name.culora.json beside the directory
            write_culora_json(out + "/" + name + ".culora.json", back);
        if (back_out != nullptr)
            *back_out = back;
    }

    // The struct and its expected parameter tensors, for check_config_write.py.
    void write_culora_json(const std::string &path, const culora_model_config &c)
    {
        json_t *o = json_object();
        json_object_set_new(o, "architecture", json_string(c.architecture));
        json_object_set_new(o, "vocab_size", json_integer(c.vocab_size));
        json_object_set_new(o, "hidden_size", json_integer(c.hidden_size));
        json_object_set_new(o, "n_layers", json_integer(c.n_layers));
        json_object_set_new(o, "n_heads", json_integer(c.n_heads));
        json_object_set_new(o, "n_kv_heads", json_integer(c.n_kv_heads));
        json_object_set_new(o, "head_dim", json_integer(c.head_dim));
        json_object_set_new(o, "intermediate_size", json_integer(c.intermediate_size));
        json_object_set_new(o, "max_position_embeddings", json_integer(c.max_position_embeddings));
        json_object_set_new(o, "norm_eps", json_real(c.norm_eps));
        json_object_set_new(o, "activation", json_integer(c.activation));
        json_object_set_new(o, "tie_word_embeddings", json_boolean(c.tie_word_embeddings));
        json_object_set_new(o, "attention_bias", json_boolean(c.attention_bias));
        json_object_set_new(o, "mlp_bias", json_boolean(c.mlp_bias));
        json_object_set_new(o, "rope_type", json_integer(c.rope_type));
        json_object_set_new(o, "rope_theta", json_real(c.rope_theta));
        json_object_set_new(o, "rope_factor", json_real(c.rope_factor));
        json_object_set_new(o, "rope_low_freq_factor", json_real(c.rope_low_freq_factor));
        json_object_set_new(o, "rope_high_freq_factor", json_real(c.rope_high_freq_factor));
        json_object_set_new(o, "rope_original_max_position_embeddings",
                            json_integer(c.rope_original_max_position_embeddings));
        json_object_set_new(o, "bos_token_id", json_integer(c.bos_token_id));
        json_object_set_new(o, "eos_token_id", json_integer(c.eos_token_id));
        json_t *tensors = json_object();
        for (size_t i = 0; i < culora_model_config_n_tensors(&c); i++) {
            culora_tensor_spec s;
            ASSERT_EQ(culora_model_config_tensor(ctx, &c, i, &s), CULORA_OK) << msg();
            json_t *shape = json_array();
            for (int d = 0; d < s.n_dims; d++)
                json_array_append_new(shape, json_integer(s.shape[d]));
            json_object_set_new(tensors, s.name, shape);
        }
        json_object_set_new(o, "tensors", tensors);
        EXPECT_EQ(json_dump_file(o, path.c_str(), JSON_INDENT(1) | JSON_SORT_KEYS), 0) << path;
        json_decref(o);
    }

    culora_model_config load_fixture(const std::string &rel)
    {
        culora_model_config c{};
        EXPECT_EQ(culora_model_config_load(ctx, fixture(rel).c_str(), &c), CULORA_OK) << msg();
        return c;
    }
};

TEST_F(ConfigWrite, Gpt2FromTransformersRoundTrips)
{
    culora_model_config back{};
    round_trip("config_gpt2", load_fixture("gpt2"), &back);
    std::string text = read_bytes(out + "/config_gpt2/config.json");
    EXPECT_NE(text.find("\"architectures\": [\n    \"GPT2LMHeadModel\"\n  ],"), std::string::npos) << text;
    EXPECT_NE(text.find("\"model_type\": \"gpt2\""), std::string::npos) << text;
    EXPECT_NE(text.find("\"layer_norm_epsilon\": 1e-05,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"activation_function\": \"gelu_new\""), std::string::npos) << text;
    EXPECT_NE(text.find("\"n_inner\": 64,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"bos_token_id\": 50256,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"torch_dtype\": \"float32\""), std::string::npos) << text;
    // still checks against the fixture's weights
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("gpt2").c_str(), &st), CULORA_OK) << msg();
    EXPECT_EQ(culora_model_config_check(ctx, &back, st), CULORA_OK) << msg();
    culora_safetensors_close(st);
}

TEST_F(ConfigWrite, LlamaFromTransformersRoundTrips)
{
    round_trip("config_llama", load_fixture("llama"));
    round_trip("config_llama_sharded", load_fixture("llama_sharded"));
}

TEST_F(ConfigWrite, Llama3RopeScalingRoundTripsAndReadsAsTransformersWritesIt)
{
    culora_model_config back{};
    round_trip("config_llama3", load_fixture("configs/llama3_rope.json"), &back);
    EXPECT_EQ(back.rope_type, CULORA_ROPE_LLAMA3);
    EXPECT_EQ(back.rope_factor, 32.0);
    EXPECT_EQ(back.eos_token_id, 128001);  // a list in the source: the first entry is kept
    std::string text = read_bytes(out + "/config_llama3/config.json");
    const char *want =
        "{\n"
        "  \"architectures\": [\n"
        "    \"LlamaForCausalLM\"\n"
        "  ],\n"
        "  \"attention_bias\": false,\n"
        "  \"bos_token_id\": 128000,\n"
        "  \"dtype\": \"float32\",\n"
        "  \"eos_token_id\": 128001,\n"
        "  \"head_dim\": 8,\n"
        "  \"hidden_act\": \"silu\",\n"
        "  \"hidden_size\": 32,\n"
        "  \"intermediate_size\": 64,\n"
        "  \"max_position_embeddings\": 2048,\n"
        "  \"mlp_bias\": false,\n"
        "  \"model_type\": \"llama\",\n"
        "  \"num_attention_heads\": 4,\n"
        "  \"num_hidden_layers\": 1,\n"
        "  \"num_key_value_heads\": 1,\n"
        "  \"pretraining_tp\": 1,\n"
        "  \"rms_norm_eps\": 1e-06,\n"
        "  \"rope_scaling\": {\n"
        "    \"factor\": 32.0,\n"
        "    \"high_freq_factor\": 4.0,\n"
        "    \"low_freq_factor\": 1.0,\n"
        "    \"original_max_position_embeddings\": 8192,\n"
        "    \"rope_type\": \"llama3\"\n"
        "  },\n"
        "  \"rope_theta\": 500000.0,\n"
        "  \"tie_word_embeddings\": true,\n"
        "  \"torch_dtype\": \"float32\",\n"
        "  \"vocab_size\": 128\n"
        "}\n";
    EXPECT_EQ(text, want);
}

TEST_F(ConfigWrite, HandBuiltConfigsRoundTrip)
{
    round_trip("config_llama_by_hand", llama_by_hand());
    std::string text = read_bytes(out + "/config_llama_by_hand/config.json");
    EXPECT_NE(text.find("\"bos_token_id\": null,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"head_dim\": 6,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"rope_scaling\": null,"), std::string::npos) << text;
    round_trip("config_gpt2_by_hand", gpt2_by_hand());
    text = read_bytes(out + "/config_gpt2_by_hand/config.json");
    EXPECT_NE(text.find("\"activation_function\": \"relu\""), std::string::npos) << text;
    EXPECT_NE(text.find("\"tie_word_embeddings\": false,"), std::string::npos) << text;
}

TEST_F(ConfigWrite, RealsAreShortestAndExact)
{
    struct {
        double v;
        const char *text;  // as Python's json.dumps writes it
    } cases[] = {
        {1e-5, "1e-05"},        {1e-6, "1e-06"},       {0.1, "0.1"},           {1e-12, "1e-12"},
        {3.14159, "3.14159"},   {1234567.5, "1234567.5"}, {2.0 / 3.0, "0.6666666666666666"},
        {0.0001, "0.0001"},     {0.00012, "0.00012"},  {1e16, "1e+16"},       {123456789012345.0, "123456789012345.0"},
        {5e-324, "5e-324"},     {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    TempDir dir;
    for (const auto &c : cases) {
        culora_model_config cfg = llama_by_hand();
        cfg.norm_eps = c.v;
        cfg.rope_theta = c.v;
        ASSERT_EQ(culora_model_config_save(ctx, &cfg, (dir / "c.json").c_str()), CULORA_OK) << msg();
        std::string text = read_bytes(dir / "c.json");
        EXPECT_NE(text.find(std::string("\"rms_norm_eps\": ") + c.text + ","), std::string::npos) << text;
        EXPECT_NE(text.find(std::string("\"rope_theta\": ") + c.text + ","), std::string::npos) << text;
        culora_model_config back{};
        ASSERT_EQ(culora_model_config_load(ctx, (dir / "c.json").c_str(), &back), CULORA_OK) << msg();
        EXPECT_EQ(back.norm_eps, c.v) << c.text;
        EXPECT_EQ(back.rope_theta, c.v) << c.text;
    }
}

TEST_F(ConfigWrite, FilePathAndAtomicReplace)
{
    TempDir dir;
    write_bytes(dir / "my_config.json", "{\"old\": true}");
    culora_model_config c = llama_by_hand();
    ASSERT_EQ(culora_model_config_save(ctx, &c, (dir / "my_config.json").c_str()), CULORA_OK) << msg();
    EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"my_config.json"});
    culora_model_config back{};
    ASSERT_EQ(culora_model_config_load(ctx, (dir / "my_config.json").c_str(), &back), CULORA_OK) << msg();
    EXPECT_EQ(back.n_kv_heads, 2);
    // a directory that does not exist is an I/O error naming the path; the old file stays
    EXPECT_EQ(culora_model_config_save(ctx, &c, (dir / "missing/config.json").c_str()), CULORA_ERR_IO);
    EXPECT_NE(msg().find("missing/config.json"), std::string::npos) << msg();
}

TEST_F(ConfigWrite, InexpressibleConfigsAreRefusedAndNothingIsWritten)
{
    struct Case {
        const char *what;
        culora_model_config c;
        const char *message;
    };
    std::vector<Case> cases;
    auto add = [&](const char *what, culora_model_config c, const char *message) { cases.push_back({what, c, message}); };
    culora_model_config c;
    c = gpt2_by_hand(); c.n_kv_heads = 2;                     add("gpt2 gqa", c, "no grouped-query attention");
    c = gpt2_by_hand(); c.head_dim = 4;                       add("gpt2 head_dim", c, "head_dim * n_heads == hidden_size");
    c = gpt2_by_hand(); c.mlp_bias = false;                   add("gpt2 no bias", c, "always has attention and MLP biases");
    c = gpt2_by_hand(); c.rope_type = CULORA_ROPE_DEFAULT;    add("gpt2 rope", c, "learned positions, not RoPE");
    c = llama_by_hand(); c.activation = CULORA_ACT_GELU;      add("llama gelu", c, "SwiGLU");
    c = llama_by_hand(); c.head_dim = 5;                      add("llama odd head_dim", c, "head_dim must be even");
    c = llama_by_hand(); c.n_kv_heads = 4;                    add("llama kv", c, "n_heads must be a multiple of n_kv_heads");
    c = llama_by_hand(); c.rope_type = CULORA_ROPE_NONE;      add("llama no rope", c, "rope_type");
    c = llama_by_hand(); c.rope_theta = 0;                    add("llama theta", c, "rope_theta must be positive");
    c = llama_by_hand(); c.rope_type = CULORA_ROPE_LLAMA3; c.rope_factor = NAN;
                                                              add("llama3 nan", c, "factors must be finite");
    c = llama_by_hand(); c.rope_type = CULORA_ROPE_LLAMA3; c.rope_factor = 8;
                                                              add("llama3 orig max", c, "rope_original_max_position_embeddings = 0");
    c = llama_by_hand(); c.vocab_size = 0;                    add("zero vocab", c, "vocab_size = 0 must be positive");
    c = llama_by_hand(); c.n_layers = -1;                     add("negative layers", c, "n_layers = -1 must be positive");
    c = llama_by_hand(); c.norm_eps = INFINITY;               add("inf eps", c, "norm_eps must be positive and finite");
    c = llama_by_hand(); c.norm_eps = -1e-5;                  add("negative eps", c, "norm_eps");
    c = llama_by_hand(); c.bos_token_id = -7;                 add("bad bos", c, "bos_token_id");
    c = llama_by_hand(); c.activation = (culora_activation)42; add("bad activation", c, "culora_activation");
    c = llama_by_hand(); c.arch = (culora_arch)7;             add("bad arch", c, "neither CULORA_ARCH_GPT2");
    c = llama_by_hand(); snprintf(c.architecture, sizeof c.architecture, "GPT2LMHeadModel");
                                                              add("name mismatch", c, "does not match arch");
    TempDir dir;
    for (const Case &k : cases) {
        SCOPED_TRACE(k.what);
        EXPECT_EQ(culora_model_config_save(ctx, &k.c, dir.path().c_str()), CULORA_ERR_INVALID_ARG) << msg();
        EXPECT_NE(msg().find(k.message), std::string::npos) << msg();
        EXPECT_NE(msg().find("config.json: cannot write config.json"), std::string::npos) << msg();
        EXPECT_TRUE(list_dir(dir.path()).empty());
    }
    EXPECT_EQ(culora_model_config_save(ctx, nullptr, dir.path().c_str()), CULORA_ERR_INVALID_ARG);
    culora_model_config ok = llama_by_hand();
    EXPECT_EQ(culora_model_config_save(ctx, &ok, nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_model_config_save(nullptr, &ok, dir.path().c_str()), CULORA_OK);  // NULL ctx: no message
}

}  // namespace
