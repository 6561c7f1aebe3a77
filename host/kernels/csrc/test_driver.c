/* Standalone test driver for eskernel.c: reads test vectors written by numpy
 * (tests/test_ckernel_aarch64.py) and checks every case, bit for bit, on every ISA path this CPU
 * can run, both kernel variants (ES_VARIANT_PLANES: the generic plane loop), with 1 and 2 threads.
 * Used to prove the NEON path under qemu-aarch64-static.
 *
 * File: "ESTV" int64 version, float32 exp2 T[256], D[256], then records, each starting with an
 * int64 kind: 1 matmul, 2 norm_quant, 3 attention, 4 fused plan (es_run_plan), 0 end.
 *
 * A plan record carries one arena (weights, tables, activation slots, KV cache, scratch) and the op
 * records with every pointer written as 1 + its offset in the arena (0 = NULL); the driver relocates
 * them, then for every ISA path and 1 and 2 threads restores the arena and runs the steps (prefill
 * and decode calls), comparing each step's logits and the final KV cache with numpy's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eskernel.h"

static FILE *fp;

static void *reloc(void *p, uint8_t *base) {
    uintptr_t v = (uintptr_t)p;
    return v ? (void *)(base + (v - 1)) : NULL;
}

static int run_plan_record(int64_t *cases, const int *isas, int nisa);

static void *rd(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p || (n && fread(p, 1, n, fp) != n)) {
        fprintf(stderr, "short read\n");
        exit(2);
    }
    return p;
}

static int64_t rd64(void) {
    int64_t v;
    if (fread(&v, 8, 1, fp) != 1) {
        fprintf(stderr, "short read\n");
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s vectors.bin\n", argv[0]);
        return 2;
    }
    fp = fopen(argv[1], "rb");
    if (!fp) return 2;
    char magic[4];
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "ESTV", 4)) return 2;
    if (rd64() != 1) return 2;
    float *t = rd(256 * 4), *d = rd(256 * 4);
    es_set_exp2_tables(t, d);
    int isas[8], nisa = 0;
    for (int i = 0; i <= ES_ISA_NEON; i++)
        if (es_isa_available(i)) isas[nisa++] = i;
    printf("isa paths:");
    for (int i = 0; i < nisa; i++) printf(" %d", isas[i]);
    printf("\n");
    int cases = 0, fails = 0;
    for (;;) {
        int64_t kind = rd64();
        if (kind == 0) break;
        cases++;
        if (kind == 1) {
            int64_t n = rd64(), k = rd64(), T = rd64(), bits = rd64(), off = rd64(), npr = rd64(),
                    kpb = rd64();
            uint8_t *W = rd((size_t)(npr * kpb));
            int8_t *q = rd((size_t)(T * k));
            int32_t *ref = rd((size_t)(T * n) * 4);
            int32_t *out = malloc((size_t)(T * n) * 4 + 4);
            for (int i = 0; i < nisa; i++)
                for (int var = ES_VARIANT_DEFAULT; var <= ES_VARIANT_PLANES; var++)
                    for (int th = 1; th <= 2; th++) {
                        memset(out, 0x5a, (size_t)(T * n) * 4);
                        es_set_variant(var);
                        int rc = es_matmul(W, n, npr, kpb, (int)bits, (int)off, q, T, k, out, isas[i], th);
                        es_set_variant(ES_VARIANT_DEFAULT);
                        if (rc || memcmp(out, ref, (size_t)(T * n) * 4)) {
                            printf("FAIL matmul case %d isa %d variant %d threads %d n=%lld k=%lld T=%lld "
                                   "bits=%lld\n",
                                   cases, isas[i], var, th, (long long)n, (long long)k, (long long)T,
                                   (long long)bits);
                            fails++;
                        }
                    }
            free(W), free(q), free(ref), free(out);
        } else if (kind == 2) {
            int64_t rows = rd64(), k = rd64(), has_g = rd64();
            double eps;
            if (fread(&eps, 8, 1, fp) != 1) return 2;
            float *x = rd((size_t)(rows * k) * 4);
            float *g = has_g ? rd((size_t)k * 4) : NULL;
            int8_t *qref = rd((size_t)(rows * k));
            float *sref = rd((size_t)rows * 4);
            int8_t *q = malloc((size_t)(rows * k) + 1);
            float *s = malloc((size_t)rows * 4 + 4);
            es_norm_quant(x, g, eps, rows, k, q, s);
            if (memcmp(q, qref, (size_t)(rows * k)) || memcmp(s, sref, (size_t)rows * 4)) {
                printf("FAIL norm_quant case %d rows=%lld k=%lld g=%lld\n", cases, (long long)rows,
                       (long long)k, (long long)has_g);
                fails++;
            }
            free(x), free(g), free(qref), free(sref), free(q), free(s);
        } else if (kind == 3) {
            int64_t T = rd64(), S = rd64(), D = rd64();
            float scale;
            if (fread(&scale, 4, 1, fp) != 1) return 2;
            int8_t *qq = rd((size_t)(T * D)), *kq = rd((size_t)(S * D)), *vq = rd((size_t)(S * D));
            float *dq = rd((size_t)T * 4), *dk = rd((size_t)S * 4), *dv = rd((size_t)S * 4);
            int64_t *pos = rd((size_t)T * 8);
            float *ref = rd((size_t)(T * D) * 4);
            float *o = malloc((size_t)(T * D) * 4 + 4);
            es_attention(qq, dq, kq, dk, vq, dv, pos, T, S, D, scale, o);
            if (memcmp(o, ref, (size_t)(T * D) * 4)) {
                printf("FAIL attention case %d T=%lld S=%lld D=%lld\n", cases, (long long)T,
                       (long long)S, (long long)D);
                fails++;
            }
            free(qq), free(kq), free(vq), free(dq), free(dk), free(dv), free(pos), free(ref), free(o);
        } else if (kind == 4) {
            int64_t c = cases;
            fails += run_plan_record(&c, isas, nisa);
        } else {
            fprintf(stderr, "bad record kind %lld\n", (long long)kind);
            return 2;
        }
    }
    printf("%d cases, %d failures\n", cases, fails);
    return fails ? 1 : 0;
}

static int run_plan_record(int64_t *cases, const int *isas, int nisa) {
    int64_t op_size = rd64(), nops = rd64(), arena_len = rd64(), x0_off = rd64(), logits_off = rd64(),
            acc_off = rd64(), kq_off = rd64(), dk_off = rd64(), vq_off = rd64(), dv_off = rd64(),
            kq_bytes = rd64(), dk_bytes = rd64(), cap = rd64(), nsteps = rd64();
    if (op_size != (int64_t)sizeof(es_op)) {
        printf("FAIL plan case %lld: es_op is %lld bytes in the record, %lld here\n", (long long)*cases,
               (long long)op_size, (long long)sizeof(es_op));
        exit(1);
    }
    uint8_t *init = rd((size_t)arena_len);
    es_op *ops = rd((size_t)(nops * op_size));
    uint8_t *arena = aligned_alloc(64, (size_t)(arena_len + 63) / 64 * 64);
    for (int64_t i = 0; i < nops; i++) {
        es_op *o = &ops[i];
        for (int j = 0; j < 3; j++) o->in[j] = reloc((void *)o->in[j], arena);
        for (int j = 0; j < ES_PLAN_MEMBERS; j++) {
            o->out[j] = reloc(o->out[j], arena);
            o->beta[j] = reloc((void *)o->beta[j], arena);
        }
        o->w = reloc((void *)o->w, arena);
        o->w2 = reloc((void *)o->w2, arena);
    }
    int64_t *T = malloc(8 * nsteps), *pos = malloc(8 * nsteps), *last_from = malloc(8 * nsteps),
            *xb = malloc(8 * nsteps), *lb = malloc(8 * nsteps);
    uint8_t **x0 = malloc(sizeof(void *) * nsteps), **lref = malloc(sizeof(void *) * nsteps);
    for (int64_t s = 0; s < nsteps; s++) {
        T[s] = rd64(), pos[s] = rd64(), last_from[s] = rd64(), xb[s] = rd64(), lb[s] = rd64();
        x0[s] = rd((size_t)xb[s]);
        lref[s] = rd((size_t)lb[s]);
    }
    uint8_t *kvref = rd((size_t)(2 * (kq_bytes + dk_bytes)));
    int fails = 0;
    for (int i = 0; i < nisa; i++)
        for (int th = 1; th <= 2; th++) {
            memcpy(arena, init, (size_t)arena_len);
            for (int64_t s = 0; s < nsteps; s++) {
                memcpy(arena + x0_off, x0[s], (size_t)xb[s]);
                int rc = es_run_plan(ops, nops, last_from[s], T[s], pos[s], (int8_t *)(arena + kq_off),
                                     (float *)(arena + dk_off), (int8_t *)(arena + vq_off),
                                     (float *)(arena + dv_off), cap, (int32_t *)(arena + acc_off),
                                     isas[i], th);
                if (rc || memcmp(arena + logits_off, lref[s], (size_t)lb[s])) {
                    printf("FAIL plan case %lld isa %d threads %d step %lld (rc %d)\n", (long long)*cases,
                           isas[i], th, (long long)s, rc);
                    fails++;
                }
            }
            const int64_t offs[4] = {kq_off, dk_off, vq_off, dv_off};
            const int64_t lens[4] = {kq_bytes, dk_bytes, kq_bytes, dk_bytes};
            int64_t at = 0;
            for (int j = 0; j < 4; at += lens[j], j++)
                if (memcmp(arena + offs[j], kvref + at, (size_t)lens[j])) {
                    printf("FAIL plan case %lld isa %d threads %d: KV cache array %d\n", (long long)*cases,
                           isas[i], th, j);
                    fails++;
                    break;
                }
        }
    for (int64_t s = 0; s < nsteps; s++) free(x0[s]), free(lref[s]);
    free(T), free(pos), free(last_from), free(xb), free(lb), free(x0), free(lref), free(kvref);
    free(init), free(ops), free(arena);
    return fails;
}
