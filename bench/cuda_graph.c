/*
 * cuda_graph.c — cuda_graph.h on the CUDA runtime (compiled only when CULORA_CUDA is on).
 */
#include "cuda_graph.h"

#include <cuda_runtime_api.h>

#include <stdio.h>
#include <stdlib.h>

struct bench_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

bool bench_graph_available(void) { return true; }

culora_status bench_graph_capture(culora_stream stream, culora_status (*fn)(void *user), void *user,
                                  bench_graph **out, char *err, size_t err_len)
{
    *out = NULL;
    cudaStream_t st = (cudaStream_t)stream;
    if (st == NULL) {
        /* the legacy default stream cannot be captured */
        snprintf(err, err_len, "no stream to capture (a CPU context, or the legacy default stream)");
        return CULORA_ERR_UNSUPPORTED;
    }
    bench_graph *g = calloc(1, sizeof *g);
    if (g == NULL) {
        snprintf(err, err_len, "out of host memory");
        return CULORA_ERR_OUT_OF_MEMORY;
    }
    cudaError_t e = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        snprintf(err, err_len, "cudaStreamBeginCapture: %s", cudaGetErrorString(e));
        free(g);
        return CULORA_ERR_CUDA;
    }
    const culora_status fs = fn(user);
    e = cudaStreamEndCapture(st, &g->graph); /* always end the capture, also after fn failed */
    if (fs != CULORA_OK || e != cudaSuccess) {
        if (fs == CULORA_OK)
            snprintf(err, err_len, "cudaStreamEndCapture: %s (an op synchronised or allocated inside the capture?)",
                     cudaGetErrorString(e));
        else
            snprintf(err, err_len, "the captured function failed: %s", culora_status_name(fs));
        (void)cudaGetLastError();
        bench_graph_destroy(g);
        return fs != CULORA_OK ? fs : CULORA_ERR_CUDA;
    }
    e = cudaGraphInstantiate(&g->exec, g->graph, 0);
    if (e != cudaSuccess) {
        snprintf(err, err_len, "cudaGraphInstantiate: %s", cudaGetErrorString(e));
        bench_graph_destroy(g);
        return CULORA_ERR_CUDA;
    }
    *out = g;
    return CULORA_OK;
}

culora_status bench_graph_launch(bench_graph *g, culora_stream stream)
{
    return cudaGraphLaunch(g->exec, (cudaStream_t)stream) == cudaSuccess ? CULORA_OK : CULORA_ERR_CUDA;
}

void bench_graph_destroy(bench_graph *g)
{
    if (g == NULL)
        return;
    if (g->exec != NULL)
        cudaGraphExecDestroy(g->exec);
    if (g->graph != NULL)
        cudaGraphDestroy(g->graph);
    free(g);
}
