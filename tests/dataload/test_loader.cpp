// test_loader.cpp — the loader: seeded shuffling is deterministic and a permutation per epoch,
// sharding gives every row to exactly one rank per epoch with all ranks in lockstep, padding
// rows of the last global batch, drop_last, and a saved / restored position continues with
// exactly the same batches (also through the serialized bytes); a real-data run on
// tinyshakespeare with the GPT-2 tokenizer (skips without ../shared/data).
#include "data_test_util.h"

#include <algorithm>
#include <map>
#include <set>

using namespace culora_test;

namespace {

struct Batch {
    std::vector<int32_t> in, tgt;
    std::vector<uint8_t> mask;
    std::vector<int64_t> rows;
    int32_t n_rows = 0;
    int64_t n_loss = 0;
    uint64_t epoch = 0, step = 0;
    bool operator==(const Batch &o) const
    {
        return in == o.in && tgt == o.tgt && mask == o.mask && rows == o.rows && n_rows == o.n_rows &&
               n_loss == o.n_loss && epoch == o.epoch && step == o.step;
    }
};

Batch next(culora_context *ctx, culora_loader *ld, int32_t B, int32_t T)
{
    Batch b;
    b.in.assign((size_t)B * T, 7777);
    b.tgt.assign((size_t)B * T, 7777);
    b.mask.assign((size_t)B * T, 9);
    b.rows.assign(B, 7777);
    culora_batch cb{};
    cb.input_ids = b.in.data();
    cb.target_ids = b.tgt.data();
    cb.loss_mask = b.mask.data();
    cb.row_ids = b.rows.data();
    EXPECT_EQ(culora_loader_next(ctx, ld, &cb), CULORA_OK) << culora_context_last_error(ctx);
    b.n_rows = cb.n_rows;
    b.n_loss = cb.n_loss_tokens;
    b.epoch = cb.epoch;
    b.step = cb.step;
    return b;
}

// A byte dataset of n_rows packed rows of seq_len T, every row different.
DsPtr rows_dataset(culora_context *ctx, const culora_tokenizer *tok, int n_rows, int32_t T)
{
    std::string text;
    for (int i = 0; text.size() < (size_t)n_rows * T + 1; i++) text += "row" + std::to_string(i) + ";";
    text.resize((size_t)n_rows * T + 1);
    culora_dataset_params p = CULORA_DATASET_PARAMS_INIT;
    p.seq_len = T;
    culora_dataset *d = nullptr;
    EXPECT_EQ(culora_dataset_create_from_memory(ctx, tok, "rows.txt", text.data(), text.size(), &p, &d), CULORA_OK)
        << culora_context_last_error(ctx);
    EXPECT_EQ(culora_dataset_num_rows(d), n_rows);
    return DsPtr(d);
}

LoaderPtr loader(culora_context *ctx, const culora_dataset *ds, int32_t B, int32_t rank = 0, int32_t world = 1,
                 uint64_t seed = 42, int32_t shuffle = 1, int32_t drop_last = 0)
{
    culora_loader_params p = CULORA_LOADER_PARAMS_INIT;
    p.batch_size = B;
    p.rank = rank;
    p.world_size = world;
    p.seed = seed;
    p.shuffle = shuffle;
    p.drop_last = drop_last;
    culora_loader *l = nullptr;
    EXPECT_EQ(culora_loader_create(ctx, ds, &p, &l), CULORA_OK) << culora_context_last_error(ctx);
    return LoaderPtr(l);
}

class LoaderTest : public ::testing::Test {
  protected:
    void SetUp() override
    {
        ctx_ = make_ctx(CULORA_BACKEND_CPU);
        culora_tokenizer *t = nullptr;
        ASSERT_EQ(culora_tokenizer_create_bytes(ctx_.get(), &t), CULORA_OK);
        tok_.reset(t);
        ds_ = rows_dataset(ctx_.get(), tok_.get(), kRows, kT);
        ASSERT_TRUE(ds_);
    }
    static constexpr int kRows = 37, kT = 6;
    CtxPtr ctx_;
    TokPtr tok_;
    DsPtr ds_;
};

}  // namespace

TEST_F(LoaderTest, BatchRowsAreDatasetRows)
{
    LoaderPtr ld = loader(ctx_.get(), ds_.get(), 5);
    for (int s = 0; s < 8; s++) {
        Batch b = next(ctx_.get(), ld.get(), 5, kT);
        for (int r = 0; r < 5; r++) {
            std::vector<int32_t> in(kT), tgt(kT);
            std::vector<uint8_t> mask(kT);
            if (b.rows[r] < 0) continue;
            ASSERT_EQ(culora_dataset_get_row(ctx_.get(), ds_.get(), b.rows[r], in.data(), tgt.data(), mask.data(), nullptr),
                      CULORA_OK);
            EXPECT_TRUE(std::equal(in.begin(), in.end(), b.in.begin() + r * kT));
            EXPECT_TRUE(std::equal(tgt.begin(), tgt.end(), b.tgt.begin() + r * kT));
            EXPECT_TRUE(std::equal(mask.begin(), mask.end(), b.mask.begin() + r * kT));
        }
    }
}

TEST_F(LoaderTest, ShuffleIsSeededAndAPermutationPerEpoch)
{
    const int B = 4;
    LoaderPtr a = loader(ctx_.get(), ds_.get(), B, 0, 1, 123), b = loader(ctx_.get(), ds_.get(), B, 0, 1, 123);
    LoaderPtr c = loader(ctx_.get(), ds_.get(), B, 0, 1, 124);
    uint64_t steps = culora_loader_steps_per_epoch(a.get());
    ASSERT_EQ(steps, (uint64_t)(kRows + B - 1) / B);
    std::vector<std::vector<int64_t>> orders(3);
    bool differs_from_c = false;
    for (int e = 0; e < 3; e++) {
        for (uint64_t s = 0; s < steps; s++) {
            Batch x = next(ctx_.get(), a.get(), B, kT), y = next(ctx_.get(), b.get(), B, kT);
            Batch z = next(ctx_.get(), c.get(), B, kT);
            ASSERT_TRUE(x == y) << "same seed, different batch at epoch " << e << " step " << s;
            differs_from_c |= !(x.rows == z.rows);
            EXPECT_EQ(x.epoch, (uint64_t)e);
            EXPECT_EQ(x.step, s);
            for (int64_t r : x.rows)
                if (r >= 0) orders[e].push_back(r);
        }
        std::vector<int64_t> sorted = orders[e];
        std::sort(sorted.begin(), sorted.end());
        ASSERT_EQ(sorted.size(), (size_t)kRows) << "epoch " << e;
        for (int i = 0; i < kRows; i++) EXPECT_EQ(sorted[i], i);
    }
    EXPECT_TRUE(differs_from_c) << "seed 124 gave seed 123's order";
    EXPECT_NE(orders[0], orders[1]) << "epochs should be reshuffled";
    EXPECT_NE(orders[1], orders[2]);
    std::vector<int64_t> identity(kRows);
    for (int i = 0; i < kRows; i++) identity[i] = i;
    EXPECT_NE(orders[0], identity);

    LoaderPtr seq = loader(ctx_.get(), ds_.get(), B, 0, 1, 123, /*shuffle=*/0);
    std::vector<int64_t> got;
    for (uint64_t s = 0; s < steps; s++)
        for (int64_t r : next(ctx_.get(), seq.get(), B, kT).rows)
            if (r >= 0) got.push_back(r);
    EXPECT_EQ(got, identity);
}

TEST_F(LoaderTest, ShardsCoverEveryRowOnceAndStayInLockstep)
{
    for (int world : {1, 2, 3, 4, 5}) {
        for (int B : {1, 2, 4, 7}) {
            std::vector<LoaderPtr> ranks;
            for (int r = 0; r < world; r++) ranks.push_back(loader(ctx_.get(), ds_.get(), B, r, world, 9));
            uint64_t steps = culora_loader_steps_per_epoch(ranks[0].get());
            for (auto &l : ranks) ASSERT_EQ(culora_loader_steps_per_epoch(l.get()), steps);
            ASSERT_EQ(steps, (uint64_t)(kRows + world * B - 1) / (world * B));
            // The world-1 loader with batch world·B gives the same rows, in rank order.
            LoaderPtr whole = loader(ctx_.get(), ds_.get(), world * B, 0, 1, 9);
            for (int e = 0; e < 2; e++) {
                std::map<int64_t, int> seen;
                int64_t loss = 0;
                for (uint64_t s = 0; s < steps; s++) {
                    Batch all = next(ctx_.get(), whole.get(), world * B, kT);
                    for (int r = 0; r < world; r++) {
                        Batch b = next(ctx_.get(), ranks[r].get(), B, kT);
                        EXPECT_EQ(b.step, s);
                        EXPECT_EQ(b.epoch, (uint64_t)e);
                        loss += b.n_loss;
                        int n_data = 0;
                        for (int i = 0; i < B; i++) {
                            EXPECT_EQ(b.rows[i], all.rows[r * B + i]);
                            if (b.rows[i] >= 0) {
                                seen[b.rows[i]]++;
                                n_data++;
                                EXPECT_EQ(i, n_data - 1) << "padding rows come last";
                            } else {  // padding row: nothing to learn
                                for (int t = 0; t < kT; t++) {
                                    EXPECT_EQ(b.tgt[i * kT + t], CULORA_IGNORE_INDEX);
                                    EXPECT_EQ(b.mask[i * kT + t], 0);
                                }
                            }
                        }
                        EXPECT_EQ(b.n_rows, n_data);
                    }
                }
                ASSERT_EQ(seen.size(), (size_t)kRows) << "world " << world << " B " << B;
                for (auto &kv : seen) EXPECT_EQ(kv.second, 1) << "row " << kv.first << " world " << world << " B " << B;
                EXPECT_EQ(loss, culora_dataset_num_loss_tokens(ds_.get()));
            }
        }
    }
}

TEST_F(LoaderTest, DropLastSkipsTheIncompleteGlobalBatch)
{
    const int world = 2, B = 4;  // 37 rows, global batch 8: 4 full steps, 5 rows dropped per epoch
    LoaderPtr r0 = loader(ctx_.get(), ds_.get(), B, 0, world, 5, 1, 1), r1 = loader(ctx_.get(), ds_.get(), B, 1, world, 5, 1, 1);
    ASSERT_EQ(culora_loader_steps_per_epoch(r0.get()), 4u);
    std::set<int64_t> seen;
    for (int s = 0; s < 4; s++)
        for (culora_loader *l : {r0.get(), r1.get()}) {
            Batch b = next(ctx_.get(), l, B, kT);
            EXPECT_EQ(b.n_rows, B);
            for (int64_t r : b.rows) EXPECT_TRUE(seen.insert(r).second) << "row " << r << " twice";
        }
    EXPECT_EQ(seen.size(), 32u);
    EXPECT_EQ(next(ctx_.get(), r0.get(), B, kT).epoch, 1u);

    culora_loader_params p = CULORA_LOADER_PARAMS_INIT;
    p.batch_size = 40;
    p.drop_last = 1;
    culora_loader *l = nullptr;
    EXPECT_EQ(culora_loader_create(ctx_.get(), ds_.get(), &p, &l), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx_.get())).find("37 rows"), std::string::npos);
    p.drop_last = 0;
    p.rank = 2;
    p.world_size = 2;
    EXPECT_EQ(culora_loader_create(ctx_.get(), ds_.get(), &p, &l), CULORA_ERR_INVALID_ARG);
    p = CULORA_LOADER_PARAMS_INIT;
    p.struct_size = 3;
    EXPECT_EQ(culora_loader_create(ctx_.get(), ds_.get(), &p, &l), CULORA_ERR_INVALID_ARG);
    culora_loader_destroy(nullptr);
}

TEST_F(LoaderTest, RestoredPositionGivesIdenticalBatches)
{
    const int world = 2, B = 3;
    uint64_t steps = 0;
    for (int rank = 0; rank < world; rank++) {
        for (int k : {0, 1, 4, 6, 7, 13}) {  // 7 steps per epoch: 6, 7 and 13 sit at and around the boundary
            LoaderPtr a = loader(ctx_.get(), ds_.get(), B, rank, world, 77);
            steps = culora_loader_steps_per_epoch(a.get());
            for (int s = 0; s < k; s++) next(ctx_.get(), a.get(), B, kT);
            culora_data_position pos;
            culora_loader_get_position(a.get(), &pos);
            EXPECT_EQ(pos.epoch * steps + pos.step, (uint64_t)k);
            uint8_t bytes[CULORA_DATA_POSITION_BYTES];
            culora_data_position_encode(&pos, bytes);
            std::vector<Batch> want;
            for (int s = 0; s < 10; s++) want.push_back(next(ctx_.get(), a.get(), B, kT));

            LoaderPtr b = loader(ctx_.get(), ds_.get(), B, rank, world, 77);
            next(ctx_.get(), b.get(), B, kT);  // wherever it was before does not matter
            culora_data_position back;
            ASSERT_EQ(culora_data_position_decode(ctx_.get(), bytes, sizeof bytes, &back), CULORA_OK);
            ASSERT_EQ(culora_loader_set_position(ctx_.get(), b.get(), &back), CULORA_OK) << culora_context_last_error(ctx_.get());
            for (int s = 0; s < 10; s++) ASSERT_TRUE(next(ctx_.get(), b.get(), B, kT) == want[s]) << "k " << k << " s " << s;
        }
    }
    EXPECT_EQ(steps, 7u);
}

TEST_F(LoaderTest, MismatchedPositionsAreRefused)
{
    LoaderPtr a = loader(ctx_.get(), ds_.get(), 3, 0, 2, 77);
    culora_data_position pos;
    culora_loader_get_position(a.get(), &pos);
    auto refused = [&](culora_loader *l, const culora_data_position &p, const char *needle) {
        EXPECT_EQ(culora_loader_set_position(ctx_.get(), l, &p), CULORA_ERR_MISUSE);
        std::string msg = culora_context_last_error(ctx_.get());
        EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    };
    refused(loader(ctx_.get(), ds_.get(), 3, 0, 2, 78).get(), pos, "seed");
    refused(loader(ctx_.get(), ds_.get(), 4, 0, 2, 77).get(), pos, "batch_size");
    refused(loader(ctx_.get(), ds_.get(), 3, 0, 3, 77).get(), pos, "world_size");
    refused(loader(ctx_.get(), ds_.get(), 3, 0, 2, 77, 0).get(), pos, "shuffle");
    DsPtr other = rows_dataset(ctx_.get(), tok_.get(), kRows + 1, kT);
    refused(loader(ctx_.get(), other.get(), 3, 0, 2, 77).get(), pos, "other data");
    culora_data_position past = pos;
    past.step = 100;
    refused(a.get(), past, "past the end");

    uint8_t bytes[CULORA_DATA_POSITION_BYTES];
    culora_data_position_encode(&pos, bytes);
    culora_data_position back;
    EXPECT_EQ(culora_data_position_decode(ctx_.get(), bytes, sizeof bytes - 1, &back), CULORA_ERR_FORMAT);
    bytes[20] ^= 1;
    EXPECT_EQ(culora_data_position_decode(ctx_.get(), bytes, sizeof bytes, &back), CULORA_ERR_FORMAT);
    EXPECT_NE(std::string(culora_context_last_error(ctx_.get())).find("checksum"), std::string::npos);
    bytes[0] = 'X';
    EXPECT_EQ(culora_data_position_decode(ctx_.get(), bytes, sizeof bytes, &back), CULORA_ERR_FORMAT);
    EXPECT_NE(std::string(culora_context_last_error(ctx_.get())).find("magic"), std::string::npos);
}

// ---- real data ---------------------------------------------------------------------------------

TEST(LoaderRealData, TinyShakespeareWithGpt2)
{
    CULORA_REQUIRE_SHARED_DATA(dir);
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    culora_tokenizer *t = nullptr;
    std::string enc = dir + "/gpt2-bpe/encoder.json", bpe = dir + "/gpt2-bpe/vocab.bpe";
    ASSERT_EQ(culora_tokenizer_load_gpt2(ctx.get(), enc.c_str(), bpe.c_str(), &t), CULORA_OK);
    TokPtr tok(t);
    std::string path = dir + "/tinyshakespeare.txt";
    const char *paths[] = {path.c_str()};
    culora_dataset_params p = CULORA_DATASET_PARAMS_INIT;
    p.seq_len = 256;
    culora_dataset *d = nullptr;
    ASSERT_EQ(culora_dataset_create(ctx.get(), tok.get(), paths, 1, &p, &d), CULORA_OK) << culora_context_last_error(ctx.get());
    DsPtr ds(d);
    // The whole file is one document plus <|endoftext|>; the id count is the one tokenizers gives.
    JsonPtr fx = load_json(tok_fixture("gpt2_tinyshakespeare.json"));
    int64_t n_ids = json_integer_value(json_object_get(fx.get(), "n_ids"));
    ASSERT_EQ(culora_dataset_num_tokens(ds.get()), n_ids + 1);
    int64_t n_rows = culora_dataset_num_rows(ds.get());
    EXPECT_EQ(n_rows, (n_ids + 1 - 1 + 255) / 256);
    EXPECT_EQ(culora_dataset_num_loss_tokens(ds.get()), n_ids);

    // Rows in order, inputs without their overlap, decode back to the text.
    std::vector<int32_t> stream;
    std::vector<int32_t> in(256), tgt(256);
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t nl = 0;
        ASSERT_EQ(culora_dataset_get_row(ctx.get(), ds.get(), r, in.data(), tgt.data(), nullptr, &nl), CULORA_OK);
        for (int k = 0; k < 256; k++) {
            if (tgt[k] == CULORA_IGNORE_INDEX) break;
            if (k > 0) EXPECT_EQ(in[k], tgt[k - 1]);
            stream.push_back(in[k]);
        }
    }
    stream.push_back(50256);
    std::string text = read_file(path);
    EXPECT_EQ(decode(ctx.get(), tok.get(), stream, CULORA_DECODE_SKIP_SPECIAL), text);

    // Two ranks, batch 8: one epoch covers every row once; a restore mid-epoch continues exactly.
    const int B = 8, world = 2;
    LoaderPtr r0 = loader(ctx.get(), ds.get(), B, 0, world, 2024), r1 = loader(ctx.get(), ds.get(), B, 1, world, 2024);
    uint64_t steps = culora_loader_steps_per_epoch(r0.get());
    std::vector<int> seen(n_rows, 0);
    culora_data_position mid;
    std::vector<Batch> after;
    for (uint64_t s = 0; s < steps; s++) {
        if (s == steps / 2) culora_loader_get_position(r1.get(), &mid);
        (void)next(ctx.get(), r0.get(), B, 256);
        Batch b = next(ctx.get(), r1.get(), B, 256);
        if (s >= steps / 2 && after.size() < 5) after.push_back(b);
        for (int64_t r : b.rows)
            if (r >= 0) seen[r]++;
    }
    LoaderPtr r0b = loader(ctx.get(), ds.get(), B, 0, world, 2024);
    for (uint64_t s = 0; s < steps; s++) {
        Batch b = next(ctx.get(), r0b.get(), B, 256);
        for (int64_t r : b.rows)
            if (r >= 0) seen[r]++;
    }
    for (int64_t r = 0; r < n_rows; r++) ASSERT_EQ(seen[r], 1) << "row " << r;
    LoaderPtr resumed = loader(ctx.get(), ds.get(), B, 1, world, 2024);
    ASSERT_EQ(culora_loader_set_position(ctx.get(), resumed.get(), &mid), CULORA_OK);
    for (const Batch &want : after) ASSERT_TRUE(next(ctx.get(), resumed.get(), B, 256) == want);
}
