/* Standalone test driver for eskernel.c: reads test vectors written by numpy
 * (tests/test_ckernel_aarch64.py) and checks every case, bit for bit, on every ISA path this CPU
 * can run, with 1 and 2 threads. Used to prove the NEON path under qemu-aarch64-static.
 *
 * File: "ESTV" int64 version, float32 exp2 T[256], D[256], then records, each starting with an
 * int64 kind: 1 matmul, 2 norm_quant, 3 attention, 0 end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eskernel.h"

static FILE *fp;

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
                for (int th = 1; th <= 2; th++) {
                    memset(out, 0x5a, (size_t)(T * n) * 4);
                    int rc = es_matmul(W, n, npr, kpb, (int)bits, (int)off, q, T, k, out, isas[i], th);
                    if (rc || memcmp(out, ref, (size_t)(T * n) * 4)) {
                        printf("FAIL matmul case %d isa %d threads %d n=%lld k=%lld T=%lld bits=%lld\n",
                               cases, isas[i], th, (long long)n, (long long)k, (long long)T,
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
        } else {
            fprintf(stderr, "bad record kind %lld\n", (long long)kind);
            return 2;
        }
    }
    printf("%d cases, %d failures\n", cases, fails);
    return fails ? 1 : 0;
}
