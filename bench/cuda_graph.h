/*
 * cuda_graph.h — CUDA-graph capture and replay for benchmarks, without CUDA headers here: the
 * CUDA build compiles cuda_graph.c (CUDA runtime), the CPU-only build cuda_graph_none.c, whose
 * functions report that graphs are unavailable.
 *
 * bench_graph_capture records everything fn enqueues on `stream` (stream capture, thread-local
 * mode: a synchronising or allocating call inside fn fails the capture) and instantiates it;
 * bench_graph_launch enqueues one replay on the same stream.
 */
#ifndef CULORA_BENCH_CUDA_GRAPH_H
#define CULORA_BENCH_CUDA_GRAPH_H

#include "culora/culora.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct bench_graph bench_graph;

/* True in builds with the CUDA runtime (whether or not a device is present). */
bool bench_graph_available(void);
/* Captures fn(user) on stream into *out. On failure returns a status other than CULORA_OK and
 * writes a message to err (err_len bytes); fn's own failure is returned as is. */
culora_status bench_graph_capture(culora_stream stream, culora_status (*fn)(void *user), void *user,
                                  bench_graph **out, char *err, size_t err_len);
/* Enqueues one replay on stream (does not wait). */
culora_status bench_graph_launch(bench_graph *g, culora_stream stream);
/* NULL: no-op. */
void bench_graph_destroy(bench_graph *g);

#endif /* CULORA_BENCH_CUDA_GRAPH_H */
