// sgmv_run.h — one segmented-LoRA case (host/sgmv_ops.h) run on a context, and its fp64 reference.
// Shared by test_sgmv.cpp (CPU) and test_sgmv_cuda.cpp (CUDA vs CPU).
#pragma once

#include "test_util.h"

extern "C" {
#include "sgmv_ops.h"
}

#include <ostream>

namespace culora_test {

struct SgmvCase {
    int64_t k, d;
    int32_t r;
    std::vector<int64_t> seg_len;  // rows per segment (0: empty segment)
    bool shared_adapter;           // stride 0: every segment uses adapter 0
    uint64_t seed;
};

inline void PrintTo(const SgmvCase &c, std::ostream *os)
{
    *os << "k" << c.k << "_d" << c.d << "_r" << c.r << "_segs" << c.seg_len.size() << (c.shared_adapter ? "_shared" : "");
}

struct SgmvData {
    int64_t m = 0;
    int32_t n_seg = 0;
    std::vector<int64_t> seg;
    std::vector<float> x, a, b, y0;  // dense: x [m,k], a [n_seg, r, k], b [n_seg, d, r], y0 [m,d]
};

inline SgmvData sgmv_data(const SgmvCase &c, bool bf16_inputs)
{
    SgmvData s;
    s.n_seg = (int32_t)c.seg_len.size();
    s.seg.push_back(0);
    for (int64_t l : c.seg_len) s.seg.push_back(s.seg.back() + l);
    s.m = s.seg.back();
    const int64_t na = c.shared_adapter ? 1 : s.n_seg;
    s.x = random_vec((size_t)(s.m * c.k), c.seed);
    s.a = random_vec((size_t)(na * c.r * c.k), c.seed + 1, -0.3f, 0.3f);
    s.b = random_vec((size_t)(na * c.d * c.r), c.seed + 2, -0.3f, 0.3f);
    s.y0 = random_vec((size_t)(s.m * c.d), c.seed + 3);
    if (bf16_inputs) {
        s.x = round_bf16(s.x);
        s.a = round_bf16(s.a);
        s.b = round_bf16(s.b);
        s.y0 = round_bf16(s.y0);
    }
    return s;
}

// fp64 reference of v and y.
inline void sgmv_ref(const SgmvCase &c, const SgmvData &s, float scale, std::vector<double> &v, std::vector<double> &y)
{
    v.assign((size_t)(s.m * c.r), 0.0);
    y.assign(s.y0.begin(), s.y0.end());
    for (int32_t i = 0; i < s.n_seg; i++) {
        const int64_t ai = c.shared_adapter ? 0 : i;
        const float *A = &s.a[(size_t)(ai * c.r * c.k)], *B = &s.b[(size_t)(ai * c.d * c.r)];
        for (int64_t row = s.seg[(size_t)i]; row < s.seg[(size_t)i + 1]; row++) {
            for (int32_t j = 0; j < c.r; j++) {
                double acc = 0;
                for (int64_t q = 0; q < c.k; q++) acc += (double)s.x[(size_t)(row * c.k + q)] * A[j * c.k + q];
                v[(size_t)(row * c.r + j)] = scale * acc;
            }
            for (int64_t col = 0; col < c.d; col++) {
                double acc = 0;
                for (int32_t j = 0; j < c.r; j++) acc += v[(size_t)(row * c.r + j)] * B[col * c.r + j];
                y[(size_t)(row * c.d + col)] += acc;
            }
        }
    }
}

inline int64_t round_ld(culora_context *ctx, int64_t cols)
{
    return culora_context_compute_dtype(ctx) == CULORA_DTYPE_F32 ? cols + 1 : (cols + 7) / 8 * 8 + 8;  // padded
}

// Runs the op on ctx; v and y come back dense fp32. Guard regions after every buffer are checked.
inline void sgmv_run(culora_context *ctx, const SgmvCase &c, const SgmvData &s, float scale, std::vector<float> &v,
                     std::vector<float> &y)
{
    const culora_dtype dt = culora_context_compute_dtype(ctx);
    const size_t es = culora_dtype_size(dt);
    const int64_t ldx = round_ld(ctx, c.k), lda = round_ld(ctx, c.k), ldb = round_ld(ctx, c.r);
    const int64_t ldv = round_ld(ctx, c.r), ldy = round_ld(ctx, c.d);
    const int64_t na = c.shared_adapter ? 1 : s.n_seg;
    const int64_t stride_a = c.shared_adapter ? 0 : c.r * lda, stride_b = c.shared_adapter ? 0 : c.d * ldb;
    Buf x(ctx, (size_t)(s.m * ldx) * es), a(ctx, (size_t)(na * c.r * lda) * es), b(ctx, (size_t)(na * c.d * ldb) * es);
    Buf vb(ctx, (size_t)(s.m * ldv) * es), yb(ctx, (size_t)(s.m * ldy) * es);
    auto px = pack_matrix(ctx, s.x, s.m, c.k, ldx);
    auto pa = pack_matrix(ctx, s.a, na * c.r, c.k, lda);
    auto pb = pack_matrix(ctx, s.b, na * c.d, c.r, ldb);
    auto py = pack_matrix(ctx, s.y0, s.m, c.d, ldy);
    x.upload(px.data(), px.size());
    a.upload(pa.data(), pa.size());
    b.upload(pb.data(), pb.size());
    yb.upload(py.data(), py.size());
    const culora_sgmv_args args = {s.m, c.k, c.d, c.r, s.n_seg, s.seg.data(), scale,
                                   x.ptr(), ldx, a.ptr(), lda, stride_a, b.ptr(), ldb, stride_b,
                                   vb.ptr(), ldv, yb.ptr(), ldy};
    ASSERT_EQ(culora_op_sgmv(ctx, &args, nullptr), CULORA_OK) << culora_context_last_error(ctx);
    ASSERT_EQ(culora_synchronize(ctx, nullptr), CULORA_OK);
    std::vector<uint8_t> rv((size_t)(s.m * ldv) * es), ry((size_t)(s.m * ldy) * es);
    vb.download(rv.data(), rv.size());
    yb.download(ry.data(), ry.size());
    v = unpack_matrix(rv, dt, s.m, c.r, ldv);
    y = unpack_matrix(ry, dt, s.m, c.d, ldy);
    for (const Buf *g : {&x, &a, &b, &vb, &yb}) EXPECT_TRUE(g->guard_intact("sgmv buffer"));
}

}  // namespace culora_test
