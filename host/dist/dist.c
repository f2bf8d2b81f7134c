/*
 * dist.c — launcher discovery, choice of implementation, and the checks every collective makes
 * before an implementation runs it.
 */
#define _POSIX_C_SOURCE 200809L
#include "dist_internal.h"

#include "../backend.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double dist_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- environment ------------------------------------------------------------------------- */

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Parses a decimal int32 in [lo, hi]; missing → dflt. */
static culora_status env_int(culora_context *ctx, char *const *envp, const char *name, int32_t lo, int32_t hi,
                             int32_t dflt, int32_t *out)
{
    const char *v = env_get(envp, name);
    if (v == NULL) {
        *out = dflt;
        return CULORA_OK;
    }
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "launcher environment: %s=\"%s\" is not an integer in [%d, %d]",
                           name, v, (int)lo, (int)hi);
    *out = (int32_t)x;
    return CULORA_OK;
}

culora_status culora_dist_env_parse(culora_context *ctx, char *const *envp, culora_dist_env *out)
{
    if (out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dist_env_parse: out is NULL");
    memset(out, 0, sizeof *out);
    out->world_size = 1;
    out->local_world_size = 1;
    out->master_port = 29500;
    static const struct {
        int32_t launcher;
        const char *rank, *size, *local_rank, *local_size;
    } table[] = {
        {CULORA_LAUNCHER_TORCHRUN, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
        {CULORA_LAUNCHER_OPENMPI, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
         "OMPI_COMM_WORLD_LOCAL_SIZE"},
        {CULORA_LAUNCHER_SLURM, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
        {CULORA_LAUNCHER_PMI, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (env_get(envp, table[i].rank) == NULL || env_get(envp, table[i].size) == NULL)
            continue;
        out->launcher = table[i].launcher;
        CULORA_TRY(env_int(ctx, envp, table[i].size, 1, 1 << 20, 1, &out->world_size));
        CULORA_TRY(env_int(ctx, envp, table[i].rank, 0, out->world_size - 1, 0, &out->rank));
        CULORA_TRY(env_int(ctx, envp, table[i].local_rank, 0, out->world_size - 1, 0, &out->local_rank));
        /* Slurm's tasks-per-node can read "4(x2)"; only a plain number is used. */
        const char *ls = env_get(envp, table[i].local_size);
        if (ls != NULL && strspn(ls, "0123456789") == strlen(ls) && *ls != '\0')
            CULORA_TRY(env_int(ctx, envp, table[i].local_size, 1, out->world_size, 1, &out->local_world_size));
        else
            out->local_world_size = out->world_size;
        break;
    }
    const char *addr = env_get(envp, "MASTER_ADDR");
    if (addr != NULL) {
        if (strlen(addr) >= sizeof out->master_addr)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "launcher environment: MASTER_ADDR is longer than %zu bytes",
                               sizeof out->master_addr - 1);
        snprintf(out->master_addr, sizeof out->master_addr, "%s", addr);
    }
    CULORA_TRY(env_int(ctx, envp, "MASTER_PORT", 1, 65535, 29500, &out->master_port));
    /* Under torchrun's static rendezvous its agent already listens at MASTER_PORT (the c10d store
     * the workers are meant to join, TORCHELASTIC_USE_AGENT_STORE=True): rendezvous one port up. */
    const char *agent = env_get(envp, "TORCHELASTIC_USE_AGENT_STORE");
    if (agent != NULL && strcmp(agent, "True") == 0) {
        if (out->master_port == 65535)
            return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                               "launcher environment: MASTER_PORT=65535 is torchrun's store; culora needs the next port");
        out->master_port++;
    }
    return CULORA_OK;
}

/* ---- create / destroy ---------------------------------------------------------------------- */

static int32_t choose_kind(culora_context *ctx, const culora_dist_params *p)
{
    if (p->kind != CULORA_DIST_AUTO)
        return p->kind;
    if (p->env.world_size <= 1 && p->nccl_comm == NULL)
        return CULORA_DIST_NONE;
    if (culora_context_backend(ctx) == CULORA_BACKEND_CUDA)
        return CULORA_DIST_NCCL;
    if (p->env.launcher == CULORA_LAUNCHER_TORCHRUN)
        return CULORA_DIST_TCP;
    return CULORA_DIST_MPI;
}

culora_status culora_dist_create(culora_context *ctx, const culora_dist_params *p, culora_dist **out)
{
    CULORA_TRY(culora_context_check(ctx));
    if (out == NULL || p == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dist_create: %s is NULL", out ? "params" : "out");
    *out = NULL;
    if (p->struct_size != sizeof(culora_dist_params) || p->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_dist_create: params not initialised with CULORA_DIST_PARAMS_INIT");
    if (p->env.world_size < 1 || p->env.rank < 0 || p->env.rank >= p->env.world_size)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dist_create: rank %d of world size %d",
                           (int)p->env.rank, (int)p->env.world_size);
    if (p->timeout_s < 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dist_create: timeout_s = %g is negative", p->timeout_s);
    const int32_t kind = choose_kind(ctx, p);
    const bool cpu = culora_context_backend(ctx) == CULORA_BACKEND_CPU;
    if ((kind == CULORA_DIST_MPI || kind == CULORA_DIST_TCP) && !cpu)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "culora_dist_create: the %s communicator moves host memory; "
                                                        "use NCCL with the CUDA backend",
                           kind == CULORA_DIST_MPI ? "MPI" : "TCP");
    if (kind == CULORA_DIST_NCCL && cpu)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED,
                           "culora_dist_create: NCCL needs a CUDA context; use MPI or TCP with the CPU backend");
    if (kind == CULORA_DIST_NONE && p->env.world_size > 1)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_dist_create: kind NONE with world size %d (launched with several ranks?)",
                           (int)p->env.world_size);

    culora_dist *d = calloc(1, sizeof *d);
    if (d == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_dist_create: out of memory");
    d->ctx = ctx;
    d->rank = p->env.rank;
    d->world = p->env.world_size;
    d->local_rank = p->env.local_rank;
    d->timeout_s = p->timeout_s > 0 ? p->timeout_s : 600.0;
    d->env = p->env;
    culora_status s;
    switch (kind) {
    case CULORA_DIST_NONE: s = dist_none_create(d, p); break;
    case CULORA_DIST_TCP: s = dist_tcp_create(d, p); break;
    case CULORA_DIST_MPI: s = dist_mpi_create(d, p); break;
    case CULORA_DIST_NCCL: s = dist_nccl_create(d, p); break;
    default: s = culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_dist_create: unknown kind %d", (int)kind);
    }
    if (s != CULORA_OK) {
        free(d);
        return s;
    }
    *out = d;
    return CULORA_OK;
}

void culora_dist_destroy(culora_dist *d)
{
    if (d == NULL)
        return;
    if (d->impl != NULL && d->impl->destroy != NULL)
        d->impl->destroy(d);
    free(d);
}

int32_t culora_dist_rank(const culora_dist *d) { return d ? d->rank : 0; }
int32_t culora_dist_world_size(const culora_dist *d) { return d ? d->world : 1; }
int32_t culora_dist_local_rank(const culora_dist *d) { return d ? d->local_rank : 0; }
const char *culora_dist_kind_name(const culora_dist *d) { return d && d->impl ? d->impl->name : "none"; }

/* ---- collectives ------------------------------------------------------------------------- */

culora_status culora_dist_allreduce_mean_f32(culora_dist *d, float *buf, size_t n, culora_stream stream)
{
    if (d == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(d->ctx));
    if (n == 0)
        return CULORA_OK;
    if (buf == NULL)
        return culora_fail(d->ctx, CULORA_ERR_INVALID_ARG, "culora_dist_allreduce_mean_f32: buf is NULL");
    return d->impl->allreduce_mean_f32(d, buf, n, stream);
}

culora_status culora_dist_broadcast(culora_dist *d, void *buf, size_t bytes, int32_t root, culora_stream stream)
{
    if (d == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(d->ctx));
    if (root < 0 || root >= d->world)
        return culora_fail(d->ctx, CULORA_ERR_INVALID_ARG, "culora_dist_broadcast: root %d is not a rank of %d",
                           (int)root, (int)d->world);
    if (bytes == 0)
        return CULORA_OK;
    if (buf == NULL)
        return culora_fail(d->ctx, CULORA_ERR_INVALID_ARG, "culora_dist_broadcast: buf is NULL");
    return d->impl->broadcast(d, buf, bytes, root, stream);
}

culora_status culora_dist_wait(culora_dist *d, culora_stream stream)
{
    if (d == NULL)
        return CULORA_ERR_INVALID_ARG;
    return d->impl->wait ? d->impl->wait(d, stream) : CULORA_OK;
}

culora_status culora_dist_barrier(culora_dist *d)
{
    if (d == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(d->ctx));
    return d->impl->barrier(d);
}

culora_status culora_dist_allgather_u64(culora_dist *d, uint64_t value, uint64_t *all)
{
    if (d == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(d->ctx));
    if (all == NULL)
        return culora_fail(d->ctx, CULORA_ERR_INVALID_ARG, "culora_dist_allgather_u64: all is NULL");
    return d->impl->allgather_u64(d, value, all);
}

culora_status culora_dist_check_same(culora_dist *d, uint64_t value, const char *what)
{
    if (d == NULL)
        return CULORA_ERR_INVALID_ARG;
    CULORA_TRY(culora_context_check(d->ctx));
    if (d->world == 1)
        return CULORA_OK;
    uint64_t *all = calloc((size_t)d->world, sizeof *all);
    if (all == NULL)
        return culora_fail(d->ctx, CULORA_ERR_OUT_OF_MEMORY, "culora_dist_check_same: out of memory");
    culora_status s = d->impl->allgather_u64(d, value, all);
    for (int32_t r = 1; s == CULORA_OK && r < d->world; r++)
        if (all[r] != all[0])
            s = culora_fail(d->ctx, CULORA_ERR_MISMATCH,
                            "%s differs across ranks: rank %d has %016" PRIx64 ", rank 0 has %016" PRIx64,
                            what ? what : "value", (int)r, all[r], all[0]);
    free(all);
    return s;
}

void culora_dist_abort(culora_dist *d, int exit_code)
{
    if (d != NULL && d->impl != NULL && d->impl->abort != NULL)
        d->impl->abort(d, exit_code);
}
