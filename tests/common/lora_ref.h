// lora_ref.h — an independent fp64 reference of the LoRA linear layer for tests, written as
// plain loops straight from the math (docs/kernels/lora_linear.md), plus a runner that executes
// culora_lora_linear_forward/backward on any backend with guard-checked buffers.
#pragma once

#include "test_util.h"

namespace culora_test {

struct LoraCase {
    int64_t m, k, d;
    int32_t r;
    float alpha;
    float p;          // dropout
    uint32_t flags;   // CULORA_LORA_*
    bool bias;
    uint64_t seed, offset;
};

inline std::string case_name(const LoraCase &c)
{
    std::ostringstream s;
    s << "m" << c.m << "_k" << c.k << "_d" << c.d << "_r" << c.r << (c.p > 0 ? "_drop" : "")
      << ((c.flags & CULORA_LORA_RSLORA) ? "_rs" : "") << ((c.flags & CULORA_LORA_FREEZE_A) ? "_fa" : "")
      << ((c.flags & CULORA_LORA_W0_TRANSPOSED) ? "_t" : "") << ((c.flags & CULORA_LORA_ACCUMULATE_DX) ? "_acc" : "")
      << (c.bias ? "_bias" : "");
    return s.str();
}

inline void PrintTo(const LoraCase &c, std::ostream *os) { *os << case_name(c); }

// Inputs, all logical row-major: x [m,k], w0 [d,k], bias [d], a [r,k], b [d,r], dy [m,d], and
// initial values of the accumulated outputs dx0 [m,k] (used with ACCUMULATE_DX), da0 [r,k], db0 [d,r].
struct LoraData {
    std::vector<float> x, w0, bias, a, b, dy, dx0, da0, db0;
};

inline LoraData make_data(const LoraCase &c, uint64_t seed, bool bf16_inputs)
{
    auto gen = [&](size_t n, uint64_t s, float scale) {
        auto v = random_vec(n, seed * 1000 + s, -scale, scale);
        return bf16_inputs ? round_bf16(v) : v;
    };
    LoraData d;
    const float ws = 1.0f / std::sqrt((float)c.k);  // keep outputs O(1)
    d.x = gen((size_t)(c.m * c.k), 1, 1.0f);
    d.w0 = gen((size_t)(c.d * c.k), 2, ws);
    d.bias = gen((size_t)c.d, 3, 0.5f);
    d.a = gen((size_t)(c.r * c.k), 4, ws);
    d.b = gen((size_t)(c.d * c.r), 5, 1.0f / std::sqrt((float)c.r));
    d.dy = gen((size_t)(c.m * c.d), 6, 1.0f);
    d.dx0 = gen((size_t)(c.m * c.k), 7, 1.0f);
    d.da0 = random_vec((size_t)(c.r * c.k), seed * 1000 + 8);
    d.db0 = random_vec((size_t)(c.d * c.r), seed * 1000 + 9);
    return d;
}

inline double ref_scaling(const LoraCase &c)
{
    return (c.flags & CULORA_LORA_RSLORA) ? (double)c.alpha / std::sqrt((double)c.r) : (double)c.alpha / c.r;
}

struct LoraRef {
    std::vector<double> v, y, du, dx, da, db;
};

// fp64 forward + backward. Accumulated outputs include their initial values (da0, db0, and dx0
// when ACCUMULATE_DX).
inline LoraRef ref_lora(const LoraCase &c, const LoraData &in)
{
    const int64_t m = c.m, k = c.k, d = c.d, r = c.r;
    const double s = ref_scaling(c);
    const double keep_scale = 1.0 / (1.0 - (double)c.p);
    std::vector<double> xd((size_t)(m * k)), mask((size_t)(m * k));
    for (int64_t i = 0; i < m * k; i++) {
        mask[(size_t)i] = culora_dropout_keep(c.seed, c.offset, i, c.p) ? keep_scale : 0.0;
        xd[(size_t)i] = mask[(size_t)i] * in.x[(size_t)i];
    }
    LoraRef o;
    o.v.assign((size_t)(m * r), 0);
    o.y.assign((size_t)(m * d), 0);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < r; j++) {
            double acc = 0;
            for (int64_t t = 0; t < k; t++) acc += xd[(size_t)(i * k + t)] * in.a[(size_t)(j * k + t)];
            o.v[(size_t)(i * r + j)] = s * acc;
        }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < d; j++) {
            double acc = c.bias ? in.bias[(size_t)j] : 0.0;
            for (int64_t t = 0; t < k; t++) acc += (double)in.x[(size_t)(i * k + t)] * in.w0[(size_t)(j * k + t)];
            for (int64_t t = 0; t < r; t++) acc += o.v[(size_t)(i * r + t)] * in.b[(size_t)(j * r + t)];
            o.y[(size_t)(i * d + j)] = acc;
        }
    o.du.assign((size_t)(m * r), 0);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < r; j++) {
            double acc = 0;
            for (int64_t t = 0; t < d; t++) acc += (double)in.dy[(size_t)(i * d + t)] * in.b[(size_t)(t * r + j)];
            o.du[(size_t)(i * r + j)] = s * acc;
        }
    o.db.assign(in.db0.begin(), in.db0.end());
    for (int64_t j = 0; j < d; j++)
        for (int64_t t = 0; t < r; t++) {
            double acc = 0;
            for (int64_t i = 0; i < m; i++) acc += (double)in.dy[(size_t)(i * d + j)] * o.v[(size_t)(i * r + t)];
            o.db[(size_t)(j * r + t)] += acc;
        }
    o.da.assign(in.da0.begin(), in.da0.end());
    if (c.flags & CULORA_LORA_FREEZE_A) {
        // untouched
    } else {
        for (int64_t j = 0; j < r; j++)
            for (int64_t t = 0; t < k; t++) {
                double acc = 0;
                for (int64_t i = 0; i < m; i++) acc += o.du[(size_t)(i * r + j)] * xd[(size_t)(i * k + t)];
                o.da[(size_t)(j * k + t)] += acc;
            }
    }
    o.dx.assign((size_t)(m * k), 0);
    for (int64_t i = 0; i < m; i++)
        for (int64_t t = 0; t < k; t++) {
            double acc = (c.flags & CULORA_LORA_ACCUMULATE_DX) ? in.dx0[(size_t)(i * k + t)] : 0.0;
            for (int64_t j = 0; j < d; j++) acc += (double)in.dy[(size_t)(i * d + j)] * in.w0[(size_t)(j * k + t)];
            double lora = 0;
            for (int64_t j = 0; j < r; j++) lora += o.du[(size_t)(i * r + j)] * in.a[(size_t)(j * k + t)];
            o.dx[(size_t)(i * k + t)] = acc + mask[(size_t)(i * k + t)] * lora;
        }
    return o;
}

inline std::vector<float> transpose(const std::vector<float> &m, int64_t rows, int64_t cols)
{
    std::vector<float> t(m.size());
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) t[(size_t)(j * rows + i)] = m[(size_t)(i * cols + j)];
    return t;
}

// Leading dimensions used by the runner. `augmented` lays x|v, dy|du and W̃ = [[W0, B], [A, 0]]
// out as the fused CUDA path wants them (culora_ops.h).
struct LoraLayout {
    bool augmented = false;
    int64_t pad = 0;  // extra columns beyond the minimum (before rounding to the backend's alignment)
};

struct LoraOut {
    std::vector<float> v, y, du, dx, da, db;
};

inline int64_t round_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }

// The device buffers of one case in a layout (each with a guard region), filled from the data,
// and the descriptor and argument structs that point into them. Outputs start as NaN bytes; dA
// and dB start at da0 and db0, dx at dx0 with ACCUMULATE_DX.
struct LoraBufs {
    culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
    culora_lora_linear_fwd_args fwd{};
    culora_lora_linear_bwd_args bwd{};
    culora_dtype dt = CULORA_DTYPE_F32;
    bool augmented = false;
    int64_t ldx = 0, ldy = 0, lddy = 0, ldv = 0, lddu = 0, lddx = 0;
    std::unique_ptr<Buf> bx, bw, bdy, by, bdx, bbias, bA, bB, bv, bdu, bda, bdb;
};

inline LoraBufs make_lora_bufs(culora_context *ctx, const LoraCase &c, const LoraData &in, LoraLayout lay)
{
    LoraBufs L;
    const culora_dtype dt = L.dt = culora_context_compute_dtype(ctx);
    const size_t es = culora_dtype_size(dt);
    const int64_t al = dt == CULORA_DTYPE_F32 ? 1 : 8;  // CUDA needs 16-byte leading dimensions
    const int64_t m = c.m, k = c.k, d = c.d, r = c.r;
    const bool w0t = (c.flags & CULORA_LORA_W0_TRANSPOSED) != 0;
    if (w0t) lay.augmented = false;  // the augmented buffer is defined for W0 stored [d,k] only
    L.augmented = lay.augmented;

    culora_lora_linear_desc &desc = L.desc;
    desc.m = m; desc.k = k; desc.d = d; desc.r = r; desc.flags = c.flags; desc.alpha = c.alpha; desc.dropout = c.p;
    desc.seed = c.seed; desc.offset = c.offset; desc.dtype = dt;

    // x (with v beside it when augmented)
    const int64_t ldx = L.ldx = round_up(lay.augmented ? k + r + lay.pad : k + lay.pad, al);
    const int64_t ldy = L.ldy = round_up(d + lay.pad, al);
    const int64_t lddy = L.lddy = round_up(lay.augmented ? d + r + lay.pad : d + lay.pad, al);
    const int64_t ldw = round_up(w0t ? d + lay.pad : (lay.augmented ? k + r + lay.pad : k + lay.pad), al);
    const int64_t w_rows = w0t ? k : (lay.augmented ? d + r : d);
    const int64_t lda = lay.augmented ? ldw : round_up(k + lay.pad, al);
    const int64_t ldb = lay.augmented ? ldw : round_up(r + lay.pad, al);
    const int64_t ldv = L.ldv = lay.augmented ? ldx : round_up(r + lay.pad, al);
    const int64_t lddu = L.lddu = lay.augmented ? lddy : round_up(r + lay.pad, al);
    const int64_t lddx = L.lddx = round_up(k + lay.pad, al);
    const int64_t ldda = k, lddb = r;

    // Host images of the buffers.
    std::vector<float> xh((size_t)(m * ldx), 0.0f);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < k; j++) xh[(size_t)(i * ldx + j)] = in.x[(size_t)(i * k + j)];
    std::vector<float> wh((size_t)(w_rows * ldw), 0.0f);
    if (w0t) {
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < d; j++) wh[(size_t)(i * ldw + j)] = in.w0[(size_t)(j * k + i)];
    } else {
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < k; j++) wh[(size_t)(i * ldw + j)] = in.w0[(size_t)(i * k + j)];
        if (lay.augmented) {
            for (int64_t i = 0; i < d; i++)
                for (int64_t j = 0; j < r; j++) wh[(size_t)(i * ldw + k + j)] = in.b[(size_t)(i * r + j)];
            for (int64_t i = 0; i < r; i++)
                for (int64_t j = 0; j < k; j++) wh[(size_t)((d + i) * ldw + j)] = in.a[(size_t)(i * k + j)];
        }
    }
    std::vector<float> dyh((size_t)(m * lddy), 0.0f);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < d; j++) dyh[(size_t)(i * lddy + j)] = in.dy[(size_t)(i * d + j)];

    auto to_store = [&](const std::vector<float> &v) {
        std::vector<uint8_t> raw(v.size() * es);
        if (dt == CULORA_DTYPE_F32) std::memcpy(raw.data(), v.data(), raw.size());
        else culora_f32_to_bf16(v.data(), (uint16_t *)raw.data(), v.size());
        return raw;
    };
    auto buf = [&](size_t bytes) { return std::make_unique<Buf>(ctx, bytes); };
    L.bx = buf((size_t)(m * ldx) * es), L.bw = buf((size_t)(w_rows * ldw) * es), L.bdy = buf((size_t)(m * lddy) * es);
    L.by = buf((size_t)(m * ldy) * es), L.bdx = buf((size_t)(m * lddx) * es);
    L.bbias = buf((size_t)d * es), L.bA = buf((size_t)(r * lda) * es), L.bB = buf((size_t)(d * ldb) * es);
    L.bv = buf((size_t)(m * ldv) * es), L.bdu = buf((size_t)(m * lddu) * es);
    L.bda = buf((size_t)(r * k) * 4), L.bdb = buf((size_t)(d * r) * 4);
    L.bx->upload(to_store(xh).data(), L.bx->bytes());
    L.bw->upload(to_store(wh).data(), L.bw->bytes());
    L.bdy->upload(to_store(dyh).data(), L.bdy->bytes());
    L.bbias->upload(to_store(in.bias).data(), L.bbias->bytes());
    if (!lay.augmented) {
        L.bA->upload(pack_matrix(ctx, in.a, r, k, lda).data(), L.bA->bytes());
        L.bB->upload(pack_matrix(ctx, in.b, d, r, ldb).data(), L.bB->bytes());
    }
    if (c.flags & CULORA_LORA_ACCUMULATE_DX) L.bdx->upload(pack_matrix(ctx, in.dx0, m, k, lddx).data(), L.bdx->bytes());
    L.bda->upload(in.da0.data(), L.bda->bytes());
    L.bdb->upload(in.db0.data(), L.bdb->bytes());

    const char *wbase = (const char *)L.bw->ptr();
    const void *a_ptr = lay.augmented ? (const void *)(wbase + (size_t)(d * ldw) * es) : L.bA->ptr();
    const void *b_ptr = lay.augmented ? (const void *)(wbase + (size_t)k * es) : L.bB->ptr();
    void *v_ptr = lay.augmented ? (void *)((char *)L.bx->ptr() + (size_t)k * es) : L.bv->ptr();
    void *du_ptr = lay.augmented ? (void *)((char *)L.bdy->ptr() + (size_t)d * es) : L.bdu->ptr();

    L.fwd = {L.bx->ptr(), ldx, L.bw->ptr(), ldw, c.bias ? L.bbias->ptr() : nullptr, a_ptr, lda, b_ptr, ldb, v_ptr, ldv,
             L.by->ptr(), ldy};
    L.bwd = {L.bx->ptr(), ldx, L.bw->ptr(), ldw, a_ptr, lda, b_ptr, ldb, v_ptr, ldv, L.bdy->ptr(), lddy, du_ptr, lddu,
             L.bdx->ptr(), lddx, (c.flags & CULORA_LORA_FREEZE_A) ? nullptr : (float *)L.bda->ptr(), ldda,
             (float *)L.bdb->ptr(), lddb};
    return L;
}

// Every output of the buffers as dense fp32 (v and du read out of x|v and dy|du when augmented),
// and checks every guard region.
inline LoraOut read_lora_outputs(const LoraBufs &L)
{
    const int64_t m = L.desc.m, k = L.desc.k, d = L.desc.d, r = L.desc.r;
    auto from_store = [](const Buf &buf, int64_t rows, int64_t cols, int64_t ld, culora_dtype t) {
        std::vector<uint8_t> raw((size_t)(rows * ld) * culora_dtype_size(t));
        buf.download(raw.data(), raw.size());
        return unpack_matrix(raw, t, rows, cols, ld);
    };
    LoraOut out;
    out.y = from_store(*L.by, m, d, L.ldy, L.dt);
    out.dx = from_store(*L.bdx, m, k, L.lddx, L.dt);
    out.da = from_store(*L.bda, r, k, k, CULORA_DTYPE_F32);
    out.db = from_store(*L.bdb, d, r, r, CULORA_DTYPE_F32);
    if (L.augmented) {
        auto xa = from_store(*L.bx, m, k + r, L.ldx, L.dt);
        auto dya = from_store(*L.bdy, m, d + r, L.lddy, L.dt);
        out.v.resize((size_t)(m * r));
        out.du.resize((size_t)(m * r));
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < r; j++) {
                out.v[(size_t)(i * r + j)] = xa[(size_t)(i * (k + r) + k + j)];
                out.du[(size_t)(i * r + j)] = dya[(size_t)(i * (d + r) + d + j)];
            }
    } else {
        out.v = from_store(*L.bv, m, r, L.ldv, L.dt);
        out.du = from_store(*L.bdu, m, r, L.lddu, L.dt);
    }
    for (const auto *b : {&L.bx, &L.bw, &L.bdy, &L.by, &L.bdx, &L.bbias, &L.bA, &L.bB, &L.bv, &L.bdu, &L.bda, &L.bdb})
        EXPECT_TRUE((*b)->guard_intact("buffer"));
    return out;
}

// Runs forward then backward of case c on ctx with data in, returns every output as fp32.
// Every buffer carries a guard region that is checked afterwards.
inline LoraOut run_lora(culora_context *ctx, const LoraCase &c, const LoraData &in, LoraLayout lay,
                        culora_status *fwd_status = nullptr, culora_status *bwd_status = nullptr)
{
    LoraBufs L = make_lora_bufs(ctx, c, in, lay);
    culora_status s = culora_lora_linear_forward(ctx, &L.desc, &L.fwd, nullptr, 0, nullptr);
    if (fwd_status) *fwd_status = s;
    else EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
    if (s != CULORA_OK) return LoraOut{};
    s = culora_lora_linear_backward(ctx, &L.desc, &L.bwd, nullptr, 0, nullptr);
    if (bwd_status) *bwd_status = s;
    else EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
    if (s != CULORA_OK) return LoraOut{};
    EXPECT_EQ(culora_synchronize(ctx, nullptr), CULORA_OK) << culora_context_last_error(ctx);
    return read_lora_outputs(L);
}
}  // namespace culora_test
