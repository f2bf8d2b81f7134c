/*
 * pretokenize.c — pre-tokenizer steps of byte-level BPE: regex splits through PCRE2 (UTF-8 and
 * Unicode properties, as Hugging Face's Oniguruma regexes see them) and the ByteLevel prefix
 * space. Each step refines every piece into smaller pieces; a regex step keeps both the matches
 * and the text between them (Hugging Face's SplitDelimiterBehavior::Isolated).
 *
 * Input that is not valid UTF-8 is accepted (PCRE2_MATCH_INVALID_UTF): invalid bytes match no
 * character class, so they end up in the gaps between matches and are encoded byte by byte.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/tokenizer.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2's pattern (openai/gpt-2 encoder.py; Hugging Face ByteLevel with use_regex=true). */
const char culora_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static culora_status add_step(culora_context *ctx, culora_tokenizer *tok, culora_pretok_step st)
{
    culora_pretok_step *s = realloc(tok->steps, (tok->n_steps + 1) * sizeof *s);
    if (s == NULL)
        return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory");
    tok->steps = s;
    s[tok->n_steps++] = st;
    return CULORA_OK;
}

culora_status culora_pretok_add_regex(culora_context *ctx, culora_tokenizer *tok, const char *pattern, size_t n,
                                      bool literal, const char *where)
{
    int err;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : 0);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, n, opts, &err, &off, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return culora_fail(ctx, CULORA_ERR_FORMAT, "%s: pre-tokenizer regex does not compile at offset %zu: %s",
                           where, (size_t)off, (const char *)msg);
    }
    /* JIT only changes speed; without it (an unsupported CPU) the interpreter gives the same
     * matches, so a JIT failure is not an error. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    culora_status s = add_step(ctx, tok, (culora_pretok_step){CULORA_PRETOK_REGEX, code});
    if (s != CULORA_OK)
        pcre2_code_free(code);
    return s;
}

culora_status culora_pretok_add_prefix_space(culora_context *ctx, culora_tokenizer *tok)
{
    return add_step(ctx, tok, (culora_pretok_step){CULORA_PRETOK_PREFIX_SPACE, NULL});
}

void culora_pretok_free(culora_tokenizer *tok)
{
    for (size_t i = 0; i < tok->n_steps; i++)
        if (tok->steps[i].kind == CULORA_PRETOK_REGEX)
            pcre2_code_free(tok->steps[i].code);
    free(tok->steps);
    tok->steps = NULL;
    tok->n_steps = 0;
}

/* ---- pieces ----------------------------------------------------------------------------- */

static culora_status pieces_push(culora_context *ctx, culora_pieces *p, size_t off, size_t len)
{
    if (p->n == p->cap) {
        size_t c = p->cap ? p->cap * 2 : 256;
        size_t *o = realloc(p->off, c * sizeof *o);
        if (o != NULL)
            p->off = o;
        size_t *l = realloc(p->len, c * sizeof *l);
        if (l != NULL)
            p->len = l;
        if (o == NULL || l == NULL)
            return culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory in the pre-tokenizer");
        p->cap = c;
    }
    p->off[p->n] = off;
    p->len[p->n] = len;
    p->n++;
    return CULORA_OK;
}

void culora_pieces_free(culora_pieces *p)
{
    free(p->off);
    free(p->len);
    memset(p, 0, sizeof *p);
}

/* Splits work[off..off+len) into matches of code and the gaps between them. */
static culora_status split_regex(culora_context *ctx, const pcre2_code *code, pcre2_match_data *md,
                                 const culora_bvec *work, size_t off, size_t len, culora_pieces *out)
{
    PCRE2_SPTR subject = (PCRE2_SPTR)(work->v + off);
    size_t pos = 0, last = 0;
    while (pos < len) {
        int rc = pcre2_match(code, subject, len, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return culora_fail(ctx, CULORA_ERR_INTERNAL, "pre-tokenizer regex failed at byte %zu: %s", pos,
                               (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e == s) { /* an empty match splits nothing: step over one character */
            size_t step = 1;
            uint32_t cp;
            size_t l = culora_utf8_decode(subject + pos, len - pos, &cp);
            if (l > 0)
                step = l;
            pos = s + step > pos ? s + step : pos + step;
            continue;
        }
        if (s > last)
            CULORA_TRY(pieces_push(ctx, out, off + last, s - last));
        CULORA_TRY(pieces_push(ctx, out, off + s, e - s));
        last = pos = e;
    }
    if (last < len)
        CULORA_TRY(pieces_push(ctx, out, off + last, len - last));
    return CULORA_OK;
}

culora_status culora_pretok_split(culora_context *ctx, const culora_tokenizer *tok, const char *seg, size_t n,
                                  culora_bvec *work, culora_pieces *out, culora_pieces *tmp)
{
    work->n = 0;
    out->n = 0;
    CULORA_TRY(culora_bvec_append(ctx, work, seg, n));
    CULORA_TRY(pieces_push(ctx, out, 0, n));
    pcre2_match_data *md = NULL;
    culora_status s = CULORA_OK;
    for (size_t k = 0; k < tok->n_steps && s == CULORA_OK; k++) {
        const culora_pretok_step *st = &tok->steps[k];
        culora_pieces t = *tmp;
        *tmp = *out;
        *out = t;
        out->n = 0;
        if (st->kind == CULORA_PRETOK_REGEX && md == NULL) {
            md = pcre2_match_data_create(1, NULL);
            if (md == NULL) {
                s = culora_fail(ctx, CULORA_ERR_OUT_OF_MEMORY, "out of memory in the pre-tokenizer");
                break;
            }
        }
        for (size_t i = 0; i < tmp->n && s == CULORA_OK; i++) {
            size_t off = tmp->off[i], len = tmp->len[i];
            if (st->kind == CULORA_PRETOK_REGEX) {
                s = split_regex(ctx, st->code, md, work, off, len, out);
            } else if (len > 0 && work->v[off] == ' ') {
                s = pieces_push(ctx, out, off, len);
            } else {
                size_t at = work->n;
                s = culora_bvec_reserve(ctx, work, work->n + len + 1);
                if (s == CULORA_OK) {
                    work->v[work->n++] = ' ';
                    memcpy(work->v + work->n, work->v + off, len);
                    work->n += len;
                    s = pieces_push(ctx, out, at, len + 1);
                }
            }
        }
    }
    pcre2_match_data_free(md);
    return s;
}
