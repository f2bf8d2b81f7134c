/*
 * status.c — names and descriptions of status codes (one X-macro table in culora.h), version,
 * dtype helpers and host bf16 conversion.
 */
#include "culora/culora.h"

#include <math.h>
#include <string.h>

int culora_version(void) { return CULORA_VERSION_CODE; }

const char *culora_status_name(culora_status s)
{
    switch (s) {
#define CULORA_STATUS_NAME_(name, value, text) case CULORA_##name: return "CULORA_" #name;
        CULORA_STATUS_TABLE(CULORA_STATUS_NAME_)
#undef CULORA_STATUS_NAME_
    }
    return "CULORA_STATUS_UNKNOWN";
}

const char *culora_status_string(culora_status s)
{
    switch (s) {
#define CULORA_STATUS_TEXT_(name, value, text) case CULORA_##name: return text;
        CULORA_STATUS_TABLE(CULORA_STATUS_TEXT_)
#undef CULORA_STATUS_TEXT_
    }
    return "unknown status code";
}

size_t culora_dtype_size(culora_dtype dtype)
{
    switch (dtype) {
    case CULORA_DTYPE_F32: return 4;
    case CULORA_DTYPE_BF16: return 2;
    case CULORA_DTYPE_F16: return 2;
    }
    return 0;
}

const char *culora_dtype_name(culora_dtype dtype)
{
    switch (dtype) {
    case CULORA_DTYPE_F32: return "f32";
    case CULORA_DTYPE_BF16: return "bf16";
    case CULORA_DTYPE_F16: return "f16";
    }
    return "?";
}

void culora_f32_to_bf16(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        if (isnan(src[i])) {
            dst[i] = (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN, sign kept */
            continue;
        }
        uint32_t rounding = 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
        dst[i] = (uint16_t)((u + rounding) >> 16);
    }
}

void culora_bf16_to_f32(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &u, sizeof u);
    }
}
