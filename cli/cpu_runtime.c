/*
 * cpu_runtime.c — OPENBLAS_CORETYPE from the CPU's features when OpenBLAS's detection fell short,
 * and OpenMP's passive waiting (see cpu_runtime.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cpu_runtime.h"

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

/* The OpenBLAS core to ask for, or NULL when OpenBLAS's own choice is good (or was the user's). */
static const char *core_to_set(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (getenv("OPENBLAS_CORETYPE") != NULL) /* the user's choice, or we already re-executed */
        return NULL;
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
        return NULL;
    return want;
#else
    return NULL;
#endif
}

void cli_cpu_runtime(char **argv)
{
    const char *core = core_to_set();
    const int set_core = core != NULL && setenv("OPENBLAS_CORETYPE", core, 1) == 0;
    const int set_wait = getenv("OMP_WAIT_POLICY") == NULL && setenv("OMP_WAIT_POLICY", "passive", 1) == 0;
    if (!set_core && !set_wait)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the settings this process already has */
    if (set_core)
        unsetenv("OPENBLAS_CORETYPE");
    if (set_wait)
        unsetenv("OMP_WAIT_POLICY");
}
