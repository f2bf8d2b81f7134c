// test_hf_config.cpp — config.json written by transformers for GPT-2 and LLaMA, the tensors of the
// matching model.safetensors checked against it, and the refusals (unsupported architecture,
// unsupported options, a missing or mis-shaped tensor named in the message).
#include "io_test_util.h"

using namespace culora_io_test;

namespace {

class HfConfig : public IoTest {
  protected:
    culora_model_config cfg{};
    // Writes text as dir/config.json and loads it.
    culora_status load_text(TempDir &dir, const std::string &text)
    {
        write_bytes(dir / "config.json", text);
        return culora_model_config_load(ctx, dir.path().c_str(), &cfg);
    }
};

TEST_F(HfConfig, Gpt2FromTransformers)
{
    ASSERT_EQ(culora_model_config_load(ctx, fixture("gpt2").c_str(), &cfg), CULORA_OK) << msg();
    EXPECT_EQ(cfg.arch, CULORA_ARCH_GPT2);
    EXPECT_STREQ(cfg.architecture, "GPT2LMHeadModel");
    EXPECT_EQ(cfg.vocab_size, 64);
    EXPECT_EQ(cfg.hidden_size, 16);
    EXPECT_EQ(cfg.n_layers, 2);
    EXPECT_EQ(cfg.n_heads, 2);
    EXPECT_EQ(cfg.n_kv_heads, 2);
    EXPECT_EQ(cfg.head_dim, 8);
    EXPECT_EQ(cfg.intermediate_size, 64); // n_inner null -> 4 * n_embd
    EXPECT_EQ(cfg.max_position_embeddings, 16);
    EXPECT_DOUBLE_EQ(cfg.norm_eps, 1e-5);
    EXPECT_EQ(cfg.activation, CULORA_ACT_GELU_TANH);
    EXPECT_TRUE(cfg.tie_word_embeddings);
    EXPECT_EQ(cfg.rope_type, CULORA_ROPE_NONE);
    EXPECT_EQ(cfg.bos_token_id, 50256);

    // transformers saves GPT2LMHeadModel with the "transformer." prefix; tied: no lm_head
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("gpt2").c_str(), &st), CULORA_OK) << msg();
    EXPECT_EQ(culora_model_config_check(ctx, &cfg, st), CULORA_OK) << msg();
    EXPECT_EQ(culora_model_config_n_tensors(&cfg), culora_safetensors_count(st));
    const culora_tensor_info *t = culora_model_find_tensor(&cfg, st, "h.1.attn.c_attn.weight");
    ASSERT_NE(t, nullptr);
    EXPECT_STREQ(t->name, "transformer.h.1.attn.c_attn.weight");
    EXPECT_EQ(t->shape[0], 16); // Conv1D: [in, out]
    EXPECT_EQ(t->shape[1], 48);
    culora_tensor_spec spec;
    ASSERT_EQ(culora_model_config_tensor(ctx, &cfg, 0, &spec), CULORA_OK);
    EXPECT_STREQ(spec.name, "wte.weight");
    ASSERT_EQ(culora_model_config_tensor(ctx, &cfg, 2 + 10, &spec), CULORA_OK);
    EXPECT_STREQ(spec.name, "h.0.mlp.c_proj.weight");
    EXPECT_EQ(spec.shape[0], 64);
    EXPECT_EQ(spec.shape[1], 16);
    EXPECT_EQ(culora_model_config_tensor(ctx, &cfg, 1000, &spec), CULORA_ERR_INVALID_ARG);
    culora_safetensors_close(st);
}

TEST_F(HfConfig, LlamaFromTransformersWithGqaAndRopeParameters)
{
    ASSERT_EQ(culora_model_config_load(ctx, fixture("llama/config.json").c_str(), &cfg), CULORA_OK) << msg();
    EXPECT_EQ(cfg.arch, CULORA_ARCH_LLAMA);
    EXPECT_EQ(cfg.hidden_size, 16);
    EXPECT_EQ(cfg.n_heads, 4);
    EXPECT_EQ(cfg.n_kv_heads, 2);
    EXPECT_EQ(cfg.head_dim, 4);
    EXPECT_EQ(cfg.intermediate_size, 32);
    EXPECT_DOUBLE_EQ(cfg.rope_theta, 500000.0); // from transformers 5's "rope_parameters"
    EXPECT_EQ(cfg.rope_type, CULORA_ROPE_DEFAULT);
    EXPECT_DOUBLE_EQ(cfg.norm_eps, 1e-5);
    EXPECT_FALSE(cfg.tie_word_embeddings);
    EXPECT_FALSE(cfg.attention_bias);
    EXPECT_EQ(cfg.activation, CULORA_ACT_SILU);

    for (const char *model : {"llama", "llama_sharded"}) {
        SCOPED_TRACE(model);
        culora_safetensors *st = nullptr;
        ASSERT_EQ(culora_safetensors_open(ctx, fixture(model).c_str(), &st), CULORA_OK) << msg();
        EXPECT_EQ(culora_model_config_check(ctx, &cfg, st), CULORA_OK) << msg();
        EXPECT_EQ(culora_model_config_n_tensors(&cfg), culora_safetensors_count(st));
        const culora_tensor_info *k = culora_model_find_tensor(&cfg, st, "model.layers.0.self_attn.k_proj.weight");
        ASSERT_NE(k, nullptr);
        EXPECT_EQ(k->shape[0], 8); // n_kv_heads * head_dim
        EXPECT_EQ(k->shape[1], 16);
        culora_safetensors_close(st);
    }
}

TEST_F(HfConfig, Llama3RopeScalingTiedAndTokenLists)
{
    ASSERT_EQ(culora_model_config_load(ctx, fixture("configs/llama3_rope.json").c_str(), &cfg), CULORA_OK) << msg();
    EXPECT_EQ(cfg.rope_type, CULORA_ROPE_LLAMA3);
    EXPECT_DOUBLE_EQ(cfg.rope_theta, 500000.0);
    EXPECT_DOUBLE_EQ(cfg.rope_factor, 32.0);
    EXPECT_DOUBLE_EQ(cfg.rope_low_freq_factor, 1.0);
    EXPECT_DOUBLE_EQ(cfg.rope_high_freq_factor, 4.0);
    EXPECT_EQ(cfg.rope_original_max_position_embeddings, 8192);
    EXPECT_TRUE(cfg.tie_word_embeddings);
    EXPECT_EQ(cfg.n_kv_heads, 1);
    EXPECT_EQ(cfg.eos_token_id, 128001); // first of a list
    EXPECT_EQ(cfg.bos_token_id, 128000);
    // tied: no lm_head among the expected tensors
    size_t n = culora_model_config_n_tensors(&cfg);
    EXPECT_EQ(n, 1u + 9u + 1u);
    culora_tensor_spec spec;
    ASSERT_EQ(culora_model_config_tensor(ctx, &cfg, n - 1, &spec), CULORA_OK);
    EXPECT_STREQ(spec.name, "model.norm.weight");

    // the older spelling: top-level rope_theta + rope_scaling {"type": ...}
    TempDir dir;
    ASSERT_EQ(load_text(dir, R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"num_attention_heads":8,
        "num_hidden_layers":1,"intermediate_size":128,"vocab_size":100,"rope_theta":1234.0,
        "rope_scaling":{"type":"llama3","factor":8.0,"original_max_position_embeddings":4096}})"),
              CULORA_OK) << msg();
    EXPECT_DOUBLE_EQ(cfg.rope_theta, 1234.0);
    EXPECT_EQ(cfg.rope_type, CULORA_ROPE_LLAMA3);
    EXPECT_EQ(cfg.rope_original_max_position_embeddings, 4096);
    EXPECT_EQ(cfg.n_kv_heads, 8); // absent -> num_attention_heads
    EXPECT_EQ(cfg.head_dim, 8);
}

TEST_F(HfConfig, DefaultsWhenFieldsAreAbsent)
{
    TempDir dir;
    ASSERT_EQ(load_text(dir, R"({"model_type":"gpt2"})"), CULORA_OK) << msg();
    EXPECT_EQ(cfg.arch, CULORA_ARCH_GPT2);
    EXPECT_EQ(cfg.vocab_size, 50257);
    EXPECT_EQ(cfg.hidden_size, 768);
    EXPECT_EQ(cfg.n_layers, 12);
    EXPECT_EQ(cfg.intermediate_size, 3072);
    EXPECT_EQ(cfg.max_position_embeddings, 1024);
    EXPECT_EQ(culora_model_config_n_tensors(&cfg), 2u + 12u * 12u + 2u);
    ASSERT_EQ(load_text(dir, R"({"model_type":"llama"})"), CULORA_OK) << msg();
    EXPECT_EQ(cfg.hidden_size, 4096);
    EXPECT_DOUBLE_EQ(cfg.rope_theta, 10000.0);
    EXPECT_EQ(culora_model_config_n_tensors(&cfg), 1u + 32u * 9u + 1u + 1u);
}

TEST_F(HfConfig, UnsupportedArchitecturesAndOptions)
{
    EXPECT_EQ(culora_model_config_load(ctx, fixture("configs/unsupported_arch.json").c_str(), &cfg),
              CULORA_ERR_UNSUPPORTED);
    EXPECT_NE(msg().find("unsupported architecture 'GPT2ForSequenceClassification'"), std::string::npos) << msg();
    EXPECT_NE(msg().find("unsupported_arch.json"), std::string::npos) << msg();

    TempDir dir;
    struct Bad {
        const char *json;
        culora_status status;
        const char *expect;
    } bad[] = {
        {R"({"architectures":["MistralForCausalLM"]})", CULORA_ERR_UNSUPPORTED, "unsupported architecture 'MistralForCausalLM'"},
        {R"({"model_type":"t5"})", CULORA_ERR_UNSUPPORTED, "unsupported architecture 't5'"},
        {R"({"architectures":["GPT2LMHeadModel","LlamaForCausalLM"]})", CULORA_ERR_UNSUPPORTED, "several architectures"},
        {R"({"n_embd":16})", CULORA_ERR_FORMAT, "neither \"architectures\" nor \"model_type\""},
        {R"({"model_type":"gpt2","add_cross_attention":true})", CULORA_ERR_UNSUPPORTED, "add_cross_attention=true"},
        {R"({"model_type":"gpt2","scale_attn_by_inverse_layer_idx":true})", CULORA_ERR_UNSUPPORTED,
         "scale_attn_by_inverse_layer_idx"},
        {R"({"model_type":"gpt2","activation_function":"mish"})", CULORA_ERR_UNSUPPORTED, "activation_function 'mish'"},
        {R"({"model_type":"llama","hidden_act":"gelu"})", CULORA_ERR_UNSUPPORTED, "hidden_act 'gelu'"},
        {R"({"model_type":"llama","rope_scaling":{"rope_type":"yarn","factor":4.0}})", CULORA_ERR_UNSUPPORTED,
         "rope_type 'yarn'"},
        {R"({"model_type":"gpt2","n_embd":"768"})", CULORA_ERR_FORMAT, "\"n_embd\" is not an integer"},
        {R"({"model_type":"gpt2","n_layer":0})", CULORA_ERR_FORMAT, "\"n_layer\" = 0 must be positive"},
        {R"({"model_type":"gpt2","n_embd":100,"n_head":12})", CULORA_ERR_FORMAT, "not a multiple of n_head"},
        {R"({"model_type":"llama","num_attention_heads":32,"num_key_value_heads":5})", CULORA_ERR_FORMAT,
         "not a multiple of num_key_value_heads"},
        {R"({"model_type":"llama","tie_word_embeddings":"yes"})", CULORA_ERR_FORMAT, "\"tie_word_embeddings\" is not true or false"},
        {R"({"model_type":"llama","rms_norm_eps":-1})", CULORA_ERR_FORMAT, "epsilon"},
        {R"({"model_type":"llama","model_type":"gpt2"})", CULORA_ERR_FORMAT, "duplicate"},
        {R"({"model_type":)", CULORA_ERR_FORMAT, "not valid JSON"},
        {R"([1])", CULORA_ERR_FORMAT, "not a JSON object"},
    };
    for (const Bad &b : bad) {
        SCOPED_TRACE(b.json);
        EXPECT_EQ(load_text(dir, b.json), b.status) << msg();
        EXPECT_NE(msg().find(b.expect), std::string::npos) << msg();
        EXPECT_NE(msg().find("config.json"), std::string::npos) << msg();
    }
    EXPECT_EQ(culora_model_config_load(ctx, (dir / "nothing").c_str(), &cfg), CULORA_ERR_IO);
}

// Copies every tensor of src except skip (optionally replacing one) into a new file.
void copy_model(culora_context *ctx, const culora_safetensors *src, const std::string &path, const std::string &skip,
                const std::string &reshape = "", const std::string &extra = "")
{
    culora_safetensors_writer *w = nullptr;
    ASSERT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
    std::vector<float> dummy(1 << 16, 0.0f);
    for (size_t i = 0; i < culora_safetensors_count(src); i++) {
        const culora_tensor_info *t = culora_safetensors_at(src, i);
        if (skip == t->name)
            continue;
        if (reshape == t->name) { // transpose the shape: same bytes, wrong layout
            int64_t sh[2] = {t->shape[1], t->shape[0]};
            ASSERT_EQ(culora_safetensors_writer_add(ctx, w, t->name, t->dtype, 2, sh, t->data, t->n_bytes), CULORA_OK);
            continue;
        }
        ASSERT_EQ(culora_safetensors_writer_add(ctx, w, t->name, t->dtype, t->n_dims, t->shape, t->data, t->n_bytes),
                  CULORA_OK);
    }
    if (!extra.empty()) {
        int64_t sh[1] = {4};
        ASSERT_EQ(culora_safetensors_writer_add(ctx, w, extra.c_str(), CULORA_ST_F32, 1, sh, dummy.data(), 16),
                  CULORA_OK);
    }
    ASSERT_EQ(culora_safetensors_writer_save(ctx, w, path.c_str()), CULORA_OK);
    culora_safetensors_writer_destroy(w);
}

TEST_F(HfConfig, CheckNamesTheFirstMissingOrMismatchedTensor)
{
    ASSERT_EQ(culora_model_config_load(ctx, fixture("llama").c_str(), &cfg), CULORA_OK);
    culora_safetensors *src = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("llama").c_str(), &src), CULORA_OK);
    TempDir dir;
    struct Case {
        std::string skip, reshape, extra, expect;
    } cases[] = {
        {"model.layers.1.mlp.up_proj.weight", "", "", "tensor 'model.layers.1.mlp.up_proj.weight' is missing"},
        {"lm_head.weight", "", "", "tensor 'lm_head.weight' is missing"},
        {"", "model.layers.0.self_attn.o_proj.weight", "",
         "tensor 'model.layers.0.self_attn.o_proj.weight' has shape [16, 16]"}, // square: shape equal, passes
        {"", "model.layers.0.self_attn.k_proj.weight", "",
         "tensor 'model.layers.0.self_attn.k_proj.weight' has shape [16, 8] but config.json implies [8, 16]"},
        {"", "", "model.layers.0.self_attn.q_proj.bias", "tensor 'model.layers.0.self_attn.q_proj.bias' is not a parameter"},
        {"", "", "model.layers.0.self_attn.rotary_emb.inv_freq", ""}, // buffer: skipped
    };
    int i = 0;
    for (const Case &c : cases) {
        SCOPED_TRACE(c.expect);
        std::string path = dir / ("m" + std::to_string(i++) + ".safetensors");
        copy_model(ctx, src, path, c.skip, c.reshape, c.extra);
        culora_safetensors *st = nullptr;
        ASSERT_EQ(culora_safetensors_open(ctx, path.c_str(), &st), CULORA_OK) << msg();
        culora_status s = culora_model_config_check(ctx, &cfg, st);
        if (c.expect.empty() || c.reshape == "model.layers.0.self_attn.o_proj.weight") {
            EXPECT_EQ(s, CULORA_OK) << msg();
        } else {
            EXPECT_EQ(s, CULORA_ERR_FORMAT);
            EXPECT_NE(msg().find(c.expect), std::string::npos) << msg();
        }
        culora_safetensors_close(st);
    }

    // a non-float dtype is refused with the tensor's name
    culora_safetensors_writer *w = nullptr;
    ASSERT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
    std::vector<int32_t> ints(64 * 16);
    for (size_t k = 0; k < culora_safetensors_count(src); k++) {
        const culora_tensor_info *t = culora_safetensors_at(src, k);
        bool emb = strcmp(t->name, "model.embed_tokens.weight") == 0;
        ASSERT_EQ(culora_safetensors_writer_add(ctx, w, t->name, emb ? CULORA_ST_I32 : t->dtype, t->n_dims, t->shape,
                                                emb ? (const void *)ints.data() : t->data, t->n_bytes), CULORA_OK);
    }
    std::string p = dir / "ints.safetensors";
    ASSERT_EQ(culora_safetensors_writer_save(ctx, w, p.c_str()), CULORA_OK);
    culora_safetensors_writer_destroy(w);
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, p.c_str(), &st), CULORA_OK);
    EXPECT_EQ(culora_model_config_check(ctx, &cfg, st), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("tensor 'model.embed_tokens.weight' has dtype I32"), std::string::npos) << msg();
    culora_safetensors_close(st);

    // the GPT-2 weights do not fit the LLaMA config
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("gpt2").c_str(), &st), CULORA_OK);
    EXPECT_EQ(culora_model_config_check(ctx, &cfg, st), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("tensor 'model.embed_tokens.weight' is missing"), std::string::npos) << msg();
    culora_safetensors_close(st);
    culora_safetensors_close(src);
}

TEST_F(HfConfig, Gpt2WithoutPrefixAndWithMaskBuffers)
{
    // the hub's openai-community/gpt2 layout: no "transformer." prefix, h.N.attn.bias mask buffers
    ASSERT_EQ(culora_model_config_load(ctx, fixture("gpt2").c_str(), &cfg), CULORA_OK);
    culora_safetensors *src = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("gpt2").c_str(), &src), CULORA_OK);
    culora_safetensors_writer *w = nullptr;
    ASSERT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
    std::vector<std::string> names;
    for (size_t i = 0; i < culora_safetensors_count(src); i++)
        names.push_back(culora_safetensors_at(src, i)->name + strlen("transformer."));
    for (size_t i = 0; i < culora_safetensors_count(src); i++) {
        const culora_tensor_info *t = culora_safetensors_at(src, i);
        ASSERT_EQ(culora_safetensors_writer_add(ctx, w, names[i].c_str(), t->dtype, t->n_dims, t->shape, t->data,
                                                t->n_bytes), CULORA_OK);
    }
    std::vector<float> mask(16 * 16, 1.0f);
    int64_t msh[4] = {1, 1, 16, 16};
    ASSERT_EQ(culora_safetensors_writer_add(ctx, w, "h.0.attn.bias", CULORA_ST_F32, 4, msh, mask.data(), 1024), CULORA_OK);
    ASSERT_EQ(culora_safetensors_writer_add(ctx, w, "h.1.attn.bias", CULORA_ST_F32, 4, msh, mask.data(), 1024), CULORA_OK);
    TempDir dir;
    ASSERT_EQ(culora_safetensors_writer_save(ctx, w, (dir / "model.safetensors").c_str()), CULORA_OK);
    culora_safetensors_writer_destroy(w);
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, dir.path().c_str(), &st), CULORA_OK);
    EXPECT_EQ(culora_model_config_check(ctx, &cfg, st), CULORA_OK) << msg();
    ASSERT_NE(culora_model_find_tensor(&cfg, st, "wte.weight"), nullptr);
    EXPECT_STREQ(culora_model_find_tensor(&cfg, st, "wte.weight")->name, "wte.weight");
    culora_safetensors_close(st);
    culora_safetensors_close(src);
}

} // namespace
