// nn_cuda_test.h — shared by the CUDA-vs-CPU transformer-op tests (test_nn_cuda): the fixture
// (skips without a device) and the tolerances, each with its reason. Inputs are bf16-exact
// (nn_test::rnd), so both backends see the same values; the CPU backend is the oracle.
// The tolerances are derived (no GPU was available when they were written) and held unchanged on
// an H100 (2026-11-26, both gpu-check runs): see docs/kernels/nn.md.
#pragma once

#include "nn_run.h"

namespace nn_test {

class NnCuda : public CudaTest {
  protected:
    void SetUp() override
    {
        CudaTest::SetUp();
        if (IsSkipped()) return;
        cpu = make_ctx(CULORA_BACKEND_CPU);
        gpu = make_ctx(CULORA_BACKEND_CUDA);
        ASSERT_TRUE(cpu && gpu);
    }
    CtxPtr cpu, gpu;
};

// One bf16 rounding of an output computed in fp32 from identical inputs: |err| <= 2^-9·|ref|
// (half an ulp) plus the fp32-vs-fp64 difference (~1e-7). rtol 2^-8 gives 2x headroom; atol
// 2^-8 of the RMS covers outputs that are small differences of O(RMS) terms (norms with beta,
// x·cos − y·sin) whose inputs round relative to the terms, not to the result; the NMSE bound
// 1.5e-5 ≈ (2^-8)² is ~40x the NMSE of a single rounding (≈ (2^-9)²/3).
inline Tol bf16_out_tol(const std::vector<double> &ref) { return Tol{std::ldexp(rms(ref), -8), std::ldexp(1.0, -8), 1.5e-5}; }

// Attention outputs. P (forward) and dS (backward) are rounded to bf16 as GEMM operands, then
// summed over up to T terms, and Σ_j dS_tj = 0 makes dq/dk differences of larger terms; the
// error tails therefore reach a few percent of the RMS while the NMSE stays ≈ (2^-8)²/8. A numpy
// emulation of kernels/attention.cu's exact layout and roundings (T up to 256, D = 64, GQA)
// gave max errors of 0.44 × (2^-5·RMS + 2^-6·|ref|) for y and 0.40 × (2^-4·RMS + 2^-6·|ref|) for
// dq/dk/dv, and NMSE ≤ 8e-6. The NMSE bound 5e-5 carries the precision: a wrong index or a
// missing term gives an NMSE of 1e-2 or more.
inline Tol bf16_attn_out_tol(const std::vector<double> &ref) { return Tol{std::ldexp(rms(ref), -5), std::ldexp(1.0, -6), 5e-5}; }
inline Tol bf16_attn_grad_tol(const std::vector<double> &ref) { return Tol{std::ldexp(rms(ref), -4), std::ldexp(1.0, -6), 5e-5}; }

// fp32 results from identical inputs, summed in another order (row statistics, lse, losses):
// reordering n fp32 additions moves the result by ≲ sqrt(n)·2^-24 relative to Σ|terms|; with
// n ≤ 8192 that is < 1e-5 of the RMS.
inline Tol fp32_reorder_tol(const std::vector<double> &ref) { return Tol{1e-5 * std::max(rms(ref), 1e-30), 1e-5, 1e-9}; }

// fp32 column sums over n rows (dgamma, dbeta, dbias, embedding gradients), chunked on the GPU
// and sequential on the CPU, xhat from each device's own fp32 mean/rstd: with O(1) random terms
// the sum is ~sqrt(n) and reordering moves it by ~sqrt(n)·2^-24·sqrt(n) — about 5e-6 relative
// at n = 8192. 1e-4 of the RMS is 20x that, and a wrong or missing row (O(1), i.e. ≥ 1e-2 of the
// RMS at n = 8192) still fails.
inline Tol colsum_tol(const std::vector<double> &ref) { return Tol{1e-4 * std::max(rms(ref), 1e-30), 1e-4, 1e-8}; }

inline ::testing::AssertionResult close(const char *what, const std::vector<float> &got, const std::vector<float> &ref,
                                        Tol (*tol)(const std::vector<double> &))
{
    const std::vector<double> r = to_double(ref);
    return all_close(what, got, r, tol(r));
}

}  // namespace nn_test
