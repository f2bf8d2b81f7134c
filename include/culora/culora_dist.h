/*
 * culora_dist.h — data-parallel communication: launcher discovery and a communicator that
 * averages flat gradient buffers, broadcasts, and checks that replicated state agrees.
 *
 * Implementations behind one interface (host/dist/, one file each):
 *   NONE  one process (world size 1); every collective is a no-op
 *   MPI   for the CPU backend, launched by mpirun/srun (Open MPI, MPICH)
 *   TCP   for the CPU backend without MPI: torchrun-style env (RANK, WORLD_SIZE, MASTER_ADDR,
 *         MASTER_PORT); rank 0 reduces in rank order, so results are deterministic
 *   NCCL  for the CUDA backend; the unique id travels over MPI when launched by mpirun, else over
 *         the TCP rendezvous; or wrap a caller's existing ncclComm_t
 * Collectives wait at most `timeout_s`: a dead or hung peer gives CULORA_ERR_TIMEOUT or
 * CULORA_ERR_PEER (naming the rank when it is known), never a silent hang. After such an error,
 * call culora_dist_abort() so every other rank ends too.
 * This header needs only the C standard library (no MPI or NCCL headers).
 */
#ifndef CULORA_DIST_H
#define CULORA_DIST_H

#include "culora.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct culora_dist culora_dist;

typedef enum culora_dist_kind {
    CULORA_DIST_AUTO = 0, /* from the launcher: NONE for 1 rank; NCCL on a CUDA context; MPI under an MPI
                             launcher; TCP under a torchrun-style launcher */
    CULORA_DIST_NONE = 1,
    CULORA_DIST_MPI = 2,
    CULORA_DIST_TCP = 3,
    CULORA_DIST_NCCL = 4
} culora_dist_kind;

typedef enum culora_launcher {
    CULORA_LAUNCHER_NONE = 0,     /* no launcher variables: one process */
    CULORA_LAUNCHER_TORCHRUN = 1, /* RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT */
    CULORA_LAUNCHER_OPENMPI = 2,  /* OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK */
    CULORA_LAUNCHER_SLURM = 3,    /* SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID */
    CULORA_LAUNCHER_PMI = 4       /* PMI_RANK / PMI_SIZE (MPICH, Intel MPI) */
} culora_launcher;

/* What the launcher told this process. */
typedef struct culora_dist_env {
    int32_t launcher;          /* culora_launcher */
    int32_t rank, world_size;  /* global */
    int32_t local_rank, local_world_size;
    char master_addr[256];     /* TCP rendezvous host ("" when not given) */
    int32_t master_port;       /* TCP rendezvous port: MASTER_PORT (29500 when not given, as torchrun);
                                  MASTER_PORT + 1 under torchrun's agent store
                                  (TORCHELASTIC_USE_AGENT_STORE=True), which holds MASTER_PORT */
} culora_dist_env;

/* Parses launcher variables from envp, a NULL-terminated array of "NAME=value" strings (main's
 * third argument or `environ`); the library never reads the environment itself. Priority:
 * torchrun, Open MPI, Slurm, PMI. Inconsistent values (rank >= world size, non-numbers) give
 * CULORA_ERR_INVALID_ARG naming the variable. */
CULORA_API CULORA_NODISCARD culora_status culora_dist_env_parse(culora_context *ctx, char *const *envp,
                                                                culora_dist_env *out);

typedef struct culora_dist_params {
    uint32_t struct_size;  /* set by CULORA_DIST_PARAMS_INIT */
    uint32_t api_version;
    int32_t kind;          /* culora_dist_kind */
    culora_dist_env env;   /* from culora_dist_env_parse */
    double timeout_s;      /* per collective and for the rendezvous; 0 = 600 s */
    void *nccl_comm;       /* NCCL: an existing ncclComm_t to use (not destroyed by culora), or NULL */
} culora_dist_params;

#define CULORA_DIST_PARAMS_INIT \
    { sizeof(culora_dist_params), CULORA_API_VERSION, CULORA_DIST_AUTO, { 0, 0, 1, 0, 1, "", 29500 }, 0.0, NULL }

/* Joins the job: rendezvous with the other ranks (collective over all ranks). ctx is the compute
 * context the buffers live on (CPU for MPI/TCP, CUDA for NCCL) and receives error messages. */
CULORA_API CULORA_NODISCARD culora_status culora_dist_create(culora_context *ctx, const culora_dist_params *params,
                                                             culora_dist **out);
/* Leaves the job (finalises MPI if culora initialised it). NULL: no-op. */
CULORA_API void culora_dist_destroy(culora_dist *dist);

CULORA_API int32_t culora_dist_rank(const culora_dist *dist);
CULORA_API int32_t culora_dist_world_size(const culora_dist *dist);
CULORA_API int32_t culora_dist_local_rank(const culora_dist *dist);
/* "none", "mpi", "tcp", "nccl". */
CULORA_API const char *culora_dist_kind_name(const culora_dist *dist);

/* buf[n] (fp32, memory of the context's backend) ← mean over ranks, in place. MPI/TCP: returns when
 * done. NCCL: enqueued on stream; culora_dist_wait() waits with error polling. */
CULORA_API CULORA_NODISCARD culora_status culora_dist_allreduce_mean_f32(culora_dist *dist, float *buf, size_t n,
                                                                         culora_stream stream);
/* buf[bytes] on every rank ← root's buf. */
CULORA_API CULORA_NODISCARD culora_status culora_dist_broadcast(culora_dist *dist, void *buf, size_t bytes,
                                                                int32_t root, culora_stream stream);
/* Waits for the communicator's work on stream with error polling and the timeout (NCCL); no-op otherwise. */
CULORA_API CULORA_NODISCARD culora_status culora_dist_wait(culora_dist *dist, culora_stream stream);
CULORA_API CULORA_NODISCARD culora_status culora_dist_barrier(culora_dist *dist);
/* all[r] (host, [world size]) ← the value rank r passed, on every rank (small host-side exchanges:
 * token counts, loss sums as double bits). */
CULORA_API CULORA_NODISCARD culora_status culora_dist_allgather_u64(culora_dist *dist, uint64_t value, uint64_t *all);
/* Every rank passes a value (e.g. a checksum of replicated weights); CULORA_ERR_MISMATCH on every
 * rank, naming `what`, the first differing rank and both values, when they are not all equal. */
CULORA_API CULORA_NODISCARD culora_status culora_dist_check_same(culora_dist *dist, uint64_t value, const char *what);
/* Ends the whole job after an error on this rank (MPI_Abort / ncclCommAbort / closes the sockets so
 * peers fail fast). Does not return for MPI. */
CULORA_API void culora_dist_abort(culora_dist *dist, int exit_code);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_DIST_H */
