"""compiler/perfmodel.py against measurements of the simulated RTL, and the report's labels (every
figure modelled or measured). Fast: no simulation here; the measured numbers are recorded below with
the run they come from (docs/hardware.md "Measured on the simulated RTL" has the table)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from rich.console import Console

from edgestream.compiler import perfmodel as pm
from edgestream.compiler.dse import HwConfig
from edgestream.compiler.targets import load_target
from edgestream.errors import InputError
from edgestream.ir import ModelConfig
from edgestream.regmap import shell_config

# The errors the model states (docs/hardware.md): per instruction of the units at read latencies <= 100
# cycles, and the whole-token / whole-layer figures.
INSTR_ERR = 0.05
ATTN_ERR = 0.04
TOKEN_ERR = 0.02
# the DDR model's latency jitter (0..16 cycles a read) moves the shortest instructions by a few
# percent from run to run: an instruction is within its error or within two reads' jitter
JITTER_CYCLES = 32


def within(got: float, meas: float, err: float) -> bool:
    return abs(got - meas) <= max(err * meas, JITTER_CYCLES)

# BitNet-0.73B shape (edgestream/synth.py), compiled for kv260: the DSE's choice it was measured on
CFG_073 = HwConfig(G=5, T=1, Q=64, table_mem="uram", tern_encoding="gindex", int_encoding="planes", axi_ports=4,
                   axi_width_bits=128, axi_burst_beats=16, axi_outstanding=16, wbuf_kib=16, max_k=4096, max_tok=4,
                   ofifo_depth=16, vec_lanes=1, clock_mhz=250.0).validate()


def model(layers, hidden, ffn, heads, kv_heads, vocab):
    return ModelConfig("bitnet", vocab, hidden, ffn, layers, heads, kv_heads, hidden // heads, 1e-5, 10000.0, 2048)


M_073 = model(24, 1536, 4096, 16, 16, 32002)


def sim_target(latency_cycles: int, clock_mhz: float = 250.0):
    """The kv260 target at the read latency the simulation ran (the sim device's DDR model)."""
    return replace(load_target("kv260"), read_latency_ns=latency_cycles * 1e3 / clock_mhz)


# VEC_CYCLES of one instruction alone in one START (host/accel_bench._Stepper), Verilator shell, kv260
# DDR model (17.2 GB/s, read latency L + 0..16 jitter), commit 5f6b218: (op, width, head_dim, ntok, L, cycles).
# Test model = edgestream.synth "tiny" (hidden 64, FFN 160, D 16) on the shipped shell; demo =
# edgestream/data/tiny-bitnet (hidden 256, FFN 768, D 64) on the shipped shell; 0.73B = one layer of
# hidden 1536 / FFN 4096 / D 96 (vocab 2048) on CFG_073. The fit used the test and demo models at L = 0
# and 100; the 0.73B rows were not in it.
VEC_MEASURED = [
    ("EMBED", 64, 16, 1, 0, 203), ("NORM_QUANT", 64, 16, 1, 0, 808), ("ROPE", 64, 16, 1, 0, 270),
    ("ROPE", 32, 16, 1, 0, 204), ("ADD", 64, 16, 1, 0, 234), ("ACT_MUL", 160, 16, 1, 0, 420),
    ("NORM_QUANT", 160, 16, 1, 0, 1234), ("EMBED", 64, 16, 4, 0, 578), ("NORM_QUANT", 64, 16, 4, 0, 2827),
    ("ROPE", 64, 16, 4, 0, 915), ("ROPE", 32, 16, 4, 0, 665), ("ADD", 64, 16, 4, 0, 619),
    ("ACT_MUL", 160, 16, 4, 0, 1383), ("NORM_QUANT", 160, 16, 4, 0, 4282),
    ("EMBED", 64, 16, 1, 100, 603), ("NORM_QUANT", 64, 16, 1, 100, 1108), ("ROPE", 64, 16, 1, 100, 670),
    ("ROPE", 32, 16, 1, 100, 604), ("ADD", 64, 16, 1, 100, 534), ("ACT_MUL", 160, 16, 1, 100, 720),
    ("NORM_QUANT", 160, 16, 1, 100, 1534), ("EMBED", 64, 16, 4, 100, 1878), ("NORM_QUANT", 64, 16, 4, 100, 3427),
    ("ROPE", 64, 16, 4, 100, 2215), ("ROPE", 32, 16, 4, 100, 1965), ("ADD", 64, 16, 4, 100, 919),
    ("ACT_MUL", 160, 16, 4, 100, 1683), ("NORM_QUANT", 160, 16, 4, 100, 4882),
    ("EMBED", 256, 64, 1, 100, 795), ("NORM_QUANT", 256, 64, 1, 100, 1990), ("ROPE", 256, 64, 1, 100, 1108),
    ("ROPE", 128, 64, 1, 100, 862), ("ADD", 256, 64, 1, 100, 904), ("ACT_MUL", 768, 64, 1, 100, 1941),
    ("NORM_QUANT", 768, 64, 1, 100, 4334), ("EMBED", 256, 64, 4, 100, 2603), ("NORM_QUANT", 256, 64, 4, 100, 6393),
    ("ROPE", 256, 64, 4, 100, 3953), ("ROPE", 128, 64, 4, 100, 2890), ("ADD", 256, 64, 4, 100, 2457),
    ("ACT_MUL", 768, 64, 4, 100, 6544), ("NORM_QUANT", 768, 64, 4, 100, 14271),
    ("EMBED", 1536, 96, 1, 100, 2075), ("NORM_QUANT", 1536, 96, 1, 100, 7869), ("ROPE", 1536, 96, 1, 100, 3686),
    ("ADD", 1536, 96, 1, 100, 3492), ("ACT_MUL", 4096, 96, 1, 100, 8597), ("NORM_QUANT", 4096, 96, 1, 100, 19644),
]
# es_row, same runs: (op, width, L, cycles)
ROW_MEASURED = [("LAST_ROW", 64, 0, 72), ("OUTPUT", 300, 0, 109), ("LAST_ROW", 64, 100, 272), ("OUTPUT", 300, 100, 309),
                ("LAST_ROW", 256, 100, 318), ("OUTPUT", 1024, 100, 499), ("LAST_ROW", 1536, 100, 687),
                ("OUTPUT", 2048, 100, 774)]
# ATTN_CYCLES: (what, model, ntok, pos, L, cycles). The es_attn bench's perf case (docs/hardware.md
# "Attention unit", decode at position 127, L = 100) and the per-instruction runs above; the 0.73B layer
# of `bench --method layer` (docs/hardware.md "Measured on the simulated RTL") was not in the fit.
ATTN_MEASURED = [
    ("es_attn bench 0.73B", model(1, 1536, 4096, 16, 16, 256), 1, 127, 100, 40299),
    ("es_attn bench 2B4T", model(1, 2560, 6912, 20, 5, 256), 1, 127, 100, 21703),
    ("es_attn bench demo", model(1, 256, 768, 4, 2, 256), 1, 127, 100, 4827),
    ("test model decode L0", model(1, 64, 160, 4, 2, 300), 1, 8, 0, 1845),
    ("test model tile L0", model(1, 64, 160, 4, 2, 300), 4, 8, 0, 6601),
    ("test model decode", model(1, 64, 160, 4, 2, 300), 1, 8, 100, 2045),
    ("test model tile", model(1, 64, 160, 4, 2, 300), 4, 8, 100, 6801),
    ("demo decode", model(1, 256, 768, 4, 2, 1024), 1, 64, 100, 3592),
    ("demo tile", model(1, 256, 768, 4, 2, 1024), 4, 64, 100, 10919),
    # benchmarks/calibrate_units_sim.py (commit 5f6b218's RTL): the demo model at position 8
    ("demo decode pos 8 L0", model(1, 256, 768, 4, 2, 1024), 1, 8, 0, 2274),
    ("demo tile pos 8 L0", model(1, 256, 768, 4, 2, 1024), 4, 8, 0, 8491),
    ("demo decode pos 8", model(1, 256, 768, 4, 2, 1024), 1, 8, 100, 2474),
    ("demo tile pos 8", model(1, 256, 768, 4, 2, 1024), 4, 8, 100, 8691),
    ("0.73B one-layer run", M_073, 1, 128, 100, 40538),
    ("0.73B layer bench decode", M_073, 1, 128, 100, 40537),
    ("0.73B layer bench tile", M_073, 4, 62, 100, 58470),
]


def _err(model_v, meas):
    return (model_v - meas) / meas


@pytest.mark.parametrize("op,width,d,ntok,lat,cycles", VEC_MEASURED)
def test_vector_instruction_cycles(op, width, d, ntok, lat, cycles):
    got = pm.vec_cycles(shell_config(), op, width, ntok, lat, True, d)
    assert within(got, cycles, INSTR_ERR), (op, width, ntok, lat, got, cycles)


@pytest.mark.parametrize("op,width,lat,cycles", ROW_MEASURED)
def test_row_unit_cycles(op, width, lat, cycles):
    got = pm.row_cycles(op, width, lat)
    assert within(got, cycles, INSTR_ERR), (op, width, lat, got, cycles)


@pytest.mark.parametrize("what,m,ntok,pos,lat,cycles", ATTN_MEASURED, ids=[a[0] for a in ATTN_MEASURED])
def test_attention_cycles(what, m, ntok, pos, lat, cycles):
    got = pm.attn_cycles(m, ntok, pos, lat)
    assert within(got, cycles, ATTN_ERR), (what, got, cycles)


def _units(steps):
    vec = sum(s["cycles"] for s in steps if s["kind"] == "vector")
    attn = sum(s["cycles"] for s in steps if s["kind"] == "attention")
    return vec, attn


def test_bitnet_073_layer_and_token():
    """`bench --method layer` of the BitNet-0.73B shape on kv260 (docs/hardware.md "Measured on the
    simulated RTL", commit ec1a34e: one layer x 24 + head, read latency 100): decode layer 214,200 cycles
    (VEC 66,188, ATTN 40,537), prefill tile 654,240 (VEC 231,157, ATTN 58,470), LM head 1,452,780,
    6,595,902 cycles per token = 37.9 tok/s, TTFT 2.02 s at P = 128. Before this calibration the model
    said 349,187 / 923,244 / 1,238,155 / 9,820,307 cycles (25.5 tok/s)."""
    tgt = sim_target(100)
    p = pm.predict(M_073, CFG_073, tgt, "ternary", 2, context=128, prompt=128)
    f = CFG_073.clock_mhz * 1e6
    lat = 100.0
    dec = pm._layer_steps(M_073, CFG_073, "ternary", 2, 1, 129, lat, pm.ddr_bandwidth(CFG_073, tgt)["ddr_cap"] / f)
    vec, attn = _units(dec)
    assert abs(_err(vec, 66188)) <= TOKEN_ERR and abs(_err(attn, 40537)) <= TOKEN_ERR, (vec, attn)
    assert abs(_err(p["decode_layer_cycles"], 214200)) <= TOKEN_ERR
    assert abs(_err(p["prefill_layer_cycles"], 654240)) <= TOKEN_ERR
    tile = pm._layer_steps(M_073, CFG_073, "ternary", 2, 4, 66, lat, pm.ddr_bandwidth(CFG_073, tgt)["ddr_cap"] / f)
    vec, attn = _units(tile)
    assert abs(_err(vec, 231157)) <= TOKEN_ERR and abs(_err(attn, 58470)) <= TOKEN_ERR, (vec, attn)
    head = pm._head_steps(M_073, CFG_073, 1, lat, pm.ddr_bandwidth(CFG_073, tgt)["ddr_cap"] / f)
    # the head is DDR-bound on four weight ports (its weight-port stalls): 79 MB of INT8 planes
    assert abs(_err(sum(s["cycles"] for s in head), 1452780)) <= TOKEN_ERR
    assert abs(_err(f / p["decode_tok_s"], 6595902)) <= TOKEN_ERR
    assert abs(_err(p["ttft_s"], 2.02)) <= TOKEN_ERR and abs(_err(p["prefill_tok_s"], 63.3)) <= TOKEN_ERR
    assert p["source"] == "modelled" and p["calibration"] == pm.CALIBRATION


@pytest.mark.parametrize("m,ctx,cycles", [
    # bench --method layer, scaled (commit 5f6b218, L = 100): the test model at context 8, the demo at 64
    (model(2, 64, 160, 4, 2, 300), 8, 29535), (model(6, 256, 768, 4, 2, 1024), 64, 222374),
    # one START per decode token (docs/hardware.md "Decoder on the shell"): test model at position 2,
    # demo model at position 4
    (model(2, 64, 160, 4, 2, 300), 2, 29568), (model(6, 256, 768, 4, 2, 1024), 4, 215937),
])
def test_small_models_whole_token(m, ctx, cycles):
    m = replace(m, tie_word_embeddings=m.vocab_size == 1024)
    p = pm.predict(m, shell_config(), sim_target(100), context=ctx, prompt=4, detail=False)
    assert abs(_err(250e6 / p["decode_tok_s"], cycles)) <= TOKEN_ERR, (250e6 / p["decode_tok_s"], cycles)


def test_vector_lanes_are_modelled_not_measured():
    cfg4 = replace(shell_config(), vec_lanes=4)
    assert pm.calibration(shell_config()) == pm.CALIBRATION
    assert "vec_lanes = 4 is not measured" in pm.calibration(cfg4)
    one, four = (pm.vec_cycles(c, "NORM_QUANT", 4096, 1, 100) for c in (shell_config(), cfg4))
    # the fixed and per-token latencies stay; only the streamed elements divide by the lanes
    a, b, c, d = pm.VEC_CAL[1]["NORM_QUANT"]
    fixed = a + b * 100 + c + d * 100
    assert four - fixed == pytest.approx((one - fixed) / 4)
    p = pm.predict(M_073, replace(CFG_073, vec_lanes=4), sim_target(100), detail=False)
    assert "not measured" in p["calibration"]


# ---------------------------------------------------------------- report: modelled and measured labels
# `edgestream bench ART --device sim --method layer --context 8 --prompt-len 8 --json` of the test model
# compiled with --target kv260 --hw-config shell (commit 5f6b218; the fields report reads)
BENCH_TINY = {
    "source": "rtl-simulation", "device": "sim", "hw_config_id": "554e8a7ef4baef03", "clock_mhz": 250.0,
    "ddr_latency_cycles": 100, "layers": 2, "context": 8, "prompt_len": 8, "prefill_tile_tokens": 4,
    "decode_tok_s": 8464.533604198408, "prefill_tok_s": 13972.822859538199, "ttft_s": 0.00057254,
    "cycles_per_decode_token": 29535,
    "measured": {"layer_decode": {"cycles": 12242, "vec_cycles": 7919, "attn_cycles": 2045}},
    "scaled": {"decode": "embed + 2 x layer_decode + head"},
}


@pytest.fixture(scope="module")
def shell_art(tmp_path_factory):
    import edgestream
    from edgestream.synth import make_checkpoint

    d = tmp_path_factory.mktemp("perfmodel")
    make_checkpoint(d / "ck", "tiny", seed=0)
    return edgestream.compile_model(d / "ck", d / "m.esa", target="kv260", hw_config="shell")


def _manifest(art):
    return json.loads((art / "manifest.json").read_text())


def _render(info) -> str:
    con = Console(record=True, width=300)
    pm.render_report(info, con)
    return con.export_text()


def test_report_labels_every_figure_modelled(shell_art):
    info = pm.report_from_manifest(_manifest(shell_art), str(shell_art))
    assert info["perf_source"] == {"kind": "modelled", "calibration": pm.CALIBRATION, "read_latency_cycles": 55.0}
    assert info["perf"]["source"] == "modelled" and "measured" not in info
    text = _render(info)
    assert f"modelled (compiler/perfmodel.py, calibration {pm.CALIBRATION} at a read latency of 55 cycles)" in text
    assert "measured" not in text.replace("unless a figure says measured", "")
    perf_rows = [ln for ln in text.splitlines() if "tok/s (" in ln and "│" in ln]
    assert perf_rows and all("modelled" in ln for ln in perf_rows)
    # an artifact compiled before the units' calibration says its figures are not today's model's
    old = _manifest(shell_art)
    del old["perf"]["calibration"]
    assert pm.report_from_manifest(old, "old.esa")["perf_source"]["calibration"].startswith("not recorded")


def test_report_with_a_measured_bench(shell_art, tmp_path):
    b = tmp_path / "bench.json"
    b.write_text(json.dumps(BENCH_TINY))
    info = pm.attach_measured(pm.report_from_manifest(_manifest(shell_art), str(shell_art)), b)
    meas, at = info["measured"], info["model_at_measured"]
    assert meas["source"] == "rtl-simulation" and meas["method"] == "layer"
    assert meas["decode_tok_s"] == BENCH_TINY["decode_tok_s"]
    # the model re-predicted at the bench's context, prompt and read latency, within its stated error
    assert (at["context"], at["prompt"], at["read_latency_cycles"]) == (8, 8, 100)
    assert set(at["error"]) == {"decode_tok_s", "prefill_tok_s", "ttft_s", "cycles_per_decode_token",
                                "decode_layer_cycles"}
    assert all(abs(e) <= TOKEN_ERR for e in at["error"].values()), at["error"]
    text = _render(info)
    assert f"measured (rtl-simulation, sim, bench --method layer, {b})" in text
    assert "8464.5" in text and "measured (rtl-simulation)" in text and "modelled at the bench's latency" in text


def test_report_cli_bench(shell_art, tmp_path, capsys):
    from edgestream.cli import main

    b = tmp_path / "bench.json"
    b.write_text(json.dumps(BENCH_TINY))
    assert main(["report", str(shell_art), "--bench", str(b), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["measured"]["cycles_per_decode_token"] == 29535 and rep["perf_source"]["kind"] == "modelled"
    assert main(["report", str(shell_art), "--bench", str(b)]) == 0
    assert "measured (rtl-simulation" in capsys.readouterr().out


@pytest.mark.parametrize("content,msg", [
    ("not json", "not a JSON file"),
    (json.dumps({**BENCH_TINY, "decode_tok_s": 0}), "field 'decode_tok_s': expected a number > 0"),
    (json.dumps({k: v for k, v in BENCH_TINY.items() if k != "context"}), "field 'context'"),
    (json.dumps({"prefill": {"tokens": 4, "cycles_per_token": 10}}), "field 'decode.cycles_per_token'"),
    (json.dumps({**BENCH_TINY, "hw_config_id": "0123456789abcdef"}), "measured on hardware config 0123456789abcdef"),
])
def test_report_bad_bench(shell_art, tmp_path, content, msg):
    b = tmp_path / "bad.json"
    b.write_text(content)
    with pytest.raises(InputError, match=msg) as e:
        pm.attach_measured(pm.report_from_manifest(_manifest(shell_art), str(shell_art)), b)
    assert str(b) in str(e.value)
