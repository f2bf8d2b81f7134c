/*
 * cuda_graph_none.c — cuda_graph.h for builds without CUDA: no graphs.
 */
#include "cuda_graph.h"

#include <stdio.h>

bool bench_graph_available(void) { return false; }

culora_status bench_graph_capture(culora_stream stream, culora_status (*fn)(void *user), void *user,
                                  bench_graph **out, char *err, size_t err_len)
{
    (void)stream;
    (void)fn;
    (void)user;
    *out = NULL;
    snprintf(err, err_len, "this build has no CUDA runtime (CULORA_CUDA=OFF)");
    return CULORA_ERR_UNSUPPORTED;
}

culora_status bench_graph_launch(bench_graph *g, culora_stream stream)
{
    (void)g;
    (void)stream;
    return CULORA_ERR_UNSUPPORTED;
}

void bench_graph_destroy(bench_graph *g) { (void)g; }
