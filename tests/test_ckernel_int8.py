"""The 8-bit-code GEMV of the AVX2 path (eskernel.c, mm_rows8_avx2: INT5..INT8 weights such as the LM
head, T < 4 tokens; nibble products summed in int16 and widened every 4 blocks, 4 rows per tile,
in-loop prefetch) equals dense_matmul bit for bit where its loops change course: K around the
64-weight block and the 256-weight widening group, row counts around the 4-row tile, the 8-row
padding and the prefetch distance, token counts 1-3 (and 4+, which the plane loop takes); and at
the extremes of its int16 sums (the range argument in eskernel.c). Every ISA path this CPU runs is
checked, and on AVX2 the plane loop ('planes' and 'planes8' variants) as well."""

from __future__ import annotations

import numpy as np
import pytest
from ckernel_required import require_c_kernel

from edgestream.host.kernels import LinearWeights
from edgestream.host.kernels import c_kernel as ck
from edgestream.tlmm import dense_matmul

require_c_kernel()

ISAS = ck.available_isas()
PATHS = [(isa, "default") for isa in ISAS] + ([("avx2", "planes"), ("avx2", "planes8")] if "avx2" in ISAS else [])
KS = [1, 63, 64, 65, 255, 256, 257, 319, 320, 511, 512, 513, 1023, 1024, 1025, 2560]
NS = [1, 3, 4, 5, 8, 9, 12, 13, 17, 21, 29]
TS = [1, 2, 3, 1, 4, 5]


@pytest.fixture(params=PATHS, ids=[f"{i}-{v}" for i, v in PATHS])
def kern(request):
    isa, variant = request.param
    prev = ck.set_variant(variant)
    yield ck.CKernel(isa, threads=1)
    ck.set_variant(prev)


def _w(rng, bits: int, n: int, k: int) -> np.ndarray:
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(n, k)).astype(np.int8)


@pytest.mark.parametrize("bits", [8, 5])
def test_edge_shapes(kern, bits: int) -> None:
    rng = np.random.default_rng(hash((kern.isa, bits)) % 2**32)
    for i, k in enumerate(KS):
        for j, n in enumerate(NS):
            t = TS[(i + j) % len(TS)]
            w = _w(rng, bits, n, k)
            q = rng.integers(-128, 128, size=(t, k)).astype(np.int8)
            got = kern.matmul(q, kern.prepare(LinearWeights("w", "int", bits, w)))
            np.testing.assert_array_equal(got, dense_matmul(q, w), err_msg=f"{kern.isa} int{bits} n={n} k={k} t={t}")


@pytest.mark.parametrize("k", [256, 4099, 65535])
def test_max_magnitude(kern, k: int) -> None:
    """Codes 255 (w = +127: both nibbles 15, the -3840 maddubs pairs of the range argument with q =
    -128) and 0 (w = -128), alternating and mixed-nibble codes, against all -128 / all +127 /
    alternating activations, 1-3 tokens; K = 65535, the largest K prepare accepts, takes |dot(code,
    q)| to 255 * 128 * 65535, just under 2**31."""
    alt_w = np.resize(np.array([127, -128], np.int8), k)
    nib = np.resize(np.array([127, -113, 15, -16], np.int8), k)  # codes 0xff, 0x0f, 0x8f, 0x70
    w = np.stack([np.full(k, 127, np.int8), np.full(k, -128, np.int8), alt_w, nib, np.zeros(k, np.int8)] * 2)
    alt_q = np.resize(np.array([-128, 127], np.int8), k)
    q = np.stack([np.full(k, -128, np.int8), np.full(k, 127, np.int8), alt_q])
    pw = kern.prepare(LinearWeights("w", "int", 8, w))
    ref = dense_matmul(q, w)
    assert np.abs(ref).max() >= 127 * 128 * k  # the test reaches the extreme it is about
    for t in (1, 2, 3):
        np.testing.assert_array_equal(kern.matmul(q[:t], pw), ref[:t], err_msg=f"{kern.isa} k={k} t={t}")
    np.testing.assert_array_equal(kern.matmul(q[::-1].copy(), pw), ref[::-1])


@pytest.mark.parametrize("threads", [2, 3])
def test_thread_chunks(threads: int) -> None:
    """Row chunks of several threads end where the GEMV's prefetch of the next rows must stop."""
    rng = np.random.default_rng(threads)
    w = _w(rng, 8, 1001, 777)
    kern = ck.CKernel(threads=threads)
    pw = kern.prepare(LinearWeights("w", "int", 8, w))
    for t in (1, 3, 5):
        q = rng.integers(-128, 128, size=(t, 777)).astype(np.int8)
        np.testing.assert_array_equal(kern.matmul(q, pw), dense_matmul(q, w))
