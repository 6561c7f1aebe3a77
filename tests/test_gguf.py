"""GGUF: the writer (edgestream.gguf_writer, llama.cpp conventions) and the frontend
(compiler/frontends/gguf.py), checked against the Hugging Face checkpoint path of the same weights.

Exactness. A ternary BitNet written as TQ2_0/TQ1_0/F32/F16 carries the same trits and the same float32
per-tensor scale (a `.scale` tensor) as the HF path derives, and the fixture's embedding table is
float16-representable (token_embd is F16 in TQ files, as llama.cpp writes it): the compiled integer
program is the same, so the logits are bit-identical. Q8_0/F16 Llama weights are a lossy copy of the
float weights that the compiler then requantizes to INT8 per channel: one extra rounding of each weight
(F16: relative 2**-11; Q8_0: half a step of a 32-weight block's absmax/127, below the per-channel INT8
step). That is the size of the one absmax rounding the HF oracle tests budget at 0.9% relative RMS, so
we hold the same bounds as tests/test_hf_oracle.py: mean logit cosine >= 1 - 0.04**2/2, every position
>= 1 - 0.08**2/2, greedy agreement >= 90%.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import edgestream
from edgestream.artifact import read_artifact
from edgestream.compiler import passes
from edgestream.compiler.frontends.gguf import load_gguf, permute_qk, unpermute_qk
from edgestream.compiler.frontends.hf import load_hf
from edgestream.errors import InputError
from edgestream.gguf_writer import export_gguf
from edgestream.synth import Shape, make_checkpoint
from edgestream.tokenizer import Tokenizer

gguf = pytest.importorskip("gguf")

SHAPE = Shape(2, 256, 512, 4, 2, 300, 256)  # rows of 256: TQ blocks fit
IDS = [0, 17, 42, 99, 5, 250, 7, 7, 31, 120, 64, 3]
COS_MEAN = 1 - 0.04**2 / 2
COS_MIN = 1 - 0.08**2 / 2


def _edit_checkpoint(d, tie: bool):
    """Round the embedding table to float16 values (token_embd is F16 in TQ files) and tie/untie."""
    from safetensors.numpy import load_file, save_file

    t = load_file(str(d / "model.safetensors"))
    t["model.embed_tokens.weight"] = t["model.embed_tokens.weight"].astype(np.float16).astype(np.float32)
    if tie:
        del t["lm_head.weight"]
    save_file(t, str(d / "model.safetensors"))
    cfg = json.loads((d / "config.json").read_text())
    cfg["tie_word_embeddings"] = tie
    (d / "config.json").write_text(json.dumps(cfg))
    return d


@pytest.fixture(scope="module")
def bitnet_hf(tmp_path_factory):
    d = make_checkpoint(tmp_path_factory.mktemp("gguf") / "bitnet", SHAPE, arch="bitnet", seed=3)
    return _edit_checkpoint(d, tie=True)


@pytest.fixture(scope="module")
def llama_hf(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("gguf") / "llama", SHAPE, arch="llama", seed=4)


def _logits(src, out, **kw):
    return edgestream.load(edgestream.compile_model(src, out, **kw)).forward(IDS)


@pytest.fixture(scope="module")
def bitnet_ref(bitnet_hf, tmp_path_factory):
    return _logits(bitnet_hf, tmp_path_factory.mktemp("ref") / "b.esa")


def _cos(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def _types(path) -> dict[str, str]:
    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}


@pytest.mark.parametrize("typ", ["tq2_0", "tq1_0", "f32", "f16"])
def test_bitnet_round_trip_bit_identical(bitnet_hf, bitnet_ref, tmp_path, typ):
    g = export_gguf(bitnet_hf, tmp_path / f"m-{typ}.gguf", typ)
    types = _types(g)
    assert types["blk.0.attn_q.weight"] == typ.upper()
    assert types["blk.1.ffn_down.scale"] == "F32" and types["output_norm.weight"] == "F32"
    assert "output.weight" not in types  # llama.cpp's bitnet ties the LM head
    got = _logits(g, tmp_path / "g.esa")
    assert np.array_equal(got, bitnet_ref)


def test_bitnet_q8_0_close(bitnet_hf, bitnet_ref, tmp_path):
    """Q8_0 stores a +-1 trit as 127 * fp16(1/127) (not exactly 1) and the embedding as Q8_0: close, not
    exact."""
    got = _logits(export_gguf(bitnet_hf, tmp_path / "m.gguf", "q8_0"), tmp_path / "g.esa")
    cos = _cos(got, bitnet_ref)
    assert cos.mean() >= COS_MEAN and cos.min() >= COS_MIN


def test_packed_bitnet_and_untied_output(tmp_path):
    """A transformers-packed BitNet (uint8 trits + weight_scale), untied: --untied-output round-trips exactly;
    without it the writer refuses (llama.cpp cannot load a bitnet output tensor)."""
    src = make_checkpoint(tmp_path / "packed", SHAPE, arch="bitnet", seed=5, packed=True)
    _edit_checkpoint(src, tie=False)
    with pytest.raises(InputError, match="lm_head.*--untied-output"):
        export_gguf(src, tmp_path / "x.gguf", "tq2_0")
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "x.gguf.tmp").exists()
    g = export_gguf(src, tmp_path / "p.gguf", "tq2_0", untied_output=True)
    assert _types(g)["output.weight"] == "F16"
    # output.weight is F16 in the GGUF: give the HF side the same values
    from safetensors.numpy import load_file, save_file

    t = load_file(str(src / "model.safetensors"))
    t["lm_head.weight"] = t["lm_head.weight"].astype(np.float16).astype(np.float32)
    save_file(t, str(src / "model.safetensors"))
    assert np.array_equal(_logits(g, tmp_path / "g.esa"), _logits(src, tmp_path / "h.esa"))


def test_llama_f32_exact_and_qk_permuted(llama_hf, tmp_path):
    """F32 Llama: Q/K rows go through llama.cpp's permutation and back, so the program is identical."""
    g = export_gguf(llama_hf, tmp_path / "l.gguf", "f32")
    r = gguf.GGUFReader(g)
    q = next(t for t in r.tensors if t.name == "blk.0.attn_q.weight")
    hf_q = np.asarray(load_hf(llama_hf)[0].tensors["model.layers.0.self_attn.q_proj.weight"].data)
    assert not np.array_equal(np.asarray(q.data), hf_q)  # stored permuted
    assert np.array_equal(unpermute_qk(np.asarray(q.data), SHAPE.heads), hf_q)
    assert np.array_equal(_logits(g, tmp_path / "g.esa"), _logits(llama_hf, tmp_path / "h.esa"))


def test_permutation_is_llama_cpp_rope():
    """llama.cpp's NORM RoPE (rotates pairs (2i, 2i+1)) on permuted rows == the permuted HF rotate-half
    RoPE on the original rows: the property that makes the permutation (and our inverse) right."""
    rng = np.random.default_rng(0)
    heads, d, k = 3, 8, 5
    w = rng.standard_normal((heads * d, k))
    x = rng.standard_normal(k)
    pos, theta = 7, 10000.0
    ang = pos * theta ** (-np.arange(d // 2) * 2 / d)
    c, s = np.cos(ang), np.sin(ang)

    def neox(v):  # HF rotate-half
        lo, hi = v[: d // 2], v[d // 2 :]
        return np.concatenate([lo * c - hi * s, hi * c + lo * s])

    def norm(v):  # ggml NORM: consecutive pairs
        a, b = v[0::2], v[1::2]
        out = np.empty_like(v)
        out[0::2], out[1::2] = a * c - b * s, b * c + a * s
        return out

    hf = np.concatenate([neox(h) for h in (w @ x).reshape(heads, d)])
    ll = np.concatenate([norm(h) for h in (permute_qk(w, heads) @ x).reshape(heads, d)])
    np.testing.assert_allclose(ll, permute_qk(hf[:, None], heads)[:, 0], rtol=1e-12, atol=1e-12)
    assert np.array_equal(unpermute_qk(permute_qk(w, heads), heads), w)


@pytest.mark.parametrize("typ", ["q8_0", "f16"])
def test_llama_lossy_types_within_tolerance(llama_hf, tmp_path, typ):
    ref = _logits(llama_hf, tmp_path / "h.esa")
    got = _logits(export_gguf(llama_hf, tmp_path / "l.gguf", typ), tmp_path / "g.esa")
    cos = _cos(got, ref)
    agree = float(np.mean(got.argmax(-1) == ref.argmax(-1)))
    print(f"llama {typ}: cosine mean {cos.mean():.6f} min {cos.min():.6f}, greedy agreement {agree:.2f}")
    assert cos.mean() >= COS_MEAN and cos.min() >= COS_MIN and agree >= 0.9


def test_llama_ternary_tq2_0_same_trits(llama_hf, tmp_path):
    """Ternary Llama as llama.cpp's converter writes it (trits * beta, block d = fp16(beta)): the trits are
    the compiler's absmean trits, the scale is beta rounded to float16."""
    g = export_gguf(llama_hf, tmp_path / "t.gguf", "tq2_0")
    gg = load_gguf(g)[0]
    hf = passes.quantize_weights(load_hf(llama_hf)[0], "ternary")
    for i in range(SHAPE.layers):
        for hname, gname in (("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                             ("mlp.down_proj", "ffn_down")):
            a = hf.tensors[f"model.layers.{i}.{hname}.weight"]
            b = gg.tensors[f"blk.{i}.{gname}.weight"]
            assert b.encoding == "ternary"
            assert np.array_equal(a.data, b.data)
            assert b.scale[0] == np.float32(np.float16(a.scale[0]))


def _rewrite(src, dst, *, arch=None, drop=(), drop_keys=(), replace=None, add=None, keys=None):
    """Copy a GGUF through the gguf package's reader and writer, with edits: another architecture name,
    tensors or metadata keys dropped, tensors replaced ({name: (array, GGMLQuantizationType | None)}),
    F32/F16 tensors added ({name: array}), metadata keys added ({key: (value, GGUFValueType)})."""
    r = gguf.GGUFReader(src)
    old_arch = r.get_field("general.architecture").contents()
    arch = arch or old_arch
    w = gguf.GGUFWriter(str(dst), arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in drop_keys:
            continue
        key = name.replace(f"{old_arch}.", f"{arch}.", 1)
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, f.contents(), f.types[0], sub_type=sub)
    for key, (val, vtype) in (keys or {}).items():
        w.add_key_value(key, val, vtype)
    for name, data in (add or {}).items():
        w.add_tensor(name, data)
    for t in r.tensors:
        if t.name in drop:
            continue
        if replace and t.name in replace:
            data, qt = replace[t.name]
        else:
            data, qt = np.asarray(t.data), t.tensor_type
        if qt in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16, None):
            w.add_tensor(t.name, data)
        else:
            w.add_tensor(t.name, data, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst


@pytest.fixture(scope="module")
def bitnet_gguf(bitnet_hf, tmp_path_factory):
    return export_gguf(bitnet_hf, tmp_path_factory.mktemp("gg") / "b.gguf", "tq2_0")


def test_tq_block_scales_that_differ_are_requantized(bitnet_gguf, tmp_path):
    """TQ2_0 blocks with different scales (llama-quantize output of a non-BitNet model) become float
    weights, requantized by the compiler's absmean pass: documented, warned, and exactly that."""
    rng = np.random.default_rng(1)
    trits = rng.integers(-1, 2, size=(256, 256)).astype(np.float32)
    rows = (0.01 + 0.02 * rng.random((256, 1))).astype(np.float16).astype(np.float32)  # a scale per row
    w = trits * rows
    data = gguf.quants.quantize(w, gguf.GGMLQuantizationType.TQ2_0)
    g = _rewrite(bitnet_gguf, tmp_path / "d.gguf", drop=("blk.0.attn_q.scale",),
                 replace={"blk.0.attn_q.weight": (data, gguf.GGMLQuantizationType.TQ2_0)})
    with pytest.warns(UserWarning, match="blk.0.attn_q.weight.*different block scales"):
        graph = load_gguf(g)[0]
    t = graph.tensors["blk.0.attn_q.weight"]
    assert t.encoding == "float32"
    np.testing.assert_array_equal(np.asarray(t.data), w)
    want = passes.quantize_ternary(w, "q")
    with pytest.warns(UserWarning):
        art = read_artifact(edgestream.compile_model(g, tmp_path / "d.esa"))
    got = art.graph.tensors["blk.0.attn_q.weight"]
    assert np.array_equal(got.data, want.data) and np.array_equal(got.scale, want.scale)


def test_bitnet_activation_metadata(bitnet_gguf, tmp_path):
    ops = {n.op for n in load_gguf(bitnet_gguf)[0].nodes}
    assert "relu2_mul" in ops and "silu_mul" not in ops
    g = _rewrite(bitnet_gguf, tmp_path / "s.gguf", drop_keys=("bitnet.hidden_activation",))
    with pytest.warns(UserWarning, match="SiLU"):
        ops = {n.op for n in load_gguf(g)[0].nodes}
    assert "silu_mul" in ops and "relu2_mul" not in ops


def test_tokenizer_round_trip(bitnet_hf, bitnet_gguf, tmp_path):
    graph, tok_path, _ = load_gguf(bitnet_gguf)
    hf_tok, gg_tok = Tokenizer(bitnet_hf / "tokenizer.json"), Tokenizer(tok_path)
    texts = ["Once upon a time a small board learned to count", "edgestream runs ternary models!",
             "  two  spaces, UPPER case, digits 12345 and unicode: naïve café ✓", ""]
    for s in texts:
        assert gg_tok.encode(s) == hf_tok.encode(s)
        assert gg_tok.decode(gg_tok.encode(s)) == hf_tok.decode(hf_tok.encode(s))
    hf_cfg = json.loads((bitnet_hf / "config.json").read_text())
    assert graph.config.bos_token_id == hf_cfg["bos_token_id"]
    assert graph.config.eos_token_ids == [hf_cfg["eos_token_id"]]
    tj = json.loads(tok_path.read_text())
    assert {a["content"]: a["special"] for a in tj["added_tokens"]}.get("<s>") is True
    # --prompt works end to end from the GGUF
    from edgestream.cli import main

    art = edgestream.compile_model(bitnet_gguf, tmp_path / "t.esa")
    assert main(["run", str(art), "--prompt", "Once upon a time", "--max-new-tokens", "4", "--json"]) == 0


def _expect(path, match):
    with pytest.raises(InputError, match=match):
        edgestream.compile_model(path, path.with_suffix(".esa"))
    assert not path.with_suffix(".esa").exists()


def test_bad_files(bitnet_gguf, tmp_path, capsys):
    data = bitnet_gguf.read_bytes()
    (tmp_path / "trunc.gguf").write_bytes(data[: len(data) // 2])
    _expect(tmp_path / "trunc.gguf", "trunc.gguf: truncated")
    (tmp_path / "short.gguf").write_bytes(data[:40])
    _expect(tmp_path / "short.gguf", "short.gguf: truncated or corrupt")
    (tmp_path / "magic.gguf").write_bytes(b"GGML" + data[4:])
    _expect(tmp_path / "magic.gguf", r"not a GGUF file \(expected magic b'GGUF'")
    q4 = gguf.quants.quantize(np.ones((128, 256), np.float32), gguf.GGMLQuantizationType.Q4_0)
    q4_0 = gguf.GGMLQuantizationType.Q4_0
    _rewrite(bitnet_gguf, tmp_path / "q4.gguf", replace={"blk.0.attn_v.weight": (q4, q4_0)})
    _expect(tmp_path / "q4.gguf", r"tensor blk.0.attn_v.weight has type Q4_0, which is not supported")
    _rewrite(bitnet_gguf, tmp_path / "arch.gguf", arch="gpt2")
    _expect(tmp_path / "arch.gguf", r"unsupported architecture 'gpt2' in general.architecture")
    _rewrite(bitnet_gguf, tmp_path / "miss.gguf", drop=("blk.1.ffn_up.weight",))
    _expect(tmp_path / "miss.gguf", r"tensor blk.1.ffn_up.weight is missing")
    _expect(tmp_path / "nothere.gguf", "no such file")
    # the CLI: one line naming the file, exit 2, no traceback
    from edgestream.cli import main

    assert main(["compile", str(tmp_path / "magic.gguf"), "-o", str(tmp_path / "x.esa")]) == 2
    err = capsys.readouterr().err
    assert "magic.gguf: not a GGUF file" in err and "Traceback" not in err


def test_export_gguf_cli(bitnet_hf, tmp_path, capsys):
    from edgestream.cli import main

    out = tmp_path / "c.gguf"
    assert main(["export-gguf", str(bitnet_hf), "-o", str(out), "--type", "tq1_0", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["bytes"] == out.stat().st_size and _types(out)["blk.0.ffn_gate.weight"] == "TQ1_0"
    assert main(["export-gguf", str(tmp_path / "none"), "-o", str(out)]) == 2
    assert main(["inspect", str(out), "--json"]) == 0
    ins = json.loads(capsys.readouterr().out)
    assert ins["format"] == "gguf" and ins["tensors"]["blk.1.attn_k.weight"]["dtype"] == "TQ1_0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an exported file reads back without any warning
        load_gguf(out)


BF16 = gguf.GGMLQuantizationType.BF16


def _bf16(a) -> np.ndarray:
    return gguf.quants.quantize(np.asarray(a, dtype=np.float32), BF16)


@pytest.mark.parametrize("arch", ["llama", "bitnet"])
def test_bf16_tensors(llama_hf, bitnet_hf, tmp_path, arch):
    """Norms, embeddings and linears stored BF16 (as convert_hf_to_gguf --outtype bf16 writes a bf16
    checkpoint) read as exactly their values: the same program and logits as the F32 file holding the
    bf16-rounded values; BitNet's ternary weights stay ternary."""
    src = export_gguf(llama_hf if arch == "llama" else bitnet_hf, tmp_path / "f.gguf", "f32")
    floats = [t for t in gguf.GGUFReader(src).tensors
              if t.tensor_type == gguf.GGMLQuantizationType.F32 and not t.name.endswith(".scale")]
    rounded = {t.name: (gguf.quants.dequantize(_bf16(t.data), BF16).reshape(t.data.shape), None) for t in floats}
    ref = _rewrite(src, tmp_path / "r.gguf", replace=rounded)
    bf = _rewrite(src, tmp_path / "b.gguf", replace={t.name: (_bf16(t.data), BF16) for t in floats})
    types = _types(bf)
    for name in ("token_embd.weight", "output_norm.weight", "blk.1.attn_norm.weight", "blk.0.ffn_down.weight"):
        assert types[name] == "BF16"
    g = load_gguf(bf)[0]
    assert g.tensors["blk.0.attn_q.weight"].encoding == ("ternary" if arch == "bitnet" else "float32")
    assert np.array_equal(np.asarray(g.tensors["token_embd.weight"].data),
                          rounded["token_embd.weight"][0].reshape(SHAPE.vocab, SHAPE.hidden))
    assert np.array_equal(_logits(bf, tmp_path / "b.esa"), _logits(ref, tmp_path / "r.esa"))


def _llama3_rope_factors(head_dim: int, base: float, factor=8.0, low=1.0, high=4.0, old_ctx=8192) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.generate_extra_tensors (rope_type llama3)."""
    import math

    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, np.float32)


def test_rope_scaling_is_refused_never_ignored(llama_hf, tmp_path):
    src = export_gguf(llama_hf, tmp_path / "l.gguf", "f32")
    hd = SHAPE.hidden // SHAPE.heads
    factors = _llama3_rope_factors(hd, 10000.0)
    assert factors.min() == 1.0 and factors.max() == 8.0  # the file a Llama 3.1 converts to
    _rewrite(src, tmp_path / "l3.gguf", add={"rope_freqs.weight": factors})
    _expect(tmp_path / "l3.gguf", r"l3.gguf: tensor rope_freqs.weight holds per-frequency RoPE scaling factors "
                                  r"\(1..8; llama3 rope type\)")
    _rewrite(src, tmp_path / "short.gguf", add={"rope_freqs.weight": factors[:4]})
    _expect(tmp_path / "short.gguf", rf"tensor rope_freqs.weight must hold {hd // 2} float RoPE factors")
    _rewrite(src, tmp_path / "yarn.gguf", keys={
        "llama.rope.scaling.type": ("yarn", gguf.GGUFValueType.STRING),
        "llama.rope.scaling.factor": (4.0, gguf.GGUFValueType.FLOAT32)})
    _expect(tmp_path / "yarn.gguf", r"'llama.rope.scaling.type' 'yarn' with factor 4.0 is not supported")
    # all-1 factors are no scaling: the same program as without the tensor
    one = _rewrite(src, tmp_path / "one.gguf", add={"rope_freqs.weight": np.ones(hd // 2, np.float32)})
    assert np.array_equal(_logits(one, tmp_path / "one.esa"), _logits(src, tmp_path / "src.esa"))
