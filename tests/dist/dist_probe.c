/*
 * dist_probe.c — a small multi-process program for the communicator tests. Launched by mpirun
 * (MPI communicator) or by test_dist with torchrun-style variables (TCP communicator).
 *
 *   dist_probe ok [timeout_s]        collectives with known answers; exit 0 when all are right
 *   dist_probe die [timeout_s]       rank 1 is killed (SIGKILL) after joining; the others must fail
 *                                    with a message naming rank 1 (exit 3)
 *   dist_probe hang [timeout_s]      rank 1 stops answering (sleeps 2·timeout + 2 s); the others must fail within the timeout
 *   dist_probe mismatch [timeout_s]  rank 1 calls broadcast while the others call allreduce
 * Every rank prints one line "rank R: ..." to stdout.
 */
#define _POSIX_C_SOURCE 200809L
#include "culora/culora.h"
#include "culora/culora_dist.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int fail(culora_context *ctx, int rank, const char *what, culora_status s)
{
    printf("rank %d: %s failed: %s: %s\n", rank, what, culora_status_name(s), culora_context_last_error(ctx));
    fflush(stdout);
    return 3;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ok";
    const double timeout = argc > 2 ? atof(argv[2]) : 30.0;
    culora_context_params cp = CULORA_CONTEXT_PARAMS_INIT;
    cp.backend = CULORA_BACKEND_CPU;
    cp.n_threads = 1;
    culora_context *ctx = NULL;
    if (culora_context_create(&cp, &ctx) != CULORA_OK)
        return 4;
    culora_dist_params dp = CULORA_DIST_PARAMS_INIT;
    culora_status s = culora_dist_env_parse(ctx, environ, &dp.env);
    if (s != CULORA_OK)
        return fail(ctx, -1, "env", s);
    dp.timeout_s = timeout;
    culora_dist *d = NULL;
    s = culora_dist_create(ctx, &dp, &d);
    if (s != CULORA_OK)
        return fail(ctx, dp.env.rank, "create", s);
    const int rank = culora_dist_rank(d), world = culora_dist_world_size(d);

    if (strcmp(mode, "die") == 0 && rank == 1)
        raise(SIGKILL);
    if (strcmp(mode, "hang") == 0 && rank == 1) {
        struct timespec ts = {(time_t)(timeout * 2 + 2), 0};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (strcmp(mode, "mismatch") == 0 && rank == 1) {
        char b[8] = {0};
        s = culora_dist_broadcast(d, b, sizeof b, 0, NULL);
        int rc = s == CULORA_OK ? 0 : fail(ctx, rank, "broadcast", s);
        culora_dist_destroy(d);
        culora_context_destroy(ctx);
        return rc;
    }

    /* allreduce: rank r contributes r + i; the mean is (world-1)/2 + i, exact in fp32 for these sizes */
    enum { N = 1000 };
    static float buf[N];
    for (int i = 0; i < N; i++)
        buf[i] = (float)rank + (float)i;
    s = culora_dist_allreduce_mean_f32(d, buf, N, NULL);
    if (s != CULORA_OK)
        return fail(ctx, rank, "allreduce", s);
    for (int i = 0; i < N; i++)
        if (buf[i] != 0.5f * (float)(world - 1) + (float)i) {
            printf("rank %d: allreduce wrong at %d: %g\n", rank, i, (double)buf[i]);
            return 5;
        }
    /* broadcast from the last rank */
    char msg[64];
    snprintf(msg, sizeof msg, "hello from rank %d", rank);
    s = culora_dist_broadcast(d, msg, sizeof msg, world - 1, NULL);
    if (s != CULORA_OK)
        return fail(ctx, rank, "broadcast", s);
    char want[64];
    snprintf(want, sizeof want, "hello from rank %d", world - 1);
    if (strcmp(msg, want) != 0) {
        printf("rank %d: broadcast gave \"%s\"\n", rank, msg);
        return 5;
    }
    /* check_same: equal values pass, differing values fail on every rank */
    s = culora_dist_check_same(d, 0x1234abcdull, "adapter checksum");
    if (s != CULORA_OK)
        return fail(ctx, rank, "check_same(equal)", s);
    s = culora_dist_check_same(d, (uint64_t)rank, "adapter checksum");
    if (world > 1 && s != CULORA_ERR_MISMATCH) {
        printf("rank %d: check_same(differing) returned %s\n", rank, culora_status_name(s));
        return 5;
    }
    if (world > 1 && strstr(culora_context_last_error(ctx), "rank 1") == NULL) {
        printf("rank %d: mismatch message does not name rank 1: %s\n", rank, culora_context_last_error(ctx));
        return 5;
    }
    s = culora_dist_barrier(d);
    if (s != CULORA_OK)
        return fail(ctx, rank, "barrier", s);
    printf("rank %d: ok (%s communicator, world %d, local rank %d)\n", rank, culora_dist_kind_name(d), world,
           culora_dist_local_rank(d));
    fflush(stdout);
    culora_dist_destroy(d);
    culora_context_destroy(ctx);
    return 0;
}
