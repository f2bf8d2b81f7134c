// test_util.h — helpers shared by culora's GoogleTest binaries: seeded random data, comparisons
// that print what went wrong (first pairs, worst element, max abs/rel error, NMSE), backend
// buffers with guard regions, context fixtures that skip without a GPU, shared-data paths.
#pragma once

#include "culora/culora.h"
#include "culora/culora_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <vector>

namespace culora_test {

// ---- random data ----------------------------------------------------------------------------

inline std::vector<float> random_vec(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f)
{
    std::mt19937_64 g(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (auto &x : v) x = u(g);
    return v;
}

// Rounds every value to bf16 and back, so CPU and CUDA backends see identical inputs.
inline std::vector<float> round_bf16(const std::vector<float> &v)
{
    std::vector<uint16_t> h(v.size());
    std::vector<float> out(v.size());
    culora_f32_to_bf16(v.data(), h.data(), v.size());
    culora_bf16_to_f32(h.data(), out.data(), v.size());
    return out;
}

// ---- comparisons ----------------------------------------------------------------------------

struct Tol {
    double atol;      // absolute part of |got - ref| <= atol + rtol·|ref|
    double rtol;      // relative part
    double nmse_max;  // Σ(got-ref)² / Σ ref² must not exceed this (ignored when < 0)
};

// Compares got against ref elementwise and by NMSE; on failure reports the first mismatches,
// the worst element, max abs/rel error and NMSE.
inline ::testing::AssertionResult all_close(const char *what, const float *got, const double *ref, size_t n,
                                            Tol tol)
{
    double max_abs = 0, max_rel = 0, num = 0, den = 0, worst_ratio = 0;
    size_t worst = 0, n_bad = 0;
    std::ostringstream first;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        double err = std::fabs(g - r);
        double lim = tol.atol + tol.rtol * std::fabs(r);
        if (!std::isfinite(g)) err = INFINITY;
        num += (g - r) * (g - r);
        den += r * r;
        max_abs = std::max(max_abs, err);
        if (r != 0) max_rel = std::max(max_rel, err / std::fabs(r));
        double ratio = lim > 0 ? err / lim : (err > 0 ? INFINITY : 0);
        if (ratio > worst_ratio) { worst_ratio = ratio; worst = i; }
        if (!(err <= lim)) {
            if (n_bad < 5) first << "  [" << i << "] got " << g << " ref " << r << " err " << err << " lim " << lim << "\n";
            n_bad++;
        }
    }
    double nmse = den > 0 ? num / den : num;
    bool ok = n_bad == 0 && (tol.nmse_max < 0 || nmse <= tol.nmse_max);
    std::ostringstream msg;
    msg << what << ": n=" << n << " bad=" << n_bad << " max_abs=" << max_abs << " max_rel=" << max_rel
        << " nmse=" << nmse << " (max " << tol.nmse_max << ") worst [" << worst << "] got " << (n ? got[worst] : 0)
        << " ref " << (n ? ref[worst] : 0) << " at " << 100.0 * worst_ratio << "% of its limit\n" << first.str();
    if (ok) return ::testing::AssertionSuccess() << msg.str();
    return ::testing::AssertionFailure() << msg.str();
}

inline ::testing::AssertionResult all_close(const char *what, const std::vector<float> &got,
                                            const std::vector<double> &ref, Tol tol)
{
    if (got.size() != ref.size())
        return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << ref.size();
    return all_close(what, got.data(), ref.data(), got.size(), tol);
}

inline std::vector<double> to_double(const std::vector<float> &v) { return std::vector<double>(v.begin(), v.end()); }

// RMS of a vector (scales absolute tolerances to the data).
inline double rms(const std::vector<double> &v)
{
    double s = 0;
    for (double x : v) s += x * x;
    return v.empty() ? 0 : std::sqrt(s / (double)v.size());
}

// Tolerance of a CUDA bf16 LoRA output (LoRA linear, QLoRA / int8 layers, SGMV) against the fp32
// CPU backend. Each stored bf16 value carries up to 2^-9 relative rounding; the paths round an output
// once or twice (y, then y += v·Bᵀ) and v / du (and a dequantized W0) are rounded to bf16 before
// they are multiplied again. rtol = 2^-7 (two ulps at the bottom of a binade: two roundings); NMSE
// 1.5e-5 ≈ (2^-8)² plus headroom (bf16's RMS relative rounding error is about 2^-9/√3) — the
// accuracy bound. The elementwise atol catches localised damage (an unwritten tile, a wrong index)
// and must pass every honest element: an output near zero is a sum of rounded parts each up to
// ~5·RMS in the tail of 10^6 elements, so its error reaches a few 2^-9·5·RMS. Measured on an H100
// (2026-11-26): worst elements at 2.1 × 2^-7·RMS (LoRA linear m512 r64 dropout dx, NMSE 7.7e-6),
// 2.0 × (nf4-dq m512 y), 1.06 × (SGMV k4096 d4096); so atol = 2^-5·RMS.
inline Tol bf16_lora_tol(const std::vector<double> &ref)
{
    return Tol{std::ldexp(rms(ref), -5), std::ldexp(1.0, -7), 1.5e-5};
}

// ---- programs -------------------------------------------------------------------------------

struct CommandRun {
    int status;       // exit status, -1 when the command did not exit normally or could not start
    std::string out;  // what it printed (the command decides which streams: add 2>&1 for both)
};

// Runs a shell command (e.g. the culora program) and collects its output.
inline CommandRun run_command(const std::string &cmd)
{
    CommandRun r{-1, ""};
    FILE *p = popen(cmd.c_str(), "r");
    if (p == nullptr)
        return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        r.out.append(buf, n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// ---- contexts -------------------------------------------------------------------------------

struct CtxDeleter {
    void operator()(culora_context *c) const { culora_context_destroy(c); }
};
using CtxPtr = std::unique_ptr<culora_context, CtxDeleter>;

// stream: the caller's stream for the context to use (a cudaStream_t on CUDA); NULL: its own.
inline CtxPtr make_ctx(culora_backend_kind kind, size_t workspace_bytes = 0, culora_stream stream = nullptr)
{
    culora_context_params p = CULORA_CONTEXT_PARAMS_INIT;
    p.backend = kind;
    p.workspace_bytes = workspace_bytes;
    p.stream = stream;
    culora_context *c = nullptr;
    culora_status s = culora_context_create(&p, &c);
    EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(c);
    if (s != CULORA_OK) {
        culora_context_destroy(c);
        return CtxPtr(nullptr);
    }
    return CtxPtr(c);
}

// Fixture base for tests that need a CUDA device: skipped (not passed) without one.
class CudaTest : public ::testing::Test {
  protected:
    void SetUp() override
    {
        if (culora_cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    }
};

// ---- backend buffers with guard regions -----------------------------------------------------

// A buffer in backend memory followed by kGuard sentinel bytes. Outputs are pre-filled with NaN
// bytes (0xFF) so elements a kernel forgets to write fail the comparison.
class Buf {
  public:
    static constexpr size_t kGuard = 1024;
    static constexpr uint8_t kSentinel = 0xA5;

    Buf(culora_context *ctx, size_t bytes) : ctx_(ctx), bytes_(bytes)
    {
        culora_status s = culora_malloc(ctx, bytes + kGuard, &ptr_);
        EXPECT_EQ(s, CULORA_OK) << culora_context_last_error(ctx);
        if (s != CULORA_OK) { ptr_ = nullptr; return; }
        std::vector<uint8_t> guard(kGuard, kSentinel);
        EXPECT_EQ(culora_memset(ctx, ptr_, 0xFF, bytes, nullptr), CULORA_OK);
        EXPECT_EQ(culora_memcpy(ctx, (char *)ptr_ + bytes, guard.data(), kGuard, CULORA_COPY_HOST_TO_DEVICE, nullptr),
                  CULORA_OK);
        EXPECT_EQ(culora_synchronize(ctx, nullptr), CULORA_OK);
    }
    ~Buf() { culora_free(ctx_, ptr_); }
    Buf(const Buf &) = delete;
    Buf &operator=(const Buf &) = delete;

    void *ptr() const { return ptr_; }
    size_t bytes() const { return bytes_; }

    void upload(const void *src, size_t n)
    {
        ASSERT_LE(n, bytes_);
        ASSERT_EQ(culora_memcpy(ctx_, ptr_, src, n, CULORA_COPY_HOST_TO_DEVICE, nullptr), CULORA_OK);
        ASSERT_EQ(culora_synchronize(ctx_, nullptr), CULORA_OK);
    }
    void download(void *dst, size_t n) const
    {
        ASSERT_LE(n, bytes_);
        ASSERT_EQ(culora_memcpy(ctx_, dst, ptr_, n, CULORA_COPY_DEVICE_TO_HOST, nullptr), CULORA_OK);
        ASSERT_EQ(culora_synchronize(ctx_, nullptr), CULORA_OK);
    }
    // True when the guard bytes after the buffer are untouched.
    ::testing::AssertionResult guard_intact(const char *name) const
    {
        std::vector<uint8_t> g(kGuard);
        if (culora_memcpy(ctx_, g.data(), (char *)ptr_ + bytes_, kGuard, CULORA_COPY_DEVICE_TO_HOST, nullptr) != CULORA_OK ||
            culora_synchronize(ctx_, nullptr) != CULORA_OK)
            return ::testing::AssertionFailure() << name << ": cannot read guard";
        for (size_t i = 0; i < kGuard; i++)
            if (g[i] != kSentinel)
                return ::testing::AssertionFailure() << name << ": guard byte " << i << " after the buffer was overwritten";
        return ::testing::AssertionSuccess();
    }

  private:
    culora_context *ctx_;
    void *ptr_ = nullptr;
    size_t bytes_;
};

// ---- matrices in the backend's storage dtype ------------------------------------------------

// Packs a dense row-major [rows, cols] float matrix into a [rows, ld] buffer in the context's
// compute dtype (f32 or bf16), padding with zeros.
inline std::vector<uint8_t> pack_matrix(culora_context *ctx, const std::vector<float> &m, int64_t rows, int64_t cols,
                                        int64_t ld)
{
    culora_dtype dt = culora_context_compute_dtype(ctx);
    size_t es = culora_dtype_size(dt);
    std::vector<float> padded((size_t)(rows * ld), 0.0f);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) padded[(size_t)(i * ld + j)] = m[(size_t)(i * cols + j)];
    std::vector<uint8_t> out(padded.size() * es);
    if (dt == CULORA_DTYPE_F32)
        std::memcpy(out.data(), padded.data(), out.size());
    else
        culora_f32_to_bf16(padded.data(), (uint16_t *)out.data(), padded.size());
    return out;
}

// Inverse of pack_matrix: reads [rows, cols] out of a [rows, ld] buffer in dtype dt.
inline std::vector<float> unpack_matrix(const std::vector<uint8_t> &raw, culora_dtype dt, int64_t rows, int64_t cols,
                                        int64_t ld)
{
    size_t n = (size_t)(rows * ld);
    std::vector<float> all(n);
    if (dt == CULORA_DTYPE_F32)
        std::memcpy(all.data(), raw.data(), n * 4);
    else
        culora_bf16_to_f32((const uint16_t *)raw.data(), all.data(), n);
    std::vector<float> out((size_t)(rows * cols));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) out[(size_t)(i * cols + j)] = all[(size_t)(i * ld + j)];
    return out;
}

// ---- shared data (../shared/data) -----------------------------------------------------------

// Directory of the shared real data (CULORA_SHARED_DATA env var, else ../shared/data beside the
// checkout); empty when absent, so tests can GTEST_SKIP() with a message.
inline std::string shared_data_dir()
{
    const char *env = std::getenv("CULORA_SHARED_DATA");
    std::string dir = env ? env : CULORA_SHARED_DATA_DIR;
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "";
    return dir;
}

#define CULORA_REQUIRE_SHARED_DATA(dirvar)                                                        \
    std::string dirvar = culora_test::shared_data_dir();                                          \
    if (dirvar.empty())                                                                           \
    GTEST_SKIP() << "shared data folder absent (../shared/data or $CULORA_SHARED_DATA); skipping"

}  // namespace culora_test
