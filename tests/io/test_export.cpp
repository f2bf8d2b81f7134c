// test_export.cpp — writes files with culora's writers and reads them back. With
// CULORA_IO_EXPORT_DIR=DIR they are written there instead of a temp dir, for
// tests/gen/check_io_roundtrip.py to load in the real safetensors / transformers / peft packages:
//   all_dtypes.safetensors   every common dtype, values i * 0.5 - 3 (ints: i - 3, bool: i odd)
//   llama_copy/              the LLaMA fixture re-written tensor by tensor (+ its config.json)
//   adapter_gpt2_resaved/    the PEFT GPT-2 adapter loaded and saved again
//   adapter_new/             an adapter built from scratch for the LLaMA fixture (patterns, rsLoRA)
#include "io_test_util.h"

using namespace culora_io_test;

namespace {

class IoExport : public IoTest {
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
};

template <typename T> std::vector<uint8_t> as_bytes(const std::vector<T> &v)
{
    std::vector<uint8_t> b(v.size() * sizeof(T));
    memcpy(b.data(), v.data(), b.size());
    return b;
}

TEST_F(IoExport, AllDtypesFile)
{
    const int n = 12;
    std::vector<float> f32(n);
    std::vector<double> f64(n);
    std::vector<int8_t> i8(n);
    std::vector<uint8_t> u8(n), bl(n);
    std::vector<int16_t> i16(n);
    std::vector<int32_t> i32(n);
    std::vector<int64_t> i64(n);
    for (int i = 0; i < n; i++) {
        f32[i] = (float)(i * 0.5 - 3);
        f64[i] = i * 0.5 - 3;
        i8[i] = (int8_t)(i - 3);
        u8[i] = (uint8_t)i;
        i16[i] = (int16_t)(i - 3);
        i32[i] = i - 3;
        i64[i] = i - 3;
        bl[i] = (uint8_t)(i & 1);
    }
    std::vector<uint16_t> bf16(n), f16(n);
    culora_f32_to_bf16(f32.data(), bf16.data(), n);
    int64_t shape1[1] = {n};
    culora_tensor_info src = {"f32", CULORA_ST_F32, 1, shape1, n, (uint64_t)n * 4, f32.data(), "mem"};
    ASSERT_EQ(culora_tensor_read(ctx, &src, CULORA_DTYPE_F16, f16.data(), (size_t)n * 2), CULORA_OK);

    culora_safetensors_writer *w = nullptr;
    ASSERT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
    int64_t shape[2] = {3, 4};
    struct E {
        const char *name;
        culora_st_dtype dt;
        const void *data;
        size_t esize;
    } es[] = {
        {"f32", CULORA_ST_F32, f32.data(), 4},   {"f64", CULORA_ST_F64, f64.data(), 8},
        {"bf16", CULORA_ST_BF16, bf16.data(), 2}, {"f16", CULORA_ST_F16, f16.data(), 2},
        {"i8", CULORA_ST_I8, i8.data(), 1},       {"u8", CULORA_ST_U8, u8.data(), 1},
        {"i16", CULORA_ST_I16, i16.data(), 2},    {"i32", CULORA_ST_I32, i32.data(), 4},
        {"i64", CULORA_ST_I64, i64.data(), 8},    {"bool", CULORA_ST_BOOL, bl.data(), 1},
    };
    for (const E &e : es)
        ASSERT_EQ(culora_safetensors_writer_add(ctx, w, e.name, e.dt, 2, shape, e.data, (uint64_t)n * e.esize),
                  CULORA_OK) << msg();
    float scalar = 2.5f;
    ASSERT_EQ(culora_safetensors_writer_add(ctx, w, "scalar", CULORA_ST_F32, 0, nullptr, &scalar, 4), CULORA_OK);
    int64_t eshape[2] = {0, 5};
    ASSERT_EQ(culora_safetensors_writer_add(ctx, w, "empty", CULORA_ST_F32, 2, eshape, nullptr, 0), CULORA_OK);
    ASSERT_EQ(culora_safetensors_writer_set_metadata(ctx, w, "format", "pt"), CULORA_OK);
    ASSERT_EQ(culora_safetensors_writer_set_metadata(ctx, w, "written_by", "culora"), CULORA_OK);
    std::string path = out + "/all_dtypes.safetensors";
    ASSERT_EQ(culora_safetensors_writer_save(ctx, w, path.c_str()), CULORA_OK) << msg();
    culora_safetensors_writer_destroy(w);
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, path.c_str(), &st), CULORA_OK) << msg();
    EXPECT_EQ(culora_safetensors_count(st), 12u);
    culora_safetensors_close(st);
}

TEST_F(IoExport, LlamaModelCopy)
{
    culora_safetensors *src = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("llama").c_str(), &src), CULORA_OK);
    std::string dir = out + "/llama_copy";
    mkdir(dir.c_str(), 0755);
    culora_safetensors_writer *w = nullptr;
    ASSERT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
    for (size_t i = 0; i < culora_safetensors_count(src); i++) {
        const culora_tensor_info *t = culora_safetensors_at(src, i);
        ASSERT_EQ(culora_safetensors_writer_add(ctx, w, t->name, t->dtype, t->n_dims, t->shape, t->data, t->n_bytes),
                  CULORA_OK);
    }
    ASSERT_EQ(culora_safetensors_writer_set_metadata(ctx, w, "format", "pt"), CULORA_OK);
    ASSERT_EQ(culora_safetensors_writer_save(ctx, w, (dir + "/model.safetensors").c_str()), CULORA_OK) << msg();
    culora_safetensors_writer_destroy(w);
    write_bytes(dir + "/config.json", read_bytes(fixture("llama/config.json")));
    culora_model_config cfg;
    ASSERT_EQ(culora_model_config_load(ctx, dir.c_str(), &cfg), CULORA_OK);
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, dir.c_str(), &st), CULORA_OK);
    EXPECT_EQ(culora_model_config_check(ctx, &cfg, st), CULORA_OK) << msg();
    EXPECT_EQ(read_bytes(dir + "/model.safetensors"), read_bytes(fixture("llama/model.safetensors")));
    culora_safetensors_close(st);
    culora_safetensors_close(src);
}

TEST_F(IoExport, Adapters)
{
    culora_adapter *ad = nullptr;
    ASSERT_EQ(culora_adapter_load(ctx, fixture("adapter_gpt2").c_str(), &ad), CULORA_OK) << msg();
    ASSERT_EQ(culora_adapter_save(ctx, ad, (out + "/adapter_gpt2_resaved").c_str()), CULORA_OK) << msg();
    culora_adapter_destroy(ad);

    const char *targets[] = {"q_proj", "v_proj", "o_proj"};
    culora_lora_pattern rank[] = {{"v_proj", 2}};
    culora_lora_pattern alpha[] = {{"layers.1.self_attn.q_proj", 12}};
    culora_lora_config c = CULORA_LORA_CONFIG_INIT;
    c.r = 4;
    c.lora_alpha = 6;
    c.lora_dropout = 0.0;
    c.use_rslora = true;
    c.target_modules = targets;
    c.n_target_modules = 3;
    c.rank_pattern = rank;
    c.n_rank_pattern = 1;
    c.alpha_pattern = alpha;
    c.n_alpha_pattern = 1;
    c.base_model_name_or_path = "tests/data/io/llama";
    ASSERT_EQ(culora_adapter_create(ctx, &c, &ad), CULORA_OK) << msg();
    // LLaMA fixture: hidden 16, 4 heads x 4, 2 kv heads -> q/o [16,16], v [8,16]
    int seed = 1;
    for (int layer = 0; layer < 2; layer++) {
        for (const char *proj : {"q_proj", "v_proj", "o_proj"}) {
            std::string name = "model.layers." + std::to_string(layer) + ".self_attn." + proj;
            int64_t out_f = strcmp(proj, "v_proj") == 0 ? 8 : 16;
            culora_lora_module *m = nullptr;
            ASSERT_EQ(culora_adapter_add_module(ctx, ad, name.c_str(), 16, out_f, false, &m), CULORA_OK) << msg();
            for (int64_t i = 0; i < m->r * m->in_features; i++)
                m->A[i] = (float)((seed * 7 + i * 13) % 17 - 8) / 32.0f;
            for (int64_t i = 0; i < m->r * m->out_features; i++)
                m->B[i] = (float)((seed * 5 + i * 11) % 19 - 9) / 64.0f;
            seed++;
        }
    }
    std::string dir = out + "/adapter_new";
    ASSERT_EQ(culora_adapter_save(ctx, ad, dir.c_str()), CULORA_OK) << msg();
    culora_adapter_destroy(ad);
    ASSERT_EQ(culora_adapter_load(ctx, dir.c_str(), &ad), CULORA_OK) << msg();
    EXPECT_EQ(culora_adapter_n_modules(ad), 6u);
    culora_adapter_destroy(ad);
}

} // namespace
