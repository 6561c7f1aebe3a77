"""Lowered program + hardware-order weight image: the program executor is bit-identical to the
CpuExecutor on every layer type, on odd shapes (dims not divisible by G, T or the K tile) and on
every weight encoding; the binary formats round-trip; mismatched configurations are refused."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgestream
from edgestream import program as pg
from edgestream.artifact import read_artifact
from edgestream.compiler.dse import HwConfig
from edgestream.compiler.lowering import (
    SV_NAME,
    check_config_id,
    pack_region,
    region_image,
    region_kind,
    region_layout,
    unpack_dense,
    unpack_region,
)
from edgestream.errors import CompileError, DeviceError, InputError
from edgestream.formats.ternary import pack_gindex
from edgestream.host.executor import CpuExecutor
from edgestream.host.program_executor import ProgramExecutor
from edgestream.synth import Shape, make_checkpoint
from edgestream.tlmm import bit_planes, dense_matmul

ODD = Shape(layers=2, hidden=50, ffn=70, heads=5, kv_heads=5, vocab=97, max_position=64)
ODD_GQA = Shape(layers=1, hidden=36, ffn=46, heads=6, kv_heads=2, vocab=61, max_position=64)

# program-executor configurations (not all ones the RTL implements) with the RTL's AXI bursts, weight FIFOs
# and one-lane vector unit: the resource model budgets the whole accelerator as Yosys maps it, where
# HwConfig's defaults (16 vector lanes, 256-beat bursts, 256 KiB of weight FIFOs) are over the kv260
_RTL_LIKE = dict(vec_lanes=1, axi_burst_beats=16, wbuf_kib=16)
CONFIGS = {
    "g5-gindex-planes": dict(G=5, T=4, Q=4, table_mem="lutram", max_k=40, max_tok=1, **_RTL_LIKE),
    "g3-base3-int8": dict(G=3, T=8, Q=2, table_mem="lutram", tern_encoding="base3", int_encoding="int8", max_k=48,
                          **_RTL_LIKE),
    "g4-gindex-planes": dict(G=4, T=2, Q=8, table_mem="bram", max_k=24, **_RTL_LIKE),
    "g2-base3-planes": dict(G=2, T=16, Q=1, table_mem="lutram", tern_encoding="base3", max_k=4096,
                            **{**_RTL_LIKE, "wbuf_kib": 64}),
}


def _compile(tmp, name, shape, arch, quant, hw):
    ck = tmp / f"ck-{name}"
    if not ck.exists():
        make_checkpoint(ck, shape, arch=arch, seed=11, tokenizer=False)
    cfg = tmp / f"hw-{name}.json"
    cfg.write_text(json.dumps(hw))
    return edgestream.compile_model(ck, tmp / f"{name}.esa", target="kv260", quant=quant, hw_config=cfg)


def _check_bit_exact(art, ids, steps=3):
    ref = CpuExecutor(read_artifact(art))
    low = ProgramExecutor(art)
    cap = len(ids) + steps
    ref.reset(cap)
    low.reset(cap)
    a, b = ref.forward(ids, last_only=False), low.forward(ids, last_only=False)
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    tok = int(a[-1].argmax())
    for _ in range(steps):  # decode steps through the KV cache, last-row-only head
        a, b = ref.forward([tok]), low.forward([tok])
        np.testing.assert_array_equal(a, b)
        tok = int(a[-1].argmax())


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
@pytest.mark.parametrize("model", ["bitnet-tiny", "llama-int8-odd", "bitnet-odd-gqa", "llama-int4-tiny"])
def test_program_executor_bit_exact(tmp_path_factory, model, cfg_name):
    tmp = tmp_path_factory.mktemp("low")
    arch, quant, shape = {"bitnet-tiny": ("bitnet", "auto", "tiny"), "llama-int8-odd": ("llama", "int8", ODD),
                          "bitnet-odd-gqa": ("bitnet", "auto", ODD_GQA),
                          "llama-int4-tiny": ("llama", "int4", "tiny")}[model]
    art = _compile(tmp, model, shape, arch, quant, CONFIGS[cfg_name])
    man = read_artifact(art).manifest
    # K tiles: a linear wider than max_k is split into several TLMM instructions that accumulate
    k_max = max(man["model"]["hidden_size"], man["model"]["intermediate_size"])
    if k_max > CONFIGS[cfg_name]["max_k"]:
        prog = pg.Program.decode((art / "program.bin").read_bytes())
        assert any(i.op == pg.TLMM and i.flags & pg.F_ACCUMULATE for i in prog.instrs)
    _check_bit_exact(art, np.array([0, 5, 17, 3, 42, 7, 1]))


def test_dse_chosen_config_bit_exact_and_consistent(tmp_path):
    make_checkpoint(tmp_path / "ck", "tiny", arch="bitnet", seed=2, tokenizer=False)
    art = edgestream.compile_model(tmp_path / "ck", tmp_path / "m.esa", target="kv260")
    man = read_artifact(art).manifest
    _check_bit_exact(art, np.array([3, 1, 4, 1, 5, 9, 2, 6]))
    # the perf model charges exactly the bytes the lowering wrote for the TLMM regions
    prog = pg.Program.decode((art / "program.bin").read_bytes())
    tlmm_bytes = sum(r.nbytes for r in prog.regions if r.kind not in (pg.R_F32, pg.R_I8ROWS))
    bpt = man["perf"]["bytes_per_token"]
    assert bpt["weights"] + bpt["lm_head"] == tlmm_bytes
    assert bpt["total"] == sum(bpt[k] for k in ("weights", "lm_head", "beta_activations", "kv_cache", "embedding"))
    cfg = HwConfig(**man["hw_config"])
    assert man["hw_config_id"] == cfg.config_id == prog.config_id
    for r in prog.regions:  # every TLMM region burst-aligned, in the image
        if r.kind not in (pg.R_F32, pg.R_I8ROWS):
            assert r.offset % 4096 == 0 and r.nbytes % (cfg.axi_burst_beats * cfg.axi_width_bits // 8) == 0
    sv = (art / SV_NAME).read_text()
    assert f"CONFIG_ID = 64'h{cfg.config_id};" in sv
    for k, v in (("G", cfg.G), ("T", cfg.T), ("Q", cfg.Q), ("MAXK", cfg.max_k), ("MAXTOK", cfg.max_tok)):
        assert f"localparam int {k} = {v};" in sv


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 70), g=st.integers(2, 5), t=st.sampled_from([1, 2, 4, 8]),
       q=st.sampled_from([1, 2, 4, 8]), enc=st.sampled_from(["gindex", "base3"]),
       ienc=st.sampled_from(["planes", "int8"]), bits=st.sampled_from([0, 2, 4, 8]), seed=st.integers(0, 2**31))
def test_region_roundtrip_and_lookup(n, k, g, t, q, enc, ienc, bits, seed):
    cfg = HwConfig(G=g, T=t, Q=q, tern_encoding=enc, int_encoding=ienc, max_k=max(4096, g * t))
    rng = np.random.default_rng(seed)
    kind = "ternary" if bits == 0 else "int"
    if kind == "ternary":
        w = rng.integers(-1, 2, size=(n, k)).astype(np.int8)
        want = pack_gindex(w, g)[None]
    else:
        w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(n, k)).astype(np.int8)
        want = bit_planes(w, bits, g)
    blob = pack_region(cfg, w, kind, bits)
    lay = region_layout(cfg, n, k, kind, bits)
    assert len(blob) == lay["raw_bytes"] <= lay["nbytes"]
    reg = pg.Region(0, lay["nbytes"], region_kind(cfg, kind), bits, n, k, 0)
    codes = unpack_region(g, t, q, cfg.CB, reg, np.frombuffer(blob, np.uint8))
    np.testing.assert_array_equal(codes, want)
    # and the table lookups over those codes give the integer matmul
    x = rng.integers(-128, 128, size=(3, k)).astype(np.int8)
    from edgestream.host.program_executor import ProgramExecutor as PE

    pe = PE.__new__(PE)
    pe._zero = (3**g - 1) // 2
    pe._bin2tern = (pe._zero + (((np.arange(1 << g)[:, None] >> np.arange(g)) & 1) * (3 ** np.arange(g))).sum(1))
    from edgestream.tlmm import build_ternary_tables

    acc = pe._tlmm(build_ternary_tables(x, g), codes, kind == "int", bits)
    np.testing.assert_array_equal(acc, dense_matmul(x, w))


@pytest.mark.parametrize(("t", "q", "ports"), [(1, 64, 4), (1, 16, 1), (4, 4, 1), (1, 32, 2)])
def test_int_dense_layout(t, q, ports):
    """An int-dense region is the engine's beat order (tlmm_engine.sv): beat (row batch, column i, chunk
    c), lane q*T + t = w[rb*Q + q][G*(c*T + t) + i], one int8 per byte, padding 0, striped over the
    weight ports like every beat-ordered region; unpack_dense reads it back."""
    g = 5
    cfg = HwConfig(G=g, T=t, Q=q, int_encoding="int8", axi_ports=ports, max_k=4096)
    rng = np.random.default_rng(t * 1000 + q)
    n, k = 2 * q + 3, 7 * g * t + 2  # padding rows, K neither a multiple of G nor of G*T
    w = rng.integers(-128, 128, size=(n, k)).astype(np.int8)
    lay = region_layout(cfg, n, k, "int", 8)
    chunks, rbs = math.ceil(math.ceil(k / g) / t), math.ceil(n / q)
    assert lay["planes"] == g and lay["beats"] == rbs * g * chunks and lay["raw_bytes"] == lay["beats"] * q * t
    beats = np.frombuffer(pack_region(cfg, w, "int", 8), np.int8).reshape(rbs, g, chunks, q, t)
    for rb, i, c, qq, tt in [(0, 0, 0, 0, 0), (1, 4, chunks - 1, q - 1, t - 1), (rbs - 1, 2, 3, 1 % q, 0)]:
        r, col = rb * q + qq, g * (c * t + tt) + i
        assert beats[rb, i, c, qq, tt] == (w[r, col] if r < n and col < k else 0)
    full = np.zeros((rbs * q, chunks * t * g), np.int8)
    full[:n, :k] = w
    np.testing.assert_array_equal(beats.transpose(0, 3, 2, 4, 1).reshape(full.shape), full)
    blob, lay = region_image(cfg, w, "int", 8)
    assert lay["stripes"] == ports and len(blob) == lay["nbytes"]
    reg = pg.Region(0, lay["nbytes"], region_kind(cfg, "int"), 8, n, k, 0, stripes=lay["stripes"])
    assert reg.kind == pg.R_INT_DENSE
    np.testing.assert_array_equal(unpack_dense(g, t, q, reg, np.frombuffer(blob, np.uint8)), w)
    with pytest.raises(CompileError, match="INT4"):
        pack_region(cfg, np.full((1, 3), 9, np.int8), "int", 4)


def test_program_roundtrip_and_corruption(tmp_path):
    make_checkpoint(tmp_path / "ck", "tiny", arch="llama", seed=1, tokenizer=False)
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(CONFIGS["g4-gindex-planes"]))
    art = edgestream.compile_model(tmp_path / "ck", tmp_path / "m.esa", target="kv260", hw_config=hw)
    blob = (art / "program.bin").read_bytes()
    prog = pg.Program.decode(blob)
    assert prog.encode() == blob
    assert prog.instrs[-1].op == pg.END and {pg.TLMM, pg.BUILD_TABLE, pg.LOAD_ACT, pg.DEQUANT} <= {
        i.op for i in prog.instrs}
    with pytest.raises(InputError, match="truncated"):
        pg.Program.decode(blob[:-3])
    with pytest.raises(InputError, match="magic"):
        pg.Program.decode(b"XXXX" + blob[4:])
    bad = bytearray(blob)
    off = prog.instr_offset
    bad[off] = 0x77
    with pytest.raises(InputError, match="unknown opcode"):
        pg.Program.decode(bytes(bad))
    # an artifact lowered before ATTENTION carried its shape and LAST_ROW its buffers (version 2)
    old = bytearray(blob)
    old[4:6] = (2).to_bytes(2, "little")
    with pytest.raises(InputError, match="version 2.*recompile"):
        pg.Program.decode(bytes(old))
    (art / "program.bin").write_bytes(bytes(old))
    with pytest.raises(InputError, match="recompile"):
        ProgramExecutor(art)


def test_unit_operands_are_explicit(tmp_path):
    """What the on-chip units need is in the instructions (docs/program.md, docs/units.md): ATTENTION's
    shape and scale, LAST_ROW's buffers, OUTPUT's argmax flag; a program whose ATTENTION shape is not
    the model's is refused."""
    make_checkpoint(tmp_path / "ck", "tiny", arch="llama", seed=1, tokenizer=False)
    art = edgestream.compile_model(tmp_path / "ck", tmp_path / "m.esa", target="sim", hw_config="shell")
    prog = pg.Program.decode((art / "program.bin").read_bytes())
    cfg = read_artifact(art).config
    att = [i for i in prog.instrs if i.op == pg.ATTENTION]
    assert [i.f[3] for i in att] == [layer | cfg.num_layers << 16 for layer in range(cfg.num_layers)]
    scale = np.float32(1 / np.sqrt(cfg.head_dim))
    assert all(i.f[4:7] == [cfg.head_dim, cfg.num_heads | cfg.num_kv_heads << 16, int(scale.view(np.uint32))]
               for i in att)
    last = [i for i in prog.instrs if i.op == pg.LAST_ROW]
    assert len(last) == 1
    src, dst = prog.buffers[last[0].f[0]], prog.buffers[last[0].a]
    assert src.dtype == dst.dtype == pg.B_F32 and src.width == dst.width == cfg.hidden_size
    after = prog.instrs[prog.instrs.index(last[0]) + 1]
    assert after.op == pg.NORM_QUANT and after.a == last[0].a  # the final norm reads the one-token copy
    out = next(i for i in prog.instrs if i.op == pg.OUTPUT)
    assert out.flags == pg.F_ARGMAX and prog.buffers[out.a].width == cfg.vocab_size
    att[0].f[5] = cfg.num_heads | 1 << 16
    (art / "program.bin").write_bytes(prog.encode())
    with pytest.raises(InputError, match="ATTENTION.*recompile"):
        ProgramExecutor(art)


def test_check_config_id(tmp_path):
    make_checkpoint(tmp_path / "ck", "tiny", arch="bitnet", seed=1, tokenizer=False)
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(CONFIGS["g5-gindex-planes"]))
    art = read_artifact(edgestream.compile_model(tmp_path / "ck", tmp_path / "m.esa", target="kv260",
                                                 hw_config=hw))
    cid = art.manifest["hw_config_id"]
    check_config_id(art, cid)
    check_config_id(art, "0x" + cid.upper())
    other = replace(HwConfig(**art.manifest["hw_config"]), Q=8).config_id
    with pytest.raises(DeviceError, match=f"built for config {other}.*needs {cid}"):
        check_config_id(art, other)
    cpu = read_artifact(edgestream.compile_model(tmp_path / "ck", tmp_path / "c.esa"))
    with pytest.raises(DeviceError, match="without a hardware configuration"):
        check_config_id(cpu, cid)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgestream.cli", *map(str, args)], capture_output=True, text=True)


def test_cli_report_and_errors(tmp_path):
    make_checkpoint(tmp_path / "ck", "tiny", arch="bitnet", seed=1, tokenizer=False)
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(CONFIGS["g3-base3-int8"]))
    r = _cli("compile", tmp_path / "ck", "-o", tmp_path / "m.esa", "--target", "kv260", "--hw-config", hw,
             "--clock", "200", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["hw"]["hw_config"]["clock_mhz"] == 200.0 and info["hw"]["perf"]["decode_tok_s"] > 0
    r = _cli("report", tmp_path / "m.esa", "--json")
    rep = json.loads(r.stdout)
    assert rep["calibrated"] == "rtl-simulation" and "not against a board" in rep["note"]
    assert 0 < rep["perf"]["decode_roofline_frac"] <= 1 and rep["perf"]["decode_layer"]
    r = _cli("report", tmp_path / "m.esa")
    assert r.returncode == 0 and "roofline" in r.stdout and "This is a MODEL" in r.stdout
    r = _cli("inspect", tmp_path / "m.esa", "--json")
    assert json.loads(r.stdout)["hw"]["config_id"] == rep["config_id"]
    # clear errors, exit 2, no traceback
    cases = [
        (("--target", "no-such-board"), "unknown"),
        (("--target", "kv260", "--hw-config", tmp_path / "missing.json"), "no such hardware configuration"),
        (("--hw-config", hw), "need a board target"),
    ]
    (tmp_path / "bad.json").write_text(json.dumps({"G": 5, "T": 3}))
    cases.append((("--target", "kv260", "--hw-config", tmp_path / "bad.json"), "field 'T' = 3"))
    (tmp_path / "big.json").write_text(json.dumps({"G": 5, "T": 64, "Q": 8, "table_mem": "uram"}))
    cases.append((("--target", "kv260", "--hw-config", tmp_path / "big.json"), "over the budget"))
    (tmp_path / "tgt.json").write_text(json.dumps({"name": "x", "resources": {"lut": 1000}}))
    cases.append((("--target", tmp_path / "tgt.json"), "resources.ff"))
    for extra, msg in cases:
        r = _cli("compile", tmp_path / "ck", "-o", tmp_path / "e.esa", *extra)
        assert r.returncode == 2, (extra, r.stderr)
        assert msg in r.stderr and "Traceback" not in r.stderr, (extra, r.stderr)
    r = _cli("report", tmp_path / "m.esa" / "nope")
    assert r.returncode == 2 and "not an edgestream artifact" in r.stderr
    assert not (tmp_path / "e.esa").exists()
