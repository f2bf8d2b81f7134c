/*
 * blas_core.c — OPENBLAS_CORETYPE from the CPU's features when OpenBLAS's detection fell short
 * (see blas_core.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "blas_core.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The OpenBLAS core names that run AVX-512 (resp. at least AVX2) sgemm kernels. */
static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
static const char *const avx2_cores[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", NULL};

static int listed(const char *name, const char *const *list)
{
    for (int i = 0; list[i] != NULL; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

void cli_blas_pick_core(char **argv)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (getenv("OPENBLAS_CORETYPE") != NULL) /* the user's choice, or we already re-executed */
        return;
    __builtin_cpu_init();
    const char *want = NULL;
    const char *const *good = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        want = "SkylakeX";
        good = avx512_cores;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        want = "Haswell";
        good = avx2_cores;
    }
    const char *core = openblas_get_corename();
    if (want == NULL || core == NULL || listed(core, good))
        return;
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on with OpenBLAS's choice */
#else
    (void)argv;
#endif
}
