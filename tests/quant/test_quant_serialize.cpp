// test_quant_serialize.cpp — bitsandbytes serialization: culora's quantization of a tiny LLaMA
// (tests/data/quant/hf_tiny, bf16) against what transformers + bitsandbytes saved for the same
// model (hf_tiny_{nf4,nf4_dq,fp4,int8}/model.safetensors), tensor for tensor and byte for byte,
// including the quant-state JSON; loading those files; save/load round trips; malformed files;
// and `culora quantize` end to end.
#include "quant_test_util.h"

#include <cstdio>
#include <fstream>
#include <set>
#include <sys/stat.h>

using namespace culora_test;

namespace {

struct Variant {
    const char *dir;     // fixture directory
    const char *format;  // culora quantize --format
    int32_t fmt;
    bool dq;
};
const Variant kVariants[] = {
    {"hf_tiny_nf4", "nf4", CULORA_QUANT_NF4, false},
    {"hf_tiny_nf4_dq", "nf4-dq", CULORA_QUANT_NF4, true},
    {"hf_tiny_fp4", "fp4", CULORA_QUANT_FP4, false},
    {"hf_tiny_int8", "int8", CULORA_QUANT_INT8, false},
};

// Linear weights transformers quantizes in the tiny LLaMA (everything 2-D but embeddings and head).
std::vector<std::string> linear_weights(const culora_safetensors *st)
{
    std::vector<std::string> out;
    for (size_t i = 0; i < culora_safetensors_count(st); i++) {
        const culora_tensor_info *t = culora_safetensors_at(st, i);
        std::string n = t->name;
        if (t->n_dims == 2 && n.find("proj.weight") != std::string::npos) out.push_back(n);
    }
    return out;
}

std::string temp_dir(const std::string &name)
{
    std::string d = ::testing::TempDir() + "culora_quant_" + name + "_" + std::to_string(::getpid());
    mkdir(d.c_str(), 0777);
    return d;
}

// Every tensor of `a` equals the same-named tensor of `b` (dtype, shape, bytes), and the name sets agree.
::testing::AssertionResult same_files(const culora_safetensors *a, const culora_safetensors *b)
{
    std::set<std::string> na, nb;
    for (size_t i = 0; i < culora_safetensors_count(a); i++) na.insert(culora_safetensors_at(a, i)->name);
    for (size_t i = 0; i < culora_safetensors_count(b); i++) nb.insert(culora_safetensors_at(b, i)->name);
    if (na != nb) return ::testing::AssertionFailure() << "tensor names differ";
    for (const auto &n : na) {
        const culora_tensor_info *x = culora_safetensors_find(a, n.c_str()), *y = culora_safetensors_find(b, n.c_str());
        if (x->dtype != y->dtype || x->n_dims != y->n_dims || x->n_bytes != y->n_bytes ||
            !std::equal(x->shape, x->shape + x->n_dims, y->shape))
            return ::testing::AssertionFailure() << n << ": dtype or shape differs";
        if (std::memcmp(x->data, y->data, x->n_bytes) != 0) {
            std::string why = n + ": bytes differ";
            if (n.find("quant_state") != std::string::npos)
                why += " ('" + std::string((const char *)x->data, x->n_bytes) + "' vs '" +
                       std::string((const char *)y->data, y->n_bytes) + "')";
            return ::testing::AssertionFailure() << why;
        }
    }
    return ::testing::AssertionSuccess();
}

}  // namespace

// Library path: quantize each linear weight with culora, save with culora_quant_host_save, and
// compare the file with transformers' file for the same model.
TEST(QuantSerialize, OurQuantizationSavesExactlyWhatTransformersSaves)
{
    Fixture src("hf_tiny/model.safetensors");
    ASSERT_TRUE(src.ok());
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    for (const Variant &v : kVariants) {
        SCOPED_TRACE(v.dir);
        Fixture theirs(std::string(v.dir) + "/model.safetensors");
        ASSERT_TRUE(theirs.ok());
        culora_safetensors_writer *w = nullptr;
        ASSERT_EQ(culora_safetensors_writer_create(ctx.get(), &w), CULORA_OK);
        std::vector<culora_quant_host *> hosts;
        std::set<std::string> quantized;
        for (const std::string &name : linear_weights(src.st())) {
            const culora_tensor_info *t = src.info(name);
            auto d = make_qdesc(v.fmt, t->shape[0], t->shape[1], 64, v.dq);
            culora_quant_host *h = nullptr;
            ASSERT_EQ(culora_quant_host_create(ctx.get(), &d, t->dtype, &h), CULORA_OK);
            hosts.push_back(h);
            auto wv = src.floats(name);  // bf16 weights; fp16-exact, so Int8Params' fp16 cast changes nothing
            ASSERT_EQ(culora_quantize(ctx.get(), &d, wv.data(), d.cols, CULORA_DTYPE_F32, culora_quant_host_weight(h),
                                      nullptr, 0, nullptr),
                      CULORA_OK)
                << culora_context_last_error(ctx.get());
            ASSERT_EQ(culora_quant_host_save(ctx.get(), h, w, name.c_str()), CULORA_OK) << culora_context_last_error(ctx.get());
            quantized.insert(name);
        }
        for (size_t i = 0; i < culora_safetensors_count(src.st()); i++) {
            const culora_tensor_info *t = culora_safetensors_at(src.st(), i);
            if (!quantized.count(t->name))
                ASSERT_EQ(culora_safetensors_writer_add(ctx.get(), w, t->name, t->dtype, t->n_dims, t->shape, t->data,
                                                        t->n_bytes),
                          CULORA_OK);
        }
        const std::string out = temp_dir(v.format) + "/model.safetensors";
        ASSERT_EQ(culora_safetensors_writer_save(ctx.get(), w, out.c_str()), CULORA_OK) << culora_context_last_error(ctx.get());
        culora_safetensors_writer_destroy(w);
        for (auto *h : hosts) culora_quant_host_destroy(h);
        culora_safetensors *ours = nullptr;
        ASSERT_EQ(culora_safetensors_open(nullptr, out.c_str(), &ours), CULORA_OK);
        EXPECT_TRUE(same_files(ours, theirs.st()));
        culora_safetensors_close(ours);
    }
}

TEST(QuantSerialize, LoadsTransformersFilesAndRoundTrips)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    Fixture src("hf_tiny/model.safetensors");
    for (const Variant &v : kVariants) {
        SCOPED_TRACE(v.dir);
        Fixture fx(std::string(v.dir) + "/model.safetensors");
        ASSERT_TRUE(fx.ok());
        EXPECT_EQ(culora_quant_probe(fx.st(), "model.embed_tokens.weight"), 0);
        EXPECT_EQ(culora_quant_probe(fx.st(), "no.such.weight"), 0);
        for (const std::string &name : linear_weights(src.st())) {
            ASSERT_EQ(culora_quant_probe(fx.st(), name.c_str()), v.fmt) << name;
            culora_quant_host *h = nullptr;
            ASSERT_EQ(culora_quant_host_load(ctx.get(), fx.st(), name.c_str(), &h), CULORA_OK)
                << culora_context_last_error(ctx.get());
            const culora_quant_desc *d = culora_quant_host_desc(h);
            const culora_tensor_info *t = src.info(name);
            EXPECT_EQ(d->rows, t->shape[0]);
            EXPECT_EQ(d->cols, t->shape[1]);
            EXPECT_EQ(d->flags, v.dq ? (uint32_t)CULORA_QUANT_DOUBLE_QUANT : 0u);
            if (v.fmt != CULORA_QUANT_INT8) EXPECT_EQ(culora_quant_host_orig_dtype(h), CULORA_ST_BF16);
            // Dequantized weights are close to the originals: 4-bit within half the largest code gap
            // (NF4 0.152, FP4 0.167) of the block's absmax (+1% for the 8-bit absmax of DQ); int8
            // within half a step of the row's scale.
            std::vector<float> deq((size_t)(d->rows * d->cols));
            ASSERT_EQ(culora_dequantize(ctx.get(), d, culora_quant_host_weight(h), deq.data(), d->cols, CULORA_DTYPE_F32,
                                        nullptr),
                      CULORA_OK);
            auto orig = src.floats(name);
            const int64_t group = v.fmt == CULORA_QUANT_INT8 ? d->cols : 64;  // elements sharing a scale
            for (int64_t g0 = 0; g0 < d->rows * d->cols; g0 += group) {
                float gmax = 0;
                for (int64_t e = g0; e < g0 + group; e++) gmax = std::max(gmax, std::fabs(orig[(size_t)e]));
                const float bound = v.fmt == CULORA_QUANT_INT8 ? gmax / 254 * 1.001f : gmax * 0.167f * 1.01f;
                for (int64_t e = g0; e < g0 + group; e++)
                    ASSERT_LE(std::fabs(deq[(size_t)e] - orig[(size_t)e]), bound) << name << " element " << e;
            }
            // Save what we loaded and compare the tensors with the fixture's.
            culora_safetensors_writer *w = nullptr;
            ASSERT_EQ(culora_safetensors_writer_create(ctx.get(), &w), CULORA_OK);
            ASSERT_EQ(culora_quant_host_save(ctx.get(), h, w, name.c_str()), CULORA_OK);
            const std::string out = temp_dir("rt") + "/one.safetensors";
            ASSERT_EQ(culora_safetensors_writer_save(ctx.get(), w, out.c_str()), CULORA_OK);
            culora_safetensors_writer_destroy(w);
            culora_safetensors *re = nullptr;
            ASSERT_EQ(culora_safetensors_open(nullptr, out.c_str(), &re), CULORA_OK);
            for (size_t i = 0; i < culora_safetensors_count(re); i++) {
                const culora_tensor_info *a = culora_safetensors_at(re, i), *b = fx.info(a->name);
                ASSERT_NE(b, nullptr);
                EXPECT_EQ(a->n_bytes, b->n_bytes) << a->name;
                EXPECT_EQ(0, std::memcmp(a->data, b->data, std::min(a->n_bytes, b->n_bytes))) << a->name;
            }
            culora_safetensors_close(re);
            culora_quant_host_destroy(h);
        }
    }
}

// ---- malformed files ----------------------------------------------------------------------------

namespace {

// Copies every tensor of the one-weight fixture into a new file, letting `edit` replace or drop
// tensors, then tries to load `name` from it.
culora_status load_edited(culora_context *ctx, const char *fixture_dir, const std::string &name,
                          const std::function<bool(const culora_tensor_info *, std::vector<uint8_t> &, culora_st_dtype &,
                                                   std::vector<int64_t> &)> &edit)
{
    Fixture fx(std::string(fixture_dir) + "/model.safetensors");
    culora_safetensors_writer *w = nullptr;
    EXPECT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
    std::vector<std::vector<uint8_t>> keep;
    for (size_t i = 0; i < culora_safetensors_count(fx.st()); i++) {
        const culora_tensor_info *t = culora_safetensors_at(fx.st(), i);
        const std::string prefix = name.substr(0, name.size() - 6);  // the module: NAME minus "weight"
        if (std::string(t->name).rfind(prefix, 0) != 0) continue;
        std::vector<uint8_t> data((const uint8_t *)t->data, (const uint8_t *)t->data + t->n_bytes);
        culora_st_dtype dt = t->dtype;
        std::vector<int64_t> shape(t->shape, t->shape + t->n_dims);
        if (!edit(t, data, dt, shape)) continue;
        keep.push_back(std::move(data));
        EXPECT_EQ(culora_safetensors_writer_add(ctx, w, t->name, dt, (int32_t)shape.size(), shape.data(), keep.back().data(),
                                                keep.back().size()),
                  CULORA_OK)
            << culora_context_last_error(ctx);
    }
    const std::string out = temp_dir("bad") + "/bad.safetensors";
    EXPECT_EQ(culora_safetensors_writer_save(ctx, w, out.c_str()), CULORA_OK);
    culora_safetensors_writer_destroy(w);
    culora_safetensors *st = nullptr;
    EXPECT_EQ(culora_safetensors_open(nullptr, out.c_str(), &st), CULORA_OK);
    culora_quant_host *h = nullptr;
    culora_status s = culora_quant_host_load(ctx, st, name.c_str(), &h);
    EXPECT_EQ(h == nullptr, s != CULORA_OK);
    culora_quant_host_destroy(h);
    culora_safetensors_close(st);
    return s;
}

bool ends(const culora_tensor_info *t, const char *suffix)
{
    std::string n = t->name, s = suffix;
    return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
}

std::vector<uint8_t> text(const std::string &s) { return std::vector<uint8_t>(s.begin(), s.end()); }

}  // namespace

TEST(QuantSerialize, MalformedFilesAreRefusedWithTheReason)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    auto *c = ctx.get();
    const std::string w = "model.layers.0.mlp.up_proj.weight";
    auto msg = [&] { return std::string(culora_context_last_error(c)); };
    using T = const culora_tensor_info *;
    using B = std::vector<uint8_t>;
    using S = std::vector<int64_t>;
    // unmodified: loads
    EXPECT_EQ(load_edited(c, "hf_tiny_nf4_dq", w, [](T, B &, culora_st_dtype &, S &) { return true; }), CULORA_OK) << msg();
    // a different 4-bit code
    EXPECT_EQ(load_edited(c, "hf_tiny_nf4", w, [](T t, B &d, culora_st_dtype &, S &) {
                  if (ends(t, ".quant_map")) d[4] ^= 1;
                  return true;
              }),
              CULORA_ERR_UNSUPPORTED);
    EXPECT_NE(msg().find("quant_map' differs"), std::string::npos) << msg();
    // absmax missing
    EXPECT_EQ(load_edited(c, "hf_tiny_nf4", w, [](T t, B &, culora_st_dtype &, S &) { return !ends(t, ".absmax"); }),
              CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find(".absmax' is missing"), std::string::npos) << msg();
    // absmax of the wrong dtype (F32 where DQ stores U8 codes)
    EXPECT_EQ(load_edited(c, "hf_tiny_nf4_dq", w, [](T t, B &d, culora_st_dtype &dt, S &shape) {
                  if (ends(t, ".absmax")) { dt = CULORA_ST_F32; d.resize(d.size() * 4); (void)shape; }
                  return true;
              }),
              CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("dtype F32; U8 expected"), std::string::npos) << msg();
    // quant state: blocksize 512 (valid in bitsandbytes, not in culora), nested_blocksize 128, not JSON
    const std::string state = "model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4";
    auto with_state = [&](const char *dir, const std::string &js) {
        return load_edited(c, dir, w, [&](T t, B &d, culora_st_dtype &, S &shape) {
            if (t->name == state) { d = text(js); shape = {(int64_t)d.size()}; }
            return true;
        });
    };
    EXPECT_EQ(with_state("hf_tiny_nf4", R"({"quant_type": "nf4", "blocksize": 512, "dtype": "bfloat16", "shape": [64, 32]})"),
              CULORA_ERR_UNSUPPORTED);
    EXPECT_NE(msg().find("blocksize 512"), std::string::npos) << msg();
    EXPECT_EQ(with_state("hf_tiny_nf4_dq", R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [64, 32], "nested_blocksize": 128, "nested_dtype": "float32", "nested_offset": 0.1})"),
              CULORA_ERR_UNSUPPORTED);
    EXPECT_NE(msg().find("nested_blocksize 256"), std::string::npos) << msg();
    EXPECT_EQ(with_state("hf_tiny_nf4", "{not json"), CULORA_ERR_FORMAT);
    EXPECT_EQ(with_state("hf_tiny_nf4", R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [64, 33]})"),
              CULORA_ERR_FORMAT);
    // int8: SCB of the wrong length; an unknown weight_format; int8 loads otherwise
    EXPECT_EQ(load_edited(c, "hf_tiny_int8", w, [](T, B &, culora_st_dtype &, S &) { return true; }), CULORA_OK) << msg();
    EXPECT_EQ(load_edited(c, "hf_tiny_int8", w, [](T t, B &d, culora_st_dtype &, S &shape) {
                  if (ends(t, "SCB")) { d.resize(d.size() - 4); shape[0]--; }
                  return true;
              }),
              CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("SCB' has 63 elements; 64 expected"), std::string::npos) << msg();
    EXPECT_EQ(load_edited(c, "hf_tiny_int8", w, [](T t, B &d, culora_st_dtype &, S &) {
                  if (ends(t, "weight_format")) d[0] = 1;
                  return true;
              }),
              CULORA_ERR_UNSUPPORTED);
    EXPECT_NE(msg().find("row-wise int8 layout"), std::string::npos) << msg();
    culora_quant_host *h = nullptr;
    Fixture fx("hf_tiny_int8/model.safetensors");
    EXPECT_EQ(culora_quant_host_load(c, fx.st(), "model.embed_tokens.weight", &h), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("not a bitsandbytes-quantized weight"), std::string::npos) << msg();
}

// ---- the CLI --------------------------------------------------------------------------------------

TEST(QuantCli, QuantizeWritesWhatTransformersWrites)
{
    for (const Variant &v : kVariants) {
        SCOPED_TRACE(v.format);
        const std::string out = temp_dir(std::string("cli_") + v.format);
        const std::string cmd = std::string(CULORA_CLI_PATH) + " quantize --model " + quant_data("hf_tiny") +
                                " --format " + v.format + " --out " + out + " > /dev/null";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
        culora_safetensors *ours = nullptr;
        ASSERT_EQ(culora_safetensors_open(nullptr, (out + "/model.safetensors").c_str(), &ours), CULORA_OK);
        Fixture theirs(std::string(v.dir) + "/model.safetensors");
        EXPECT_TRUE(same_files(ours, theirs.st()));
        EXPECT_STREQ(culora_safetensors_metadata_get(ours, "format"), "pt");
        culora_safetensors_close(ours);
        std::ifstream cfg(out + "/config.json");
        std::string js((std::istreambuf_iterator<char>(cfg)), std::istreambuf_iterator<char>());
        EXPECT_NE(js.find("\"quant_method\": \"bitsandbytes\""), std::string::npos) << js;
        EXPECT_NE(js.find(v.fmt == CULORA_QUANT_INT8 ? "\"load_in_8bit\": true" : "\"load_in_4bit\": true"),
                  std::string::npos);
        EXPECT_NE(js.find(std::string("\"bnb_4bit_use_double_quant\": ") + (v.dq ? "true" : "false")), std::string::npos);
    }
    // bad options: usage errors, exit status 2
    const std::string bad = std::string(CULORA_CLI_PATH) + " quantize --model " + quant_data("hf_tiny") +
                            " --format nf5 --out " + temp_dir("cli_bad") + " 2> /dev/null";
    EXPECT_EQ(WEXITSTATUS(std::system(bad.c_str())), 2);
    const std::string missing = std::string(CULORA_CLI_PATH) + " quantize --model /no/such/model --format nf4 --out " +
                                temp_dir("cli_missing") + " 2> /dev/null";
    EXPECT_EQ(WEXITSTATUS(std::system(missing.c_str())), 1);
}
