/*
 * st_dtype.c — safetensors dtype names and sizes (safetensors tensor.rs `Dtype`, `bitsize`).
 */
#include "io_internal.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned bits;
} dtype_table[CULORA_ST_DTYPE_COUNT] = {
    [CULORA_ST_BOOL] = {"BOOL", 8},
    [CULORA_ST_F4] = {"F4", 4},
    [CULORA_ST_F6_E2M3] = {"F6_E2M3", 6},
    [CULORA_ST_F6_E3M2] = {"F6_E3M2", 6},
    [CULORA_ST_U8] = {"U8", 8},
    [CULORA_ST_I8] = {"I8", 8},
    [CULORA_ST_F8_E5M2] = {"F8_E5M2", 8},
    [CULORA_ST_F8_E4M3] = {"F8_E4M3", 8},
    [CULORA_ST_F8_E8M0] = {"F8_E8M0", 8},
    [CULORA_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [CULORA_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [CULORA_ST_I16] = {"I16", 16},
    [CULORA_ST_U16] = {"U16", 16},
    [CULORA_ST_F16] = {"F16", 16},
    [CULORA_ST_BF16] = {"BF16", 16},
    [CULORA_ST_I32] = {"I32", 32},
    [CULORA_ST_U32] = {"U32", 32},
    [CULORA_ST_F32] = {"F32", 32},
    [CULORA_ST_C64] = {"C64", 64},
    [CULORA_ST_F64] = {"F64", 64},
    [CULORA_ST_I64] = {"I64", 64},
    [CULORA_ST_U64] = {"U64", 64},
};

const char *culora_st_dtype_name(culora_st_dtype dtype)
{
    if ((unsigned)dtype >= CULORA_ST_DTYPE_COUNT)
        return "?";
    return dtype_table[dtype].name;
}

unsigned culora_st_dtype_bits(culora_st_dtype dtype)
{
    if ((unsigned)dtype >= CULORA_ST_DTYPE_COUNT)
        return 0;
    return dtype_table[dtype].bits;
}

bool culora_st_dtype_parse(const char *name, culora_st_dtype *out)
{
    for (int i = 0; i < CULORA_ST_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (culora_st_dtype)i;
            return true;
        }
    }
    return false;
}
