// test_safetensors_read.cpp — files written by the real Python safetensors / transformers load
// with the right names, dtypes, shapes, values and metadata; sharded sets; dtype conversion.
#include "io_test_util.h"

#include <cmath>

using namespace culora_io_test;

namespace {

class SafetensorsRead : public IoTest {};

// Value i of a tensor as double, for the dtypes the fixture has.
double load_value(const culora_tensor_info *t, int64_t i)
{
    const uint8_t *p = static_cast<const uint8_t *>(t->data);
    switch (t->dtype) {
    case CULORA_ST_I8: return (int8_t)p[i];
    case CULORA_ST_U8: return p[i];
    case CULORA_ST_BOOL: return p[i] ? 1.0 : 0.0;
    case CULORA_ST_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case CULORA_ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case CULORA_ST_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return (double)v; }
    case CULORA_ST_F8_E4M3: { // 1-4-3, bias 7, no inf
        int s = p[i] >> 7, e = (p[i] >> 3) & 15, m = p[i] & 7;
        double v = e ? std::ldexp(1.0 + m / 8.0, e - 7) : std::ldexp(m / 8.0, -6);
        return s ? -v : v;
    }
    case CULORA_ST_F8_E5M2: { // 1-5-2, bias 15
        int s = p[i] >> 7, e = (p[i] >> 2) & 31, m = p[i] & 3;
        double v = e ? std::ldexp(1.0 + m / 4.0, e - 15) : std::ldexp(m / 4.0, -14);
        return s ? -v : v;
    }
    default: {
        float f;
        EXPECT_EQ(culora_tensor_read(nullptr, t, CULORA_DTYPE_F32, &f, 0), CULORA_ERR_INVALID_ARG);
        std::vector<float> all((size_t)t->n_elems);
        EXPECT_EQ(culora_tensor_read(nullptr, t, CULORA_DTYPE_F32, all.data(), all.size() * 4), CULORA_OK);
        if (t->dtype == CULORA_ST_F64) { double d; memcpy(&d, p + 8 * i, 8); return d; }
        return all[(size_t)i];
    }
    }
}

TEST_F(SafetensorsRead, PythonWrittenDtypesValuesAndMetadata)
{
    JsonRef exp(load_json(fixture("safetensors/expected.json")));
    ASSERT_NE(exp.j, nullptr);
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("safetensors/dtypes.safetensors").c_str(), &st), CULORA_OK)
        << msg();
    json_t *tensors = json_object_get(exp.j, "tensors");
    EXPECT_EQ(culora_safetensors_count(st), json_object_size(tensors));
    const char *name;
    json_t *e;
    json_object_foreach(tensors, name, e) {
        SCOPED_TRACE(name);
        const culora_tensor_info *t = culora_safetensors_find(st, name);
        ASSERT_NE(t, nullptr);
        EXPECT_STREQ(culora_st_dtype_name(t->dtype), json_string_value(json_object_get(e, "dtype")));
        json_t *shape = json_object_get(e, "shape");
        ASSERT_EQ((size_t)t->n_dims, json_array_size(shape));
        for (int32_t d = 0; d < t->n_dims; d++)
            EXPECT_EQ(t->shape[d], json_integer_value(json_array_get(shape, d)));
        json_t *vals = json_object_get(e, "values");
        ASSERT_EQ((size_t)t->n_elems, json_array_size(vals));
        for (int64_t i = 0; i < t->n_elems; i++)
            EXPECT_EQ(load_value(t, i), json_number_value(json_array_get(vals, (size_t)i))) << "element " << i;
    }
    // names come back in bytewise order
    for (size_t i = 1; i < culora_safetensors_count(st); i++)
        EXPECT_LT(strcmp(culora_safetensors_at(st, i - 1)->name, culora_safetensors_at(st, i)->name), 0);
    EXPECT_EQ(culora_safetensors_at(st, culora_safetensors_count(st)), nullptr);
    EXPECT_EQ(culora_safetensors_find(st, "nope"), nullptr);
    // scalar and empty tensors
    EXPECT_EQ(culora_safetensors_find(st, "scalar")->n_dims, 0);
    EXPECT_EQ(culora_safetensors_find(st, "scalar")->n_elems, 1);
    EXPECT_EQ(culora_safetensors_find(st, "empty")->n_elems, 0);
    EXPECT_EQ(culora_safetensors_find(st, "empty")->n_bytes, 0u);

    json_t *meta = json_object_get(exp.j, "metadata");
    EXPECT_EQ(culora_safetensors_metadata_count(st), json_object_size(meta));
    json_object_foreach(meta, name, e) {
        ASSERT_NE(culora_safetensors_metadata_get(st, name), nullptr) << name;
        EXPECT_STREQ(culora_safetensors_metadata_get(st, name), json_string_value(e));
    }
    const char *k = "x", *v = "x";
    culora_safetensors_metadata_at(st, 99, &k, &v);
    EXPECT_EQ(k, nullptr);
    EXPECT_EQ(v, nullptr);
    EXPECT_EQ(culora_safetensors_n_files(st), 1u);
    culora_safetensors_close(st);
    culora_safetensors_close(nullptr);
}

TEST_F(SafetensorsRead, ConversionToBackendDtypes)
{
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("safetensors/dtypes.safetensors").c_str(), &st), CULORA_OK);
    const culora_tensor_info *f32 = culora_safetensors_find(st, "f32");
    const culora_tensor_info *f16 = culora_safetensors_find(st, "f16");
    const culora_tensor_info *bf16 = culora_safetensors_find(st, "bf16");
    ASSERT_TRUE(f32 && f16 && bf16);
    // f16 and f32 hold the same exactly-representable values: every conversion is exact
    std::vector<float> a(24), b(24);
    std::vector<uint16_t> h(24), hb(24);
    ASSERT_EQ(culora_tensor_read(ctx, f32, CULORA_DTYPE_F32, a.data(), 96), CULORA_OK);
    ASSERT_EQ(culora_tensor_read(ctx, f16, CULORA_DTYPE_F32, b.data(), 96), CULORA_OK);
    EXPECT_EQ(a, b);
    ASSERT_EQ(culora_tensor_read(ctx, f32, CULORA_DTYPE_F16, h.data(), 48), CULORA_OK);
    EXPECT_EQ(0, memcmp(h.data(), f16->data, 48));
    ASSERT_EQ(culora_tensor_read(ctx, f16, CULORA_DTYPE_BF16, hb.data(), 48), CULORA_OK);
    std::vector<uint16_t> want(24);
    culora_f32_to_bf16(a.data(), want.data(), 24);
    EXPECT_EQ(hb, want);
    // bf16 -> bf16 is a copy; bf16 -> f32 widens exactly
    std::vector<uint16_t> c(15);
    std::vector<float> cf(15), back(15);
    ASSERT_EQ(culora_tensor_read(ctx, bf16, CULORA_DTYPE_BF16, c.data(), 30), CULORA_OK);
    EXPECT_EQ(0, memcmp(c.data(), bf16->data, 30));
    ASSERT_EQ(culora_tensor_read(ctx, bf16, CULORA_DTYPE_F32, cf.data(), 60), CULORA_OK);
    culora_bf16_to_f32(c.data(), back.data(), 15);
    EXPECT_EQ(cf, back);
    // integer tensors are not converted
    float x[5];
    EXPECT_EQ(culora_tensor_read(ctx, culora_safetensors_find(st, "i8"), CULORA_DTYPE_F32, x, sizeof x),
              CULORA_ERR_UNSUPPORTED);
    EXPECT_NE(msg().find("'i8'"), std::string::npos) << msg();
    culora_safetensors_close(st);
}

TEST_F(SafetensorsRead, HalfPrecisionRoundingEdgeCases)
{
    // f32 values -> f16 bits, checked against IEEE round-to-nearest-even by hand
    const float in[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65520.0f, 1e-8f, 5.9604645e-8f, 2.98e-8f,
                        1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 6.1035156e-5f, INFINITY, -INFINITY};
    const uint16_t want[] = {0x0000, 0x8000, 0x3c00, 0x7bff, 0x7c00, 0x0000, 0x0001, 0x0000,
                             0x3c00, 0x3c02, 0x0400, 0x7c00, 0xfc00};
    const size_t n = sizeof in / sizeof in[0];
    int64_t shape[1] = {(int64_t)n};
    culora_tensor_info t = {"edge", CULORA_ST_F32, 1, shape, (int64_t)n, n * 4, in, "mem"};
    std::vector<uint16_t> got(n);
    ASSERT_EQ(culora_tensor_read(ctx, &t, CULORA_DTYPE_F16, got.data(), n * 2), CULORA_OK);
    for (size_t i = 0; i < n; i++)
        EXPECT_EQ(got[i], want[i]) << "value " << in[i];
    // and back: f16 -> f32 exact, subnormals included
    culora_tensor_info h = {"edge16", CULORA_ST_F16, 1, shape, (int64_t)n, n * 2, want, "mem"};
    std::vector<float> f(n);
    ASSERT_EQ(culora_tensor_read(ctx, &h, CULORA_DTYPE_F32, f.data(), n * 4), CULORA_OK);
    EXPECT_EQ(f[3], 65504.0f);
    EXPECT_EQ(f[6], 5.9604645e-8f);
    EXPECT_EQ(f[10], 6.1035156e-5f);
    EXPECT_TRUE(std::isinf(f[4]));
    float nan = NAN;
    culora_tensor_info tn = {"nan", CULORA_ST_F32, 0, shape, 1, 4, &nan, "mem"};
    uint16_t hn = 0;
    ASSERT_EQ(culora_tensor_read(ctx, &tn, CULORA_DTYPE_F16, &hn, 2), CULORA_OK);
    EXPECT_EQ(hn & 0x7c00, 0x7c00);
    EXPECT_NE(hn & 0x3ff, 0);
}

TEST_F(SafetensorsRead, ShardedModelThroughIndex)
{
    culora_safetensors *one = nullptr, *sh = nullptr, *by_dir = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("llama/model.safetensors").c_str(), &one), CULORA_OK) << msg();
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("llama_sharded/model.safetensors.index.json").c_str(), &sh),
              CULORA_OK) << msg();
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("llama_sharded").c_str(), &by_dir), CULORA_OK) << msg();
    EXPECT_GT(culora_safetensors_n_files(sh), 1u);
    EXPECT_EQ(culora_safetensors_n_files(by_dir), culora_safetensors_n_files(sh));
    ASSERT_EQ(culora_safetensors_count(one), culora_safetensors_count(sh));
    for (size_t i = 0; i < culora_safetensors_count(one); i++) {
        const culora_tensor_info *a = culora_safetensors_at(one, i), *b = culora_safetensors_at(sh, i);
        SCOPED_TRACE(a->name);
        EXPECT_STREQ(a->name, b->name);
        EXPECT_EQ(a->dtype, b->dtype);
        ASSERT_EQ(a->n_bytes, b->n_bytes);
        EXPECT_EQ(0, memcmp(a->data, b->data, a->n_bytes)); // same seed, same weights
    }
    EXPECT_STREQ(culora_safetensors_metadata_get(sh, "format"), "pt");
    culora_safetensors_close(one);
    culora_safetensors_close(sh);
    culora_safetensors_close(by_dir);
}

TEST_F(SafetensorsRead, DirectoryWithoutModelIsAnIoError)
{
    TempDir dir;
    culora_safetensors *st = reinterpret_cast<culora_safetensors *>(1);
    EXPECT_EQ(culora_safetensors_open(ctx, dir.path().c_str(), &st), CULORA_ERR_IO);
    EXPECT_EQ(st, nullptr);
    EXPECT_NE(msg().find("neither model.safetensors"), std::string::npos) << msg();
    EXPECT_EQ(culora_safetensors_open(ctx, (dir / "missing.safetensors").c_str(), &st), CULORA_ERR_IO);
    EXPECT_NE(msg().find("missing.safetensors"), std::string::npos) << msg();
    EXPECT_EQ(culora_safetensors_open(ctx, nullptr, &st), CULORA_ERR_INVALID_ARG);
}

} // namespace
