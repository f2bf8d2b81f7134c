// json_test_util.h — reading the oracle fixtures' JSON arrays of numbers (tests/gen/*.py) in tests.
#pragma once

#include <jansson.h>

#include <cstdint>
#include <vector>

namespace culora_test {

// The numbers of a JSON array (empty when arr is NULL or not an array).
inline std::vector<float> json_floats(json_t *arr)
{
    std::vector<float> v;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) v.push_back((float)json_number_value(e));
    return v;
}

inline std::vector<int32_t> json_ints(json_t *arr)
{
    std::vector<int32_t> v;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) v.push_back((int32_t)json_integer_value(e));
    return v;
}

}  // namespace culora_test
