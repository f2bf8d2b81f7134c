/*
 * schedule.h — learning-rate schedules: the multiplier applied to the base learning rate at an
 * optimizer step. Formulas match transformers (linear, cosine with warmup) and the ReLoRA
 * reference (Guitaricet/relora training_utils.py: cosine with a minimum ratio, and the jagged
 * cosine with a short re-warmup after every restart); tests/train/test_schedule.cpp checks them
 * against numbers those implementations produced (tests/gen/gen_schedule_reference.py).
 */
#ifndef CULORA_HOST_TRAIN_SCHEDULE_H
#define CULORA_HOST_TRAIN_SCHEDULE_H

#include "culora/culora.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum culora_schedule_kind {
    CULORA_SCHEDULE_CONSTANT = 0,        /* warmup, then 1 */
    CULORA_SCHEDULE_LINEAR = 1,          /* transformers get_linear_schedule_with_warmup */
    CULORA_SCHEDULE_COSINE = 2,          /* transformers get_cosine_schedule_with_warmup (to 0) */
    CULORA_SCHEDULE_COSINE_MIN = 3,      /* ReLoRA "cosine": cyclical, floor min_lr_ratio */
    CULORA_SCHEDULE_COSINE_RESTARTS = 4  /* ReLoRA "cosine_restarts": the jagged schedule */
};

struct culora_schedule {
    int32_t kind;              /* enum culora_schedule_kind */
    int64_t total_steps;       /* optimizer steps in the run */
    int64_t warmup_steps;      /* first linear warmup */
    double min_lr_ratio;       /* COSINE_MIN, COSINE_RESTARTS: floor, in (0, 1] */
    int64_t cycle_length;      /* COSINE_MIN: cycle; COSINE_RESTARTS: restart every (ReLoRA merge interval) */
    int64_t restart_warmup;    /* COSINE_RESTARTS: re-warmup steps after each restart */
    int64_t adjust_step;       /* COSINE_RESTARTS: shift when continuing from a warm start */
};

/* Checks the schedule's parameters (the reference's assertions become CULORA_ERR_INVALID_ARG). */
culora_status culora_schedule_check(culora_context *ctx, const struct culora_schedule *s);
/* Multiplier of the base learning rate at step (0-based); s must have passed culora_schedule_check. */
double culora_schedule_multiplier(const struct culora_schedule *s, int64_t step);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_TRAIN_SCHEDULE_H */
