/*
 * dist_tcp.c — the MPI-free communicator for the CPU backend, for torchrun-style launches
 * (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). A star: rank 0 listens at MASTER_PORT, every
 * other rank connects to it. Rank 0 sums buffers in rank order 0, 1, ..., so results are
 * deterministic and identical on every rank.
 *
 * Every collective starts with each rank announcing {op, bytes, root} to rank 0, and every
 * message carries {magic, op, sequence number, bytes}, so ranks that call different collectives
 * fail with CULORA_ERR_MISMATCH instead of waiting for each other or corrupting data. Every wait is bounded by
 * the timeout (poll). A closed connection gives CULORA_ERR_PEER naming the rank; rank 0 then
 * closes all connections so every rank ends with an error. Sizes are LoRA-gradient-sized (MBs):
 * the star is simple, not bandwidth-optimal.
 */
#define _POSIX_C_SOURCE 200809L
#include "dist_internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define TCP_MAGIC 0x43554c44u /* "CULD" */

enum { OP_HELLO = 1, OP_READY, OP_ALLREDUCE, OP_BROADCAST, OP_GATHER };

struct msg_header {
    uint32_t magic, op;
    uint64_t seq, bytes;
};

struct tcp_state {
    int listen_fd;
    int *fds;       /* rank 0: fds[r] for r >= 1; other ranks: fds[0] is the link to rank 0 */
    uint64_t seq;
    bool broken;    /* a link failed: every later call fails at once */
    float *acc;     /* rank 0 scratch for reductions */
    size_t acc_n;
};

static struct tcp_state *st(culora_dist *d) { return (struct tcp_state *)d->state; }

/* ---- byte transport with deadlines --------------------------------------------------------- */

static culora_status io_fail(culora_dist *d, int32_t peer, bool timeout, const char *what)
{
    st(d)->broken = true;
    if (timeout)
        return culora_fail(d->ctx, CULORA_ERR_TIMEOUT,
                           "tcp communicator: rank %d: no %s from rank %d within %.0f s (dead or hung peer?)", (int)d->rank,
                           what, (int)peer, d->timeout_s);
    return culora_fail(d->ctx, CULORA_ERR_PEER, "tcp communicator: rank %d: lost connection to rank %d during %s (%s)",
                       (int)d->rank, (int)peer, what, errno ? strerror(errno) : "closed by peer");
}

static culora_status send_all(culora_dist *d, int fd, int32_t peer, const void *buf, size_t n, double deadline,
                              const char *what)
{
    const char *p = buf;
    while (n > 0) {
        double left = deadline - dist_now();
        if (left <= 0)
            return io_fail(d, peer, true, what);
        struct pollfd pfd = {fd, POLLOUT, 0};
        int r = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue; /* loop re-checks the deadline */
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            return io_fail(d, peer, false, what);
        p += k;
        n -= (size_t)k;
    }
    return CULORA_OK;
}

static culora_status recv_all(culora_dist *d, int fd, int32_t peer, void *buf, size_t n, double deadline,
                              const char *what)
{
    char *p = buf;
    while (n > 0) {
        double left = deadline - dist_now();
        if (left <= 0)
            return io_fail(d, peer, true, what);
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = 0;
            return io_fail(d, peer, false, what);
        }
        p += k;
        n -= (size_t)k;
    }
    return CULORA_OK;
}

static const char *op_name(uint32_t op)
{
    switch (op) {
    case OP_ALLREDUCE: return "allreduce";
    case OP_BROADCAST: return "broadcast";
    case OP_GATHER: return "allgather/barrier/check";
    case OP_HELLO: return "hello";
    case OP_READY: return "ready";
    default: return "?";
    }
}

static culora_status send_msg(culora_dist *d, int32_t peer, uint32_t op, const void *buf, size_t bytes, double deadline)
{
    struct msg_header h = {TCP_MAGIC, op, st(d)->seq, bytes};
    int fd = d->rank == 0 ? st(d)->fds[peer] : st(d)->fds[0];
    CULORA_TRY(send_all(d, fd, peer, &h, sizeof h, deadline, op_name(op)));
    return bytes ? send_all(d, fd, peer, buf, bytes, deadline, op_name(op)) : CULORA_OK;
}

/* Receives a message of op and exactly `bytes` into buf. */
static culora_status recv_msg(culora_dist *d, int32_t peer, uint32_t op, void *buf, size_t bytes, double deadline)
{
    struct msg_header h;
    int fd = d->rank == 0 ? st(d)->fds[peer] : st(d)->fds[0];
    CULORA_TRY(recv_all(d, fd, peer, &h, sizeof h, deadline, op_name(op)));
    if (h.magic != TCP_MAGIC) {
        st(d)->broken = true;
        return culora_fail(d->ctx, CULORA_ERR_PEER, "tcp communicator: rank %d: garbage from rank %d (bad magic)",
                           (int)d->rank, (int)peer);
    }
    if (h.op != op || h.seq != st(d)->seq || h.bytes != bytes) {
        st(d)->broken = true;
        return culora_fail(d->ctx, CULORA_ERR_MISMATCH,
                           "tcp communicator: rank %d called %s #%llu (%llu bytes) while rank %d called %s #%llu (%llu "
                           "bytes): ranks are out of step",
                           (int)d->rank, op_name(op), (unsigned long long)st(d)->seq, (unsigned long long)bytes,
                           (int)peer, op_name(h.op), (unsigned long long)h.seq, (unsigned long long)h.bytes);
    }
    return bytes ? recv_all(d, fd, peer, buf, bytes, deadline, op_name(op)) : CULORA_OK;
}

/* After an error on rank 0, close every link so the other ranks fail fast instead of timing out. */
static culora_status root_fail(culora_dist *d, culora_status s)
{
    if (d->rank == 0 && s != CULORA_OK)
        for (int32_t r = 1; r < d->world; r++)
            if (st(d)->fds[r] >= 0) {
                close(st(d)->fds[r]);
                st(d)->fds[r] = -1;
            }
    return s;
}

/* Starts a collective: every rank announces (op, bytes, root) to rank 0, which checks that all
 * ranks are in the same collective before any data moves, so ranks out of step are reported as
 * such instead of waiting for each other until the timeout. */
static culora_status begin(culora_dist *d, uint32_t op, uint64_t bytes, int32_t root, double deadline)
{
    if (st(d)->broken)
        return culora_fail(d->ctx, CULORA_ERR_PEER,
                           "tcp communicator: rank %d: an earlier failure broke the job; call culora_dist_abort",
                           (int)d->rank);
    st(d)->seq++;
    const uint64_t what[2] = {bytes, (uint64_t)(int64_t)root};
    if (d->rank != 0)
        return send_msg(d, 0, op, what, sizeof what, deadline);
    for (int32_t r = 1; r < d->world; r++) {
        uint64_t theirs[2];
        culora_status e = recv_msg(d, r, op, theirs, sizeof theirs, deadline);
        if (e == CULORA_OK && (theirs[0] != what[0] || theirs[1] != what[1]))
            e = culora_fail(d->ctx, CULORA_ERR_MISMATCH,
                            "tcp communicator: rank %d called %s with %llu bytes (root %lld) while rank 0 passed %llu "
                            "bytes (root %lld): ranks are out of step",
                            (int)r, op_name(op), (unsigned long long)theirs[0], (long long)(int64_t)theirs[1],
                            (unsigned long long)what[0], (long long)(int64_t)what[1]);
        if (e != CULORA_OK)
            return root_fail(d, e);
    }
    return CULORA_OK;
}

/* ---- collectives --------------------------------------------------------------------------- */

static culora_status tcp_allreduce(culora_dist *d, float *buf, size_t n, culora_stream stream)
{
    (void)stream;
    const double deadline = dist_now() + d->timeout_s;
    const size_t bytes = n * sizeof(float);
    CULORA_TRY(begin(d, OP_ALLREDUCE, bytes, 0, deadline));
    if (d->rank != 0) {
        CULORA_TRY(send_msg(d, 0, OP_ALLREDUCE, buf, bytes, deadline));
        return recv_msg(d, 0, OP_ALLREDUCE, buf, bytes, deadline);
    }
    struct tcp_state *s = st(d);
    if (s->acc_n < n) {
        float *a = realloc(s->acc, bytes);
        if (a == NULL)
            return root_fail(d, culora_fail(d->ctx, CULORA_ERR_OUT_OF_MEMORY, "tcp communicator: out of memory"));
        s->acc = a;
        s->acc_n = n;
    }
    for (int32_t r = 1; r < d->world; r++) { /* sum in rank order: deterministic */
        culora_status e = recv_msg(d, r, OP_ALLREDUCE, s->acc, bytes, deadline);
        if (e != CULORA_OK)
            return root_fail(d, e);
        for (size_t i = 0; i < n; i++)
            buf[i] += s->acc[i];
    }
    const float inv = 1.0f / (float)d->world;
    for (size_t i = 0; i < n; i++)
        buf[i] *= inv;
    for (int32_t r = 1; r < d->world; r++) {
        culora_status e = send_msg(d, r, OP_ALLREDUCE, buf, bytes, deadline);
        if (e != CULORA_OK)
            return root_fail(d, e);
    }
    return CULORA_OK;
}

static culora_status tcp_broadcast(culora_dist *d, void *buf, size_t bytes, int32_t root, culora_stream stream)
{
    (void)stream;
    const double deadline = dist_now() + d->timeout_s;
    CULORA_TRY(begin(d, OP_BROADCAST, bytes, root, deadline));
    if (d->rank != 0) {
        if (d->rank == root)
            return send_msg(d, 0, OP_BROADCAST, buf, bytes, deadline);
        return recv_msg(d, 0, OP_BROADCAST, buf, bytes, deadline);
    }
    if (root != 0) {
        culora_status e = recv_msg(d, root, OP_BROADCAST, buf, bytes, deadline);
        if (e != CULORA_OK)
            return root_fail(d, e);
    }
    for (int32_t r = 1; r < d->world; r++) {
        if (r == root)
            continue;
        culora_status e = send_msg(d, r, OP_BROADCAST, buf, bytes, deadline);
        if (e != CULORA_OK)
            return root_fail(d, e);
    }
    return CULORA_OK;
}

static culora_status tcp_allgather(culora_dist *d, uint64_t v, uint64_t *all)
{
    const double deadline = dist_now() + d->timeout_s;
    const size_t bytes = (size_t)d->world * sizeof(uint64_t);
    CULORA_TRY(begin(d, OP_GATHER, bytes, 0, deadline));
    if (d->rank != 0) {
        CULORA_TRY(send_msg(d, 0, OP_GATHER, &v, sizeof v, deadline));
        return recv_msg(d, 0, OP_GATHER, all, bytes, deadline);
    }
    all[0] = v;
    for (int32_t r = 1; r < d->world; r++) {
        culora_status e = recv_msg(d, r, OP_GATHER, &all[r], sizeof(uint64_t), deadline);
        if (e != CULORA_OK)
            return root_fail(d, e);
    }
    for (int32_t r = 1; r < d->world; r++) {
        culora_status e = send_msg(d, r, OP_GATHER, all, bytes, deadline);
        if (e != CULORA_OK)
            return root_fail(d, e);
    }
    return CULORA_OK;
}

static culora_status tcp_barrier(culora_dist *d)
{
    uint64_t *all = calloc((size_t)d->world, sizeof *all);
    if (all == NULL)
        return culora_fail(d->ctx, CULORA_ERR_OUT_OF_MEMORY, "tcp communicator: out of memory");
    culora_status s = tcp_allgather(d, 0, all);
    free(all);
    return s;
}

static void close_all(struct tcp_state *s, int32_t world)
{
    for (int32_t r = 0; r < world; r++)
        if (s->fds[r] >= 0) {
            close(s->fds[r]);
            s->fds[r] = -1;
        }
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
    }
}

static void tcp_abort(culora_dist *d, int exit_code)
{
    (void)exit_code; /* the caller exits; closing the links makes every peer fail at once */
    st(d)->broken = true;
    close_all(st(d), d->world);
}

static void tcp_destroy(culora_dist *d)
{
    struct tcp_state *s = st(d);
    if (s == NULL)
        return;
    close_all(s, d->world);
    free(s->fds);
    free(s->acc);
    free(s);
    d->state = NULL;
}

static const struct dist_impl_i tcp_impl = {
    .name = "tcp",
    .destroy = tcp_destroy,
    .allreduce_mean_f32 = tcp_allreduce,
    .broadcast = tcp_broadcast,
    .wait = NULL,
    .barrier = tcp_barrier,
    .allgather_u64 = tcp_allgather,
    .abort = tcp_abort,
};

/* ---- rendezvous ------------------------------------------------------------------------------ */

struct hello {
    uint32_t magic;
    int32_t rank, world;
};

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static culora_status root_listen(culora_dist *d, const culora_dist_params *p, double deadline)
{
    struct tcp_state *s = st(d);
    char port[16];
    snprintf(port, sizeof port, "%d", (int)p->env.master_port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(NULL, port, &hints, &res);
    if (gai != 0)
        return culora_fail(d->ctx, CULORA_ERR_IO, "tcp communicator: rank 0 cannot resolve port %s: %s", port,
                           gai_strerror(gai));
    s->listen_fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    int one = 1;
    if (s->listen_fd >= 0)
        setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->listen_fd < 0 || bind(s->listen_fd, res->ai_addr, res->ai_addrlen) != 0 || listen(s->listen_fd, d->world) != 0) {
        int e = errno;
        freeaddrinfo(res);
        return culora_fail(d->ctx, CULORA_ERR_IO, "tcp communicator: rank 0 cannot listen on port %s (MASTER_PORT): %s",
                           port, strerror(e));
    }
    freeaddrinfo(res);
    for (int32_t joined = 1; joined < d->world;) {
        double left = deadline - dist_now();
        if (left <= 0)
            return culora_fail(d->ctx, CULORA_ERR_TIMEOUT,
                               "tcp communicator: only %d of %d ranks joined rank 0 on port %s within %.0f s", (int)joined,
                               (int)d->world, port, d->timeout_s);
        struct pollfd pfd = {s->listen_fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        set_nodelay(fd);
        struct hello h;
        culora_status e = recv_all(d, fd, -1, &h, sizeof h, deadline, "hello");
        if (e != CULORA_OK || h.magic != TCP_MAGIC) {
            close(fd); /* not one of ours (a port scanner, a stale run): ignore it */
            st(d)->broken = false;
            continue;
        }
        if (h.world != d->world || h.rank < 1 || h.rank >= d->world || s->fds[h.rank] >= 0) {
            close(fd);
            return culora_fail(d->ctx, CULORA_ERR_MISMATCH,
                               "tcp communicator: a process joined as rank %d of %d, but this job has world size %d%s",
                               (int)h.rank, (int)h.world, (int)d->world,
                               h.rank >= 1 && h.rank < d->world && s->fds[h.rank] >= 0 ? " and that rank already joined" : "");
        }
        s->fds[h.rank] = fd;
        joined++;
    }
    for (int32_t r = 1; r < d->world; r++) /* everyone is here */
        CULORA_TRY(root_fail(d, send_msg(d, r, OP_READY, NULL, 0, deadline)));
    return CULORA_OK;
}

static culora_status join_root(culora_dist *d, const culora_dist_params *p, double deadline)
{
    struct tcp_state *s = st(d);
    const char *host = p->env.master_addr[0] ? p->env.master_addr : "127.0.0.1";
    char port[16];
    snprintf(port, sizeof port, "%d", (int)p->env.master_port);
    for (;;) { /* rank 0 may not be listening yet: retry until the deadline */
        if (dist_now() > deadline)
            return culora_fail(d->ctx, CULORA_ERR_TIMEOUT,
                               "tcp communicator: rank %d could not reach rank 0 at %s:%s (MASTER_ADDR:MASTER_PORT) "
                               "within %.0f s",
                               (int)d->rank, host, port, d->timeout_s);
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        int gai = getaddrinfo(host, port, &hints, &res);
        if (gai != 0)
            return culora_fail(d->ctx, CULORA_ERR_IO, "tcp communicator: cannot resolve MASTER_ADDR %s: %s", host,
                               gai_strerror(gai));
        int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
        int ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
        freeaddrinfo(res);
        if (ok) {
            set_nodelay(fd);
            s->fds[0] = fd;
            break;
        }
        if (fd >= 0)
            close(fd);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    const struct hello h = {TCP_MAGIC, d->rank, d->world};
    CULORA_TRY(send_all(d, s->fds[0], 0, &h, sizeof h, deadline, "hello"));
    return recv_msg(d, 0, OP_READY, NULL, 0, deadline);
}

culora_status dist_tcp_create(culora_dist *d, const culora_dist_params *p)
{
    struct tcp_state *s = calloc(1, sizeof *s);
    int *fds = malloc((size_t)d->world * sizeof *fds);
    if (s == NULL || fds == NULL) {
        free(s);
        free(fds);
        return culora_fail(d->ctx, CULORA_ERR_OUT_OF_MEMORY, "tcp communicator: out of memory");
    }
    for (int32_t r = 0; r < d->world; r++)
        fds[r] = -1;
    s->fds = fds;
    s->listen_fd = -1;
    d->state = s;
    d->impl = &tcp_impl;
    const double deadline = dist_now() + d->timeout_s;
    culora_status e = d->rank == 0 ? root_listen(d, p, deadline) : join_root(d, p, deadline);
    if (e != CULORA_OK) {
        tcp_destroy(d);
        d->impl = NULL;
        return e;
    }
    close(s->listen_fd); /* everyone joined */
    s->listen_fd = -1;
    return CULORA_OK;
}
