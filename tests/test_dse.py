"""Design-space exploration respects every budget on every target (property-based over model shapes),
bad targets/configs give clear errors, and the KV260 choice for the 0.73B shape meets the goal."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgestream.compiler import rtl_space
from edgestream.compiler.dse import (
    HwConfig,
    estimate_resources,
    explore,
    hwconfig_from_dict,
    load_hwconfig,
    over_budget,
)
from edgestream.compiler.perfmodel import predict
from edgestream.compiler.targets import RESOURCES, list_targets, load_target, target_from_dict
from edgestream.errors import InputError
from edgestream.ir import ModelConfig


def _model(layers, hidden, ffn, heads, kv_div, vocab, arch="bitnet"):
    hd = 2 * max(1, hidden // heads // 2)
    kv = max(1, heads // kv_div) if heads % max(1, heads // kv_div) == 0 else heads
    return ModelConfig(arch, vocab, hidden, ffn, layers, heads, kv, hd, 1e-5, 1e4, 2048)


def test_bundled_targets_load():
    assert {"kv260", "zcu104", "ultra96v2", "generic"} <= set(list_targets())
    kv = load_target("kv260")
    assert kv.resources == {"lut": 117120, "ff": 234240, "dsp": 1248, "bram36": 144, "uram": 64}
    assert kv.ports == 4 and kv.port_width_bits == 128 and 17 <= kv.ddr_peak_gbps <= 19.2


@settings(max_examples=12, deadline=None)
@given(layers=st.integers(1, 32), hidden=st.integers(8, 4096), ffn=st.integers(8, 12000),
       heads=st.sampled_from([1, 2, 4, 8, 16, 32]), kv_div=st.sampled_from([1, 2, 4]),
       vocab=st.integers(16, 150000), target=st.sampled_from(["kv260", "zcu104"]),
       arch=st.sampled_from(["bitnet", "llama"]))
def test_dse_respects_every_budget(layers, hidden, ffn, heads, kv_div, vocab, target, arch):
    tgt = load_target(target)
    m = _model(layers, hidden, ffn, heads, kv_div, vocab, arch)
    wk = ("ternary", 2) if arch == "bitnet" else ("int", 8)
    ex = explore(m, tgt, *wk, effort="quick")
    assert rtl_space.why_not(ex["chosen"]) is None  # only what the RTL implements
    res = estimate_resources(ex["chosen"])
    for r in RESOURCES:
        assert res[r] <= tgt.budget(r), (r, res[r], tgt.budget(r))
    assert ex["chosen"].axi_ports <= tgt.ports and ex["chosen"].clock_mhz in tgt.clocks_mhz
    for c in ex["candidates"]:
        if c["fits"]:
            assert all(c["util"][r] <= tgt.max_utilization[r] + 1e-3 for r in RESOURCES)
        else:
            assert c["over"] and c["decode_tok_s"] > ex["perf"]["decode_tok_s"]
    assert 0 < ex["perf"]["decode_roofline_frac"] <= 1.0
    assert ex["perf"]["decode_tok_s"] > 0 and ex["perf"]["ttft_s"] > 0


def test_kv260_073b_choice_is_implemented_and_ddr_bound():
    """The KV260 choice for the 0.73B shape is a configuration the RTL implements, inside 80% of the
    LUTs, and its decode is bound by the memory path (its one port), so halving the DDR bandwidth
    costs decode speed. The issue's 75 tok/s goal is a benchmark target (benchmarks/), measured on the
    RTL; this model of today's one-port shell predicts about 13 tok/s."""
    m = _model(24, 1536, 4096, 16, 1, 32002)
    kv = load_target("kv260")
    ex = explore(m, kv)
    p = ex["perf"]
    assert rtl_space.why_not(ex["chosen"]) is None
    assert ex["utilization"]["lut"] <= 0.80
    assert ex["binding"]["decode_bound_by"] and ex["binding"]["highest_utilization"]
    assert 0 < p["decode_roofline_frac"] <= 1.0
    slow = target_from_dict({**kv.raw, "ddr": {**kv.raw["ddr"], "peak_gbps": kv.ddr_peak_gbps / 8}})
    assert predict(m, ex["chosen"], slow)["decode_tok_s"] < 0.6 * p["decode_tok_s"]


def test_no_shipped_target_chooses_what_the_rtl_lacks():
    m = _model(24, 1536, 4096, 16, 1, 32002)
    for name in list_targets():
        tgt = load_target(name)
        try:
            ex = explore(m, tgt, effort="quick")
        except InputError as e:  # a target nothing implemented fits: one clear error naming the resource
            assert "no hardware configuration fits" in str(e) and name in ("generic", "ultra96v2"), e
            continue
        assert rtl_space.why_not(ex["chosen"]) is None, name
        for c in ex["candidates"]:  # the summaries of everything weighed
            assert c["G"] == rtl_space.G and (c["T"], c["Q"]) in rtl_space.TQ and c["max_k"] in rtl_space.MAX_K
            assert c["clock_mhz"] <= rtl_space.MAX_CLOCK_MHZ and c["tern_encoding"] == "gindex"


def test_perf_model_monotone_in_context_and_clock():
    m = _model(24, 1536, 4096, 16, 1, 32002)
    kv = load_target("kv260")
    cfg = HwConfig(G=2, T=32, Q=8, table_mem="bram", max_k=4096, max_tok=8, clock_mhz=250.0)
    a, b = predict(m, cfg, kv, context=128), predict(m, cfg, kv, context=1024)
    assert b["bytes_per_token"]["kv_cache"] > a["bytes_per_token"]["kv_cache"] and b["decode_tok_s"] < a["decode_tok_s"]
    slow = predict(m, HwConfig(**{**cfg.to_dict(), "clock_mhz": 150.0}), kv, prompt=64)
    assert slow["prefill_tok_s"] < predict(m, cfg, kv, prompt=64)["prefill_tok_s"]


def test_config_id_stable_and_sensitive():
    a = HwConfig()
    assert a.config_id == HwConfig().config_id and len(a.config_id) == 16
    assert len({HwConfig(G=g).config_id for g in (2, 3, 4, 5)}) == 4
    assert hwconfig_from_dict({"config_id": "whatever", **a.to_dict()}).config_id == a.config_id


@pytest.mark.parametrize("bad, msg", [
    ({"G": 6}, "field 'G' = 6"),
    ({"T": 3}, "field 'T' = 3"),
    ({"table_mem": "flash"}, "field 'table_mem'"),
    ({"clock_mhz": "fast"}, "field 'clock_mhz'"),
    ({"axi_burst_beats": 512}, "field 'axi_burst_beats'"),
    ({"lanes": 4}, "unknown field 'lanes'"),
])
def test_bad_hwconfig(bad, msg):
    with pytest.raises(InputError, match=msg):
        hwconfig_from_dict(bad, "cfg.json")


def test_bad_targets(tmp_path):
    kv = load_target("kv260").raw
    cases = [
        ({k: v for k, v in kv.items() if k != "ddr"}, "field 'ddr' is missing"),
        ({**kv, "resources": {**kv["resources"], "uram": -1}}, "resources.uram"),
        ({**kv, "resources": {**kv["resources"], "lut": "many"}}, "resources.lut"),
        ({**kv, "clocks_mhz": []}, "clocks_mhz"),
        ({**kv, "max_utilization": {"lut": 1.5}}, "max_utilization.lut"),
        ({**kv, "ps_pl": {**kv["ps_pl"], "width_bits": 100}}, "ps_pl.width_bits"),
    ]
    for i, (d, msg) in enumerate(cases):
        p = tmp_path / f"t{i}.json"
        p.write_text(json.dumps(d))
        with pytest.raises(InputError, match=msg.replace(".", r"\.")) as e:
            load_target(p)
        assert str(p) in str(e.value)
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_target(tmp_path / "x.json")
    with pytest.raises(InputError, match="no such hardware configuration"):
        load_hwconfig(tmp_path / "none.json")


def test_tiny_budget_names_the_binding_resource():
    kv = load_target("kv260").raw
    tiny = target_from_dict({**kv, "name": "tiny", "resources": {**kv["resources"], "lut": 20000}})
    with pytest.raises(InputError, match="no hardware configuration fits.*lut"):
        explore(_model(2, 256, 512, 4, 1, 1000), tiny, effort="quick")
    cfg = HwConfig(G=5, T=64, Q=8)
    assert "uram" in over_budget(estimate_resources(cfg), load_target("kv260"))


def test_shipped_shell_fits_the_kv260_by_the_model():
    """The RTL shell's configuration (edgestream.regmap.SHELL_HW) must stay inside the KV260 budget of
    the resource model, or the board flow (hw/boards/kv260) cannot close."""
    from edgestream import regmap as rm
    from edgestream.compiler import dse
    from edgestream.compiler.targets import load_target

    res = dse.estimate_resources(rm.shell_config())
    assert dse.over_budget(res, load_target("kv260")) == []


# The whole accelerator by Yosys for the kv260 choice of the 0.73B (G5 T1 Q64, 4 weight ports and KVP 4,
# URAM tables, MAXK 4096, int8 head, VL 1, UNITS 7, split tables; python -m edgestream.hwsynth --top accel
# --config kv260-0.73b, docs/hardware.md "Whole accelerator"): per instance and in total
YOSYS_KV260_073B = {"lut": 90442, "ff": 60540, "dsp": 529, "bram36": 44.5, "uram": 8}
YOSYS_KV260_073B_PARTS = {  # instance(s) -> (LUT, FF, DSP) and the model's terms that stand for them
    "engine": ((19245, 21709, 64), ("lanes", "row_accumulators", "engine_control", "table_builder",
                                    "weight_decode", "dense_multipliers", "result_fifo")),
    "es_attn": ((36156, 20756, 382), ("attention_unit",)),
    "es_vec": ((15052, 6741, 9), ("vector_unit",)),
    "es_dequant": ((6551, 1774, 16), ("dequant",)),
    "es_seq + csr + unpack + glue": ((7501, 5787, 53), ("shell",)),
    "es_row": ((1420, 606, 5), ("row_unit",)),
    "9 es_axi_rd + 3 es_axi_wr": ((4525, 3169, 0), ("axi",)),
}


def _kv260_073b_choice():
    # what the DSE chose for the 0.73B on kv260 with the structural shell terms: the synthesized configuration
    return HwConfig(G=5, T=1, Q=64, table_mem="uram", axi_ports=4, wbuf_kib=4 * rtl_space.WBUF_KIB_PER_PORT,
                    max_k=4096, clock_mhz=250.0, int_encoding="int8", vec_lanes=1, **rtl_space.FIXED)


def test_yosys_shell_terms_reproduce_the_whole_accelerator():
    """The "yosys" shell/unit terms against the whole-accelerator run they were fitted on: the total
    within 1% (LUT, FF), DSP/URAM exact, BRAM36 within one; each term's LUT and FF within 3% of its
    instances (the AXI masters 5%: one cost per read master, the program master's is smaller)."""
    res = estimate_resources(_kv260_073b_choice(), shell="yosys")
    want = YOSYS_KV260_073B
    assert abs(res["lut"] / want["lut"] - 1) < 0.01 and abs(res["ff"] / want["ff"] - 1) < 0.01, res
    assert res["dsp"] == want["dsp"] and res["uram"] == want["uram"] and abs(res["bram36"] - want["bram36"]) <= 1
    br = res["breakdown"]
    for name, ((lut, ff, dsp), terms) in YOSYS_KV260_073B_PARTS.items():
        m = {r: sum(br[t].get(r, 0) for t in terms) for r in ("lut", "ff", "dsp")}
        tol = 0.05 if name.startswith("9 es_axi") else 0.03
        assert abs(m["lut"] / lut - 1) <= tol and abs(m["ff"] / ff - 1) <= tol, (name, m, lut, ff)
        assert m["dsp"] == dsp, (name, m, dsp)
    # with the split tables the real design fits the KV260's 80% LUT budget at that choice (77%; 106% with
    # whole 122-entry tables)
    assert res["lut"] <= 0.8 * load_target("kv260").resources["lut"]


def test_yosys_shell_terms_choose_what_fits():
    """The DSE budgets with the measured shell by default: the kv260's 0.73B choice is the synthesized
    one, (T, Q, ports) = (1, 64, 4), inside 80% of the LUTs; nothing implemented fits the Ultra96-V2, and
    the error names what the smallest configuration needs."""
    from edgestream.compiler import dse

    assert dse.SHELL_TERMS == "yosys"
    m = _model(24, 1536, 4096, 16, 1, 32002)
    ex = explore(m, load_target("kv260"), effort="quick")
    c = ex["chosen"]
    assert rtl_space.why_not(c) is None and ex["utilization"]["lut"] <= 0.80
    assert (c.T, c.Q, c.axi_ports, c.max_k) == (1, 64, 4, 4096)
    assert over_budget(estimate_resources(_kv260_073b_choice()), load_target("kv260")) == []
    with pytest.raises(InputError, match=r"no hardware configuration fits.*lut.*needs [\d,]+ LUT of 56,448"):
        explore(m, load_target("ultra96v2"), effort="quick")
    with pytest.raises(InputError, match="shell terms"):
        estimate_resources(c, shell="vivado")
