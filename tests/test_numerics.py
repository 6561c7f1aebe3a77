"""Properties of the numerics contract's building blocks against float64 references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgestream import numerics as nx

F32 = np.float32
rows = arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 300)),
              elements=st.floats(-1e4, 1e4, width=32, allow_subnormal=False))


@given(rows)
def test_quant_act_matches_bitnet_quantizer(x):
    """Same as BitNet b1.58's activation_quant: scale = 127 / max(|x|, 1e-5), round half even."""
    q, m = nx.quant_act(x)
    scale = F32(127) / np.maximum(np.abs(x).max(-1), F32(1e-5))
    ref = np.clip(np.round(x * scale[:, None]), -128, 127)
    np.testing.assert_array_equal(q, ref)
    assert np.abs(q).max() <= 127


@given(rows)
def test_rms_factor_close_to_float64(x):
    r = nx.rms_factor(x, 1e-5)
    ref = 1 / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1) + 1e-5)
    # 16-bit block fixed point: the sum of squares loses at most 2**-15 relative per element
    np.testing.assert_allclose(r, ref, rtol=2e-4)


def test_rms_factor_is_order_independent():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 999)) * 10).astype(F32)
    perm = rng.permutation(999)
    np.testing.assert_array_equal(nx.rms_factor(x, 1e-6), nx.rms_factor(x[:, perm], 1e-6))


@given(rows, st.data())
def test_norm_quant_reconstructs_rmsnorm(x, data):
    g = data.draw(arrays(np.float32, x.shape[-1:], elements=st.floats(0.125, 2, width=32)))
    q, s = nx.norm_quant(x, g, 1e-5)
    x64 = x.astype(np.float64)
    r = 1 / np.sqrt(np.mean(x64**2, -1, keepdims=True) + 1e-5)
    ref = x64 * r * g
    # the INT8 grid step: absmax of x*g, floored at 1e-5 as BitNet's quantizer does, times 1/rms
    step = np.maximum(np.abs(x64 * g).max(-1, keepdims=True), 1e-5) * r / 127
    # one rounding to the INT8 grid: within half a step (plus the rms and float32 error)
    assert np.all(np.abs(q * s[:, None].astype(np.float64) - ref) <= 0.5 * step * 1.01 + 1e-6)


def test_exp_neg_accuracy_and_range():
    t = -np.linspace(0, 44, 100001).astype(F32)  # 2**-64 = e**-44.36: below that, 0
    got = nx.exp_neg(t).astype(np.float64)
    ref = np.exp(t.astype(np.float64))
    # linear interpolation of 2**x between table points: (ln2/256)**2 / 8 = 0.9e-6 relative, float32
    # roundings of p (2 * 2**-24), the rounding of z = t * log2(e) (|z| * 2**-24 * ln 2 relative) and
    # the float32 constant log2(e) itself (|t| * |LOG2E - log2 e| * ln 2)
    at = np.abs(t.astype(np.float64))
    c_err = abs(np.float64(nx.LOG2E) - 1 / np.log(2))
    bound = 0.92e-6 + 2 * 2**-24 + (at * 1.4427 * 2**-24 + at * c_err) * np.log(2) * 1.01
    assert np.all(np.abs(got / ref - 1) <= bound)
    assert nx.exp_neg(np.array([0], F32))[0] == 1
    assert nx.exp2_neg(np.array([-64.5, -1000], F32)).tolist() == [0.0, 0.0]


def test_silu_close_to_float():
    g = np.linspace(-30, 30, 20001).astype(F32)
    u = np.ones_like(g)
    ref = g.astype(np.float64) / (1 + np.exp(-g.astype(np.float64)))
    np.testing.assert_allclose(nx.silu_mul(g, u), ref, rtol=1e-5, atol=1e-30)


@settings(max_examples=30)
@given(st.integers(1, 6), st.integers(1, 12), st.sampled_from([8, 16, 64]), st.integers(0, 2**31 - 1))
def test_attention_close_to_float_attention(t, extra, d, seed):
    rng = np.random.default_rng(seed)
    s = t + extra
    q = rng.standard_normal((t, d)).astype(F32)
    k = rng.standard_normal((s, d)).astype(F32) * 2
    v = rng.standard_normal((s, d)).astype(F32)
    pos = np.arange(extra, s)
    qq, dq = nx.quant_heads(q)
    kq, dk = nx.quant_heads(k)
    vq, dv = nx.quant_heads(v)
    scale = F32(1 / np.sqrt(d))
    o = nx.attention(qq, dq, kq, dk, vq, dv, pos, scale)
    sc = q.astype(np.float64) @ k.T.astype(np.float64) * scale
    sc[np.arange(s)[None, :] > pos[:, None]] = -np.inf
    p = np.exp(sc - sc.max(1, keepdims=True))
    ref = (p / p.sum(1, keepdims=True)) @ v
    # INT8 Q/K/V (0.4% relative each) and 15-bit weights: a few percent of |v|'s scale at most
    assert np.max(np.abs(o - ref)) < 0.05 * np.abs(v).max()


def test_attention_is_batch_invariant():
    """Per-head batching (as the executor does) gives the same bits as one head at a time."""
    rng = np.random.default_rng(1)
    h, t, s, d = 3, 2, 7, 16
    mk = lambda *sh: rng.integers(-127, 128, sh).astype(np.int8)  # noqa: E731
    qq, kq, vq = mk(h, t, d), mk(h, s, d), mk(h, s, d)
    dq, dk, dv = (rng.random((h, n)).astype(F32) for n in (t, s, s))
    pos = np.array([5, 6])
    full = nx.attention(qq, dq, kq, dk, vq, dv, pos, F32(0.25))
    for i in range(h):
        np.testing.assert_array_equal(full[i], nx.attention(qq[i], dq[i], kq[i], dk[i], vq[i], dv[i], pos, F32(0.25)))
