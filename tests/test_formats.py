"""Round trips of every weight encoding, and TLMM (table build + lookups, bit-serial) equal to the
dense integer matmul."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgestream import tlmm
from edgestream.formats import intweights as iw
from edgestream.formats import ternary as tf

dims = st.integers(1, 40)


@st.composite
def trits(draw, k_multiple: int = 1):
    n = draw(dims)
    k = draw(dims) * k_multiple
    return draw(arrays(np.int8, (n, k), elements=st.integers(-1, 1)))


@st.composite
def int_weights(draw):
    bits = draw(st.sampled_from(iw.SUPPORTED_BITS))
    lo, hi = iw.qrange(bits)
    return bits, draw(arrays(np.int8, (draw(dims), draw(dims)), elements=st.integers(lo, hi)))


acts = st.integers(-128, 127)


@given(trits())
def test_i2_roundtrip(t):
    p = tf.pack_i2(t)
    assert p.dtype == np.uint8 and p.shape == (t.shape[0], -(-t.shape[1] // 4))
    np.testing.assert_array_equal(tf.unpack_i2(p, t.shape[1]), t)


@given(trits(k_multiple=256), st.floats(1e-3, 10))
@settings(max_examples=20)
def test_tq2_0_roundtrip_and_matches_gguf(t, scale):
    import gguf
    from gguf.quants import dequantize

    p = tf.pack_tq2_0(t, scale)
    assert p.shape == (t.shape[0], t.shape[1] // 256 * 66)
    back, d = tf.unpack_tq2_0(p)
    np.testing.assert_array_equal(back, t)
    np.testing.assert_array_equal(d, np.float32(np.float16(scale)))
    # llama.cpp's own layout, as the gguf package decodes it
    ref = dequantize(p, gguf.GGMLQuantizationType.TQ2_0)
    np.testing.assert_array_equal(ref, t.astype(np.float32) * np.float32(np.float16(scale)))


@given(trits())
def test_base3_is_1_6_bpw_and_roundtrips(t):
    p = tf.pack_base3(t)
    assert p.dtype == np.uint8 and p.shape == (t.shape[0], -(-t.shape[1] // 5))
    assert p.max(initial=0) <= 242
    np.testing.assert_array_equal(tf.unpack_base3(p, t.shape[1]), t)


@given(trits(), st.integers(1, 8))
def test_gindex_roundtrip_and_dense_bits(t, g):
    codes = tf.pack_gindex(t, g)
    assert codes.max(initial=0) < 3**g
    np.testing.assert_array_equal(tf.unpack_gindex(codes, g, t.shape[1]), t)
    bits = tf.gindex_bits(g)
    stream = tf.pack_codes(codes, bits)
    assert stream.shape[1] == -(-codes.shape[1] * bits // 8)
    np.testing.assert_array_equal(tf.unpack_codes(stream, bits, codes.shape[1]), codes)


@given(trits())
def test_hf_bitnet_roundtrip_matches_transformers_layout(t):
    p = tf.pack_hf_bitnet(t)
    assert p.shape == (-(-t.shape[0] // 4), t.shape[1])
    np.testing.assert_array_equal(tf.unpack_hf_bitnet(p, t.shape[0]), t)


def test_hf_bitnet_against_transformers_packer():
    torch = __import__("pytest").importorskip("torch")
    from transformers.integrations.bitnet import pack_weights, unpack_weights

    rng = np.random.default_rng(0)
    t = rng.integers(-1, 2, (64, 48)).astype(np.int8)
    ours = tf.pack_hf_bitnet(t)
    theirs = pack_weights(torch.tensor(t, dtype=torch.float32)).numpy()
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(unpack_weights.__wrapped__(torch.tensor(ours), torch.float32).numpy()
                                  if hasattr(unpack_weights, "__wrapped__")
                                  else unpack_weights(torch.tensor(ours), torch.float32).numpy(), t)


@given(int_weights())
def test_int_pack_roundtrip(bw):
    bits, q = bw
    p = iw.pack_int(q, bits)
    assert p.shape == (q.shape[0], -(-q.shape[1] * bits // 8))
    np.testing.assert_array_equal(iw.unpack_int(p, bits, q.shape[1]), q)


@given(arrays(np.float32, st.tuples(dims, dims), elements=st.floats(-100, 100, width=32)),
       st.sampled_from(iw.SUPPORTED_BITS))
@example(np.array([[3e-45]], np.float32), 4)  # amax / 7 underflows to 0 in float32
def test_int_quantize_error_bound(w, bits):
    q, beta = iw.quantize_per_channel(w, bits)
    lo, hi = iw.qrange(bits)
    assert q.min() >= lo and q.max() <= hi and np.all(beta > 0)
    # symmetric absmax rounding: every weight within half a step of its row's grid
    err = np.abs(q * beta[:, None] - w)
    assert np.all(err <= beta[:, None] * 0.5 * (1 + 1e-5) + 1e-30)


@given(trits(), st.integers(1, 6), st.data())
@settings(max_examples=60)
def test_tlmm_ternary_equals_dense(t, g, data):
    tokens = data.draw(st.integers(1, 3))
    q = data.draw(arrays(np.int8, (tokens, t.shape[1]), elements=acts))
    codes = tf.pack_gindex(t, g)
    np.testing.assert_array_equal(tlmm.tlmm_ternary(q, codes, g), tlmm.dense_matmul(q, t))


@given(int_weights(), st.integers(1, 6), st.data())
@settings(max_examples=60)
def test_tlmm_bitserial_equals_dense(bw, g, data):
    bits, w = bw
    q = data.draw(arrays(np.int8, (data.draw(st.integers(1, 3)), w.shape[1]), elements=acts))
    planes = tlmm.bit_planes(w, bits, g)
    np.testing.assert_array_equal(tlmm.tlmm_bitserial(q, planes, bits, g), tlmm.dense_matmul(q, w))


def test_tlmm_extremes():
    """Saturated activations against all-(+1) and all-(-1) rows: the table entries reach +-128 * G."""
    for g in (3, 5):
        k = 4 * g + 1
        q = np.array([[-128] * k, [127] * k], dtype=np.int8)
        t = np.stack([np.ones(k), -np.ones(k), np.zeros(k)]).astype(np.int8)
        tab = tlmm.build_ternary_tables(q, g)
        assert tab.min() == -128 * g and tab.max() == 128 * g
        np.testing.assert_array_equal(tlmm.tlmm_ternary(q, tf.pack_gindex(t, g), g), tlmm.dense_matmul(q, t))
        w8 = np.stack([np.full(k, -128), np.full(k, 127)]).astype(np.int8)
        np.testing.assert_array_equal(tlmm.tlmm_bitserial(q, tlmm.bit_planes(w8, 8, g), 8, g),
                                      tlmm.dense_matmul(q, w8))
