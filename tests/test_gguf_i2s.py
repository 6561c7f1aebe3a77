"""bitnet.cpp's GGUF (microsoft/bitnet-b1.58-2B-4T-gguf): architecture `bitnet-b1.58` (earlier
`bitnet-25`), linears in ggml type 36 I2_S, F32 norms, tied F16 token_embd.

Files are written by edgestream.bitnet_cpp_gguf the way bitnet.cpp's converter writes them; their
I2_S bytes come from edgestream.formats.i2s.pack_i2s, which the known-answer tests pin to bytes built
by hand from the spec (docs/formats.md).

The official shape (30 layers, 2560, 6912, 20/5 heads, vocab 128256) compiles here for --target cpu;
its --target kv260 compile is timed by benchmarks/bench_compile.py --format gguf-i2s (the hardware
lowering of the 128256-row LM head dominates it), and a test compiles a 2-layer file of the official
widths for kv260."""

from __future__ import annotations

import json
import struct
import time

import gguf
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import edgestream
from edgestream.bitnet_cpp_gguf import add_i2s_info, write_bitnet_cpp_gguf, write_official_shape
from edgestream.compiler.frontends.gguf import inspect_gguf, load_gguf
from edgestream.errors import InputError
from edgestream.formats.i2s import GGML_TYPE_I2_S, i2s_scale, pack_i2s, unpack_i2s
from edgestream.formats.ternary import unpack_hf_bitnet
from edgestream.synth import Shape, make_checkpoint

IDS = [0, 17, 42, 99, 5, 250, 7, 7, 31, 120, 64, 3]


# ---------------------------------------------------------------- the I2_S layout, by hand


def _spec_bytes(trits: np.ndarray, scale: float) -> bytes:
    """I2_S bytes straight from the layout's words, one weight at a time (no numpy packing)."""
    flat = [int(v) for v in trits.reshape(-1)]
    out = bytearray()
    for b in range(len(flat) // 128):
        for j in range(32):
            w = [flat[128 * b + j + 32 * g] + 1 for g in range(4)]
            out.append((w[0] << 6) | (w[1] << 4) | (w[2] << 2) | w[3])
    return bytes(out) + struct.pack("<f", scale) + bytes(28)


def test_known_answer_literal_bytes():
    """Two rows of 128: row 0's bytes are all 0x86 = 10 00 01 10 (codes 2, 0, 1, 2 -> trits +1, -1, 0,
    +1 for columns j, j+32, j+64, j+96); row 1's are 0x24 = 00 10 01 00 (-1, +1, 0, -1) except its
    byte 5 = 0x55 (all zero). The scale 0.5 follows the 64 packed bytes."""
    raw = bytes([0x86] * 32) + bytes([0x24] * 5 + [0x55] + [0x24] * 26) + struct.pack("<f", 0.5) + bytes(28)
    want = np.empty((2, 128), np.int8)
    want[0] = np.repeat([1, -1, 0, 1], 32)
    want[1] = np.repeat([-1, 1, 0, -1], 32)
    want[1, [5, 37, 69, 101]] = 0
    arr = np.frombuffer(raw, np.uint8)
    assert np.array_equal(unpack_i2s(arr, 2, 128), want)
    assert i2s_scale(arr, 2, 128) == np.float32(0.5)
    assert pack_i2s(want, 0.5).tobytes() == raw
    assert _spec_bytes(want, 0.5) == raw


def test_known_answer_matrix_through_gguf(tmp_path):
    """A 4x256 matrix whose I2_S bytes are built by hand (row-major across rows, blocks of 128) read
    through a bitnet-b1.58 GGUF: the graph holds exactly these trits with beta = the stored scale."""
    rng = np.random.default_rng(7)
    trits = rng.integers(-1, 2, size=(4, 256)).astype(np.int8)
    raw = np.frombuffer(_spec_bytes(trits, 0.0123), np.uint8)
    w = gguf.GGUFWriter(str(tmp_path / "k.gguf"), "bitnet-b1.58")
    add_i2s_info(w, "blk.0.attn_q.weight", 4, 256)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.write_tensor_data(raw)
    w.close()
    from edgestream.compiler.frontends.gguf_reader import open_gguf

    r = open_gguf(tmp_path / "k.gguf")
    t = r.tensors[0]
    assert t.tensor_type.name == "I2_S" and t.n_bytes == 4 * 256 // 4 + 32
    assert t.data_offset % 32 == 0
    assert np.array_equal(unpack_i2s(t.data, 4, 256), trits)
    assert i2s_scale(t.data, 4, 256) == np.float32(0.0123)


@given(st.integers(1, 6), st.integers(1, 3), st.integers(0, 2**32 - 1),
       st.floats(width=32, allow_nan=False))
def test_pack_unpack_round_trip(n, blocks, seed, scale):
    trits = np.random.default_rng(seed).integers(-1, 2, size=(n, 128 * blocks)).astype(np.int8)
    raw = pack_i2s(trits, scale)
    assert raw.nbytes == n * 128 * blocks // 4 + 32
    assert raw.tobytes() == _spec_bytes(trits, scale)
    assert np.array_equal(unpack_i2s(raw, n, 128 * blocks), trits)
    assert i2s_scale(raw, n, 128 * blocks) == np.float32(scale)


def test_code_3_and_bad_rows_are_refused():
    raw = pack_i2s(np.zeros((1, 128), np.int8), 1.0)
    raw[40 // 4 % 32] |= 0xC0  # byte 10, bits 7:6: column 10
    with pytest.raises(ValueError, match="row 0 column 10 holds the 2-bit code 3"):
        unpack_i2s(raw, 1, 128)
    with pytest.raises(ValueError, match="multiple of 128"):
        pack_i2s(np.zeros((2, 64), np.int8), 1.0)


# ---------------------------------------------------------------- a model in bitnet.cpp's file

TINY = Shape(2, 256, 512, 4, 2, 300, 256)


@pytest.fixture(scope="module")
def packed_hf(tmp_path_factory):
    """A 2B-4T-layout checkpoint (packed autobitlinear linears, tied), embedding float16-representable
    (token_embd is F16 in the GGUF)."""
    from safetensors.numpy import load_file, save_file

    d = make_checkpoint(tmp_path_factory.mktemp("i2s") / "bitnet", TINY, arch="bitnet", seed=11, packed=True,
                        tie=True, linear_class="autobitlinear")
    t = load_file(str(d / "model.safetensors"))
    t["model.embed_tokens.weight"] = t["model.embed_tokens.weight"].astype(np.float16).astype(np.float32)
    save_file(t, str(d / "model.safetensors"))
    return d


@pytest.fixture(scope="module")
def hf_logits(packed_hf, tmp_path_factory):
    return edgestream.load(edgestream.compile_model(packed_hf, tmp_path_factory.mktemp("h") / "h.esa")).forward(IDS)


@pytest.mark.parametrize("arch", ["bitnet-b1.58", "bitnet-25"])
def test_bitnet_cpp_file_matches_hf_checkpoint(packed_hf, hf_logits, tmp_path, arch):
    """Same trits, same float32 scales, same F16 embedding: the compiled programs are identical, so
    the logits are bit-identical to the packed HF checkpoint's."""
    g = write_bitnet_cpp_gguf(packed_hf, tmp_path / "m.gguf", arch)
    info = inspect_gguf(g)
    assert info["model"]["arch"] == "bitnet" and info["ffn_act"] == "relu2"
    ty = {k: v["dtype"] for k, v in info["tensors"].items()}
    assert ty["blk.0.ffn_down.weight"] == "I2_S" and ty["token_embd.weight"] == "F16"
    assert ty["blk.1.attn_sub_norm.weight"] == "F32" and "output.weight" not in ty
    assert info["tensors"]["blk.0.attn_q.weight"]["bytes"] == 256 * 256 // 4 + 32
    graph = load_gguf(g)[0]
    assert graph.config.tie_word_embeddings and graph.config.num_kv_heads == 2
    q = graph.tensors["blk.1.attn_k.weight"]
    assert q.encoding == "ternary" and q.shape == (128, 256)
    from safetensors.numpy import load_file

    hf = load_file(str(packed_hf / "model.safetensors"))
    assert np.array_equal(np.asarray(q.data), unpack_hf_bitnet(hf["model.layers.1.self_attn.k_proj.weight"], 128))
    assert q.scale[0] == hf["model.layers.1.self_attn.k_proj.weight_scale"][0]
    got = edgestream.load(edgestream.compile_model(g, tmp_path / "g.esa")).forward(IDS)
    assert np.array_equal(got, hf_logits)


def test_bad_i2s_files(packed_hf, tmp_path):
    from edgestream.compiler.frontends.gguf_reader import open_gguf

    g = write_bitnet_cpp_gguf(packed_hf, tmp_path / "m.gguf")
    r = open_gguf(g)
    t = next(t for t in r.tensors if t.name == "blk.0.ffn_up.weight")
    data = bytearray(g.read_bytes())
    off, n, k = t.data_offset, 512, 256

    def variant(name, patch):
        b = bytearray(data)
        patch(b)
        p = tmp_path / name
        p.write_bytes(bytes(b))
        return p

    p = variant("nan.gguf", lambda b: b.__setitem__(slice(off + n * k // 4, off + n * k // 4 + 4),
                                                     struct.pack("<f", float("nan"))))
    with pytest.raises(InputError, match=r"nan.gguf: tensor blk.0.ffn_up.weight \(I2_S\) has the scale nan"):
        edgestream.compile_model(p, tmp_path / "x.esa")
    assert not (tmp_path / "x.esa").exists()
    p = variant("code3.gguf", lambda b: b.__setitem__(off + 3, 0xFF))
    with pytest.raises(InputError, match=r"tensor blk.0.ffn_up.weight \(I2_S\): row 0 column 3 holds the 2-bit code 3"):
        edgestream.compile_model(p, tmp_path / "x.esa")
    assert not (tmp_path / "x.esa").exists()
    cut = variant("cut.gguf", lambda b: b.__delitem__(slice(off + 100, None)))
    with pytest.raises(InputError, match=r"cut.gguf: truncated GGUF file: tensor blk.0.ffn_up.weight"):
        load_gguf(cut)
    # bitnet.cpp's TL2 (its type 39, which gguf now reads as MXFP4) is named, not misread
    # tensor info: name, n_dims (u32), 2 dims (u64), type (u32), offset (u64)
    at = data.find(b"blk.0.ffn_up.weight") + len("blk.0.ffn_up.weight") + 4 + 16
    assert struct.unpack_from("<I", data, at)[0] == GGML_TYPE_I2_S
    p = variant("tl2.gguf", lambda b: struct.pack_into("<I", b, at, 39))
    with pytest.raises(InputError, match=r"tensor blk.0.ffn_up.weight has ggml type 39 \(bitnet.cpp's TL2"):
        load_gguf(p)


def test_negative_and_zero_scales(packed_hf, tmp_path):
    """bitnet.cpp multiplies by the stored scale whatever its sign: -s is the negated trits with beta s;
    0 is an all-zero weight."""
    g = write_bitnet_cpp_gguf(packed_hf, tmp_path / "m.gguf")
    from edgestream.compiler.frontends.gguf_reader import open_gguf

    r = open_gguf(g)
    ts = {t.name: t for t in r.tensors}
    data = bytearray(g.read_bytes())
    a, b = ts["blk.0.attn_v.weight"], ts["blk.1.ffn_gate.weight"]
    sa = struct.unpack_from("<f", data, a.data_offset + 128 * 256 // 4)[0]
    struct.pack_into("<f", data, a.data_offset + 128 * 256 // 4, -sa)
    struct.pack_into("<f", data, b.data_offset + 512 * 256 // 4, 0.0)
    (tmp_path / "s.gguf").write_bytes(bytes(data))
    ref, got = load_gguf(g)[0].tensors, load_gguf(tmp_path / "s.gguf")[0].tensors
    va = got["blk.0.attn_v.weight"]
    assert np.array_equal(np.asarray(va.data), -np.asarray(ref["blk.0.attn_v.weight"].data))
    assert va.scale[0] == np.float32(sa)
    vb = got["blk.1.ffn_gate.weight"]
    assert not np.asarray(vb.data).any() and vb.scale[0] == 1.0


# ---------------------------------------------------------------- the official model's shape


OFFICIAL = Shape(30, 2560, 6912, 20, 5, 128256, 4096)


def test_official_shape_compiles_for_cpu(tmp_path):
    g = write_official_shape(tmp_path / "ggml-model-i2_s.gguf", OFFICIAL)
    info = inspect_gguf(g)
    assert len(info["tensors"]) == 30 * 11 + 2  # the official file's 332
    m = info["model"]
    assert (m["num_layers"], m["hidden_size"], m["intermediate_size"], m["num_heads"], m["num_kv_heads"],
            m["vocab_size"], m["rope_theta"], m["tie_word_embeddings"]) == (30, 2560, 6912, 20, 5, 128256,
                                                                           500000.0, True)
    assert info["tensors"]["blk.29.ffn_down.weight"] == {"dtype": "I2_S", "shape": [2560, 6912],
                                                         "bytes": 2560 * 6912 // 4 + 32}
    t0 = time.perf_counter()
    art = edgestream.compile_model(g, tmp_path / "m.esa")
    print(f"official 2B-4T shape, --target cpu: compiled in {time.perf_counter() - t0:.1f} s")
    man = json.loads((art / "manifest.json").read_text())
    assert man["model"]["num_layers"] == 30 and man["model"]["arch"] == "bitnet"


def test_official_widths_compile_for_kv260(tmp_path):
    g = write_official_shape(tmp_path / "w.gguf", Shape(2, 2560, 6912, 20, 5, 4096, 4096))
    art = edgestream.compile_model(g, tmp_path / "w.esa", target="kv260")
    man = json.loads((art / "manifest.json").read_text())
    assert man["model"]["hidden_size"] == 2560 and "hw_config" in man
