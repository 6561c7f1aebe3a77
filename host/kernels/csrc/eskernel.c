/* edgestream compiled CPU kernels (see eskernel.h, docs/cpu-kernels.md, docs/numerics.md).
 *
 * Must be compiled with -ffp-contract=off: the numerics contract forbids fusing the float multiply
 * and add steps. Every integer reduction is exact in any order, so the SIMD paths may sum in any
 * tree; every float step is element-wise scalar code in the contract's order.
 *
 * ISA paths live in functions with GCC target attributes, so one translation unit built for the
 * baseline ISA carries all of them; the CPU is asked at run time which ones it can execute. */
#include "eskernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define ES_X86 1
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#define ES_NEON 1
#include <arm_neon.h>
#endif

#define ES_VERSION 8
#define ROWPAD 8 /* packed rows are padded to a multiple of this; row chunks start on it */

static int g_variant = 0; /* es_set_variant: ES_VARIANT_* */

typedef void (*mm_rows_fn)(const uint8_t *W, int64_t kpb, int B, const int8_t *Q, int64_t kp,
                           int64_t T, int64_t r0, int64_t r1, int64_t n, const int32_t *corr,
                           int32_t *out);

/* Software prefetch of the weight rows PF_TILES tiles ahead (within the thread's chunk). A tile's
 * rows are one contiguous run of R * kpb bytes; ahead of the hardware prefetcher, which ramps up
 * per 4 KiB page, this keeps the loads of a GEMV from waiting on DRAM (measured on a 2-core Zen
 * VM, AVX2: the single-thread weight stream went from about 3 to 6-8 GB/s of CPU time).
 * The hint on x86 is prefetcht1 (into L2), not the non-temporal prefetchnta that versions <= 7 used:
 * on Intel prefetchnta fills L1 only, past the L2 streamer, and an idle 16-core Xeon VM streamed
 * the 2B4T weights from DRAM at half the rate (AVX2 path, 2 threads: ternary stack 8.7 -> 17.8 GB/s,
 * INT8 head 7.1 -> 20.4 GB/s; 1 thread 4.6 -> 8.5 and 3.7 -> 10.0); on the 2-core Zen 3 VM under
 * load the two hints measured the same within noise (0.9-1.14x). aarch64 keeps the streaming
 * hint (PLDL1STRM), unmeasured on a board. */
#define PF_TILES 2
#ifdef ES_X86
#define PF_LOC 2
#else
#define PF_LOC 0
#endif
static inline __attribute__((always_inline)) void prefetch_rows(const uint8_t *W, int64_t kpb,
                                                                int64_t r, int R, int64_t r1) {
    if (r + R > r1) return;
    const uint8_t *p = W + r * kpb;
    for (int64_t o = 0; o < R * kpb; o += 64) __builtin_prefetch(p + o, 0, PF_LOC);
}

static inline void store_res(const int32_t *res, int R, int TT, int64_t r, int64_t t, int64_t n,
                             const int32_t *corr, int32_t *out) {
    for (int tt = 0; tt < TT; tt++)
        for (int rr = 0; rr < R; rr++)
            if (r + rr < n)
                out[(t + tt) * n + r + rr] =
                    (int32_t)((uint32_t)res[tt * R + rr] - (uint32_t)corr[t + tt]);
}

/* ------------------------------------------------------------------ scalar (portable) */
static void mm_rows_scalar(const uint8_t *W, int64_t kpb, int B, const int8_t *Q, int64_t kp,
                           int64_t T, int64_t r0, int64_t r1, int64_t n, const int32_t *corr,
                           int32_t *out) {
    const int P = 8 / B;
    const int mask = (1 << B) - 1;
    const int64_t nblk = kpb / 64;
    for (int64_t r = r0; r < r1 && r < n; r++) {
        const uint8_t *row = W + r * kpb;
        for (int64_t t = 0; t < T; t++) {
            const int8_t *qt = Q + t * kp;
            int64_t acc = 0;
            for (int64_t b = 0; b < nblk; b++) {
                const uint8_t *wb = row + b * 64;
                const int8_t *qb = qt + b * 64 * P;
                for (int s = 0; s < P; s++)
                    for (int j = 0; j < 64; j++)
                        acc += (int64_t)((wb[j] >> (B * s)) & mask) * qb[64 * s + j];
            }
            int32_t res = (int32_t)acc;
            store_res(&res, 1, 1, r, t, n, corr, out);
        }
    }
}

#ifdef ES_X86
/* ------------------------------------------------------------------ AVX2 */
#define TGT_AVX2 __attribute__((target("avx2")))

static inline __attribute__((always_inline)) TGT_AVX2 int32_t hsum256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* 2-bit codes (ternary, INT2) in fewer instructions per weight byte than the generic plane loop
 * (tile_avx2): one 16-bit shift by 4 brings planes 2 and 3 down to where planes 0 and 1 are, and the
 * masks 0x03 and 0x0C then select code (planes 0, 2) or 4 * code (planes 1, 3) without shifting
 * them down: 1 shift + 4 ands per 32 bytes instead of 3 shifts + 4 ands. The maddubs products of
 * the two kinds go to two int16 sums (s1: code, s4: 4 * code) widened only every ES2_WB blocks, as
 * madd(s1, 4) + madd(s4, 1), instead of one madd and one add per 32 bytes: the int32 lanes hold
 * 4 * dot, shifted back after the horizontal sum (exact: a multiple of 4). Per 32 weight bytes and
 * row: 13 vector ops and 1/2 madd against 16 and 2 (the AVX2 GEMV is bound by these ops, not by
 * the loads: measured in docs/cpu-kernels.md).
 * Ranges (codes <= 3, |q| <= 128): a maddubs pair is <= 2 * 12 * 128 = 3072 in magnitude (no
 * saturation); s4 gains 2 pairs per 32-byte half, so ES2_WB = 2 blocks (4 halves) keep
 * |s4| <= 8 * 3072 = 24576 and |s1| <= 8 * 768 below 2**15; 4 * |dot| <= 4 * 3 * 128 * K < 2**31
 * for K <= 2**20, so this path is taken only for kpb <= ES2_MAXKPB. */
#define ES2_WB 2
#define ES2_MAXKPB (1 << 18) /* kpb = K / 4 */
#ifndef ES_PF2
#define ES_PF2 8
#endif

/* An empty asm that takes the two sums in registers: GCC cannot reassociate the additions across it
 * (unpinned, it summed the products of several halves first, holding them all live, and spilled). */
#define ES2_PIN(S1, S4) __asm__("" : "+x"(S1), "+x"(S4))

/* one row, one 32-byte half of a block: w from wr, activations of the 4 planes at qh + 64 s */
#define ES2_HALF(wr, qh, S1, S4)                                                                  \
    do {                                                                                          \
        const __m256i w_ = _mm256_loadu_si256((const __m256i *)(wr));                             \
        const __m256i h_ = _mm256_srli_epi16(w_, 4);                                              \
        S1 = _mm256_add_epi16(                                                                    \
            S1, _mm256_add_epi16(                                                                 \
                    _mm256_maddubs_epi16(_mm256_and_si256(w_, m03),                               \
                                         _mm256_loadu_si256((const __m256i *)(qh))),              \
                    _mm256_maddubs_epi16(_mm256_and_si256(h_, m03),                               \
                                         _mm256_loadu_si256((const __m256i *)((qh) + 128)))));    \
        S4 = _mm256_add_epi16(                                                                    \
            S4, _mm256_add_epi16(                                                                 \
                    _mm256_maddubs_epi16(_mm256_and_si256(w_, m0c),                               \
                                         _mm256_loadu_si256((const __m256i *)((qh) + 64))),       \
                    _mm256_maddubs_epi16(_mm256_and_si256(h_, m0c),                               \
                                         _mm256_loadu_si256((const __m256i *)((qh) + 192)))));    \
        ES2_PIN(S1, S4);                                                                          \
    } while (0)
#define ES2_WIDEN(ACC, S1, S4)                                                                    \
    ACC = _mm256_add_epi32(                                                                       \
        ACC, _mm256_add_epi32(_mm256_madd_epi16(S1, fours), _mm256_madd_epi16(S4, ones)))

/* GEMV, 2 rows x 1 token: 4 int16 sums, 2 int32 sums and the masks fit the 16 ymm registers
 * (with 4 rows GCC spilled them). pf (or NULL): two rows to prefetch, one line per row per block,
 * inside the loop (a separate prefetch loop cost about 3 instructions per line). */
static __attribute__((noinline)) TGT_AVX2 void gemv2_avx2(const uint8_t *W, int64_t kpb,
                                                           const int8_t *Q, int32_t *res,
                                                           const uint8_t *pf) {
    const __m256i m03 = _mm256_set1_epi8(0x03), m0c = _mm256_set1_epi8(0x0c);
    const __m256i ones = _mm256_set1_epi16(1), fours = _mm256_set1_epi16(4);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
    const int64_t nblk = kpb / 64;
    for (int64_t b0 = 0; b0 < nblk; b0 += ES2_WB) {
        const int64_t b1 = b0 + ES2_WB < nblk ? b0 + ES2_WB : nblk;
        __m256i s10 = _mm256_setzero_si256(), s11 = s10, s40 = s10, s41 = s10;
        for (int64_t b = b0; b < b1; b++) {
            const uint8_t *wb = W + b * 64;
            const int8_t *qb = Q + b * 256;
            if (pf) {
                __builtin_prefetch(pf + b * 64, 0, PF_LOC);
                __builtin_prefetch(pf + kpb + b * 64, 0, PF_LOC);
            }
            ES2_HALF(wb, qb, s10, s40);
            ES2_HALF(wb + kpb, qb, s11, s41);
            ES2_HALF(wb + 32, qb + 32, s10, s40);
            ES2_HALF(wb + kpb + 32, qb + 32, s11, s41);
        }
        ES2_WIDEN(acc0, s10, s40);
        ES2_WIDEN(acc1, s11, s41);
    }
    res[0] = hsum256(acc0) >> 2;
    res[1] = hsum256(acc1) >> 2;
}

/* GEMM, 1 row x 4 tokens: the row's codes are extracted once per half for all 4 tokens */
static __attribute__((noinline)) TGT_AVX2 void gemm2_avx2(const uint8_t *W, int64_t kpb,
                                                           const int8_t *Q, int64_t kp,
                                                           int32_t *res) {
    const __m256i m03 = _mm256_set1_epi8(0x03), m0c = _mm256_set1_epi8(0x0c);
    const __m256i ones = _mm256_set1_epi16(1), fours = _mm256_set1_epi16(4);
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
    const int64_t nblk = kpb / 64;
    for (int64_t b0 = 0; b0 < nblk; b0 += ES2_WB) {
        const int64_t b1 = b0 + ES2_WB < nblk ? b0 + ES2_WB : nblk;
        __m256i s1[4], s4[4];
        for (int t = 0; t < 4; t++) s1[t] = s4[t] = _mm256_setzero_si256();
        for (int64_t b = b0; b < b1; b++) {
            for (int h = 0; h < 2; h++) {
                const __m256i w = _mm256_loadu_si256((const __m256i *)(W + b * 64 + 32 * h));
                const __m256i hi = _mm256_srli_epi16(w, 4);
                const __m256i c0 = _mm256_and_si256(w, m03), c1 = _mm256_and_si256(w, m0c);
                const __m256i c2 = _mm256_and_si256(hi, m03), c3 = _mm256_and_si256(hi, m0c);
                for (int t = 0; t < 4; t++) {
                    const int8_t *qh = Q + t * kp + b * 256 + 32 * h;
                    s1[t] = _mm256_add_epi16(
                        s1[t],
                        _mm256_add_epi16(
                            _mm256_maddubs_epi16(c0, _mm256_loadu_si256((const __m256i *)qh)),
                            _mm256_maddubs_epi16(c2, _mm256_loadu_si256((const __m256i *)(qh + 128)))));
                    s4[t] = _mm256_add_epi16(
                        s4[t],
                        _mm256_add_epi16(
                            _mm256_maddubs_epi16(c1, _mm256_loadu_si256((const __m256i *)(qh + 64))),
                            _mm256_maddubs_epi16(c3, _mm256_loadu_si256((const __m256i *)(qh + 192)))));
                    ES2_PIN(s1[t], s4[t]);
                }
            }
        }
        for (int t = 0; t < 4; t++) ES2_WIDEN(acc[t], s1[t], s4[t]);
    }
    for (int t = 0; t < 4; t++) res[t] = hsum256(acc[t]) >> 2;
}
#undef ES2_HALF
#undef ES2_WIDEN
#undef ES2_PIN

/* Rows [r0, r1) for all T tokens with 2-bit codes: GEMV pairs of rows per token for T < 4, else
 * 4-token GEMM tiles per row and the remaining tokens by GEMV. */
static TGT_AVX2 void mm_rows2_avx2(const uint8_t *W, int64_t kpb, const int8_t *Q, int64_t kp,
                                   int64_t T, int64_t r0, int64_t r1, int64_t n,
                                   const int32_t *corr, int32_t *out) {
    int32_t res[8];
    const int64_t PFD = ES_PF2; /* rows ahead */
    const int64_t t4 = T >= 4 ? T / 4 * 4 : 0;
    for (int64_t r = r0; r < r1; r += 2) {
        const uint8_t *wr = W + r * kpb;
        const uint8_t *pf = r + PFD + 2 <= r1 ? W + (r + PFD) * kpb : NULL;
        if (t4) {
            if (pf) prefetch_rows(W, kpb, r + PFD, 2, r1);
            for (int64_t t = 0; t < t4; t += 4) {
                gemm2_avx2(wr, kpb, Q + t * kp, kp, res);
                gemm2_avx2(wr + kpb, kpb, Q + t * kp, kp, res + 4);
                for (int tt = 0; tt < 4; tt++) { /* res: row-major; store_res wants [token][row] */
                    const int32_t pair[2] = {res[tt], res[4 + tt]};
                    store_res(pair, 2, 1, r, t + tt, n, corr, out);
                }
            }
            pf = NULL;
        }
        for (int64_t t = t4; t < T; t++) {
            gemv2_avx2(wr, kpb, Q + t * kp, res, t == t4 ? pf : NULL);
            store_res(res, 2, 1, r, t, n, corr, out);
        }
    }
}


/* 8-bit codes (INT5..INT8 weights, the LM head), GEMV of ES8_R rows x 1 token. The plane loop
 * (tile_avx2) widens every maddubs product with a madd and an int32 add (9 vector ops per 32 weight
 * bytes and row); here the nibble products go to two int16 sums per row (lo: code & 15, hi:
 * code >> 4), widened every ES8_WB blocks as madd(lo, 1) + madd(hi, 16): 7 ops and 1/4 madd.
 * Ranges: nibbles <= 15, |q| <= 128, so a maddubs pair is in [-3840, 3810] (no saturation) and
 * ES8_WB = 4 blocks (8 halves) keep each int16 sum in [-30720, 30480]; the int32 lanes hold
 * dot(code, q), |dot| <= 255 * 128 * K < 2**31 for K < 2**16 (prepare's limit; ES8_MAXKPB checks).
 * The activations of a half are loaded once for the ES8_R rows. pf (or NULL): ES8_R rows to
 * prefetch, one line per row per block. */
#define ES8_WB 4
#define ES8_R 4
#define ES8_MAXKPB 65536
#ifndef ES_PF8
#define ES_PF8 8 /* rows ahead */
#endif
#define ES8_PIN2(A, B) __asm__("" : "+x"(A), "+x"(B))

static __attribute__((noinline)) TGT_AVX2 void gemv8_avx2(const uint8_t *W, int64_t kpb,
                                                           const int8_t *Q, int32_t *res,
                                                           const uint8_t *pf) {
    const __m256i m0f = _mm256_set1_epi8(0x0f);
    const __m256i ones = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi16(16);
    __m256i acc[ES8_R];
    for (int r = 0; r < ES8_R; r++) acc[r] = _mm256_setzero_si256();
    const int64_t nblk = kpb / 64;
    for (int64_t b0 = 0; b0 < nblk; b0 += ES8_WB) {
        const int64_t b1 = b0 + ES8_WB < nblk ? b0 + ES8_WB : nblk;
        __m256i lo[ES8_R], hi[ES8_R];
        for (int r = 0; r < ES8_R; r++) lo[r] = hi[r] = _mm256_setzero_si256();
        for (int64_t b = b0; b < b1; b++) {
            if (pf)
                for (int r = 0; r < ES8_R; r++) __builtin_prefetch(pf + r * kpb + b * 64, 0, PF_LOC);
            for (int h = 0; h < 2; h++) {
                const __m256i a = _mm256_loadu_si256((const __m256i *)(Q + b * 64 + 32 * h));
                for (int r = 0; r < ES8_R; r++) {
                    const __m256i w = _mm256_loadu_si256((const __m256i *)(W + r * kpb + b * 64 + 32 * h));
                    lo[r] = _mm256_add_epi16(lo[r], _mm256_maddubs_epi16(_mm256_and_si256(w, m0f), a));
                    hi[r] = _mm256_add_epi16(
                        hi[r], _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w, 4), m0f), a));
                    ES8_PIN2(lo[r], hi[r]);
                }
            }
        }
        for (int r = 0; r < ES8_R; r++)
            acc[r] = _mm256_add_epi32(acc[r], _mm256_add_epi32(_mm256_madd_epi16(lo[r], ones),
                                                               _mm256_madd_epi16(hi[r], sixteen)));
    }
    for (int r = 0; r < ES8_R; r++) res[r] = hsum256(acc[r]);
}
#undef ES8_PIN2

/* Rows [r0, r1) (ROWPAD-aligned, so whole ES8_R groups), T < 4 tokens, 8-bit codes. */
static TGT_AVX2 void mm_rows8_avx2(const uint8_t *W, int64_t kpb, const int8_t *Q, int64_t kp,
                                   int64_t T, int64_t r0, int64_t r1, int64_t n,
                                   const int32_t *corr, int32_t *out) {
    int32_t res[ES8_R];
    for (int64_t r = r0; r < r1; r += ES8_R) {
        const uint8_t *wr = W + r * kpb;
        const uint8_t *pf = r + ES_PF8 + ES8_R <= r1 ? W + (r + ES_PF8) * kpb : NULL;
        for (int64_t t = 0; t < T; t++) {
            gemv8_avx2(wr, kpb, Q + t * kp, res, t == 0 ? pf : NULL);
            store_res(res, ES8_R, 1, r, t, n, corr, out);
        }
    }
}


/* R rows x TT tokens; codes u8 x activations s8 via maddubs (pairs <= 2*15*128, no saturation),
 * widened by madd. 8-bit codes are split into nibbles (lo + 16*hi) to stay in maddubs' range. */
static inline __attribute__((always_inline)) TGT_AVX2 void tile_avx2(
    const uint8_t *W, int64_t kpb, const int B, const int8_t *Q, int64_t kp, int32_t *res,
    const int R, const int TT) {
    __m256i acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < TT; t++) acc[r][t] = _mm256_setzero_si256();
    const int P = 8 / B;
    const __m256i mask = _mm256_set1_epi8((char)(B == 8 ? 0x0f : (1 << B) - 1));
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i sixteen = _mm256_set1_epi16(16);
    const int64_t nblk = kpb / 64;
    for (int64_t b = 0; b < nblk; b++) {
        const int8_t *qb = Q + b * 64 * P;
        for (int h = 0; h < 2; h++) {
            __m256i w[4];
            for (int r = 0; r < R; r++)
                w[r] = _mm256_loadu_si256((const __m256i *)(W + r * kpb + b * 64 + 32 * h));
            if (B == 8) {
                for (int t = 0; t < TT; t++) {
                    __m256i a = _mm256_loadu_si256((const __m256i *)(qb + t * kp + 32 * h));
                    for (int r = 0; r < R; r++) {
                        __m256i lo = _mm256_and_si256(w[r], mask);
                        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(w[r], 4), mask);
                        acc[r][t] = _mm256_add_epi32(
                            acc[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a), ones));
                        acc[r][t] = _mm256_add_epi32(
                            acc[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a), sixteen));
                    }
                }
            } else {
                /* sum the planes in int16 (<= 4 * 768 or 2 * 3840), widen once per half block */
                __m256i s16[4][4];
                for (int s = 0; s < P; s++) {
                    __m256i c[4];
                    for (int r = 0; r < R; r++)
                        c[r] = _mm256_and_si256(_mm256_srli_epi16(w[r], B * s), mask);
                    for (int t = 0; t < TT; t++) {
                        __m256i a =
                            _mm256_loadu_si256((const __m256i *)(qb + t * kp + 64 * s + 32 * h));
                        for (int r = 0; r < R; r++) {
                            __m256i p = _mm256_maddubs_epi16(c[r], a);
                            s16[r][t] = s == 0 ? p : _mm256_add_epi16(s16[r][t], p);
                        }
                    }
                }
                for (int r = 0; r < R; r++)
                    for (int t = 0; t < TT; t++)
                        acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(s16[r][t], ones));
            }
        }
    }
    for (int t = 0; t < TT; t++)
        for (int r = 0; r < R; r++) res[t * R + r] = hsum256(acc[r][t]);
}

#define DISPATCH_B(CALL_, B_)                                                                     \
    switch (B_) {                                                                                 \
    case 2: CALL_(2); break;                                                                      \
    case 4: CALL_(4); break;                                                                      \
    default: CALL_(8); break;                                                                     \
    }

/* Rows [r0, r1) (multiples of ROWPAD apart from the end) for all T tokens: GEMV tiles of RG rows
 * for single tokens, GEMM tiles of RM rows x TM tokens, TM-remainder tokens one at a time. */
#define DEF_MM_ROWS(NAME, ATTR, TILE, RG, RM, TM)                                                 \
    static ATTR void NAME(const uint8_t *W, int64_t kpb, int B, const int8_t *Q, int64_t kp,      \
                          int64_t T, int64_t r0, int64_t r1, int64_t n, const int32_t *corr,      \
                          int32_t *out) {                                                         \
        int32_t res[64];                                                                          \
        if (T < TM) {                                                                             \
            for (int64_t r = r0; r < r1; r += RG) {                                               \
                prefetch_rows(W, kpb, r + RG * PF_TILES, RG, r1);                                 \
                for (int64_t t = 0; t < T; t++) {                                                 \
                    const uint8_t *wr = W + r * kpb;                                              \
                    const int8_t *qt = Q + t * kp;                                                \
                    DISPATCH_B(GEMV_CALL, B)                                                      \
                    store_res(res, RG, 1, r, t, n, corr, out);                                    \
                }                                                                                 \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        for (int64_t r = r0; r < r1; r += RM) {                                                   \
            prefetch_rows(W, kpb, r + RM * PF_TILES, RM, r1);                                     \
            const uint8_t *wr = W + r * kpb;                                                      \
            int64_t t = 0;                                                                        \
            for (; t + TM <= T; t += TM) {                                                        \
                const int8_t *qt = Q + t * kp;                                                    \
                DISPATCH_B(GEMM_CALL, B)                                                          \
                store_res(res, RM, TM, r, t, n, corr, out);                                       \
            }                                                                                     \
            for (; t < T; t++) {                                                                  \
                const int8_t *qt = Q + t * kp;                                                    \
                DISPATCH_B(GEMM1_CALL, B)                                                         \
                store_res(res, RM, 1, r, t, n, corr, out);                                        \
            }                                                                                     \
        }                                                                                         \
    }

#define GEMV_CALL(BB) TILE_FN(wr, kpb, BB, qt, kp, res, RG_, 1)
#define GEMM_CALL(BB) TILE_FN(wr, kpb, BB, qt, kp, res, RM_, TM_)
#define GEMM1_CALL(BB) TILE_FN(wr, kpb, BB, qt, kp, res, RM_, 1)

#define TILE_FN tile_avx2
#define RG_ 4
#define RM_ 2
#define TM_ 4
DEF_MM_ROWS(mm_rows_avx2_planes, TGT_AVX2, tile_avx2, 4, 2, 4)
#undef TILE_FN
#undef RG_
#undef RM_
#undef TM_

static TGT_AVX2 void mm_rows_avx2(const uint8_t *W, int64_t kpb, int B, const int8_t *Q, int64_t kp,
                                  int64_t T, int64_t r0, int64_t r1, int64_t n, const int32_t *corr,
                                  int32_t *out) {
    if (B == 2 && kpb <= ES2_MAXKPB && g_variant != ES_VARIANT_PLANES)
        mm_rows2_avx2(W, kpb, Q, kp, T, r0, r1, n, corr, out);
    else if (B == 8 && T < 4 && kpb <= ES8_MAXKPB && g_variant != ES_VARIANT_PLANES &&
             g_variant != ES_VARIANT_PLANES8)
        mm_rows8_avx2(W, kpb, Q, kp, T, r0, r1, n, corr, out);
    else
        mm_rows_avx2_planes(W, kpb, B, Q, kp, T, r0, r1, n, corr, out);
}

/* ------------------------------------------------------------------ AVX-512 (BW, optional VNNI) */
#define TGT_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define TGT_512V __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

#define DEF_TILE512(NAME, ATTR, VNNI)                                                             \
    static inline __attribute__((always_inline)) ATTR void NAME(                                  \
        const uint8_t *W, int64_t kpb, const int B, const int8_t *Q, int64_t kp, int32_t *res,    \
        const int R, const int TT) {                                                              \
        __m512i acc[4][4];                                                                        \
        for (int r = 0; r < R; r++)                                                               \
            for (int t = 0; t < TT; t++) acc[r][t] = _mm512_setzero_si512();                      \
        const int P = 8 / B;                                                                      \
        const __m512i mask = _mm512_set1_epi8((char)(B == 8 ? 0x0f : (1 << B) - 1));              \
        const __m512i ones = _mm512_set1_epi16(1);                                                \
        const __m512i sixteen = _mm512_set1_epi16(16);                                            \
        (void)ones;                                                                               \
        (void)sixteen;                                                                            \
        const int64_t nblk = kpb / 64;                                                            \
        for (int64_t b = 0; b < nblk; b++) {                                                      \
            const int8_t *qb = Q + b * 64 * P;                                                    \
            __m512i w[4];                                                                         \
            for (int r = 0; r < R; r++) w[r] = _mm512_loadu_si512((const void *)(W + r * kpb + b * 64)); \
            if (B == 8) {                                                                         \
                for (int t = 0; t < TT; t++) {                                                    \
                    __m512i a = _mm512_loadu_si512((const void *)(qb + t * kp));                  \
                    for (int r = 0; r < R; r++) {                                                 \
                        if (VNNI) {                                                               \
                            acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], w[r], a);                  \
                        } else {                                                                  \
                            __m512i lo = _mm512_and_si512(w[r], mask);                            \
                            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(w[r], 4), mask);      \
                            acc[r][t] = _mm512_add_epi32(                                         \
                                acc[r][t], _mm512_madd_epi16(_mm512_maddubs_epi16(lo, a), ones)); \
                            acc[r][t] = _mm512_add_epi32(                                         \
                                acc[r][t],                                                        \
                                _mm512_madd_epi16(_mm512_maddubs_epi16(hi, a), sixteen));         \
                        }                                                                         \
                    }                                                                             \
                }                                                                                 \
            } else {                                                                              \
                for (int s = 0; s < P; s++) {                                                     \
                    __m512i a[4];                                                                 \
                    for (int t = 0; t < TT; t++)                                                  \
                        a[t] = _mm512_loadu_si512((const void *)(qb + t * kp + 64 * s));          \
                    for (int r = 0; r < R; r++) {                                                 \
                        __m512i c = _mm512_and_si512(_mm512_srli_epi16(w[r], B * s), mask);       \
                        for (int t = 0; t < TT; t++) {                                            \
                            if (VNNI)                                                             \
                                acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], c, a[t]);              \
                            else                                                                  \
                                acc[r][t] = _mm512_add_epi32(                                     \
                                    acc[r][t],                                                    \
                                    _mm512_madd_epi16(_mm512_maddubs_epi16(c, a[t]), ones));      \
                        }                                                                         \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        for (int t = 0; t < TT; t++)                                                              \
            for (int r = 0; r < R; r++) res[t * R + r] = _mm512_reduce_add_epi32(acc[r][t]);      \
    }

DEF_TILE512(tile_avx512, TGT_512, 0)
DEF_TILE512(tile_avx512v, TGT_512V, 1)

#define TILE_FN tile_avx512
#define RG_ 4
#define RM_ 4
#define TM_ 4
DEF_MM_ROWS(mm_rows_avx512, TGT_512, tile_avx512, 4, 4, 4)
#undef TILE_FN
#define TILE_FN tile_avx512v
DEF_MM_ROWS(mm_rows_avx512v, TGT_512V, tile_avx512v, 4, 4, 4)
#undef TILE_FN
#undef RG_
#undef RM_
#undef TM_
#endif /* ES_X86 */

#ifdef ES_NEON
/* ------------------------------------------------------------------ NEON (aarch64 baseline) */
/* codes (<= 15, nibbles for 8-bit codes) as s8 times activations via vmull_s8 (|p| <= 1920),
 * pairwise-accumulated into int32 lanes. */
/* 2-bit codes (ternary, INT2), 4 rows x 1 token: the 4 planes extracted by 3 shifts and 3 ands,
 * the products multiply-accumulated straight into int16 lanes (vmlal_s8) and widened every
 * NEON2_WB blocks, instead of one vmull and one vpadal per 8 products: 14 ops per 16 weight bytes
 * and row instead of 24. Ranges: codes <= 3 and |q| <= 128, so a product is at most 384 in
 * magnitude; an int16 lane gains 4 products per 16-byte chunk (one per plane), 16 per block, so
 * NEON2_WB = 4 blocks keep it within 64 * 384 = 24576 < 2**15. */
#define NEON2_WB 4
static inline __attribute__((always_inline)) void dot2_neon(const uint8_t *W, int64_t kpb,
                                                            const int8_t *q, int32_t *res) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    int32x4_t acc[4];
    for (int r = 0; r < 4; r++) acc[r] = vdupq_n_s32(0);
    const int64_t nblk = kpb / 64;
    for (int64_t b0 = 0; b0 < nblk; b0 += NEON2_WB) {
        const int64_t b1 = b0 + NEON2_WB < nblk ? b0 + NEON2_WB : nblk;
        int16x8_t lo[4], hi[4];
        for (int r = 0; r < 4; r++) lo[r] = hi[r] = vdupq_n_s16(0);
        for (int64_t b = b0; b < b1; b++) {
            const int8_t *qb = q + b * 256;
            for (int h = 0; h < 4; h++) {
                const int8x16_t a0 = vld1q_s8(qb + 16 * h), a1 = vld1q_s8(qb + 64 + 16 * h);
                const int8x16_t a2 = vld1q_s8(qb + 128 + 16 * h), a3 = vld1q_s8(qb + 192 + 16 * h);
                for (int r = 0; r < 4; r++) {
                    const uint8x16_t w = vld1q_u8(W + r * kpb + b * 64 + 16 * h);
                    const int8x16_t c0 = vreinterpretq_s8_u8(vandq_u8(w, m3));
                    const int8x16_t c1 = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(w, 2), m3));
                    const int8x16_t c2 = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(w, 4), m3));
                    const int8x16_t c3 = vreinterpretq_s8_u8(vshrq_n_u8(w, 6));
                    lo[r] = vmlal_s8(lo[r], vget_low_s8(c0), vget_low_s8(a0));
                    hi[r] = vmlal_high_s8(hi[r], c0, a0);
                    lo[r] = vmlal_s8(lo[r], vget_low_s8(c1), vget_low_s8(a1));
                    hi[r] = vmlal_high_s8(hi[r], c1, a1);
                    lo[r] = vmlal_s8(lo[r], vget_low_s8(c2), vget_low_s8(a2));
                    hi[r] = vmlal_high_s8(hi[r], c2, a2);
                    lo[r] = vmlal_s8(lo[r], vget_low_s8(c3), vget_low_s8(a3));
                    hi[r] = vmlal_high_s8(hi[r], c3, a3);
                }
            }
        }
        for (int r = 0; r < 4; r++) acc[r] = vpadalq_s16(vpadalq_s16(acc[r], lo[r]), hi[r]);
    }
    for (int r = 0; r < 4; r++) res[r] = vaddvq_s32(acc[r]);
}

/* 8-bit codes, 4 rows x 1 token: code ^ 0x80 read as int8 is code - 128 (the weight itself), so one
 * vmull_s8 per 8 products (|w q| <= 16384 fits int16) instead of two nibble products; 5 ops per 16
 * weight bytes and row instead of 10. Returns dot(w, q); the caller adds 128 * sum(q) back to give
 * dot(code, q), from which store_res subtracts the offset correction (wrapping: exact). */
static inline __attribute__((always_inline)) void dot8_neon(const uint8_t *W, int64_t kpb,
                                                            const int8_t *q, int32_t *res) {
    const uint8x16_t sign = vdupq_n_u8(0x80);
    int32x4_t acc[4];
    for (int r = 0; r < 4; r++) acc[r] = vdupq_n_s32(0);
    for (int64_t o = 0; o < kpb; o += 16) {
        const int8x16_t a = vld1q_s8(q + o);
        for (int r = 0; r < 4; r++) {
            const int8x16_t w = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(W + r * kpb + o), sign));
            acc[r] = vpadalq_s16(acc[r], vmull_s8(vget_low_s8(w), vget_low_s8(a)));
            acc[r] = vpadalq_s16(acc[r], vmull_high_s8(w, a));
        }
    }
    for (int r = 0; r < 4; r++) res[r] = vaddvq_s32(acc[r]);
}

/* returns 0 (nothing done) if the per-token sums cannot be allocated: the caller takes the generic loop */
static int mm_rows_neon_2_8(const uint8_t *W, int64_t kpb, int B, const int8_t *Q, int64_t kp,
                            int64_t T, int64_t r0, int64_t r1, int64_t n, const int32_t *corr,
                            int32_t *out) {
    uint32_t sbuf[64];
    uint32_t *s128 = sbuf; /* 8-bit: 128 * sum(q) per token, wrapping */
    if (B == 8) {
        if (T > 64 && !(s128 = (uint32_t *)malloc((size_t)T * sizeof(uint32_t)))) return 0;
        for (int64_t t = 0; t < T; t++) {
            int32_t sum = 0;
            for (int64_t i = 0; i < kp; i++) sum += Q[t * kp + i];
            s128[t] = (uint32_t)sum * 128u;
        }
    }
    for (int64_t r = r0; r < r1; r += 4) {
        prefetch_rows(W, kpb, r + 4 * PF_TILES, 4, r1);
        for (int64_t t = 0; t < T; t++) {
            int32_t res[4];
            if (B == 2) {
                dot2_neon(W + r * kpb, kpb, Q + t * kp, res);
            } else {
                dot8_neon(W + r * kpb, kpb, Q + t * kp, res);
                for (int rr = 0; rr < 4; rr++) res[rr] = (int32_t)((uint32_t)res[rr] + s128[t]);
            }
            store_res(res, 4, 1, r, t, n, corr, out);
        }
    }
    if (s128 != sbuf) free(s128);
    return 1;
}

static void mm_rows_neon(const uint8_t *W, int64_t kpb, int B, const int8_t *Q, int64_t kp,
                         int64_t T, int64_t r0, int64_t r1, int64_t n, const int32_t *corr,
                         int32_t *out) {
    if ((B == 2 || B == 8) && g_variant != ES_VARIANT_PLANES &&
        mm_rows_neon_2_8(W, kpb, B, Q, kp, T, r0, r1, n, corr, out))
        return;
    const int P = 8 / B;
    const uint8x16_t mask = vdupq_n_u8((uint8_t)(B == 8 ? 0x0f : (1 << B) - 1));
    const int64_t nblk = kpb / 64;
    for (int64_t r = r0; r < r1; r += 4) {
        prefetch_rows(W, kpb, r + 4 * PF_TILES, 4, r1);
        for (int64_t t = 0; t < T; t++) {
            const int8_t *qt = Q + t * kp;
            int32_t res[4];
            for (int rr = 0; rr < 4; rr++) {
                const uint8_t *wr = W + (r + rr) * kpb;
                int32x4_t acc = vdupq_n_s32(0), acch = vdupq_n_s32(0);
                for (int64_t b = 0; b < nblk; b++) {
                    const int8_t *qb = qt + b * 64 * P;
                    for (int h = 0; h < 4; h++) {
                        uint8x16_t w = vld1q_u8(wr + b * 64 + 16 * h);
                        if (B == 8) {
                            int8x16_t a = vld1q_s8(qb + 16 * h);
                            int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(w, mask));
                            int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(w, 4));
                            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(lo), vget_low_s8(a)));
                            acc = vpadalq_s16(acc, vmull_high_s8(lo, a));
                            acch = vpadalq_s16(acch, vmull_s8(vget_low_s8(hi), vget_low_s8(a)));
                            acch = vpadalq_s16(acch, vmull_high_s8(hi, a));
                        } else {
                            for (int s = 0; s < P; s++) {
                                int8x16_t a = vld1q_s8(qb + 64 * s + 16 * h);
                                int8x16_t c = vreinterpretq_s8_u8(
                                    vandq_u8(vshlq_u8(w, vdupq_n_s8((int8_t)(-B * s))), mask));
                                acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(c), vget_low_s8(a)));
                                acc = vpadalq_s16(acc, vmull_high_s8(c, a));
                            }
                        }
                    }
                }
                acc = vaddq_s32(acc, vshlq_n_s32(acch, 4));
                res[rr] = vaddvq_s32(acc);
            }
            store_res(res, 4, 1, r, t, n, corr, out);
        }
    }
}
#endif


/* ------------------------------------------------------------------ thread pool
 * Persistent pthreads; a job is split into chunks claimed with one CAS on a 64-bit ticket
 * (generation | threads | total | next). The calling thread works too and waits only for chunks
 * that were claimed, never for a worker that has not woken up: on an oversubscribed machine a
 * descheduled worker costs nothing (OpenMP's join barrier would wait for its time slice).
 * Idle workers spin about 200 us, then sleep on a condition variable. */
typedef void (*job_fn)(void *ctx, int64_t chunk);
#define MAXTHREADS 64
#define T_IDX_BITS 20
#define T_MASK ((1ull << T_IDX_BITS) - 1)
static _Atomic uint64_t g_ticket; /* gen:16 | nth:8 | total:20 | idx:20 */
static _Atomic int64_t g_done;
static _Atomic int g_sleepers;
static job_fn g_fn;
static void *g_ctx;
static int g_nworkers;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t g_submit = PTHREAD_MUTEX_INITIALIZER;

static inline void cpu_relax(void) {
#if defined(ES_X86)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

/* claim and run chunks of the current job; worker id w (0 = caller) joins only if w < nth */
static void run_chunks(int w) {
    for (;;) {
        uint64_t t = atomic_load(&g_ticket);
        uint64_t idx = t & T_MASK, total = (t >> T_IDX_BITS) & T_MASK, nth = (t >> 40) & 0xff;
        if (idx >= total || (uint64_t)w >= nth) return;
        if (!atomic_compare_exchange_weak(&g_ticket, &t, t + 1)) continue;
        g_fn(g_ctx, (int64_t)idx); /* the job cannot finish before this chunk: g_fn/g_ctx stable */
        atomic_fetch_add(&g_done, 1);
    }
}

static int has_work(uint64_t t, int w) {
    return (t & T_MASK) < ((t >> T_IDX_BITS) & T_MASK) && (uint64_t)w < ((t >> 40) & 0xff);
}

static void *worker_main(void *arg) {
    const int w = (int)(intptr_t)arg;
    for (;;) {
        run_chunks(w);
        double t0 = now_us();
        int spins = 0;
        while (!has_work(atomic_load(&g_ticket), w)) {
            cpu_relax();
            if (++spins % 256 == 0 && now_us() - t0 > 200.0) {
                pthread_mutex_lock(&g_mu);
                atomic_fetch_add(&g_sleepers, 1);
                while (!has_work(atomic_load(&g_ticket), w)) pthread_cond_wait(&g_cv, &g_mu);
                atomic_fetch_sub(&g_sleepers, 1);
                pthread_mutex_unlock(&g_mu);
                break;
            }
        }
    }
    return NULL;
}

static int ncpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > MAXTHREADS ? MAXTHREADS : (int)n);
}

/* run fn(ctx, c) for c in [0, nchunks) on up to nth threads (the caller included) */
static void parallel_for(job_fn fn, void *ctx, int64_t nchunks, int nth) {
    if (nth > nchunks) nth = (int)nchunks;
    if (nth > MAXTHREADS) nth = MAXTHREADS;
    if (nth <= 1 || nchunks > (int64_t)T_MASK) {
        for (int64_t c = 0; c < nchunks; c++) fn(ctx, c);
        return;
    }
    pthread_mutex_lock(&g_submit); /* one job at a time (callers from several Python threads) */
    while (g_nworkers < nth - 1) {
        pthread_t th;
        if (pthread_create(&th, NULL, worker_main, (void *)(intptr_t)(g_nworkers + 1))) break;
        pthread_detach(th);
        g_nworkers++;
    }
    if (nth > g_nworkers + 1) nth = g_nworkers + 1;
    g_fn = fn;
    g_ctx = ctx;
    atomic_store(&g_done, 0);
    uint64_t gen = ((atomic_load(&g_ticket) >> 48) + 1) & 0xffff;
    atomic_store(&g_ticket, gen << 48 | (uint64_t)nth << 40 | (uint64_t)nchunks << T_IDX_BITS);
    if (atomic_load(&g_sleepers) > 0) {
        pthread_mutex_lock(&g_mu);
        pthread_cond_broadcast(&g_cv);
        pthread_mutex_unlock(&g_mu);
    }
    run_chunks(0);
    while (atomic_load(&g_done) < nchunks) cpu_relax();
    pthread_mutex_unlock(&g_submit);
}

/* ------------------------------------------------------------------ dispatch */
static int g_isa = -1;
static int g_threads = 0;

int es_version(void) { return ES_VERSION; }

int es_set_variant(int v) {
    const int prev = g_variant;
    g_variant = v;
    return prev;
}

int es_has_openmp(void) { return 0; /* threads: the pthread pool above */ }

int es_isa_available(int isa) {
    switch (isa) {
    case ES_ISA_SCALAR: return 1;
#ifdef ES_X86
    case ES_ISA_AVX2: return __builtin_cpu_supports("avx2") ? 1 : 0;
    case ES_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    case ES_ISA_AVX512VNNI:
        return es_isa_available(ES_ISA_AVX512) && __builtin_cpu_supports("avx512vnni");
#endif
#ifdef ES_NEON
    case ES_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

int es_best_isa(void) {
    static const int order[] = {ES_ISA_AVX512VNNI, ES_ISA_AVX512, ES_ISA_AVX2, ES_ISA_NEON};
    for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (es_isa_available(order[i])) return order[i];
    return ES_ISA_SCALAR;
}

int es_set_isa(int isa) {
    if (!es_isa_available(isa)) return -1;
    g_isa = isa;
    return 0;
}

int es_get_isa(void) {
    if (g_isa < 0) g_isa = es_best_isa();
    return g_isa;
}

int es_swap_isa(int isa) {
    const int prev = es_get_isa();
    if (es_isa_available(isa)) g_isa = isa;
    return prev;
}

void es_set_threads(int n) { g_threads = n > 0 ? n : 0; }

int es_swap_threads(int n) {
    int prev = g_threads;
    g_threads = n > 0 ? n : 0;
    return prev;
}

int es_get_threads(void) {
    return g_threads > 0 ? g_threads : ncpus();
}

static mm_rows_fn rows_fn(int isa) {
    switch (isa) {
#ifdef ES_X86
    case ES_ISA_AVX2: return mm_rows_avx2;
    case ES_ISA_AVX512: return mm_rows_avx512;
    case ES_ISA_AVX512VNNI: return mm_rows_avx512v;
#endif
#ifdef ES_NEON
    case ES_ISA_NEON: return mm_rows_neon;
#endif
    default: return mm_rows_scalar;
    }
}

typedef struct {
    mm_rows_fn fn;
    const uint8_t *W;
    int64_t kpb;
    int bits;
    const int8_t *Q;
    int64_t kp, T, n;
    const int32_t *corr;
    int32_t *out;
    int64_t per, nrows;
} mm_job;

static void mm_chunk(void *ctx, int64_t c) {
    const mm_job *j = (const mm_job *)ctx;
    int64_t r0 = c * j->per, r1 = r0 + j->per < j->nrows ? r0 + j->per : j->nrows;
    j->fn(j->W, j->kpb, j->bits, j->Q, j->kp, j->T, r0, r1, j->n, j->corr, j->out);
}

int es_matmul(const uint8_t *W, int64_t n, int64_t np_rows, int64_t kpb, int bits, int offset,
              const int8_t *q, int64_t T, int64_t k, int32_t *out, int isa, int threads) {
    if (!(bits == 2 || bits == 4 || bits == 8) || kpb % 64 || np_rows % ROWPAD || np_rows < n)
        return -1;
    const int64_t kp = kpb * (8 / bits);
    if (k > kp || T < 0) return -1;
    if (T == 0 || n == 0) return 0;
    if (isa < 0) isa = es_get_isa();
    if (!es_isa_available(isa)) return -2;
    /* activations zero-padded to kp (plus one block of slack), and their sums for the offset */
    int8_t *Q = (int8_t *)aligned_alloc(64, (size_t)((T * kp + 64 + 63) / 64 * 64));
    int32_t *corr = (int32_t *)malloc((size_t)T * sizeof(int32_t));
    if (!Q || !corr) {
        free(Q);
        free(corr);
        return -1;
    }
    for (int64_t t = 0; t < T; t++) {
        memcpy(Q + t * kp, q + t * k, (size_t)k);
        memset(Q + t * kp + k, 0, (size_t)(kp - k));
        int32_t s = 0;
        for (int64_t i = 0; i < k; i++) s += q[t * k + i];
        corr[t] = (int32_t)((uint32_t)s * (uint32_t)offset);
    }
    mm_rows_fn fn = rows_fn(isa);
    const int64_t nrows = (n + ROWPAD - 1) / ROWPAD * ROWPAD;
    int nth = threads > 0 ? threads : es_get_threads();
    /* chunks of whole ROWPAD groups, about 8 per thread so that a slow thread is absorbed */
    int64_t per = nrows / ROWPAD / (8 * (int64_t)nth);
    per = (per < 1 ? 1 : per) * ROWPAD;
    mm_job job = {fn, W, kpb, bits, Q, kp, T, n, corr, out, per, nrows};
    parallel_for(mm_chunk, &job, (nrows + per - 1) / per, nth);
    free(Q);
    free(corr);
    return 0;
}

/* ------------------------------------------------------------------ read bandwidth probe
 * The benchmarks' roofline: stream `n` bytes (a multiple of 64) through the same thread pool and
 * chunking as the matmul, folding them into a checksum so the loads cannot be dropped. */
typedef struct {
    const uint64_t *p;
    int64_t words, per;
    uint64_t sums[MAXTHREADS * 8 * 8];
} rd_job;

static void rd_chunk(void *ctx, int64_t c) {
    rd_job *j = (rd_job *)ctx;
    int64_t w0 = c * j->per, w1 = w0 + j->per < j->words ? w0 + j->per : j->words;
    uint64_t a[8] = {0};
    for (int64_t w = w0; w < w1; w += 8)
        for (int i = 0; i < 8; i++) a[i] ^= j->p[w + i];
    j->sums[c % (MAXTHREADS * 8 * 8)] = a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

uint64_t es_read_probe(const uint8_t *buf, int64_t n, int threads) {
    static rd_job job;
    int nth = threads > 0 ? threads : es_get_threads();
    job.p = (const uint64_t *)buf;
    job.words = n / 64 * 8;
    job.per = 1 << 15; /* 256 KiB chunks */
    memset(job.sums, 0, sizeof(job.sums));
    int64_t chunks = (job.words + job.per - 1) / job.per;
    parallel_for(rd_chunk, &job, chunks, nth);
    uint64_t s = 0;
    for (int64_t i = 0; i < MAXTHREADS * 8 * 8; i++) s ^= job.sums[i];
    return s;
}

/* ------------------------------------------------------------------ float parts (scalar, exact) */
static float g_exp2_t[256], g_exp2_d[256];
static int g_exp2_ready = 0;

void es_set_exp2_tables(const float *t256, const float *d256) {
    memcpy(g_exp2_t, t256, sizeof(g_exp2_t));
    memcpy(g_exp2_d, d256, sizeof(g_exp2_d));
    g_exp2_ready = 1;
}

/* Round half to even without a libm call (x86-64's baseline has no SSE4.1 round instruction, so
 * rintf/ldexpf would be function calls per element): adding and subtracting 1.5 * 2**23 (float) or
 * 1.5 * 2**52 (double) rounds to an integer in the current (nearest-even) mode, exactly, for |v| < 2**22
 * (float) or 2**51 (double); -ffp-contract=off keeps the two operations apart. */
static inline float rne_f(float v) {
    const float magic = 12582912.0f; /* 0x1.8p23 */
    return (v + magic) - magic;
}
static inline double rne_d(double v) {
    const double magic = 6755399441055744.0; /* 0x1.8p52 */
    return (v + magic) - magic;
}

static void quant_row(const float *u, int64_t k, int8_t *q, float *m_out) {
    const float eps = (float)1e-5; /* numerics.ACT_EPS = float32(1e-5) */
    float mx = 0.0f;
    for (int64_t i = 0; i < k; i++) {
        float a = fabsf(u[i]);
        mx = a > mx ? a : mx;
    }
    mx = mx > eps ? mx : eps;
    const float c = 127.0f / mx;
    for (int64_t i = 0; i < k; i++) {
        float v = u[i] * c;
        v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v); /* clamp then rint == rint then clamp */
        q[i] = (int8_t)rne_f(v);
    }
    *m_out = mx;
}

#ifdef ES_X86
/* AVX2 forms of quant_row and rms_factor, the same bits: the float steps are the scalar code's
 * element-wise IEEE operations (multiply, clamp, round half to even) in the same order, max is exact
 * in any order, and the sum of squares is a sum of integers z*z <= 2**30 in double lanes, exact
 * below 2**53 (k < 2**23), so the order of the additions does not matter either. Only for finite
 * rows: the scalar code's NaN/inf conversions are not what the vector instructions do, so a row
 * with a non-finite element returns 0 and takes the scalar code. */
static TGT_AVX2 int quant_row_avx2(const float *u, int64_t k, int8_t *q, float *m_out) {
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 inf = _mm256_set1_ps(INFINITY);
    __m256 mx8 = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256 a = _mm256_and_ps(_mm256_loadu_ps(u + i), absm);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ)); /* inf or NaN */
        mx8 = _mm256_max_ps(mx8, a);
    }
    if (_mm256_movemask_ps(bad)) return 0;
    float lanes[8], mx = 0.0f;
    _mm256_storeu_ps(lanes, mx8);
    for (int j = 0; j < 8; j++) mx = lanes[j] > mx ? lanes[j] : mx;
    for (; i < k; i++) {
        const float a = fabsf(u[i]);
        if (!(a < INFINITY)) return 0;
        mx = a > mx ? a : mx;
    }
    const float eps = (float)1e-5; /* numerics.ACT_EPS = float32(1e-5) */
    mx = mx > eps ? mx : eps;
    const float c = 127.0f / mx;
    const __m256 c8 = _mm256_set1_ps(c), lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
    for (i = 0; i + 32 <= k; i += 32) {
        __m256i v[4];
        for (int j = 0; j < 4; j++) { /* clamp, then cvtps rounds half to even (default MXCSR) */
            const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(u + i + 8 * j), c8);
            v[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(x, lo), hi));
        }
        const __m256i w01 = _mm256_packs_epi32(v[0], v[1]), w23 = _mm256_packs_epi32(v[2], v[3]);
        const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23),
                                                      _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), b);
    }
    for (; i < k; i++) {
        float v = u[i] * c;
        v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
        q[i] = (int8_t)rne_f(v);
    }
    *m_out = mx;
    return 1;
}

/* rms_factor for a finite row (the caller checked it through quant_row_avx2 of x * g, which is
 * finite only if x is) */
static TGT_AVX2 double rms_factor_avx2(const float *x, int64_t k, double eps) {
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx8 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) mx8 = _mm256_max_ps(mx8, _mm256_and_ps(_mm256_loadu_ps(x + i), absm));
    float lanes[8], amax = 0.0f;
    _mm256_storeu_ps(lanes, mx8);
    for (int j = 0; j < 8; j++) amax = lanes[j] > amax ? lanes[j] : amax;
    for (int64_t j = i; j < k; j++) {
        const float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    int e = 0;
    if (amax != 0.0f) frexpf(amax, &e);
    const double p2 = ldexp(1.0, 15 - e);
    const __m256d p2v = _mm256_set1_pd(p2), magic = _mm256_set1_pd(6755399441055744.0);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    for (i = 0; i + 8 <= k; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i);
        __m256d z0 = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(xv)), p2v);
        __m256d z1 = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1)), p2v);
        z0 = _mm256_sub_pd(_mm256_add_pd(z0, magic), magic); /* rne_d */
        z1 = _mm256_sub_pd(_mm256_add_pd(z1, magic), magic);
        s0 = _mm256_add_pd(s0, _mm256_mul_pd(z0, z0));
        s1 = _mm256_add_pd(s1, _mm256_mul_pd(z1, z1));
    }
    double sl[4];
    _mm256_storeu_pd(sl, _mm256_add_pd(s0, s1));
    int64_t S = (int64_t)sl[0] + (int64_t)sl[1] + (int64_t)sl[2] + (int64_t)sl[3];
    for (; i < k; i++) {
        int64_t z = (int64_t)rne_d((double)x[i] * p2);
        S += z * z;
    }
    double ms = ldexp((double)S, 2 * (e - 15)) / (double)k;
    return 1.0 / sqrt(ms + eps);
}

static TGT_AVX2 void mul_avx2(const float *a, const float *b, int64_t k, float *y) {
    int64_t i = 0;
    for (; i + 8 <= k; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < k; i++) y[i] = a[i] * b[i];
}

/* the float parts take the AVX2 forms unless the library's ISA (es_set_isa) is scalar */
static int float_avx2(void) {
    return es_get_isa() != ES_ISA_SCALAR && __builtin_cpu_supports("avx2");
}
#endif

typedef struct {
    const float *x, *g;
    double eps;
    int64_t k;
    int8_t *q;
    float *s;
} nq_job;

static void quant_chunk(void *ctx, int64_t r) {
    const nq_job *j = (const nq_job *)ctx;
#ifdef ES_X86
    if (float_avx2() && quant_row_avx2(j->x + r * j->k, j->k, j->q + r * j->k, j->s + r)) return;
#endif
    quant_row(j->x + r * j->k, j->k, j->q + r * j->k, j->s + r);
}

void es_quant_act(const float *u, int64_t rows, int64_t k, int8_t *q, float *m) {
    nq_job job = {u, NULL, 0.0, k, q, m};
    parallel_for(quant_chunk, &job, rows, rows >= 8 ? es_get_threads() : 1);
}

static double rms_factor(const float *x, int64_t k, double eps) {
    float amax = 0.0f;
    for (int64_t i = 0; i < k; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    int e = 0;
    if (amax != 0.0f) frexpf(amax, &e);
    /* z = rint(x * 2**(15-e)): the product is exact in double (a float times a power of two within
     * double's range), so rounding it once equals rint(ldexpf(...)) of the contract (an ldexpf result
     * rounded to a float32 subnormal is below 2**-126 and rounds to 0 either way); |z| <= 2**15. */
    const double p2 = ldexp(1.0, 15 - e);
    int64_t S = 0;
    for (int64_t i = 0; i < k; i++) {
        int64_t z = (int64_t)rne_d((double)x[i] * p2);
        S += z * z;
    }
    double ms = ldexp((double)S, 2 * (e - 15)) / (double)k;
    return 1.0 / sqrt(ms + eps);
}


static void norm_quant_row(const float *xr, const float *g, double eps, int64_t k, int8_t *q,
                           float *s) {
    float m;
#ifdef ES_X86
    if (float_avx2()) {
        if (g) {
            float ub[8192];
            float *u = k <= 8192 ? ub : (float *)malloc((size_t)k * sizeof(float));
            if (!u) return;
            mul_avx2(xr, g, k, u);
            const int ok = quant_row_avx2(u, k, q, &m);
            if (u != ub) free(u);
            if (ok) {
                double sd = (double)m / 127.0;
                sd = sd * rms_factor_avx2(xr, k, eps);
                *s = (float)sd;
                return;
            }
        } else if (quant_row_avx2(xr, k, q, &m)) {
            *s = (float)((double)m / 127.0);
            return;
        }
    }
#endif
    if (g) {
        float *u = (float *)calloc((size_t)k + 1, sizeof(float));
        for (int64_t i = 0; i < k; i++) u[i] = xr[i] * g[i];
        quant_row(u, k, q, &m);
        free(u);
        double sd = (double)m / 127.0;
        sd = sd * rms_factor(xr, k, eps);
        *s = (float)sd;
    } else {
        quant_row(xr, k, q, &m);
        *s = (float)((double)m / 127.0);
    }
}

static void norm_quant_chunk(void *ctx, int64_t r) {
    const nq_job *j = (const nq_job *)ctx;
    norm_quant_row(j->x + r * j->k, j->g, j->eps, j->k, j->q + r * j->k, j->s + r);
}

void es_norm_quant(const float *x, const float *g, double eps, int64_t rows, int64_t k, int8_t *q,
                   float *s) {
    nq_job job = {x, g, eps, k, q, s};
    parallel_for(norm_quant_chunk, &job, rows, rows >= 8 ? es_get_threads() : 1);
}

static inline float exp_neg(float t) {
    const float log2e = (float)1.4426950408889634;
    float z = t * log2e;
    if (z != z) return z; /* NaN (an inf - inf score upstream) propagates, never indexes the table */
    if (z < -64.0f) return 0.0f;
    /* floor, floor and ldexp without libm calls (x86-64's baseline has no round instruction): z is
     * in [-64, 0] here, so truncation corrected by one is floor; fs is >= 0, so truncation is floor;
     * p is in [1, 2], so p * 2**n for n >= -126 is a normal float, exactly ldexpf(p, n). */
    int n = (int)z;
    if ((float)n > z) n--;
    float f = z - (float)n;
    if (f == 1.0f) { /* z - n rounds up to 1 for -2**-25 <= z < 0: 2**z is then 1 (numerics.exp2_neg) */
        n += 1;
        f = 0.0f;
    }
    float fs = f * 256.0f;
    int i = (int)fs;
    float r = fs - (float)i;
    float p = g_exp2_t[i] + g_exp2_d[i] * r;
    if (n < -126 || n > 127) return ldexpf(p, n);
    union {
        uint32_t u;
        float f;
    } sc = {(uint32_t)(n + 127) << 23};
    return p * sc.f;
}

float es_exp_neg(float t) { return exp_neg(t); }

/* One query row against keys/values 0..S-1 of one head (docs/numerics.md, attention). On x86 an AVX2
 * clone is chosen at load where the CPU has it: only the integer loops (q.k, sum A*v) vectorize,
 * which is exact in any order; float steps stay scalar (no FMA: AVX2 does not imply it, and
 * -ffp-contract=off holds). */
#ifdef ES_X86
/* The two integer loops of attn_one in AVX2, exact in any order: q.k as int16 pairs through vpmaddwd
 * (a pair is at most 2 * 128 * 128 = 32768 in magnitude), and A * v for two keys at once, their
 * values interleaved into int16 pairs and multiplied by the pair (A_j, A_j+1) with vpmaddwd (needs
 * both A in int16: |A_j v| + |A_j+1 v| <= 2 * 32768 * 128 = 2**23 per lane). GCC's own vectorization
 * of the scalar loops widened to int32 and used vpmulld (measured: 2x the ops). */
static TGT_AVX2 int32_t dot_i8_avx2(const int8_t *a, const int8_t *b, int64_t D) {
    __m256i acc = _mm256_setzero_si256();
    int64_t d = 0;
    for (; d + 16 <= D; d += 16) {
        const __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + d)));
        const __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + d)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
    }
    int32_t dot = hsum256(acc);
    for (; d < D; d++) dot += (int32_t)a[d] * (int32_t)b[d];
    return dot;
}

static TGT_AVX2 void axpy2_i8_avx2(int32_t *num, const int8_t *v0, const int8_t *v1, int32_t A0,
                                   int32_t A1, int64_t D) {
    const __m256i aa = _mm256_set1_epi32((int32_t)(((uint32_t)(uint16_t)A1 << 16) | (uint16_t)A0));
    int64_t d = 0;
    for (; d + 16 <= D; d += 16) {
        const __m128i x0 = _mm_loadu_si128((const __m128i *)(v0 + d));
        const __m128i x1 = _mm_loadu_si128((const __m128i *)(v1 + d));
        const __m256i lo = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(x0, x1)); /* v0[d], v1[d], ... */
        const __m256i hi = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(x0, x1));
        __m256i *n0 = (__m256i *)(num + d), *n1 = (__m256i *)(num + d + 8);
        _mm256_storeu_si256(n0, _mm256_add_epi32(_mm256_loadu_si256(n0), _mm256_madd_epi16(lo, aa)));
        _mm256_storeu_si256(n1, _mm256_add_epi32(_mm256_loadu_si256(n1), _mm256_madd_epi16(hi, aa)));
    }
    for (; d < D; d++) num[d] += A0 * (int32_t)v0[d] + A1 * (int32_t)v1[d];
}
#endif

#ifdef ES_X86
__attribute__((target_clones("avx2", "default")))
#endif
static void attn_one(const int8_t *qt, float dqt, const int8_t *kq, const float *dk, const int8_t *vq,
                     const float *dv, int64_t qpos, int64_t S, int64_t D, float scale, float *out_row) {
    int64_t vis = qpos < 0 ? 0 : (qpos >= S ? S : qpos + 1);
    float *sc = (float *)malloc((size_t)(vis + 1) * sizeof(float));
    int64_t *E = (int64_t *)malloc((size_t)(vis + 1) * sizeof(int64_t));
    float *a = (float *)malloc((size_t)(vis + 1) * sizeof(float));
    int64_t *num = (int64_t *)calloc((size_t)D, sizeof(int64_t));
    float smax = -INFINITY;
#ifdef ES_X86
    const int vec = float_avx2();
#endif
    for (int64_t j = 0; j < vis; j++) {
        const int8_t *kj = kq + j * D;
        int32_t dot = 0;
#ifdef ES_X86
        if (vec)
            dot = dot_i8_avx2(qt, kj, D);
        else
#endif
            for (int64_t d = 0; d < D; d++) dot += (int32_t)qt[d] * (int32_t)kj[d];
        float c = dqt * dk[j];
        c = c * scale;
        sc[j] = (float)dot * c;
        smax = sc[j] > smax ? sc[j] : smax;
    }
    float amax = vis < S ? 0.0f : -INFINITY; /* masked keys contribute a = 0 */
    int64_t den = 0;
    for (int64_t j = 0; j < vis; j++) {
        float e = exp_neg(sc[j] - smax);
        E[j] = (int64_t)rne_f(e * 32768.0f); /* e in [0, 1] or NaN: within rne_f's range */
        a[j] = (float)E[j] * dv[j];
        amax = a[j] > amax ? a[j] : amax;
        den += E[j];
    }
    const float amax_safe = amax > 0.0f ? amax : 1.0f;
    const float ratio = 32767.0f / amax_safe;
    /* sum_j A * v in int32 over blocks of 256 keys (|A| <= 32768, |v| <= 128: |block sum| <= 2**30),
     * added into int64 after each block: exact, and the int32 loop vectorizes */
    int32_t *num32 = (int32_t *)malloc((size_t)D * sizeof(int32_t) + 4);
    for (int64_t j0 = 0; j0 < vis; j0 += 256) {
        const int64_t j1 = j0 + 256 < vis ? j0 + 256 : vis;
        memset(num32, 0, (size_t)D * sizeof(int32_t));
        for (int64_t j = j0; j < j1; j++) {
            const int64_t A = (int64_t)rne_f(a[j] * ratio); /* a <= max a: |a * ratio| <= 32767 or NaN */
            const int8_t *vj = vq + j * D;
#ifdef ES_X86
            if (vec && j + 1 < j1 && A >= -32768 && A <= 32767) {
                const int64_t A1 = (int64_t)rne_f(a[j + 1] * ratio);
                if (A1 >= -32768 && A1 <= 32767) {
                    axpy2_i8_avx2(num32, vj, vj + D, (int32_t)A, (int32_t)A1, D);
                    j++;
                    continue;
                }
            }
#endif
            if (A < -32768 || A > 32768) { /* only from non-finite scales: the plain int64 sum */
                for (int64_t d = 0; d < D; d++) num[d] += A * vj[d];
                continue;
            }
            const int32_t A32 = (int32_t)A;
            for (int64_t d = 0; d < D; d++) num32[d] += A32 * (int32_t)vj[d];
        }
        for (int64_t d = 0; d < D; d++) num[d] += num32[d];
    }
    free(num32);
    const float f = (float)((double)amax / 32767.0 / (double)den);
    for (int64_t d = 0; d < D; d++) out_row[d] = (float)num[d] * f;
    free(sc);
    free(E);
    free(a);
    free(num);
}

typedef struct {
    const int8_t *qq;
    const float *dq;
    const int8_t *kq;
    const float *dk;
    const int8_t *vq;
    const float *dv;
    const int64_t *q_pos;
    int64_t S, D, H, KVH, cap;
    float scale;
    float *out;
} attn_job;

/* item = t * H + h; qq/dq/out are [T, H, ...]; kq/vq [KVH, cap, D], dk/dv [KVH, cap]; query head h
 * reads KV head h / (H / KVH) (GQA). */
static void attn_item(void *ctx, int64_t item) {
    const attn_job *J = (const attn_job *)ctx;
    const int64_t t = item / J->H, h = item % J->H, kv = h / (J->H / J->KVH), D = J->D;
    attn_one(J->qq + (t * J->H + h) * D, J->dq[t * J->H + h], J->kq + kv * J->cap * D, J->dk + kv * J->cap,
             J->vq + kv * J->cap * D, J->dv + kv * J->cap, J->q_pos[t], J->S, D, J->scale,
             J->out + (t * J->H + h) * D);
}

void es_attention_heads(const int8_t *qq, const float *dq, const int8_t *kq, const float *dk,
                        const int8_t *vq, const float *dv, const int64_t *q_pos, int64_t T, int64_t S,
                        int64_t D, int64_t H, int64_t KVH, int64_t cap, float scale, float *out) {
    attn_job job = {qq, dq, kq, dk, vq, dv, q_pos, S, D, H, KVH, cap, scale, out};
    parallel_for(attn_item, &job, T * H, T * H >= 4 ? es_get_threads() : 1);
}

void es_attention(const int8_t *qq, const float *dq, const int8_t *kq, const float *dk,
                  const int8_t *vq, const float *dv, const int64_t *q_pos, int64_t T, int64_t S,
                  int64_t D, float scale, float *out) {
    es_attention_heads(qq, dq, kq, dk, vq, dv, q_pos, T, S, D, 1, 1, S, scale, out);
}
