// test_dropout.cpp — Philox4x32-10 against the Random123 known-answer vectors, and the dropout
// mask's statistics and determinism.
#include "test_util.h"

extern "C" {
#include "philox.h"
}

// Known-answer vectors of Random123 (kat_vectors, philox4x32 with 10 rounds). cuRAND's
// curand_Philox4x32_10 implements the same function, which the CUDA tests rely on.
TEST(Philox, Random123KnownAnswers)
{
    const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    const uint32_t key[3][2] = {{0, 0}, {0xffffffffu, 0xffffffffu}, {0xa4093822u, 0x299f31d0u}};
    const uint32_t want[3][4] = {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
                                 {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
                                 {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        culora_philox4x32_10(ctr[i], key[i], out);
        for (int j = 0; j < 4; j++) EXPECT_EQ(out[j], want[i][j]) << "vector " << i << " word " << j;
    }
}

TEST(Dropout, ThresholdIsRoundedFractionOf2To24)
{
    EXPECT_EQ(culora_dropout_threshold(0.0f), 0u);
    EXPECT_EQ(culora_dropout_threshold(0.5f), 1u << 23);
    EXPECT_EQ(culora_dropout_threshold(0.1f), 1677722u);  // round(0.1f · 2^24) = round(1677721.65)
}

TEST(Dropout, KeepRateMatchesProbability)
{
    // 200k Bernoulli draws: the standard deviation of the kept fraction is sqrt(p(1-p)/n) ≈ 0.0011
    // for p = 0.3, so 0.006 is more than 5 sigma.
    const int64_t n = 200000;
    for (float p : {0.1f, 0.3f, 0.5f}) {
        int64_t kept = 0;
        for (int64_t i = 0; i < n; i++) kept += culora_dropout_keep(1234, 7, i, p);
        EXPECT_NEAR((double)kept / n, 1.0 - p, 0.006) << "p=" << p;
    }
    for (int64_t i = 0; i < 1000; i++) EXPECT_EQ(culora_dropout_keep(1, 2, i, 0.0f), 1);
}

TEST(Dropout, MaskDependsOnSeedOffsetAndIndexOnly)
{
    int same_seed = 0, diff_seed = 0, diff_offset = 0;
    for (int64_t i = 0; i < 4096; i++) {
        int a = culora_dropout_keep(42, 0, i, 0.5f);
        same_seed += a == culora_dropout_keep(42, 0, i, 0.5f);
        diff_seed += a == culora_dropout_keep(43, 0, i, 0.5f);
        diff_offset += a == culora_dropout_keep(42, 1, i, 0.5f);
    }
    EXPECT_EQ(same_seed, 4096);
    // Independent masks agree on about half the elements (binomial, sd 32): far from all of them.
    EXPECT_LT(diff_seed, 2400);
    EXPECT_LT(diff_offset, 2400);
    EXPECT_EQ(culora_dropout_keep(1, 1, -5, 0.5f), 0);  // invalid index: dropped, no crash
}
