// test_safetensors_malformed.cpp — one malformed file per validation rule (docs/formats.md): each is
// refused with CULORA_ERR_FORMAT and a message naming the file, the tensor and the problem.
// With CULORA_IO_DUMP_MALFORMED=DIR (and CULORA_IO_DUMP_WELLFORMED=DIR for the accepted edge cases)
// the cases are also written to DIR, so that tests/gen/check_io_roundtrip.py can confirm the
// reference Python reader agrees.
#include "io_test_util.h"

using namespace culora_io_test;

namespace {

struct Case {
    const char *id;
    std::string header;
    std::string data;
    int64_t len_override;              // -1: the header's real length
    std::vector<std::string> expect;   // substrings of the message (besides the file name)
    bool raw = false;                  // header holds the whole file
};

std::string zeros(size_t n) { return std::string(n, '\0'); }

const std::string T1 = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

std::vector<Case> cases()
{
    std::vector<Case> c;
    c.push_back({"empty_file", "", "", -1, {"shorter than the 8-byte header length"}, true});
    c.push_back({"seven_bytes", "1234567", "", -1, {"shorter than the 8-byte header length"}, true});
    c.push_back({"header_too_large", "{}", "", 100000001, {"larger than the 100 MB limit"}});
    c.push_back({"header_len_huge", "{}", "", (int64_t)0x7fffffffffffffffLL, {"larger than the 100 MB limit"}});
    c.push_back({"header_past_eof", "{" + T1 + "}", zeros(8), 4000, {"runs past the end of the file"}});
    c.push_back({"header_not_brace", " {" + T1 + "}", zeros(8), -1, {"does not start with '{'"}});
    c.push_back({"header_array", "[1,2]", "", -1, {"does not start with '{'"}});
    c.push_back({"header_zero_len", "", zeros(8), 0, {"does not start with '{'"}});
    c.push_back({"json_truncated", "{" + T1, zeros(8), -1, {"not valid JSON"}});
    c.push_back({"json_trailing_junk", "{" + T1 + "}x", zeros(8), -1, {"not valid JSON"}});
    c.push_back({"json_nul_padding", "{" + T1 + "}" + zeros(3), zeros(8), -1, {"not valid JSON"}});
    c.push_back({"json_bad_utf8", "{\"t\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", zeros(8), -1,
                 {"not valid JSON"}});
    c.push_back({"duplicate_tensor", "{" + T1 + "," + T1 + "}", zeros(8), -1, {"duplicate", "\"t\""}});
    c.push_back({"entry_not_object", R"({"t":[1,2]})", "", -1, {"tensor 't'", "not a JSON object"}});
    c.push_back({"unknown_dtype", R"({"t":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", zeros(8), -1,
                 {"tensor 't'", "unknown dtype 'F31'"}});
    c.push_back({"dtype_not_string", R"({"t":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", zeros(8), -1,
                 {"tensor 't'", "dtype is not a string"}});
    c.push_back({"missing_dtype", R"({"t":{"shape":[2],"data_offsets":[0,8]}})", zeros(8), -1,
                 {"tensor 't'", "missing \"dtype\""}});
    c.push_back({"missing_shape", R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", zeros(8), -1,
                 {"tensor 't'", "missing \"shape\""}});
    c.push_back({"missing_offsets", R"({"t":{"dtype":"F32","shape":[2]}})", zeros(8), -1,
                 {"tensor 't'", "missing \"data_offsets\""}});
    c.push_back({"shape_not_array", R"({"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", zeros(8), -1,
                 {"tensor 't'", "shape is not an array"}});
    c.push_back({"shape_negative", R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", zeros(8), -1,
                 {"tensor 't'", "shape[0] is not a non-negative integer"}});
    c.push_back({"shape_real", R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", zeros(8), -1,
                 {"tensor 't'", "shape[0] is not a non-negative integer"}});
    c.push_back({"shape_string", R"({"t":{"dtype":"F32","shape":[1,"2"],"data_offsets":[0,8]}})", zeros(8), -1,
                 {"tensor 't'", "shape[1] is not a non-negative integer"}});
    c.push_back({"shape_dim_too_large", R"({"t":{"dtype":"U8","shape":[281474976710656],"data_offsets":[0,8]}})",
                 zeros(8), -1, {"tensor 't'", "larger than 2^48-1"}});
    c.push_back({"shape_overflow",
                 R"({"t":{"dtype":"F32","shape":[281474976710655,281474976710655],"data_offsets":[0,8]}})", zeros(8),
                 -1, {"tensor 't'", "overflows"}});
    c.push_back({"shape_bits_overflow", R"({"t":{"dtype":"F64","shape":[2147483648,1073741824],"data_offsets":[0,8]}})",
                 zeros(8), -1, {"tensor 't'", "overflows"}});
    c.push_back({"subbyte_partial", R"({"t":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", zeros(2), -1,
                 {"tensor 't'", "do not fill whole bytes"}});
    c.push_back({"offsets_not_pair", R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", zeros(8), -1,
                 {"tensor 't'", "data_offsets is not [begin, end]"}});
    c.push_back({"offsets_negative", R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", zeros(8), -1,
                 {"tensor 't'", "data_offsets is not [begin, end]"}});
    c.push_back({"offsets_reversed", R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", zeros(8), -1,
                 {"tensor 't'", "end before begin"}});
    c.push_back({"size_mismatch", R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", zeros(8), -1,
                 {"tensor 't'", "hold 8 bytes but shape and dtype F32 need 12"}});
    c.push_back({"gap_at_start", R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", zeros(12), -1,
                 {"tensor 't'", "first tensor must start at 0"}});
    c.push_back({"gap_between",
                 R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                 zeros(12), -1, {"tensor 'b'", "gap of 4 bytes after tensor 'a'"}});
    c.push_back({"overlap",
                 R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 zeros(12), -1, {"tensor 'b'", "overlap tensor 'a'"}});
    c.push_back({"same_offsets",
                 R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                 zeros(8), -1, {"tensor 'b'", "overlap tensor 'a'"}});
    c.push_back({"past_eof", R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", zeros(8), -1,
                 {"tensor 't'", "run past the end of the file"}});
    c.push_back({"trailing_bytes", "{" + T1 + "}", zeros(12), -1, {"data region is 12 bytes but the tensors cover 8"}});
    c.push_back({"data_without_tensors", R"({})", zeros(4), -1, {"no tensors, yet data follows"}});
    c.push_back({"metadata_not_object", R"({"__metadata__":"x",)" + T1 + "}", zeros(8), -1,
                 {"__metadata__ is not a JSON object"}});
    c.push_back({"metadata_non_string", R"({"__metadata__":{"format":"pt","n":3},)" + T1 + "}", zeros(8), -1,
                 {"__metadata__ entry 'n' is not a string"}});
    c.push_back({"metadata_nested", R"({"__metadata__":{"a":{"b":"c"}},)" + T1 + "}", zeros(8), -1,
                 {"__metadata__ entry 'a' is not a string"}});
    return c;
}

class SafetensorsMalformed : public IoTest {};

TEST_F(SafetensorsMalformed, EveryRuleIsRefusedWithANamedMessage)
{
    TempDir dir;
    const char *dump = getenv("CULORA_IO_DUMP_MALFORMED");
    for (const Case &c : cases()) {
        SCOPED_TRACE(c.id);
        std::string path = dir / (std::string(c.id) + ".safetensors");
        std::string bytes = c.raw ? c.header : st_bytes(c.header, c.data, c.len_override);
        write_bytes(path, bytes);
        if (dump != nullptr && *dump)
            write_bytes(std::string(dump) + "/" + c.id + ".safetensors", bytes);
        culora_safetensors *st = reinterpret_cast<culora_safetensors *>(1);
        EXPECT_EQ(culora_safetensors_open(ctx, path.c_str(), &st), CULORA_ERR_FORMAT) << msg();
        EXPECT_EQ(st, nullptr);
        EXPECT_NE(msg().find(path), std::string::npos) << "message does not name the file: " << msg();
        for (const std::string &e : c.expect)
            EXPECT_NE(msg().find(e), std::string::npos) << "expected '" << e << "' in: " << msg();
    }
}

TEST_F(SafetensorsMalformed, WellFormedEdgeCasesAreAccepted)
{
    TempDir dir;
    struct Ok {
        const char *id;
        std::string header, data;
    } ok[] = {
        {"no_tensors", "{}", ""},
        {"padded_with_spaces", "{" + T1 + "}   ", zeros(8)},
        {"reference_doctest", R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})", zeros(16)},
        {"empty_tensors_share_offset",
         R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F16","shape":[2,0],"data_offsets":[0,0]},"c":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
         zeros(1)},
        {"scalar", R"({"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}})", zeros(8)},
        {"metadata_null", R"({"__metadata__":null,)" + T1 + "}", zeros(8)},
        {"unknown_entry_key_ignored", R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", zeros(8)},
        {"subbyte_even", R"({"t":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}})", zeros(2)},
        {"unordered_offsets",
         R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
         zeros(8)},
    };
    const char *dump = getenv("CULORA_IO_DUMP_WELLFORMED");
    for (const Ok &c : ok) {
        SCOPED_TRACE(c.id);
        std::string path = dir / (std::string(c.id) + ".safetensors");
        write_bytes(path, st_bytes(c.header, c.data));
        if (dump != nullptr && *dump)
            write_bytes(std::string(dump) + "/" + c.id + ".safetensors", st_bytes(c.header, c.data));
        culora_safetensors *st = nullptr;
        EXPECT_EQ(culora_safetensors_open(ctx, path.c_str(), &st), CULORA_OK) << msg();
        culora_safetensors_close(st);
    }
}

// Sharded sets: the index and the shards must agree exactly.
class ShardedMalformed : public IoTest {
  protected:
    TempDir dir;
    void shard(const std::string &name, const std::string &tensor)
    {
        write_bytes(dir / name,
                    st_bytes("{\"" + tensor + R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", zeros(4)));
    }
    culora_status open_index(const std::string &index_json)
    {
        write_bytes(dir / "model.safetensors.index.json", index_json);
        culora_safetensors *st = nullptr;
        culora_status s = culora_safetensors_open(ctx, dir.path().c_str(), &st);
        culora_safetensors_close(st);
        return s;
    }
};

TEST_F(ShardedMalformed, IndexAndShardsMustAgree)
{
    shard("s1.safetensors", "a");
    shard("s2.safetensors", "b");
    shard("dup.safetensors", "a");
    EXPECT_EQ(open_index(R"({"metadata":{"total_size":8},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})"),
              CULORA_OK) << msg();

    EXPECT_EQ(open_index(R"({"weight_map":{"a":"s1.safetensors","b":"missing.safetensors"}})"), CULORA_ERR_IO);
    EXPECT_NE(msg().find("missing.safetensors"), std::string::npos) << msg();

    EXPECT_EQ(open_index(R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})"), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("tensor 'b' is listed in shard s1.safetensors but is not in it"), std::string::npos) << msg();

    EXPECT_EQ(open_index(R"({"weight_map":{"b":"s1.safetensors"}})"), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("tensor 'a' is in shard s1.safetensors but the index does not list it"), std::string::npos)
        << msg();

    EXPECT_EQ(open_index(R"({"weight_map":{"a":"../s1.safetensors"}})"), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("not a plain file name"), std::string::npos) << msg();

    EXPECT_EQ(open_index(R"({"weight_map":{"a":"/etc/passwd"}})"), CULORA_ERR_FORMAT);
    EXPECT_EQ(open_index(R"({"weight_map":{"a":3}})"), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("tensor 'a' is not a string"), std::string::npos) << msg();
    EXPECT_EQ(open_index(R"({"weight_map":[]})"), CULORA_ERR_FORMAT);
    EXPECT_EQ(open_index(R"({"metadata":3,"weight_map":{}})"), CULORA_ERR_FORMAT);
    EXPECT_EQ(open_index(R"({"weight_map":{"a":"s1.safetensors","a":"s1.safetensors"}})"), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("duplicate"), std::string::npos) << msg();
    EXPECT_EQ(open_index("{\"weight_map\":"), CULORA_ERR_FORMAT);

    // the same tensor in two shards (the index can only name one of them)
    EXPECT_EQ(open_index(R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","c":"dup.safetensors"}})"),
              CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("tensor 'a'"), std::string::npos) << msg();

    // a malformed shard is reported with its own name
    write_bytes(dir / "bad.safetensors", st_bytes(R"({"z":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", zeros(4)));
    EXPECT_EQ(open_index(R"({"weight_map":{"z":"bad.safetensors"}})"), CULORA_ERR_FORMAT);
    EXPECT_NE(msg().find("bad.safetensors: tensor 'z'"), std::string::npos) << msg();
}

} // namespace
