// test_hub.cpp — LoraHub on the CPU backend: composition math against direct computations, the
// backend composition against the host one, batched (segmented) evaluation against sequential per
// candidate, the loss against an independently built model, LoraHub's batch-loss formula, the
// gradient with respect to w against finite differences, the searches' contracts, bad input.
#include "hub_test_util.h"

#include <cstdio>
#include <random>
#include <unistd.h>

using namespace culora_test;

namespace {

const char *kLlamaTargets[] = {"q_proj", "v_proj", "up_proj", "down_proj"};
const char *kGpt2Targets[] = {"c_attn", "c_proj", "c_fc"};

// Five prompt/completion examples (byte tokenizer): loss on the completions only.
const char *kExamples =
    "{\"prompt\": \"abc:\", \"completion\": \"1a2e3\"}\n"
    "{\"prompt\": \"zq:\", \"completion\": \"9o8u\"}\n"
    "{\"prompt\": \"hello:\", \"completion\": \"4i5a6e\"}\n"
    "{\"prompt\": \"x:\", \"completion\": \"7u\"}\n"
    "{\"prompt\": \"mnop:\", \"completion\": \"0e1i2o\"}\n";

struct HubSetup {
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    culora_model_config cfg;
    std::vector<AdapterPtr> ads;
    DatasetPtr ex;
    int32_t r = 4;
    double alpha = 8;

    HubSetup(bool gpt2, int32_t n_adapters = 3)
    {
        cfg = gpt2 ? tiny_gpt2_config() : tiny_llama_config();
        const char *const *t = gpt2 ? kGpt2Targets : kLlamaTargets;
        const size_t nt = gpt2 ? 3 : 4;
        for (int32_t i = 0; i < n_adapters; i++)
            ads.push_back(random_adapter(ctx.get(), cfg, t, nt, r, alpha, 100 + (uint64_t)i));
        ex = examples_from(ctx.get(), kExamples, 12);
    }
    HubPtr hub(culora_hub_params p)
    {
        const culora_hub_base base = {nullptr, &cfg, 3};
        auto a = raw(ads);
        culora_hub *h = nullptr;
        EXPECT_EQ(culora_hub_create(ctx.get(), &base, a.data(), (int32_t)a.size(), nullptr, ex.get(), &p, &h),
                  CULORA_OK)
            << msg();
        return HubPtr(h);
    }
    std::string msg() { return culora_context_last_error(ctx.get()); }
};

std::vector<double> random_w(size_t n, uint64_t seed, double bound = 1.5)
{
    std::mt19937_64 g(seed);
    std::uniform_real_distribution<double> u(-bound, bound);
    std::vector<double> w(n);
    for (auto &x : w) x = u(g);
    return w;
}

std::string temp_dir(const std::string &name)
{
    std::string d = ::testing::TempDir() + "culora_hub_" + name + "_" + std::to_string(getpid());
    EXPECT_EQ(std::system(("rm -rf '" + d + "'").c_str()), 0);
    return d;
}

// fp64 [rows, cols] = Σ_i w_i M_i over the named module's A (which = 0) or B (which = 1).
std::vector<double> direct_sum(const std::vector<AdapterPtr> &ads, const std::vector<double> &w, const char *name,
                               int which)
{
    std::vector<double> out;
    for (size_t i = 0; i < ads.size(); i++) {
        const culora_lora_module *m = culora_adapter_find_module(ads[i].get(), name);
        const size_t n = (size_t)(which == 0 ? m->r * m->in_features : m->out_features * m->r);
        const float *src = which == 0 ? m->A : m->B;
        out.resize(n, 0.0);
        for (size_t e = 0; e < n; e++) out[e] += w[i] * (double)src[e];
    }
    return out;
}

}  // namespace

// ---- composition math ------------------------------------------------------------------------

TEST(HubCompose, SeparateSumsAAndBSeparately)
{
    HubSetup s(false);
    const std::vector<double> w = {0.7, -1.2, 0.3};
    auto a = raw(s.ads);
    culora_adapter *out = nullptr;
    ASSERT_EQ(culora_hub_compose_adapters(s.ctx.get(), a.data(), 3, nullptr, w.data(), CULORA_HUB_SEPARATE, &out),
              CULORA_OK)
        << s.msg();
    AdapterPtr comp(out);
    ASSERT_EQ(culora_adapter_n_modules(out), culora_adapter_n_modules(a[0]));
    for (size_t j = 0; j < culora_adapter_n_modules(out); j++) {
        const culora_lora_module *m = culora_adapter_module(out, j);
        EXPECT_EQ(m->r, s.r);
        EXPECT_DOUBLE_EQ(m->scaling, culora_adapter_module(a[0], j)->scaling);
        std::vector<float> ga(m->A, m->A + m->r * m->in_features), gb(m->B, m->B + m->out_features * m->r);
        // fp64 sums stored in fp32: one rounding, 2^-24 relative.
        EXPECT_TRUE(all_close(m->name, ga, direct_sum(s.ads, w, m->name, 0), Tol{1e-9, 1.2e-7, -1}));
        EXPECT_TRUE(all_close(m->name, gb, direct_sum(s.ads, w, m->name, 1), Tol{1e-9, 1.2e-7, -1}));
    }
}

TEST(HubCompose, ConcatIsTheExactWeightedSumOfProducts)
{
    HubSetup s(false);
    const std::vector<double> w = {0.7, -1.2, 0.3};
    auto a = raw(s.ads);
    culora_adapter *out = nullptr;
    ASSERT_EQ(culora_hub_compose_adapters(s.ctx.get(), a.data(), 3, nullptr, w.data(), CULORA_HUB_CONCAT, &out),
              CULORA_OK)
        << s.msg();
    AdapterPtr comp(out);
    EXPECT_EQ(culora_adapter_config(out)->r, 3 * s.r);
    for (size_t j = 0; j < culora_adapter_n_modules(out); j++) {
        const culora_lora_module *m = culora_adapter_module(out, j);
        ASSERT_EQ(m->r, 3 * s.r);
        EXPECT_NEAR(m->scaling, culora_adapter_module(a[0], j)->scaling, 1e-12);
        const int64_t d = m->out_features, k = m->in_features, R = m->r;
        std::vector<float> got((size_t)(d * k));
        std::vector<double> ref((size_t)(d * k), 0.0);
        for (int64_t i = 0; i < d; i++)
            for (int64_t c = 0; c < k; c++) {
                double acc = 0;
                for (int64_t q = 0; q < R; q++) acc += (double)m->B[i * R + q] * m->A[q * k + c];
                got[(size_t)(i * k + c)] = (float)acc;
            }
        for (size_t n = 0; n < s.ads.size(); n++) {
            const culora_lora_module *mi = culora_adapter_find_module(s.ads[n].get(), m->name);
            for (int64_t i = 0; i < d; i++)
                for (int64_t c = 0; c < k; c++) {
                    double acc = 0;
                    for (int64_t q = 0; q < s.r; q++) acc += (double)mi->B[i * s.r + q] * mi->A[q * k + c];
                    ref[(size_t)(i * k + c)] += w[n] * acc;
                }
        }
        // B' = wᵢBᵢ is rounded to fp32 once: 2^-24 relative per product term, summed over N·r terms.
        EXPECT_TRUE(all_close(m->name, got, ref, Tol{1e-7 * rms(ref), 1e-6, 1e-12}));
    }
}

TEST(HubCompose, BackendCompositionMatchesTheHost)
{
    for (int mode : {CULORA_HUB_SEPARATE, CULORA_HUB_CONCAT}) {
        HubSetup s(false);
        culora_hub_params p = CULORA_HUB_PARAMS_INIT;
        p.compose = mode;
        auto hub = s.hub(p);
        ASSERT_TRUE(hub);
        const std::vector<double> w = {0.7, -1.2, 0.3};
        culora_adapter *dev = nullptr, *host = nullptr;
        ASSERT_EQ(culora_hub_compose(hub.get(), w.data(), &dev), CULORA_OK) << s.msg();
        auto a = raw(s.ads);
        ASSERT_EQ(culora_hub_compose_adapters(s.ctx.get(), a.data(), 3, nullptr, w.data(), mode, &host), CULORA_OK);
        AdapterPtr d1(dev), h1(host);
        ASSERT_EQ(culora_adapter_n_modules(dev), culora_adapter_n_modules(host));
        for (size_t j = 0; j < culora_adapter_n_modules(host); j++) {
            const culora_lora_module *md = culora_adapter_module(dev, j), *mh = culora_adapter_module(host, j);
            ASSERT_STREQ(md->name, mh->name);
            ASSERT_EQ(md->r, mh->r);
            std::vector<float> da(md->A, md->A + md->r * md->in_features), db(md->B, md->B + md->out_features * md->r);
            std::vector<double> ha(mh->A, mh->A + mh->r * mh->in_features),
                hb(mh->B, mh->B + mh->out_features * mh->r);
            // fp32 GEMM over N = 3 terms against fp64 sums: a few 2^-24 of the terms' magnitude (≤ 1.5·|max|).
            EXPECT_TRUE(all_close("A", da, ha, Tol{1e-6, 1e-6, -1}));
            EXPECT_TRUE(all_close("B", db, hb, Tol{1e-6, 1e-6, -1}));
        }
    }
}

// ---- evaluation ------------------------------------------------------------------------------

class HubBatched : public ::testing::TestWithParam<std::tuple<bool, int>> {};

TEST_P(HubBatched, EqualsSequentialPerCandidate)
{
    const bool gpt2 = std::get<0>(GetParam());
    HubSetup s(gpt2);
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;
    p.compose = std::get<1>(GetParam());
    p.popsize = 4;
    auto hub = s.hub(p);
    ASSERT_TRUE(hub);
    const int32_t n = 7;  // two segmented passes: 4 candidates, then 3
    std::vector<double> w = random_w((size_t)n * 3, 7);
    w[0] = w[1] = w[2] = 0.0;  // the base model itself
    std::vector<double> lb(n), ls(n), ob(n), os(n);
    ASSERT_EQ(culora_hub_evaluate(hub.get(), w.data(), n, 1, lb.data(), ob.data()), CULORA_OK) << s.msg();
    ASSERT_EQ(culora_hub_evaluate(hub.get(), w.data(), n, 0, ls.data(), os.data()), CULORA_OK) << s.msg();
    double lo = 1e9, hi = -1e9;
    for (int32_t c = 0; c < n; c++) {
        // Same fp32 operations per element; only the GEMMs' row blocking differs (all rows vs one
        // candidate's), which can reorder fp32 sums: a few ulps of a loss near 5.5 is ~1e-6.
        EXPECT_NEAR(lb[(size_t)c], ls[(size_t)c], 1e-5 * std::fabs(ls[(size_t)c])) << "candidate " << c;
        EXPECT_NEAR(ob[(size_t)c] - lb[(size_t)c], os[(size_t)c] - ls[(size_t)c], 1e-12);
        lo = std::min(lo, ls[(size_t)c]);
        hi = std::max(hi, ls[(size_t)c]);
    }
    // The candidates really differ (a segment reading another candidate's adapter would show).
    EXPECT_GT(hi - lo, 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Models, HubBatched,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values((int)CULORA_HUB_SEPARATE, (int)CULORA_HUB_CONCAT)));

TEST(HubEval, LossEqualsAnIndependentModelWithTheComposedAdapter)
{
    HubSetup s(false);
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;
    auto hub = s.hub(p);
    ASSERT_TRUE(hub);
    const std::vector<double> w = {0.9, -0.4, 1.3};
    double loss = 0, obj = 0;
    ASSERT_EQ(culora_hub_evaluate(hub.get(), w.data(), 1, 0, &loss, &obj), CULORA_OK) << s.msg();
    EXPECT_NEAR(obj, loss + 0.05 * (0.9 + 0.4 + 1.3) / 3, 1e-12);
    // The host-composed adapter, saved and loaded into a fresh model.
    auto a = raw(s.ads);
    culora_adapter *host = nullptr;
    ASSERT_EQ(culora_hub_compose_adapters(s.ctx.get(), a.data(), 3, nullptr, w.data(), CULORA_HUB_SEPARATE, &host),
              CULORA_OK);
    AdapterPtr hp(host);
    const std::string dir = temp_dir("independent");
    ASSERT_EQ(culora_adapter_save(s.ctx.get(), host, dir.c_str()), CULORA_OK) << s.msg();
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.adapter_dir = dir.c_str();
    mp.max_batch = 5;
    mp.max_seq = 12;
    culora_model *m = nullptr;
    ASSERT_EQ(culora_model_create(s.ctx.get(), &s.cfg, 3, &mp, &m), CULORA_OK) << s.msg();
    std::vector<int32_t> ids(5 * 12), tgt(5 * 12);
    for (int64_t e = 0; e < 5; e++)
        ASSERT_EQ(culora_dataset_get_row(s.ctx.get(), s.ex.get(), e, &ids[(size_t)e * 12], &tgt[(size_t)e * 12],
                                         nullptr, nullptr),
                  CULORA_OK);
    float ref = 0;
    ASSERT_EQ(culora_model_forward(m, ids.data(), tgt.data(), 5, 12, &ref), CULORA_OK) << s.msg();
    culora_model_destroy(m);
    EXPECT_EQ(std::system(("rm -rf '" + dir + "'").c_str()), 0);
    // The hub composes in an fp32 GEMM, the reference in fp64 (weights differ by ~1e-7 relative),
    // and sums row losses in fp64 where the model's op sums in fp32: 1e-5 relative covers both.
    EXPECT_NEAR(loss, (double)ref, 1e-5 * (double)ref);
}

TEST(HubEval, LorahubBatchLossIsTheSumOfBatchMeansOverN)
{
    HubSetup s(false);
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;
    p.lorahub_batch = 2;  // batches {0,1}, {2,3}, {4}
    auto hub = s.hub(p);
    ASSERT_TRUE(hub);
    const std::vector<double> w = {0.5, 0.5, -0.8};
    double loss_b = 0, loss_s = 0;
    ASSERT_EQ(culora_hub_evaluate(hub.get(), w.data(), 1, 1, &loss_b, nullptr), CULORA_OK) << s.msg();
    ASSERT_EQ(culora_hub_evaluate(hub.get(), w.data(), 1, 0, &loss_s, nullptr), CULORA_OK) << s.msg();
    // Reference: the hub's own model (its adapter now holds w) run batch by batch with targets.
    culora_model *m = culora_hub_model(hub.get());
    std::vector<int32_t> ids(5 * 12), tgt(5 * 12);
    for (int64_t e = 0; e < 5; e++)
        ASSERT_EQ(culora_dataset_get_row(s.ctx.get(), s.ex.get(), e, &ids[(size_t)e * 12], &tgt[(size_t)e * 12],
                                         nullptr, nullptr),
                  CULORA_OK);
    double ref = 0;
    for (int64_t b0 : {0, 2, 4}) {
        const int64_t nb = b0 == 4 ? 1 : 2;
        float l = 0;
        ASSERT_EQ(culora_model_forward(m, &ids[(size_t)b0 * 12], &tgt[(size_t)b0 * 12], nb, 12, &l), CULORA_OK);
        ref += l;
    }
    ref /= 5;
    // fp32 losses summed in different orders: 1e-6 relative.
    EXPECT_NEAR(loss_s, ref, 1e-6 * ref);
    EXPECT_NEAR(loss_b, ref, 1e-5 * ref);
}

// ---- gradient --------------------------------------------------------------------------------

class HubGrad : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(HubGrad, MatchesCentralDifferences)
{
    HubSetup s(false);
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;
    p.compose = std::get<0>(GetParam());
    p.lorahub_batch = std::get<1>(GetParam());
    auto hub = s.hub(p);
    ASSERT_TRUE(hub);
    const std::vector<double> w = {0.6, -0.9, 0.4};
    double loss = 0;
    std::vector<double> g(3);
    ASSERT_EQ(culora_hub_loss_grad(hub.get(), w.data(), &loss, g.data()), CULORA_OK) << s.msg();
    double l0 = 0;
    ASSERT_EQ(culora_hub_evaluate(hub.get(), w.data(), 1, 0, &l0, nullptr), CULORA_OK);
    EXPECT_NEAR(loss, l0, 1e-5 * l0);
    const double h = 1e-2;
    double gmax = 0;
    for (int i = 0; i < 3; i++) {
        std::vector<double> wp = w, wm = w;
        wp[(size_t)i] += h;
        wm[(size_t)i] -= h;
        double lp = 0, lm = 0;
        ASSERT_EQ(culora_hub_evaluate(hub.get(), wp.data(), 1, 0, &lp, nullptr), CULORA_OK);
        ASSERT_EQ(culora_hub_evaluate(hub.get(), wm.data(), 1, 0, &lm, nullptr), CULORA_OK);
        const double fd = (lp - lm) / (2 * h);
        // fp32 losses (~5, noise ~1e-6) over 2h = 0.02: ±5e-5; the O(h²) truncation of a smooth
        // loss in w adds ~1e-4·|L'''|. A gradient missing its A or B term is off by tens of percent.
        EXPECT_NEAR(g[(size_t)i], fd, 1e-3 + 2e-2 * std::fabs(fd)) << "w" << i;
        gmax = std::max(gmax, std::fabs(fd));
    }
    EXPECT_GT(gmax, 1e-2);  // the check is not vacuous
}

INSTANTIATE_TEST_SUITE_P(Modes, HubGrad,
                         ::testing::Combine(::testing::Values((int)CULORA_HUB_SEPARATE, (int)CULORA_HUB_CONCAT),
                                            ::testing::Values(0, 2)));

TEST(HubGrad, ZeroIsAStationaryPointOfTheSeparateComposition)
{
    HubSetup s(false);
    auto hub = s.hub(CULORA_HUB_PARAMS_INIT);
    ASSERT_TRUE(hub);
    const std::vector<double> w = {0, 0, 0};
    double loss = 0;
    std::vector<double> g(3, 1.0);
    ASSERT_EQ(culora_hub_loss_grad(hub.get(), w.data(), &loss, g.data()), CULORA_OK) << s.msg();
    for (double gi : g) EXPECT_EQ(gi, 0.0);  // Â = B̂ = 0: both LoRA gradients are exactly 0
}

// ---- searches --------------------------------------------------------------------------------

TEST(HubSearch, CmaSpendsTheBudgetStaysInTheBoxAndIsDeterministic)
{
    HubSetup s(false);
    struct Count {
        int calls = 0;
        int64_t last = 0;
    } count;
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;
    p.budget = 10;  // λ = 7 for N = 3: one full generation, then 3 of the next
    p.callback = [](const culora_hub_progress *pr, void *u) {
        auto *c = static_cast<Count *>(u);
        c->calls++;
        c->last = pr->evaluations;
        return 0;
    };
    p.user = &count;
    std::vector<double> w1(3), w2(3);
    double o1 = 0, o2 = 0, l1 = 0;
    int64_t ev = 0;
    {
        auto hub = s.hub(p);
        ASSERT_TRUE(hub);
        EXPECT_EQ(culora_hub_popsize(hub.get()), 7);
        ASSERT_EQ(culora_hub_run(hub.get(), w1.data(), &o1, &l1, &ev), CULORA_OK) << s.msg();
    }
    EXPECT_EQ(ev, 10);
    EXPECT_EQ(count.calls, 2);
    EXPECT_EQ(count.last, 10);
    for (double x : w1) EXPECT_LE(std::fabs(x), 1.5);
    {
        auto hub = s.hub(p);
        ASSERT_EQ(culora_hub_run(hub.get(), w2.data(), &o2, nullptr, nullptr), CULORA_OK) << s.msg();
        double again = 0;
        ASSERT_EQ(culora_hub_evaluate(hub.get(), w1.data(), 1, 0, nullptr, &again), CULORA_OK);
        EXPECT_NEAR(again, o1, 1e-5 * o1);  // the reported objective is w's
    }
    EXPECT_EQ(w1, w2);
    EXPECT_EQ(o1, o2);
}

TEST(HubSearch, GradLowersTheObjectiveFromTheUniformStart)
{
    HubSetup s(false);
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;
    p.method = CULORA_HUB_GRAD;
    p.budget = 15;
    p.lr = 0.1;
    auto hub = s.hub(p);
    ASSERT_TRUE(hub);
    const std::vector<double> u = {1.0 / 3, 1.0 / 3, 1.0 / 3};
    double start = 0;
    ASSERT_EQ(culora_hub_evaluate(hub.get(), u.data(), 1, 0, nullptr, &start), CULORA_OK);
    std::vector<double> w(3);
    double obj = 0;
    int64_t ev = 0;
    ASSERT_EQ(culora_hub_run(hub.get(), w.data(), &obj, nullptr, &ev), CULORA_OK) << s.msg();
    EXPECT_EQ(ev, 15);
    EXPECT_LT(obj, start - 1e-2);
    for (double x : w) EXPECT_LE(std::fabs(x), 1.5);
}

// ---- bad input -------------------------------------------------------------------------------

TEST(HubBadInput, MismatchedAdaptersAreRefusedNamingTheDifference)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    culora_model_config cfg = tiny_llama_config();
    AdapterPtr a = random_adapter(ctx.get(), cfg, kLlamaTargets, 4, 4, 8, 1);
    AdapterPtr r8 = random_adapter(ctx.get(), cfg, kLlamaTargets, 4, 8, 8, 2);
    AdapterPtr alpha = random_adapter(ctx.get(), cfg, kLlamaTargets, 4, 4, 16, 3);
    AdapterPtr fewer = random_adapter(ctx.get(), cfg, kLlamaTargets, 2, 4, 8, 4);
    culora_model_config wide = cfg;
    wide.intermediate_size = 96;
    AdapterPtr other = random_adapter(ctx.get(), wide, kLlamaTargets, 4, 4, 8, 5);
    const char *names[] = {"adapters/a", "adapters/b"};
    auto check = [&](const culora_adapter *b, const char *n1, const char *n2) {
        const culora_adapter *pair[] = {a.get(), b};
        EXPECT_EQ(culora_hub_check_adapters(ctx.get(), pair, 2, names), CULORA_ERR_INVALID_ARG);
        std::string m = culora_context_last_error(ctx.get());
        EXPECT_NE(m.find(n1), std::string::npos) << m;
        EXPECT_NE(m.find(n2), std::string::npos) << m;
        EXPECT_NE(m.find("adapters/b"), std::string::npos) << m;
    };
    check(r8.get(), "rank 8", "has 4");
    check(alpha.get(), "lora_alpha 16", "has 8");
    check(fewer.get(), "target different modules", "down_proj");
    check(other.get(), "shape", "mlp");
    const culora_adapter *ok[] = {a.get(), a.get()};
    EXPECT_EQ(culora_hub_check_adapters(ctx.get(), ok, 2, names), CULORA_OK);
    EXPECT_EQ(culora_hub_check_adapters(ctx.get(), ok, 0, names), CULORA_ERR_INVALID_ARG);
}

TEST(HubBadInput, EmptyExamplesBudgetZeroAndBadWeightsAreClearErrors)
{
    HubSetup s(false);
    const culora_hub_base base = {nullptr, &s.cfg, 3};
    auto a = raw(s.ads);
    culora_hub *h = nullptr;
    culora_hub_params p = CULORA_HUB_PARAMS_INIT;
    EXPECT_EQ(culora_hub_create(s.ctx.get(), &base, a.data(), 3, nullptr, nullptr, &p, &h), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(s.msg().find("no examples"), std::string::npos) << s.msg();
    EXPECT_EQ(h, nullptr);
    // Rows that hold no completion token have nothing to score (a long prompt, truncated).
    culora_tokenizer *tok = nullptr;
    ASSERT_EQ(culora_tokenizer_create_bytes(s.ctx.get(), &tok), CULORA_OK);
    culora_dataset_params dp = CULORA_DATASET_PARAMS_INIT;
    dp.format = CULORA_DATA_FORMAT_JSONL;
    dp.layout = CULORA_DATA_PAD;
    dp.seq_len = 4;
    dp.truncate = 1;
    const std::string txt = "{\"prompt\": \"a long prompt\", \"completion\": \"x\"}\n";
    culora_dataset *nd = nullptr;
    ASSERT_EQ(culora_dataset_create_from_memory(s.ctx.get(), tok, "none.jsonl", txt.data(), txt.size(), &dp, &nd),
              CULORA_OK)
        << s.msg();
    culora_tokenizer_destroy(tok);
    DatasetPtr none(nd);
    EXPECT_EQ(culora_hub_create(s.ctx.get(), &base, a.data(), 3, nullptr, none.get(), &p, &h), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(s.msg().find("no tokens to score"), std::string::npos) << s.msg();
    p.budget = 0;
    EXPECT_EQ(culora_hub_create(s.ctx.get(), &base, a.data(), 3, nullptr, s.ex.get(), &p, &h), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(s.msg().find("budget is 0"), std::string::npos) << s.msg();
    p = CULORA_HUB_PARAMS_INIT;
    p.bound = 0;
    EXPECT_EQ(culora_hub_create(s.ctx.get(), &base, a.data(), 3, nullptr, s.ex.get(), &p, &h), CULORA_ERR_INVALID_ARG);
    p = CULORA_HUB_PARAMS_INIT;
    p.struct_size = 0;
    EXPECT_EQ(culora_hub_create(s.ctx.get(), &base, a.data(), 3, nullptr, s.ex.get(), &p, &h), CULORA_ERR_INVALID_ARG);
    // A base model that is not the adapters' (another hidden size).
    culora_model_config wide = s.cfg;
    wide.hidden_size = 48;
    wide.head_dim = 12;
    const culora_hub_base other = {nullptr, &wide, 3};
    p = CULORA_HUB_PARAMS_INIT;
    EXPECT_EQ(culora_hub_create(s.ctx.get(), &other, a.data(), 3, nullptr, s.ex.get(), &p, &h), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(s.msg().find("base model"), std::string::npos) << s.msg();
    auto hub = s.hub(p);
    ASSERT_TRUE(hub);
    const double nan_w[3] = {0.1, NAN, 0.2};
    double l = 0;
    EXPECT_EQ(culora_hub_evaluate(hub.get(), nan_w, 1, 1, &l, nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(s.msg().find("not finite"), std::string::npos) << s.msg();
    EXPECT_EQ(culora_hub_evaluate(hub.get(), nan_w, 0, 1, &l, nullptr), CULORA_ERR_INVALID_ARG);
}
