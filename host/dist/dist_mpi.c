/*
 * dist_mpi.c — the MPI communicator for the CPU backend (mpirun, srun). A duplicate of
 * MPI_COMM_WORLD with MPI_ERRORS_RETURN; every collective is non-blocking (MPI_I*) and polled
 * against the timeout, so a hung peer gives CULORA_ERR_TIMEOUT instead of a hang. MPI cannot
 * cancel a collective: after an error the caller must call culora_dist_abort (MPI_Abort).
 * Open MPI's mpirun itself ends the job, naming the process, when a rank dies.
 */
#define _POSIX_C_SOURCE 200809L
#include "dist_internal.h"

#include <limits.h>
#include <sched.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mpi_state {
    MPI_Comm comm;
    bool initialised_here;
};

static struct mpi_state *st(culora_dist *d) { return (struct mpi_state *)d->state; }

static culora_status mpi_fail(culora_dist *d, int err, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    return culora_fail(d->ctx, CULORA_ERR_MPI, "mpi communicator: rank %d: %s failed: %s", (int)d->rank, what, msg);
}

/* Polls req until it completes or the timeout passes. MPI progresses a collective only inside MPI
 * calls: for the first millisecond the tests follow each other with only a sched_yield() between
 * them (a 4 KiB all-reduce of 2 ranks took 0.22 ms with a 50 µs sleep after every test, 0.009 ms
 * so); after that a 50 µs sleep between tests keeps a rank that waits for a slow or hung peer
 * from taking a core away from it (large messages, measured on a loaded 2-core machine, were no
 * faster when spinning longer). */
static culora_status wait_req(culora_dist *d, MPI_Request *req, const char *what)
{
    const double start = dist_now(), deadline = start + d->timeout_s;
    for (;;) {
        int done = 0;
        int err = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (err != MPI_SUCCESS)
            return mpi_fail(d, err, what);
        if (done)
            return CULORA_OK;
        if (dist_now() > deadline)
            return culora_fail(d->ctx, CULORA_ERR_TIMEOUT,
                               "mpi communicator: rank %d: %s did not complete within %.0f s (a rank is dead or hung); "
                               "abort the job",
                               (int)d->rank, what, d->timeout_s);
        if (dist_now() - start > 1e-3) {
            struct timespec ts = {0, 50 * 1000};
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
    }
}

static culora_status mpi_allreduce(culora_dist *d, float *buf, size_t n, culora_stream stream)
{
    (void)stream;
    for (size_t off = 0; off < n;) { /* MPI counts are int */
        int cnt = n - off > (size_t)INT_MAX ? INT_MAX : (int)(n - off);
        MPI_Request req;
        int err = MPI_Iallreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM, st(d)->comm, &req);
        if (err != MPI_SUCCESS)
            return mpi_fail(d, err, "MPI_Iallreduce");
        CULORA_TRY(wait_req(d, &req, "allreduce"));
        off += (size_t)cnt;
    }
    const float inv = 1.0f / (float)d->world;
    for (size_t i = 0; i < n; i++)
        buf[i] *= inv;
    return CULORA_OK;
}

static culora_status mpi_broadcast(culora_dist *d, void *buf, size_t bytes, int32_t root, culora_stream stream)
{
    (void)stream;
    for (size_t off = 0; off < bytes;) {
        int cnt = bytes - off > (size_t)INT_MAX ? INT_MAX : (int)(bytes - off);
        MPI_Request req;
        int err = MPI_Ibcast((char *)buf + off, cnt, MPI_BYTE, root, st(d)->comm, &req);
        if (err != MPI_SUCCESS)
            return mpi_fail(d, err, "MPI_Ibcast");
        CULORA_TRY(wait_req(d, &req, "broadcast"));
        off += (size_t)cnt;
    }
    return CULORA_OK;
}

static culora_status mpi_barrier(culora_dist *d)
{
    MPI_Request req;
    int err = MPI_Ibarrier(st(d)->comm, &req);
    if (err != MPI_SUCCESS)
        return mpi_fail(d, err, "MPI_Ibarrier");
    return wait_req(d, &req, "barrier");
}

static culora_status mpi_allgather(culora_dist *d, uint64_t v, uint64_t *all)
{
    MPI_Request req;
    int err = MPI_Iallgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, st(d)->comm, &req);
    if (err != MPI_SUCCESS)
        return mpi_fail(d, err, "MPI_Iallgather");
    return wait_req(d, &req, "allgather");
}

static void mpi_abort(culora_dist *d, int exit_code)
{
    MPI_Abort(st(d)->comm, exit_code ? exit_code : 1);
}

static void mpi_destroy(culora_dist *d)
{
    struct mpi_state *s = st(d);
    if (s == NULL)
        return;
    if (s->comm != MPI_COMM_NULL)
        MPI_Comm_free(&s->comm);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (s->initialised_here && !finalized)
        MPI_Finalize();
    free(s);
    d->state = NULL;
}

static const struct dist_impl_i mpi_impl = {
    .name = "mpi",
    .destroy = mpi_destroy,
    .allreduce_mean_f32 = mpi_allreduce,
    .broadcast = mpi_broadcast,
    .wait = NULL,
    .barrier = mpi_barrier,
    .allgather_u64 = mpi_allgather,
    .abort = mpi_abort,
};

bool dist_mpi_built(void) { return true; }

culora_status dist_mpi_create(culora_dist *d, const culora_dist_params *p)
{
    struct mpi_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return culora_fail(d->ctx, CULORA_ERR_OUT_OF_MEMORY, "mpi communicator: out of memory");
    s->comm = MPI_COMM_NULL;
    d->state = s;
    d->impl = &mpi_impl;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        int err = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (err != MPI_SUCCESS) {
            mpi_destroy(d);
            return culora_fail(d->ctx, CULORA_ERR_MPI, "mpi communicator: MPI_Init_thread failed (launched by mpirun?)");
        }
        s->initialised_here = true;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &s->comm);
    MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN);
    int rank = 0, size = 1;
    MPI_Comm_rank(s->comm, &rank);
    MPI_Comm_size(s->comm, &size);
    if (p->env.launcher != CULORA_LAUNCHER_NONE && (rank != p->env.rank || size != p->env.world_size)) {
        culora_status e = culora_fail(d->ctx, CULORA_ERR_MISMATCH,
                                      "mpi communicator: MPI says rank %d of %d, the launcher environment says %d of %d",
                                      rank, size, (int)p->env.rank, (int)p->env.world_size);
        mpi_destroy(d);
        return e;
    }
    d->rank = rank;
    d->world = size;
    MPI_Comm local;
    if (MPI_Comm_split_type(s->comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        int lr = 0;
        MPI_Comm_rank(local, &lr);
        d->local_rank = lr;
        MPI_Comm_free(&local);
    }
    return CULORA_OK;
}
