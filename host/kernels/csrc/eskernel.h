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
int es_get_isa(void);
void es_set_threads(int n); /* <= 0: all cores */
int es_get_threads(void);
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
#endif
