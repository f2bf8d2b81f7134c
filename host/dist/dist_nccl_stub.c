/*
 * dist_nccl_stub.c — stands in for dist_nccl.c in builds without CUDA or NCCL.
 */
#include "dist_internal.h"

bool dist_nccl_built(void) { return false; }

culora_status dist_nccl_create(culora_dist *d, const culora_dist_params *p)
{
    (void)p;
    return culora_fail(d->ctx, CULORA_ERR_UNSUPPORTED,
                       "nccl communicator: this build of culora has no NCCL (configure with CUDA and NCCL available)");
}
