// test_relora_cuda.cpp — the CUDA ReLoRA restart (kernels/relora.cu) against the CPU reference
// (host/cpu/relora.c) on ragged and real shapes: merged fp32 master within fp32 summation-order
// tolerance, its bf16 copy its exact rounding, A re-initialised bit for bit, B zero, every pruned
// moment bit for bit (magnitude with and without ties, random, zero), deterministic; then a ReLoRA
// training run on CUDA against the same run on the CPU, and its resume across a restart.
// Label gpu: skips without a device.
#include "test_util.h"
#include "tiny_models.h"

#include "culora/culora_data.h"
#include "culora/culora_model.h"
#include "culora/culora_train.h"

#include <unistd.h>

extern "C" {
#include "relora_ops.h"
}

using namespace culora_test;

namespace {

int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

std::vector<float> bf16_round(const std::vector<float> &v) { return round_bf16(v); }

struct Case {
    int64_t d, k, r;
    int32_t prune;
    bool ties;      // moments from a small set of values (equal magnitudes around the quantile)
    int w0_mode;    // 0: bf16 W0 + fp32 master, 1: fp32 W0 (a dequantized weight), 2: bf16 W0 alone
};

struct Host {
    std::vector<float> w, a, b, am, av, bm, bv;
};

Host make_inputs(const Case &c, int64_t ldw, int64_t lda, int64_t ldb)
{
    Host h;
    h.w = random_vec((size_t)(c.d * ldw), 1, -0.05f, 0.05f);
    h.a = random_vec((size_t)(c.r * lda), 2, -0.2f, 0.2f);
    h.b = random_vec((size_t)(c.d * ldb), 3, -0.1f, 0.1f);
    h.am = random_vec(h.a.size(), 4, -1e-2f, 1e-2f);
    h.av = random_vec(h.a.size(), 5, 0.0f, 1e-4f);
    h.bm = random_vec(h.b.size(), 6, -1e-2f, 1e-2f);
    h.bv = random_vec(h.b.size(), 7, 0.0f, 1e-4f);
    if (c.ties)
        for (auto *v : {&h.am, &h.av, &h.bm, &h.bv})
            for (float &x : *v) x = std::round(x * 4e3f) / 4e3f;  // ~80 distinct magnitudes
    // values the forward never sees are irrelevant, but the kernels must keep padding as it is:
    // make every copy bf16-exact so that the CPU and CUDA inputs are the same numbers
    h.w = bf16_round(h.w);
    h.a = bf16_round(h.a);
    h.b = bf16_round(h.b);
    return h;
}

culora_relora_restart_args base_args(const Case &c)
{
    culora_relora_restart_args x = {};
    x.d = c.d, x.k = c.k, x.r = c.r, x.merge = true, x.scaling = 2.0f;
    x.init = CULORA_RELORA_INIT_UNIFORM, x.init_scale = 1.0 / std::sqrt((double)c.k);
    x.init_seed = 1234, x.init_stream = 0x10000000ull + (3ull << 8) + (2ull << 32);
    x.prune = c.prune, x.prune_ratio = 0.999, x.prune_seed = 99, x.prune_stream = (7ull << 24) + (3ull << 2);
    return x;
}

}  // namespace

class ReloraCuda : public CudaTest {};

TEST_F(ReloraCuda, RestartMatchesTheCpuReference)
{
    auto cpu = make_ctx(CULORA_BACKEND_CPU), gpu = make_ctx(CULORA_BACKEND_CUDA);
    ASSERT_TRUE(cpu && gpu);
    const Case cases[] = {
        {37, 53, 5, CULORA_RELORA_PRUNE_MAGNITUDE, false, 0},  {256, 512, 16, CULORA_RELORA_PRUNE_MAGNITUDE, false, 0},
        {64, 128, 128, CULORA_RELORA_PRUNE_MAGNITUDE, true, 0}, {100, 72, 8, CULORA_RELORA_PRUNE_RANDOM, false, 1},
        {33, 40, 3, CULORA_RELORA_PRUNE_ZERO, false, 2},        {1, 1, 1, CULORA_RELORA_PRUNE_MAGNITUDE, false, 0},
        {1024, 4096, 64, CULORA_RELORA_PRUNE_MAGNITUDE, false, 0},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE("d " + std::to_string(c.d) + " k " + std::to_string(c.k) + " r " + std::to_string(c.r) +
                     " prune " + std::to_string(c.prune) + " ties " + std::to_string(c.ties) + " w0 " +
                     std::to_string(c.w0_mode));
        const int64_t ldw = round8(c.k), lda = round8(c.k), ldb = round8(c.r);
        const Host h = make_inputs(c, ldw, lda, ldb);
        // ---- CPU reference (fp32 everything)
        Host ref = h;
        culora_relora_restart_args x = base_args(c);
        x.w0 = ref.w.data(), x.ldw0 = ldw, x.w0_dtype = CULORA_DTYPE_F32;
        x.a = ref.a.data(), x.lda = lda, x.b = ref.b.data(), x.ldb = ldb;
        x.a_m = ref.am.data(), x.a_v = ref.av.data(), x.b_m = ref.bm.data(), x.b_v = ref.bv.data();
        size_t wsb = 0;
        ASSERT_EQ(culora_relora_restart_workspace(cpu.get(), &x, &wsb), CULORA_OK);
        std::vector<float> ws(wsb / 4 + 1);
        ASSERT_EQ(culora_relora_restart(cpu.get(), &x, ws.data(), wsb, nullptr), CULORA_OK)
            << culora_context_last_error(cpu.get());
        // ---- CUDA, twice (determinism)
        std::vector<float> got_master, got_w, got_a, got_b, got_m[4];
        std::vector<uint16_t> got_wb, got_ac, got_bc;
        for (int rep = 0; rep < 2; rep++) {
            const size_t nw = h.w.size(), na = h.a.size(), nb = h.b.size();
            Buf w0(gpu.get(), nw * 4), master(gpu.get(), nw * 4), a(gpu.get(), na * 4), b(gpu.get(), nb * 4);
            Buf ac(gpu.get(), na * 2), bc(gpu.get(), nb * 2), am(gpu.get(), na * 4), av(gpu.get(), na * 4);
            Buf bm(gpu.get(), nb * 4), bv(gpu.get(), nb * 4), wsg(gpu.get(), 4096);
            std::vector<uint16_t> wb(nw);
            culora_f32_to_bf16(h.w.data(), wb.data(), nw);
            if (c.w0_mode == 1)
                w0.upload(h.w.data(), nw * 4);
            else
                w0.upload(wb.data(), nw * 2);
            master.upload(h.w.data(), nw * 4);
            a.upload(h.a.data(), na * 4);
            b.upload(h.b.data(), nb * 4);
            am.upload(h.am.data(), na * 4);
            av.upload(h.av.data(), na * 4);
            bm.upload(h.bm.data(), nb * 4);
            bv.upload(h.bv.data(), nb * 4);
            culora_relora_restart_args g = base_args(c);
            g.w0 = w0.ptr(), g.ldw0 = ldw;
            g.w0_dtype = c.w0_mode == 1 ? CULORA_DTYPE_F32 : CULORA_DTYPE_BF16;
            g.w0_master = c.w0_mode == 0 ? (float *)master.ptr() : nullptr;
            g.a = (float *)a.ptr(), g.lda = lda, g.b = (float *)b.ptr(), g.ldb = ldb;
            g.a_copy = ac.ptr(), g.b_copy = bc.ptr();
            g.a_m = (float *)am.ptr(), g.a_v = (float *)av.ptr(), g.b_m = (float *)bm.ptr(), g.b_v = (float *)bv.ptr();
            ASSERT_EQ(culora_relora_restart(gpu.get(), &g, wsg.ptr(), 4096, nullptr), CULORA_OK)
                << culora_context_last_error(gpu.get());
            ASSERT_EQ(culora_synchronize(gpu.get(), nullptr), CULORA_OK) << culora_context_last_error(gpu.get());
            std::vector<float> m_(nw), w_(nw), a_(na), b_(nb), mm[4] = {std::vector<float>(na), std::vector<float>(na),
                                                                         std::vector<float>(nb), std::vector<float>(nb)};
            std::vector<uint16_t> wb_(nw), ac_(na), bc_(nb);
            master.download(m_.data(), nw * 4);
            if (c.w0_mode == 1)
                w0.download(w_.data(), nw * 4);
            else
                w0.download(wb_.data(), nw * 2);
            a.download(a_.data(), na * 4);
            b.download(b_.data(), nb * 4);
            ac.download(ac_.data(), na * 2);
            bc.download(bc_.data(), nb * 2);
            am.download(mm[0].data(), na * 4);
            av.download(mm[1].data(), na * 4);
            bm.download(mm[2].data(), nb * 4);
            bv.download(mm[3].data(), nb * 4);
            for (const Buf *bf : {&w0, &master, &a, &b, &ac, &bc, &am, &av, &bm, &bv}) EXPECT_TRUE(bf->guard_intact("out"));
            if (rep == 1) {  // bit-identical repeat
                EXPECT_EQ(m_, got_master);
                EXPECT_EQ(wb_, got_wb);
                EXPECT_EQ(w_, got_w);
                for (int t = 0; t < 4; t++) EXPECT_EQ(mm[t], got_m[t]);
            }
            got_master = m_, got_w = w_, got_wb = wb_, got_a = a_, got_b = b_, got_ac = ac_, got_bc = bc_;
            for (int t = 0; t < 4; t++) got_m[t] = mm[t];
        }
        // merged W0: fp32 sums of r products in another order than OpenBLAS, then one addition:
        // |err| <= (r + 2)·2^-24·(|w| + s·Σ|b||a|) per element (the standard summation bound)
        std::vector<float> merged = c.w0_mode == 0 ? got_master : got_w;
        if (c.w0_mode == 2) {
            merged.resize(h.w.size());
            culora_bf16_to_f32(got_wb.data(), merged.data(), merged.size());
        }
        int64_t n_bad = 0;
        double worst = 0;
        for (int64_t i = 0; i < c.d; i++)
            for (int64_t j = 0; j < c.k; j++) {
                double mag = std::fabs(h.w[(size_t)(i * ldw + j)]);
                for (int64_t q = 0; q < c.r; q++)
                    mag += 2.0 * std::fabs(h.b[(size_t)(i * ldb + q)]) * std::fabs(h.a[(size_t)(q * lda + j)]);
                double lim = (double)(c.r + 2) * std::ldexp(1.0, -24) * mag;
                if (c.w0_mode == 2) lim += std::ldexp(1.0, -8) * std::fabs(ref.w[(size_t)(i * ldw + j)]);  // bf16 store
                const double err = std::fabs((double)merged[(size_t)(i * ldw + j)] - (double)ref.w[(size_t)(i * ldw + j)]);
                worst = std::max(worst, lim > 0 ? err / lim : err);
                n_bad += !(err <= lim);
            }
        EXPECT_EQ(n_bad, 0) << "merged W0: worst error at " << 100 * worst << "% of its limit";
        if (c.w0_mode == 0) {  // the bf16 copy is the master's rounding
            std::vector<uint16_t> want(got_master.size());
            culora_f32_to_bf16(got_master.data(), want.data(), want.size());
            EXPECT_EQ(got_wb, want);
        }
        EXPECT_EQ(got_a, ref.a) << "A re-initialised bit for bit";
        std::vector<uint16_t> want_ac(ref.a.size());
        culora_f32_to_bf16(ref.a.data(), want_ac.data(), want_ac.size());
        // the bf16 copy's valid columns (the padding of its rows, k..lda, is not part of A)
        int64_t ac_bad = 0;
        for (int64_t q = 0; q < c.r; q++)
            for (int64_t j = 0; j < c.k; j++) ac_bad += got_ac[(size_t)(q * lda + j)] != want_ac[(size_t)(q * lda + j)];
        EXPECT_EQ(ac_bad, 0) << "bf16 copy of A differs from the rounding of the re-initialised A";
        for (int64_t i = 0; i < c.d; i++)
            for (int64_t q = 0; q < c.r; q++) {
                ASSERT_EQ(got_b[(size_t)(i * ldb + q)], 0.0f);
                ASSERT_EQ(got_bc[(size_t)(i * ldb + q)], 0u);
            }
        const std::vector<float> *want_m[4] = {&ref.am, &ref.av, &ref.bm, &ref.bv};
        for (int t = 0; t < 4; t++) EXPECT_EQ(got_m[t], *want_m[t]) << "moment tensor " << t << " pruned bit for bit";
    }
}

// ---- a ReLoRA run on CUDA ---------------------------------------------------------------------

namespace {

struct GpuRun {
    CtxPtr ctx;
    culora_tokenizer *tok = nullptr;
    culora_dataset *ds = nullptr;
    culora_loader *ld = nullptr;
    culora_model *model = nullptr;
    culora_trainer *tr = nullptr;
    std::vector<float> losses;
    std::vector<int64_t> restarts;
    culora_lora_config lc = CULORA_LORA_CONFIG_INIT;
    GpuRun(culora_backend_kind kind, const char *ckpt) : ctx(make_ctx(kind))
    {
        EXPECT_EQ(culora_tokenizer_create_bytes(ctx.get(), &tok), CULORA_OK);
        culora_dataset_params dp = CULORA_DATASET_PARAMS_INIT;
        dp.format = CULORA_DATA_FORMAT_TEXT;
        dp.seq_len = 16;
        EXPECT_EQ(culora_dataset_create_from_memory(ctx.get(), tok, "mem.txt", kTinyText, std::strlen(kTinyText), &dp, &ds),
                  CULORA_OK);
        culora_loader_params lp = CULORA_LOADER_PARAMS_INIT;
        lp.batch_size = 2;
        lp.seed = 5;
        EXPECT_EQ(culora_loader_create(ctx.get(), ds, &lp, &ld), CULORA_OK);
        culora_model_config c;
        std::memset(&c, 0, sizeof c);
        c.arch = CULORA_ARCH_LLAMA;
        std::snprintf(c.architecture, sizeof c.architecture, "LlamaForCausalLM");
        c.vocab_size = 256, c.hidden_size = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16;
        c.intermediate_size = 128, c.max_position_embeddings = 64, c.norm_eps = 1e-5, c.activation = CULORA_ACT_SILU;
        c.rope_type = CULORA_ROPE_DEFAULT, c.rope_theta = 10000.0, c.bos_token_id = -1, c.eos_token_id = -1;
        lc.r = 8, lc.lora_alpha = 16, lc.lora_dropout = 0.0, lc.target_modules = kLlamaLinears, lc.n_target_modules = 7;
        culora_model_params mp = CULORA_MODEL_PARAMS_INIT;
        mp.mode = CULORA_MODE_LORA, mp.lora = &lc, mp.seed = 11, mp.max_batch = 2, mp.max_seq = 16;
        EXPECT_EQ(culora_model_create(ctx.get(), &c, 3, &mp, &model), CULORA_OK) << culora_context_last_error(ctx.get());
        culora_train_params tp = CULORA_TRAIN_PARAMS_INIT;
        tp.total_steps = 24, tp.lr = 1e-2, tp.warmup_steps = 2, tp.schedule = CULORA_LR_COSINE_RESTARTS;
        tp.restart_warmup = 2, tp.relora_every = 6, tp.train_non_lora = 1, tp.relora_seed = 99;
        tp.checkpoint_dir = ckpt;
        tp.callback = [](const culora_step_info *in, void *user) {
            auto *self = static_cast<GpuRun *>(user);
            if (!in->is_eval) self->losses.push_back(in->loss), self->restarts.push_back(in->relora_restarts);
            return 0;
        };
        tp.user = this;
        EXPECT_EQ(culora_trainer_create(model, ld, nullptr, &tp, &tr), CULORA_OK) << culora_context_last_error(ctx.get());
    }
    ~GpuRun()
    {
        culora_trainer_destroy(tr);
        culora_model_destroy(model);
        culora_loader_destroy(ld);
        culora_dataset_destroy(ds);
        culora_tokenizer_destroy(tok);
    }
};

}  // namespace

TEST_F(ReloraCuda, TrainingFollowsTheCpuRunAndResumesBitIdentically)
{
    const std::string d = ::testing::TempDir() + "culora_relora_cuda_" + std::to_string(getpid());
    ASSERT_EQ(std::system(("rm -rf '" + d + "'").c_str()), 0);
    std::vector<float> straight;
    {
        GpuRun cpu(CULORA_BACKEND_CPU, nullptr), gpu(CULORA_BACKEND_CUDA, nullptr);
        ASSERT_TRUE(cpu.tr && gpu.tr);
        ASSERT_EQ(culora_trainer_run(cpu.tr), CULORA_OK);
        ASSERT_EQ(culora_trainer_run(gpu.tr), CULORA_OK) << culora_context_last_error(gpu.ctx.get());
        EXPECT_EQ(gpu.restarts, cpu.restarts);
        // bf16 activations and weights against fp32: the loss curves agree to ~1% (ln 256 ≈ 5.5,
        // bf16 relative precision 2^-8 accumulated over two layers and 24 steps)
        for (size_t i = 0; i < cpu.losses.size(); i++)
            EXPECT_NEAR(gpu.losses[i], cpu.losses[i], 0.05) << "step " << i + 1;
        straight = gpu.losses;
    }
    {
        GpuRun gpu(CULORA_BACKEND_CUDA, nullptr);
        for (int i = 0; i < 7; i++) ASSERT_EQ(culora_trainer_step(gpu.tr, nullptr), CULORA_OK);  // restart at 7
        ASSERT_EQ(culora_trainer_save_checkpoint(gpu.tr, d.c_str()), CULORA_OK) << culora_context_last_error(gpu.ctx.get());
    }
    GpuRun gpu(CULORA_BACKEND_CUDA, nullptr);
    ASSERT_EQ(culora_trainer_resume(gpu.tr, d.c_str()), CULORA_OK) << culora_context_last_error(gpu.ctx.get());
    ASSERT_EQ(culora_trainer_run(gpu.tr), CULORA_OK);
    ASSERT_EQ(gpu.losses.size(), 17u);
    for (size_t i = 0; i < gpu.losses.size(); i++) EXPECT_EQ(gpu.losses[i], straight[7 + i]) << "step " << 8 + i;
}
