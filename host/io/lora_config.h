/*
 * lora_config.h — an owned, validated copy of a culora_lora_config with its regexes compiled
 * (PCRE2), PEFT's module matching, and adapter_config.json parsing / writing. Internal.
 */
#ifndef CULORA_HOST_IO_LORA_CONFIG_H
#define CULORA_HOST_IO_LORA_CONFIG_H

#include "io_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lora_config_store lora_config_store;

/* Validates cfg and makes an owned copy (strings, arrays, compiled regexes). what names the
 * source in messages (a file path or the calling function). */
culora_status lora_config_store_create(culora_context *ctx, const char *what, const culora_lora_config *cfg,
                                       lora_config_store **out);
void lora_config_store_destroy(lora_config_store *s);
/* The public view; its pointers are owned by s. */
const culora_lora_config *lora_config_view(const lora_config_store *s);

/* PEFT matching for module_name (the module path without "base_model.model."): targeted as
 * check_target_module_exists does (modules_to_save excluded); r/alpha after the patterns. */
culora_status lora_config_match(culora_context *ctx, const lora_config_store *s, const char *module_name,
                                bool *targeted, int32_t *r, double *alpha);

/* Parses adapter_config.json text (path is for messages) into a new store. */
culora_status lora_config_parse(culora_context *ctx, const char *path, const char *text, size_t len,
                                lora_config_store **out);
/* adapter_config.json text as PEFT writes it (sorted keys, indent 2); malloc'd. */
culora_status lora_config_to_json(culora_context *ctx, const lora_config_store *s, char **out);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_IO_LORA_CONFIG_H */
