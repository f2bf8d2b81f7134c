culora_add_gtest(test_hub LABELS cpu SOURCES hub/test_cmaes.cpp)
