// test_peft_adapter.cpp — PEFT adapters saved by save_pretrained load with PEFT's own delta weights
// and module decisions (target_modules, rank_pattern, alpha_pattern, rsLoRA, embeddings,
// modules_to_save); save -> load round trips; refusals of what culora does not implement.
#include "io_test_util.h"

#include <cmath>

using namespace culora_io_test;

namespace {

class PeftAdapter : public IoTest {
  protected:
    static json_t *expected()
    {
        static json_t *j = load_json(fixture("adapters_expected.json"));
        return j;
    }
};

// scaling * B @ A as PEFT's get_delta_weight returns it ([out, in], or [in, out] when transposed).
std::vector<double> delta(const culora_lora_module *m, bool transposed)
{
    std::vector<double> d((size_t)(m->out_features * m->in_features));
    for (int64_t o = 0; o < m->out_features; o++)
        for (int64_t i = 0; i < m->in_features; i++) {
            double s = 0;
            for (int32_t k = 0; k < m->r; k++)
                s += (double)m->B[o * m->r + k] * m->A[k * m->in_features + i];
            size_t idx = transposed ? (size_t)(i * m->out_features + o) : (size_t)(o * m->in_features + i);
            d[idx] = s * m->scaling;
        }
    return d;
}

void check_against_peft(culora_context *ctx, const culora_adapter *ad, json_t *exp)
{
    const culora_lora_config *cfg = culora_adapter_config(ad);
    const char *name;
    json_t *e;
    json_object_foreach(json_object_get(exp, "deltas"), name, e) {
        SCOPED_TRACE(name);
        const culora_lora_module *m = culora_adapter_find_module(ad, name);
        ASSERT_NE(m, nullptr);
        EXPECT_NEAR(m->scaling, json_number_value(json_object_get(e, "scaling")), 1e-12);
        bool transposed = cfg->fan_in_fan_out || m->embedding;
        json_t *shape = json_object_get(e, "shape");
        EXPECT_EQ(json_integer_value(json_array_get(shape, 0)), transposed ? m->in_features : m->out_features);
        EXPECT_EQ(json_integer_value(json_array_get(shape, 1)), transposed ? m->out_features : m->in_features);
        std::vector<double> d = delta(m, transposed);
        json_t *vals = json_object_get(e, "values");
        ASSERT_EQ(json_array_size(vals), d.size());
        double worst = 0;
        for (size_t i = 0; i < d.size(); i++)
            worst = std::max(worst, std::fabs(d[i] - json_number_value(json_array_get(vals, i))));
        // PEFT computes the product in fp32 (r <= 4 terms of size ~0.1): a few fp32 ulps of headroom
        EXPECT_LT(worst, 1e-6);
    }
    json_object_foreach(json_object_get(exp, "decisions"), name, e) {
        SCOPED_TRACE(name);
        bool targeted = false;
        int32_t r = 0;
        double alpha = 0;
        ASSERT_EQ(culora_adapter_match(ctx, ad, name, &targeted, &r, &alpha), CULORA_OK);
        EXPECT_EQ(targeted, json_is_true(json_object_get(e, "targeted")));
        EXPECT_EQ(r, json_integer_value(json_object_get(e, "r")));
        EXPECT_EQ(alpha, json_number_value(json_object_get(e, "alpha")));
        // every module PEFT adapted is in the file with that rank, and nothing else
        const culora_lora_module *m = culora_adapter_find_module(ad, name);
        EXPECT_EQ(m != nullptr, targeted);
        if (m != nullptr) {
            EXPECT_EQ(m->r, r);
            EXPECT_EQ(m->alpha, alpha);
        }
    }
}

TEST_F(PeftAdapter, Gpt2Conv1dAdapterMatchesPeft)
{
    culora_adapter *ad = nullptr;
    ASSERT_EQ(culora_adapter_load(ctx, fixture("adapter_gpt2").c_str(), &ad), CULORA_OK) << msg();
    const culora_lora_config *c = culora_adapter_config(ad);
    EXPECT_EQ(c->r, 4);
    EXPECT_EQ(c->lora_alpha, 8);
    EXPECT_DOUBLE_EQ(c->lora_dropout, 0.05);
    EXPECT_TRUE(c->fan_in_fan_out);
    EXPECT_FALSE(c->use_rslora);
    EXPECT_STREQ(c->task_type, "CAUSAL_LM");
    EXPECT_EQ(c->target_modules_regex, nullptr);
    EXPECT_EQ(c->n_target_modules, 2u);
    EXPECT_EQ(c->n_modules_to_save, 0u);
    EXPECT_STREQ(c->init_lora_weights, "true");
    EXPECT_EQ(culora_adapter_n_modules(ad), 6u); // c_attn, attn.c_proj, mlp.c_proj in 2 layers
    const culora_lora_module *m = culora_adapter_find_module(ad, "transformer.h.0.attn.c_attn");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->in_features, 16);
    EXPECT_EQ(m->out_features, 48);
    EXPECT_FALSE(m->embedding);
    EXPECT_DOUBLE_EQ(m->scaling, 2.0);
    check_against_peft(ctx, ad, json_object_get(expected(), "adapter_gpt2"));
    culora_adapter_destroy(ad);
}

TEST_F(PeftAdapter, LlamaAdapterWithPatternsRsloraEmbeddingAndModulesToSave)
{
    culora_adapter *ad = nullptr;
    ASSERT_EQ(culora_adapter_load(ctx, fixture("adapter_llama").c_str(), &ad), CULORA_OK) << msg();
    const culora_lora_config *c = culora_adapter_config(ad);
    EXPECT_TRUE(c->use_rslora);
    EXPECT_EQ(c->n_rank_pattern, 1u);
    EXPECT_EQ(c->n_alpha_pattern, 1u);
    ASSERT_EQ(c->n_modules_to_save, 1u);
    EXPECT_STREQ(c->modules_to_save[0], "lm_head");
    const culora_lora_module *emb = culora_adapter_find_module(ad, "model.embed_tokens");
    ASSERT_NE(emb, nullptr);
    EXPECT_TRUE(emb->embedding);
    EXPECT_EQ(emb->in_features, 64); // num_embeddings
    EXPECT_EQ(emb->out_features, 16); // embedding_dim
    const culora_lora_module *v = culora_adapter_find_module(ad, "model.layers.0.self_attn.v_proj");
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->r, 2);
    EXPECT_NEAR(v->scaling, 8.0 / std::sqrt(2.0), 1e-12);
    // full tensors PEFT stores beside the LoRA weights
    ASSERT_EQ(culora_adapter_n_tensors(ad), 2u);
    std::vector<std::string> names;
    for (size_t i = 0; i < 2; i++)
        names.push_back(culora_adapter_tensor_at(ad, i)->name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"lm_head.weight", "model.embed_tokens.base_layer.weight"}));
    EXPECT_EQ(culora_adapter_tensor_at(ad, 0)->n_elems, 64 * 16);
    check_against_peft(ctx, ad, json_object_get(expected(), "adapter_llama"));
    culora_adapter_destroy(ad);
}

TEST_F(PeftAdapter, RegexTargetModules)
{
    culora_adapter *ad = nullptr;
    ASSERT_EQ(culora_adapter_load(ctx, fixture("adapter_regex").c_str(), &ad), CULORA_OK) << msg();
    EXPECT_STREQ(culora_adapter_config(ad)->target_modules_regex, ".*\\.(q|k)_proj");
    EXPECT_EQ(culora_adapter_n_modules(ad), 4u);
    check_against_peft(ctx, ad, json_object_get(expected(), "adapter_regex"));
    culora_adapter_destroy(ad);
}

void expect_same(const culora_adapter *a, const culora_adapter *b)
{
    const culora_lora_config *ca = culora_adapter_config(a), *cb = culora_adapter_config(b);
    EXPECT_EQ(ca->r, cb->r);
    EXPECT_EQ(ca->lora_alpha, cb->lora_alpha);
    EXPECT_EQ(ca->lora_dropout, cb->lora_dropout);
    EXPECT_EQ(ca->use_rslora, cb->use_rslora);
    EXPECT_EQ(ca->fan_in_fan_out, cb->fan_in_fan_out);
    EXPECT_EQ(ca->n_target_modules, cb->n_target_modules);
    for (size_t i = 0; i < ca->n_target_modules; i++)
        EXPECT_STREQ(ca->target_modules[i], cb->target_modules[i]);
    EXPECT_EQ(ca->target_modules_regex == nullptr, cb->target_modules_regex == nullptr);
    if (ca->target_modules_regex)
        EXPECT_STREQ(ca->target_modules_regex, cb->target_modules_regex);
    ASSERT_EQ(ca->n_rank_pattern, cb->n_rank_pattern);
    for (size_t i = 0; i < ca->n_rank_pattern; i++) {
        EXPECT_STREQ(ca->rank_pattern[i].key, cb->rank_pattern[i].key);
        EXPECT_EQ(ca->rank_pattern[i].value, cb->rank_pattern[i].value);
    }
    ASSERT_EQ(ca->n_alpha_pattern, cb->n_alpha_pattern);
    for (size_t i = 0; i < ca->n_alpha_pattern; i++) {
        EXPECT_STREQ(ca->alpha_pattern[i].key, cb->alpha_pattern[i].key);
        EXPECT_EQ(ca->alpha_pattern[i].value, cb->alpha_pattern[i].value);
    }
    ASSERT_EQ(ca->n_modules_to_save, cb->n_modules_to_save);
    EXPECT_EQ(ca->task_type == nullptr, cb->task_type == nullptr);
    EXPECT_EQ(ca->base_model_name_or_path == nullptr, cb->base_model_name_or_path == nullptr);
    if (ca->base_model_name_or_path && cb->base_model_name_or_path)
        EXPECT_STREQ(ca->base_model_name_or_path, cb->base_model_name_or_path);
    EXPECT_STREQ(ca->init_lora_weights, cb->init_lora_weights);
    ASSERT_EQ(culora_adapter_n_modules(a), culora_adapter_n_modules(b));
    for (size_t i = 0; i < culora_adapter_n_modules(a); i++) {
        const culora_lora_module *x = culora_adapter_module(a, i), *y = culora_adapter_module(b, i);
        SCOPED_TRACE(x->name);
        EXPECT_STREQ(x->name, y->name);
        EXPECT_EQ(x->embedding, y->embedding);
        EXPECT_EQ(x->r, y->r);
        EXPECT_EQ(x->alpha, y->alpha);
        EXPECT_EQ(x->scaling, y->scaling);
        ASSERT_EQ(x->in_features, y->in_features);
        ASSERT_EQ(x->out_features, y->out_features);
        EXPECT_EQ(0, memcmp(x->A, y->A, (size_t)(x->r * x->in_features) * sizeof(float)));
        EXPECT_EQ(0, memcmp(x->B, y->B, (size_t)(x->r * x->out_features) * sizeof(float)));
    }
    ASSERT_EQ(culora_adapter_n_tensors(a), culora_adapter_n_tensors(b));
    for (size_t i = 0; i < culora_adapter_n_tensors(a); i++) {
        const culora_adapter_tensor *x = culora_adapter_tensor_at(a, i);
        const culora_adapter_tensor *y = nullptr;
        for (size_t j = 0; j < culora_adapter_n_tensors(b); j++)
            if (strcmp(culora_adapter_tensor_at(b, j)->name, x->name) == 0)
                y = culora_adapter_tensor_at(b, j);
        ASSERT_NE(y, nullptr) << x->name;
        ASSERT_EQ(x->n_elems, y->n_elems);
        EXPECT_EQ(0, memcmp(x->data, y->data, (size_t)x->n_elems * sizeof(float)));
    }
}

TEST_F(PeftAdapter, SaveLoadRoundTripOfEveryFixture)
{
    for (const char *name : {"adapter_gpt2", "adapter_llama", "adapter_regex"}) {
        SCOPED_TRACE(name);
        culora_adapter *a = nullptr, *b = nullptr;
        ASSERT_EQ(culora_adapter_load(ctx, fixture(name).c_str(), &a), CULORA_OK) << msg();
        TempDir dir;
        std::string out = dir / "saved"; // does not exist yet: save creates it
        ASSERT_EQ(culora_adapter_save(ctx, a, out.c_str()), CULORA_OK) << msg();
        EXPECT_EQ(list_dir(out), (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors"}));
        ASSERT_EQ(culora_adapter_load(ctx, out.c_str(), &b), CULORA_OK) << msg();
        expect_same(a, b);
        check_against_peft(ctx, b, json_object_get(expected(), name));
        // the weights file is the one PEFT wrote, byte for byte (same layout rules, fp32, {"format":"pt"})
        EXPECT_EQ(read_bytes(out + "/adapter_model.safetensors"),
                  read_bytes(fixture(std::string(name) + "/adapter_model.safetensors")));
        ASSERT_EQ(culora_adapter_save(ctx, b, out.c_str()), CULORA_OK) << msg(); // overwrite in place
        culora_adapter_destroy(a);
        culora_adapter_destroy(b);
    }
    culora_adapter_destroy(nullptr);
}

TEST_F(PeftAdapter, CreateAddModulesSaveLoad)
{
    const char *targets[] = {"q_proj", "v_proj"};
    culora_lora_pattern rank[] = {{"layers\\.1\\..*v_proj", 2}};
    culora_lora_pattern alpha[] = {{"q_proj", 32}};
    culora_lora_config c = CULORA_LORA_CONFIG_INIT;
    c.r = 4;
    c.lora_alpha = 16;
    c.lora_dropout = 0.1;
    c.target_modules = targets;
    c.n_target_modules = 2;
    c.rank_pattern = rank;
    c.n_rank_pattern = 1;
    c.alpha_pattern = alpha;
    c.n_alpha_pattern = 1;
    c.base_model_name_or_path = "tiny-llama";
    culora_adapter *ad = nullptr;
    ASSERT_EQ(culora_adapter_create(ctx, &c, &ad), CULORA_OK) << msg();
    struct M {
        const char *name;
        int64_t in, out;
        int32_t r;
        double alpha;
    } mods[] = {
        {"model.layers.1.self_attn.v_proj", 16, 8, 2, 16},
        {"model.layers.0.self_attn.q_proj", 16, 16, 4, 32},
        {"model.layers.0.self_attn.v_proj", 16, 8, 4, 16},
    };
    for (const M &m : mods) {
        bool targeted = false;
        ASSERT_EQ(culora_adapter_match(ctx, ad, m.name, &targeted, nullptr, nullptr), CULORA_OK);
        EXPECT_TRUE(targeted) << m.name;
        culora_lora_module *mod = nullptr;
        ASSERT_EQ(culora_adapter_add_module(ctx, ad, m.name, m.in, m.out, false, &mod), CULORA_OK) << msg();
        EXPECT_EQ(mod->r, m.r) << m.name;
        EXPECT_EQ(mod->alpha, m.alpha) << m.name;
        EXPECT_EQ(mod->A[0], 0.0f); // zero until the caller initialises
        for (int64_t i = 0; i < mod->r * mod->in_features; i++)
            mod->A[i] = (float)i * 0.01f;
        for (int64_t i = 0; i < mod->r * mod->out_features; i++)
            mod->B[i] = -(float)i * 0.02f;
    }
    EXPECT_EQ(culora_adapter_add_module(ctx, ad, mods[0].name, 16, 8, false, nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_adapter_add_module(ctx, ad, "x", 0, 8, false, nullptr), CULORA_ERR_INVALID_ARG);
    // modules come back in name order
    ASSERT_EQ(culora_adapter_n_modules(ad), 3u);
    EXPECT_STREQ(culora_adapter_module(ad, 0)->name, "model.layers.0.self_attn.q_proj");
    EXPECT_STREQ(culora_adapter_module(ad, 2)->name, "model.layers.1.self_attn.v_proj");
    EXPECT_EQ(culora_adapter_module(ad, 3), nullptr);
    float head[6] = {1, 2, 3, 4, 5, 6};
    int64_t hs[2] = {2, 3};
    ASSERT_EQ(culora_adapter_add_tensor(ctx, ad, "score.weight", 2, hs, head), CULORA_OK);
    EXPECT_EQ(culora_adapter_add_tensor(ctx, ad, "score.weight", 2, hs, head), CULORA_ERR_INVALID_ARG);

    TempDir dir;
    ASSERT_EQ(culora_adapter_save(ctx, ad, dir.path().c_str()), CULORA_OK) << msg();
    culora_adapter *back = nullptr;
    ASSERT_EQ(culora_adapter_load(ctx, dir.path().c_str(), &back), CULORA_OK) << msg();
    expect_same(ad, back);
    // the file uses PEFT's keys and shapes
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, (dir / "adapter_model.safetensors").c_str(), &st), CULORA_OK);
    const culora_tensor_info *a = culora_safetensors_find(st, "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight");
    const culora_tensor_info *b = culora_safetensors_find(st, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->shape[0], 2);
    EXPECT_EQ(a->shape[1], 16);
    EXPECT_EQ(b->shape[0], 8);
    EXPECT_EQ(b->shape[1], 2);
    EXPECT_NE(culora_safetensors_find(st, "base_model.model.score.weight"), nullptr);
    EXPECT_STREQ(culora_safetensors_metadata_get(st, "format"), "pt");
    culora_safetensors_close(st);
    // the config text is what PEFT writes for these fields
    JsonRef j(load_json(dir / "adapter_config.json"));
    EXPECT_STREQ(json_string_value(json_object_get(j.j, "peft_type")), "LORA");
    EXPECT_TRUE(json_is_integer(json_object_get(j.j, "lora_alpha")));
    EXPECT_EQ(json_integer_value(json_object_get(j.j, "r")), 4);
    EXPECT_EQ(json_integer_value(json_object_get(json_object_get(j.j, "rank_pattern"), "layers\\.1\\..*v_proj")), 2);
    EXPECT_STREQ(json_string_value(json_object_get(j.j, "bias")), "none");
    EXPECT_TRUE(json_is_false(json_object_get(j.j, "use_dora")));
    EXPECT_TRUE(json_is_null(json_object_get(j.j, "modules_to_save")));
    EXPECT_STREQ(json_string_value(json_object_get(j.j, "base_model_name_or_path")), "tiny-llama");
    culora_adapter_destroy(back);
    culora_adapter_destroy(ad);
}

TEST_F(PeftAdapter, MatchingRules)
{
    const char *targets[] = {"c_attn", "h.1.mlp.c_fc"};
    const char *save[] = {"lm_head"};
    culora_lora_config c = CULORA_LORA_CONFIG_INIT;
    c.target_modules = targets;
    c.n_target_modules = 2;
    c.modules_to_save = save;
    c.n_modules_to_save = 1;
    culora_adapter *ad = nullptr;
    ASSERT_EQ(culora_adapter_create(ctx, &c, &ad), CULORA_OK) << msg();
    struct Q {
        const char *name;
        bool targeted;
    } q[] = {
        {"transformer.h.0.attn.c_attn", true}, {"c_attn", true},           {"transformer.h.0.attn.xc_attn", false},
        {"transformer.h.1.mlp.c_fc", true},    {"transformer.h.0.mlp.c_fc", false}, {"lm_head", false},
        {"transformer.h.0.attn.c_attn.x", false},
    };
    for (const Q &x : q) {
        bool t = !x.targeted;
        ASSERT_EQ(culora_adapter_match(ctx, ad, x.name, &t, nullptr, nullptr), CULORA_OK);
        EXPECT_EQ(t, x.targeted) << x.name;
    }
    culora_adapter_destroy(ad);

    // a target regex must match the whole name; "all-linear" covers the linear layers of both families
    for (const char *re : {"h\\.0\\..*c_attn", "all-linear"}) {
        culora_lora_config c2 = CULORA_LORA_CONFIG_INIT;
        c2.target_modules_regex = re;
        ASSERT_EQ(culora_adapter_create(ctx, &c2, &ad), CULORA_OK) << msg();
        bool t = false;
        ASSERT_EQ(culora_adapter_match(ctx, ad, "h.0.attn.c_attn", &t, nullptr, nullptr), CULORA_OK);
        EXPECT_TRUE(t) << re;
        ASSERT_EQ(culora_adapter_match(ctx, ad, "transformer.h.0.attn.c_attn", &t, nullptr, nullptr), CULORA_OK);
        EXPECT_EQ(t, strcmp(re, "all-linear") == 0) << re; // fullmatch: the regex must cover the prefix too
        ASSERT_EQ(culora_adapter_match(ctx, ad, "model.layers.3.mlp.down_proj", &t, nullptr, nullptr), CULORA_OK);
        EXPECT_EQ(t, strcmp(re, "all-linear") == 0) << re;
        ASSERT_EQ(culora_adapter_match(ctx, ad, "lm_head", &t, nullptr, nullptr), CULORA_OK);
        EXPECT_FALSE(t) << re;
        culora_adapter_destroy(ad);
    }
}

// Fixture adapter copied into a temp dir with its config edited.
class PeftRefusal : public IoTest {
  protected:
    TempDir dir;
    culora_status load_with(const std::string &edit_key, const std::string &json_value, bool remove = false)
    {
        JsonRef j(load_json(fixture("adapter_gpt2/adapter_config.json")));
        if (remove) {
            json_object_del(j.j, edit_key.c_str());
        } else if (!edit_key.empty()) {
            json_error_t err;
            json_t *v = json_loads(json_value.c_str(), JSON_DECODE_ANY, &err);
            EXPECT_NE(v, nullptr) << json_value;
            json_object_set_new(j.j, edit_key.c_str(), v);
        }
        char *text = json_dumps(j.j, JSON_INDENT(2));
        write_bytes(dir / "adapter_config.json", text);
        free(text);
        if (weights.empty())
            weights = read_bytes(fixture("adapter_gpt2/adapter_model.safetensors"));
        write_bytes(dir / "adapter_model.safetensors", weights);
        culora_adapter *ad = reinterpret_cast<culora_adapter *>(1);
        culora_status s = culora_adapter_load(ctx, dir.path().c_str(), &ad);
        EXPECT_EQ(ad == nullptr, s != CULORA_OK);
        culora_adapter_destroy(s == CULORA_OK ? ad : nullptr);
        return s;
    }
    std::string weights;
};

TEST_F(PeftRefusal, UnsupportedOptionsAreRefusedNotIgnored)
{
    ASSERT_EQ(load_with("", ""), CULORA_OK) << msg();
    struct Case {
        const char *key, *value;
        culora_status status;
        const char *expect;
    } cases[] = {
        {"use_dora", "true", CULORA_ERR_UNSUPPORTED, "use_dora=true is not supported (DoRA"},
        {"bias", "\"all\"", CULORA_ERR_UNSUPPORTED, "bias='all' is not supported"},
        {"bias", "\"lora_only\"", CULORA_ERR_UNSUPPORTED, "bias='lora_only' is not supported"},
        {"lora_bias", "true", CULORA_ERR_UNSUPPORTED, "lora_bias=true"},
        {"init_lora_weights", "\"pissa\"", CULORA_ERR_UNSUPPORTED, "init_lora_weights 'pissa' is not supported"},
        {"init_lora_weights", "\"olora\"", CULORA_ERR_UNSUPPORTED, "init_lora_weights 'olora'"},
        {"init_lora_weights", "\"loftq\"", CULORA_ERR_UNSUPPORTED, "init_lora_weights 'loftq'"},
        {"init_lora_weights", "3", CULORA_ERR_FORMAT, "init_lora_weights"},
        {"peft_type", "\"PREFIX_TUNING\"", CULORA_ERR_UNSUPPORTED, "peft_type 'PREFIX_TUNING' is not supported"},
        {"layers_to_transform", "[0]", CULORA_ERR_UNSUPPORTED, "layers_to_transform is set"},
        {"exclude_modules", "[\"c_proj\"]", CULORA_ERR_UNSUPPORTED, "exclude_modules is set"},
        {"target_parameters", "[\"w\"]", CULORA_ERR_UNSUPPORTED, "target_parameters is set"},
        {"trainable_token_indices", "[1,2]", CULORA_ERR_UNSUPPORTED, "trainable_token_indices is set"},
        {"use_qalora", "true", CULORA_ERR_UNSUPPORTED, "use_qalora=true"},
        {"target_modules", "null", CULORA_ERR_FORMAT, "target_modules\" is missing or null"},
        {"target_modules", "[1]", CULORA_ERR_FORMAT, "\"target_modules\"[0] is not a string"},
        {"target_modules", "\"(c_attn\"", CULORA_ERR_FORMAT, "target_modules regex '(c_attn' does not compile"},
        {"target_modules", "[\"c_attn\"]", CULORA_ERR_FORMAT,
         "module 'transformer.h.0.attn.c_proj' has LoRA weights but target_modules"},
        {"r", "8", CULORA_ERR_FORMAT, "has rank 4 but adapter_config.json gives r=8"},
        {"r", "0", CULORA_ERR_FORMAT, "\"r\" is not a positive integer"},
        {"rank_pattern", "{\"c_attn\": 2}", CULORA_ERR_FORMAT, "module 'transformer.h.0.attn.c_attn'"},
        {"rank_pattern", "{\"c_attn\": 2.5}", CULORA_ERR_FORMAT, "rank_pattern entry 'c_attn' is not an integer"},
        {"alpha_pattern", "[]", CULORA_ERR_FORMAT, "\"alpha_pattern\" is not an object"},
        {"lora_dropout", "1.5", CULORA_ERR_FORMAT, "lora_dropout = 1.5 is outside [0, 1)"},
        {"lora_alpha", "\"8\"", CULORA_ERR_FORMAT, "\"lora_alpha\" is not a number"},
        {"fan_in_fan_out", "1", CULORA_ERR_FORMAT, "\"fan_in_fan_out\" is not true or false"},
        {"modules_to_save", "\"lm_head\"", CULORA_ERR_FORMAT, "\"modules_to_save\" is not a list"},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(std::string(c.key) + "=" + c.value);
        EXPECT_EQ(load_with(c.key, c.value), c.status) << msg();
        EXPECT_NE(msg().find(c.expect), std::string::npos) << msg();
        EXPECT_NE(msg().find("adapter_"), std::string::npos) << "message names no file: " << msg();
    }
    EXPECT_EQ(load_with("peft_type", "", true), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("\"peft_type\" is missing"), std::string::npos) << msg();
    // unknown keys from newer PEFT versions are ignored
    EXPECT_EQ(load_with("some_future_option", "{\"x\": 1}"), CULORA_OK) << msg();
    EXPECT_EQ(load_with("use_dora", "false"), CULORA_OK) << msg();
}

TEST_F(PeftRefusal, BadTensorsAreRefused)
{
    culora_safetensors *src = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("adapter_gpt2/adapter_model.safetensors").c_str(), &src), CULORA_OK);
    // rewrites the fixture's weights: drop `skip`, rename `from` to `to`, add an extra tensor
    auto rewrite = [&](const std::string &skip, const std::string &from, const std::string &to, const std::string &extra) {
        culora_safetensors_writer *w = nullptr;
        ASSERT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
        static float zeros[64];
        std::vector<std::string> keep;
        for (size_t i = 0; i < culora_safetensors_count(src); i++) {
            const culora_tensor_info *t = culora_safetensors_at(src, i);
            if (skip == t->name)
                continue;
            const char *name = from == t->name ? to.c_str() : t->name;
            ASSERT_EQ(culora_safetensors_writer_add(ctx, w, name, t->dtype, t->n_dims, t->shape, t->data, t->n_bytes),
                      CULORA_OK);
        }
        if (!extra.empty()) {
            int64_t sh[1] = {48};
            ASSERT_EQ(culora_safetensors_writer_add(ctx, w, extra.c_str(), CULORA_ST_F32, 1, sh, zeros, 192), CULORA_OK);
        }
        std::string p = dir / "w.safetensors";
        ASSERT_EQ(culora_safetensors_writer_save(ctx, w, p.c_str()), CULORA_OK);
        culora_safetensors_writer_destroy(w);
        weights = read_bytes(p);
    };
    const std::string A = "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight";
    const std::string B = "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight";
    rewrite(B, "", "", "");
    EXPECT_EQ(load_with("", ""), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("module 'transformer.h.0.attn.c_attn' has lora_A.weight but no lora_B.weight"),
              std::string::npos) << msg();
    rewrite(A, "", "", "");
    EXPECT_EQ(load_with("", ""), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("has lora_B.weight but no lora_A.weight"), std::string::npos) << msg();
    rewrite("", A, "transformer.h.0.attn.c_attn.lora_A.weight", "");
    EXPECT_EQ(load_with("", ""), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("does not start with 'base_model.model.'"), std::string::npos) << msg();
    rewrite("", "", "", "base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector");
    EXPECT_EQ(load_with("", ""), CULORA_ERR_UNSUPPORTED);
    EXPECT_NE(msg().find("DoRA"), std::string::npos) << msg();
    rewrite("", "", "", "base_model.model.transformer.h.0.attn.c_attn.lora_B.bias");
    EXPECT_EQ(load_with("", ""), CULORA_ERR_UNSUPPORTED);
    EXPECT_NE(msg().find("lora_bias"), std::string::npos) << msg();
    rewrite("", "", "", "base_model.model.transformer.h.0.attn.c_attn.lora_C.weight");
    EXPECT_EQ(load_with("", ""), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("not a LoRA tensor culora knows"), std::string::npos) << msg();
    culora_safetensors_close(src);

    // a pickle-only adapter is refused, not unpickled
    TempDir bin;
    write_bytes(bin / "adapter_config.json", read_bytes(fixture("adapter_gpt2/adapter_config.json")));
    write_bytes(bin / "adapter_model.bin", "PK\x03\x04");
    culora_adapter *ad = nullptr;
    EXPECT_EQ(culora_adapter_load(ctx, bin.path().c_str(), &ad), CULORA_ERR_UNSUPPORTED);
    EXPECT_NE(msg().find("adapter_model.bin"), std::string::npos) << msg();
    EXPECT_EQ(culora_adapter_load(ctx, (bin / "none").c_str(), &ad), CULORA_ERR_IO);
}

TEST_F(PeftAdapter, CreateRejectsBadConfigs)
{
    culora_adapter *ad = nullptr;
    culora_lora_config c = CULORA_LORA_CONFIG_INIT;
    EXPECT_EQ(culora_adapter_create(ctx, &c, &ad), CULORA_ERR_FORMAT); // no targets
    EXPECT_NE(msg().find("target_modules is empty"), std::string::npos) << msg();
    const char *t[] = {"q_proj"};
    c.target_modules = t;
    c.n_target_modules = 1;
    c.init_lora_weights = "corda";
    EXPECT_EQ(culora_adapter_create(ctx, &c, &ad), CULORA_ERR_UNSUPPORTED);
    c.init_lora_weights = "gaussian";
    c.r = -1;
    EXPECT_EQ(culora_adapter_create(ctx, &c, &ad), CULORA_ERR_FORMAT);
    c.r = 8;
    culora_lora_pattern bad[] = {{"(", 4}};
    c.rank_pattern = bad;
    c.n_rank_pattern = 1;
    EXPECT_EQ(culora_adapter_create(ctx, &c, &ad), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("rank_pattern regex"), std::string::npos) << msg();
    c.n_rank_pattern = 0;
    c.struct_size = 4;
    EXPECT_EQ(culora_adapter_create(ctx, &c, &ad), CULORA_ERR_INVALID_ARG);
    c.struct_size = sizeof c;
    ASSERT_EQ(culora_adapter_create(ctx, &c, &ad), CULORA_OK) << msg();
    EXPECT_STREQ(culora_adapter_config(ad)->init_lora_weights, "gaussian");
    culora_adapter_destroy(ad);
}

} // namespace
