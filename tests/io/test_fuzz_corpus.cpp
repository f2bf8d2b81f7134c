// test_fuzz_corpus.cpp — replays the libFuzzer corpus and crash inputs kept in
// tests/data/fuzz/safetensors/ (scripts/fuzz-safetensors.sh adds to it): every input is either
// accepted or refused with CULORA_ERR_FORMAT and a message, never anything else (and, under the
// sanitizers, never a bad read).
#include "io_test_util.h"

using namespace culora_io_test;

namespace {

class FuzzCorpus : public IoTest {};

TEST_F(FuzzCorpus, EveryInputIsAcceptedOrRefusedCleanly)
{
    std::string dir = std::string(CULORA_TEST_DATA_DIR) + "/fuzz/safetensors";
    std::vector<std::string> inputs = list_dir(dir);
    ASSERT_GE(inputs.size(), 10u) << "corpus missing in " << dir;
    size_t ok = 0, refused = 0;
    for (const std::string &name : inputs) {
        SCOPED_TRACE(name);
        std::string path = dir + "/" + name;
        culora_safetensors *st = nullptr;
        culora_status s = culora_safetensors_open(ctx, path.c_str(), &st);
        if (s == CULORA_OK) {
            ok++;
            for (size_t i = 0; i < culora_safetensors_count(st); i++) {
                const culora_tensor_info *t = culora_safetensors_at(st, i);
                std::vector<float> v((size_t)t->n_elems);
                culora_status r = culora_tensor_read(ctx, t, CULORA_DTYPE_F32, v.data(), v.size() * sizeof(float));
                EXPECT_TRUE(r == CULORA_OK || r == CULORA_ERR_UNSUPPORTED) << msg();
            }
            culora_safetensors_close(st);
        } else {
            refused++;
            EXPECT_EQ(s, CULORA_ERR_FORMAT) << msg();
            EXPECT_NE(msg().find(path), std::string::npos) << msg();
        }
    }
    EXPECT_GT(ok, 0u);
    EXPECT_GT(refused, 0u);
}

} // namespace
