/*
 * gemm.cu — THE cuBLASLt wrapper: row-major GEMMs with descriptors and the heuristic's
 * algorithm cached per shape key, so a steady-state call is one hash-free linear probe of a
 * small table plus cublasLtMatmul (no descriptor rebuild, no heuristic query per call).
 *
 *   C[m,n] = alpha·op(A)[m,k]·op(B)[k,n] (+ bias[n] on every row) + beta·C     row-major
 *
 * Row-major is mapped to cuBLASLt's column-major by computing Cᵀ = op(B)ᵀ·op(A)ᵀ: the row-major
 * buffers are read as their column-major transposes, so no data moves.
 * Types: A, B bf16 → C bf16 or f32 (fp32 accumulation, CUBLAS_COMPUTE_32F); or all f32 (no TF32);
 * int8 × int8 → int32 (CUBLAS_COMPUTE_32I, cuda_gemm_i8_rm, for LLM.int8).
 * Strided batches (cuda_gemm_rm_batched): `count` independent products, operand i at base +
 * i·stride (elements); the batch count and strides are part of the key (attention uses it).
 * Determinism: one algorithm per key, chosen once; every reduction scheme cuBLASLt offers is
 * ordered (INPLACE uses counters for sequential order), so repeated calls are bit-identical.
 */
#include "../host/cuda/cuda_backend.h"

#include <stdlib.h>
#include <string.h>

#define LT_MAX_WORKSPACE ((size_t)32 << 20)

struct lt_key {
    int32_t ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    int32_t a_type, b_type, c_type;
    int32_t has_bias;
    int32_t batch;                      /* 1: a single product */
    int64_t stride_a, stride_b, stride_c;
    uint32_t align_a, align_b, align_c, align_bias;
    size_t ws_cap;
};

struct lt_plan {
    struct lt_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
};

// ------------------------------------------------------------------------------------------

/* Key type codes beyond culora_dtype for the int8 product (cuda_gemm_i8_rm). */
#define LT_TYPE_I8 100
#define LT_TYPE_I32 101

static cudaDataType_t lt_type(culora_dtype t)
{
    switch ((int)t) {
    case CULORA_DTYPE_BF16: return CUDA_R_16BF;
    case CULORA_DTYPE_F16: return CUDA_R_16F;
    case LT_TYPE_I8: return CUDA_R_8I;
    case LT_TYPE_I32: return CUDA_R_32I;
    default: return CUDA_R_32F;
    }
}

/* Largest power of two (<= 256) dividing the address: what cuBLASLt may assume. */
static uint32_t ptr_alignment(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 1 && a % al != 0)
        al >>= 1;
    return al;
}

static void plan_release(struct lt_plan *p)
{
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    memset(p, 0, sizeof *p);
}

extern "C" void cuda_gemm_plans_destroy(struct cuda_impl *impl)
{
    for (int i = 0; i < impl->n_plans; i++)
        plan_release(&impl->plans[i]);
    free(impl->plans);
    impl->plans = NULL;
    impl->n_plans = impl->cap_plans = 0;
}

/* Builds descriptors for key and asks the heuristic for the best algorithm. */
static culora_status plan_build(culora_backend *be, const struct lt_key *key, struct lt_plan *p)
{
    struct cuda_impl *impl = cuda_impl_of(be);
    memset(p, 0, sizeof *p);
    p->key = *key;
    const cudaDataType_t at = lt_type((culora_dtype)key->a_type), bt = lt_type((culora_dtype)key->b_type),
                         ct = lt_type((culora_dtype)key->c_type);
    /* Column-major problem: Cᵀ[n,m] = op(B)ᵀ[n,k] · op(A)ᵀ[k,m]. First operand is the B buffer. */
    const cublasOperation_t opa = key->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t opb = key->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    const uint64_t la_rows = key->tb ? (uint64_t)key->k : (uint64_t)key->n;
    const uint64_t la_cols = key->tb ? (uint64_t)key->n : (uint64_t)key->k;
    const uint64_t lb_rows = key->ta ? (uint64_t)key->m : (uint64_t)key->k;
    const uint64_t lb_cols = key->ta ? (uint64_t)key->k : (uint64_t)key->m;

    culora_status s = CULORA_OK;
    cublasStatus_t st;
    cublasLtMatmulPreference_t pref = NULL;
    int found = 0;
    cublasLtMatmulHeuristicResult_t res;
#define LT_TRY(call)                                                        \
    do {                                                                    \
        st = (call);                                                        \
        if (st != CUBLAS_STATUS_SUCCESS) {                                  \
            s = culora_cublas_fail(be, st, #call, __FILE__, __LINE__);      \
            goto fail;                                                      \
        }                                                                   \
    } while (0)
    const bool i8 = key->a_type == LT_TYPE_I8; /* int8 x int8 -> int32, exact int32 accumulation */
    LT_TRY(cublasLtMatmulDescCreate(&p->op, i8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F, i8 ? CUDA_R_32I : CUDA_R_32F));
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    if (key->has_bias) {
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ct, sizeof ct));
    }
    LT_TRY(cublasLtMatrixLayoutCreate(&p->la, bt, la_rows, la_cols, key->ldb));
    LT_TRY(cublasLtMatrixLayoutCreate(&p->lb, at, lb_rows, lb_cols, key->lda));
    LT_TRY(cublasLtMatrixLayoutCreate(&p->lc, ct, (uint64_t)key->n, (uint64_t)key->m, key->ldc));
    if (key->batch > 1) {
        const cublasLtMatrixLayout_t lays[3] = {p->la, p->lb, p->lc};
        const int64_t strides[3] = {key->stride_b, key->stride_a, key->stride_c}; /* la holds B, lb holds A */
        for (int i = 0; i < 3; i++) {
            LT_TRY(cublasLtMatrixLayoutSetAttribute(lays[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &key->batch,
                                                    sizeof key->batch));
            LT_TRY(cublasLtMatrixLayoutSetAttribute(lays[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i],
                                                    sizeof strides[i]));
        }
    }

    LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &key->ws_cap,
                                                sizeof key->ws_cap));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key->align_b,
                                                sizeof key->align_b));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key->align_a,
                                                sizeof key->align_a));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key->align_c,
                                                sizeof key->align_c));
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key->align_c,
                                                sizeof key->align_c));
    LT_TRY(cublasLtMatmulAlgoGetHeuristic(impl->lt, p->op, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &found));
    if (found < 1) {
        s = culora_fail(be->ctx, CULORA_ERR_CUBLAS,
                        "gemm: cuBLASLt has no algorithm for m=%lld n=%lld k=%lld (%s x %s -> %s, lda=%lld ldb=%lld "
                        "ldc=%lld, workspace %zu)",
                        (long long)key->m, (long long)key->n, (long long)key->k,
                        culora_dtype_name((culora_dtype)key->a_type), culora_dtype_name((culora_dtype)key->b_type),
                        culora_dtype_name((culora_dtype)key->c_type), (long long)key->lda, (long long)key->ldb,
                        (long long)key->ldc, key->ws_cap);
        goto fail;
    }
    p->algo = res.algo;
    cublasLtMatmulPreferenceDestroy(pref);
    return CULORA_OK;
#undef LT_TRY
fail:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    plan_release(p);
    return s;
}

static culora_status plan_get(culora_backend *be, const struct lt_key *key, struct lt_plan **out)
{
    struct cuda_impl *impl = cuda_impl_of(be);
    for (int i = 0; i < impl->n_plans; i++)
        if (memcmp(&impl->plans[i].key, key, sizeof *key) == 0) {
            *out = &impl->plans[i];
            return CULORA_OK;
        }
    if (impl->n_plans == impl->cap_plans) {
        int cap = impl->cap_plans ? 2 * impl->cap_plans : 16;
        struct lt_plan *np = (struct lt_plan *)realloc(impl->plans, (size_t)cap * sizeof *np);
        if (np == NULL)
            return culora_fail(be->ctx, CULORA_ERR_OUT_OF_MEMORY, "gemm: plan cache out of memory");
        impl->plans = np;
        impl->cap_plans = cap;
    }
    struct lt_plan *p = &impl->plans[impl->n_plans];
    CULORA_TRY(plan_build(be, key, p));
    impl->n_plans++;
    *out = p;
    return CULORA_OK;
}

// ------------------------------------------------------------------------------------------

extern "C" culora_status cuda_gemm_rm_batched(culora_backend *be, bool trans_a, bool trans_b, int64_t m, int64_t n,
                                              int64_t k, float alpha, const void *a, int64_t lda, culora_dtype a_type,
                                              const void *b, int64_t ldb, culora_dtype b_type, float beta, void *c,
                                              int64_t ldc, culora_dtype c_type, const void *bias,
                                              const struct cuda_gemm_batch *batch, void *ws, size_t ws_bytes,
                                              cudaStream_t stream)
{
    struct lt_key key;
    memset(&key, 0, sizeof key); /* padding bytes take part in memcmp */
    key.ta = trans_a;
    key.tb = trans_b;
    key.m = m;
    key.n = n;
    key.k = k;
    key.lda = lda;
    key.ldb = ldb;
    key.ldc = ldc;
    key.a_type = a_type;
    key.b_type = b_type;
    key.c_type = c_type;
    key.has_bias = bias != NULL;
    key.batch = batch ? batch->count : 1;
    if (key.batch > 1) {
        key.stride_a = batch->stride_a;
        key.stride_b = batch->stride_b;
        key.stride_c = batch->stride_c;
    }
    key.align_a = ptr_alignment(a);
    key.align_b = ptr_alignment(b);
    key.align_c = ptr_alignment(c);
    key.align_bias = bias ? ptr_alignment(bias) : 0;
    /* Workspace handed to cuBLASLt starts 256-byte aligned. */
    uintptr_t wsa = ((uintptr_t)ws + 255u) & ~(uintptr_t)255u;
    size_t cap = 0;
    if (ws != NULL && ws_bytes > (size_t)(wsa - (uintptr_t)ws))
        cap = ws_bytes - (size_t)(wsa - (uintptr_t)ws);
    key.ws_cap = cap < LT_MAX_WORKSPACE ? cap : LT_MAX_WORKSPACE;

    struct lt_plan *p = NULL;
    CULORA_TRY(plan_get(be, &key, &p));
    if (bias != NULL)
        CULORA_CUBLAS_TRY(be, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                             sizeof bias));
    CULORA_CUBLAS_TRY(be, cublasLtMatmul(cuda_impl_of(be)->lt, p->op, &alpha, b, p->la, a, p->lb, &beta, c, p->lc,
                                         c, p->lc, &p->algo, (void *)wsa, key.ws_cap, stream));
    return CULORA_OK;
}

extern "C" culora_status cuda_gemm_rm(culora_backend *be, bool trans_a, bool trans_b, int64_t m, int64_t n,
                                      int64_t k, float alpha, const void *a, int64_t lda, culora_dtype a_type,
                                      const void *b, int64_t ldb, culora_dtype b_type, float beta, void *c,
                                      int64_t ldc, culora_dtype c_type, const void *bias, void *ws,
                                      size_t ws_bytes, cudaStream_t stream)
{
    return cuda_gemm_rm_batched(be, trans_a, trans_b, m, n, k, alpha, a, lda, a_type, b, ldb, b_type, beta, c, ldc,
                                c_type, bias, NULL, ws, ws_bytes, stream);
}

extern "C" culora_status cuda_gemm(culora_backend *be, const struct culora_gemm_args *g, const culora_workspace *ws,
                                   culora_stream stream)
{
    const bool all_f32 = g->a_dtype == CULORA_DTYPE_F32 && g->b_dtype == CULORA_DTYPE_F32 &&
                         g->c_dtype == CULORA_DTYPE_F32;
    const bool bf16_in = g->a_dtype == CULORA_DTYPE_BF16 && g->b_dtype == CULORA_DTYPE_BF16 &&
                         (g->c_dtype == CULORA_DTYPE_BF16 || g->c_dtype == CULORA_DTYPE_F32);
    if (!all_f32 && !bf16_in)
        return culora_fail(be->ctx, CULORA_ERR_UNSUPPORTED, "gemm: cuda supports bf16 x bf16 -> bf16|f32 and f32 "
                                                            "x f32 -> f32; got %s x %s -> %s",
                           culora_dtype_name(g->a_dtype), culora_dtype_name(g->b_dtype), culora_dtype_name(g->c_dtype));
    return cuda_gemm_rm(be, g->trans_a, g->trans_b, g->m, g->n, g->k, g->alpha, g->a, g->lda, g->a_dtype, g->b,
                        g->ldb, g->b_dtype, g->beta, g->c, g->ldc, g->c_dtype, g->bias, ws->ptr, ws->bytes,
                        (cudaStream_t)stream);
}

/* int8 product for LLM.int8 (kernels/quant_linear.cu): C[m,n] int32 '=' A[m,k]·B[n,k]ᵀ, int8
 * row-major (B is the weight as stored), exact int32 accumulation. In cuBLASLt's column-major view
 * this is the "TN" case int8 kernels support; lda, ldb (bytes) and ldc should be multiples of 16 / 4
 * for the IMMA kernels. Plans are cached like every other shape. */
extern "C" culora_status cuda_gemm_i8_rm(culora_backend *be, int64_t m, int64_t n, int64_t k, const int8_t *a,
                                         int64_t lda, const int8_t *b, int64_t ldb, int32_t *c, int64_t ldc, void *ws,
                                         size_t ws_bytes, cudaStream_t stream)
{
    struct lt_key key;
    memset(&key, 0, sizeof key);
    key.ta = 0;
    key.tb = 1;
    key.m = m;
    key.n = n;
    key.k = k;
    key.lda = lda;
    key.ldb = ldb;
    key.ldc = ldc;
    key.a_type = LT_TYPE_I8;
    key.b_type = LT_TYPE_I8;
    key.c_type = LT_TYPE_I32;
    key.batch = 1;
    key.align_a = ptr_alignment(a);
    key.align_b = ptr_alignment(b);
    key.align_c = ptr_alignment(c);
    uintptr_t wsa = ((uintptr_t)ws + 255u) & ~(uintptr_t)255u;
    size_t cap = 0;
    if (ws != NULL && ws_bytes > (size_t)(wsa - (uintptr_t)ws))
        cap = ws_bytes - (size_t)(wsa - (uintptr_t)ws);
    key.ws_cap = cap < LT_MAX_WORKSPACE ? cap : LT_MAX_WORKSPACE;
    struct lt_plan *p = NULL;
    CULORA_TRY(plan_get(be, &key, &p));
    const int32_t alpha = 1, beta = 0;
    CULORA_CUBLAS_TRY(be, cublasLtMatmul(cuda_impl_of(be)->lt, p->op, &alpha, b, p->la, a, p->lb, &beta, c, p->lc, c,
                                         p->lc, &p->algo, (void *)wsa, key.ws_cap, stream));
    return CULORA_OK;
}
