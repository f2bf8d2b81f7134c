// test_trainer.cpp — the trainer on the CPU backend: the loss falls, resume from a checkpoint is
// bit-identical to a straight run, gradient accumulation equals the larger batch, non-finite
// steps are skipped without touching the weights, corrupted or mismatched checkpoints are refused,
// old checkpoints are pruned, metrics are JSON lines.
#include "test_util.h"
#include "tiny_models.h"

#include "culora/culora_data.h"
#include "culora/culora_model.h"
#include "culora/culora_train.h"

#include <fstream>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include "model/model.h"
}

using namespace culora_test;

namespace {

// Everything one run needs, built the same way every time (so two runs can be compared).
struct TrainRun {
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    culora_tokenizer *tok = nullptr;
    culora_dataset *ds = nullptr;
    culora_loader *ld = nullptr;
    culora_model *model = nullptr;
    culora_trainer *tr = nullptr;
    std::vector<float> losses;
    const char *targets[4] = {"q_proj", "v_proj", "up_proj", "down_proj"};
    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;

    TrainRun(int mode, int32_t batch, int32_t accum, const char *ckpt, float dropout = 0.1f, int shuffle = 1,
             double lr = 5e-3)
    {
        EXPECT_EQ(culora_tokenizer_create_bytes(ctx.get(), &tok), CULORA_OK);
        culora_dataset_params dp = CULORA_DATASET_PARAMS_INIT;
        dp.format = CULORA_DATA_FORMAT_TEXT;
        dp.seq_len = 16;
        EXPECT_EQ(culora_dataset_create_from_memory(ctx.get(), tok, "mem.txt", kTinyText, std::strlen(kTinyText), &dp, &ds),
                  CULORA_OK)
            << culora_context_last_error(ctx.get());
        culora_loader_params lp = CULORA_LOADER_PARAMS_INIT;
        lp.batch_size = batch;
        lp.seed = 5;
        lp.shuffle = shuffle;
        EXPECT_EQ(culora_loader_create(ctx.get(), ds, &lp, &ld), CULORA_OK) << culora_context_last_error(ctx.get());
        culora_model_config cfg = tiny_llama_config();
        lc.r = 4;
        lc.lora_alpha = 8;
        lc.lora_dropout = dropout;
        lc.target_modules = targets;
        lc.n_target_modules = 4;
        culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
        mp.mode = mode;
        mp.lora = &lc;
        mp.seed = 11;
        mp.max_batch = 4;
        mp.max_seq = 16;
        EXPECT_EQ(culora_model_create(ctx.get(), &cfg, 3, &mp, &model), CULORA_OK) << culora_context_last_error(ctx.get());
        culora_train_params tp = CULORA_TRAIN_PARAMS_INIT;
        tp.total_steps = 20;
        tp.grad_accum = accum;
        tp.lr = lr;
        tp.weight_decay = 0.01;
        tp.warmup_steps = 2;
        tp.schedule = CULORA_LR_COSINE;
        tp.checkpoint_dir = ckpt;
        tp.checkpoint_every = 10;
        tp.callback = [](const culora_step_info *in, void *user) {
            if (!in->is_eval) static_cast<TrainRun *>(user)->losses.push_back(in->loss);
            return 0;
        };
        tp.user = this;
        EXPECT_EQ(culora_trainer_create(model, ld, nullptr, &tp, &tr), CULORA_OK) << culora_context_last_error(ctx.get());
    }
    ~TrainRun()
    {
        culora_trainer_destroy(tr);
        culora_model_destroy(model);
        culora_loader_destroy(ld);
        culora_dataset_destroy(ds);
        culora_tokenizer_destroy(tok);
    }
    std::vector<float> masters()
    {
        std::vector<float> v((size_t)model->n_train);
        EXPECT_EQ(model_state_download(model, v.data(), nullptr, nullptr), CULORA_OK);
        return v;
    }
    std::string msg() { return culora_context_last_error(ctx.get()); }
};

std::string temp_dir(const std::string &name)
{
    std::string d = ::testing::TempDir() + "culora_" + name + "_" + std::to_string(getpid());
    std::string cmd = "rm -rf '" + d + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    return d;
}

}  // namespace

TEST(Trainer, LossFallsWithLora)
{
    TrainRun r(CULORA_MODE_LORA, 2, 1, nullptr, 0.0f, 1, 3e-2);
    ASSERT_TRUE(r.tr);
    ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
    ASSERT_EQ(r.losses.size(), 20u);
    const float first = (r.losses[0] + r.losses[1]) / 2, last = (r.losses[18] + r.losses[19]) / 2;
    std::cout << "  LoRA loss " << first << " -> " << last << "\n";
    // The base is random and frozen (logits start near uniform, ln 256 ≈ 5.55): rank-4 adapters on
    // four projections lower the loss by about 0.18 in 20 steps; 0.1 leaves room for noise.
    EXPECT_LT(last, first - 0.1f);
}

TEST(Trainer, ResumeIsBitIdenticalToAStraightRun)
{
    const std::string d1 = temp_dir("straight"), d2 = temp_dir("resumed");
    std::vector<float> straight_losses, straight_masters;
    {
        TrainRun r(CULORA_MODE_LORA, 2, 1, d1.c_str());
        ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
        straight_losses = r.losses;
        straight_masters = r.masters();
    }
    {
        TrainRun r(CULORA_MODE_LORA, 2, 1, d2.c_str());
        for (int i = 0; i < 10; i++) ASSERT_EQ(culora_trainer_step(r.tr, nullptr), CULORA_OK) << r.msg();
        ASSERT_EQ(culora_trainer_save_checkpoint(r.tr, d2.c_str()), CULORA_OK) << r.msg();
    }  // the first process is gone
    TrainRun r(CULORA_MODE_LORA, 2, 1, d2.c_str());
    ASSERT_EQ(culora_trainer_resume(r.tr, d2.c_str()), CULORA_OK) << r.msg();
    EXPECT_EQ(culora_trainer_step_count(r.tr), 10);
    ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
    ASSERT_EQ(r.losses.size(), 10u);
    for (size_t i = 0; i < 10; i++) EXPECT_EQ(r.losses[i], straight_losses[10 + i]) << "step " << 11 + i;
    std::vector<float> m = r.masters();
    ASSERT_EQ(m.size(), straight_masters.size());
    EXPECT_EQ(0, std::memcmp(m.data(), straight_masters.data(), m.size() * 4));
    // the adapters written at step 20 by both runs are byte-identical files
    auto slurp = [](const std::string &p) {
        std::ifstream f(p, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    };
    std::string a = slurp(d1 + "/checkpoint-20/adapter/adapter_model.safetensors");
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a, slurp(d2 + "/checkpoint-20/adapter/adapter_model.safetensors"));
}

TEST(Trainer, GradientAccumulationEqualsTheLargerBatch)
{
    // Two micro-batches of 1 row = one batch of 2 rows (same rows: no shuffling), one step.
    TrainRun big(CULORA_MODE_LORA, 2, 1, nullptr, 0.0f, 0), acc(CULORA_MODE_LORA, 1, 2, nullptr, 0.0f, 0);
    culora_step_info a, b;
    ASSERT_EQ(culora_trainer_step(big.tr, &a), CULORA_OK) << big.msg();
    ASSERT_EQ(culora_trainer_step(acc.tr, &b), CULORA_OK) << acc.msg();
    EXPECT_NEAR(a.loss, b.loss, 1e-6);
    EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-5 * a.grad_norm);
    std::vector<float> ma = big.masters(), mb = acc.masters();
    std::vector<double> ref = to_double(ma);
    // the same exact mean summed in a different order: fp32 rounding only
    EXPECT_TRUE(all_close("masters", mb, ref, Tol{1e-6, 1e-5, -1}));
}

TEST(Trainer, NonFiniteStepsAreSkippedAndNeverWritten)
{
    TrainRun r(CULORA_MODE_LORA, 2, 1, nullptr, 0.0f);
    ASSERT_TRUE(r.tr);
    // Poison one LoRA B value: every loss is now NaN.
    mlora &lo = r.model->loras[0];
    std::vector<float> b((size_t)(lo.B.rows * lo.B.cols), 0.0f);
    b[0] = NAN;
    ASSERT_EQ(model_tensor_upload(r.model, &lo.B, b.data()), CULORA_OK);
    std::vector<float> before = r.masters();
    culora_step_info in;
    for (int i = 0; i < 3; i++) {  // CULORA_TRAIN_PARAMS_INIT allows 3 skipped steps
        ASSERT_EQ(culora_trainer_step(r.tr, &in), CULORA_OK) << r.msg();
        EXPECT_EQ(in.skipped, 1);
        EXPECT_EQ(in.bad_steps, i + 1);
    }
    EXPECT_EQ(culora_trainer_step(r.tr, &in), CULORA_ERR_NUMERIC);
    EXPECT_NE(r.msg().find("non-finite"), std::string::npos) << r.msg();
    std::vector<float> after = r.masters();
    ASSERT_EQ(before.size(), after.size());
    EXPECT_EQ(0, std::memcmp(before.data(), after.data(), before.size() * 4));  // NaN bits included
}

TEST(Trainer, DamagedOrMismatchedCheckpointsAreRefused)
{
    const std::string d = temp_dir("damaged");
    {
        TrainRun r(CULORA_MODE_LORA, 2, 1, d.c_str());
        for (int i = 0; i < 3; i++) ASSERT_EQ(culora_trainer_step(r.tr, nullptr), CULORA_OK);
        ASSERT_EQ(culora_trainer_save_checkpoint(r.tr, d.c_str()), CULORA_OK) << r.msg();
    }
    const std::string ck = d + "/checkpoint-3", state = ck + "/trainer_state.safetensors";
    struct stat st;
    ASSERT_EQ(stat((ck + "/manifest.json").c_str(), &st), 0);
    ASSERT_EQ(stat((ck + "/adapter/adapter_config.json").c_str(), &st), 0);
    std::string saved;
    {
        std::ifstream f(state, std::ios::binary);
        saved.assign((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    }
    auto write = [&](const std::string &bytes) {
        std::ofstream f(state, std::ios::binary | std::ios::trunc);
        f << bytes;
    };
    {  // truncated
        write(saved.substr(0, saved.size() / 2));
        TrainRun r(CULORA_MODE_LORA, 2, 1, nullptr);
        EXPECT_EQ(culora_trainer_resume(r.tr, d.c_str()), CULORA_ERR_FORMAT);
        EXPECT_NE(r.msg().find("truncated"), std::string::npos) << r.msg();
    }
    {  // one flipped byte
        std::string bad = saved;
        bad[bad.size() - 5] ^= 0x40;
        write(bad);
        TrainRun r(CULORA_MODE_LORA, 2, 1, nullptr);
        EXPECT_EQ(culora_trainer_resume(r.tr, d.c_str()), CULORA_ERR_FORMAT);
        EXPECT_NE(r.msg().find("corrupted"), std::string::npos) << r.msg();
    }
    write(saved);
    {  // another training mode: different trainable state
        TrainRun r(CULORA_MODE_LORA_FA, 2, 1, nullptr);
        EXPECT_EQ(culora_trainer_resume(r.tr, d.c_str()), CULORA_ERR_MISMATCH);
        EXPECT_NE(r.msg().find("another model or LoRA setup"), std::string::npos) << r.msg();
    }
    {  // a different batch size: the data position does not fit
        TrainRun r(CULORA_MODE_LORA, 1, 1, nullptr);
        EXPECT_NE(culora_trainer_resume(r.tr, d.c_str()), CULORA_OK);
        EXPECT_NE(r.msg().find("batch"), std::string::npos) << r.msg();
    }
    {  // an intact checkpoint resumes
        TrainRun r(CULORA_MODE_LORA, 2, 1, nullptr);
        EXPECT_EQ(culora_trainer_resume(r.tr, d.c_str()), CULORA_OK) << r.msg();
        EXPECT_EQ(culora_trainer_step_count(r.tr), 3);
    }
}

TEST(Trainer, KeepsTheNewestCheckpointsAndWritesMetrics)
{
    const std::string d = temp_dir("keep"), metrics = d + "_metrics.jsonl";
    std::remove(metrics.c_str());
    TrainRun r(CULORA_MODE_LORA, 2, 1, nullptr);
    // rebuild the trainer with checkpoints every 4 steps, keeping 2, and metrics
    culora_trainer_destroy(r.tr);
    culora_train_params tp = CULORA_TRAIN_PARAMS_INIT;
    tp.total_steps = 12;
    tp.lr = 1e-3;
    tp.checkpoint_dir = d.c_str();
    tp.checkpoint_every = 4;
    tp.keep_checkpoints = 2;
    tp.metrics_path = metrics.c_str();
    ASSERT_EQ(culora_trainer_create(r.model, r.ld, nullptr, &tp, &r.tr), CULORA_OK) << r.msg();
    ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
    struct stat st;
    EXPECT_NE(stat((d + "/checkpoint-4").c_str(), &st), 0);  // pruned
    EXPECT_EQ(stat((d + "/checkpoint-8").c_str(), &st), 0);
    EXPECT_EQ(stat((d + "/checkpoint-12").c_str(), &st), 0);
    std::ifstream f(metrics);
    std::string line;
    int n = 0;
    while (std::getline(f, line)) {
        json_error_t err;
        json_t *o = json_loads(line.c_str(), 0, &err);
        ASSERT_NE(o, nullptr) << line;
        for (const char *k : {"step", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"})
            EXPECT_NE(json_object_get(o, k), nullptr) << k << " missing in " << line;
        EXPECT_EQ(json_integer_value(json_object_get(o, "step")), ++n);
        json_decref(o);
    }
    EXPECT_EQ(n, 12);
}

TEST(Trainer, FullFineTuningTrainsEveryParameter)
{
    TrainRun r(CULORA_MODE_FULL, 2, 1, nullptr, 0.0f);
    ASSERT_TRUE(r.tr);
    EXPECT_EQ(culora_model_n_trainable(r.model), culora_model_n_params(r.model));
    ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
    EXPECT_LT(r.losses.back(), r.losses.front() - 0.3f);
}
