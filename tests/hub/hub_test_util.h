// hub_test_util.h — what the LoraHub tests share: random PEFT adapters for the tiny models of
// tiny_models.h, example sets from memory.
#pragma once

#include "test_util.h"
#include "tiny_models.h"

#include "culora/culora_data.h"
#include "culora/culora_hub.h"
#include "culora/culora_model.h"

#include <string>

namespace culora_test {

struct AdapterDeleter {
    void operator()(culora_adapter *a) const { culora_adapter_destroy(a); }
};
using AdapterPtr = std::unique_ptr<culora_adapter, AdapterDeleter>;

struct HubDeleter {
    void operator()(culora_hub *h) const { culora_hub_destroy(h); }
};
using HubPtr = std::unique_ptr<culora_hub, HubDeleter>;

struct DatasetDeleter {
    void operator()(culora_dataset *d) const { culora_dataset_destroy(d); }
};
using DatasetPtr = std::unique_ptr<culora_dataset, DatasetDeleter>;

// A PEFT adapter with random A and B (init_lora_weights "false": both uniform, as nn.Linear) on
// the given targets, exported from a LORA model; `scale` multiplies B so the adapters matter.
inline AdapterPtr random_adapter(culora_context *ctx, const culora_model_config &cfg, const char *const *targets,
                                 size_t n_targets, int32_t r, double alpha, uint64_t seed)
{
    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;
    lc.r = r;
    lc.lora_alpha = alpha;
    lc.target_modules = targets;
    lc.n_target_modules = n_targets;
    lc.init_lora_weights = "false";
    lc.fan_in_fan_out = cfg.arch == CULORA_ARCH_GPT2;
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.mode = CULORA_MODE_LORA;
    mp.lora = &lc;
    mp.seed = seed;
    mp.max_batch = 1;
    mp.max_seq = 8;
    culora_model *m = nullptr;
    EXPECT_EQ(culora_model_create(ctx, &cfg, 3, &mp, &m), CULORA_OK) << culora_context_last_error(ctx);
    culora_adapter *ad = nullptr;
    if (m) EXPECT_EQ(culora_model_export_adapter(m, &ad), CULORA_OK) << culora_context_last_error(ctx);
    culora_model_destroy(m);
    return AdapterPtr(ad);
}

// A PAD-layout example set (one row per JSONL line) of seq_len tokens, byte tokenizer.
inline DatasetPtr examples_from(culora_context *ctx, const std::string &jsonl, int32_t seq_len)
{
    culora_tokenizer *tok = nullptr;
    EXPECT_EQ(culora_tokenizer_create_bytes(ctx, &tok), CULORA_OK);
    culora_dataset_params dp = CULORA_DATASET_PARAMS_INIT;
    dp.format = CULORA_DATA_FORMAT_JSONL;
    dp.layout = CULORA_DATA_PAD;
    dp.seq_len = seq_len;
    culora_dataset *ds = nullptr;
    EXPECT_EQ(culora_dataset_create_from_memory(ctx, tok, "examples.jsonl", jsonl.data(), jsonl.size(), &dp, &ds),
              CULORA_OK)
        << culora_context_last_error(ctx);
    culora_tokenizer_destroy(tok);
    return DatasetPtr(ds);
}

inline std::vector<const culora_adapter *> raw(const std::vector<AdapterPtr> &v)
{
    std::vector<const culora_adapter *> r;
    for (const auto &a : v) r.push_back(a.get());
    return r;
}

}  // namespace culora_test
