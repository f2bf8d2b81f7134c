/*
 * philox.h — Philox4x32-10 counter-based RNG (Salmon et al., SC'11), the generator cuRAND's
 * curand_Philox4x32_10() implements, and culora's dropout mask built on it.
 *
 * Dropout mask of element i = row·k + col of an [m,k] input (identical on CPU and CUDA):
 *   counter = { lo32(i/4), hi32(i/4), lo32(offset), hi32(offset) },  key = { lo32(seed), hi32(seed) }
 *   word    = Philox4x32_10(counter, key)[i mod 4]
 *   keep    = (word >> 8) >= threshold(p),  threshold(p) = round(p · 2^24)
 * Kept elements are scaled by 1/(1-p).
 */
#ifndef CULORA_HOST_PHILOX_H
#define CULORA_HOST_PHILOX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out = Philox4x32-10(ctr, key). */
void culora_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* round(p · 2^24) for 0 <= p < 1. */
uint32_t culora_dropout_threshold(float p);

/* 1 if element index is kept, 0 if dropped (see above). */
int culora_dropout_keep_index(uint64_t seed, uint64_t offset, uint64_t index, uint32_t threshold);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_PHILOX_H */
