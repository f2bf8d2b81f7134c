/*
 * dist_nccl.c — the NCCL communicator for the CUDA backend.
 *
 * Bootstrap: rank 0 creates the ncclUniqueId and it reaches the other ranks over MPI when the job
 * was launched by an MPI launcher and the build has MPI, else over the TCP rendezvous at
 * MASTER_ADDR:MASTER_PORT. Or the caller hands in an existing ncclComm_t. The communicator is
 * non-blocking (ncclConfig_t.blocking = 0): every call is followed by polling
 * ncclCommGetAsyncError until it settles, and culora_dist_wait() polls the stream and the async
 * error against the timeout, aborting the communicator on error or timeout (NCCL's documented
 * fault model), so a dead peer never hangs the job. Averages use ncclAvg.
 * Run with one rank only (bench_dist --quick on an H100, 2026-11-26: checks pass, docs/distributed.md);
 * multi-rank NCCL has never run (NCCL cannot place two ranks on one GPU: it needs several GPUs).
 */
#define _POSIX_C_SOURCE 200809L
#include "dist_internal.h"

#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct nccl_state {
    ncclComm_t comm;
    bool owns_comm;
    bool aborted;
    uint64_t *scratch; /* device: [world] for allgather, plus one slot in front for the local value */
};

static struct nccl_state *st(culora_dist *d) { return (struct nccl_state *)d->state; }

static cudaStream_t stream_of(culora_dist *d, culora_stream s)
{
    return (cudaStream_t)(s ? s : culora_context_stream(d->ctx));
}

static void sleep_short(void)
{
    struct timespec ts = {0, 100 * 1000};
    nanosleep(&ts, NULL);
}

static culora_status nccl_abort_with(culora_dist *d, culora_status s)
{
    if (!st(d)->aborted) {
        ncclCommAbort(st(d)->comm);
        st(d)->aborted = true;
    }
    return s;
}

/* Waits until a non-blocking NCCL call has been issued (ncclInProgress → ncclSuccess). */
static culora_status settle(culora_dist *d, ncclResult_t r, const char *what)
{
    const double deadline = dist_now() + d->timeout_s;
    while (r == ncclInProgress) {
        if (dist_now() > deadline)
            return nccl_abort_with(d, culora_fail(d->ctx, CULORA_ERR_TIMEOUT,
                                                  "nccl communicator: rank %d: %s still in progress after %.0f s; "
                                                  "communicator aborted",
                                                  (int)d->rank, what, d->timeout_s));
        sleep_short();
        ncclCommGetAsyncError(st(d)->comm, &r);
    }
    if (r != ncclSuccess)
        return nccl_abort_with(d, culora_fail(d->ctx, CULORA_ERR_NCCL, "nccl communicator: rank %d: %s: %s (%s)",
                                              (int)d->rank, what, ncclGetErrorString(r), ncclGetLastError(st(d)->comm)));
    return CULORA_OK;
}

static culora_status nccl_wait(culora_dist *d, culora_stream s)
{
    if (st(d)->aborted)
        return culora_fail(d->ctx, CULORA_ERR_NCCL, "nccl communicator: rank %d: aborted after an earlier error",
                           (int)d->rank);
    const cudaStream_t stream = stream_of(d, s);
    const double deadline = dist_now() + d->timeout_s;
    for (;;) {
        ncclResult_t ar = ncclSuccess;
        ncclCommGetAsyncError(st(d)->comm, &ar);
        if (ar != ncclSuccess && ar != ncclInProgress)
            return nccl_abort_with(d, culora_fail(d->ctx, CULORA_ERR_PEER,
                                                  "nccl communicator: rank %d: asynchronous error %s (%s): a peer "
                                                  "failed; communicator aborted",
                                                  (int)d->rank, ncclGetErrorString(ar), ncclGetLastError(st(d)->comm)));
        cudaError_t e = cudaStreamQuery(stream);
        if (e == cudaSuccess)
            return CULORA_OK;
        if (e != cudaErrorNotReady)
            return nccl_abort_with(d, culora_fail(d->ctx, CULORA_ERR_CUDA, "nccl communicator: rank %d: stream error %s",
                                                  (int)d->rank, cudaGetErrorString(e)));
        if (dist_now() > deadline)
            return nccl_abort_with(d, culora_fail(d->ctx, CULORA_ERR_TIMEOUT,
                                                  "nccl communicator: rank %d: collective did not finish within %.0f s "
                                                  "(dead or hung peer); communicator aborted",
                                                  (int)d->rank, d->timeout_s));
        sleep_short();
    }
}

static culora_status nccl_allreduce(culora_dist *d, float *buf, size_t n, culora_stream s)
{
    ncclResult_t r = ncclAllReduce(buf, buf, n, ncclFloat32, ncclAvg, st(d)->comm, stream_of(d, s));
    return settle(d, r, "ncclAllReduce");
}

static culora_status nccl_broadcast(culora_dist *d, void *buf, size_t bytes, int32_t root, culora_stream s)
{
    ncclResult_t r = ncclBroadcast(buf, buf, bytes, ncclUint8, root, st(d)->comm, stream_of(d, s));
    return settle(d, r, "ncclBroadcast");
}

static culora_status nccl_allgather(culora_dist *d, uint64_t v, uint64_t *all)
{
    const cudaStream_t stream = stream_of(d, NULL);
    uint64_t *dev = st(d)->scratch;
    if (cudaMemcpyAsync(dev, &v, sizeof v, cudaMemcpyHostToDevice, stream) != cudaSuccess)
        return culora_fail(d->ctx, CULORA_ERR_CUDA, "nccl communicator: copy to the device failed");
    CULORA_TRY(settle(d, ncclAllGather(dev, dev + 1, 1, ncclUint64, st(d)->comm, stream), "ncclAllGather"));
    if (cudaMemcpyAsync(all, dev + 1, (size_t)d->world * sizeof(uint64_t), cudaMemcpyDeviceToHost, stream) != cudaSuccess)
        return culora_fail(d->ctx, CULORA_ERR_CUDA, "nccl communicator: copy to the host failed");
    return nccl_wait(d, NULL);
}

static culora_status nccl_barrier(culora_dist *d)
{
    uint64_t *all = calloc((size_t)d->world, sizeof *all);
    if (all == NULL)
        return culora_fail(d->ctx, CULORA_ERR_OUT_OF_MEMORY, "nccl communicator: out of memory");
    culora_status s = nccl_allgather(d, 0, all);
    free(all);
    return s;
}

static void nccl_abort(culora_dist *d, int exit_code)
{
    (void)exit_code;
    (void)nccl_abort_with(d, CULORA_OK);
}

static void nccl_destroy(culora_dist *d)
{
    struct nccl_state *s = st(d);
    if (s == NULL)
        return;
    if (s->owns_comm && !s->aborted && s->comm != NULL)
        ncclCommDestroy(s->comm);
    if (s->scratch != NULL)
        cudaFree(s->scratch);
    free(s);
    d->state = NULL;
}

static const struct dist_impl_i nccl_impl = {
    .name = "nccl",
    .destroy = nccl_destroy,
    .allreduce_mean_f32 = nccl_allreduce,
    .broadcast = nccl_broadcast,
    .wait = nccl_wait,
    .barrier = nccl_barrier,
    .allgather_u64 = nccl_allgather,
    .abort = nccl_abort,
};

bool dist_nccl_built(void) { return true; }

/* Rank 0's unique id reaches every rank over MPI or TCP (a bootstrap communicator on host memory). */
static culora_status share_unique_id(culora_dist *d, const culora_dist_params *p, ncclUniqueId *id)
{
    if (d->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(id);
        if (r != ncclSuccess)
            return culora_fail(d->ctx, CULORA_ERR_NCCL, "nccl communicator: ncclGetUniqueId: %s", ncclGetErrorString(r));
    }
    if (d->world == 1) /* nobody to tell: no MPI_Init or TCP listener for a one-rank communicator */
        return CULORA_OK;
    culora_dist boot = *d;
    boot.state = NULL;
    boot.impl = NULL;
    const bool via_mpi = p->env.launcher != CULORA_LAUNCHER_TORCHRUN && dist_mpi_built();
    CULORA_TRY(via_mpi ? dist_mpi_create(&boot, p) : dist_tcp_create(&boot, p));
    culora_status s = boot.impl->broadcast(&boot, id, sizeof *id, 0, NULL);
    boot.impl->destroy(&boot);
    return s;
}

culora_status dist_nccl_create(culora_dist *d, const culora_dist_params *p)
{
    struct nccl_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return culora_fail(d->ctx, CULORA_ERR_OUT_OF_MEMORY, "nccl communicator: out of memory");
    d->state = s;
    d->impl = &nccl_impl;
    culora_status e = CULORA_OK;
    if (p->nccl_comm != NULL) {
        s->comm = (ncclComm_t)p->nccl_comm;
        int n = 0, r = 0;
        ncclCommCount(s->comm, &n);
        ncclCommUserRank(s->comm, &r);
        d->world = n;
        d->rank = r;
    } else {
        ncclUniqueId id;
        memset(&id, 0, sizeof id);
        e = share_unique_id(d, p, &id);
        if (e == CULORA_OK) {
            ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
            cfg.blocking = 0;
            ncclResult_t r = ncclCommInitRankConfig(&s->comm, d->world, id, d->rank, &cfg);
            s->owns_comm = true;
            e = settle(d, r, "ncclCommInitRankConfig");
        }
    }
    if (e == CULORA_OK && cudaMalloc((void **)&s->scratch, (size_t)(d->world + 1) * sizeof(uint64_t)) != cudaSuccess)
        e = culora_fail(d->ctx, CULORA_ERR_OUT_OF_MEMORY, "nccl communicator: cannot allocate scratch");
    if (e != CULORA_OK) {
        nccl_destroy(d);
        d->impl = NULL;
    }
    return e;
}
