/*
 * dist_internal.h — the communicator object and the table each implementation fills
 * (dist_none.c, dist_tcp.c, dist_mpi.c, dist_nccl.c; the *_stub.c files stand in for MPI and
 * NCCL when the build has neither).
 */
#ifndef CULORA_HOST_DIST_INTERNAL_H
#define CULORA_HOST_DIST_INTERNAL_H

#include "culora/culora_dist.h"

#include "../context.h"

#include <stdbool.h>

struct dist_impl_i {
    const char *name;
    void (*destroy)(culora_dist *d);
    /* buf[n] ← Σ over ranks / world size (fp32, in place) */
    culora_status (*allreduce_mean_f32)(culora_dist *d, float *buf, size_t n, culora_stream stream);
    culora_status (*broadcast)(culora_dist *d, void *buf, size_t bytes, int32_t root, culora_stream stream);
    culora_status (*wait)(culora_dist *d, culora_stream stream);         /* NULL: nothing to wait for */
    culora_status (*barrier)(culora_dist *d);
    culora_status (*allgather_u64)(culora_dist *d, uint64_t v, uint64_t *all); /* all[world] on every rank */
    void (*abort)(culora_dist *d, int exit_code);
};

struct culora_dist {
    const struct dist_impl_i *impl;
    culora_context *ctx;
    int32_t rank, world, local_rank;
    double timeout_s;
    culora_dist_env env;
    void *state; /* implementation-private */
};

/* Implementations: fill d->impl and d->state (rank/world/timeout are set before the call). */
culora_status dist_none_create(culora_dist *d, const culora_dist_params *p);
culora_status dist_tcp_create(culora_dist *d, const culora_dist_params *p);
culora_status dist_mpi_create(culora_dist *d, const culora_dist_params *p);
culora_status dist_nccl_create(culora_dist *d, const culora_dist_params *p);
bool dist_mpi_built(void);
bool dist_nccl_built(void);

/* Seconds on a monotonic clock. */
double dist_now(void);

#endif /* CULORA_HOST_DIST_INTERNAL_H */
