/*
 * cpu_runtime.h — sets up the CPU runtime before the program does any work (programs only: the
 * culora CLI and the benchmarks; the library never reads or changes the environment).
 */
#ifndef CULORA_CLI_CPU_RUNTIME_H
#define CULORA_CLI_CPU_RUNTIME_H

/* Two settings that are read when the libraries load, before main, so they are set here and the
 * program re-executes itself once with the same arguments when either changed:
 *  - OPENBLAS_CORETYPE: OpenBLAS 0.3.21's runtime detection (Debian 12's) takes CPUs it does not
 *    know — Sapphire Rapids under a hypervisor — for a Prescott and runs SSE3 kernels: sgemm 3–6×
 *    slower than the AVX-512 kernels the CPU can run. When it is unset and OpenBLAS chose kernels
 *    below what the CPU supports, it is set (SkylakeX for AVX-512, Haswell for AVX2 + FMA).
 *  - OMP_WAIT_POLICY=passive, when unset: the CPU backend alternates OpenMP loops with OpenBLAS
 *    calls that run on OpenBLAS's own threads; OpenMP threads that spin after a loop (GNU OpenMP's
 *    default) take the cores OpenBLAS needs next. Measured on the 2-core development machine
 *    (2026-11-26): a LLaMA-style training step 2.2–2.8× faster with passive waiting.
 * A value the user set is kept. Returns when nothing needs doing or the re-execution failed (the
 * program then runs with the settings it has). Call it first in main. */
void cli_cpu_runtime(char **argv);

#endif /* CULORA_CLI_CPU_RUNTIME_H */
