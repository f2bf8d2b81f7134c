// test_schedule.cpp — learning-rate schedules against transformers and the ReLoRA reference code
// (fixture: tests/gen/gen_schedule_reference.py), and the parameter checks.
#include "test_util.h"

#include <jansson.h>

extern "C" {
#include "train/schedule.h"
}

TEST(Schedule, MatchesTransformersAndRelora)
{
    const std::string path = std::string(CULORA_TEST_DATA_DIR) + "/train/lr_schedules.json";
    json_error_t err;
    json_t *doc = json_load_file(path.c_str(), 0, &err);
    ASSERT_NE(doc, nullptr) << path << ": " << err.text;
    size_t i;
    json_t *c;
    int n_cases = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        const std::string kind = json_string_value(json_object_get(c, "kind"));
        struct culora_schedule s = {};
        s.kind = kind == "linear"            ? CULORA_SCHEDULE_LINEAR
                 : kind == "cosine"          ? CULORA_SCHEDULE_COSINE
                 : kind == "relora_cosine"   ? CULORA_SCHEDULE_COSINE_MIN
                                             : CULORA_SCHEDULE_COSINE_RESTARTS;
        s.total_steps = json_integer_value(json_object_get(c, "total"));
        s.warmup_steps = json_integer_value(json_object_get(c, "warmup"));
        s.min_lr_ratio = json_number_value(json_object_get(c, "min_lr_ratio"));
        s.cycle_length = json_integer_value(json_object_get(c, "cycle_length"));
        s.restart_warmup = json_integer_value(json_object_get(c, "restart_warmup"));
        s.adjust_step = json_integer_value(json_object_get(c, "adjust_step"));
        ASSERT_EQ(culora_schedule_check(nullptr, &s), CULORA_OK) << kind;
        json_t *mult = json_object_get(c, "multipliers");
        for (size_t step = 0; step < json_array_size(mult); step++) {
            // Same formula in double precision on both sides; only libm's cos may differ in the last bit.
            EXPECT_NEAR(culora_schedule_multiplier(&s, (int64_t)step), json_number_value(json_array_get(mult, step)), 1e-12)
                << kind << " case " << i << " step " << step;
        }
        n_cases++;
    }
    EXPECT_EQ(n_cases, 7);
    json_decref(doc);
}

TEST(Schedule, JaggedScheduleDropsToZeroAtEveryRestart)
{
    struct culora_schedule s = {CULORA_SCHEDULE_COSINE_RESTARTS, 300, 10, 0.1, 100, 20, 0};
    ASSERT_EQ(culora_schedule_check(nullptr, &s), CULORA_OK);
    for (int64_t r : {100, 200}) {
        EXPECT_EQ(culora_schedule_multiplier(&s, r), 0.0) << r;
        EXPECT_GT(culora_schedule_multiplier(&s, r + 10), 0.0);
        EXPECT_LT(culora_schedule_multiplier(&s, r + 10), culora_schedule_multiplier(&s, r + 19));
    }
    EXPECT_NEAR(culora_schedule_multiplier(&s, 10), 1.0, 1e-12);  // peak right after the first warmup
}

TEST(Schedule, RejectsInconsistentParameters)
{
    auto ctx = culora_test::make_ctx(CULORA_BACKEND_CPU);
    struct culora_schedule s = {CULORA_SCHEDULE_COSINE_RESTARTS, 250, 10, 0.1, 100, 20, 0};
    EXPECT_EQ(culora_schedule_check(ctx.get(), &s), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("multiple of"), std::string::npos);
    s.total_steps = 300;
    s.min_lr_ratio = 0;
    EXPECT_EQ(culora_schedule_check(ctx.get(), &s), CULORA_ERR_INVALID_ARG);
    s.min_lr_ratio = 0.1;
    s.warmup_steps = 95;
    s.adjust_step = 10;
    EXPECT_EQ(culora_schedule_check(ctx.get(), &s), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("first restart"), std::string::npos);
    struct culora_schedule t = {CULORA_SCHEDULE_LINEAR, 0, 0, 0, 0, 0, 0};
    EXPECT_EQ(culora_schedule_check(ctx.get(), &t), CULORA_ERR_INVALID_ARG);
    t.total_steps = 10;
    t.kind = 42;
    EXPECT_EQ(culora_schedule_check(ctx.get(), &t), CULORA_ERR_INVALID_ARG);
}
