/*
 * dist_mpi_stub.c — stands in for dist_mpi.c in builds without MPI.
 */
#include "dist_internal.h"

bool dist_mpi_built(void) { return false; }

culora_status dist_mpi_create(culora_dist *d, const culora_dist_params *p)
{
    (void)p;
    return culora_fail(d->ctx, CULORA_ERR_UNSUPPORTED, "mpi communicator: this build of culora has no MPI (install "
                                                       "libopenmpi-dev and reconfigure), or launch with torchrun-style "
                                                       "variables for the TCP communicator");
}
