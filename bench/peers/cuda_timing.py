"""cuda_timing.py — the CUDA-event timer the Python peer benchmarks share.

median_ms(fn, warmup, samples, inner=1): calls fn(i) `warmup` times, then times `samples` batches of
`inner` back-to-back calls between two CUDA events; returns the median per-call time in ms. fn gets
a running index so that it can rotate among several input sets.
"""
import statistics

import torch


def median_ms(fn, warmup, samples, inner=1):
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    times = []
    for s in range(samples):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(inner):
            fn(s * inner + i)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / inner)
    return statistics.median(times)
