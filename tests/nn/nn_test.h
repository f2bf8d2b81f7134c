// nn_test.h — helpers for the transformer-op tests (tests/nn): tensors in backend memory with
// guard regions, fp64 reference implementations of every op, central finite differences.
// Used by the CPU tests (test_nn) and the CUDA-vs-CPU tests (test_nn_cuda).
#pragma once

#include "test_util.h"

extern "C" {
#include "nn_ops.h"
}

#include <algorithm>
#include <functional>

namespace nn_test {

using namespace culora_test;
using dvec = std::vector<double>;

// ---- tensors in backend memory --------------------------------------------------------------

// Leading dimension for a matrix of `cols` columns on ctx: a multiple of 8 (what CUDA needs for
// bf16 rows) plus `pad` groups of 8, so tests exercise ld > cols.
inline int64_t ld_for(int64_t cols, int pad = 1) { return (cols + 7) / 8 * 8 + 8 * pad; }

// A storage-dtype [rows, cols] matrix with leading dimension ld, NaN-filled (unwritten elements
// fail comparisons) and followed by a guard region.
class SMat {
  public:
    SMat(culora_context *ctx, int64_t rows, int64_t cols, int64_t ld)
        : ctx_(ctx), rows_(rows), cols_(cols), ld_(ld),
          buf_(new Buf(ctx, (size_t)(rows * ld) * culora_dtype_size(culora_context_compute_dtype(ctx))))
    {
    }
    SMat(culora_context *ctx, const std::vector<float> &host, int64_t rows, int64_t cols, int64_t ld)
        : SMat(ctx, rows, cols, ld)
    {
        set(host);
    }
    void set(const std::vector<float> &host)
    {
        std::vector<uint8_t> raw = pack_matrix(ctx_, host, rows_, cols_, ld_);
        buf_->upload(raw.data(), raw.size());
    }
    std::vector<float> get() const
    {
        std::vector<uint8_t> raw(buf_->bytes());
        buf_->download(raw.data(), raw.size());
        return unpack_matrix(raw, culora_context_compute_dtype(ctx_), rows_, cols_, ld_);
    }
    // Raw bytes of the whole [rows, ld] buffer (for bit-identity and "untouched padding" checks).
    std::vector<uint8_t> bytes() const
    {
        std::vector<uint8_t> raw(buf_->bytes());
        buf_->download(raw.data(), raw.size());
        return raw;
    }
    ::testing::AssertionResult guard(const char *name) const { return buf_->guard_intact(name); }
    void *p() const { return buf_->ptr(); }
    int64_t ld() const { return ld_; }

  private:
    culora_context *ctx_;
    int64_t rows_, cols_, ld_;
    std::unique_ptr<Buf> buf_;
};

// A dense vector of T (float or int32_t) in backend memory, NaN/0xFF-filled, with a guard.
template <typename T>
class Vec {
  public:
    Vec(culora_context *ctx, size_t n) : n_(n), buf_(new Buf(ctx, n * sizeof(T))) {}
    Vec(culora_context *ctx, const std::vector<T> &host) : Vec(ctx, host.size()) { set(host); }
    void set(const std::vector<T> &host) { buf_->upload(host.data(), host.size() * sizeof(T)); }
    std::vector<T> get() const
    {
        std::vector<T> v(n_);
        buf_->download(v.data(), n_ * sizeof(T));
        return v;
    }
    ::testing::AssertionResult guard(const char *name) const { return buf_->guard_intact(name); }
    T *p() const { return (T *)buf_->ptr(); }

  private:
    size_t n_;
    std::unique_ptr<Buf> buf_;
};
using F32 = Vec<float>;
using I32 = Vec<int32_t>;

// A workspace buffer of the size an op asks for (at least 1 byte).
struct Workspace {
    Workspace(culora_context *ctx, size_t bytes) : buf(ctx, std::max<size_t>(bytes, 1)) {}
    Buf buf;
    void *p() const { return buf.ptr(); }
    size_t bytes() const { return buf.bytes(); }
};

inline dvec dv(const std::vector<float> &v) { return dvec(v.begin(), v.end()); }
inline std::vector<float> fv(const dvec &v) { return std::vector<float>(v.begin(), v.end()); }

// Storage-dtype-exact random data: bf16-representable values, so CPU and CUDA see the same input.
inline std::vector<float> rnd(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f)
{
    return round_bf16(random_vec(n, seed, lo, hi));
}

inline std::vector<int32_t> rnd_ids(size_t n, uint64_t seed, int32_t lo, int32_t hi)
{
    std::mt19937_64 g(seed);
    std::uniform_int_distribution<int32_t> u(lo, hi - 1);
    std::vector<int32_t> v(n);
    for (auto &x : v) x = u(g);
    return v;
}

// fp32 CPU result against an fp64 reference: each output is a short fp64 computation rounded
// once to fp32 (2^-24 relative), or an fp32 elementwise op; 1e-6 relative plus 1e-6 of the RMS
// leaves 15x headroom and still catches any wrong term.
inline Tol fp32_tol(const dvec &ref) { return Tol{1e-6 * std::max(rms(ref), 1e-30), 1e-6, 1e-11}; }

// ---- central finite differences -----------------------------------------------------------------

// d/dx_i of f at x, central differences with step h·max(1, |x_i|).
inline dvec finite_diff(const std::function<double(const dvec &)> &f, dvec x, double h = 1e-5)
{
    dvec g(x.size());
    for (size_t i = 0; i < x.size(); i++) {
        const double x0 = x[i], step = h * std::max(1.0, std::fabs(x0));
        x[i] = x0 + step;
        const double fp = f(x);
        x[i] = x0 - step;
        const double fm = f(x);
        x[i] = x0;
        g[i] = (fp - fm) / (2 * step);
    }
    return g;
}

inline double dot(const dvec &a, const dvec &b)
{
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
    return s;
}

// fp32 backward against fp64 central differences of an fp64 forward: the backend's rounding is
// ~1e-7 relative, the differences' truncation error ~h²·f''' ≈ 1e-10 and rounding ~1e-16/h ≈ 1e-11;
// 1e-5 relative (plus 1e-5 of the RMS for entries near zero) is far above both and far below a
// wrong term.
inline Tol fd_tol(const dvec &ref) { return Tol{1e-5 * std::max(rms(ref), 1e-30), 1e-5, -1}; }

// ---- fp64 references (dense row-major, no leading dimensions) -------------------------------------

inline dvec ref_layernorm(const dvec &x, const dvec &g, const dvec *b, int64_t n, int64_t c, double eps,
                          dvec *mean = nullptr, dvec *rstd = nullptr)
{
    dvec y(x.size());
    if (mean) mean->assign(n, 0);
    if (rstd) rstd->assign(n, 0);
    for (int64_t i = 0; i < n; i++) {
        double mu = 0, var = 0;
        for (int64_t j = 0; j < c; j++) mu += x[i * c + j];
        mu /= c;
        for (int64_t j = 0; j < c; j++) var += (x[i * c + j] - mu) * (x[i * c + j] - mu);
        var /= c;
        const double r = 1.0 / std::sqrt(var + eps);
        for (int64_t j = 0; j < c; j++) y[i * c + j] = (x[i * c + j] - mu) * r * g[j] + (b ? (*b)[j] : 0.0);
        if (mean) (*mean)[i] = mu;
        if (rstd) (*rstd)[i] = r;
    }
    return y;
}

inline dvec ref_rmsnorm(const dvec &x, const dvec &g, int64_t n, int64_t c, double eps, dvec *rstd = nullptr)
{
    dvec y(x.size());
    if (rstd) rstd->assign(n, 0);
    for (int64_t i = 0; i < n; i++) {
        double ms = 0;
        for (int64_t j = 0; j < c; j++) ms += x[i * c + j] * x[i * c + j];
        const double r = 1.0 / std::sqrt(ms / c + eps);
        for (int64_t j = 0; j < c; j++) y[i * c + j] = x[i * c + j] * r * g[j];
        if (rstd) (*rstd)[i] = r;
    }
    return y;
}

// RoPE with HF's fp32 angle (float(pos)·float(inv_freq)), cos/sin in fp64. sign −1: backward.
inline dvec ref_rope(const dvec &x, const std::vector<int32_t> &pos, int64_t n, int heads, int d,
                     const std::vector<float> &inv_freq, double sign = 1.0)
{
    dvec y(x.size());
    const int half = d / 2, w = heads * d;
    for (int64_t i = 0; i < n; i++)
        for (int h = 0; h < heads; h++)
            for (int j = 0; j < half; j++) {
                const float angle = (float)pos[i] * inv_freq[j];
                const double cs = std::cos((double)angle), sn = sign * std::sin((double)angle);
                const int64_t lo = i * w + h * d + j, hi = lo + half;
                y[lo] = x[lo] * cs - x[hi] * sn;
                y[hi] = x[hi] * cs + x[lo] * sn;
            }
    return y;
}

inline std::vector<float> inv_freq_of(float theta, int d)
{
    std::vector<float> f(d / 2);
    culora_nn_rope_inv_freq(theta, d, f.data());
    return f;
}

struct AttShape {
    int64_t b, t;
    int h, hkv, d;
    int64_t n() const { return b * t; }
    int64_t wq() const { return (int64_t)h * d; }
    int64_t wkv() const { return (int64_t)hkv * d; }
};

// Causal GQA attention, dense q [B·T, H·D], k/v [B·T, Hkv·D]. lse: [B, H, T].
inline dvec ref_attention(const AttShape &s, double scale, const dvec &q, const dvec &k, const dvec &v,
                          dvec *lse = nullptr)
{
    dvec y((size_t)(s.n() * s.wq()), 0.0);
    if (lse) lse->assign((size_t)(s.b * s.h * s.t), 0.0);
    const int g = s.h / s.hkv;
    std::vector<double> sc((size_t)s.t);
    for (int64_t b = 0; b < s.b; b++)
        for (int h = 0; h < s.h; h++)
            for (int64_t t = 0; t < s.t; t++) {
                const int kh = h / g;
                double mx = -INFINITY;
                for (int64_t j = 0; j <= t; j++) {
                    double acc = 0;
                    for (int i = 0; i < s.d; i++)
                        acc += q[(b * s.t + t) * s.wq() + h * s.d + i] * k[(b * s.t + j) * s.wkv() + kh * s.d + i];
                    sc[j] = scale * acc;
                    mx = std::max(mx, sc[j]);
                }
                double sum = 0;
                for (int64_t j = 0; j <= t; j++) sum += std::exp(sc[j] - mx);
                const double l = mx + std::log(sum);
                for (int64_t j = 0; j <= t; j++) {
                    const double p = std::exp(sc[j] - l);
                    for (int i = 0; i < s.d; i++)
                        y[(b * s.t + t) * s.wq() + h * s.d + i] += p * v[(b * s.t + j) * s.wkv() + kh * s.d + i];
                }
                if (lse) (*lse)[(b * s.h + h) * s.t + t] = l;
            }
    return y;
}

// 0.5·x·(1 + tanh(u)) written as x·σ(2u): the same function without the cancellation of 1 + tanh(u)
// for negative x (in fp64 it is 0 from x ≈ −7.5 on, where gelu is ~1e-19).
inline double gelu_ref(double x)
{
    return x / (1.0 + std::exp(-2.0 * std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
inline double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }

// Cross-entropy: mean loss over rows whose target is not `ignore`; per-row losses; dlogits with
// the given scale and denominator (0: n_valid).
struct XentRef {
    double loss;
    int64_t n_valid;
    dvec losses, dlogits;
};
inline XentRef ref_xent(const dvec &logits, const std::vector<int32_t> &tgt, int64_t n, int64_t V, int32_t ignore,
                        double grad_scale, int64_t den_given)
{
    XentRef r{0, 0, dvec((size_t)n, 0.0), dvec((size_t)(n * V), 0.0)};
    dvec lse((size_t)n);
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < V; j++) mx = std::max(mx, logits[i * V + j]);
        for (int64_t j = 0; j < V; j++) sum += std::exp(logits[i * V + j] - mx);
        lse[i] = mx + std::log(sum);
        if (tgt[i] == ignore) continue;
        r.losses[i] = lse[i] - logits[i * V + tgt[i]];
        total += r.losses[i];
        r.n_valid++;
    }
    r.loss = r.n_valid ? total / (double)r.n_valid : 0.0;
    const int64_t den = den_given > 0 ? den_given : r.n_valid;
    for (int64_t i = 0; i < n; i++) {
        if (tgt[i] == ignore || den == 0) continue;
        for (int64_t j = 0; j < V; j++)
            r.dlogits[i * V + j] = grad_scale * (std::exp(logits[i * V + j] - lse[i]) - (j == tgt[i] ? 1.0 : 0.0)) / den;
    }
    return r;
}

// AdamW (decoupled weight decay, bias correction), fp64, one step in place.
inline void ref_adamw(dvec &p, const dvec &grad, dvec &m, dvec &v, double lr, double b1, double b2, double eps,
                      double wd, int64_t step, double grad_scale)
{
    const double bc1 = 1 - std::pow(b1, (double)step), bc2 = 1 - std::pow(b2, (double)step);
    for (size_t i = 0; i < p.size(); i++) {
        const double g = grad[i] * grad_scale;
        p[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        p[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
    }
}

// ---- CPU context -----------------------------------------------------------------------------------

inline CtxPtr cpu_ctx() { return make_ctx(CULORA_BACKEND_CPU); }

#define NN_EXPECT_REJECTS(ctx, call, needle)                                                            \
    do {                                                                                                \
        EXPECT_EQ((call), CULORA_ERR_INVALID_ARG);                                                      \
        const std::string nn_msg_ = culora_context_last_error(ctx);                                     \
        EXPECT_NE(nn_msg_.find(needle), std::string::npos) << "message: " << nn_msg_ << " lacks: " << needle; \
    } while (0)

}  // namespace nn_test
