// test_tokenizer.cpp — tokenizers: the byte tokenizer; byte-level BPE from tokenizer.json (three
// tiny tokenizers trained with Hugging Face `tokenizers`) and from the real GPT-2 files
// (../shared/data/gpt2-bpe), each compared id for id with fixtures written by
// tests/gen/gen_tokenizer_fixtures.py from the real tokenizers / transformers packages; round
// trips; arbitrary bytes; malformed and unsupported files.
#include "data_test_util.h"

#include <chrono>
#include <random>

using namespace culora_test;

namespace {

CtxPtr cpu_ctx() { return make_ctx(CULORA_BACKEND_CPU); }

TokPtr load_hf(culora_context *ctx, const std::string &path)
{
    culora_tokenizer *t = nullptr;
    culora_status s = culora_tokenizer_load_hf(ctx, path.c_str(), &t);
    EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
    return TokPtr(t);
}

TokPtr load_gpt2(culora_context *ctx, const std::string &dir)
{
    culora_tokenizer *t = nullptr;
    std::string enc = dir + "/gpt2-bpe/encoder.json", bpe = dir + "/gpt2-bpe/vocab.bpe";
    culora_status s = culora_tokenizer_load_gpt2(ctx, enc.c_str(), bpe.c_str(), &t);
    EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
    return TokPtr(t);
}

// Every case of a fixture list: ids with HF's default flags and with specials as plain text,
// the three decodes, and decode(encode(text)) == text when the tokenizer adds no prefix space.
void check_cases(culora_context *ctx, const culora_tokenizer *tok, json_t *cases, bool round_trip)
{
    ASSERT_TRUE(json_is_array(cases));
    ASSERT_GT(json_array_size(cases), 40u);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        std::string text = jstr(json_object_get(c, "text"));
        std::vector<int32_t> want = jids(json_object_get(c, "ids"));
        std::vector<int32_t> want_plain = jids(json_object_get(c, "ids_plain"));
        std::vector<int32_t> got = encode(ctx, tok, text, CULORA_ENCODE_SPECIAL | CULORA_ENCODE_ADD_SPECIAL);
        std::vector<int32_t> got_plain = encode(ctx, tok, text, 0);
        EXPECT_EQ(got, want) << "case " << i << " text \"" << text << "\"\n got  " << show(got) << "\n want " << show(want);
        EXPECT_EQ(got_plain, want_plain) << "case " << i << " (specials as text) \"" << text << "\"\n got  "
                                         << show(got_plain) << "\n want " << show(want_plain);
        EXPECT_EQ(decode(ctx, tok, want, 0), jstr(json_object_get(c, "decoded"))) << "case " << i;
        EXPECT_EQ(decode(ctx, tok, want, CULORA_DECODE_SKIP_SPECIAL), jstr(json_object_get(c, "decoded_skip")))
            << "case " << i;
        EXPECT_EQ(decode(ctx, tok, want_plain, 0), jstr(json_object_get(c, "decoded_plain"))) << "case " << i;
        if (round_trip) EXPECT_EQ(decode(ctx, tok, got_plain, 0), text) << "case " << i;
    }
}

// decode(encode(bytes)) == bytes for random byte strings (mostly invalid UTF-8) and random
// mixes of ASCII and multi-byte characters.
void check_byte_round_trip(culora_context *ctx, const culora_tokenizer *tok, uint64_t seed)
{
    std::mt19937_64 g(seed);
    const char *pieces[] = {"a", " ", "\n", "é", "東", "😀", "'s", "1", "\xff", "\xc3", "\x80", "<|", "|>", "\t"};
    for (int trial = 0; trial < 200; trial++) {
        std::string s;
        size_t len = g() % 200;
        for (size_t k = 0; k < len; k++) {
            if (trial % 2 == 0)
                s.push_back((char)(g() & 0xff));
            else
                s += pieces[g() % (sizeof pieces / sizeof pieces[0])];
        }
        std::vector<int32_t> ids = encode(ctx, tok, s, 0);
        ASSERT_EQ(decode(ctx, tok, ids, 0), s) << "trial " << trial;
    }
}

}  // namespace

// ---- byte tokenizer ------------------------------------------------------------------------

TEST(ByteTokenizer, EncodesEveryByteAndDecodesBack)
{
    CtxPtr ctx = cpu_ctx();
    culora_tokenizer *raw = nullptr;
    ASSERT_EQ(culora_tokenizer_create_bytes(ctx.get(), &raw), CULORA_OK);
    TokPtr tok(raw);
    EXPECT_EQ(culora_tokenizer_get_kind(tok.get()), CULORA_TOKENIZER_BYTES);
    EXPECT_EQ(culora_tokenizer_vocab_size(tok.get()), 256);
    EXPECT_EQ(culora_tokenizer_bos_id(tok.get()), -1);
    EXPECT_EQ(culora_tokenizer_eos_id(tok.get()), -1);
    EXPECT_EQ(culora_tokenizer_token_to_id(tok.get(), "A"), 65);
    EXPECT_EQ(culora_tokenizer_token_to_id(tok.get(), "AB"), -1);
    std::string all;
    for (int b = 0; b < 256; b++) all.push_back((char)b);
    std::vector<int32_t> ids = encode(ctx.get(), tok.get(), all, CULORA_ENCODE_SPECIAL | CULORA_ENCODE_ADD_SPECIAL);
    ASSERT_EQ(ids.size(), 256u);
    for (int b = 0; b < 256; b++) EXPECT_EQ(ids[b], b);
    EXPECT_EQ(decode(ctx.get(), tok.get(), ids, 0), all);
    EXPECT_EQ(encode(ctx.get(), tok.get(), "", 0).size(), 0u);
    check_byte_round_trip(ctx.get(), tok.get(), 1);
}

TEST(ByteTokenizer, CapacityAndRangeErrors)
{
    CtxPtr ctx = cpu_ctx();
    culora_tokenizer *raw = nullptr;
    ASSERT_EQ(culora_tokenizer_create_bytes(ctx.get(), &raw), CULORA_OK);
    TokPtr tok(raw);
    int32_t ids[3];
    size_t n = 0;
    EXPECT_EQ(culora_tokenizer_encode(ctx.get(), tok.get(), "hello", 5, 0, ids, 3, &n), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(n, 5u);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("5 ids"), std::string::npos);
    EXPECT_EQ(culora_tokenizer_encode(ctx.get(), tok.get(), "hello", 5, 0, nullptr, 0, &n), CULORA_OK);
    EXPECT_EQ(n, 5u);
    int32_t bad[] = {104, 256};
    char out[8];
    EXPECT_EQ(culora_tokenizer_decode(ctx.get(), tok.get(), bad, 2, 0, out, sizeof out, &n), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("position 1"), std::string::npos);
    int32_t ok[] = {104, 105};
    EXPECT_EQ(culora_tokenizer_decode(ctx.get(), tok.get(), ok, 2, 0, out, 2, &n), CULORA_ERR_INVALID_ARG);  // no room for NUL
    EXPECT_EQ(culora_tokenizer_decode(ctx.get(), tok.get(), ok, 2, 0, out, 3, &n), CULORA_OK);
    EXPECT_STREQ(out, "hi");
    culora_tokenizer_destroy(nullptr);
}

// ---- tiny tokenizer.json files (committed) ----------------------------------------------------

TEST(HfTokenizer, TinyGpt2StyleMatchesTokenizers)
{
    CtxPtr ctx = cpu_ctx();
    TokPtr tok = load_hf(ctx.get(), tok_fixture("tiny_gpt2/tokenizer.json"));
    ASSERT_TRUE(tok);
    JsonPtr fx = load_json(tok_fixture("tiny_cases.json"));
    EXPECT_EQ(culora_tokenizer_eos_id(tok.get()), culora_tokenizer_token_to_id(tok.get(), "<|endoftext|>"));
    EXPECT_EQ(culora_tokenizer_bos_id(tok.get()), culora_tokenizer_eos_id(tok.get()));
    EXPECT_TRUE(culora_tokenizer_is_special(tok.get(), culora_tokenizer_eos_id(tok.get())));
    EXPECT_FALSE(culora_tokenizer_is_special(tok.get(), culora_tokenizer_token_to_id(tok.get(), "[CUSTOM]")));
    check_cases(ctx.get(), tok.get(), json_object_get(fx.get(), "tiny_gpt2"), true);
    check_byte_round_trip(ctx.get(), tok.get(), 2);
}

TEST(HfTokenizer, TinyPrefixSpaceMatchesTokenizers)
{
    CtxPtr ctx = cpu_ctx();
    TokPtr tok = load_hf(ctx.get(), tok_fixture("tiny_prefix/tokenizer.json"));
    ASSERT_TRUE(tok);
    JsonPtr fx = load_json(tok_fixture("tiny_cases.json"));
    check_cases(ctx.get(), tok.get(), json_object_get(fx.get(), "tiny_prefix"), false);
}

TEST(HfTokenizer, TinyLlama3StyleMatchesTokenizers)
{
    CtxPtr ctx = cpu_ctx();
    TokPtr tok = load_hf(ctx.get(), tok_fixture("tiny_llama3/tokenizer.json"));
    ASSERT_TRUE(tok);
    JsonPtr fx = load_json(tok_fixture("tiny_cases.json"));
    json_t *ids = json_object_get(fx.get(), "tiny_llama3_ids");
    // BOS from the template and the config, EOS from tokenizer_config.json (<|eot_id|>, not the
    // <|end_of_text|> a name-based guess would pick).
    EXPECT_EQ(culora_tokenizer_bos_id(tok.get()), json_integer_value(json_object_get(ids, "bos")));
    EXPECT_EQ(culora_tokenizer_eos_id(tok.get()), json_integer_value(json_object_get(ids, "eos")));
    EXPECT_EQ(culora_tokenizer_token_to_id(tok.get(), "<|end_of_text|>"),
              json_integer_value(json_object_get(ids, "end_of_text")));
    EXPECT_EQ(culora_tokenizer_vocab_size(tok.get()), 604);
    check_cases(ctx.get(), tok.get(), json_object_get(fx.get(), "tiny_llama3"), true);
    check_byte_round_trip(ctx.get(), tok.get(), 3);
    // ignore_merges: " zzqx" is one vocabulary token that no merge sequence builds.
    EXPECT_EQ(encode(ctx.get(), tok.get(), " zzqx", 0).size(), 1u);
}

TEST(HfTokenizer, LongPiecesAreFast)
{
    // One pre-tokenized piece of 2 MB (a single letter repeated): the heap-based merge loop is
    // O(n log n); a quadratic one would take minutes.
    CtxPtr ctx = cpu_ctx();
    TokPtr tok = load_hf(ctx.get(), tok_fixture("tiny_gpt2/tokenizer.json"));
    ASSERT_TRUE(tok);
    std::string s(2 << 20, 'e');
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int32_t> ids = encode(ctx.get(), tok.get(), s, 0);
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(sec, 20.0);
    EXPECT_EQ(decode(ctx.get(), tok.get(), ids, 0), s);
}

// ---- real GPT-2 vocabulary (../shared/data) ---------------------------------------------------

TEST(Gpt2Tokenizer, MatchesTokenizersTransformersAndOpenAI)
{
    CULORA_REQUIRE_SHARED_DATA(dir);
    CtxPtr ctx = cpu_ctx();
    TokPtr tok = load_gpt2(ctx.get(), dir);
    ASSERT_TRUE(tok);
    EXPECT_EQ(culora_tokenizer_vocab_size(tok.get()), 50257);
    EXPECT_EQ(culora_tokenizer_eos_id(tok.get()), 50256);
    EXPECT_EQ(culora_tokenizer_bos_id(tok.get()), 50256);
    EXPECT_EQ(culora_tokenizer_token_to_id(tok.get(), "Ġthe"), 262);
    EXPECT_EQ(culora_tokenizer_token_to_id(tok.get(), "<|endoftext|>"), 50256);
    JsonPtr fx = load_json(tok_fixture("gpt2_cases.json"));
    check_cases(ctx.get(), tok.get(), json_object_get(fx.get(), "cases"), true);
    check_byte_round_trip(ctx.get(), tok.get(), 4);
}

TEST(Gpt2Tokenizer, WholeTinyShakespeareMatchesTokenizers)
{
    CULORA_REQUIRE_SHARED_DATA(dir);
    CtxPtr ctx = cpu_ctx();
    TokPtr tok = load_gpt2(ctx.get(), dir);
    ASSERT_TRUE(tok);
    JsonPtr fx = load_json(tok_fixture("gpt2_tinyshakespeare.json"));
    std::string text = read_file(dir + "/tinyshakespeare.txt");
    ASSERT_EQ((json_int_t)text.size(), json_integer_value(json_object_get(fx.get(), "bytes")));
    std::vector<int32_t> ids = encode(ctx.get(), tok.get(), text, CULORA_ENCODE_SPECIAL);
    ASSERT_EQ((json_int_t)ids.size(), json_integer_value(json_object_get(fx.get(), "n_ids")));
    uint64_t h = 0xcbf29ce484222325ull;
    for (int32_t id : ids)
        for (int k = 0; k < 4; k++) {
            h ^= (uint8_t)((uint32_t)id >> (8 * k));
            h *= 0x100000001b3ull;
        }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    EXPECT_EQ(std::string(hex), jstr(json_object_get(fx.get(), "fnv1a64")));
    std::vector<int32_t> first(ids.begin(), ids.begin() + 64), last(ids.end() - 64, ids.end());
    EXPECT_EQ(first, jids(json_object_get(fx.get(), "first_ids")));
    EXPECT_EQ(last, jids(json_object_get(fx.get(), "last_ids")));
    EXPECT_EQ(decode(ctx.get(), tok.get(), ids, 0), text);
}

TEST(Gpt2Tokenizer, SameIdsAsTokenizerJsonLoader)
{
    // The GPT-2 pair and a tokenizer.json built from it (as tokenizers would save it) agree.
    CULORA_REQUIRE_SHARED_DATA(dir);
    CtxPtr ctx = cpu_ctx();
    TokPtr a = load_gpt2(ctx.get(), dir);
    ASSERT_TRUE(a);
    std::string vocab = read_file(dir + "/gpt2-bpe/encoder.json");
    std::string merges_txt = read_file(dir + "/gpt2-bpe/vocab.bpe");
    std::string merges = "[";
    std::istringstream in(merges_txt);
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        if (line.empty() || line.rfind("#version", 0) == 0) continue;
        json_t *js = json_string(line.c_str());
        char *enc = json_dumps(js, JSON_ENCODE_ANY);
        merges += (first ? "" : ",") + std::string(enc);
        free(enc);
        json_decref(js);
        first = false;
    }
    merges += "]";
    std::string tj = "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":50256,\"content\":\"<|endoftext|>\",\"special\":true}],"
                     "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},"
                     "\"post_processor\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
                     "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"vocab\":" + vocab + ",\"merges\":" + merges + "}}";
    TempFile f("tokenizer.json", tj);
    TokPtr b = load_hf(ctx.get(), f.path());
    ASSERT_TRUE(b);
    std::string text = read_file(dir + "/tinyshakespeare.txt").substr(0, 50000) + "<|endoftext|> 東京 😀";
    EXPECT_EQ(encode(ctx.get(), a.get(), text, CULORA_ENCODE_SPECIAL), encode(ctx.get(), b.get(), text, CULORA_ENCODE_SPECIAL));
    EXPECT_EQ(culora_tokenizer_eos_id(b.get()), 50256);
}

// ---- malformed and unsupported files ----------------------------------------------------------

namespace {

std::string tiny_json(const std::string &model_extra, const std::string &rest)
{
    // A minimal byte-level tokenizer.json: the 256 byte tokens, merge "Ġ t".
    std::string vocab = "{";
    for (int b = 0; b < 256; b++) {
        uint32_t cp;
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174))
            cp = (uint32_t)b;
        else
            cp = b <= 32 ? 256 + b : b <= 160 ? 256 + 33 + (b - 127) : 256 + 67;
        char u[5] = {0};
        if (cp < 0x80) u[0] = (char)cp;
        else { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); }
        json_t *js = json_string(u);
        char *enc = json_dumps(js, JSON_ENCODE_ANY);
        vocab += (b ? "," : "") + std::string(enc) + ":" + std::to_string(b);
        free(enc);
        json_decref(js);
    }
    vocab += ",\"Ġt\":256}";
    return "{\"model\":{\"type\":\"BPE\",\"vocab\":" + vocab + ",\"merges\":[\"Ġ t\"]" + model_extra + "}" + rest + "}";
}

const char *kOkRest = ",\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"}";

void expect_load_error(const std::string &json, culora_status want, const std::string &needle)
{
    CtxPtr ctx = cpu_ctx();
    TempFile f("tokenizer.json", json);
    culora_tokenizer *t = nullptr;
    EXPECT_EQ(culora_tokenizer_load_hf(ctx.get(), f.c_str(), &t), want) << culora_context_last_error(ctx.get());
    EXPECT_EQ(t, nullptr);
    std::string msg = culora_context_last_error(ctx.get());
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
}

}  // namespace

TEST(HfTokenizer, MinimalFileLoads)
{
    CtxPtr ctx = cpu_ctx();
    TempFile f("tokenizer.json", tiny_json("", kOkRest));
    TokPtr tok = load_hf(ctx.get(), f.path());
    ASSERT_TRUE(tok);
    EXPECT_EQ(encode(ctx.get(), tok.get(), "a t", 0), (std::vector<int32_t>{'a', 256}));
    EXPECT_EQ(culora_tokenizer_eos_id(tok.get()), -1);
}

TEST(HfTokenizer, MalformedAndUnsupportedFilesAreRefused)
{
    expect_load_error("{\"model\": ", CULORA_ERR_FORMAT, "invalid JSON");
    expect_load_error("[1,2]", CULORA_ERR_FORMAT, "model");
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", CULORA_ERR_UNSUPPORTED, "WordPiece");
    expect_load_error(tiny_json(",\"byte_fallback\":true", kOkRest), CULORA_ERR_UNSUPPORTED, "byte_fallback");
    expect_load_error(tiny_json(",\"dropout\":0.1", kOkRest), CULORA_ERR_UNSUPPORTED, "dropout");
    expect_load_error(tiny_json("", std::string(kOkRest) + ",\"normalizer\":{\"type\":\"NFC\"}"), CULORA_ERR_UNSUPPORTED,
                      "normalizer");
    expect_load_error(tiny_json("", ",\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"decoder\":{\"type\":\"ByteLevel\"}"),
                      CULORA_ERR_UNSUPPORTED, "Whitespace");
    expect_load_error(tiny_json("", ",\"pre_tokenizer\":null,\"decoder\":{\"type\":\"ByteLevel\"}"),
                      CULORA_ERR_UNSUPPORTED, "ByteLevel");
    expect_load_error(tiny_json("", ",\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"WordPiece\"}"),
                      CULORA_ERR_UNSUPPORTED, "decoder");
    expect_load_error(tiny_json("", ",\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
                                    "\"pattern\":{\"Regex\":\"(unclosed\"},\"behavior\":\"Isolated\"},{\"type\":\"ByteLevel\"}]},"
                                    "\"decoder\":{\"type\":\"ByteLevel\"}"),
                      CULORA_ERR_FORMAT, "regex");
    expect_load_error(tiny_json("", ",\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
                                    "\"pattern\":{\"Regex\":\"x\"},\"behavior\":\"Removed\"},{\"type\":\"ByteLevel\"}]},"
                                    "\"decoder\":{\"type\":\"ByteLevel\"}"),
                      CULORA_ERR_UNSUPPORTED, "Removed");
    expect_load_error(tiny_json("", std::string(kOkRest) + ",\"added_tokens\":[{\"id\":300,\"content\":\"<x>\",\"lstrip\":true}]"),
                      CULORA_ERR_UNSUPPORTED, "lstrip");
    // a merge whose result is not in the vocabulary
    std::string bad = tiny_json("", kOkRest);
    bad.replace(bad.find("[\"Ġ t\"]"), std::string("[\"Ġ t\"]").size(), "[\"Ġ t\",\"a b\"]");
    expect_load_error(bad, CULORA_ERR_FORMAT, "merges[1]");
    // not byte-level: byte 0x41 has no token
    std::string nob = tiny_json("", kOkRest);
    nob.replace(nob.find("\"A\":65"), 6, "\"AA\":65");
    expect_load_error(nob, CULORA_ERR_FORMAT, "byte 0x41");

    CtxPtr ctx = cpu_ctx();
    culora_tokenizer *t = nullptr;
    EXPECT_EQ(culora_tokenizer_load_hf(ctx.get(), "/nonexistent/tokenizer.json", &t), CULORA_ERR_IO);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("/nonexistent/tokenizer.json"), std::string::npos);
}

TEST(Gpt2Tokenizer, MalformedFilesAreRefused)
{
    CtxPtr ctx = cpu_ctx();
    TempFile enc("encoder.json", "{\"a\":0,\"b\":1}");
    TempFile bpe("vocab.bpe", "#version: 0.2\na b\n");
    culora_tokenizer *t = nullptr;
    // not byte-level (most bytes missing)
    EXPECT_EQ(culora_tokenizer_load_gpt2(ctx.get(), enc.c_str(), bpe.c_str(), &t), CULORA_ERR_FORMAT);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("byte"), std::string::npos);
    TempFile enc2("encoder.json", "{\"a\": 0,");
    EXPECT_EQ(culora_tokenizer_load_gpt2(ctx.get(), enc2.c_str(), bpe.c_str(), &t), CULORA_ERR_FORMAT);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("encoder.json:1"), std::string::npos);
    EXPECT_EQ(t, nullptr);
}

TEST(Gpt2Tokenizer, BadMergeLineIsNamed)
{
    CULORA_REQUIRE_SHARED_DATA(dir);
    CtxPtr ctx = cpu_ctx();
    TempFile bpe("vocab.bpe", "#version: 0.2\nĠ t\nthree parts here\n");
    culora_tokenizer *t = nullptr;
    std::string enc = dir + "/gpt2-bpe/encoder.json";
    EXPECT_EQ(culora_tokenizer_load_gpt2(ctx.get(), enc.c_str(), bpe.c_str(), &t), CULORA_ERR_FORMAT);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("vocab.bpe:3"), std::string::npos)
        << culora_context_last_error(ctx.get());
}
