// test_dispatch.cpp — the checking dispatcher: bad arguments give CULORA_ERR_INVALID_ARG (or
// UNSUPPORTED) with a message naming the argument, before any memory is touched.
#include "lora_ref.h"

extern "C" {
#include "backend.h"
#include "context.h"
}

using namespace culora_test;

namespace {

struct DispatchTest : ::testing::Test {
    CtxPtr ctx = make_ctx(CULORA_BACKEND_CPU);
    int64_t m = 4, k = 6, d = 5;
    int32_t r = 2;
    std::vector<float> x = std::vector<float>(64, 0.5f), w = std::vector<float>(64, 0.25f), a = std::vector<float>(64, 1.0f),
                       b = std::vector<float>(64, 1.0f), v = std::vector<float>(64), y = std::vector<float>(64),
                       dy = std::vector<float>(64, 1.0f), du = std::vector<float>(64), dx = std::vector<float>(64),
                       da = std::vector<float>(64), db = std::vector<float>(64);
    culora_lora_linear_desc desc = CULORA_LORA_LINEAR_DESC_INIT;
    culora_lora_linear_fwd_args fa{};
    culora_lora_linear_bwd_args ba{};

    void SetUp() override
    {
        ASSERT_TRUE(ctx);
        desc.m = m; desc.k = k; desc.d = d; desc.r = r; desc.alpha = 4.0f; desc.dtype = CULORA_DTYPE_F32;
        fa = {x.data(), k, w.data(), k, nullptr, a.data(), k, b.data(), r, v.data(), r, y.data(), d};
        ba = {x.data(), k, w.data(), k, a.data(), k, b.data(), r, v.data(), r, dy.data(), d, du.data(), r,
              dx.data(), k, da.data(), k, db.data(), r};
    }
    std::string msg() const { return culora_context_last_error(ctx.get()); }
    culora_status fwd() { return culora_lora_linear_forward(ctx.get(), &desc, &fa, nullptr, 0, nullptr); }
    culora_status bwd() { return culora_lora_linear_backward(ctx.get(), &desc, &ba, nullptr, 0, nullptr); }
};

#define EXPECT_REJECTS(call, code, needle)                                                           \
    do {                                                                                             \
        EXPECT_EQ((call), (code));                                                                   \
        EXPECT_NE(msg().find(needle), std::string::npos) << "message: " << msg() << " lacks: " << needle; \
    } while (0)

}  // namespace

TEST_F(DispatchTest, ValidCallsSucceed)
{
    EXPECT_EQ(fwd(), CULORA_OK) << msg();
    EXPECT_EQ(bwd(), CULORA_OK) << msg();
}

TEST_F(DispatchTest, NullPointersAreNamed)
{
    fa.x = nullptr;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "x is NULL");
    fa.x = x.data();
    fa.y = nullptr;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "y is NULL");
    ba.db = nullptr;
    EXPECT_REJECTS(bwd(), CULORA_ERR_INVALID_ARG, "db is NULL");
    ba.db = db.data();
    ba.da = nullptr;
    EXPECT_REJECTS(bwd(), CULORA_ERR_INVALID_ARG, "da is NULL");
    desc.flags = CULORA_LORA_FREEZE_A;  // LoRA-FA: da may be NULL
    EXPECT_EQ(bwd(), CULORA_OK) << msg();
    EXPECT_REJECTS(culora_lora_linear_forward(ctx.get(), nullptr, &fa, nullptr, 0, nullptr), CULORA_ERR_INVALID_ARG,
                   "desc is NULL");
    EXPECT_REJECTS(culora_lora_linear_forward(ctx.get(), &desc, nullptr, nullptr, 0, nullptr), CULORA_ERR_INVALID_ARG,
                   "args is NULL");
    EXPECT_EQ(culora_lora_linear_forward(nullptr, &desc, &fa, nullptr, 0, nullptr), CULORA_ERR_INVALID_ARG);
}

TEST_F(DispatchTest, BadDescriptorFields)
{
    desc.r = 0;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "desc->r = 0");
    desc.r = r;
    desc.k = -1;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "desc->k");
    desc.k = k;
    desc.dropout = 1.0f;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "desc->dropout");
    desc.dropout = 0.0f;
    desc.alpha = NAN;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "alpha");
    desc.alpha = 1.0f;
    desc.flags = 1u << 20;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "unknown bits");
    desc.flags = 0;
    desc.dtype = CULORA_DTYPE_BF16;
    EXPECT_REJECTS(fwd(), CULORA_ERR_UNSUPPORTED, "stores f32");
    desc.dtype = CULORA_DTYPE_F32;
    desc.struct_size = 3;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "CULORA_LORA_LINEAR_DESC_INIT");
}

TEST_F(DispatchTest, MismatchedShapesViaLeadingDimensions)
{
    fa.ldx = k - 1;  // x rows shorter than k
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "leading dimension of x is 5, smaller than its 6 columns");
    fa.ldx = k;
    fa.ldb = r - 1;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "leading dimension of b");
    fa.ldb = r;
    desc.flags = CULORA_LORA_W0_TRANSPOSED;  // W0 is now [k,d]: ldw0 = k = 6 >= d = 5 is fine...
    EXPECT_EQ(fwd(), CULORA_OK) << msg();
    desc.d = 7;  // ...but not for d = 7
    fa.ldy = 7;
    fa.ldb = r;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "leading dimension of w0");
}

TEST_F(DispatchTest, MisalignedLeadingDimensionOnA16ByteBackend)
{
    // The CUDA backend needs leading dimensions in multiples of 8 bf16 elements. Check the rule
    // on the CPU by giving this context's backend the CUDA backend's alignment.
    ctx->be->ld_align = 8;
    fa.ldx = 8; fa.ldw0 = 8; fa.lda = 8; fa.ldb = 8; fa.ldv = 8; fa.ldy = 8;
    EXPECT_EQ(fwd(), CULORA_OK) << msg();
    fa.ldy = 12;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "leading dimension of y is 12; the cpu backend needs a multiple of 8");
    ctx->be->ld_align = 1;
}

TEST_F(DispatchTest, MisalignedPointer)
{
    fa.a = (const char *)a.data() + 2;
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "a (");
}

TEST_F(DispatchTest, OutputsMustNotOverlapInputs)
{
    fa.y = x.data();
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "output y overlaps x");
    fa.y = y.data();
    ba.dx = dy.data();
    EXPECT_REJECTS(bwd(), CULORA_ERR_INVALID_ARG, "output dx overlaps dy");
    ba.dx = dx.data();
    ba.db = da.data();
    EXPECT_REJECTS(bwd(), CULORA_ERR_INVALID_ARG, "output da overlaps db");
}

TEST_F(DispatchTest, AugmentedLayoutIsNotAnOverlap)
{
    // v in the spare columns of x's buffer (ld = k + r) is the fused layout, not an overlap.
    std::vector<float> xv((size_t)(m * (k + r)), 0.5f);
    fa.x = xv.data(); fa.ldx = k + r; fa.v = xv.data() + k; fa.ldv = k + r;
    EXPECT_EQ(fwd(), CULORA_OK) << msg();
    fa.v = xv.data() + k - 1;  // one column too far left: v's first column is x's last
    EXPECT_REJECTS(fwd(), CULORA_ERR_INVALID_ARG, "output v overlaps x");
}

TEST_F(DispatchTest, WorkspaceTooSmall)
{
    desc.dropout = 0.25f;  // the CPU backend needs m·k floats of workspace for dropout
    char small[16];
    EXPECT_REJECTS(culora_lora_linear_forward(ctx.get(), &desc, &fa, small, sizeof small, nullptr),
                   CULORA_ERR_INVALID_ARG, "workspace of 16 bytes is smaller than the 96 bytes");
    size_t f = 0, b = 0;
    ASSERT_EQ(culora_lora_linear_workspace_size(ctx.get(), &desc, &f, &b), CULORA_OK);
    EXPECT_EQ(f, (size_t)(m * k * 4));
    EXPECT_EQ(b, (size_t)(m * k * 4));
    std::vector<float> ws((size_t)(m * k));
    EXPECT_EQ(culora_lora_linear_forward(ctx.get(), &desc, &fa, ws.data(), f, nullptr), CULORA_OK) << msg();
}

TEST_F(DispatchTest, RequireFusedIsUnsupportedOnCpu)
{
    desc.flags = CULORA_LORA_REQUIRE_FUSED;
    EXPECT_REJECTS(fwd(), CULORA_ERR_UNSUPPORTED, "no fused path");
}

TEST_F(DispatchTest, MergeChecksItsArguments)
{
    EXPECT_EQ(culora_lora_merge(ctx.get(), &desc, w.data(), k, a.data(), k, b.data(), r, nullptr), CULORA_OK) << msg();
    EXPECT_REJECTS(culora_lora_merge(ctx.get(), &desc, nullptr, k, a.data(), k, b.data(), r, nullptr),
                   CULORA_ERR_INVALID_ARG, "w0 is NULL");
    EXPECT_REJECTS(culora_lora_unmerge(ctx.get(), &desc, w.data(), k, a.data(), k - 1, b.data(), r, nullptr),
                   CULORA_ERR_INVALID_ARG, "leading dimension of a");
    EXPECT_REJECTS(culora_lora_merge(ctx.get(), &desc, w.data(), k, w.data(), k, b.data(), r, nullptr),
                   CULORA_ERR_INVALID_ARG, "output w0 overlaps a");
}

TEST(ViewsOverlap, ExactForSharedLeadingDimension)
{
    alignas(16) float buf[64];
    // two 4x3 views side by side in a ld=8 grid: disjoint
    EXPECT_FALSE(culora_views_overlap(buf, 4, 3, 8, buf + 3, 4, 3, 8, 4));
    EXPECT_TRUE(culora_views_overlap(buf, 4, 3, 8, buf + 2, 4, 3, 8, 4));
    // rows 0-1 vs rows 2-3 of the same columns: disjoint
    EXPECT_FALSE(culora_views_overlap(buf, 2, 8, 8, buf + 16, 2, 8, 8, 4));
    // different leading dimensions with intersecting byte ranges: conservative
    EXPECT_TRUE(culora_views_overlap(buf, 2, 2, 4, buf + 2, 2, 2, 8, 4));
    EXPECT_FALSE(culora_views_overlap(buf, 2, 2, 4, buf + 32, 2, 2, 8, 4));
}
