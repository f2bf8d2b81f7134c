/*
 * dataset.h — the culora_dataset object (internal): one token stream with a per-token loss flag,
 * and the rows cut from it. Shared by dataset.c (building, rows), dataset_parse.c (text and
 * JSONL files) and loader.c.
 *
 * A document is [BOS] prompt completion [EOS] (or [BOS] text [EOS]); the flag of a token says
 * whether predicting it counts: 0 for BOS and prompt tokens, 1 for text, completion and EOS.
 * Row r covers stream[start, start + len); its inputs are tokens [start, start+len-1) and its
 * targets tokens [start+1, start+len), a target with flag 0 becoming CULORA_IGNORE_INDEX.
 *   PACK: start = r·seq_len, len = min(seq_len + 1, n_tokens - start), so consecutive rows share
 *         one token and every token after the first is a target exactly once.
 *   PAD:  one row per document (len = its length, cut to seq_len + 1 with truncate).
 */
#ifndef CULORA_HOST_DATA_DATASET_H
#define CULORA_HOST_DATA_DATASET_H

#include "culora/culora_data.h"
#include "data/data_util.h"

struct culora_dataset {
    int32_t layout, seq_len, pad_id;
    culora_ivec tokens;   /* the stream */
    culora_bvec loss;     /* per token: 1 = counts as a target */
    int64_t *row_start;   /* PAD layout: per row; NULL for PACK */
    int32_t *row_len;
    int64_t n_rows, rows_cap, n_docs, n_loss_tokens;
    uint64_t fingerprint;
};

/* State while documents are added. */
typedef struct culora_doc_builder {
    culora_context *ctx;
    const culora_tokenizer *tok;
    culora_dataset *ds;
    int32_t bos_id, eos_id; /* resolved; -1 = none */
    uint32_t encode_flags;
    int32_t truncate;
    culora_ivec scratch;
} culora_doc_builder;

/* Adds one document: prompt (may be NULL: none) and text or completion. file and line (0: the
 * whole file) name it in messages. An empty text document is skipped. */
culora_status culora_dataset_add_document(culora_doc_builder *b, const char *prompt, size_t prompt_n,
                                          const char *text, size_t text_n, const char *file, size_t line);

/* Writes row (0 <= row < n_rows, unchecked) as culora_dataset_get_row does. */
void culora_dataset_fill_row(const culora_dataset *ds, int64_t row, int32_t *input_ids, int32_t *target_ids,
                             uint8_t *loss_mask, int64_t *n_loss);

/* dataset_parse.c: adds the documents of one file's bytes in the given format (TEXT or JSONL). */
culora_status culora_dataset_parse(culora_doc_builder *b, const char *name, const char *data, size_t n,
                                   culora_data_format format);

#endif /* CULORA_HOST_DATA_DATASET_H */
