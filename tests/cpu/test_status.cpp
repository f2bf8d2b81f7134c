// test_status.cpp — status names and strings, version, dtype helpers, bf16 conversion, contexts.
#include "test_util.h"

#include <set>

TEST(Status, EveryCodeHasADistinctNameAndText)
{
    std::set<std::string> names, texts;
    int n = 0;
#define CHECK_CODE(name, value, text)                                                   \
    {                                                                                   \
        culora_status s = CULORA_##name;                                                \
        EXPECT_EQ((int)s, value);                                                       \
        EXPECT_STREQ(culora_status_name(s), "CULORA_" #name);                           \
        EXPECT_STREQ(culora_status_string(s), text);                                    \
        names.insert(culora_status_name(s));                                            \
        texts.insert(culora_status_string(s));                                          \
        n++;                                                                            \
    }
    CULORA_STATUS_TABLE(CHECK_CODE)
#undef CHECK_CODE
    EXPECT_EQ(names.size(), (size_t)n);
    EXPECT_EQ(texts.size(), (size_t)n);
    EXPECT_STREQ(culora_status_name((culora_status)999), "CULORA_STATUS_UNKNOWN");
    EXPECT_STREQ(culora_status_string((culora_status)999), "unknown status code");
}

TEST(Status, Version)
{
    EXPECT_EQ(culora_version(), CULORA_VERSION_CODE);
    EXPECT_NE(std::string(culora_version_string()).find("0.1.0"), std::string::npos);
}

TEST(Dtype, SizesAndNames)
{
    EXPECT_EQ(culora_dtype_size(CULORA_DTYPE_F32), 4u);
    EXPECT_EQ(culora_dtype_size(CULORA_DTYPE_BF16), 2u);
    EXPECT_EQ(culora_dtype_size((culora_dtype)42), 0u);
    EXPECT_STREQ(culora_dtype_name(CULORA_DTYPE_BF16), "bf16");
    EXPECT_STREQ(culora_dtype_name((culora_dtype)42), "?");
}

TEST(Bf16, RoundsToNearestEvenAndKeepsSpecials)
{
    // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties go to the even mantissa (1.0).
    // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: goes to 1 + 2^-6 (even).
    const float in[] = {1.0f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.5f, INFINITY, -0.0f, 3.4e38f, NAN};
    uint16_t h[8];
    float out[8];
    culora_f32_to_bf16(in, h, 8);
    culora_bf16_to_f32(h, out, 8);
    EXPECT_EQ(h[0], 0x3F80);
    EXPECT_EQ(out[1], 1.0f);
    EXPECT_EQ(out[2], 1.0f + 1.0f / 64);
    EXPECT_EQ(out[3], -2.5f);
    EXPECT_EQ(out[4], INFINITY);
    EXPECT_TRUE(std::signbit(out[5]) && out[5] == 0.0f);
    EXPECT_TRUE(std::isinf(out[6]));  // above the midpoint between bf16 max (3.3895e38) and 2^128: rounds to inf
    EXPECT_TRUE(std::isnan(out[7]));
}

TEST(Context, CpuContextReportsItsBackend)
{
    auto ctx = culora_test::make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    EXPECT_EQ(culora_context_backend(ctx.get()), CULORA_BACKEND_CPU);
    EXPECT_STREQ(culora_context_backend_name(ctx.get()), "cpu");
    EXPECT_EQ(culora_context_compute_dtype(ctx.get()), CULORA_DTYPE_F32);
    EXPECT_EQ(culora_context_stream(ctx.get()), nullptr);
    EXPECT_STREQ(culora_context_last_error(ctx.get()), "");
}

TEST(Context, AutoPicksCpuWithoutDevice)
{
    if (culora_cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
    auto ctx = culora_test::make_ctx(CULORA_BACKEND_AUTO);
    ASSERT_TRUE(ctx);
    EXPECT_EQ(culora_context_backend(ctx.get()), CULORA_BACKEND_CPU);
}

TEST(Context, CudaWithoutDeviceFailsWithMessage)
{
    if (culora_cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    p.backend = CULORA_BACKEND_CUDA;
    culora_context *ctx = nullptr;
    EXPECT_EQ(culora_context_create(&p, &ctx), CULORA_ERR_UNSUPPORTED);
    ASSERT_NE(ctx, nullptr);  // carries the message (sqlite3_open convention)
    EXPECT_NE(std::string(culora_context_last_error(ctx)).find("cuda"), std::string::npos);
    void *mem = nullptr;
    EXPECT_EQ(culora_malloc(ctx, 16, &mem), CULORA_ERR_MISUSE);  // a failed context runs nothing
    culora_context_destroy(ctx);
}

TEST(Context, RejectsUninitialisedParams)
{
    culora_context_params p;
    std::memset(&p, 0, sizeof p);
    culora_context *ctx = nullptr;
    EXPECT_EQ(culora_context_create(&p, &ctx), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx)).find("CULORA_CONTEXT_PARAMS_INIT"), std::string::npos);
    culora_context_destroy(ctx);
    culora_context_params q = CULORA_CONTEXT_PARAMS_INIT;
    q.backend = 77;
    EXPECT_EQ(culora_context_create(&q, &ctx), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx)).find("backend"), std::string::npos);
    culora_context_destroy(ctx);
    EXPECT_EQ(culora_context_create(&q, nullptr), CULORA_ERR_INVALID_ARG);
    culora_context_destroy(nullptr);  // no-op
}

TEST(Context, MemoryRoundTripOnCpu)
{
    auto ctx = culora_test::make_ctx(CULORA_BACKEND_CPU);
    ASSERT_TRUE(ctx);
    void *p = nullptr;
    ASSERT_EQ(culora_malloc(ctx.get(), 100, &p), CULORA_OK);
    const char src[] = "hello, culora";
    char dst[sizeof src] = {0};
    ASSERT_EQ(culora_memcpy(ctx.get(), p, src, sizeof src, CULORA_COPY_HOST_TO_DEVICE, nullptr), CULORA_OK);
    ASSERT_EQ(culora_memcpy(ctx.get(), dst, p, sizeof src, CULORA_COPY_DEVICE_TO_HOST, nullptr), CULORA_OK);
    EXPECT_STREQ(dst, src);
    EXPECT_EQ(culora_malloc(ctx.get(), 0, &p), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(culora_memcpy(ctx.get(), nullptr, src, 4, CULORA_COPY_HOST_TO_DEVICE, nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("dst is NULL"), std::string::npos);
    culora_free(ctx.get(), p);
}
