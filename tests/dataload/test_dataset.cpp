// test_dataset.cpp — datasets: packing, padding, BOS/EOS, loss masks of prompt/completion
// data, special tokens in data, JSONL and file errors (each naming file and line), parameters.
#include "data_test_util.h"

using namespace culora_test;

namespace {

constexpr int32_t IGN = CULORA_IGNORE_INDEX;

TokPtr bytes_tok(culora_context *ctx)
{
    culora_tokenizer *t = nullptr;
    EXPECT_EQ(culora_tokenizer_create_bytes(ctx, &t), CULORA_OK);
    return TokPtr(t);
}

TokPtr hf_tok(culora_context *ctx, const char *name)
{
    culora_tokenizer *t = nullptr;
    EXPECT_EQ(culora_tokenizer_load_hf(ctx, tok_fixture(std::string(name) + "/tokenizer.json").c_str(), &t), CULORA_OK)
        << culora_context_last_error(ctx);
    return TokPtr(t);
}

culora_dataset_params params(int32_t seq_len, int32_t layout = CULORA_DATA_PACK)
{
    culora_dataset_params p = CULORA_DATASET_PARAMS_INIT;
    p.seq_len = seq_len;
    p.layout = layout;
    return p;
}

DsPtr make(culora_context *ctx, const culora_tokenizer *tok, const std::string &name, const std::string &data,
           const culora_dataset_params &p)
{
    culora_dataset *d = nullptr;
    culora_status s = culora_dataset_create_from_memory(ctx, tok, name.c_str(), data.data(), data.size(), &p, &d);
    EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
    return DsPtr(d);
}

struct Row {
    std::vector<int32_t> in, tgt;
    std::vector<uint8_t> mask;
    int64_t n_loss = 0;
};

Row row(culora_context *ctx, const culora_dataset *ds, int64_t r)
{
    int32_t T = culora_dataset_seq_len(ds);
    Row x;
    x.in.resize(T);
    x.tgt.resize(T);
    x.mask.resize(T);
    EXPECT_EQ(culora_dataset_get_row(ctx, ds, r, x.in.data(), x.tgt.data(), x.mask.data(), &x.n_loss), CULORA_OK)
        << culora_context_last_error(ctx);
    return x;
}

std::vector<int32_t> ids(const std::string &s)
{
    std::vector<int32_t> v;
    for (unsigned char c : s) v.push_back(c);
    return v;
}

void expect_error(culora_context *ctx, const culora_tokenizer *tok, const std::string &name, const std::string &data,
                  const culora_dataset_params &p, culora_status want, const std::string &needle)
{
    culora_dataset *d = nullptr;
    EXPECT_EQ(culora_dataset_create_from_memory(ctx, tok, name.c_str(), data.data(), data.size(), &p, &d), want)
        << "data: " << data << "\nmessage: " << culora_context_last_error(ctx);
    EXPECT_EQ(d, nullptr);
    std::string msg = culora_context_last_error(ctx);
    EXPECT_NE(msg.find(needle), std::string::npos) << "want \"" << needle << "\" in: " << msg;
}

}  // namespace

TEST(Dataset, PacksATextFileIntoOverlappingRows)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = bytes_tok(ctx.get());
    DsPtr ds = make(ctx.get(), tok.get(), "a.txt", "abcdefghij", params(4));
    ASSERT_TRUE(ds);
    // bytes has no EOS: the stream is the 10 bytes; rows cover [0,5) [4,9) [8,10).
    EXPECT_EQ(culora_dataset_num_tokens(ds.get()), 10);
    EXPECT_EQ(culora_dataset_num_documents(ds.get()), 1);
    ASSERT_EQ(culora_dataset_num_rows(ds.get()), 3);
    EXPECT_EQ(culora_dataset_num_loss_tokens(ds.get()), 9);
    Row r0 = row(ctx.get(), ds.get(), 0), r1 = row(ctx.get(), ds.get(), 1), r2 = row(ctx.get(), ds.get(), 2);
    EXPECT_EQ(r0.in, ids("abcd"));
    EXPECT_EQ(r0.tgt, ids("bcde"));
    EXPECT_EQ(r1.in, ids("efgh"));
    EXPECT_EQ(r1.tgt, ids("fghi"));
    EXPECT_EQ(r2.in, (std::vector<int32_t>{'i', 0, 0, 0}));
    EXPECT_EQ(r2.tgt, (std::vector<int32_t>{'j', IGN, IGN, IGN}));
    EXPECT_EQ(r2.mask, (std::vector<uint8_t>{1, 0, 0, 0}));
    EXPECT_EQ(r0.n_loss + r1.n_loss + r2.n_loss, 9);
    int32_t a[4], b[4];
    EXPECT_EQ(culora_dataset_get_row(ctx.get(), ds.get(), 3, a, b, nullptr, nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_dataset_get_row(ctx.get(), ds.get(), -1, a, b, nullptr, nullptr), CULORA_ERR_INVALID_ARG);
}

TEST(Dataset, JoinsDocumentsWithEos)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = bytes_tok(ctx.get());
    culora_dataset_params p = params(3);
    p.eos_id = '|';
    DsPtr ds = make(ctx.get(), tok.get(), "d.jsonl", "{\"text\":\"ab\"}\n\n{\"text\":\"cd\", \"id\": 7}\n", p);
    ASSERT_TRUE(ds);
    // stream a b | c d |   (pad = EOS)
    EXPECT_EQ(culora_dataset_num_tokens(ds.get()), 6);
    ASSERT_EQ(culora_dataset_num_rows(ds.get()), 2);
    EXPECT_EQ(row(ctx.get(), ds.get(), 0).in, ids("ab|"));
    EXPECT_EQ(row(ctx.get(), ds.get(), 0).tgt, ids("b|c"));
    EXPECT_EQ(row(ctx.get(), ds.get(), 1).in, ids("cd|"));
    EXPECT_EQ(row(ctx.get(), ds.get(), 1).tgt, (std::vector<int32_t>{'d', '|', IGN}));
}

TEST(Dataset, PromptCompletionHasLossOnlyOnTheCompletion)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = bytes_tok(ctx.get());
    culora_dataset_params p = params(8);
    p.eos_id = '\n';
    p.bos_id = '^';
    DsPtr ds = make(ctx.get(), tok.get(), "sft.jsonl",
                    "{\"prompt\":\"Q:\",\"completion\":\"AB\"}\n{\"prompt\":\"\",\"completion\":\"C\"}\n", p);
    ASSERT_TRUE(ds);
    // stream ^ Q : A B \n ^ C \n ; flags 0 0 0 1 1 1 0 1 1
    ASSERT_EQ(culora_dataset_num_tokens(ds.get()), 9);
    ASSERT_EQ(culora_dataset_num_rows(ds.get()), 1);
    Row r = row(ctx.get(), ds.get(), 0);
    EXPECT_EQ(r.in, ids("^Q:AB\n^C"));
    EXPECT_EQ(r.tgt, (std::vector<int32_t>{IGN, IGN, 'A', 'B', '\n', IGN, 'C', '\n'}));
    EXPECT_EQ(r.mask, (std::vector<uint8_t>{0, 0, 1, 1, 1, 0, 1, 1}));
    EXPECT_EQ(r.n_loss, 5);
    EXPECT_EQ(culora_dataset_num_loss_tokens(ds.get()), 5);
}

TEST(Dataset, PadLayoutGivesOneRowPerDocumentAndRefusesLongOnes)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = bytes_tok(ctx.get());
    culora_dataset_params p = params(4, CULORA_DATA_PAD);
    p.eos_id = '.';
    p.pad_id = '_';
    std::string data = "{\"text\":\"ab\"}\n{\"prompt\":\"x\",\"completion\":\"yz\"}\n{\"text\":\"\"}\n{\"text\":\"q\"}\n";
    DsPtr ds = make(ctx.get(), tok.get(), "p.jsonl", data, p);
    ASSERT_TRUE(ds);
    EXPECT_EQ(culora_dataset_num_documents(ds.get()), 3);  // the empty text is skipped
    ASSERT_EQ(culora_dataset_num_rows(ds.get()), 3);
    Row r0 = row(ctx.get(), ds.get(), 0), r1 = row(ctx.get(), ds.get(), 1), r2 = row(ctx.get(), ds.get(), 2);
    EXPECT_EQ(r0.in, ids("ab__"));
    EXPECT_EQ(r0.tgt, (std::vector<int32_t>{'b', '.', IGN, IGN}));
    EXPECT_EQ(r1.in, ids("xyz_"));
    EXPECT_EQ(r1.tgt, (std::vector<int32_t>{'y', 'z', '.', IGN}));
    EXPECT_EQ(r2.in, ids("q___"));
    EXPECT_EQ(r2.tgt, (std::vector<int32_t>{'.', IGN, IGN, IGN}));

    // "abcd." is 5 tokens = seq_len + 1: fits; "abcde." does not.
    expect_error(ctx.get(), tok.get(), "long.jsonl", "{\"text\":\"abcd\"}\n{\"text\":\"abcde\"}\n", p, CULORA_ERR_FORMAT,
                 "long.jsonl:2: document of 6 tokens is longer than seq_len + 1 = 5");
    p.truncate = 1;
    DsPtr tr = make(ctx.get(), tok.get(), "long.jsonl", "{\"text\":\"abcdefgh\"}\n", p);
    ASSERT_TRUE(tr);
    Row t = row(ctx.get(), tr.get(), 0);
    EXPECT_EQ(t.in, ids("abcd"));
    EXPECT_EQ(t.tgt, ids("bcde"));
}

TEST(Dataset, SpecialTokensInDataAreTextUnlessAsked)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = hf_tok(ctx.get(), "tiny_gpt2");
    ASSERT_TRUE(tok);
    int32_t eot = culora_tokenizer_eos_id(tok.get());
    std::string text = "one<|endoftext|>two";
    culora_dataset_params p = params(64);
    DsPtr plain = make(ctx.get(), tok.get(), "s.txt", text, p);
    p.parse_special = 1;
    DsPtr special = make(ctx.get(), tok.get(), "s.txt", text, p);
    ASSERT_TRUE(plain && special);
    auto count_eot = [&](const culora_dataset *ds) {
        Row r = row(ctx.get(), ds, 0);
        int n = 0;
        for (int32_t t : r.tgt) n += t == eot;
        return n;
    };
    // plain: only the EOS appended after the document; special: the one in the text too.
    EXPECT_EQ(count_eot(plain.get()), 1);
    EXPECT_EQ(count_eot(special.get()), 2);
    EXPECT_EQ(culora_dataset_num_tokens(plain.get()), (int64_t)encode(ctx.get(), tok.get(), text, 0).size() + 1);
    EXPECT_EQ(culora_dataset_num_tokens(special.get()),
              (int64_t)encode(ctx.get(), tok.get(), text, CULORA_ENCODE_SPECIAL).size() + 1);
}

TEST(Dataset, Llama3StyleTokenizerAddsBosAndEos)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = hf_tok(ctx.get(), "tiny_llama3");
    ASSERT_TRUE(tok);
    DsPtr ds = make(ctx.get(), tok.get(), "l.jsonl", "{\"text\":\"the king\"}\n{\"text\":\"the queen\"}\n", params(32));
    ASSERT_TRUE(ds);
    Row r = row(ctx.get(), ds.get(), 0);
    std::vector<int32_t> a = encode(ctx.get(), tok.get(), "the king", 0), b = encode(ctx.get(), tok.get(), "the queen", 0);
    int32_t bos = culora_tokenizer_bos_id(tok.get()), eos = culora_tokenizer_eos_id(tok.get());
    std::vector<int32_t> stream{bos};
    stream.insert(stream.end(), a.begin(), a.end());
    stream.push_back(eos);
    stream.push_back(bos);
    stream.insert(stream.end(), b.begin(), b.end());
    stream.push_back(eos);
    ASSERT_EQ(culora_dataset_num_tokens(ds.get()), (int64_t)stream.size());
    for (size_t t = 0; t + 1 < stream.size(); t++) {
        EXPECT_EQ(r.in[t], stream[t]);
        EXPECT_EQ(r.tgt[t], stream[t + 1] == bos ? IGN : stream[t + 1]) << t;  // no loss on predicting BOS
    }
}

TEST(Dataset, FilesInOrderAndFileErrors)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = bytes_tok(ctx.get());
    TempFile a("a.txt", "xy"), b("b.jsonl", "\xEF\xBB\xBF{\"text\":\"z\"}\r\n");
    const char *paths[] = {a.c_str(), b.c_str()};
    culora_dataset_params p = params(8);
    p.eos_id = '#';
    culora_dataset *d = nullptr;
    ASSERT_EQ(culora_dataset_create(ctx.get(), tok.get(), paths, 2, &p, &d), CULORA_OK) << culora_context_last_error(ctx.get());
    DsPtr ds(d);
    EXPECT_EQ(row(ctx.get(), ds.get(), 0).in, ids("xy#z####"));
    EXPECT_EQ(culora_dataset_num_documents(ds.get()), 2);

    const char *missing[] = {"/nonexistent/data.jsonl"};
    EXPECT_EQ(culora_dataset_create(ctx.get(), tok.get(), missing, 1, &p, &d), CULORA_ERR_IO);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("/nonexistent/data.jsonl"), std::string::npos);
    TempFile empty("empty.txt", "");
    const char *e[] = {empty.c_str()};
    EXPECT_EQ(culora_dataset_create(ctx.get(), tok.get(), e, 1, &p, &d), CULORA_ERR_FORMAT);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("empty.txt: empty file"), std::string::npos);
    EXPECT_EQ(culora_dataset_create(ctx.get(), tok.get(), paths, 0, &p, &d), CULORA_ERR_INVALID_ARG);
}

TEST(Dataset, MalformedJsonlNamesTheLine)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = bytes_tok(ctx.get());
    culora_dataset_params p = params(16);
    const std::string ok = "{\"text\":\"fine\"}\n";
    expect_error(ctx.get(), tok.get(), "t.jsonl", ok + ok + "{\"text\": \"broken\n", p, CULORA_ERR_FORMAT, "t.jsonl:3: invalid JSON");
    expect_error(ctx.get(), tok.get(), "t.jsonl", ok + "[1, 2]\n", p, CULORA_ERR_FORMAT, "t.jsonl:2: not a JSON object");
    expect_error(ctx.get(), tok.get(), "t.jsonl", ok + "{\"txt\": \"typo\"}\n", p, CULORA_ERR_FORMAT,
                 "t.jsonl:2: no \"text\" or \"prompt\"/\"completion\" field");
    expect_error(ctx.get(), tok.get(), "t.jsonl", "{\"text\": 5}\n", p, CULORA_ERR_FORMAT, "t.jsonl:1: \"text\" is not a string");
    expect_error(ctx.get(), tok.get(), "t.jsonl", "{\"text\":\"a\",\"prompt\":\"b\"}\n", p, CULORA_ERR_FORMAT,
                 "t.jsonl:1: has both");
    expect_error(ctx.get(), tok.get(), "t.jsonl", "\n\n{\"prompt\":\"a\"}\n", p, CULORA_ERR_FORMAT,
                 "t.jsonl:3: \"prompt\" without \"completion\"");
    expect_error(ctx.get(), tok.get(), "t.jsonl", "{\"prompt\":\"a\",\"completion\":null}\n", p, CULORA_ERR_FORMAT,
                 "t.jsonl:1: \"completion\" is not a string");
    expect_error(ctx.get(), tok.get(), "t.jsonl", "{\"prompt\":\"a\",\"completion\":\"\"}\n", p, CULORA_ERR_FORMAT,
                 "t.jsonl:1: empty \"completion\"");
    expect_error(ctx.get(), tok.get(), "t.jsonl", "{\"text\":\"a\",\"text\":\"b\"}\n", p, CULORA_ERR_FORMAT,
                 "t.jsonl:1: invalid JSON");
    expect_error(ctx.get(), tok.get(), "t.jsonl", "\n  \n\t\n", p, CULORA_ERR_FORMAT, "t.jsonl: no documents");
    expect_error(ctx.get(), tok.get(), "t.jsonl", "{\"text\":\"\"}\n", p, CULORA_ERR_FORMAT, "t.jsonl: no documents");
    expect_error(ctx.get(), tok.get(), "t.jsonl", "", p, CULORA_ERR_FORMAT, "t.jsonl: empty file");
    expect_error(ctx.get(), tok.get(), "one.txt", "x", p, CULORA_ERR_FORMAT, "one.txt: no rows");
    // format forced to JSONL for any name
    p.format = CULORA_DATA_FORMAT_JSONL;
    expect_error(ctx.get(), tok.get(), "data.txt", "plain text\n", p, CULORA_ERR_FORMAT, "data.txt:1: invalid JSON");
}

TEST(Dataset, JsonlStringsKeepEveryByte)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = bytes_tok(ctx.get());
    DsPtr ds = make(ctx.get(), tok.get(), "u.jsonl", "{\"text\":\"a\\u0000b\\n\\u00e9\"}\n", params(8));
    ASSERT_TRUE(ds);
    EXPECT_EQ(row(ctx.get(), ds.get(), 0).in, (std::vector<int32_t>{'a', 0, 'b', '\n', 0xC3, 0, 0, 0}));
    EXPECT_EQ(row(ctx.get(), ds.get(), 0).tgt, (std::vector<int32_t>{0, 'b', '\n', 0xC3, 0xA9, IGN, IGN, IGN}));
}

TEST(Dataset, ParameterErrors)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = bytes_tok(ctx.get());
    culora_dataset_params p = params(0);
    expect_error(ctx.get(), tok.get(), "a.txt", "abc", p, CULORA_ERR_INVALID_ARG, "seq_len = 0");
    p = params(4);
    p.eos_id = 256;
    expect_error(ctx.get(), tok.get(), "a.txt", "abc", p, CULORA_ERR_INVALID_ARG, "eos_id 256 is not in the vocabulary");
    p = params(4);
    p.bos_id = -7;
    expect_error(ctx.get(), tok.get(), "a.txt", "abc", p, CULORA_ERR_INVALID_ARG, "bos_id -7");
    p = params(4);
    p.struct_size = 4;
    expect_error(ctx.get(), tok.get(), "a.txt", "abc", p, CULORA_ERR_INVALID_ARG, "CULORA_DATASET_PARAMS_INIT");
    p = params(4);
    p.layout = 9;
    expect_error(ctx.get(), tok.get(), "a.txt", "abc", p, CULORA_ERR_INVALID_ARG, "layout");
    culora_dataset_destroy(nullptr);
}

TEST(Dataset, FingerprintFollowsTheData)
{
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    TokPtr tok = bytes_tok(ctx.get());
    DsPtr a = make(ctx.get(), tok.get(), "a.txt", "hello world", params(4));
    DsPtr b = make(ctx.get(), tok.get(), "b.txt", "hello world", params(4));
    DsPtr c = make(ctx.get(), tok.get(), "c.txt", "hello worle", params(4));
    DsPtr d = make(ctx.get(), tok.get(), "d.txt", "hello world", params(5));
    ASSERT_TRUE(a && b && c && d);
    EXPECT_EQ(culora_dataset_fingerprint(a.get()), culora_dataset_fingerprint(b.get()));
    EXPECT_NE(culora_dataset_fingerprint(a.get()), culora_dataset_fingerprint(c.get()));
    EXPECT_NE(culora_dataset_fingerprint(a.get()), culora_dataset_fingerprint(d.get()));
}
