/*
 * data_position.c — the serialized form of culora_data_position (CULORA_DATA_POSITION_BYTES,
 * little-endian):
 *   0 "CLDP"  4 u32 version = 1
 *   8 u64 epoch  16 u64 step  24 u64 seed  32 u64 fingerprint  40 u64 num_rows
 *  48 i32 batch_size  52 i32 world_size  56 i32 shuffle  60 i32 drop_last
 *  64 u64 FNV-1a-64 of bytes 0..63
 */
#include "data/data_util.h"
#include "culora/culora_data.h"

#include <string.h>

#define POSITION_VERSION 1u

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

void culora_data_position_encode(const culora_data_position *pos, uint8_t bytes[CULORA_DATA_POSITION_BYTES])
{
    memcpy(bytes, "CLDP", 4);
    put32(bytes + 4, POSITION_VERSION);
    put64(bytes + 8, pos->epoch);
    put64(bytes + 16, pos->step);
    put64(bytes + 24, pos->seed);
    put64(bytes + 32, pos->fingerprint);
    put64(bytes + 40, pos->num_rows);
    put32(bytes + 48, (uint32_t)pos->batch_size);
    put32(bytes + 52, (uint32_t)pos->world_size);
    put32(bytes + 56, (uint32_t)pos->shuffle);
    put32(bytes + 60, (uint32_t)pos->drop_last);
    put64(bytes + 64, culora_fnv1a(CULORA_FNV_OFFSET, bytes, 64));
}

culora_status culora_data_position_decode(culora_context *ctx, const uint8_t *bytes, size_t n_bytes,
                                          culora_data_position *pos)
{
    if (bytes == NULL || pos == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_data_position_decode: NULL argument");
    if (n_bytes != CULORA_DATA_POSITION_BYTES)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "data position: %zu bytes, expected %d", n_bytes,
                           CULORA_DATA_POSITION_BYTES);
    if (memcmp(bytes, "CLDP", 4) != 0)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "data position: bad magic (not a culora data position)");
    if (get32(bytes + 4) != POSITION_VERSION)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "data position: version %u, this build reads version %u",
                           get32(bytes + 4), POSITION_VERSION);
    if (get64(bytes + 64) != culora_fnv1a(CULORA_FNV_OFFSET, bytes, 64))
        return culora_fail(ctx, CULORA_ERR_FORMAT, "data position: checksum mismatch (corrupted)");
    pos->epoch = get64(bytes + 8);
    pos->step = get64(bytes + 16);
    pos->seed = get64(bytes + 24);
    pos->fingerprint = get64(bytes + 32);
    pos->num_rows = get64(bytes + 40);
    pos->batch_size = (int32_t)get32(bytes + 48);
    pos->world_size = (int32_t)get32(bytes + 52);
    pos->shuffle = (int32_t)get32(bytes + 56);
    pos->drop_last = (int32_t)get32(bytes + 60);
    return CULORA_OK;
}
