/* The fused decoder step: one C call runs a whole forward pass of the program (from the embedded
 * tokens to the logits) over a plan built by host/kernels/c_plan.py, with no Python between ops.
 *
 * Every op is the same arithmetic as the op-by-op executor (host/executor.py over
 * edgestream/numerics.py): the same es_matmul / es_norm_quant / es_attention_heads calls, and the
 * element-wise steps (dequant, RoPE, activations, residual adds) written as scalar float32 in the
 * contract's order (built with -ffp-contract=off), so the results are bit-identical.
 * Plan layout and the "last row only" rule: eskernel.h (es_op). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "eskernel.h"

/* optional per-op-kind wall time (es_plan_profile), for the benchmarks' profile */
static int g_prof_on;
static double g_prof_ns[8], g_prof_n[8];

void es_plan_profile(int enable, double *ns, double *calls) {
    if (ns)
        for (int i = 0; i < 8; i++) ns[i] = g_prof_ns[i], calls[i] = g_prof_n[i];
    memset(g_prof_ns, 0, sizeof(g_prof_ns));
    memset(g_prof_n, 0, sizeof(g_prof_n));
    g_prof_on = enable;
}

static double mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void op_qlinear(const es_op *o, const int8_t *q, const float *s, int64_t Te, int32_t *acc,
                       int isa, int threads, int *rc) {
    const int64_t n = o->n;
    int r = es_matmul((const uint8_t *)o->w, n, o->np_rows, o->kpb, (int)o->bits, (int)o->offset, q,
                      Te, o->k, acc, isa, threads);
    if (r) {
        *rc = r;
        return;
    }
    /* numerics.dequant per member: y = float32(acc) * float32(beta[o] * s[t]) */
    int64_t row0 = 0;
    for (int m = 0; m < ES_PLAN_MEMBERS && o->rows[m]; m++) {
        const int64_t rows = o->rows[m];
        const float *beta = o->beta[m];
        float *y = (float *)o->out[m];
        for (int64_t t = 0; t < Te; t++) {
            const float st = s[t];
            const int32_t *a = acc + t * n + row0;
            float *yt = y + t * rows;
            for (int64_t i = 0; i < rows; i++) {
                const float f = beta[i] * st;
                yt[i] = (float)a[i] * f;
            }
        }
        row0 += rows;
    }
}

/* numerics.rope: rotate-half, each product rounded, then the add */
static void op_rope(const es_op *o, const float *x, float *y, int64_t Te, const int64_t *tpos) {
    const int64_t D = o->head_dim, half = D / 2, H = o->heads;
    const float *cs = (const float *)o->w, *sn = (const float *)o->w2;
    for (int64_t t = 0; t < Te; t++) {
        const float *c = cs + tpos[t] * half, *s = sn + tpos[t] * half;
        for (int64_t h = 0; h < H; h++) {
            const float *xr = x + (t * H + h) * D;
            float *yr = y + (t * H + h) * D;
            for (int64_t i = 0; i < half; i++) {
                const float lo = xr[i], hi = xr[half + i];
                const float a = lo * c[i], b = hi * s[i];
                const float e = hi * c[i], f = lo * s[i];
                yr[i] = a - b;
                yr[half + i] = e + f;
            }
        }
    }
}

/* CachedDecoder.attend: K and V quantized per (token, head) into the cache at their positions,
 * Q per (token, head), then all heads over the cache (es_attention_heads). */
static void op_attention(const es_op *o, const float *q, const float *k, const float *v, float *out,
                         int64_t Te, const int64_t *tpos, int8_t *kq, float *dk, int8_t *vq,
                         float *dv, int64_t cap, int *rc) {
    const int64_t H = o->heads, KVH = o->kv_heads, D = o->head_dim;
    const int64_t lofs = o->layer * KVH * cap;
    int8_t *kl = kq + lofs * D, *vl = vq + lofs * D;
    float *dkl = dk + lofs, *dvl = dv + lofs;
    int64_t S = 0;
    for (int64_t t = 0; t < Te; t++) {
        const int64_t p = tpos[t];
        if (p < 0 || p >= cap) {
            *rc = -3;
            return;
        }
        S = p + 1 > S ? p + 1 : S;
        for (int64_t h = 0; h < KVH; h++) {
            float m;
            es_quant_act(k + (t * KVH + h) * D, 1, D, kl + (h * cap + p) * D, &m);
            dkl[h * cap + p] = m / 127.0f;
            es_quant_act(v + (t * KVH + h) * D, 1, D, vl + (h * cap + p) * D, &m);
            dvl[h * cap + p] = m / 127.0f;
        }
    }
    int8_t *qq = (int8_t *)malloc((size_t)(Te * H * D) + 1);
    float *dq = (float *)malloc((size_t)(Te * H) * sizeof(float) + 4);
    if (!qq || !dq) {
        free(qq);
        free(dq);
        *rc = -1;
        return;
    }
    es_quant_act(q, Te * H, D, qq, dq);
    for (int64_t i = 0; i < Te * H; i++) dq[i] = dq[i] / 127.0f;
    es_attention_heads(qq, dq, kl, dkl, vl, dvl, tpos, Te, S, D, H, KVH, cap, o->scale, out);
    free(qq);
    free(dq);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
/* the same element-wise steps 8 lanes at a time: g < 0 ? 0 : g keeps NaN (the compare is false) and
 * -0.0, as the scalar select does; the products are the same IEEE multiplies */
__attribute__((target("avx2"))) static int64_t relu2_mul_avx2(const float *g, const float *u,
                                                               float *y, int64_t len) {
    int64_t i = 0;
    const __m256 zero = _mm256_setzero_ps();
    for (; i + 8 <= len; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i);
        const __m256 r = _mm256_andnot_ps(_mm256_cmp_ps(gv, zero, _CMP_LT_OQ), gv);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(r, r), _mm256_loadu_ps(u + i)));
    }
    return i;
}
#define ES_PLAN_X86 1
#endif

static void op_relu2_mul(const float *g, const float *u, float *y, int64_t len) {
    int64_t i0 = 0;
#ifdef ES_PLAN_X86
    if (es_get_isa() != ES_ISA_SCALAR && __builtin_cpu_supports("avx2")) i0 = relu2_mul_avx2(g, u, y, len);
#endif
    for (int64_t i = i0; i < len; i++) {
        const float r = g[i] < 0.0f ? 0.0f : g[i]; /* np.maximum(g, 0): NaN stays NaN */
        const float rr = r * r;
        y[i] = rr * u[i];
    }
}

static void op_silu_mul(const float *g, const float *u, float *y, int64_t len) {
    for (int64_t i = 0; i < len; i++) {
        const float gi = g[i];
        const float e = es_exp_neg(-fabsf(gi));
        const float den = 1.0f + e;
        const float sig = gi >= 0.0f ? 1.0f / den : e / den;
        const float gs = gi * sig;
        y[i] = gs * u[i];
    }
}

int es_run_plan(const es_op *ops, int64_t nops, int64_t last_from, int64_t T, int64_t pos,
                int8_t *kq, float *dk, int8_t *vq, float *dv, int64_t cap, int32_t *acc, int isa,
                int threads) {
    if (T <= 0) return T == 0 ? 0 : -1;
    int64_t *tpos = (int64_t *)malloc((size_t)T * sizeof(int64_t));
    if (!tpos) return -1;
    int rc = 0;
    /* norm_quant and attention take the library's thread setting: make it the plan's for this call,
     * so that a 1-thread executor never hands attention chunks to a second thread */
    const int prev_threads = threads > 0 ? es_swap_threads(threads) : -1;
    const int prev_isa = isa >= 0 ? es_swap_isa(isa) : -1; /* the float parts follow the plan's ISA */
    for (int64_t i = 0; i < nops && rc == 0; i++) {
        const es_op *o = &ops[i];
        const int last = i >= last_from && T > 1;
        const int64_t Te = last ? 1 : T;
        for (int64_t t = 0; t < Te; t++) tpos[t] = pos + (last ? T - 1 : t);
        /* an input produced before last_from holds all T rows: read only its last one */
        const void *in[3];
        for (int j = 0; j < 3; j++) {
            const int64_t rowb = o->in_row_bytes[j];
            in[j] = (last && (o->full_in >> j & 1) && o->in[j])
                        ? (const void *)((const char *)o->in[j] + (T - 1) * rowb)
                        : o->in[j];
        }
        const double t0 = g_prof_on ? mono_ns() : 0.0;
        switch (o->op) {
        case ES_OP_NORM_QUANT:
            es_norm_quant((const float *)in[0], (const float *)o->w, o->eps, Te, o->k,
                          (int8_t *)o->out[0], (float *)o->out[1]);
            break;
        case ES_OP_QLINEAR:
            op_qlinear(o, (const int8_t *)in[0], (const float *)in[1], Te, acc, isa, threads, &rc);
            break;
        case ES_OP_ROPE:
            op_rope(o, (const float *)in[0], (float *)o->out[0], Te, tpos);
            break;
        case ES_OP_ATTENTION:
            op_attention(o, (const float *)in[0], (const float *)in[1], (const float *)in[2],
                         (float *)o->out[0], Te, tpos, kq, dk, vq, dv, cap, &rc);
            break;
        case ES_OP_RELU2_MUL:
            op_relu2_mul((const float *)in[0], (const float *)in[1], (float *)o->out[0], Te * o->n);
            break;
        case ES_OP_SILU_MUL:
            op_silu_mul((const float *)in[0], (const float *)in[1], (float *)o->out[0], Te * o->n);
            break;
        case ES_OP_ADD: {
            const float *a = (const float *)in[0], *b = (const float *)in[1];
            float *y = (float *)o->out[0];
            for (int64_t e = 0; e < Te * o->n; e++) y[e] = a[e] + b[e];
            break;
        }
        default: rc = -4;
        }
        if (g_prof_on && o->op > 0 && o->op < 8) {
            g_prof_ns[o->op] += mono_ns() - t0;
            g_prof_n[o->op] += 1;
        }
    }
    if (prev_threads >= 0) es_swap_threads(prev_threads);
    if (prev_isa >= 0) es_swap_isa(prev_isa);
    free(tpos);
    return rc;
}
