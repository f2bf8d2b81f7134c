// test_llama2c.cpp — culora_llama2c_convert / `culora convert --from llama2c`: the real
// stories260K checkpoint (skips without ../shared/data) gives a directory that culora loads and
// whose model.safetensors has the bytes recorded by tests/gen/gen_stories260k_fixture.py (where
// transformers' logits on it were checked against an independent llama2.c forward); small
// synthetic checkpoints check every tensor, the q/k row permutation and the untied classifier;
// malformed files are refused with CULORA_ERR_FORMAT and a message naming the problem.
#include "io_test_util.h"
#include "sha256_test_util.h"

#include "../common/test_util.h"

#include <cinttypes>
#include <random>

using namespace culora_io_test;
using culora_test::CommandRun;
using culora_test::run_command;

namespace {

// ---- a llama2.c file, built here ------------------------------------------------------------

struct L2cDims {
    int32_t dim, hidden, layers, heads, kv_heads, vocab, seq_len;
};

// The arrays of a llama2.c file in order, as run.c's memory_map_weights walks them.
struct L2cArray {
    std::string name;
    int64_t layers, rows, cols;  // rows == 0: a vector
    int64_t offset;              // in floats, after the header
};

std::vector<L2cArray> l2c_arrays(const L2cDims &d)
{
    int64_t V = d.vocab < 0 ? -(int64_t)d.vocab : d.vocab, hs = d.dim / d.heads, kv = d.kv_heads * hs, L = d.layers;
    std::vector<L2cArray> a = {
        {"tok", 1, V, d.dim, 0},        {"rms_att", L, 0, d.dim, 0},    {"wq", L, d.dim, d.dim, 0},
        {"wk", L, kv, d.dim, 0},        {"wv", L, kv, d.dim, 0},        {"wo", L, d.dim, d.dim, 0},
        {"rms_ffn", L, 0, d.dim, 0},    {"w1", L, d.hidden, d.dim, 0}, {"w2", L, d.dim, d.hidden, 0},
        {"w3", L, d.hidden, d.dim, 0},  {"rms_final", 1, 0, d.dim, 0}, {"freq", 1, 0, d.seq_len * hs, 0},
    };
    if (d.vocab < 0)
        a.push_back({"wcls", 1, V, d.dim, 0});
    int64_t off = 0;
    for (auto &x : a) {
        x.offset = off;
        off += x.layers * (x.rows ? x.rows : 1) * x.cols;
    }
    a.push_back({"end", 0, 0, 0, off});
    return a;
}

// Header + floats value(i) = i / 1024 (distinct, exact): every element says where it came from.
std::string l2c_bytes(const L2cDims &d)
{
    int32_t h[7] = {d.dim, d.hidden, d.layers, d.heads, d.kv_heads, d.vocab, d.seq_len};
    std::string out(reinterpret_cast<const char *>(h), sizeof h);
    int64_t n = l2c_arrays(d).back().offset;
    std::vector<float> w((size_t)n);
    for (int64_t i = 0; i < n; i++)
        w[(size_t)i] = (float)i / 1024.0f;
    out.append(reinterpret_cast<const char *>(w.data()), w.size() * sizeof(float));
    return out;
}

std::string header_bytes(const std::vector<int32_t> &h)
{
    return std::string(reinterpret_cast<const char *>(h.data()), h.size() * sizeof(int32_t));
}

bool is_dir(const std::string &p)
{
    struct stat sb;
    return stat(p.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode);
}

std::vector<float> tensor_floats(const culora_tensor_info *t)
{
    std::vector<float> v((size_t)t->n_elems);
    memcpy(v.data(), t->data, v.size() * sizeof(float));
    return v;
}

class Llama2c : public IoTest {
  protected:
    TempDir dir;
    // Converts bytes (written as dir/in.bin) into dir/out.
    culora_status convert(const std::string &bytes)
    {
        write_bytes(dir / "in.bin", bytes);
        return culora_llama2c_convert(ctx, (dir / "in.bin").c_str(), (dir / "out").c_str());
    }
};

// Checks every tensor of dir/out against the synthetic file: names, shapes, values, and the q/k
// rows permuted as HF's permute() does (new row h*hs + j*hs/2 + i = old row h*hs + 2i + j).
void check_synthetic(culora_context *ctx, const std::string &out, const L2cDims &d)
{
    culora_model_config cfg{};
    ASSERT_EQ(culora_model_config_load(ctx, out.c_str(), &cfg), CULORA_OK) << culora_context_last_error(ctx);
    int64_t V = d.vocab < 0 ? -(int64_t)d.vocab : d.vocab, hs = d.dim / d.heads;
    EXPECT_EQ(cfg.arch, CULORA_ARCH_LLAMA);
    EXPECT_EQ(cfg.vocab_size, V);
    EXPECT_EQ(cfg.hidden_size, d.dim);
    EXPECT_EQ(cfg.intermediate_size, d.hidden);
    EXPECT_EQ(cfg.n_layers, d.layers);
    EXPECT_EQ(cfg.n_heads, d.heads);
    EXPECT_EQ(cfg.n_kv_heads, d.kv_heads);
    EXPECT_EQ(cfg.head_dim, hs);
    EXPECT_EQ(cfg.max_position_embeddings, d.seq_len);
    EXPECT_EQ(cfg.tie_word_embeddings, d.vocab > 0);
    EXPECT_DOUBLE_EQ(cfg.norm_eps, 1e-5);
    EXPECT_DOUBLE_EQ(cfg.rope_theta, 10000.0);
    EXPECT_EQ(cfg.rope_type, CULORA_ROPE_DEFAULT);
    EXPECT_EQ(cfg.activation, CULORA_ACT_SILU);
    EXPECT_EQ(cfg.bos_token_id, 1);
    EXPECT_EQ(cfg.eos_token_id, 2);

    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, out.c_str(), &st), CULORA_OK) << culora_context_last_error(ctx);
    EXPECT_EQ(culora_model_config_check(ctx, &cfg, st), CULORA_OK) << culora_context_last_error(ctx);
    EXPECT_EQ(culora_safetensors_count(st), culora_model_config_n_tensors(&cfg));
    EXPECT_STREQ(culora_safetensors_metadata_get(st, "format"), "pt");

    auto arrays = l2c_arrays(d);
    auto find = [&](const std::string &n) {
        for (auto &a : arrays)
            if (a.name == n) return a;
        ADD_FAILURE() << n;
        return arrays[0];
    };
    // value of element (row, col) of layer l of array a, permuted rows for q/k (n_heads given)
    auto expect_tensor = [&](const std::string &name, const std::string &arr, int64_t l, int64_t perm_heads) {
        const culora_tensor_info *t = culora_safetensors_find(st, name.c_str());
        ASSERT_NE(t, nullptr) << name;
        EXPECT_EQ(t->dtype, CULORA_ST_F32) << name;
        L2cArray a = find(arr);
        int64_t rows = a.rows ? a.rows : 1;
        ASSERT_EQ(t->n_dims, a.rows ? 2 : 1) << name;
        EXPECT_EQ(t->shape[0], a.rows ? a.rows : a.cols) << name;
        if (a.rows) EXPECT_EQ(t->shape[1], a.cols) << name;
        std::vector<float> got = tensor_floats(t);
        size_t bad = 0;
        for (int64_t r = 0; r < rows; r++) {
            int64_t src = r;
            if (perm_heads > 0) {  // r = h*hs + j*hs/2 + i  <-  h*hs + 2i + j
                int64_t h = r / hs, j = (r % hs) / (hs / 2), i = r % (hs / 2);
                src = h * hs + 2 * i + j;
            }
            for (int64_t c = 0; c < a.cols; c++) {
                float want = (float)(a.offset + (l * rows + src) * a.cols + c) / 1024.0f;
                if (got[(size_t)(r * a.cols + c)] != want && bad++ < 3)
                    ADD_FAILURE() << name << " [" << r << ", " << c << "] = " << got[(size_t)(r * a.cols + c)]
                                  << ", want " << want;
            }
        }
        EXPECT_EQ(bad, 0u) << name;
    };
    expect_tensor("model.embed_tokens.weight", "tok", 0, 0);
    for (int64_t l = 0; l < d.layers; l++) {
        std::string p = "model.layers." + std::to_string(l) + ".";
        expect_tensor(p + "input_layernorm.weight", "rms_att", l, 0);
        expect_tensor(p + "self_attn.q_proj.weight", "wq", l, d.heads);
        expect_tensor(p + "self_attn.k_proj.weight", "wk", l, d.kv_heads);
        expect_tensor(p + "self_attn.v_proj.weight", "wv", l, 0);
        expect_tensor(p + "self_attn.o_proj.weight", "wo", l, 0);
        expect_tensor(p + "post_attention_layernorm.weight", "rms_ffn", l, 0);
        expect_tensor(p + "mlp.gate_proj.weight", "w1", l, 0);
        expect_tensor(p + "mlp.down_proj.weight", "w2", l, 0);
        expect_tensor(p + "mlp.up_proj.weight", "w3", l, 0);
    }
    expect_tensor("model.norm.weight", "rms_final", 0, 0);
    if (d.vocab < 0)
        expect_tensor("lm_head.weight", "wcls", 0, 0);
    else
        EXPECT_EQ(culora_safetensors_find(st, "lm_head.weight"), nullptr);
    culora_safetensors_close(st);
}

TEST(Sha256, StandardVectors)
{
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(sha256_hex(std::string(1000, 'a')),
              "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

// ---- conversions ------------------------------------------------------------------------------

TEST_F(Llama2c, SyntheticTiedGqa)
{
    L2cDims d{16, 24, 2, 4, 2, 10, 8};  // hs 4, kv_dim 8
    ASSERT_EQ(convert(l2c_bytes(d)), CULORA_OK) << msg();
    check_synthetic(ctx, dir / "out", d);
    EXPECT_EQ(list_dir(dir / "out"), (std::vector<std::string>{"config.json", "model.safetensors"}));
}

TEST_F(Llama2c, SyntheticUntiedClassifier)
{
    L2cDims d{8, 12, 3, 2, 1, -7, 5};  // negative vocab_size: wcls follows the RoPE tables
    ASSERT_EQ(convert(l2c_bytes(d)), CULORA_OK) << msg();
    check_synthetic(ctx, dir / "out", d);
}

TEST_F(Llama2c, SyntheticMultiHeadNoGqaOneLayerIntoExistingDir)
{
    L2cDims d{12, 20, 1, 3, 3, 5, 3};  // hs 4, n_kv == n_heads
    ASSERT_EQ(mkdir((dir / "out").c_str(), 0755), 0);
    write_bytes(dir / "out/config.json", "old");
    ASSERT_EQ(convert(l2c_bytes(d)), CULORA_OK) << msg();
    check_synthetic(ctx, dir / "out", d);  // the old config.json was replaced
}

TEST_F(Llama2c, Stories260KMatchesTheFixture)
{
    CULORA_REQUIRE_SHARED_DATA(shared);
    std::string bin = shared + "/stories260K.bin";
    ASSERT_EQ(culora_llama2c_convert(ctx, bin.c_str(), (dir / "stories260K").c_str()), CULORA_OK) << msg();

    culora_model_config cfg{};
    ASSERT_EQ(culora_model_config_load(ctx, (dir / "stories260K").c_str(), &cfg), CULORA_OK) << msg();
    EXPECT_EQ(cfg.hidden_size, 64);
    EXPECT_EQ(cfg.intermediate_size, 172);
    EXPECT_EQ(cfg.n_layers, 5);
    EXPECT_EQ(cfg.n_heads, 8);
    EXPECT_EQ(cfg.n_kv_heads, 4);
    EXPECT_EQ(cfg.head_dim, 8);
    EXPECT_EQ(cfg.vocab_size, 512);
    EXPECT_EQ(cfg.max_position_embeddings, 512);
    EXPECT_TRUE(cfg.tie_word_embeddings);
    culora_safetensors *st = nullptr;
    ASSERT_EQ(culora_safetensors_open(ctx, (dir / "stories260K").c_str(), &st), CULORA_OK) << msg();
    EXPECT_EQ(culora_model_config_check(ctx, &cfg, st), CULORA_OK) << msg();
    EXPECT_EQ(culora_safetensors_count(st), 47u);  // embed + 5 * 9 + norm, tied
    culora_safetensors_close(st);

    // The bytes transformers was run on when the fixture was made (its logits were checked there
    // against an independent llama2.c forward; docs/formats.md).
    JsonRef fx(load_json(fixture("stories260k_logits.json")));
    ASSERT_NE(fx.j, nullptr);
    json_t *conv = json_object_get(fx.j, "converted");
    const char *want_sha = json_string_value(json_object_get(conv, "model.safetensors sha256"));
    ASSERT_NE(want_sha, nullptr);
    EXPECT_EQ(sha256_hex(read_bytes(dir / "stories260K/model.safetensors")), want_sha)
        << "culora's converted model.safetensors differs from the one the fixture's logits came from";
    const char *src_sha = json_string_value(json_object_get(json_object_get(fx.j, "source"), "sha256"));
    EXPECT_STREQ(src_sha, "9414d5a285453a7eab631713d171753232c978f6f97654211469aff8be93c8d6");
    JsonRef written(load_json(dir / "stories260K/config.json"));
    EXPECT_TRUE(json_equal(written.j, json_object_get(conv, "config.json")))
        << "config.json differs from the one recorded in the fixture";

    // The fixture describes itself: 16 token ids, logits rows of 512 for each listed position.
    json_t *tokens = json_object_get(fx.j, "tokens"), *positions = json_object_get(fx.j, "positions");
    json_t *logits = json_object_get(fx.j, "logits");
    ASSERT_TRUE(json_is_array(tokens) && json_is_array(positions) && json_is_array(logits));
    EXPECT_EQ(json_array_size(tokens), 16u);
    EXPECT_EQ(json_integer_value(json_array_get(tokens, 0)), 1);
    ASSERT_EQ(json_array_size(logits), json_array_size(positions));
    for (size_t i = 0; i < json_array_size(logits); i++)
        EXPECT_EQ(json_array_size(json_array_get(logits, i)), 512u);
    EXPECT_EQ(json_array_size(json_object_get(json_object_get(fx.j, "greedy"), "tokens")), 200u);
}

// ---- refusals ---------------------------------------------------------------------------------

struct BadCase {
    const char *what;
    std::string bytes;
    culora_status status;
    std::string message;  // expected substring
};

TEST_F(Llama2c, MalformedFilesAreRefusedAndNothingIsWritten)
{
    L2cDims ok{16, 24, 2, 4, 2, 10, 8};
    std::string good = l2c_bytes(ok);
    std::string nan_file = good, inf_file = good;
    uint32_t qnan = 0x7fc00000u, inf = 0xff800000u;
    int64_t wk_offset = l2c_arrays(ok)[3].offset;
    memcpy(&nan_file[28 + 4 * (wk_offset + 3)], &qnan, 4);
    memcpy(&inf_file[28 + 4 * 5], &inf, 4);
    std::string garbage(4096, '\0');
    std::mt19937 rng(7);
    for (char &c : garbage) c = (char)(rng() & 0xff);
    std::string magic = header_bytes({0x616b3432, 1, 64, 172, 5, 8, 4}) + std::string(256, '\0');

    std::vector<BadCase> cases = {
        {"empty", "", CULORA_ERR_FORMAT, "0 bytes is too short for a llama2.c header"},
        {"short header", good.substr(0, 20), CULORA_ERR_FORMAT, "20 bytes is too short"},
        {"header only", good.substr(0, 28), CULORA_ERR_FORMAT, "truncated"},
        {"truncated by one float", good.substr(0, good.size() - 4), CULORA_ERR_FORMAT,
         "implies " + std::to_string(good.size()) + " bytes"},
        {"trailing bytes", good + "xxxx", CULORA_ERR_FORMAT, "trailing bytes"},
        {"untied header on a tied file", header_bytes({16, 24, 2, 4, 2, -10, 8}) + good.substr(28),
         CULORA_ERR_FORMAT, "and the untied classifier"},
        {"zero dim", header_bytes({0, 24, 2, 4, 2, 10, 8}) + good.substr(28), CULORA_ERR_FORMAT,
         "dim = 0 must be positive"},
        {"zero hidden_dim", header_bytes({16, 0, 2, 4, 2, 10, 8}) + good.substr(28), CULORA_ERR_FORMAT,
         "hidden_dim = 0 must be positive"},
        {"negative n_layers", header_bytes({16, 24, -2, 4, 2, 10, 8}) + good.substr(28), CULORA_ERR_FORMAT,
         "n_layers = -2 must be positive"},
        {"negative n_heads", header_bytes({16, 24, 2, -4, 2, 10, 8}) + good.substr(28), CULORA_ERR_FORMAT,
         "n_heads = -4 must be positive"},
        {"zero n_kv_heads", header_bytes({16, 24, 2, 4, 0, 10, 8}) + good.substr(28), CULORA_ERR_FORMAT,
         "n_kv_heads = 0 must be positive"},
        {"zero seq_len", header_bytes({16, 24, 2, 4, 2, 10, 0}) + good.substr(28), CULORA_ERR_FORMAT,
         "seq_len = 0 must be positive"},
        {"zero vocab", header_bytes({16, 24, 2, 4, 2, 0, 8}) + good.substr(28), CULORA_ERR_FORMAT,
         "vocab_size = 0 must not be zero"},
        {"n_heads does not divide dim", header_bytes({16, 24, 2, 3, 1, 10, 8}) + good.substr(28),
         CULORA_ERR_FORMAT, "dim 16 is not a multiple of n_heads 3"},
        {"n_kv_heads does not divide n_heads", header_bytes({16, 24, 2, 4, 3, 10, 8}) + good.substr(28),
         CULORA_ERR_FORMAT, "n_heads 4 is not a multiple of n_kv_heads 3"},
        {"more kv heads than heads", header_bytes({16, 24, 2, 4, 8, 10, 8}) + good.substr(28), CULORA_ERR_FORMAT,
         "n_heads 4 is not a multiple of n_kv_heads 8"},
        {"odd head size", header_bytes({12, 24, 2, 4, 2, 10, 8}) + good.substr(28), CULORA_ERR_FORMAT,
         "head size dim / n_heads = 3 must be even"},
        {"sizes overflow 64 bits", header_bytes({1 << 30, 1 << 30, 1 << 30, 1 << 29, 1 << 29, 1 << 30, 1 << 30}),
         CULORA_ERR_FORMAT, "implies more than 2^64 bytes"},
        {"INT32_MIN vocab (huge, no overflow)", header_bytes({16, 24, 2, 4, 2, INT32_MIN, 8}) + good.substr(28),
         CULORA_ERR_FORMAT, "vocab_size -2147483648"},
        {"large header, small file", header_bytes({4096, 11008, 32, 32, 32, 32000, 2048}) + good.substr(28),
         CULORA_ERR_FORMAT, "truncated, or not a llama2.c checkpoint"},
        {"NaN weight", nan_file, CULORA_ERR_FORMAT, "array wk holds a non-finite value (NaN) at layer 0, element 3"},
        {"Inf weight", inf_file, CULORA_ERR_FORMAT, "array tok_embeddings holds a non-finite value (Inf)"},
        {"random bytes", garbage, CULORA_ERR_FORMAT, "llama2.c header"},
        {"version 1 export", magic, CULORA_ERR_UNSUPPORTED, "export version 1 (magic \"ak42\") is not supported"},
    };
    for (const BadCase &c : cases) {
        SCOPED_TRACE(c.what);
        EXPECT_EQ(convert(c.bytes), c.status) << msg();
        EXPECT_NE(msg().find(c.message), std::string::npos) << msg();
        EXPECT_NE(msg().find(dir / "in.bin"), std::string::npos) << "message names the file: " << msg();
        EXPECT_FALSE(is_dir(dir / "out")) << "nothing is written for a refused file";
    }
}

TEST_F(Llama2c, IoErrorsAndArguments)
{
    EXPECT_EQ(culora_llama2c_convert(ctx, (dir / "missing.bin").c_str(), (dir / "out").c_str()), CULORA_ERR_IO);
    EXPECT_NE(msg().find("missing.bin: cannot open"), std::string::npos) << msg();
    EXPECT_EQ(culora_llama2c_convert(ctx, dir.path().c_str(), (dir / "out").c_str()), CULORA_ERR_IO);
    EXPECT_NE(msg().find("not a regular file"), std::string::npos) << msg();
    write_bytes(dir / "in.bin", l2c_bytes({8, 8, 1, 2, 2, 4, 2}));
    EXPECT_EQ(culora_llama2c_convert(ctx, (dir / "in.bin").c_str(), (dir / "no/such/dir").c_str()), CULORA_ERR_IO);
    EXPECT_NE(msg().find("cannot create directory"), std::string::npos) << msg();
    write_bytes(dir / "file", "x");
    EXPECT_EQ(culora_llama2c_convert(ctx, (dir / "in.bin").c_str(), (dir / "file").c_str()), CULORA_ERR_IO);
    EXPECT_NE(msg().find("a file of that name exists"), std::string::npos) << msg();
    EXPECT_EQ(culora_llama2c_convert(ctx, nullptr, "x"), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_llama2c_convert(nullptr, (dir / "in.bin").c_str(), (dir / "ok").c_str()), CULORA_OK);
}

// ---- the CLI ----------------------------------------------------------------------------------

CommandRun run_cli(const std::string &args)
{
    return run_command(std::string(CULORA_CLI_PATH) + " convert " + args + " 2>&1");
}

TEST_F(Llama2c, CliConvertsAndRefuses)
{
    L2cDims d{16, 24, 2, 4, 2, -10, 8};
    write_bytes(dir / "in.bin", l2c_bytes(d));
    CommandRun r = run_cli("--from llama2c " + (dir / "in.bin") + " --out " + (dir / "out"));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("LlamaForCausalLM: hidden 16, layers 2, heads 4 / kv heads 2 (head_dim 4), intermediate 24, "
                         "vocab 10 (untied classifier), max positions 8"),
              std::string::npos) << r.out;
    check_synthetic(ctx, dir / "out", d);

    r = run_cli("--out " + (dir / "out2") + " " + (dir / "in.bin") + " --from llama2c");  // any order
    EXPECT_EQ(r.status, 0) << r.out;

    write_bytes(dir / "bad.bin", l2c_bytes(d).substr(0, 100));
    r = run_cli("--from llama2c " + (dir / "bad.bin") + " --out " + (dir / "out3"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("bad.bin: file is 100 bytes"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CULORA_ERR_FORMAT"), std::string::npos) << r.out;

    r = run_cli("--help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("usage: culora convert --from llama2c FILE --out DIR"), std::string::npos) << r.out;
    EXPECT_EQ(run_cli("").status, 2);
    EXPECT_EQ(run_cli("--from gguf x --out y").status, 2);
    EXPECT_EQ(run_cli("--from llama2c " + (dir / "in.bin")).status, 2);       // no --out
    EXPECT_EQ(run_cli("--from llama2c --out " + (dir / "o")).status, 2);       // no FILE
    EXPECT_EQ(run_cli("--from llama2c a b --out " + (dir / "o")).status, 2);   // two FILEs
    EXPECT_EQ(run_cli("--from llama2c a --out o --frob").status, 2);
    EXPECT_EQ(run_cli("--from").status, 2);
}

}  // namespace
