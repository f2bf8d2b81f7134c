// data_test_util.h — helpers for the data-module tests: tokenizer/dataset/loader handles as
// unique_ptrs, encode/decode into std::vector/std::string, fixture paths, JSON fixtures.
#pragma once

#include "culora/culora_data.h"
#include "test_util.h"

#include <jansson.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace culora_test {

struct TokDeleter {
    void operator()(culora_tokenizer *t) const { culora_tokenizer_destroy(t); }
};
struct DsDeleter {
    void operator()(culora_dataset *d) const { culora_dataset_destroy(d); }
};
struct LoaderDeleter {
    void operator()(culora_loader *l) const { culora_loader_destroy(l); }
};
using TokPtr = std::unique_ptr<culora_tokenizer, TokDeleter>;
using DsPtr = std::unique_ptr<culora_dataset, DsDeleter>;
using LoaderPtr = std::unique_ptr<culora_loader, LoaderDeleter>;

inline std::string tok_fixture(const std::string &rel) { return std::string(CULORA_TEST_DATA_DIR) + "/data/tokenizer/" + rel; }

inline std::string read_file(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// A file in a fresh temporary directory, removed by the destructor.
class TempFile {
  public:
    TempFile(const std::string &name, const std::string &contents)
    {
        char tmpl[] = "/tmp/culora_data_XXXXXX";
        const char *d = mkdtemp(tmpl);
        dir_ = d ? d : "/tmp";
        path_ = dir_ + "/" + name;
        std::ofstream f(path_, std::ios::binary);
        f << contents;
    }
    ~TempFile()
    {
        std::remove(path_.c_str());
        rmdir(dir_.c_str());
    }
    const std::string &path() const { return path_; }
    const char *c_str() const { return path_.c_str(); }

  private:
    std::string dir_, path_;
};

inline std::vector<int32_t> encode(culora_context *ctx, const culora_tokenizer *tok, const std::string &s, uint32_t flags)
{
    std::vector<int32_t> ids(culora_tokenizer_max_tokens(tok, s.size()));
    size_t n = 0;
    culora_status st = culora_tokenizer_encode(ctx, tok, s.data(), s.size(), flags, ids.data(), ids.size(), &n);
    EXPECT_EQ(st, CULORA_OK) << culora_context_last_error(ctx);
    ids.resize(st == CULORA_OK ? n : 0);
    return ids;
}

inline std::string decode(culora_context *ctx, const culora_tokenizer *tok, const std::vector<int32_t> &ids, uint32_t flags)
{
    size_t n = 0;
    culora_status st = culora_tokenizer_decode(ctx, tok, ids.data(), ids.size(), flags, nullptr, 0, &n);
    EXPECT_EQ(st, CULORA_OK) << culora_context_last_error(ctx);
    std::string out(n + 1, '\0');
    st = culora_tokenizer_decode(ctx, tok, ids.data(), ids.size(), flags, &out[0], out.size(), &n);
    EXPECT_EQ(st, CULORA_OK) << culora_context_last_error(ctx);
    out.resize(n);
    return out;
}

struct JsonDeleter {
    void operator()(json_t *j) const { json_decref(j); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

inline JsonPtr load_json(const std::string &path)
{
    json_error_t err;
    json_t *j = json_load_file(path.c_str(), JSON_ALLOW_NUL, &err);
    EXPECT_NE(j, nullptr) << path << ":" << err.line << ": " << err.text;
    return JsonPtr(j);
}

inline std::string jstr(json_t *j) { return std::string(json_string_value(j), json_string_length(j)); }

inline std::vector<int32_t> jids(json_t *arr)
{
    std::vector<int32_t> v;
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) v.push_back((int32_t)json_integer_value(x));
    return v;
}

inline std::string show(const std::vector<int32_t> &v)
{
    std::ostringstream s;
    s << "[";
    for (size_t i = 0; i < v.size(); i++) s << (i ? "," : "") << v[i];
    s << "]";
    return s.str();
}

}  // namespace culora_test
