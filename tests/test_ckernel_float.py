"""The AVX2 forms of the C kernel's float parts (eskernel.c: quant_row_avx2, rms_factor_avx2, the
attention's dot_i8_avx2 / axpy2_i8_avx2; esplan.c: relu2_mul_avx2) give the bits of
edgestream.numerics and of the scalar forms: row lengths around the 8- and 32-element vectors and
the 8192-element stack buffer, tiny / zero / huge / tie-producing rows, and rows with inf, NaN or an
x * g that overflows, which the AVX2 form hands to the scalar code; attention head sizes around the
16-lane step, odd key counts (the last key of a pair-wise A * v alone), the 256-key block, extreme
cache values. The scalar forms run when the library's ISA setting is scalar (es_swap_isa), as in a
plan built for the scalar path; the fused plan with ReLU² on both forms is in test_ckernel_fused.py."""

from __future__ import annotations

import numpy as np
import pytest
from ckernel_required import require_c_kernel
from hypothesis import given, settings
from hypothesis import strategies as st

from edgestream import numerics as nx
from edgestream.host.kernels import c_kernel as ck

require_c_kernel()

FORMS = ["scalar"] + (["avx2"] if "avx2" in ck.available_isas() else [])
KS = [1, 7, 8, 9, 31, 32, 33, 63, 100, 2560, 6912, 8191, 8192, 8193]


def _form(name: str):
    """Context: the float parts in one form (the library's ISA setting), restored afterwards."""
    lib = ck.load_library()

    class _Ctx:
        def __enter__(self):
            self.prev = lib.es_swap_isa(ck.ISA_IDS[name])
            assert lib.es_get_isa() == ck.ISA_IDS[name]

        def __exit__(self, *exc):
            lib.es_swap_isa(self.prev)

    return _Ctx()


def _rows(rng, k: int) -> np.ndarray:
    x = rng.standard_normal((7, k)).astype(np.float32)
    x[0] *= np.float32(1e-30)  # tiny / subnormal range
    x[1] = 0.0  # all-zero row
    x[2] *= np.float32(1e30)
    x[3] = np.float32(0.5) * np.arange(k, dtype=np.float32)  # exact .5 ties
    x[4] = np.float32(-0.0)
    x[5, ::3] = -x[5, ::3] * np.float32(1e4)  # one large magnitude far from the rest
    return x


def _bits(pair):
    return [a.view(np.uint8).tobytes() for a in pair]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("k", KS)
def test_matches_numerics(form: str, k: int) -> None:
    rng = np.random.default_rng(k)
    x = _rows(rng, k)
    g = (rng.standard_normal(k) * 0.3 + 1).astype(np.float32)
    kern = ck.CKernel()
    with _form(form):
        cases = [
            (kern.quant_act(x), nx.quant_act(x)),
            (kern.norm_quant(x, g, 1e-5), nx.norm_quant(x, g, 1e-5)),
            (kern.norm_quant(x, None, None), nx.norm_quant(x, None, None)),
            (kern.norm_quant(x[5:6], g, 1e-6), nx.norm_quant(x[5:6], g, 1e-6)),
        ]
    for got, ref in cases:
        assert _bits(got) == _bits(ref), f"{form} k={k}"


@pytest.mark.parametrize("k", [9, 64, 2561])
def test_non_finite_rows_same_in_both_forms(k: int) -> None:
    """inf, -inf and NaN elements and an x * g that overflows to inf: the AVX2 form detects them and
    takes the scalar code, so both forms return the same bytes (numpy's int8 cast of NaN is not a
    contract value, so the scalar C form is the reference here)."""
    rng = np.random.default_rng(k)
    x = rng.standard_normal((5, k)).astype(np.float32)
    x[0, k // 2] = np.inf
    x[1, -1] = -np.inf
    x[2, 0] = np.nan
    x[3, 1] = np.float32(3e38)  # finite, but 3e38 * g overflows
    x[4, k - 1] = np.nan  # in the scalar tail of the vector loops
    g = np.full(k, 2.0, np.float32)
    kern = ck.CKernel()
    out = {}
    for form in FORMS:
        with _form(form):
            out[form] = [_bits(kern.quant_act(x)), _bits(kern.norm_quant(x, g, 1e-5)),
                         _bits(kern.norm_quant(x, None, None))]
    assert all(v == out["scalar"] for v in out.values())


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 700), st.floats(-30, 30), st.integers(0, 2**32 - 1))
def test_forms_property(rows: int, k: int, log_scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, k)) * np.float32(2.0**log_scale)).astype(np.float32)
    g = rng.standard_normal(k).astype(np.float32)
    ref = _bits(nx.norm_quant(x, g, 1e-5))
    kern = ck.CKernel()
    for form in FORMS:
        with _form(form):
            assert _bits(kern.norm_quant(x, g, 1e-5)) == ref, form
            assert _bits(kern.quant_act(x)) == _bits(nx.quant_act(x)), form


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("t,s,d", [(1, 1, 8), (1, 7, 15), (2, 96, 128), (1, 257, 16), (3, 300, 33), (1, 513, 64)])
def test_attention_matches_numerics(form: str, t: int, s: int, d: int) -> None:
    rng = np.random.default_rng(s * 100 + d)
    qq, dq = nx.quant_heads(rng.standard_normal((t, d)).astype(np.float32) * 3)
    kq = rng.integers(-128, 128, (s, d)).astype(np.int8)
    vq = rng.integers(-128, 128, (s, d)).astype(np.int8)
    kq[0], vq[0], vq[-1] = -128, -128, 127  # extreme cache rows: |A v| at its bound
    dk = (rng.random(s) * 0.05).astype(np.float32)
    dv = (rng.random(s) * 0.05).astype(np.float32)
    dv[0] = dv.max() * 2  # the first key's a = E * dv is the row's max: A = 32767 there
    pos = np.arange(s - t, s)
    scale = np.float32(1 / np.sqrt(d))
    ref = nx.attention(qq, dq, kq, dk, vq, dv, pos, scale)
    with _form(form):
        got = ck.CKernel().attention(qq, dq, kq, dk, vq, dv, pos, scale)
    np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32), err_msg=f"{form} t={t} s={s} d={d}")
