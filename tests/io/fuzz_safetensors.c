/*
 * fuzz_safetensors.c — libFuzzer target for the safetensors parser (host/io/safetensors_parse.c).
 * Each input is a whole file held in memory. A parse that succeeds is walked: every tensor's bytes
 * are read (a read outside the input is an AddressSanitizer report) and float tensors are
 * converted. Built by -DCULORA_FUZZ=ON with clang; run by scripts/fuzz-safetensors.sh. The corpus
 * and any crash inputs live in tests/data/fuzz/safetensors/ and are replayed by test_io.
 */
#include "io/io_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static culora_context *fuzz_ctx; /* one context for the messages, created once per process */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    p.backend = CULORA_BACKEND_CPU;
    p.workspace_bytes = 64;
    if (culora_context_create(&p, &fuzz_ctx) != CULORA_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy of exactly size bytes, so ASan catches any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    culora_st_file f;
    memset(&f, 0, sizeof f);
    culora_status s = culora_st_parse(fuzz_ctx, "fuzz", buf, size, &f);
    if (s != CULORA_OK && s != CULORA_ERR_FORMAT && s != CULORA_ERR_OUT_OF_MEMORY)
        abort(); /* the parser reports defects only as FORMAT */
    if (s == CULORA_OK) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < f.n_tensors; i++) {
            const culora_tensor_info *t = &f.tensors[i].info;
            for (uint64_t b = 0; b < t->n_bytes; b++)
                sink ^= ((const uint8_t *)t->data)[b];
            if ((t->dtype == CULORA_ST_F32 || t->dtype == CULORA_ST_F16 || t->dtype == CULORA_ST_BF16 ||
                 t->dtype == CULORA_ST_F64) && t->n_elems <= 4096) {
                float out[4096];
                if (culora_tensor_read(fuzz_ctx, t, CULORA_DTYPE_F32, out, (size_t)t->n_elems * sizeof(float)) !=
                    CULORA_OK)
                    abort();
            }
        }
        for (size_t i = 0; i < f.n_meta; i++)
            sink ^= (uint8_t)strlen(f.meta_keys[i]) ^ (uint8_t)strlen(f.meta_values[i]);
        (void)sink;
    }
    culora_st_file_release(&f); /* not mapped: frees only what the parse allocated */
    free(buf);
    return 0;
}
