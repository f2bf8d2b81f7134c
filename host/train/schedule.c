/*
 * schedule.c — learning-rate multipliers (schedule.h). Each branch is the reference formula.
 */
#include "schedule.h"

#include "../context.h"

#include <math.h>

static const double PI = 3.14159265358979323846;

static double imax1(int64_t v) { return (double)(v > 1 ? v : 1); }

culora_status culora_schedule_check(culora_context *ctx, const struct culora_schedule *s)
{
    if (s == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "schedule: NULL");
    if (s->total_steps < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "schedule: total steps %lld must be >= 1",
                           (long long)s->total_steps);
    if (s->warmup_steps < 0 || s->warmup_steps > s->total_steps)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "schedule: warmup steps %lld must be in [0, total steps %lld]",
                           (long long)s->warmup_steps, (long long)s->total_steps);
    switch (s->kind) {
    case CULORA_SCHEDULE_CONSTANT:
    case CULORA_SCHEDULE_LINEAR:
    case CULORA_SCHEDULE_COSINE:
        return CULORA_OK;
    case CULORA_SCHEDULE_COSINE_MIN:
    case CULORA_SCHEDULE_COSINE_RESTARTS:
        break;
    default:
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "schedule: unknown kind %d", (int)s->kind);
    }
    if (!(s->min_lr_ratio > 0.0 && s->min_lr_ratio <= 1.0))
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "schedule: min_lr_ratio %g must be in (0, 1]", s->min_lr_ratio);
    if (s->cycle_length < 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "schedule: cycle length / restart interval %lld must be >= 1",
                           (long long)s->cycle_length);
    if (s->total_steps % s->cycle_length != 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "schedule: total steps %lld must be a multiple of the cycle length / restart interval %lld",
                           (long long)s->total_steps, (long long)s->cycle_length);
    if (s->kind == CULORA_SCHEDULE_COSINE_RESTARTS) {
        if (s->restart_warmup < 0 || s->adjust_step < 0)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "schedule: restart warmup and adjust step must be >= 0");
        if (s->adjust_step + s->warmup_steps > s->cycle_length)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                               "schedule: warmup %lld + adjust step %lld exceed the restart interval %lld (the first "
                               "restart would come before the warmup ends)",
                               (long long)s->warmup_steps, (long long)s->adjust_step, (long long)s->cycle_length);
    }
    return CULORA_OK;
}

double culora_schedule_multiplier(const struct culora_schedule *s, int64_t step)
{
    const int64_t total = s->total_steps, warm = s->warmup_steps;
    switch (s->kind) {
    case CULORA_SCHEDULE_CONSTANT:
        return step < warm ? (double)step / imax1(warm) : 1.0;
    case CULORA_SCHEDULE_LINEAR:
        if (step < warm)
            return (double)step / imax1(warm);
        return fmax(0.0, (double)(total - step) / imax1(total - warm));
    case CULORA_SCHEDULE_COSINE: {
        if (step < warm)
            return (double)step / imax1(warm);
        const double progress = (double)(step - warm) / imax1(total - warm);
        return fmax(0.0, 0.5 * (1.0 + cos(PI * progress)));
    }
    case CULORA_SCHEDULE_COSINE_MIN: {
        const int64_t cycle = step % s->cycle_length;
        if (cycle < warm) {
            if (step != cycle && cycle < 2)
                return 1e-7; /* the reference's value at the first two steps of a restarted cycle */
            return (double)cycle / imax1(warm);
        }
        const double progress = (double)(cycle - warm) / imax1(s->cycle_length - warm);
        return s->min_lr_ratio + (1.0 - s->min_lr_ratio) * 0.5 * (1.0 + cos(PI * progress));
    }
    case CULORA_SCHEDULE_COSINE_RESTARTS: {
        if (step < warm)
            return (double)step / imax1(warm);
        const int64_t cur = step + s->adjust_step;
        const int64_t restart_step = cur % s->cycle_length, restart_number = cur / s->cycle_length;
        if (restart_step < s->restart_warmup && step >= s->cycle_length) {
            /* linear re-warmup to the cosine value at the end of this warmup */
            const double end = (double)(restart_number * s->cycle_length + s->restart_warmup - warm) / imax1(total - warm);
            const double at_end = s->min_lr_ratio + (1.0 - s->min_lr_ratio) * 0.5 * (1.0 + cos(PI * end));
            return (double)restart_step / imax1(s->restart_warmup) * at_end;
        }
        const double progress = (double)(cur - warm) / imax1(total - warm);
        return s->min_lr_ratio + (1.0 - s->min_lr_ratio) * 0.5 * (1.0 + cos(PI * progress));
    }
    default:
        return 0.0;
    }
}
