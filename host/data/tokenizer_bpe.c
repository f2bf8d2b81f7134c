/*
 * tokenizer_bpe.c — byte-level BPE: the vocabulary map, the ranked merge table, the merge loop
 * for one pre-tokenized piece and the whole encode pipeline:
 *
 *   text → split out added tokens (leftmost, longest) → pre-tokenizer pieces (pretokenize.c)
 *        → BPE per piece → ids, with the post-processor template around them.
 *
 * The merge loop is Hugging Face's (tokenizers/src/models/bpe/word.rs): repeatedly merge the
 * adjacent pair with the lowest rank, the leftmost one on ties, using a heap with lazy removal,
 * so a piece of n bytes costs O(n log n) even when it is a megabyte of one character.
 */
#include "data/tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* ---- bytes → id map --------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static culora_status bytemap_grow(culora_context *ctx, culora_bytemap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    int32_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory growing a vocabulary map");
    for (size_t e = 0; e < m->n; e++) {
        uint64_t h = culora_fnv1a(CULORA_FNV_OFFSET, m->arena.v + m->key_off[e], m->key_len[e]);
        size_t i = (size_t)h & (cap - 1);
        while (slots[i] != 0)
            i = (i + 1) & (cap - 1);
        slots[i] = (int32_t)e + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return CULORA_OK;
}

int32_t culora_bytemap_get(const culora_bytemap *m, const void *key, size_t n)
{
    if (m->cap == 0)
        return -1;
    uint64_t h = culora_fnv1a(CULORA_FNV_OFFSET, key, n);
    for (size_t i = (size_t)h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        int32_t e = m->slots[i];
        if (e == 0)
            return -1;
        e--;
        if (m->key_len[e] == n && memcmp(m->arena.v + m->key_off[e], key, n) == 0)
            return m->val[e];
    }
}

culora_status culora_bytemap_put(culora_context *ctx, culora_bytemap *m, const void *key, size_t n, int32_t val)
{
    if ((m->n + 1) * 2 > m->cap)
        CULORA_TRY(bytemap_grow(ctx, m));
    uint64_t h = culora_fnv1a(CULORA_FNV_OFFSET, key, n);
    size_t i = (size_t)h & (m->cap - 1);
    for (; m->slots[i] != 0; i = (i + 1) & (m->cap - 1)) {
        int32_t e = m->slots[i] - 1;
        if (m->key_len[e] == n && memcmp(m->arena.v + m->key_off[e], key, n) == 0) {
            m->val[e] = val;
            return CULORA_OK;
        }
    }
    if (m->n == m->n_cap) {
        size_t c = m->n_cap ? m->n_cap * 2 : 1024;
        uint64_t *off = realloc(m->key_off, c * sizeof *off);
        if (off != NULL)
            m->key_off = off;
        uint32_t *len = realloc(m->key_len, c * sizeof *len);
        if (len != NULL)
            m->key_len = len;
        int32_t *v = realloc(m->val, c * sizeof *v);
        if (v != NULL)
            m->val = v;
        if (off == NULL || len == NULL || v == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory growing a vocabulary map");
        m->n_cap = c;
    }
    m->key_off[m->n] = m->arena.n;
    m->key_len[m->n] = (uint32_t)n;
    m->val[m->n] = val;
    CULORA_TRY(culora_bvec_append(ctx, &m->arena, key, n));
    m->slots[i] = (int32_t)(++m->n);
    return CULORA_OK;
}

void culora_bytemap_free(culora_bytemap *m)
{
    free(m->slots);
    free(m->key_off);
    free(m->key_len);
    free(m->val);
    culora_bvec_free(&m->arena);
    memset(m, 0, sizeof *m);
}

/* ---- vocabulary and merges -------------------------------------------------------------- */

culora_status culora_bpe_add_vocab(culora_context *ctx, culora_tokenizer *tok, int32_t id, const char *s, size_t n,
                                   const char *where)
{
    if (id < 0 || id >= tok->vocab_size)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: token id %d out of range", where, (int)id);
    if (tok->id_flags[id] & CULORA_TOK_PRESENT)
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: token id %d appears twice in the vocabulary", where, (int)id);
    CULORA_TRY(culora_tokenizer_set_id_from_string(ctx, tok, id, s, n, 0));
    uint8_t stack[256];
    uint8_t *raw = n <= sizeof stack ? stack : malloc(n);
    if (raw == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory");
    size_t raw_n;
    culora_status st = CULORA_OK;
    if (culora_unmap_bytes(s, n, raw, &raw_n)) {
        /* Tokens outside the byte map (possible in hand-edited files) can never come out of
         * merges of byte pieces: they stay decodable but are not in the BPE map. */
        if (culora_bytemap_get(&tok->vocab, raw, raw_n) >= 0)
            st = culora_fail(ctx, CULORA_ERR_FORMAT, "%s: token \"%.*s\" appears twice in the vocabulary", where,
                             (int)(n > 64 ? 64 : n), s);
        else
            st = culora_bytemap_put(ctx, &tok->vocab, raw, raw_n, id);
        if (st == CULORA_OK && raw_n == 1)
            tok->byte_id[raw[0]] = id;
    }
    if (raw != stack)
        free(raw);
    return st;
}

static size_t merge_slot(const culora_tokenizer *tok, uint64_t key)
{
    size_t i = (size_t)mix64(key) & (tok->merge_cap - 1);
    while (tok->merge_key[i] != UINT64_MAX && tok->merge_key[i] != key)
        i = (i + 1) & (tok->merge_cap - 1);
    return i;
}

static culora_status merges_grow(culora_context *ctx, culora_tokenizer *tok)
{
    size_t cap = tok->merge_cap ? tok->merge_cap * 2 : 1024;
    uint64_t *key = malloc(cap * sizeof *key);
    int32_t *rank = malloc(cap * sizeof *rank);
    int32_t *nw = malloc(cap * sizeof *nw);
    if (key == NULL || rank == NULL || nw == NULL) {
        free(key), free(rank), free(nw);
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory growing the merge table");
    }
    for (size_t i = 0; i < cap; i++)
        key[i] = UINT64_MAX;
    culora_tokenizer old = *tok;
    tok->merge_key = key, tok->merge_rank = rank, tok->merge_new = nw, tok->merge_cap = cap;
    for (size_t i = 0; i < old.merge_cap; i++) {
        if (old.merge_key[i] == UINT64_MAX)
            continue;
        size_t j = merge_slot(tok, old.merge_key[i]);
        key[j] = old.merge_key[i], rank[j] = old.merge_rank[i], nw[j] = old.merge_new[i];
    }
    free(old.merge_key), free(old.merge_rank), free(old.merge_new);
    return CULORA_OK;
}

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

/* Rank of merging (a, b) and the id it makes, or rank -1. */
static int32_t merge_lookup(const culora_tokenizer *tok, int32_t a, int32_t b, int32_t *new_id)
{
    if (tok->merge_cap == 0)
        return -1;
    size_t i = merge_slot(tok, pair_key(a, b));
    if (tok->merge_key[i] == UINT64_MAX)
        return -1;
    *new_id = tok->merge_new[i];
    return tok->merge_rank[i];
}

static int32_t vocab_id_of_string(const culora_tokenizer *tok, const char *s, size_t n, uint8_t *raw, size_t *raw_n)
{
    if (!culora_unmap_bytes(s, n, raw, raw_n))
        return -1;
    return culora_bytemap_get(&tok->vocab, raw, *raw_n);
}

culora_status culora_bpe_add_merge(culora_context *ctx, culora_tokenizer *tok, const char *left, size_t left_n,
                                   const char *right, size_t right_n, int32_t rank, const char *where)
{
    uint8_t *raw = malloc(left_n + right_n + 1);
    if (raw == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory");
    size_t a_n, b_n;
    culora_status st = CULORA_OK;
    int32_t a = vocab_id_of_string(tok, left, left_n, raw, &a_n);
    int32_t b = a < 0 ? -1 : vocab_id_of_string(tok, right, right_n, raw + a_n, &b_n);
    int32_t ab = b < 0 ? -1 : culora_bytemap_get(&tok->vocab, raw, a_n + b_n);
    free(raw);
    if (a < 0 || b < 0 || ab < 0) {
        const char *what = a < 0 ? "its left part" : b < 0 ? "its right part" : "the merged token";
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: merge \"%.*s %.*s\": %s is not in the vocabulary", where,
                           (int)(left_n > 64 ? 64 : left_n), left, (int)(right_n > 64 ? 64 : right_n), right, what);
    }
    if ((tok->n_merges + 1) * 2 > tok->merge_cap)
        CULORA_TRY(merges_grow(ctx, tok));
    size_t i = merge_slot(tok, pair_key(a, b));
    if (tok->merge_key[i] == UINT64_MAX)
        tok->n_merges++;
    /* A repeated merge takes its last rank, as Hugging Face's merge map and GPT-2's
     * dict(zip(merges, range(...))) do. */
    tok->merge_key[i] = pair_key(a, b);
    tok->merge_rank[i] = rank;
    tok->merge_new[i] = ab;
    return st;
}

culora_status culora_bpe_finish(culora_context *ctx, culora_tokenizer *tok, const char *where)
{
    for (int b = 0; b < 256; b++)
        if (tok->byte_id[b] < 0) {
            uint8_t m[4];
            size_t n = culora_utf8_encode(culora_byte_to_unicode((uint8_t)b), m);
            return culora_fail(ctx, CULORA_ERR_FORMAT,
                               "%s: not a byte-level vocabulary: no token for byte 0x%02x (\"%.*s\")", where, b,
                               (int)n, (const char *)m);
        }
    return CULORA_OK;
}

/* ---- merge loop for one piece ----------------------------------------------------------- */

typedef struct heap_entry {
    int32_t rank;
    int32_t pos;
} heap_entry;

typedef struct bpe_scratch {
    int32_t *sym, *prev, *next;
    heap_entry *heap;
    size_t cap, heap_cap, heap_n;
} bpe_scratch;

static bool heap_less(heap_entry x, heap_entry y) { return x.rank < y.rank || (x.rank == y.rank && x.pos < y.pos); }

static culora_status heap_push(culora_context *ctx, bpe_scratch *s, heap_entry e)
{
    if (s->heap_n == s->heap_cap) {
        size_t c = s->heap_cap ? s->heap_cap * 2 : 64;
        heap_entry *h = realloc(s->heap, c * sizeof *h);
        if (h == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory in BPE");
        s->heap = h, s->heap_cap = c;
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(e, s->heap[p]))
            break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = e;
    return CULORA_OK;
}

static heap_entry heap_pop(bpe_scratch *s)
{
    heap_entry top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_n)
            break;
        if (c + 1 < s->heap_n && heap_less(s->heap[c + 1], s->heap[c]))
            c++;
        if (!heap_less(s->heap[c], last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->heap_n > 0)
        s->heap[i] = last;
    return top;
}

static culora_status push_pair(culora_context *ctx, const culora_tokenizer *tok, bpe_scratch *s, int32_t pos)
{
    int32_t nx = s->next[pos], new_id = -1;
    if (nx < 0)
        return CULORA_OK;
    int32_t rank = merge_lookup(tok, s->sym[pos], s->sym[nx], &new_id);
    if (rank < 0)
        return CULORA_OK;
    return heap_push(ctx, s, (heap_entry){rank, pos});
}

static culora_status bpe_piece(culora_context *ctx, const culora_tokenizer *tok, const uint8_t *p, size_t n,
                               bpe_scratch *s, culora_ivec *out)
{
    if (n == 0)
        return CULORA_OK;
    if (tok->ignore_merges) {
        int32_t id = culora_bytemap_get(&tok->vocab, p, n);
        if (id >= 0)
            return culora_ivec_push(ctx, out, id);
    }
    if (n == 1)
        return culora_ivec_push(ctx, out, tok->byte_id[p[0]]);
    if (n > INT32_MAX)
        return culora_fail(ctx, CULORA_ERR_UNSUPPORTED, "a pre-tokenized piece of %zu bytes is too long for BPE", n);
    if (n > s->cap) {
        int32_t *sym = realloc(s->sym, n * sizeof *sym);
        if (sym != NULL)
            s->sym = sym;
        int32_t *prev = realloc(s->prev, n * sizeof *prev);
        if (prev != NULL)
            s->prev = prev;
        int32_t *next = realloc(s->next, n * sizeof *next);
        if (next != NULL)
            s->next = next;
        if (sym == NULL || prev == NULL || next == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory in BPE (piece of %zu bytes)", n);
        s->cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = tok->byte_id[p[i]];
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        CULORA_TRY(push_pair(ctx, tok, s, (int32_t)i));
    while (s->heap_n > 0) {
        heap_entry e = heap_pop(s);
        int32_t pos = e.pos, nx = s->next[pos], new_id = -1;
        /* Lazy removal: the entry is stale when pos was merged away (prev = -2) or its pair
         * changed; ranks are unique per pair, so an equal rank means the same pair. */
        if (s->prev[pos] == -2 || nx < 0 || merge_lookup(tok, s->sym[pos], s->sym[nx], &new_id) != e.rank)
            continue;
        s->sym[pos] = new_id;
        s->next[pos] = s->next[nx];
        if (s->next[nx] >= 0)
            s->prev[s->next[nx]] = pos;
        s->prev[nx] = -2;
        if (s->prev[pos] >= 0)
            CULORA_TRY(push_pair(ctx, tok, s, s->prev[pos]));
        CULORA_TRY(push_pair(ctx, tok, s, pos));
    }
    for (int32_t i = 0; i >= 0; i = s->next[i])
        CULORA_TRY(culora_ivec_push(ctx, out, s->sym[i]));
    return CULORA_OK;
}

/* ---- encode pipeline -------------------------------------------------------------------- */

typedef struct encode_work {
    bpe_scratch bpe;
    culora_bvec buf;
    culora_pieces pieces, tmp;
} encode_work;

static culora_status encode_segment(culora_context *ctx, const culora_tokenizer *tok, const char *seg, size_t n,
                                    encode_work *w, culora_ivec *out)
{
    if (n == 0)
        return CULORA_OK;
    CULORA_TRY(culora_pretok_split(ctx, tok, seg, n, &w->buf, &w->pieces, &w->tmp));
    for (size_t i = 0; i < w->pieces.n; i++)
        CULORA_TRY(bpe_piece(ctx, tok, w->buf.v + w->pieces.off[i], w->pieces.len[i], &w->bpe, out));
    return CULORA_OK;
}

/* The longest added token that starts at text[i] (special ones only when allowed), or NULL. */
static const culora_added_token *match_added(const culora_tokenizer *tok, const char *text, size_t n, size_t i,
                                             bool allow_special)
{
    const culora_added_token *best = NULL;
    for (size_t k = 0; k < tok->n_added; k++) {
        const culora_added_token *a = &tok->added[k];
        if (a->special && !allow_special)
            continue;
        if (a->len <= n - i && (best == NULL || a->len > best->len) && memcmp(text + i, a->content, a->len) == 0)
            best = a;
    }
    return best;
}

culora_status culora_bpe_encode(culora_context *ctx, const culora_tokenizer *tok, const char *text, size_t n,
                                uint32_t flags, culora_ivec *out)
{
    encode_work w = {0};
    culora_status s = CULORA_OK;
    bool add_special = (flags & CULORA_ENCODE_ADD_SPECIAL) != 0;
    for (size_t k = 0; add_special && k < tok->n_tmpl_pre && s == CULORA_OK; k++)
        s = culora_ivec_push(ctx, out, tok->tmpl_pre[k]);
    size_t seg = 0, i = 0;
    while (s == CULORA_OK && i < n) {
        const culora_added_token *a = NULL;
        if (tok->added_first[(uint8_t)text[i]])
            a = match_added(tok, text, n, i, (flags & CULORA_ENCODE_SPECIAL) != 0);
        if (a == NULL) {
            i++;
            continue;
        }
        s = encode_segment(ctx, tok, text + seg, i - seg, &w, out);
        if (s == CULORA_OK)
            s = culora_ivec_push(ctx, out, a->id);
        i += a->len;
        seg = i;
    }
    if (s == CULORA_OK)
        s = encode_segment(ctx, tok, text + seg, n - seg, &w, out);
    for (size_t k = 0; add_special && k < tok->n_tmpl_post && s == CULORA_OK; k++)
        s = culora_ivec_push(ctx, out, tok->tmpl_post[k]);
    free(w.bpe.sym), free(w.bpe.prev), free(w.bpe.next), free(w.bpe.heap);
    culora_bvec_free(&w.buf);
    culora_pieces_free(&w.pieces);
    culora_pieces_free(&w.tmp);
    return s;
}
