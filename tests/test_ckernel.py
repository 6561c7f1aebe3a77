"""The compiled C kernel equals the numpy reference bit for bit, on every ISA path this machine can
run (scalar, AVX2, AVX-512 with and without VNNI; NEON is proven under qemu in
test_ckernel_aarch64.py), on odd shapes, extreme values and with any thread count."""

from __future__ import annotations

import numpy as np
import pytest
from ckernel_required import require_c_kernel
from hypothesis import given, settings
from hypothesis import strategies as st

from edgestream import numerics as nx
from edgestream.host.kernels import LinearWeights, get_kernel
from edgestream.host.kernels import c_kernel as ck
from edgestream.host.kernels.numpy_kernel import NumpyKernel
from edgestream.tlmm import dense_matmul

require_c_kernel()

ISAS = ck.available_isas()
KINDS = [("ternary", 2), ("int", 8), ("int", 4), ("int", 2), ("int", 3), ("int", 1)]
SHAPES = [  # (n, k, t)
    (1, 1, 1),
    (3, 5, 2),
    (8, 256, 1),
    (9, 257, 4),
    (17, 511, 5),
    (31, 1000, 1),
    (64, 1536, 3),
    (13, 2049, 8),
    (5, 4099, 9),
]


def _weights(rng, kind: str, bits: int, n: int, k: int) -> np.ndarray:
    if kind == "ternary":
        return rng.integers(-1, 2, size=(n, k)).astype(np.int8)
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(n, k)).astype(np.int8)


@pytest.fixture(scope="module", params=ISAS)
def kern(request) -> ck.CKernel:
    return ck.CKernel(request.param)


@pytest.mark.parametrize("kind,bits", KINDS)
def test_matmul_matches_reference(kern: ck.CKernel, kind: str, bits: int) -> None:
    rng = np.random.default_rng(hash((kern.isa, kind, bits)) % 2**32)
    for n, k, t in SHAPES:
        w = _weights(rng, kind, bits, n, k)
        q = rng.integers(-128, 128, size=(t, k)).astype(np.int8)
        got = kern.matmul(q, kern.prepare(LinearWeights("w", kind, bits, w)))
        assert got.dtype == np.int32 and got.shape == (t, n)
        np.testing.assert_array_equal(
            got, dense_matmul(q, w), err_msg=f"{kern.isa} {kind}{bits} {n}x{k} T={t}"
        )


@pytest.mark.parametrize("kind,bits", [("ternary", 2), ("int", 8), ("int", 4), ("int", 2)])
def test_matmul_extremes(kern: ck.CKernel, kind: str, bits: int) -> None:
    """Largest |acc| the contract allows: all activations -128 against all-extreme weights."""
    k = 4099
    lo, hi = (-1, 1) if kind == "ternary" else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    w = np.array([[lo] * k, [hi] * k, [0] * k] + [[lo, hi] * (k // 2) + [lo]], dtype=np.int8)
    q = np.array([[-128] * k, [127] * k, [-128, 127] * (k // 2) + [-128]], dtype=np.int8)
    got = kern.matmul(q, kern.prepare(LinearWeights("w", kind, bits, w)))
    np.testing.assert_array_equal(got, dense_matmul(q, w))


def test_matmul_prefill_tile(kern: ck.CKernel) -> None:
    """64-token GEMM (the prefill tiles) and a ragged token count, equal to the numpy kernel."""
    rng = np.random.default_rng(3)
    w = _weights(rng, "ternary", 2, 203, 1536)
    lw = LinearWeights("w", "ternary", 2, w)
    nk = NumpyKernel()
    for t in (64, 67):
        q = rng.integers(-128, 128, size=(t, 1536)).astype(np.int8)
        np.testing.assert_array_equal(kern.matmul(q, kern.prepare(lw)), nk.matmul(q, nk.prepare(lw)))


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_thread_counts_agree(threads: int) -> None:
    rng = np.random.default_rng(threads)
    w = _weights(rng, "ternary", 2, 333, 700)
    q = rng.integers(-128, 128, size=(6, 700)).astype(np.int8)
    kern = ck.CKernel(threads=threads)
    np.testing.assert_array_equal(
        kern.matmul(q, kern.prepare(LinearWeights("w", "ternary", 2, w))), dense_matmul(q, w)
    )


def test_prepare_rejects_out_of_range() -> None:
    kern = ck.CKernel()
    with pytest.raises(ValueError, match="out of range"):
        kern.prepare(LinearWeights("blk.0.q", "ternary", 2, np.array([[2, 0]], np.int8)))
    with pytest.raises(ValueError, match="out of range"):
        kern.prepare(LinearWeights("blk.0.q", "int", 4, np.array([[8, 0]], np.int8)))
    with pytest.raises(ValueError, match=r"expected \[T, 2\]"):
        kern.matmul(
            np.zeros((1, 3), np.int8), kern.prepare(LinearWeights("x", "int", 8, np.zeros((1, 2), np.int8)))
        )


# ------------------------------------------------------------------ dispatch and selection
def test_env_forces_each_isa(monkeypatch) -> None:
    for isa in ISAS:
        monkeypatch.setenv("EDGESTREAM_ISA", isa)
        k = get_kernel("c")
        assert k.isa == isa and k.name == f"c-{isa}" and isa in k.description
    if "avx512vnni" in ISAS:
        monkeypatch.setenv("EDGESTREAM_ISA", "avx512")
        assert get_kernel("c").isa == "avx512vnni"


def test_env_rejects_unavailable_isa(monkeypatch) -> None:
    other = "avx2" if "neon" in ISAS else "neon"
    monkeypatch.setenv("EDGESTREAM_ISA", other)
    with pytest.raises(ck.CKernelUnavailable, match=other):
        get_kernel("c")
    monkeypatch.setenv("EDGESTREAM_ISA", "sse9")
    with pytest.raises(ValueError, match="EDGESTREAM_ISA"):
        get_kernel("c")


def test_auto_picks_c_and_falls_back_to_numpy(monkeypatch) -> None:
    monkeypatch.delenv("EDGESTREAM_ISA", raising=False)
    monkeypatch.delenv("EDGESTREAM_KERNEL", raising=False)
    k = get_kernel("auto")
    assert isinstance(k, ck.CKernel) and k.isa == ISAS[-1]  # the best path is the last one listed
    assert get_kernel("numpy").name == "numpy"
    monkeypatch.setattr(ck, "_LIB", None)
    monkeypatch.setattr(ck, "library_path", lambda: None)
    assert get_kernel("auto").name == "numpy"
    with pytest.raises(ck.CKernelUnavailable, match="not built"):
        get_kernel("c")


# ------------------------------------------------------------------ numerics in C
def _rows(rng, rows: int, k: int) -> np.ndarray:
    x = rng.standard_normal((rows, k)).astype(np.float32)
    x[0] *= np.float32(1e-30)  # tiny / subnormal range
    if rows > 1:
        x[1] = 0.0  # all-zero row (absmax floor, e = 0)
    if rows > 2:
        x[2] *= np.float32(1e30)
    if rows > 3:
        x[3] = np.float32(0.5) * np.arange(k, dtype=np.float32)  # exact .5 ties before scaling
    return x


@pytest.mark.parametrize("k", [1, 7, 64, 1536, 2561])
def test_quant_and_norm_quant(k: int) -> None:
    rng = np.random.default_rng(k)
    kern = ck.CKernel()
    x = _rows(rng, 6, k)
    g = (rng.standard_normal(k) * 0.3 + 1).astype(np.float32)
    for got, ref in [
        (kern.quant_act(x), nx.quant_act(x)),
        (kern.norm_quant(x, g, 1e-5), nx.norm_quant(x, g, 1e-5)),
        (kern.norm_quant(x, g, 1e-6), nx.norm_quant(x, g, 1e-6)),
        (kern.norm_quant(x, None, None), nx.norm_quant(x, None, None)),
        (kern.norm_quant(x[:1], g, 1e-5), nx.norm_quant(x[:1], g, 1e-5)),
    ]:
        for a, b in zip(got, ref, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))  # bitwise


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 5),
    st.integers(1, 300),
    st.floats(-30, 30),
    st.integers(0, 2**32 - 1),
)
def test_norm_quant_property(rows: int, k: int, log_scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, k)) * np.float32(2.0**log_scale)).astype(np.float32)
    g = rng.standard_normal(k).astype(np.float32)
    kern = ck.CKernel()
    for a, b in zip(kern.norm_quant(x, g, 1e-5), nx.norm_quant(x, g, 1e-5), strict=True):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def _attn_case(rng, t: int, s: int, d: int, spread: float):
    qq, dq = nx.quant_heads((rng.standard_normal((t, d)) * spread).astype(np.float32))
    kq, dk = nx.quant_heads((rng.standard_normal((s, d)) * spread).astype(np.float32))
    vq, dv = nx.quant_heads(rng.standard_normal((s, d)).astype(np.float32))
    return qq, dq, kq, dk, vq, dv


@pytest.mark.parametrize("t,s,d", [(1, 1, 8), (1, 100, 64), (3, 3, 128), (16, 40, 64), (9, 200, 80)])
@pytest.mark.parametrize("spread", [0.1, 3.0, 100.0])
def test_attention_matches_reference(t: int, s: int, d: int, spread: float) -> None:
    rng = np.random.default_rng(t * 1000 + s)
    case = _attn_case(rng, t, s, d, spread)
    scale = np.float32(1 / np.sqrt(d))
    kern = ck.CKernel()
    for pos in (np.arange(s - t, s), np.minimum(np.arange(t) * 3, s - 1), np.full(t, s - 1)):
        got = kern.attention(*case, pos, scale)
        ref = nx.attention(*case, pos, scale)
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 50), st.sampled_from([4, 16, 64]), st.integers(0, 2**32 - 1))
def test_attention_property(t: int, s: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    case = _attn_case(rng, t, s, d, float(rng.uniform(0.01, 50)))
    pos = rng.integers(0, s, size=t)
    scale = np.float32(1 / np.sqrt(d))
    got = ck.CKernel().attention(*case, pos, scale)
    np.testing.assert_array_equal(got.view(np.uint32), nx.attention(*case, pos, scale).view(np.uint32))


@pytest.mark.parametrize("t,h,kvh,s,cap,d", [(1, 16, 16, 37, 64, 96), (5, 8, 2, 9, 9, 64), (3, 4, 1, 130, 200, 16)])
def test_attention_heads_matches_reference_per_head(t, h, kvh, s, cap, d) -> None:
    """All heads of a layer in one call over the whole KV cache (GQA, positions beyond s unused) equal
    numerics.attention head by head."""
    rng = np.random.default_rng(h * 100 + s)
    qq, dq = nx.quant_heads(rng.standard_normal((t, h, d)).astype(np.float32) * 3)
    kq = rng.integers(-128, 128, (kvh, cap, d)).astype(np.int8)
    vq = rng.integers(-128, 128, (kvh, cap, d)).astype(np.int8)
    dk = (rng.random((kvh, cap)) * 0.05).astype(np.float32)
    dv = (rng.random((kvh, cap)) * 0.05).astype(np.float32)
    pos = np.arange(s - t, s)
    scale = np.float32(1 / np.sqrt(d))
    got = ck.CKernel().attention_heads(qq, dq, kq, dk, vq, dv, pos, s, scale)
    for i in range(h):
        kv = i // (h // kvh)
        ref = nx.attention(qq[:, i], dq[:, i], kq[kv, :s], dk[kv, :s], vq[kv, :s], dv[kv, :s], pos, scale)
        np.testing.assert_array_equal(got[:, i].view(np.uint32), ref.view(np.uint32))


def test_attention_scores_a_rounding_step_below_the_max() -> None:
    """Scores one float32 step below the row's max give exp2_neg arguments in [-2**-25, 0), where
    z - floor(z) rounds to 1.0: the table index must carry into the exponent (numerics.exp2_neg),
    never read past the 256-entry table (the C kernel once did)."""
    d = 8
    qq = np.ones((1, d), np.int8)
    kq = np.ones((3, d), np.int8)
    vq = np.arange(3 * d, dtype=np.int8).reshape(3, d)
    dk = np.array([1.0, np.nextafter(np.float32(1), np.float32(0)), 0.5], np.float32)
    dq = np.array([np.float32(0.25) / d], np.float32)  # s_0 = 0.25 exactly, s_1 one step below
    dv = np.ones(3, np.float32)
    scale = np.float32(1)
    pos = np.array([2])
    got = ck.CKernel().attention(qq, dq, kq, dk, vq, dv, pos, scale)
    ref = nx.attention(qq, dq, kq, dk, vq, dv, pos, scale)
    np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
    assert nx.exp2_neg(np.array([-1e-10, -(2.0**-25)], np.float32)).tolist() == [1.0, 1.0]


def test_attention_non_finite_scales_do_not_crash() -> None:
    """A valid file with extreme weights can reach attention with infinite scales (inf - inf scores
    are NaN): exp_neg propagates NaN instead of indexing its table with it (the C kernel segfaulted,
    the numpy reference raised IndexError). The contract is bit-exact for finite inputs only (C and
    numpy order NaN through max differently), so the rows that see the infinite key are only
    required not to crash; the rows that do not see it stay bit-identical."""
    rng = np.random.default_rng(5)
    qq, dq, kq, dk, vq, dv = _attn_case(rng, 3, 6, 16, 1.0)
    dk = dk.copy()
    dk[2] = np.float32(np.inf)
    pos = np.array([1, 4, 5])
    scale = np.float32(0.25)
    ref = nx.attention(qq, dq, kq, dk, vq, dv, pos, scale)
    got = ck.CKernel().attention(qq, dq, kq, dk, vq, dv, pos, scale)
    assert got.shape == ref.shape == (3, 16) and np.isnan(ref[1:]).any()
    np.testing.assert_array_equal(got[0].view(np.uint32), ref[0].view(np.uint32))
