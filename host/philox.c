/*
 * philox.c — Philox4x32-10 on the host (matches cuRAND's curand_Philox4x32_10 and the Random123
 * known-answer vectors; see tests/cpu/test_dropout.cpp) and the dropout mask built on it.
 */
#include "philox.h"

#include "culora/culora_ops.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void culora_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, c0, &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

uint32_t culora_dropout_threshold(float p)
{
    if (!(p > 0.0f))
        return 0;
    double t = floor((double)p * 16777216.0 + 0.5);
    return t >= 16777216.0 ? 16777215u : (uint32_t)t;
}

int culora_dropout_keep_index(uint64_t seed, uint64_t offset, uint64_t index, uint32_t threshold)
{
    if (threshold == 0)
        return 1;
    uint64_t q = index >> 2;
    const uint32_t ctr[4] = {(uint32_t)q, (uint32_t)(q >> 32), (uint32_t)offset, (uint32_t)(offset >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t out[4];
    culora_philox4x32_10(ctr, key, out);
    return (out[index & 3u] >> 8) >= threshold;
}

int culora_dropout_keep(uint64_t seed, uint64_t offset, int64_t index, float p)
{
    if (index < 0)
        return 0;
    return culora_dropout_keep_index(seed, offset, (uint64_t)index, culora_dropout_threshold(p));
}
