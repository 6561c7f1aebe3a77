"""The 2-bit (ternary, INT2) GEMV/GEMM of the AVX2 path (eskernel.c, mm_rows2_avx2: int16 sums widened
every two blocks, planes selected by masks at scale 1 and 4) equals dense_matmul bit for bit on the
shapes where its loops change course: K around the 256-weight block and the 512-weight widening
group, row counts around the 2-row GEMV pair, the 8-row padding and the prefetch distance, token
counts around the 4-token GEMM tile; and on the activations and codes that drive the int16 sums
furthest (the overflow proof in eskernel.c). Every ISA path this CPU runs is checked, and on AVX2 the
version-6 plane loop ('planes' variant) as well."""

from __future__ import annotations

import numpy as np
import pytest
from ckernel_required import require_c_kernel

from edgestream.host.kernels import LinearWeights
from edgestream.host.kernels import c_kernel as ck
from edgestream.tlmm import dense_matmul

require_c_kernel()

ISAS = ck.available_isas()
PATHS = [(isa, "default") for isa in ISAS] + ([("avx2", "planes")] if "avx2" in ISAS else [])
KS = [1, 63, 64, 255, 256, 257, 511, 512, 513, 767, 768, 769, 1023, 1024, 1025, 1280, 2560]
NS = [1, 2, 3, 9, 10, 11, 19]
TS = [1, 3, 4, 5, 8, 9]
KINDS = [("ternary", 2), ("int", 2), ("int", 1)]


@pytest.fixture(params=PATHS, ids=[f"{i}-{v}" for i, v in PATHS])
def kern(request):
    isa, variant = request.param
    prev = ck.set_variant(variant)
    yield ck.CKernel(isa, threads=1)
    ck.set_variant(prev)


def _w(rng, kind: str, bits: int, n: int, k: int) -> np.ndarray:
    lo, hi = (-1, 1) if kind == "ternary" else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return rng.integers(lo, hi + 1, size=(n, k)).astype(np.int8)


@pytest.mark.parametrize("kind,bits", KINDS)
def test_edge_shapes(kern, kind: str, bits: int) -> None:
    rng = np.random.default_rng(hash((kern.isa, kind, bits)) % 2**32)
    for i, k in enumerate(KS):
        for j, n in enumerate(NS):
            t = TS[(i + j) % len(TS)]
            w = _w(rng, kind, bits, n, k)
            q = rng.integers(-128, 128, size=(t, k)).astype(np.int8)
            got = kern.matmul(q, kern.prepare(LinearWeights("w", kind, bits, w)))
            np.testing.assert_array_equal(got, dense_matmul(q, w), err_msg=f"{kern.isa} {kind}{bits} n={n} k={k} t={t}")


@pytest.mark.parametrize("k", [512, 4099, 65535])
@pytest.mark.parametrize("kind,bits", [("ternary", 2), ("int", 2)])
def test_max_magnitude(kern, kind: str, bits: int, k: int) -> None:
    """The largest codes (ternary +1 = code 2, INT2 +1 = code 3; code 3 * 4 * -128 makes the
    -3072 maddubs pairs of the overflow bound) against all -128 / all +127 / alternating
    activations, and the smallest codes, for GEMV (T = 3) and GEMM (T = 6) tiles; K = 65535 is the
    largest K prepare accepts (the int32 bound on 4 * dot)."""
    lo, hi = (-1, 1) if kind == "ternary" else (-2, 1)
    alt_w = np.resize(np.array([hi, lo], np.int8), k)
    w = np.stack([np.full(k, hi, np.int8), np.full(k, lo, np.int8), alt_w, np.zeros(k, np.int8)] * 3)
    alt_q = np.resize(np.array([-128, 127], np.int8), k)
    q = np.stack([np.full(k, -128, np.int8), np.full(k, 127, np.int8), alt_q,
                  -alt_q.astype(np.int16).clip(-128, 127).astype(np.int8), np.full(k, -128, np.int8),
                  np.zeros(k, np.int8)])  # fmt: skip
    pw = kern.prepare(LinearWeights("w", kind, bits, w))
    ref = dense_matmul(q, w)
    assert np.abs(ref).max() >= 127 * k  # the test reaches the extreme it is about
    np.testing.assert_array_equal(kern.matmul(q, pw), ref)
    np.testing.assert_array_equal(kern.matmul(q[:3], pw), ref[:3])


@pytest.mark.parametrize("threads", [2, 3])
def test_thread_chunks(threads: int) -> None:
    """Row chunks of several threads end where the GEMV's prefetch of the next rows must stop."""
    rng = np.random.default_rng(threads)
    w = _w(rng, "ternary", 2, 1001, 1537)
    for t in (1, 2, 7):
        q = rng.integers(-128, 128, size=(t, 1537)).astype(np.int8)
        kern = ck.CKernel(threads=threads)
        np.testing.assert_array_equal(
            kern.matmul(q, kern.prepare(LinearWeights("w", "ternary", 2, w))), dense_matmul(q, w)
        )


def test_variant_switch() -> None:
    with pytest.raises(ValueError, match="variant"):
        ck.set_variant("fast")
    assert ck.set_variant("planes") == "default"
    assert ck.set_variant("default") == "planes"
