/*
 * dist_none.c — the one-process communicator: every collective leaves the data as it is.
 */
#include "dist_internal.h"

static culora_status none_allreduce(culora_dist *d, float *buf, size_t n, culora_stream s)
{
    (void)d; (void)buf; (void)n; (void)s;
    return CULORA_OK;
}

static culora_status none_broadcast(culora_dist *d, void *buf, size_t bytes, int32_t root, culora_stream s)
{
    (void)d; (void)buf; (void)bytes; (void)root; (void)s;
    return CULORA_OK;
}

static culora_status none_barrier(culora_dist *d)
{
    (void)d;
    return CULORA_OK;
}

static culora_status none_allgather(culora_dist *d, uint64_t v, uint64_t *all)
{
    (void)d;
    all[0] = v;
    return CULORA_OK;
}

static const struct dist_impl_i none_impl = {
    .name = "none",
    .destroy = NULL,
    .allreduce_mean_f32 = none_allreduce,
    .broadcast = none_broadcast,
    .wait = NULL,
    .barrier = none_barrier,
    .allgather_u64 = none_allgather,
    .abort = NULL,
};

culora_status dist_none_create(culora_dist *d, const culora_dist_params *p)
{
    (void)p;
    d->impl = &none_impl;
    return CULORA_OK;
}
