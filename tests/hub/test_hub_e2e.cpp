// test_hub_e2e.cpp — LoraHub end to end on a tiny LLaMA (CPU): three adapters are trained in
// process on distinct synthetic tasks (completions of digits, of vowels, of the letters XYZW); a
// new task interleaves the first two. From 5 examples of it, the hub's composed adapter must beat
// every single adapter and the uniform average on 40 held-out examples, with weights that favour
// the two mixed tasks — for CMA-ES (the LoraHub search) and for the gradient method. Then the
// `culora hub` command on files: outputs and bad input.
#include "hub_test_util.h"

#include "culora/culora_train.h"

#include <fstream>
#include <jansson.h>
#include <random>
#include <unistd.h>

using namespace culora_test;

namespace {

const char *kTargets[] = {"q_proj", "v_proj", "up_proj", "down_proj"};
constexpr uint64_t kInitSeed = 3;
constexpr int32_t kSeq = 12;  // "abc:" + 6 completion characters fit with room

// n JSONL examples: a random 3-letter prompt and ":"; the completion's character i comes from
// alphabets[i % alphabets.size()].
std::string task(int n, uint64_t seed, const std::vector<std::string> &alphabets)
{
    std::mt19937_64 g(seed);
    std::string out;
    for (int e = 0; e < n; e++) {
        std::string prompt, comp;
        for (int i = 0; i < 3; i++) prompt += (char)('a' + g() % 26);
        prompt += ':';
        for (size_t i = 0; i < 6; i++) {
            const std::string &a = alphabets[i % alphabets.size()];
            comp += a[g() % a.size()];
        }
        out += "{\"prompt\": \"" + prompt + "\", \"completion\": \"" + comp + "\"}\n";
    }
    return out;
}

const std::string kDigits = "0123456789", kVowels = "aeiou", kXyzw = "XYZW";

// Trains a model on the task's JSONL with the trainer API (seconds): FULL from the random config
// (the base's pre-training; it is saved to save_dir) or LORA on the base in base_dir (returns the
// adapter).
AdapterPtr train(culora_context *ctx, const culora_model_config &cfg, const char *base_dir, const std::string &jsonl,
                 uint64_t seed, int64_t steps, double lr, const char *save_dir)
{
    DatasetPtr ds = examples_from(ctx, jsonl, kSeq);
    culora_loader_params lp = CULORA_LOADER_PARAMS_INIT;
    lp.batch_size = 16;
    lp.seed = seed;
    culora_loader *ld = nullptr;
    EXPECT_EQ(culora_loader_create(ctx, ds.get(), &lp, &ld), CULORA_OK) << culora_context_last_error(ctx);
    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;
    lc.r = 4;
    lc.lora_alpha = 8;
    lc.target_modules = kTargets;
    lc.n_target_modules = 4;
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.mode = base_dir ? CULORA_MODE_LORA : CULORA_MODE_FULL;
    mp.lora = base_dir ? &lc : nullptr;
    mp.seed = seed;
    mp.max_batch = 16;
    mp.max_seq = kSeq;
    culora_model *m = nullptr;
    if (base_dir)
        EXPECT_EQ(culora_model_load(ctx, base_dir, &mp, &m), CULORA_OK) << culora_context_last_error(ctx);
    else
        EXPECT_EQ(culora_model_create(ctx, &cfg, kInitSeed, &mp, &m), CULORA_OK) << culora_context_last_error(ctx);
    culora_train_params tp = CULORA_TRAIN_PARAMS_INIT;
    tp.total_steps = steps;
    tp.lr = lr;
    tp.warmup_steps = 5;
    tp.schedule = CULORA_LR_COSINE;
    culora_trainer *tr = nullptr;
    EXPECT_EQ(culora_trainer_create(m, ld, nullptr, &tp, &tr), CULORA_OK) << culora_context_last_error(ctx);
    EXPECT_EQ(culora_trainer_run(tr), CULORA_OK) << culora_context_last_error(ctx);
    culora_adapter *ad = nullptr;
    if (base_dir)
        EXPECT_EQ(culora_model_export_adapter(m, &ad), CULORA_OK);
    else
        EXPECT_EQ(culora_model_save(m, save_dir), CULORA_OK) << culora_context_last_error(ctx);
    culora_trainer_destroy(tr);
    culora_model_destroy(m);
    culora_loader_destroy(ld);
    return AdapterPtr(ad);
}

std::string temp_dir(const std::string &name)
{
    std::string d = ::testing::TempDir() + "culora_hube2e_" + name + "_" + std::to_string(getpid());
    EXPECT_EQ(std::system(("rm -rf '" + d + "' && mkdir -p '" + d + "'").c_str()), 0);
    return d;
}

// The base (a random tiny LLaMA pre-trained on all three tasks: a random model's lm_head cannot
// peak on any token class, so its adapters would have nothing to specialise), three adapters and
// the mixed task's few-shot and held-out sets, built once for the file.
struct World {
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    culora_model_config cfg = tiny_llama_config();
    std::string dir = temp_dir("world"), base = dir + "/base";
    std::vector<AdapterPtr> ads;
    std::string fewshot = task(5, 900, {kDigits, kVowels});
    std::string heldout = task(40, 901, {kDigits, kVowels});
    World()
    {
        train(ctx.get(), cfg, nullptr, task(64, 4, {kDigits}) + task(64, 5, {kVowels}) + task(64, 6, {kXyzw}), 10,
              300, 1e-2, base.c_str());
        ads.push_back(train(ctx.get(), cfg, base.c_str(), task(96, 1, {kDigits}), 11, 80, 3e-2, nullptr));
        ads.push_back(train(ctx.get(), cfg, base.c_str(), task(96, 2, {kVowels}), 12, 80, 3e-2, nullptr));
        ads.push_back(train(ctx.get(), cfg, base.c_str(), task(96, 3, {kXyzw}), 13, 80, 3e-2, nullptr));
    }
    ~World() { (void)std::system(("rm -rf '" + dir + "'").c_str()); }
};

World &world()
{
    static World w;  // trained once per test binary run (tests share it read-only)
    return w;
}

// Held-out losses of each single adapter, the uniform average and w.
struct Scores {
    std::vector<double> single;
    double uniform = 0, found = 0, base = 0;
};

Scores held_out(World &W, const std::vector<double> &w)
{
    DatasetPtr ho = examples_from(W.ctx.get(), W.heldout, kSeq);
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;
    const culora_hub_base base = {W.base.c_str(), nullptr, 0};
    auto a = raw(W.ads);
    culora_hub *h = nullptr;
    EXPECT_EQ(culora_hub_create(W.ctx.get(), &base, a.data(), 3, nullptr, ho.get(), &p, &h), CULORA_OK)
        << culora_context_last_error(W.ctx.get());
    HubPtr hub(h);
    const double third = 1.0 / 3;
    std::vector<double> cand = {1, 0, 0, 0, 1, 0, 0, 0, 1, third, third, third, w[0], w[1], w[2], 0, 0, 0};
    std::vector<double> loss(6);
    EXPECT_EQ(culora_hub_evaluate(hub.get(), cand.data(), 6, 0, loss.data(), nullptr), CULORA_OK);
    return Scores{{loss[0], loss[1], loss[2]}, loss[3], loss[4], loss[5]};
}

void expect_hub_wins(World &W, const std::vector<double> &w, const char *method)
{
    Scores s = held_out(W, w);
    std::printf("  %s: w = (%.3f, %.3f, %.3f); held-out loss: base %.4f, digits %.4f, vowels %.4f, xyzw %.4f, "
                "uniform %.4f, hub %.4f\n",
                method, w[0], w[1], w[2], s.base, s.single[0], s.single[1], s.single[2], s.uniform, s.found);
    for (int i = 0; i < 3; i++) EXPECT_LT(s.found, s.single[(size_t)i]) << method << ": adapter " << i;
    EXPECT_LT(s.found, s.uniform) << method;
    // The separate composition is symmetric under w -> -w, so "favour" is about magnitudes.
    EXPECT_GT(std::fabs(w[0]), std::fabs(w[2])) << method;
    EXPECT_GT(std::fabs(w[1]), std::fabs(w[2])) << method;
}

std::vector<double> search(World &W, int method)
{
    DatasetPtr fs = examples_from(W.ctx.get(), W.fewshot, kSeq);
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;  // LoraHub's: budget 40, bound 1.5, l1 0.05, start 0
    p.method = method;
    const culora_hub_base base = {W.base.c_str(), nullptr, 0};
    auto a = raw(W.ads);
    culora_hub *h = nullptr;
    EXPECT_EQ(culora_hub_create(W.ctx.get(), &base, a.data(), 3, nullptr, fs.get(), &p, &h), CULORA_OK)
        << culora_context_last_error(W.ctx.get());
    HubPtr hub(h);
    std::vector<double> w(3);
    EXPECT_EQ(culora_hub_run(hub.get(), w.data(), nullptr, nullptr, nullptr), CULORA_OK)
        << culora_context_last_error(W.ctx.get());
    return w;
}

int run(const std::string &args, std::string *output)
{
    CommandRun r = run_command(std::string(CULORA_CLI_PATH) + " hub " + args + " 2>&1");
    *output = r.out;
    return r.status;
}

}  // namespace

TEST(HubE2E, CmaCompositionBeatsEverySingleAdapterAndTheAverage)
{
    World &W = world();
    for (const auto &a : W.ads) ASSERT_TRUE(a);
    expect_hub_wins(W, search(W, CULORA_HUB_CMA), "cma");
}

TEST(HubE2E, GradientCompositionBeatsEverySingleAdapterAndTheAverage)
{
    World &W = world();
    for (const auto &a : W.ads) ASSERT_TRUE(a);
    expect_hub_wins(W, search(W, CULORA_HUB_GRAD), "grad");
}

TEST(HubE2E, CommandWritesTheComposedAdapterAndWeights)
{
    World &W = world();
    const std::string d = temp_dir("cli");
    // The base model (a Hugging Face directory), the adapters in PEFT form, the examples as JSONL.
    std::string list;
    for (int i = 0; i < 3; i++) {
        const std::string ad = d + "/adapter" + std::to_string(i);
        ASSERT_EQ(culora_adapter_save(W.ctx.get(), W.ads[(size_t)i].get(), ad.c_str()), CULORA_OK);
        list += (i ? "," : "") + ad;
    }
    std::ofstream(d + "/fewshot.jsonl") << W.fewshot;
    std::string out;
    const std::string common = "--model " + W.base + " --examples " + d + "/fewshot.jsonl ";
    ASSERT_EQ(run(common + "--adapters " + list + " --budget 16 --out " + d + "/out", &out), 0) << out;
    EXPECT_NE(out.find("hub  evaluations 16/16"), std::string::npos) << out;  // the progress line
    culora_adapter *composed = nullptr;
    ASSERT_EQ(culora_adapter_load(W.ctx.get(), (d + "/out").c_str(), &composed), CULORA_OK)
        << culora_context_last_error(W.ctx.get());
    AdapterPtr cp(composed);
    EXPECT_EQ(culora_adapter_n_modules(composed), culora_adapter_n_modules(W.ads[0].get()));
    json_error_t err;
    json_t *j = json_load_file((d + "/out/hub_weights.json").c_str(), 0, &err);
    ASSERT_NE(j, nullptr) << err.text;
    json_t *w = json_object_get(j, "weights");
    ASSERT_TRUE(json_is_array(w));
    ASSERT_EQ(json_array_size(w), 3u);
    EXPECT_EQ(json_integer_value(json_object_get(j, "evaluations")), 16);
    EXPECT_STREQ(json_string_value(json_object_get(j, "method")), "cma");
    // The composed adapter is the hub's weights applied to the adapters.
    std::vector<double> wv;
    for (size_t i = 0; i < 3; i++) wv.push_back(json_number_value(json_array_get(w, i)));
    json_decref(j);
    auto a = raw(W.ads);
    culora_adapter *host = nullptr;
    ASSERT_EQ(culora_hub_compose_adapters(W.ctx.get(), a.data(), 3, nullptr, wv.data(), CULORA_HUB_SEPARATE, &host),
              CULORA_OK);
    AdapterPtr hp(host);
    for (size_t jm = 0; jm < culora_adapter_n_modules(host); jm++) {
        const culora_lora_module *mh = culora_adapter_module(host, jm);
        const culora_lora_module *mc = culora_adapter_find_module(composed, mh->name);
        ASSERT_NE(mc, nullptr);
        std::vector<float> got(mc->B, mc->B + mc->out_features * mc->r);
        std::vector<double> ref(mh->B, mh->B + mh->out_features * mh->r);
        EXPECT_TRUE(all_close("B", got, ref, Tol{1e-6, 1e-6, -1}));  // fp32 GEMM vs fp64 sums of 3 terms
    }
    // The gradient method and the exact composition through the command.
    ASSERT_EQ(run(common + "--adapters " + list + " --method grad --compose concat --budget 4 --quiet --out " + d +
                      "/out2",
                  &out),
              0)
        << out;
    ASSERT_EQ(culora_adapter_load(W.ctx.get(), (d + "/out2").c_str(), &composed), CULORA_OK);
    EXPECT_EQ(culora_adapter_config(composed)->r, 12);  // rank N·r
    culora_adapter_destroy(composed);

    // Bad input: a budget of 0, adapters of different ranks, an empty example file.
    EXPECT_EQ(run(common + "--adapters " + list + " --budget 0 --out " + d + "/bad", &out), 2) << out;
    EXPECT_NE(out.find("--budget"), std::string::npos) << out;
    AdapterPtr r8 = random_adapter(W.ctx.get(), W.cfg, kTargets, 4, 8, 8, 77);
    ASSERT_EQ(culora_adapter_save(W.ctx.get(), r8.get(), (d + "/rank8").c_str()), CULORA_OK);
    EXPECT_EQ(run(common + "--adapters " + d + "/adapter0," + d + "/rank8 --out " + d + "/bad", &out), 1) << out;
    EXPECT_NE(out.find(d + "/rank8 has rank 8"), std::string::npos) << out;
    std::ofstream(d + "/empty.jsonl") << "";
    EXPECT_EQ(run("--model " + W.base + " --examples " + d + "/empty.jsonl --adapters " + list + " --out " + d + "/bad",
                  &out),
              1)
        << out;
    EXPECT_NE(out.find("empty.jsonl"), std::string::npos) << out;
    EXPECT_EQ(std::system(("rm -rf '" + d + "'").c_str()), 0);
}
