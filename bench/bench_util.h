/*
 * bench_util.h — shared by culora's benchmarks: wall-clock timing around synchronised batches,
 * medians, and the JSON-line output every benchmark prints (one line per measurement).
 *
 * Timing: `inner` calls are enqueued back to back and the batch is timed from before the first
 * to after culora_synchronize(); a sample is batch time / inner, the result the median of the
 * samples. On a GPU this includes launch overhead, which is what a training loop pays.
 */
#ifndef CULORA_BENCH_UTIL_H
#define CULORA_BENCH_UTIL_H

#include "culora/culora.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Formats v for JSON: a number, or null when it is not finite. */
static inline void bench_json_num(char *buf, size_t n, double v)
{
    if (isfinite(v))
        snprintf(buf, n, "%.4f", v);
    else
        snprintf(buf, n, "null");
}

/* Validation before timing: the number of elements outside |got - ref| <= tol·(rms(ref) + |ref|).
 * When max_rel_rms is not NULL it is raised to max |got - ref| / rms(ref) (infinity for a NaN). */
static inline int64_t bench_count_wrong(const float *got, const float *ref, int64_t n, double tol,
                                        double *max_rel_rms)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)ref[i] * ref[i];
    const double rms = sqrt(ss / (double)n) + 1e-30;
    int64_t bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - (double)ref[i]);
        if (!(e <= tol * (rms + fabs((double)ref[i]))))
            bad++;
        if (e / rms > worst || isnan(e))
            worst = isnan(e) ? INFINITY : e / rms;
    }
    if (max_rel_rms != NULL)
        *max_rel_rms = fmax(*max_rel_rms, worst);
    return bad;
}

/* Exits with a message on failure: benchmarks are programs, not library code. */
#define BENCH_CHECK(ctx, call)                                                                     \
    do {                                                                                           \
        culora_status bench_s_ = (call);                                                           \
        if (bench_s_ != CULORA_OK) {                                                               \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,              \
                    culora_status_name(bench_s_), culora_context_last_error(ctx));                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#endif /* CULORA_BENCH_UTIL_H */
