/* A/B of kernel library builds on the decode stream of the 2B4T shape, outside Python: the libraries
 * (built from eskernel.c + esplan.c only, e.g. two commits) are dlopen'ed side by side and take turns,
 * round by round, so load bursts hit them alike; 1 GiB of plain loads evicts the caches before each
 * DRAM measurement. Reports GB/s of weight bytes, mean and best over the rounds: the ternary stack
 * (30 x stacked q/k/v, o, gate/up, down: 521 MB), the INT8 LM head (128256 x 2560: 328 MB), a hot
 * 2-bit GEMV (384 x 2560) and a hot 8-bit GEMV (96 x 2560), and the first library's read probe.
 * The libraries must return the same integers for the head (checked).
 *
 *   cc -O3 -std=gnu11 -ffp-contract=off -fPIC -shared -pthread eskernel.c esplan.c -o A.so -lm
 *   cc -O2 bench_driver.c -o bench_driver -ldl
 *   ./bench_driver THREADS ROUNDS ISA ./A.so ./B.so ...     (ISA: eskernel.h ES_ISA_*, 1 = avx2)
 *
 * docs/cpu-kernels.md (Weight streaming) has the figures it gave. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
typedef int (*mm_t)(const uint8_t *, int64_t, int64_t, int64_t, int, int, const int8_t *, int64_t, int64_t, int32_t *, int, int);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static uint8_t *big(size_t n) { void *p = aligned_alloc(2 << 20, (n + (2 << 20) - 1) / (2 << 20) * (2 << 20)); madvise(p, n, MADV_HUGEPAGE); return p; }
typedef struct { uint8_t *w; int64_t n, k, kpb; int bits, off; } mat;
int main(int argc, char **argv) {
    if (argc < 5 || argc > 12) { fprintf(stderr, "usage: %s THREADS ROUNDS ISA lib.so...\n", argv[0]); return 2; }
    int th = atoi(argv[1]), rounds = atoi(argv[2]), isa = atoi(argv[3]), nl = argc - 4;
    mm_t f[8];
    for (int i = 0; i < nl; i++) { void *h = dlopen(argv[4 + i], RTLD_NOW | RTLD_LOCAL); if (!h) { printf("%s\n", dlerror()); return 1; } f[i] = (mm_t)dlsym(h, "es_matmul"); }
    const int64_t H = 2560, F = 6912, KVD = 640, L = 30, V = 128256;
    int64_t dims[4][2] = {{H + 2 * KVD, H}, {H, H}, {2 * F, H}, {H, F}};
    mat st[120]; int ns = 0; size_t sb = 0;
    static const uint8_t tern[] = {0, 1, 2};
    for (int l = 0; l < L; l++) for (int j = 0; j < 4; j++) {
        mat m = {0, dims[j][0], dims[j][1], (dims[j][1] + 255) / 256 * 64, 2, 1};
        size_t nb = (size_t)((m.n + 7) / 8 * 8) * m.kpb; m.w = big(nb);
        for (size_t i = 0; i < nb; i++) { uint64_t r = rnd(); m.w[i] = tern[r % 3] | tern[(r >> 8) % 3] << 2 | tern[(r >> 16) % 3] << 4 | tern[(r >> 24) % 3] << 6; }
        st[ns++] = m; sb += nb;
    }
    mat hd = {0, V, H, H, 8, 128}; size_t hb = (size_t)V * H; hd.w = big(hb);
    for (size_t i = 0; i < hb; i += 8) { uint64_t r = rnd(); memcpy(hd.w + i, &r, 8); }
    mat h2 = {0, 384, H, H / 4, 2, 1}; h2.w = st[1].w; mat h8 = {0, 96, H, H, 8, 128}; h8.w = hd.w;
    int8_t *q = malloc(F); for (int i = 0; i < F; i++) q[i] = (int8_t)rnd();
    int32_t *out = malloc(V * 4), *ref = malloc(V * 4);
    for (int i = 0; i < nl; i++) { if (f[i](hd.w, V, V, H, 8, 128, q, 1, H, out, isa, th)) { printf("%s: es_matmul failed (ISA %d not available?)\n", argv[4 + i], isa); return 1; } if (i == 0) memcpy(ref, out, V * 4); else if (memcmp(ref, out, V * 4)) { printf("MISMATCH lib %d\n", i); return 1; } }
    double gs[8][4] = {{0}}, best[8][4] = {{0}};
    const size_t fb = (size_t)1 << 30; uint64_t *fl = (uint64_t *)big(fb); memset(fl, 1, fb); volatile uint64_t sink = 0;
#define FLUSH() do { uint64_t a_ = 0; for (size_t z = 0; z < fb / 8; z += 8) a_ += fl[z]; sink += a_; } while (0)
    for (int r = 0; r < rounds; r++) for (int ii = 0; ii < nl; ii++) {
        int i = (ii + r) % nl; FLUSH(); double t = now();
        for (int m = 0; m < ns; m++) f[i](st[m].w, st[m].n, (st[m].n + 7) / 8 * 8, st[m].kpb, 2, 1, q, 1, st[m].k, out, isa, th);
        double g = sb / (now() - t) / 1e9; gs[i][0] += g / rounds; if (g > best[i][0]) best[i][0] = g;
        FLUSH(); t = now(); f[i](hd.w, V, V, H, 8, 128, q, 1, H, out, isa, th);
        g = hb / (now() - t) / 1e9; gs[i][1] += g / rounds; if (g > best[i][1]) best[i][1] = g;
        mat *hm[2] = {&h2, &h8};
        for (int x = 0; x < 2; x++) { double b = 1e9; for (int k = 0; k < 300; k++) { t = now(); f[i](hm[x]->w, hm[x]->n, hm[x]->n, hm[x]->kpb, hm[x]->bits, hm[x]->off, q, 1, H, out, isa, th); t = now() - t; if (t < b) b = t; }
            g = (double)hm[x]->n * hm[x]->kpb / b / 1e9; gs[i][2 + x] += g / rounds; if (g > best[i][2 + x]) best[i][2 + x] = g; }
    }
    typedef uint64_t (*rp_t)(const uint8_t *, int64_t, int);
    rp_t rp = (rp_t)dlsym(dlopen(argv[4], RTLD_NOW | RTLD_LOCAL), "es_read_probe");
    double pb = 0; for (int r = 0; r < 3; r++) { FLUSH(); double t = now(); sink += rp((const uint8_t *)fl, fb, th); t = now() - t; if (fb / t / 1e9 > pb) pb = fb / t / 1e9; }
    printf("threads %d, stack %.0f MB, head %.0f MB; mean / best GB/s; read probe %.2f GB/s (best of 3)\n", th, sb / 1e6, hb / 1e6, pb);
    for (int i = 0; i < nl; i++) printf("%-28s stack %6.2f / %6.2f  head %6.2f / %6.2f  hot2 %6.2f / %6.2f  hot8 %6.2f / %6.2f\n", argv[4 + i], gs[i][0], best[i][0], gs[i][1], best[i][1], gs[i][2], best[i][2], gs[i][3], best[i][3]);
    return 0;
}
