// io_test_util.h — helpers for the I/O tests: a context fixture, temporary directories, raw file
// building (for malformed safetensors), fixture paths and JSON loading.
#pragma once

#include "culora/culora.h"
#include "culora/culora_io.h"

#include <gtest/gtest.h>
#include <jansson.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace culora_io_test {

inline std::string fixture(const std::string &rel)
{
    return std::string(CULORA_TEST_DATA_DIR) + "/io/" + rel;
}

// A CPU context used only for its error messages.
class IoTest : public ::testing::Test {
  protected:
    culora_context *ctx = nullptr;
    void SetUp() override
    {
        culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
        p.backend = CULORA_BACKEND_CPU;
        p.workspace_bytes = 4096;
        ASSERT_EQ(culora_context_create(&p, &ctx), CULORA_OK);
    }
    void TearDown() override { culora_context_destroy(ctx); }
    std::string msg() const { return culora_context_last_error(ctx); }
};

// A fresh directory under the system temp dir, removed (recursively) on destruction.
class TempDir {
  public:
    TempDir()
    {
        const char *base = getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/culora_io_XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (mkdtemp(buf.data()) == nullptr)
            ADD_FAILURE() << "mkdtemp failed";
        path_ = buf.data();
    }
    ~TempDir() { remove_tree(path_); }
    const std::string &path() const { return path_; }
    std::string operator/(const std::string &name) const { return path_ + "/" + name; }

    static void remove_tree(const std::string &p)
    {
        DIR *d = opendir(p.c_str());
        if (d != nullptr) {
            while (dirent *e = readdir(d)) {
                std::string n = e->d_name;
                if (n == "." || n == "..")
                    continue;
                remove_tree(p + "/" + n);
            }
            closedir(d);
            rmdir(p.c_str());
        } else {
            unlink(p.c_str());
        }
    }

  private:
    std::string path_;
};

inline std::vector<std::string> list_dir(const std::string &dir)
{
    std::vector<std::string> out;
    DIR *d = opendir(dir.c_str());
    if (d == nullptr)
        return out;
    while (dirent *e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..")
            out.push_back(n);
    }
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

inline void write_bytes(const std::string &path, const std::string &bytes)
{
    FILE *f = fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    ASSERT_EQ(fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    fclose(f);
}

inline std::string read_bytes(const std::string &path)
{
    std::string out;
    FILE *f = fopen(path.c_str(), "rb");
    if (f == nullptr)
        return out;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
    fclose(f);
    return out;
}

// u64 little-endian header length + header text + data bytes: a raw safetensors file.
inline std::string st_bytes(const std::string &header, const std::string &data, int64_t len_override = -1)
{
    uint64_t n = len_override >= 0 ? (uint64_t)len_override : header.size();
    std::string out(8, '\0');
    for (int i = 0; i < 8; i++)
        out[i] = (char)((n >> (8 * i)) & 0xff);
    return out + header + data;
}

// Loads a JSON file (fails the test when it cannot).
inline json_t *load_json(const std::string &path)
{
    json_error_t err;
    json_t *j = json_load_file(path.c_str(), 0, &err);
    EXPECT_NE(j, nullptr) << path << ": " << err.text;
    return j;
}

struct JsonRef {
    json_t *j;
    explicit JsonRef(json_t *x) : j(x) {}
    ~JsonRef() { json_decref(j); }
    JsonRef(const JsonRef &) = delete;
    JsonRef &operator=(const JsonRef &) = delete;
};

}  // namespace culora_io_test
