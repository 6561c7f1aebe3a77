/* edgestream compiled CPU kernels: exact integer matmul over packed offset-binary codes, INT8
 * activation quantization and INT8-KV-cache attention, bit-identical to edgestream/numerics.py.
 * Contract: docs/numerics.md; layouts and dispatch: docs/cpu-kernels.md. */
#ifndef ESKERNEL_H
#define ESKERNEL_H
#include <stdint.h>

#define ES_ISA_SCALAR 0
#define ES_ISA_AVX2 1
#define ES_ISA_AVX512 2      /* AVX-512 F+BW, maddubs dot products */
#define ES_ISA_AVX512VNNI 3  /* AVX-512 F+BW+VNNI, vpdpbusd */
#define ES_ISA_NEON 4

/* Packed layout: a row is nblk blocks of 64 bytes; with B bits per code a block holds 512/B codes in
 * P = 8/B planes; plane s sits at bit shift B*s of every byte and holds codes of weights
 * blk*(512/B) + 64*s + j, j = 0..63 (j = byte index). code = w + offset (offset = 1 for ternary,
 * 2**(B-1) for B-bit integers), so acc = dot(code, q) - offset * sum(q). */

int es_version(void);
int es_isa_available(int isa);
int es_best_isa(void);
int es_set_isa(int isa); /* 0 ok, -1 not available on this CPU / build */
/* Kernel variant for benchmarks and tests, returns the previous one: ES_VARIANT_DEFAULT, or
 * ES_VARIANT_PLANES: 2-bit and 8-bit codes on AVX2 through the generic plane loop (the version-6
 * GEMV/GEMM, still used for 2-bit K > 2**20 and 8-bit GEMM) instead of the 2-bit kernels and the
 * 8-bit GEMV; ES_VARIANT_PLANES8: only 8-bit codes through the plane loop (the version-7 kernel).
 * Same results either way. */
#define ES_VARIANT_DEFAULT 0
#define ES_VARIANT_PLANES 1
#define ES_VARIANT_PLANES8 2
int es_set_variant(int v);
int es_get_isa(void);
/* es_set_isa(isa) where available, returning the previous setting. Besides the matmul default, the
 * setting picks the form of the float parts (norm_quant, quant_act, the plan's element-wise ops):
 * AVX2 where the CPU has it, scalar when the setting is ES_ISA_SCALAR; the same bits either way. */
int es_swap_isa(int isa);
void es_set_threads(int n); /* <= 0: all cores */
int es_get_threads(void);
int es_swap_threads(int n); /* es_set_threads(n), returning the previous setting (0 = all cores) */
int es_has_openmp(void);

/* W: [np_rows][kpb] packed bytes (np_rows >= n, multiple of 4; kpb = 64 * nblk), q: int8 [t][k]
 * (k <= kpb * 8 / bits), out: int32 [t][n]; isa < 0: the es_set_isa/best one; threads <= 0: the
 * es_set_threads/all cores. Returns 0, -1 on bad arguments / no memory, -2 isa not available. */
int es_matmul(const uint8_t *W, int64_t n, int64_t np_rows, int64_t kpb, int bits, int offset,
              const int8_t *q, int64_t t, int64_t k, int32_t *out, int isa, int threads);

void es_set_exp2_tables(const float *t256, const float *d256);
void es_quant_act(const float *u, int64_t rows, int64_t k, int8_t *q, float *m);
void es_norm_quant(const float *x, const float *g, double eps, int64_t rows, int64_t k, int8_t *q,
                   float *s);
/* All query heads at once: qq [T, H, D], dq [T, H], KV cache of one layer kq/vq [KVH, cap, D],
 * dk/dv [KVH, cap] (first S positions used), out [T, H, D]. */
void es_attention_heads(const int8_t *qq, const float *dq, const int8_t *kq, const float *dk,
                        const int8_t *vq, const float *dv, const int64_t *q_pos, int64_t T, int64_t S,
                        int64_t D, int64_t H, int64_t KVH, int64_t cap, float scale, float *out);
void es_attention(const int8_t *qq, const float *dq, const int8_t *kq, const float *dk,
                  const int8_t *vq, const float *dv, const int64_t *q_pos, int64_t t, int64_t s,
                  int64_t d, float scale, float *out);

/* Streams n bytes (multiple of 64) on `threads` threads of the pool; returns a checksum. */
uint64_t es_read_probe(const uint8_t *buf, int64_t n, int threads);

/* e**t for float32 t <= 0 (numerics.exp_neg), from the exp2 table set by es_set_exp2_tables. */
float es_exp_neg(float t);

/* ---- the fused decoder step (esplan.c; built by host/kernels/c_plan.py)
 * A plan is the program's ops after the embedding, in order, each reading and writing row-major
 * buffers of T rows (row widths k in, n out). Ops at index >= last_from run on the last token only
 * (the LM head and its norm when only the next token's logits are wanted): they write one row,
 * and read the last row of an input whose bit is set in full_in (that input was written with all
 * T rows). The layout is the same on every LP64 target (tests/test_ckernel_aarch64.py relocates a
 * serialized plan). */
#define ES_OP_NORM_QUANT 1 /* in[0] x float32 [T,k]; w gain or NULL, eps -> out[0] q int8, out[1] s */
#define ES_OP_QLINEAR 2    /* in[0] q int8 [T,k], in[1] s [T]; w packed codes of the stacked rows;
                              members m: rows[m] rows, beta[m] -> out[m] float32 [T, rows[m]] */
#define ES_OP_ROPE 3       /* in[0] [T, heads*head_dim]; w cos, w2 sin [max_pos, head_dim/2] */
#define ES_OP_ATTENTION 4  /* in[0] q [T,H*D], in[1] k, in[2] v [T,KVH*D] -> out[0] [T,H*D]; layer */
#define ES_OP_RELU2_MUL 5  /* in[0] gate, in[1] up [T,n] -> out[0] */
#define ES_OP_SILU_MUL 6
#define ES_OP_ADD 7
#define ES_PLAN_MEMBERS 4

typedef struct {
    int32_t op, full_in;
    int64_t k, n;
    const void *in[3];
    int64_t in_row_bytes[3];
    void *out[ES_PLAN_MEMBERS];
    const void *w, *w2;
    const float *beta[ES_PLAN_MEMBERS];
    int64_t rows[ES_PLAN_MEMBERS];
    int64_t np_rows, kpb, bits, offset;
    int64_t layer, heads, kv_heads, head_dim;
    double eps;
    float scale;
    int32_t pad;
} es_op;

/* Runs ops[0..nops) for T tokens at positions pos..pos+T-1; the KV cache is
 * [layers, kv_heads, cap, head_dim] int8 (kq, vq) and [layers, kv_heads, cap] float32 (dk, dv);
 * acc: int32 scratch of T * (largest n) (1 * n for the ops at >= last_from). Returns 0, -1 bad
 * arguments / no memory, -2 isa not available, -3 a position outside the cache, -4 unknown op. */
/* enable = 1 starts timing every op of es_run_plan by kind (index = ES_OP_*), 0 stops; with ns and
 * calls ([8] each) non-NULL first copies out the time and count so far. Every call resets them. */
void es_plan_profile(int enable, double *ns, double *calls);

int es_run_plan(const es_op *ops, int64_t nops, int64_t last_from, int64_t T, int64_t pos,
                int8_t *kq, float *dk, int8_t *vq, float *dv, int64_t cap, int32_t *acc, int isa,
                int threads);
#endif
