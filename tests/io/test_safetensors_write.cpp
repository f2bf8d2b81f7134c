// test_safetensors_write.cpp — writer round trips, byte-identical output to the Python reference
// writer, argument checks, and atomicity: a failed save leaves the old file intact and no
// temporary behind.
#include "io_test_util.h"

#include <csignal>
#include <sys/resource.h>

using namespace culora_io_test;

namespace {

class SafetensorsWrite : public IoTest {};

TEST_F(SafetensorsWrite, RoundTripAllDtypesShapesAndMetadata)
{
    TempDir dir;
    std::vector<uint8_t> bytes(256);
    for (size_t i = 0; i < bytes.size(); i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    culora_safetensors_writer *w = nullptr;
    ASSERT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
    struct T {
        std::string name;
        culora_st_dtype dtype;
        std::vector<int64_t> shape;
        size_t n_bytes;
    };
    std::vector<T> ts;
    for (int d = 0; d < CULORA_ST_DTYPE_COUNT; d++) {
        auto dt = (culora_st_dtype)d;
        unsigned bits = culora_st_dtype_bits(dt);
        std::vector<int64_t> shape = {2, 4}; // 8 elements: whole bytes for every width
        ts.push_back({std::string("t_") + culora_st_dtype_name(dt), dt, shape, (size_t)(8 * bits / 8)});
    }
    ts.push_back({"scalar", CULORA_ST_F32, {}, 4});
    ts.push_back({"empty", CULORA_ST_BF16, {3, 0, 2}, 0});
    ts.push_back({"unicode.caf\xc3\xa9", CULORA_ST_U8, {5}, 5});
    for (const T &t : ts)
        ASSERT_EQ(culora_safetensors_writer_add(ctx, w, t.name.c_str(), t.dtype, (int32_t)t.shape.size(),
                                                t.shape.data(), bytes.data(), t.n_bytes), CULORA_OK) << msg();
    ASSERT_EQ(culora_safetensors_writer_set_metadata(ctx, w, "format", "pt"), CULORA_OK);
    ASSERT_EQ(culora_safetensors_writer_set_metadata(ctx, w, "note", "first"), CULORA_OK);
    ASSERT_EQ(culora_safetensors_writer_set_metadata(ctx, w, "note", "quote \" backslash \\ newline \n"), CULORA_OK);
    std::string path = dir / "rt.safetensors";
    ASSERT_EQ(culora_safetensors_writer_save(ctx, w, path.c_str()), CULORA_OK) << msg();
    culora_safetensors_writer_destroy(w);
    culora_safetensors_writer_destroy(nullptr);

    // header padded to 8 with spaces, so the data region starts 8-byte aligned
    std::string raw = read_bytes(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | (uint8_t)raw[(size_t)i];
    EXPECT_EQ(n % 8, 0u);

    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, path.c_str(), &st), CULORA_OK) << msg();
    ASSERT_EQ(culora_safetensors_count(st), ts.size());
    const uint8_t *data_start = nullptr;
    for (size_t i = 0; i < culora_safetensors_count(st); i++) {
        const uint8_t *p = (const uint8_t *)culora_safetensors_at(st, i)->data;
        if (data_start == nullptr || p < data_start)
            data_start = p;
    }
    for (const T &t : ts) {
        SCOPED_TRACE(t.name);
        const culora_tensor_info *info = culora_safetensors_find(st, t.name.c_str());
        ASSERT_NE(info, nullptr);
        EXPECT_EQ(info->dtype, t.dtype);
        ASSERT_EQ((size_t)info->n_dims, t.shape.size());
        for (size_t d = 0; d < t.shape.size(); d++)
            EXPECT_EQ(info->shape[d], t.shape[d]);
        ASSERT_EQ(info->n_bytes, t.n_bytes);
        EXPECT_EQ(0, memcmp(info->data, bytes.data(), t.n_bytes));
        // widest dtypes first: every tensor's data is naturally aligned in the file (8 + n is)
        unsigned bits = culora_st_dtype_bits(t.dtype);
        if (bits >= 8)
            EXPECT_EQ(((const uint8_t *)info->data - data_start) % (bits / 8), 0);
    }
    EXPECT_STREQ(culora_safetensors_metadata_get(st, "format"), "pt");
    EXPECT_STREQ(culora_safetensors_metadata_get(st, "note"), "quote \" backslash \\ newline \n");
    EXPECT_EQ(culora_safetensors_metadata_count(st), 2u);
    culora_safetensors_close(st);
}

TEST_F(SafetensorsWrite, ByteIdenticalToThePythonReferenceWriter)
{
    // layout.safetensors was written by safetensors.torch.save_file from tensors of dtypes.safetensors
    culora_safetensors *src = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, fixture("safetensors/dtypes.safetensors").c_str(), &src), CULORA_OK);
    culora_safetensors_writer *w = nullptr;
    ASSERT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
    for (const char *name : {"scalar", "i8", "empty", "f32", "bf16"}) { // order of adding does not matter
        const culora_tensor_info *t = culora_safetensors_find(src, name);
        ASSERT_NE(t, nullptr) << name;
        ASSERT_EQ(culora_safetensors_writer_add(ctx, w, t->name, t->dtype, t->n_dims, t->shape, t->data, t->n_bytes),
                  CULORA_OK) << msg();
    }
    ASSERT_EQ(culora_safetensors_writer_set_metadata(ctx, w, "format", "pt"), CULORA_OK);
    TempDir dir;
    ASSERT_EQ(culora_safetensors_writer_save(ctx, w, (dir / "x.safetensors").c_str()), CULORA_OK) << msg();
    EXPECT_EQ(read_bytes(dir / "x.safetensors"), read_bytes(fixture("safetensors/layout.safetensors")));
    culora_safetensors_writer_destroy(w);
    culora_safetensors_close(src);
}

TEST_F(SafetensorsWrite, ArgumentErrors)
{
    culora_safetensors_writer *w = nullptr;
    ASSERT_EQ(culora_safetensors_writer_create(ctx, &w), CULORA_OK);
    float d[6] = {0};
    int64_t shape[2] = {2, 3};
    EXPECT_EQ(culora_safetensors_writer_add(ctx, w, "a", CULORA_ST_F32, 2, shape, d, 24), CULORA_OK);
    EXPECT_EQ(culora_safetensors_writer_add(ctx, w, "a", CULORA_ST_F32, 2, shape, d, 24), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(msg().find("'a' added twice"), std::string::npos) << msg();
    EXPECT_EQ(culora_safetensors_writer_add(ctx, w, "b", CULORA_ST_F32, 2, shape, d, 20), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(msg().find("tensor 'b'"), std::string::npos) << msg();
    EXPECT_EQ(culora_safetensors_writer_add(ctx, w, "__metadata__", CULORA_ST_F32, 2, shape, d, 24),
              CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_safetensors_writer_add(ctx, w, "c", (culora_st_dtype)99, 2, shape, d, 24), CULORA_ERR_INVALID_ARG);
    int64_t neg[1] = {-1};
    EXPECT_EQ(culora_safetensors_writer_add(ctx, w, "c", CULORA_ST_F32, 1, neg, d, 0), CULORA_ERR_INVALID_ARG);
    int64_t odd[1] = {3};
    EXPECT_EQ(culora_safetensors_writer_add(ctx, w, "c", CULORA_ST_F4, 1, odd, d, 1), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_safetensors_writer_add(ctx, w, nullptr, CULORA_ST_F32, 2, shape, d, 24), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_safetensors_writer_set_metadata(ctx, w, "k", nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_safetensors_writer_save(ctx, w, nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_safetensors_writer_create(ctx, nullptr), CULORA_ERR_INVALID_ARG);
    culora_safetensors_writer_destroy(w);
}

// Writes a one-tensor file of n floats filled with value.
culora_status save_floats(culora_context *ctx, const std::string &path, size_t n, float value)
{
    std::vector<float> v(n, value);
    int64_t shape[1] = {(int64_t)n};
    culora_safetensors_writer *w = nullptr;
    culora_status s = culora_safetensors_writer_create(ctx, &w);
    if (s == CULORA_OK)
        s = culora_safetensors_writer_add(ctx, w, "w", CULORA_ST_F32, 1, shape, v.data(), n * 4);
    if (s == CULORA_OK)
        s = culora_safetensors_writer_save(ctx, w, path.c_str());
    culora_safetensors_writer_destroy(w);
    return s;
}

TEST_F(SafetensorsWrite, FailedWriteLeavesTheOldFileIntact)
{
    TempDir dir;
    std::string path = dir / "model.safetensors";
    ASSERT_EQ(save_floats(ctx, path, 16, 1.0f), CULORA_OK) << msg();
    const std::string old = read_bytes(path);

    // A real mid-write failure: the process may not write files larger than 1 KiB (EFBIG).
    struct rlimit saved;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 1024;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    culora_status s = save_floats(ctx, path, 4096, 2.0f);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, prev);

    EXPECT_EQ(s, CULORA_ERR_IO);
    EXPECT_NE(msg().find("write failed"), std::string::npos) << msg();
    EXPECT_EQ(read_bytes(path), old);
    EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"model.safetensors"}) << "temporary left behind";
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, path.c_str(), &st), CULORA_OK) << msg();
    culora_safetensors_close(st);

    // A failure at the rename: the target is a directory.
    std::string as_dir = dir / "is_a_dir";
    ASSERT_EQ(mkdir(as_dir.c_str(), 0755), 0);
    EXPECT_EQ(save_floats(ctx, as_dir, 4, 3.0f), CULORA_ERR_IO);
    EXPECT_NE(msg().find("cannot rename"), std::string::npos) << msg();
    EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{"is_a_dir", "model.safetensors"}));

    // A failure to create the temporary: the directory does not exist.
    EXPECT_EQ(save_floats(ctx, dir / "no/such/dir/x.safetensors", 4, 3.0f), CULORA_ERR_IO);
    EXPECT_NE(msg().find("cannot create a temporary file"), std::string::npos) << msg();

    // And a successful overwrite replaces the file as a whole.
    ASSERT_EQ(save_floats(ctx, path, 8, 5.0f), CULORA_OK) << msg();
    ASSERT_EQ(culora_safetensors_open(ctx, path.c_str(), &st), CULORA_OK) << msg();
    EXPECT_EQ(culora_safetensors_find(st, "w")->n_elems, 8);
    culora_safetensors_close(st);
}

TEST_F(SafetensorsWrite, OverwritingAMappedFileKeepsTheMappingValid)
{
    TempDir dir;
    std::string path = dir / "m.safetensors";
    ASSERT_EQ(save_floats(ctx, path, 32, 7.0f), CULORA_OK);
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, path.c_str(), &st), CULORA_OK);
    ASSERT_EQ(save_floats(ctx, path, 64, 9.0f), CULORA_OK); // rename, not truncate: old mapping stays valid
    float v[32];
    ASSERT_EQ(culora_tensor_read(ctx, culora_safetensors_find(st, "w"), CULORA_DTYPE_F32, v, sizeof v), CULORA_OK);
    for (float x : v)
        EXPECT_EQ(x, 7.0f);
    culora_safetensors_close(st);
}

} // namespace
