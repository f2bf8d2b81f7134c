/*
 * loader.c — culora_loader: the rows of a dataset in a seeded order per epoch, cut into global
 * batches of world_size × batch_size rows; rank r takes the r-th block of batch_size rows of
 * each global batch. The order of epoch e is a Fisher–Yates shuffle driven by SplitMix64
 * seeded from (seed, e), so it depends on nothing but the seed, the epoch and the row count:
 * every rank computes the same permutation, and a restored position gives the same batches.
 */
#include "data/dataset.h"

#include <stdlib.h>
#include <string.h>

struct culora_loader {
    const culora_dataset *ds;
    culora_loader_params p;
    uint64_t steps_per_epoch;
    uint64_t epoch, step;   /* of the next batch */
    int64_t *perm;          /* rows in the order of perm_epoch */
    uint64_t perm_epoch;
    bool perm_valid;
};

/* ---- seeded permutation ----------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias (rejection). */
static uint64_t uniform(uint64_t *state, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound; /* 2^64 mod bound */
    for (;;) {
        uint64_t r = splitmix64(state);
        if (r >= threshold)
            return r % bound;
    }
}

static void build_perm(culora_loader *ld, uint64_t epoch)
{
    int64_t n = ld->ds->n_rows;
    for (int64_t i = 0; i < n; i++)
        ld->perm[i] = i;
    if (ld->p.shuffle) {
        uint64_t state = ld->p.seed;
        uint64_t mixed = splitmix64(&state) ^ epoch;
        state = mixed;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)uniform(&state, (uint64_t)i + 1);
            int64_t t = ld->perm[i];
            ld->perm[i] = ld->perm[j];
            ld->perm[j] = t;
        }
    }
    ld->perm_epoch = epoch;
    ld->perm_valid = true;
}

/* ---- create / destroy ------------------------------------------------------------------- */

culora_status culora_loader_create(culora_context *ctx, const culora_dataset *ds, const culora_loader_params *p,
                                   culora_loader **out)
{
    if (ds == NULL || p == NULL || out == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_loader_create: NULL argument");
    *out = NULL;
    if (p->struct_size != sizeof(culora_loader_params) || p->api_version != CULORA_API_VERSION)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_loader_create: params not initialised with CULORA_LOADER_PARAMS_INIT "
                           "(struct_size %u, api_version %u; expected %zu, %u)",
                           p->struct_size, p->api_version, sizeof(culora_loader_params), CULORA_API_VERSION);
    if (p->batch_size < 1 || p->world_size < 1 || p->rank < 0 || p->rank >= p->world_size)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_loader_params: batch_size %d, rank %d, world_size %d (need batch_size >= 1, "
                           "0 <= rank < world_size)",
                           (int)p->batch_size, (int)p->rank, (int)p->world_size);
    uint64_t global = (uint64_t)p->batch_size * (uint64_t)p->world_size;
    uint64_t n = (uint64_t)ds->n_rows;
    uint64_t steps = p->drop_last ? n / global : (n + global - 1) / global;
    if (steps == 0)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG,
                           "culora_loader_create: the dataset has %llu rows, fewer than one global batch of "
                           "world_size × batch_size = %llu, and drop_last is set",
                           (unsigned long long)n, (unsigned long long)global);
    culora_loader *ld = calloc(1, sizeof *ld);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    if (ld == NULL || perm == NULL) {
        free(ld);
        free(perm);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory allocating a loader over %llu rows",
                           (unsigned long long)n);
    }
    ld->ds = ds;
    ld->p = *p;
    ld->p.shuffle = p->shuffle != 0;
    ld->p.drop_last = p->drop_last != 0;
    ld->steps_per_epoch = steps;
    ld->perm = perm;
    *out = ld;
    return CULORA_OK;
}

void culora_loader_destroy(culora_loader *ld)
{
    if (ld == NULL)
        return;
    free(ld->perm);
    free(ld);
}

uint64_t culora_loader_steps_per_epoch(const culora_loader *ld) { return ld->steps_per_epoch; }
int32_t culora_loader_batch_size(const culora_loader *ld) { return ld ? ld->p.batch_size : 0; }
int32_t culora_loader_seq_len(const culora_loader *ld) { return ld ? culora_dataset_seq_len(ld->ds) : 0; }

/* ---- batches ---------------------------------------------------------------------------- */

culora_status culora_loader_next(culora_context *ctx, culora_loader *ld, culora_batch *batch)
{
    if (ld == NULL || batch == NULL || batch->input_ids == NULL || batch->target_ids == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_loader_next: NULL loader, batch or id arrays");
    if (ld->step >= ld->steps_per_epoch) {
        ld->epoch++;
        ld->step = 0;
    }
    if (!ld->perm_valid || ld->perm_epoch != ld->epoch)
        build_perm(ld, ld->epoch);
    const culora_dataset *ds = ld->ds;
    int32_t T = ds->seq_len, B = ld->p.batch_size;
    uint64_t first = (ld->step * (uint64_t)ld->p.world_size + (uint64_t)ld->p.rank) * (uint64_t)B;
    batch->n_rows = 0;
    batch->n_loss_tokens = 0;
    for (int32_t b = 0; b < B; b++) {
        size_t off = (size_t)b * (size_t)T;
        uint8_t *mask = batch->loss_mask ? batch->loss_mask + off : NULL;
        uint64_t pos = first + (uint64_t)b;
        if (pos < (uint64_t)ds->n_rows) {
            int64_t row = ld->perm[pos], n_loss;
            culora_dataset_fill_row(ds, row, batch->input_ids + off, batch->target_ids + off, mask, &n_loss);
            batch->n_loss_tokens += n_loss;
            batch->n_rows++;
            if (batch->row_ids)
                batch->row_ids[b] = row;
        } else { /* padding row of the last, incomplete global batch */
            for (int32_t t = 0; t < T; t++) {
                batch->input_ids[off + (size_t)t] = ds->pad_id;
                batch->target_ids[off + (size_t)t] = CULORA_IGNORE_INDEX;
            }
            if (mask)
                memset(mask, 0, (size_t)T);
            if (batch->row_ids)
                batch->row_ids[b] = -1;
        }
    }
    batch->epoch = ld->epoch;
    batch->step = ld->step;
    ld->step++;
    return CULORA_OK;
}

/* ---- position --------------------------------------------------------------------------- */

void culora_loader_get_position(const culora_loader *ld, culora_data_position *pos)
{
    memset(pos, 0, sizeof *pos);
    pos->epoch = ld->epoch;
    pos->step = ld->step;
    if (pos->step >= ld->steps_per_epoch) { /* the next batch starts the next epoch */
        pos->epoch++;
        pos->step = 0;
    }
    pos->seed = ld->p.seed;
    pos->fingerprint = ld->ds->fingerprint;
    pos->num_rows = (uint64_t)ld->ds->n_rows;
    pos->batch_size = ld->p.batch_size;
    pos->world_size = ld->p.world_size;
    pos->shuffle = ld->p.shuffle;
    pos->drop_last = ld->p.drop_last;
}

culora_status culora_loader_set_position(culora_context *ctx, culora_loader *ld, const culora_data_position *pos)
{
    if (ld == NULL || pos == NULL)
        return culora_fail(ctx, CULORA_ERR_INVALID_ARG, "culora_loader_set_position: NULL argument");
    culora_data_position cur;
    culora_loader_get_position(ld, &cur);
    const char *why = "data position";
    if (pos->fingerprint != cur.fingerprint || pos->num_rows != cur.num_rows)
        return culora_fail(ctx, CULORA_ERR_MISUSE,
                           "%s: saved for other data (%llu rows, fingerprint %016llx; this dataset: %llu rows, "
                           "%016llx): the files, tokenizer or dataset settings changed",
                           why, (unsigned long long)pos->num_rows, (unsigned long long)pos->fingerprint,
                           (unsigned long long)cur.num_rows, (unsigned long long)cur.fingerprint);
    if (pos->seed != cur.seed)
        return culora_fail(ctx, CULORA_ERR_MISUSE, "%s: saved with seed %llu, this loader has seed %llu", why,
                           (unsigned long long)pos->seed, (unsigned long long)cur.seed);
    if (pos->batch_size != cur.batch_size || pos->world_size != cur.world_size)
        return culora_fail(ctx, CULORA_ERR_MISUSE,
                           "%s: saved with batch_size %d × world_size %d, this loader has %d × %d", why,
                           (int)pos->batch_size, (int)pos->world_size, (int)cur.batch_size, (int)cur.world_size);
    if ((pos->shuffle != 0) != cur.shuffle || (pos->drop_last != 0) != cur.drop_last)
        return culora_fail(ctx, CULORA_ERR_MISUSE, "%s: saved with shuffle %d drop_last %d, this loader has %d %d",
                           why, (int)pos->shuffle, (int)pos->drop_last, (int)cur.shuffle, (int)cur.drop_last);
    if (pos->step >= ld->steps_per_epoch)
        return culora_fail(ctx, CULORA_ERR_MISUSE, "%s: step %llu is past the end of an epoch of %llu steps", why,
                           (unsigned long long)pos->step, (unsigned long long)ld->steps_per_epoch);
    ld->epoch = pos->epoch;
    ld->step = pos->step;
    return CULORA_OK;
}
