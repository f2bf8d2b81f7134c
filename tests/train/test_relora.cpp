// test_relora.cpp — ReLoRA on the CPU backend (docs/relora.md): the restart op (torch.quantile
// pruning, random pruning, re-initialisation equal to the LoRA initialisation), a restart keeps the
// model's function, the merged base equals the base plus every merged update, pruning touches only
// the LoRA moments, restarts come at the reference's steps with the jagged schedule, warm start,
// resume across a restart (and across the end of the warm start) is bit-identical, a quantized base
// is requantized with its error in the metrics, and ReLoRA rank r learns what LoRA rank r cannot
// (a total update of rank > r; its singular values are printed).
#include "test_util.h"
#include "tiny_models.h"

#include "culora/culora_data.h"
#include "culora/culora_model.h"
#include "culora/culora_quant.h"
#include "culora/culora_train.h"

#include <algorithm>
#include <fstream>
#include <jansson.h>
#include <unistd.h>

extern "C" {
#include "model/model.h"
#include "model/model_relora.h"
#include "relora_ops.h"

// LAPACK (OpenBLAS): singular values of a general matrix, gfortran convention with the hidden
// lengths of the two character arguments.
void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a, const int *lda, double *s,
             double *u, const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork, int *info,
             size_t jobu_len, size_t jobvt_len);
}

using namespace culora_test;

namespace {

struct Opts {
    bool gpt2 = false;
    int64_t steps = 24, every = 6, warm = 0, warmup = 2, restart_warmup = 2;
    int32_t reset = CULORA_RELORA_RESET_MAGNITUDE;
    double ratio = 0.999, lr = 5e-3, weight_decay = 0.01, warm_lr = 0.0;
    int32_t train_rest = 1, rank = 4, schedule = CULORA_LR_COSINE_RESTARTS, quant = 0;
    float dropout = 0.1f;
    const char *ckpt = nullptr;
    int64_t ckpt_every = 0;
    const char *metrics = nullptr;
    const char *text = kTinyText;
    int32_t batch = 2, seq = 16;
};

// One ReLoRA run, built the same way every time (so two runs can be compared).
struct RRun {
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    culora_tokenizer *tok = nullptr;
    culora_dataset *ds = nullptr;
    culora_loader *ld = nullptr;
    culora_model *model = nullptr;
    culora_trainer *tr = nullptr;
    std::vector<float> losses, lrs;
    std::vector<int64_t> restarts;  // relora_restarts after each step
    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;

    explicit RRun(const Opts &o, bool make_trainer = true)
    {
        EXPECT_EQ(culora_tokenizer_create_bytes(ctx.get(), &tok), CULORA_OK);
        culora_dataset_params dp = CULORA_DATASET_PARAMS_INIT;
        dp.format = CULORA_DATA_FORMAT_TEXT;
        dp.seq_len = o.seq;
        EXPECT_EQ(culora_dataset_create_from_memory(ctx.get(), tok, "mem.txt", o.text, std::strlen(o.text), &dp, &ds),
                  CULORA_OK)
            << msg();
        culora_loader_params lp = CULORA_LOADER_PARAMS_INIT;
        lp.batch_size = o.batch;
        lp.seed = 5;
        EXPECT_EQ(culora_loader_create(ctx.get(), ds, &lp, &ld), CULORA_OK) << msg();
        culora_model_config cfg = o.gpt2 ? tiny_gpt2_config() : tiny_llama_config();
        lc.r = o.rank;
        lc.lora_alpha = 2.0 * o.rank;
        lc.lora_dropout = o.dropout;
        lc.target_modules = o.gpt2 ? kGpt2Linears : kLlamaLinears;
        lc.n_target_modules = o.gpt2 ? 3 : 7;
        lc.fan_in_fan_out = o.gpt2;
        culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
        mp.mode = CULORA_MODE_LORA;
        mp.lora = &lc;
        mp.seed = 11;
        mp.max_batch = o.batch;
        mp.max_seq = o.seq;
        mp.quant_format = o.quant;
        EXPECT_EQ(culora_model_create(ctx.get(), &cfg, 3, &mp, &model), CULORA_OK) << msg();
        if (!make_trainer) return;
        culora_train_params tp = CULORA_TRAIN_PARAMS_INIT;
        tp.total_steps = o.steps;
        tp.lr = o.lr;
        tp.weight_decay = o.weight_decay;
        tp.warmup_steps = o.warmup;
        tp.schedule = o.schedule;
        tp.restart_warmup = o.restart_warmup;
        tp.checkpoint_dir = o.ckpt;
        tp.checkpoint_every = o.ckpt_every;
        tp.metrics_path = o.metrics;
        tp.relora_every = o.every;
        tp.relora_reset = o.reset;
        tp.relora_reset_ratio = o.ratio;
        tp.warm_start_steps = o.warm;
        tp.warm_start_lr = o.warm_lr;
        tp.train_non_lora = o.train_rest;
        tp.relora_seed = 99;
        tp.callback = [](const culora_step_info *in, void *user) {
            auto *self = static_cast<RRun *>(user);
            if (!in->is_eval) {
                self->losses.push_back(in->loss);
                self->lrs.push_back(in->lr);
                self->restarts.push_back(in->relora_restarts);
            }
            return 0;
        };
        tp.user = this;
        EXPECT_EQ(culora_trainer_create(model, ld, nullptr, &tp, &tr), CULORA_OK) << msg();
    }
    ~RRun()
    {
        culora_trainer_destroy(tr);
        culora_model_destroy(model);
        culora_loader_destroy(ld);
        culora_dataset_destroy(ds);
        culora_tokenizer_destroy(tok);
    }
    std::string msg() { return culora_context_last_error(ctx.get()); }
    std::vector<float> flat(int which)  // 0 master, 1 m, 2 v
    {
        std::vector<float> v((size_t)model->n_train);
        EXPECT_EQ(model_state_download(model, which == 0 ? v.data() : nullptr, which == 1 ? v.data() : nullptr,
                                       which == 2 ? v.data() : nullptr),
                  CULORA_OK);
        return v;
    }
    std::vector<float> tensor(const mtensor &t)
    {
        std::vector<float> v((size_t)(t.rows * t.cols));
        EXPECT_EQ(model_tensor_download(model, &t, v.data()), CULORA_OK) << msg();
        return v;
    }
    mlinear &lin(int32_t i) { return *model_relora_linear(model, i); }
    std::vector<float> logits(const std::vector<int32_t> &ids, int64_t b, int64_t t)
    {
        culora_model_set_training(model, false);
        EXPECT_EQ(culora_model_forward(model, ids.data(), nullptr, b, t, nullptr), CULORA_OK) << msg();
        std::vector<float> out((size_t)(b * t * 256));
        EXPECT_EQ(culora_model_logits(model, 0, b * t, out.data()), CULORA_OK) << msg();
        culora_model_set_training(model, true);
        return out;
    }
};

std::string temp_dir(const std::string &name)
{
    std::string d = ::testing::TempDir() + "culora_relora_" + name + "_" + std::to_string(getpid());
    std::string cmd = "rm -rf '" + d + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    return d;
}

std::vector<int32_t> some_ids(int64_t n)
{
    std::vector<int32_t> ids((size_t)n);
    for (int64_t i = 0; i < n; i++) ids[(size_t)i] = (int32_t)((i * 37 + 11) % 256);
    return ids;
}

// Restarts every slot with the model's own restart function.
void restart_all(RRun &r, bool merge, int32_t prune, double ratio, uint64_t round, int64_t step)
{
    size_t bytes = 0;
    ASSERT_EQ(model_relora_workspace(r.model, prune, &bytes), CULORA_OK) << r.msg();
    std::vector<float> ws(bytes / 4 + 1);
    for (int32_t i = 0; i < r.model->n_loras; i++) {
        struct model_relora_restart rs = {};
        rs.merge = merge;
        rs.init_seed = 42;
        rs.round = round;
        rs.prune = prune;
        rs.prune_ratio = ratio;
        rs.prune_seed = 42;
        rs.step = step;
        ASSERT_EQ(model_relora_restart(r.model, i, &rs, ws.data(), bytes), CULORA_OK) << r.msg();
    }
}

// Sets every LoRA B to random values (a LoRA that changes the function), and the moments too.
void randomise_lora(RRun &r, uint64_t seed)
{
    std::vector<float> m = r.flat(1), v = r.flat(2), master = r.flat(0);
    for (int32_t i = 0; i < r.model->n_loras; i++) {
        mlora &lo = r.model->loras[i];
        std::vector<float> b = random_vec((size_t)(lo.B.rows * lo.B.cols), seed + (uint64_t)i, -0.3f, 0.3f);
        ASSERT_EQ(model_tensor_upload(r.model, &lo.B, b.data()), CULORA_OK);
    }
    master = r.flat(0);
    std::vector<float> mm = random_vec(m.size(), seed + 1000, -1e-3f, 1e-3f), vv = random_vec(v.size(), seed + 2000,
                                                                                              0.0f, 1e-6f);
    ASSERT_EQ(model_state_upload(r.model, master.data(), mm.data(), vv.data()), CULORA_OK);
}

// Logical elements of one slot's moment tensors: {offset, rows, cols, ld}.
struct Part {
    int64_t off, rows, cols, ld;
};
std::vector<Part> lora_parts(const culora_model *m)
{
    std::vector<Part> p;
    for (int32_t i = 0; i < m->n_loras; i++) {
        const mlora &lo = m->loras[i];
        p.push_back({lo.A.off, lo.A.rows, lo.A.cols, lo.A.ld});
        p.push_back({lo.B.off, lo.B.rows, lo.B.cols, lo.B.ld});
    }
    return p;
}

bool in_lora(const std::vector<Part> &parts, int64_t e)
{
    for (const Part &p : parts)
        if (e >= p.off && e < p.off + p.rows * p.ld) return true;
    return false;
}

}  // namespace

// ---- the restart op -------------------------------------------------------------------------

TEST(ReloraOp, MagnitudePruningIsTorchQuantile)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    const int64_t d = 40, k = 24, r = 3, lda = 24, ldb = 5;  // B has padding columns that must stay untouched
    for (double ratio : {0.999, 0.9, 0.5, 0.0, 1.0}) {
        std::vector<float> w0((size_t)(d * k), 0.0f), a((size_t)(r * lda)), b((size_t)(d * ldb));
        std::vector<float> am = random_vec(a.size(), 1), av = random_vec(a.size(), 2, 0.0f, 1.0f);
        std::vector<float> bm = random_vec(b.size(), 3), bv = random_vec(b.size(), 4, 0.0f, 1.0f);
        const std::vector<float> bm0 = bm, bv0 = bv;
        culora_relora_restart_args x = {};
        x.d = d, x.k = k, x.r = r, x.merge = false, x.w0 = w0.data(), x.ldw0 = k, x.w0_dtype = CULORA_DTYPE_F32;
        x.a = a.data(), x.lda = lda, x.b = b.data(), x.ldb = ldb;
        x.a_m = am.data(), x.a_v = av.data(), x.b_m = bm.data(), x.b_v = bv.data();
        x.init_scale = 0.1, x.prune = CULORA_RELORA_PRUNE_MAGNITUDE, x.prune_ratio = ratio;
        std::vector<float> ws(4096);
        ASSERT_EQ(culora_relora_restart(ctx.get(), &x, ws.data(), ws.size() * 4, nullptr), CULORA_OK)
            << culora_context_last_error(ctx.get());
        // reference: sort |t| and interpolate as torch.quantile does (fp32 q·(n−1), lerp)
        // guard: the pruned second moment for a first moment (m = 0 where v = 0), else nullptr
        auto check = [&](const std::vector<float> &before, const std::vector<float> &after, int64_t rows, int64_t cols,
                         int64_t ld, const char *what, const std::vector<float> *guard) {
            std::vector<float> s;
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < cols; j++) s.push_back(std::fabs(before[(size_t)(i * ld + j)]));
            std::sort(s.begin(), s.end());
            const int64_t n = (int64_t)s.size();
            const float rank = (float)ratio * (float)(n - 1);
            const int64_t lo = (int64_t)rank, hi = std::min<int64_t>((int64_t)std::ceil(rank), n - 1);
            const float thr = relora_lerp(s[(size_t)lo], s[(size_t)hi], rank - (float)lo);
            int64_t zeroed = 0;
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < ld; j++) {
                    const float b0 = before[(size_t)(i * ld + j)], b1 = after[(size_t)(i * ld + j)];
                    if (j >= cols) {
                        EXPECT_EQ(b1, b0) << what << ": padding changed";
                        continue;
                    }
                    const bool kept = std::fabs(b0) > thr && (guard == nullptr || (*guard)[(size_t)(i * ld + j)] != 0.0f);
                    EXPECT_EQ(b1, kept ? b0 : 0.0f) << what << " ratio " << ratio;
                    zeroed += std::fabs(b0) <= thr;
                }
            // distinct random values: exactly the values up to rank lo fall under the threshold
            const int64_t want = ratio >= 1.0 ? n : lo + 1;
            EXPECT_EQ(zeroed, want) << what << " ratio " << ratio << " of " << n;
            EXPECT_LE(std::fabs((double)zeroed / (double)n - ratio), 1.0 / (double)n + 1e-12) << what;
        };
        check(bv0, bv, d, r, ldb, "B.v", nullptr);
        check(bm0, bm, d, r, ldb, "B.m", &bv);
        for (float x2 : a) EXPECT_LE(std::fabs(x2), 0.1f);  // re-initialised within the bound
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < r; j++) EXPECT_EQ(b[(size_t)(i * ldb + j)], 0.0f);
    }
}

TEST(ReloraOp, RandomPruningIsSeededAndHasTheRequestedRate)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    const int64_t d = 512, k = 64, r = 16;
    auto run = [&](uint64_t seed, uint64_t stream, double ratio) {
        std::vector<float> w0((size_t)(d * k)), a((size_t)(r * k)), b((size_t)(d * r));
        std::vector<float> am(a.size(), 1.0f), av(a.size(), 1.0f), bm(b.size(), 1.0f), bv(b.size(), 1.0f);
        culora_relora_restart_args x = {};
        x.d = d, x.k = k, x.r = r, x.w0 = w0.data(), x.ldw0 = k, x.w0_dtype = CULORA_DTYPE_F32;
        x.a = a.data(), x.lda = k, x.b = b.data(), x.ldb = r;
        x.a_m = am.data(), x.a_v = av.data(), x.b_m = bm.data(), x.b_v = bv.data();
        x.init_scale = 0.1, x.prune = CULORA_RELORA_PRUNE_RANDOM, x.prune_ratio = ratio;
        x.prune_seed = seed, x.prune_stream = stream;
        EXPECT_EQ(culora_relora_restart(ctx.get(), &x, nullptr, 0, nullptr), CULORA_OK);
        for (size_t i = 0; i < bm.size(); i++)  // the second-moment guard
            if (bv[i] == 0.0f) EXPECT_EQ(bm[i], 0.0f);
        return bv;
    };
    for (double ratio : {0.999, 0.9, 0.5}) {
        std::vector<float> m1 = run(7, 100, ratio), m2 = run(7, 100, ratio), m3 = run(7, 104, ratio);
        EXPECT_EQ(m1, m2) << "same (seed, step, tensor): same mask";
        EXPECT_NE(m1, m3) << "another step: another mask";
        const double n = (double)m1.size();
        const double zeroed = (double)std::count(m1.begin(), m1.end(), 0.0f);
        // Bernoulli(ratio) per value: the count is within 5 standard deviations of n·ratio
        EXPECT_NEAR(zeroed, n * ratio, 5.0 * std::sqrt(n * ratio * (1 - ratio)) + 1) << ratio;
    }
}

TEST(ReloraOp, RejectsBadArguments)
{
    auto ctx = make_ctx(CULORA_BACKEND_CPU);
    std::vector<float> w0(64), a(16), b(16), m(16);
    culora_relora_restart_args x = {};
    x.d = 4, x.k = 4, x.r = 4, x.merge = true, x.scaling = 1, x.w0 = w0.data(), x.ldw0 = 4;
    x.w0_dtype = CULORA_DTYPE_F32, x.a = a.data(), x.lda = 4, x.b = b.data(), x.ldb = 4, x.init_scale = 0.5;
    EXPECT_EQ(culora_relora_restart(ctx.get(), &x, nullptr, 0, nullptr), CULORA_OK);
    x.prune = CULORA_RELORA_PRUNE_MAGNITUDE;  // the moments are missing
    EXPECT_EQ(culora_relora_restart(ctx.get(), &x, nullptr, 0, nullptr), CULORA_ERR_INVALID_ARG);
    x.a_m = x.a_v = x.b_m = m.data(), x.b_v = m.data();  // one buffer for four outputs
    EXPECT_EQ(culora_relora_restart(ctx.get(), &x, nullptr, 0, nullptr), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("overlaps"), std::string::npos);
    x.prune = CULORA_RELORA_PRUNE_NONE;
    x.prune_ratio = 1.5;
    EXPECT_EQ(culora_relora_restart(ctx.get(), &x, nullptr, 0, nullptr), CULORA_ERR_INVALID_ARG);
}

// ---- restarts on a model --------------------------------------------------------------------

TEST(Relora, RestartKeepsTheFunctionAndReinitialisesLikeLora)
{
    Opts o;
    RRun r(o, false);
    randomise_lora(r, 1);
    const std::vector<int32_t> ids = some_ids(2 * 16);
    const std::vector<float> before = r.logits(ids, 2, 16);
    restart_all(r, true, CULORA_RELORA_PRUNE_MAGNITUDE, 0.999, 5, 100);
    const std::vector<float> after = r.logits(ids, 2, 16);
    // x·(W0 + s·B·A)ᵀ vs x·W0ᵀ + s·(x·Aᵀ)·Bᵀ in fp32: the same sums in another order and one
    // rounding of W0 + s·B·A; logits here are O(1) (max |logit| printed), so 2e-5 absolute is ~100 ulps.
    double max_abs = 0, max_logit = 0;
    for (size_t i = 0; i < before.size(); i++) {
        max_abs = std::max(max_abs, (double)std::fabs(after[i] - before[i]));
        max_logit = std::max(max_logit, (double)std::fabs(before[i]));
    }
    std::cout << "  logits before/after a restart: max |diff| " << max_abs << " (max |logit| " << max_logit << ")\n";
    EXPECT_LT(max_abs, 2e-5);
    EXPECT_GT(max_logit, 0.1);  // not a vacuous comparison
    // A is exactly what the LoRA initialisation draws for (seed, round); B is 0
    RRun fresh(o, false);
    for (int32_t i = 0; i < r.model->n_loras; i++) {
        ASSERT_EQ(model_lora_reinit(fresh.model, i, 42, 5), CULORA_OK);
        EXPECT_EQ(r.tensor(r.model->loras[i].A), fresh.tensor(fresh.model->loras[i].A)) << "slot " << i;
        for (float x : r.tensor(r.model->loras[i].B)) ASSERT_EQ(x, 0.0f);
    }
    // and the restart really changed W0 (the LoRA update went into it)
    EXPECT_NE(r.tensor(r.lin(0).W), fresh.tensor(fresh.lin(0).W));
}

TEST(Relora, PruningTouchesOnlyTheLoraMomentsAndZeroesTheRequestedFraction)
{
    Opts o;
    RRun r(o);  // train_non_lora: embeddings, norms, lm_head are trainable too
    ASSERT_TRUE(r.tr);
    for (int i = 0; i < 3; i++) ASSERT_EQ(culora_trainer_step(r.tr, nullptr), CULORA_OK) << r.msg();
    const std::vector<float> m0 = r.flat(1), v0 = r.flat(2), p0 = r.flat(0);
    restart_all(r, true, CULORA_RELORA_PRUNE_MAGNITUDE, 0.9, 1, 3);
    const std::vector<float> m1 = r.flat(1), v1 = r.flat(2), p1 = r.flat(0);
    const std::vector<Part> parts = lora_parts(r.model);
    int64_t n_other = 0;
    for (int64_t e = 0; e < (int64_t)m0.size(); e++) {
        if (in_lora(parts, e)) continue;
        n_other++;
        ASSERT_EQ(m1[(size_t)e], m0[(size_t)e]) << "non-LoRA moment " << e;
        ASSERT_EQ(v1[(size_t)e], v0[(size_t)e]) << "non-LoRA moment " << e;
        ASSERT_EQ(p1[(size_t)e], p0[(size_t)e]) << "non-LoRA parameter " << e;
    }
    EXPECT_GT(n_other, 10000);  // embeddings, norms, lm_head: the test covers them
    // each second-moment tensor: exactly floor(0.9·(n−1)) + 1 of its n values zeroed (distinct
    // magnitudes); each first moment: its own as many smallest, and wherever v was zeroed
    for (const Part &p : parts) {
        const int64_t n = p.rows * p.cols, lo = (int64_t)(0.9f * (float)(n - 1));
        int64_t zv = 0, zm = 0, zm_own = 0;
        std::vector<float> mags;
        for (int64_t i = 0; i < p.rows; i++)
            for (int64_t j = 0; j < p.cols; j++) mags.push_back(std::fabs(m0[(size_t)(p.off + i * p.ld + j)]));
        std::sort(mags.begin(), mags.end());
        for (int64_t i = 0; i < p.rows; i++)
            for (int64_t j = 0; j < p.cols; j++) {
                const size_t e = (size_t)(p.off + i * p.ld + j);
                zv += v1[e] == 0.0f;
                zm += m1[e] == 0.0f;
                zm_own += std::fabs(m0[e]) <= mags[(size_t)lo];
                if (v1[e] == 0.0f) ASSERT_EQ(m1[e], 0.0f) << "second-moment guard at " << e;
                if (m1[e] != 0.0f) ASSERT_EQ(m1[e], m0[e]);
            }
        EXPECT_EQ(zv, lo + 1) << "v tensor at " << p.off << " of " << n;
        EXPECT_EQ(zm_own, lo + 1) << "m tensor at " << p.off << " of " << n;
        EXPECT_GE(zm, lo + 1);
    }
}

TEST(Relora, RestartsAtTheReferenceStepsAndTheMergedBaseIsTheSumOfTheUpdates)
{
    Opts o;
    o.steps = 24;
    o.every = 6;
    o.dropout = 0.0f;
    RRun r(o);
    ASSERT_TRUE(r.tr);
    const int32_t n = r.model->n_loras;
    // expected base: W0 + Σ s·B·A over the restarts, in fp64 on the host
    std::vector<std::vector<double>> want(n);
    for (int32_t i = 0; i < n; i++) {
        const std::vector<float> w = r.tensor(r.lin(i).W);
        want[i].assign(w.begin(), w.end());
    }
    const double s = 2.0;  // alpha / r = 2r / r
    for (int64_t step = 1; step <= o.steps; step++) {
        const int64_t v = step;  // no warm start
        const bool restart = v > o.every && v % o.every == 1;
        if (restart) {
            // The jagged schedule's rate is exactly 0 at this step's update (checked below), so
            // the LoRA values now are the ones the restart merges after the update.
            for (int32_t i = 0; i < n; i++) {
                const mlora &lo = r.model->loras[i];
                const std::vector<float> a = r.tensor(lo.A), b = r.tensor(lo.B);
                for (int64_t row = 0; row < lo.B.rows; row++)
                    for (int64_t col = 0; col < lo.A.cols; col++) {
                        double acc = 0;
                        for (int32_t q = 0; q < lo.r; q++)
                            acc += (double)b[(size_t)(row * lo.r + q)] * (double)a[(size_t)(q * lo.A.cols + col)];
                        want[i][(size_t)(row * lo.A.cols + col)] += s * acc;
                    }
            }
        }
        culora_step_info in;
        ASSERT_EQ(culora_trainer_step(r.tr, &in), CULORA_OK) << r.msg();
        r.lrs.push_back(in.lr);
        r.restarts.push_back(in.relora_restarts);
        ASSERT_EQ((size_t)step, r.restarts.size());
        EXPECT_EQ(r.restarts.back() - (step > 1 ? r.restarts[(size_t)step - 2] : 0), restart ? 1 : 0) << step;
        if (restart) EXPECT_EQ(r.lrs.back(), 0.0f) << "the update before a restart has the rate 0, step " << step;
    }
    EXPECT_EQ(r.restarts.back(), 3);  // after steps 7, 13, 19
    for (int32_t i = 0; i < n; i++) {
        // Three fp32 merges, each one rounding of W + s·B·A (|W| ~ 0.05, |s·B·A| ≲ 0.01) plus
        // OpenBLAS's fp32 sums of r = 4 products: a few ulps of 0.1, so 1e-7 + 1e-6·|w|.
        EXPECT_TRUE(all_close("merged base", r.tensor(r.lin(i).W), want[i], Tol{1e-7, 1e-6, -1})) << "slot " << i;
    }
    // the merges are not vacuous: the base moved
    RRun fresh(o, false);
    EXPECT_NE(r.tensor(r.lin(0).W), fresh.tensor(fresh.lin(0).W));
}

TEST(Relora, JaggedScheduleWithWarmStart)
{
    Opts o;
    o.steps = 28;
    o.warm = 4;
    o.every = 6;
    o.warmup = 2;
    o.restart_warmup = 2;
    o.warm_lr = 1e-3;  // the warm start's own peak rate
    RRun r(o);
    ASSERT_TRUE(r.tr);
    const int64_t n_warm = r.model->n_train;
    Opts no_warm = o;
    no_warm.warm = 0;
    no_warm.steps = 24;
    RRun plain(no_warm);
    const int64_t n_lora_phase = plain.model->n_train;  // LoRA + the non-LoRA parameters
    EXPECT_GT(n_warm, n_lora_phase + 7 * 2 * 32 * 32);   // + every adapted W0 during the warm start
    ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
    ASSERT_EQ(r.lrs.size(), 28u);
    // warm start: the first 4 steps of a cosine-with-floor run of 28 steps (COSINE_MIN, warmup 2)
    const double pi = 3.14159265358979323846;
    for (int64_t step = 0; step < 4; step++) {
        const double mult = step < 2 ? step / 2.0 : 0.1 + 0.9 * 0.5 * (1 + std::cos(pi * (step - 2) / 26.0));
        EXPECT_FLOAT_EQ(r.lrs[(size_t)step], (float)(o.warm_lr * mult)) << step;
    }
    // then the jagged cosine over the 24 remaining steps, counted from the end of the warm start:
    // the reference's lambda (training_utils.get_cosine_schedule_with_multiple_warmups)
    for (int64_t step = 4; step < 28; step++) {
        const int64_t st = step - 4, rs = st % 6;
        double mult;
        if (st < 2)
            mult = st / 2.0;
        else if (rs < 2 && st >= 6) {
            const double end = (double)((st / 6) * 6 + 2 - 2) / 22.0;
            mult = rs / 2.0 * (0.1 + 0.9 * 0.5 * (1 + std::cos(pi * end)));
        } else
            mult = 0.1 + 0.9 * 0.5 * (1 + std::cos(pi * (st - 2) / 22.0));
        EXPECT_FLOAT_EQ(r.lrs[(size_t)step], (float)(o.lr * mult)) << step;
    }
    // restarts after steps u with v = u − 4 > 6 and v % 6 == 1: u = 11, 17, 23
    for (int64_t u = 1; u <= 28; u++) {
        const int64_t want = u >= 23 ? 3 : u >= 17 ? 2 : u >= 11 ? 1 : 0;
        EXPECT_EQ(r.restarts[(size_t)u - 1], want) << u;
    }
    // the warm start trained the adapted linears: they left the flat buffers afterwards
    EXPECT_EQ(r.model->n_train, n_lora_phase);  // the adapted W0 left the flat buffers...
    RRun fresh(o, false);
    for (int32_t i = 0; i < r.model->n_loras; i++)  // ...and every base weight moved
        EXPECT_NE(r.tensor(r.lin(i).W), fresh.tensor(fresh.lin(i).W)) << i;
    EXPECT_TRUE(r.lin(0).lora != nullptr);
}

// Straight run vs. a run stopped at `stop`, checkpointed, and resumed by a new process.
void expect_resume_identical(const Opts &base, int64_t stop, const char *name)
{
    const std::string d1 = temp_dir(std::string(name) + "_a"), d2 = temp_dir(std::string(name) + "_b");
    std::vector<float> straight_losses, straight_master, straight_m;
    std::vector<std::vector<float>> straight_base;
    {
        Opts o = base;
        o.ckpt = d1.c_str();
        RRun r(o);
        ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
        straight_losses = r.losses;
        straight_master = r.flat(0);
        straight_m = r.flat(1);
        for (int32_t i = 0; i < r.model->n_loras; i++) straight_base.push_back(r.tensor(r.lin(i).W));
    }
    {
        Opts o = base;
        RRun r(o);
        for (int64_t i = 0; i < stop; i++) ASSERT_EQ(culora_trainer_step(r.tr, nullptr), CULORA_OK) << r.msg();
        ASSERT_EQ(culora_trainer_save_checkpoint(r.tr, d2.c_str()), CULORA_OK) << r.msg();
    }
    Opts o = base;
    o.ckpt = d2.c_str();
    RRun r(o);
    ASSERT_EQ(culora_trainer_resume(r.tr, d2.c_str()), CULORA_OK) << r.msg();
    ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
    ASSERT_EQ(r.losses.size(), (size_t)(base.steps - stop));
    for (size_t i = 0; i < r.losses.size(); i++)
        EXPECT_EQ(r.losses[i], straight_losses[(size_t)stop + i]) << name << ": step " << stop + 1 + (int64_t)i;
    EXPECT_EQ(r.flat(0), straight_master) << name;
    EXPECT_EQ(r.flat(1), straight_m) << name;
    for (int32_t i = 0; i < r.model->n_loras; i++) EXPECT_EQ(r.tensor(r.lin(i).W), straight_base[(size_t)i]) << name;
}

TEST(Relora, ResumeRightBeforeAndRightAfterARestartIsBitIdentical)
{
    Opts o;
    o.steps = 24;
    o.every = 6;  // restarts after steps 7, 13, 19
    expect_resume_identical(o, 6, "before");
    expect_resume_identical(o, 7, "after");
    o.reset = CULORA_RELORA_RESET_RANDOM;
    expect_resume_identical(o, 13, "random");
}

TEST(Relora, ResumeAcrossTheEndOfTheWarmStartIsBitIdentical)
{
    Opts o;
    o.steps = 16;
    o.warm = 4;
    o.every = 6;  // restart after step 11
    expect_resume_identical(o, 2, "warm");     // inside the warm start
    expect_resume_identical(o, 4, "switch");   // right after the switch to LoRA
    expect_resume_identical(o, 11, "restart"); // right after the restart
}

TEST(Relora, Gpt2WarmStartTrainsBiasesThenFreezesThem)
{
    // GPT-2: fused c_attn, biases on every linear, lm_head tied to wte
    Opts o;
    o.gpt2 = true;
    o.steps = 16;
    o.warm = 4;
    o.every = 6;  // restart after step 11
    RRun r(o);
    ASSERT_TRUE(r.tr) << r.msg();
    EXPECT_EQ(r.model->n_loras, 8);
    mlinear &qkv = r.model->layers[0].qkv;  // (detached from its LoRA during the warm start)
    EXPECT_EQ(qkv.lora, nullptr);
    const std::vector<float> bias0 = r.tensor(qkv.bias);
    for (int i = 0; i < 4; i++) ASSERT_EQ(culora_trainer_step(r.tr, nullptr), CULORA_OK) << r.msg();
    const std::vector<float> bias4 = r.tensor(qkv.bias), wte4 = r.tensor(r.model->wte);
    EXPECT_NE(bias4, bias0) << "the warm start trains the adapted linears' biases";
    EXPECT_FALSE(qkv.bias.trainable);
    EXPECT_EQ(qkv.lora, &r.model->loras[0]);
    ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
    EXPECT_EQ(r.tensor(qkv.bias), bias4) << "frozen in the LoRA phase (no bias gradient there)";
    EXPECT_NE(r.tensor(r.model->wte), wte4) << "the tied embedding keeps training (train_non_lora)";
    EXPECT_EQ(r.restarts.back(), 1);
    expect_resume_identical(o, 11, "gpt2");
}

class ReloraQuant : public ::testing::TestWithParam<int32_t> {};

TEST_P(ReloraQuant, BaseIsRequantizedAndTheErrorReported)
{
    const std::string metrics = temp_dir("qmetrics") + ".jsonl";
    std::remove(metrics.c_str());
    Opts o;
    o.steps = 12;
    o.every = 4;  // restarts after 5, 9
    o.quant = GetParam();
    o.metrics = metrics.c_str();
    o.lr = 2e-2;
    RRun r(o);
    ASSERT_TRUE(r.tr) << r.msg();
    const std::vector<float> base0 = r.tensor(r.lin(0).W);  // dequantized
    ASSERT_EQ(culora_trainer_run(r.tr), CULORA_OK) << r.msg();
    EXPECT_EQ(r.restarts.back(), 2);
    EXPECT_NE(r.tensor(r.lin(0).W), base0);  // requantized with the merged update
    std::ifstream f(metrics);
    std::string line;
    int n_restart = 0;
    while (std::getline(f, line)) {
        json_error_t err;
        json_t *doc = json_loads(line.c_str(), 0, &err);
        ASSERT_NE(doc, nullptr) << line;
        json_t *rq = json_object_get(doc, "requant");
        if (json_object_get(doc, "relora_restart") != nullptr) {
            n_restart++;
            ASSERT_TRUE(json_is_object(rq)) << line;
            EXPECT_EQ(json_object_size(rq), (size_t)r.model->n_loras);
            const char *key;
            json_t *val;
            json_object_foreach(rq, key, val) {
                const double rel = json_number_value(json_object_get(val, "rel"));
                // relative RMS error of requantizing a Gaussian-like weight: NF4 ~0.1 (4 bits,
                // absmax blocks of 64), int8 ~0.01 (row-wise absmax, 127 levels); never exact
                EXPECT_GT(rel, 1e-4) << key;
                EXPECT_LT(rel, GetParam() == CULORA_QUANT_INT8 ? 0.03 : 0.2) << key;
            }
        }
        json_decref(doc);
    }
    EXPECT_EQ(n_restart, 2);
    std::remove(metrics.c_str());
}

TEST_P(ReloraQuant, ResumeAcrossARestartIsBitIdentical)
{
    Opts o;
    o.steps = 12;
    o.every = 4;
    o.quant = GetParam();
    expect_resume_identical(o, 5, culora_quant_format_name(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Formats, ReloraQuant, ::testing::Values(CULORA_QUANT_NF4, CULORA_QUANT_INT8),
                         [](const ::testing::TestParamInfo<int32_t> &i) {
                             return std::string(culora_quant_format_name(i.param));
                         });

TEST(Relora, RefusesWhatItCannotDo)
{
    Opts o;
    RRun r(o, false);
    culora_train_params tp = CULORA_TRAIN_PARAMS_INIT;
    tp.total_steps = 24;
    tp.schedule = CULORA_LR_COSINE_RESTARTS;
    tp.restart_warmup = 2;
    tp.relora_every = 1;
    culora_trainer *tr = nullptr;
    EXPECT_EQ(culora_trainer_create(r.model, r.ld, nullptr, &tp, &tr), CULORA_ERR_INVALID_ARG);
    tp.relora_every = 6;
    tp.cycle_length = 8;  // the jagged schedule would restart elsewhere
    EXPECT_EQ(culora_trainer_create(r.model, r.ld, nullptr, &tp, &tr), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(r.msg().find("must agree"), std::string::npos) << r.msg();
    tp.cycle_length = 0;
    tp.total_steps = 25;  // not a multiple of the restart interval
    EXPECT_EQ(culora_trainer_create(r.model, r.ld, nullptr, &tp, &tr), CULORA_ERR_INVALID_ARG);
    tp.total_steps = 24;
    tp.relora_reset_ratio = 2;
    EXPECT_EQ(culora_trainer_create(r.model, r.ld, nullptr, &tp, &tr), CULORA_ERR_INVALID_ARG);
    EXPECT_EQ(tr, nullptr);
    // LoRA-FA freezes A, which a restart re-initialises
    Opts fa;
    RRun rf(fa, false);
    culora_model_destroy(rf.model);
    culora_model_config cfg = tiny_llama_config();
    culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
    mp.mode = CULORA_MODE_LORA_FA;
    mp.lora = &rf.lc;
    rf.lc.target_modules = kLlamaLinears;
    rf.lc.n_target_modules = 7;
    mp.max_batch = 2;
    mp.max_seq = 16;
    ASSERT_EQ(culora_model_create(rf.ctx.get(), &cfg, 3, &mp, &rf.model), CULORA_OK);
    tp.relora_reset_ratio = 0.999;
    EXPECT_EQ(culora_trainer_create(rf.model, rf.ld, nullptr, &tp, &tr), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(rf.msg().find("LoRA mode"), std::string::npos) << rf.msg();
}

// ---- end to end -----------------------------------------------------------------------------

namespace {

// Singular values (descending) of a dense [rows, cols] matrix.
std::vector<double> singular_values(const std::vector<double> &a_rowmajor, int rows, int cols)
{
    // LAPACK is column-major: the row-major [rows, cols] buffer is the column-major [cols, rows]
    // transpose, which has the same singular values.
    std::vector<double> a = a_rowmajor, s((size_t)std::min(rows, cols));
    int m = cols, n = rows, lda = cols, ldu = 1, ldvt = 1, info = 0, lwork = -1;
    double wq = 0, du = 0, dvt = 0;
    dgesvd_("N", "N", &m, &n, a.data(), &lda, s.data(), &du, &ldu, &dvt, &ldvt, &wq, &lwork, &info, 1, 1);
    lwork = (int)wq;
    std::vector<double> work((size_t)lwork);
    dgesvd_("N", "N", &m, &n, a.data(), &lda, s.data(), &du, &ldu, &dvt, &ldvt, work.data(), &lwork, &info, 1, 1);
    EXPECT_EQ(info, 0);
    return s;
}

}  // namespace

TEST(Relora, RankOneRestartsLearnWhatRankOneLoraCannot)
{
    // A frozen random base, rank-1 adapters on every linear, nothing else trained: plain LoRA can
    // move each weight along one direction only; ReLoRA merges a new direction at every restart.
    std::string text;
    for (int i = 0; i < 6; i++) text += kTinyText;
    Opts o;
    o.steps = 240;
    o.every = 20;
    o.rank = 1;
    o.train_rest = 0;
    o.dropout = 0.0f;
    o.lr = 3e-2;
    o.weight_decay = 0.0;
    o.warmup = 5;
    o.restart_warmup = 3;
    o.text = text.c_str();
    o.batch = 4;
    o.seq = 32;
    Opts plain = o;
    plain.every = 0;
    plain.schedule = CULORA_LR_COSINE;
    RRun relora(o), lora(plain);
    ASSERT_TRUE(relora.tr && lora.tr);
    const std::vector<float> w_init = relora.tensor(relora.lin(3).W);  // layer 0 o_proj
    ASSERT_EQ(culora_trainer_run(relora.tr), CULORA_OK) << relora.msg();
    ASSERT_EQ(culora_trainer_run(lora.tr), CULORA_OK) << lora.msg();
    auto tail_mean = [](const std::vector<float> &l) {
        double s = 0;
        for (size_t i = l.size() - 20; i < l.size(); i++) s += l[i];
        return s / 20;
    };
    const double lr_loss = tail_mean(lora.losses), rl_loss = tail_mean(relora.losses);
    std::cout << "  rank-1 LoRA loss " << lora.losses.front() << " -> " << lr_loss << ", ReLoRA (" << relora.restarts.back()
              << " restarts) -> " << rl_loss << " (mean of the last 20 steps)\n";
    EXPECT_EQ(relora.restarts.back(), 11);
    EXPECT_LT(rl_loss, lr_loss - 0.05);
    // the total update of that layer: merged base − initial base + the live s·B·A
    const mlinear &lin = relora.lin(3);
    const std::vector<float> w = relora.tensor(lin.W), a = relora.tensor(lin.lora->A), b = relora.tensor(lin.lora->B);
    const int rows = (int)lin.out, cols = (int)lin.in;
    std::vector<double> dw((size_t)(rows * cols));
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            dw[(size_t)(i * cols + j)] = (double)w[(size_t)(i * cols + j)] - (double)w_init[(size_t)(i * cols + j)] +
                                         lin.lora->scaling * (double)b[(size_t)i] * (double)a[(size_t)j];
    const std::vector<double> sv = singular_values(dw, rows, cols);
    int rank = 0;
    std::cout << "  singular values of the total update (o_proj, layer 0):";
    for (double x : sv) {
        std::cout << " " << x;
        // fp32 storage of ΔW: noise ~1e-7 of the largest value; 1e-3 of it is clearly signal
        rank += x > 1e-3 * sv[0];
    }
    std::cout << "\n  numerical rank " << rank << " (LoRA rank 1)\n";
    EXPECT_GT(rank, 1);
    EXPECT_GE(rank, 5);  // 11 restarts + the live pair: many directions
}
