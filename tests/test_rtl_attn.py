"""The attention unit (hw/rtl/es_attn.sv) on Verilator and Icarus: sim/tb_es_attn.py runs ATTENTION
over a KV cache in an AXI RAM and compares the whole memory image (KV slots written, outputs) byte for
byte with sim/es_attn_model.py; the model itself is checked here against the CPU executor's attention
(edgestream.host.executor.CachedDecoder.attend), so the RTL is bit-exact to the executor. Both KV
layouts: one KV port (KVP = 1, the keys and values on the unit's read stream) and four (KVP = 4, the
striped slots on four read ports of their own, docs/units.md "KV cache in DDR")."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from es_attn_model import BEAT, KvLayout, Regs, attention_instr, cdiv, read_rows, run_attention, write_rows  # noqa: E402
from runner import run_bench  # noqa: E402

from edgestream import program as pg  # noqa: E402
from edgestream.host.executor import CachedDecoder, KVCache  # noqa: E402

MODULES = ["../generated/es_regs_pkg", "../generated/es_exp2_rom", "es_fmul", "es_i2f", "es_fadd", "es_f2i", "es_fdiv",
           "es_exp2neg", "es_fcvt",
           "tlmm_fifo", "es_axi_rd", "es_axi_wr", "es_attn_dly", "es_attn_div", "es_attn_rowaddr", "es_attn_dot",
           "es_attn_vacc", "es_attn_quant", "es_attn_score", "es_attn_soft", "es_attn_wgt", "es_attn_scal",
           "es_attn_out", "es_attn", "../../sim/es_attn_bench"]
PARAMS = {"Q": 16, "MAXTOK": 4, "DMAX": 128, "SMAX": 256, "NQ": 4}


@pytest.mark.parametrize("kvp", [1, 4])
def test_model_is_the_cpu_executors_attention(kvp):
    """Prefill then decode steps through the memory-image model equal CachedDecoder.attend (the CPU
    executor), output bits and cache contents, in the KV layout of `kvp` KV ports."""
    rng = np.random.default_rng(0)
    layers, heads, kvh, d, q, mt = 2, 4, 2, 32, 16, 4
    cap = 12
    cfg = SimpleNamespace(num_layers=layers, num_kv_heads=kvh, num_heads=heads, head_dim=d, max_position=64)
    ref = CachedDecoder()
    ref.cfg = cfg
    ref.cache = KVCache(layers, kvh, d, cap)
    lay_bytes = KvLayout.bytes_for(layers, kvh, d, cap, kvp)
    widths = [heads * d, kvh * d, kvh * d, heads * d]
    caps = [cdiv(5, mt) * cdiv(w, q) * mt * 4 * q for w in widths]   # room for the longest step
    offs = [4 * BEAT + sum(caps[:i]) for i in range(4)]
    act = kv_base = 4 * BEAT + sum(caps)
    mem = bytearray(act + lay_bytes)
    for ntok in (5, 1, 1, 3):
        for i, w in enumerate(widths):
            mem[BEAT * i:BEAT * i + 13] = np.array([offs[i], caps[i], w], "<u4").tobytes() + bytes([pg.B_F32])
        x = [rng.standard_normal((ntok, w)).astype(np.float32) for w in widths[:3]]
        for i in range(3):
            write_rows(mem, offs[i], x[i], q, mt)
        for layer in range(layers):
            regs = Regs(n_buffers=4, act_base=0, act_size=act, kv_base=kv_base, kv_size=lay_bytes, ntok=ntok,
                        pos0=ref.pos)
            run_attention(mem, regs, attention_instr(3, 0, 1, 2, layer, layers, d, heads, kvh), q, mt, 128, 256,
                          kvp)
            got = read_rows(mem, offs[3], ntok, widths[3], q, mt)
            want = ref.attend(x[0], x[1], x[2], layer)
            assert got.tobytes() == want.astype(np.float32).tobytes()
        ref.pos += ntok
    lay = KvLayout(layers, kvh, d, lay_bytes, kvp)
    assert lay.slots == cap
    for layer in range(layers):
        for g in range(kvh):
            for p in range(ref.pos):
                head, row = lay.get_k(mem, layer, g, p, kv_base)
                dk, dv = np.frombuffer(head[:8], "<f4")
                assert (dk, dv) == (ref.cache.dk[layer, g, p], ref.cache.dv[layer, g, p])
                assert row == ref.cache.kq[layer, g, p].tobytes()
                assert lay.get_v(mem, layer, g, p, kv_base) == ref.cache.vq[layer, g, p].tobytes()


@pytest.mark.parametrize(("sim", "q", "kvp"), [("verilator", 16, 1), ("icarus", 16, 1), ("verilator", 64, 1),
                                              ("verilator", 16, 4), ("icarus", 16, 4), ("verilator", 64, 4)])
def test_attention_unit_bit_exact(sim, q, kvp):
    """Q = 64 (the kv260 choice): head rows of 16, 32, 48 and 96 floats are parts of 64-float units
    (D = 96 is BitNet 0.73B's), and the k/v rows of 2 heads x 16 a partial unit. KVP = 4: every case
    again over the striped layout (D = 16 and 48: a K slot of one word; 32, 64, 96, 128: two or three
    words, padding beats in K and V), the KV ports with idle cycles on R as the other channels."""
    tests = ["cases", "faults"] if q == 16 else ["cases"]
    params = dict(PARAMS, Q=q) if kvp == 1 else dict(PARAMS, Q=q, KVP=kvp)
    cfg = dict(params, tests=tests)
    if sim == "icarus":   # the second simulator: a decode, a causal GQA tile and the faults (time)
        cfg["cases"] = ["decode-first", "prefill-tile"] if kvp == 1 else ["decode-first", "prefill-tile", "gqa4-d128"]
    run_bench(sim, "es_attn_bench", MODULES, params, "tb_es_attn", cfg=cfg)


# The whole shell with the KV stream on its four weight ports: the kv260 geometry (T 1, Q 64, four ports),
# whose package has KVP = 4 (regmap.kv_ports), a GQA decoder compiled for it, on --device sim: the real
# host, driver and RTL, the host sizing the striped KV region from HW_UNITS [7:4].
def test_shell_kvp4_decoder_matches_cpu(tmp_path):
    """Prefill (a token tile), one START per token over a growing cache and greedy generation on the
    KVP = 4 shell: logits and tokens identical to the CPU executor; the attention unit's reads on the
    weight ports (RD_BEATS counts them)."""
    import json
    from dataclasses import replace

    import edgestream
    from edgestream import regmap as rm
    from edgestream.synth import make_checkpoint

    kvp = 4
    ck = make_checkpoint(tmp_path / "ck", "tiny", seed=3)   # 2 layers, 4 heads / 2 KV heads, D 16
    cfg = replace(rm.shell_config(), T=1, Q=64, axi_ports=kvp, wbuf_kib=rm.SHELL_HW["wbuf_kib"] * kvp)
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(cfg.validate("kvp4 shell").to_dict()))
    art = edgestream.compile_model(ck, tmp_path / "m.esa", target="kv260", hw_config=hw)
    ids = [0, 5, 17, 42, 99, 7]
    cpu = edgestream.load(art)
    want_fwd = cpu.forward(ids)
    want_gen = list(cpu.generate(ids, max_new_tokens=4))
    sess = edgestream.load(art, device="sim")
    try:
        assert "lowered" not in sess.device_note
        assert sess.accel.units() & 3 == 3, sess.device_note
        assert sess.accel.unit_limits()["kvp"] == kvp and sess.executor.kv_layout().kvp == kvp
        got_fwd = sess.forward(ids)
        got_gen = list(sess.generate(ids, max_new_tokens=4))
    finally:
        sess.close()
    assert np.array_equal(got_fwd, want_fwd)
    assert got_gen == want_gen
