// quant_test_util.h — helpers of the quantization tests: bitsandbytes fixtures (safetensors files
// under tests/data/quant/, written by tests/gen/gen_bnb_fixtures.py), quantized weights in backend
// memory with guard regions, and a runner for the LoRA linear layer on a quantized W0.
#pragma once

#include "lora_ref.h"

#include "culora/culora_io.h"
#include "culora/culora_quant.h"

#include <map>

namespace culora_test {

inline std::string quant_data(const std::string &rel) { return std::string(CULORA_TEST_DATA_DIR) + "/quant/" + rel; }

// An open fixture file with typed accessors. Missing tensors fail the test.
class Fixture {
  public:
    explicit Fixture(const std::string &rel)
    {
        culora_status s = culora_safetensors_open(nullptr, quant_data(rel).c_str(), &st_);
        EXPECT_EQ(s, CULORA_OK) << rel;
    }
    ~Fixture() { culora_safetensors_close(st_); }
    Fixture(const Fixture &) = delete;
    Fixture &operator=(const Fixture &) = delete;

    bool ok() const { return st_ != nullptr; }
    culora_safetensors *st() const { return st_; }
    const culora_tensor_info *info(const std::string &name) const
    {
        const culora_tensor_info *t = culora_safetensors_find(st_, name.c_str());
        EXPECT_NE(t, nullptr) << "fixture tensor " << name;
        return t;
    }
    std::vector<uint8_t> bytes(const std::string &name) const
    {
        const culora_tensor_info *t = info(name);
        if (!t) return {};
        std::vector<uint8_t> v(t->n_bytes);
        std::memcpy(v.data(), t->data, v.size());
        return v;
    }
    // F32 / BF16 tensors converted (exactly) to fp32.
    std::vector<float> floats(const std::string &name) const
    {
        const culora_tensor_info *t = info(name);
        if (!t) return {};
        std::vector<float> v((size_t)t->n_elems);
        EXPECT_EQ(culora_tensor_read(nullptr, t, CULORA_DTYPE_F32, v.data(), v.size() * 4), CULORA_OK);
        return v;
    }
    std::vector<int64_t> shape(const std::string &name) const
    {
        const culora_tensor_info *t = info(name);
        if (!t) return {};
        return std::vector<int64_t>(t->shape, t->shape + t->n_dims);
    }

  private:
    culora_safetensors *st_ = nullptr;
};

// Bitwise comparison of two byte arrays, reporting the first differences.
inline ::testing::AssertionResult same_bytes(const char *what, const void *got, const void *want, size_t n)
{
    const uint8_t *g = (const uint8_t *)got, *w = (const uint8_t *)want;
    size_t bad = 0;
    std::ostringstream first;
    for (size_t i = 0; i < n; i++)
        if (g[i] != w[i]) {
            if (bad < 5) first << "  byte " << i << ": got 0x" << std::hex << (int)g[i] << " want 0x" << (int)w[i] << std::dec << "\n";
            bad++;
        }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << ": " << bad << " of " << n << " bytes differ\n" << first.str();
}

// Bitwise comparison of floats (NaN-safe, distinguishes -0), reporting values.
inline ::testing::AssertionResult same_floats(const char *what, const float *got, const float *want, size_t n)
{
    size_t bad = 0;
    std::ostringstream first;
    for (size_t i = 0; i < n; i++)
        if (std::memcmp(&got[i], &want[i], 4) != 0) {
            if (bad < 5) first << "  [" << i << "] got " << std::hexfloat << got[i] << " want " << want[i] << std::defaultfloat << "\n";
            bad++;
        }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << ": " << bad << " of " << n << " values differ\n" << first.str();
}

inline culora_quant_desc make_qdesc(int32_t format, int64_t rows, int64_t cols, int32_t blocksize = 64, bool dq = false,
                                    float threshold = CULORA_QUANT_INT8_THRESHOLD)
{
    culora_quant_desc d = CULORA_QUANT_DESC_INIT;
    d.format = format;
    d.rows = rows;
    d.cols = cols;
    d.blocksize = blocksize;
    d.flags = dq ? CULORA_QUANT_DOUBLE_QUANT : 0u;
    d.threshold = threshold;
    return d;
}

// A quantized weight in backend memory: one guarded Buf per buffer the layout names.
class QBufs {
  public:
    QBufs(culora_context *ctx, const culora_quant_desc &d) : ctx_(ctx), desc_(d)
    {
        EXPECT_EQ(culora_quant_layout_get(ctx, &d, &lay_), CULORA_OK) << culora_context_last_error(ctx);
        auto mk = [&](size_t n) { return n ? std::make_unique<Buf>(ctx, n) : nullptr; };
        data_ = mk(lay_.data_bytes);
        absmax_ = mk(lay_.absmax_bytes);
        absmax_q_ = mk(lay_.absmax_q_bytes);
        nested_ = mk(lay_.nested_absmax_bytes);
        code_ = mk(lay_.nested_code_bytes);
        offset_ = mk(lay_.offset_bytes);
        w_.data = data_ ? data_->ptr() : nullptr;
        w_.absmax = absmax_ ? (float *)absmax_->ptr() : nullptr;
        w_.absmax_q = absmax_q_ ? (uint8_t *)absmax_q_->ptr() : nullptr;
        w_.nested_absmax = nested_ ? (float *)nested_->ptr() : nullptr;
        w_.nested_code = code_ ? (float *)code_->ptr() : nullptr;
        w_.offset = offset_ ? (float *)offset_->ptr() : nullptr;
    }
    const culora_quant_weight *w() const { return &w_; }
    const culora_quant_desc &desc() const { return desc_; }
    const culora_quant_layout &layout() const { return lay_; }
    // Host copy of every buffer, concatenated in layout order (for bitwise comparisons).
    std::map<std::string, std::vector<uint8_t>> download() const
    {
        std::map<std::string, std::vector<uint8_t>> out;
        auto get = [&](const char *name, const std::unique_ptr<Buf> &b) {
            if (!b) return;
            std::vector<uint8_t> v(b->bytes());
            b->download(v.data(), v.size());
            out[name] = v;
        };
        get("data", data_); get("absmax", absmax_); get("absmax_q", absmax_q_);
        get("nested_absmax", nested_); get("nested_code", code_); get("offset", offset_);
        return out;
    }
    ::testing::AssertionResult guards_intact() const
    {
        for (auto *b : {&data_, &absmax_, &absmax_q_, &nested_, &code_, &offset_})
            if (*b) {
                auto r = (*b)->guard_intact("quantized weight buffer");
                if (!r) return r;
            }
        return ::testing::AssertionSuccess();
    }
    // Uploads a host-side quantized weight of the same desc.
    void upload(const culora_quant_weight *host)
    {
        ASSERT_EQ(culora_quant_copy(ctx_, &desc_, &w_, host, CULORA_COPY_HOST_TO_DEVICE, nullptr), CULORA_OK)
            << culora_context_last_error(ctx_);
        ASSERT_EQ(culora_synchronize(ctx_, nullptr), CULORA_OK);
    }

  private:
    culora_context *ctx_;
    culora_quant_desc desc_;
    culora_quant_layout lay_{};
    std::unique_ptr<Buf> data_, absmax_, absmax_q_, nested_, code_, offset_;
    culora_quant_weight w_{};
};

// Quantizes a dense fp32 host matrix [rows, cols] on ctx (input uploaded as the context's storage
// dtype when bf16_input, else F32) and returns the buffers.
inline std::unique_ptr<QBufs> quantize_on(culora_context *ctx, const culora_quant_desc &d, const std::vector<float> &w,
                                          bool bf16_input = false, int64_t pad = 0, culora_status *status = nullptr)
{
    auto q = std::make_unique<QBufs>(ctx, d);
    const culora_dtype dt = bf16_input ? CULORA_DTYPE_BF16 : CULORA_DTYPE_F32;
    const int64_t ld = d.cols + pad;
    std::vector<float> padded((size_t)(d.rows * ld), 0.0f);
    for (int64_t i = 0; i < d.rows; i++)
        for (int64_t j = 0; j < d.cols; j++) padded[(size_t)(i * ld + j)] = w[(size_t)(i * d.cols + j)];
    std::vector<uint8_t> raw(padded.size() * culora_dtype_size(dt));
    if (bf16_input) culora_f32_to_bf16(padded.data(), (uint16_t *)raw.data(), padded.size());
    else std::memcpy(raw.data(), padded.data(), raw.size());
    Buf in(ctx, raw.size());
    in.upload(raw.data(), raw.size());
    size_t wsb = 0;
    EXPECT_EQ(culora_quantize_workspace_size(ctx, &d, &wsb), CULORA_OK) << culora_context_last_error(ctx);
    Buf ws(ctx, wsb ? wsb : 1);
    culora_status s = culora_quantize(ctx, &d, in.ptr(), ld, dt, q->w(), ws.ptr(), wsb, nullptr);
    if (status) *status = s;
    else EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
    EXPECT_EQ(culora_synchronize(ctx, nullptr), CULORA_OK);
    EXPECT_TRUE(ws.guard_intact("quantize workspace"));
    return q;
}

// Dequantizes q on its context into a dense fp32 host matrix (F32 output, or BF16 widened).
inline std::vector<float> dequantize_on(culora_context *ctx, const QBufs &q, culora_dtype out_dt = CULORA_DTYPE_F32,
                                        int64_t pad = 0)
{
    const culora_quant_desc &d = q.desc();
    const int64_t ld = d.cols + pad;
    const size_t es = culora_dtype_size(out_dt);
    Buf out(ctx, (size_t)(d.rows * ld) * es);
    EXPECT_EQ(culora_dequantize(ctx, &d, q.w(), out.ptr(), ld, out_dt, nullptr), CULORA_OK)
        << culora_context_last_error(ctx);
    EXPECT_TRUE(out.guard_intact("dequantize output"));
    std::vector<uint8_t> raw(out.bytes());
    out.download(raw.data(), raw.size());
    return unpack_matrix(raw, out_dt, d.rows, d.cols, ld);
}

// Forward + backward of the LoRA linear layer with W0 = q (separate-operand layout). in.w0 is
// ignored. Every buffer is guarded.
inline LoraOut run_quant_lora(culora_context *ctx, const LoraCase &c, const LoraData &in, const QBufs &q,
                              culora_status *fwd_status = nullptr, culora_status *bwd_status = nullptr)
{
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    const size_t es = culora_dtype_size(dt);
    const int64_t al = dt == CULORA_DTYPE_F32 ? 1 : 8;
    const int64_t m = c.m, k = c.k, d = c.d, r = c.r;
    LoraOut out;
    culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
    desc.m = m; desc.k = k; desc.d = d; desc.r = r; desc.flags = c.flags; desc.alpha = c.alpha; desc.dropout = c.p;
    desc.seed = c.seed; desc.offset = c.offset; desc.dtype = dt;
    const int64_t ldx = round_up(k, al), ldy = round_up(d, al), lda = round_up(k, al), ldb = round_up(r, al);
    const int64_t ldv = round_up(r, al), lddy = round_up(d, al), lddx = round_up(k, al);
    auto from_store = [&](const Buf &buf, int64_t rows, int64_t cols, int64_t ld, culora_dtype t) {
        std::vector<uint8_t> raw((size_t)(rows * ld) * culora_dtype_size(t));
        buf.download(raw.data(), raw.size());
        return unpack_matrix(raw, t, rows, cols, ld);
    };
    Buf bx(ctx, (size_t)(m * ldx) * es), bdy(ctx, (size_t)(m * lddy) * es), by(ctx, (size_t)(m * ldy) * es);
    Buf bdx(ctx, (size_t)(m * lddx) * es), bbias(ctx, (size_t)d * es), ba(ctx, (size_t)(r * lda) * es);
    Buf bb(ctx, (size_t)(d * ldb) * es), bv(ctx, (size_t)(m * ldv) * es), bdu(ctx, (size_t)(m * ldv) * es);
    Buf bda(ctx, (size_t)(r * k) * 4), bdb(ctx, (size_t)(d * r) * 4);
    bx.upload(pack_matrix(ctx, in.x, m, k, ldx).data(), bx.bytes());
    bdy.upload(pack_matrix(ctx, in.dy, m, d, lddy).data(), bdy.bytes());
    bbias.upload(pack_matrix(ctx, in.bias, 1, d, d).data(), bbias.bytes());
    ba.upload(pack_matrix(ctx, in.a, r, k, lda).data(), ba.bytes());
    bb.upload(pack_matrix(ctx, in.b, d, r, ldb).data(), bb.bytes());
    if (c.flags & CULORA_LORA_ACCUMULATE_DX) bdx.upload(pack_matrix(ctx, in.dx0, m, k, lddx).data(), bdx.bytes());
    bda.upload(in.da0.data(), bda.bytes());
    bdb.upload(in.db0.data(), bdb.bytes());
    size_t fw = 0, bw = 0;
    EXPECT_EQ(culora_lora_linear_quant_workspace_size(ctx, &desc, &q.desc(), &fw, &bw), CULORA_OK)
        << culora_context_last_error(ctx);
    const size_t extra = dt == CULORA_DTYPE_F32 ? 0 : ((size_t)4 << 20);  // cuBLASLt room on CUDA
    Buf ws(ctx, std::max(fw, bw) + extra);

    culora_lora_linear_fwd_args fa = {bx.ptr(), ldx, nullptr, 0, c.bias ? bbias.ptr() : nullptr, ba.ptr(), lda,
                                      bb.ptr(), ldb, bv.ptr(), ldv, by.ptr(), ldy};
    culora_status s = culora_lora_linear_quant_forward(ctx, &desc, &q.desc(), q.w(), &fa, ws.ptr(), ws.bytes(), nullptr);
    if (fwd_status) *fwd_status = s;
    else EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
    if (s != CULORA_OK) return out;
    culora_lora_linear_bwd_args ba_ = {bx.ptr(), ldx, nullptr, 0, ba.ptr(), lda, bb.ptr(), ldb, bv.ptr(), ldv,
                                       bdy.ptr(), lddy, bdu.ptr(), ldv, bdx.ptr(), lddx,
                                       (c.flags & CULORA_LORA_FREEZE_A) ? nullptr : (float *)bda.ptr(), k,
                                       (float *)bdb.ptr(), r};
    s = culora_lora_linear_quant_backward(ctx, &desc, &q.desc(), q.w(), &ba_, ws.ptr(), ws.bytes(), nullptr);
    if (bwd_status) *bwd_status = s;
    else EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
    if (s != CULORA_OK) return out;
    EXPECT_EQ(culora_synchronize(ctx, nullptr), CULORA_OK) << culora_context_last_error(ctx);
    out.y = from_store(by, m, d, ldy, dt);
    out.v = from_store(bv, m, r, ldv, dt);
    out.du = from_store(bdu, m, r, ldv, dt);
    out.dx = from_store(bdx, m, k, lddx, dt);
    out.da = from_store(bda, r, k, k, CULORA_DTYPE_F32);
    out.db = from_store(bdb, d, r, r, CULORA_DTYPE_F32);
    for (const Buf *b : {&bx, &bdy, &by, &bdx, &bbias, &ba, &bb, &bv, &bdu, &bda, &bdb, &ws})
        EXPECT_TRUE(b->guard_intact("lora buffer"));
    EXPECT_TRUE(q.guards_intact());
    return out;
}

}  // namespace culora_test
