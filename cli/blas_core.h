/*
 * blas_core.h — picks OpenBLAS's CPU kernels before the program does any work (programs only:
 * the culora CLI and the benchmarks; the library never reads or changes the environment).
 */
#ifndef CULORA_CLI_BLAS_CORE_H
#define CULORA_CLI_BLAS_CORE_H

/* OpenBLAS 0.3.21's runtime detection (Debian 12's) takes CPUs it does not know — Sapphire Rapids
 * under a hypervisor — for a Prescott and runs SSE3 kernels: sgemm 3–6× slower than the AVX-512
 * kernels the CPU can run. OPENBLAS_CORETYPE overrides the choice but is read when OpenBLAS loads,
 * before main. So when it is unset and OpenBLAS chose kernels below what the CPU supports, this sets
 * it (SkylakeX for AVX-512, Haswell for AVX2 + FMA) and re-executes the program once with the same
 * arguments. Returns when nothing needs doing or the re-execution failed (the program then runs
 * with OpenBLAS's own choice). Call it first in main. */
void cli_blas_pick_core(char **argv);

#endif /* CULORA_CLI_BLAS_CORE_H */
