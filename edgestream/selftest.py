"""`edgestream selftest --device pynq|sim|cpu`: is this accelerator the one edgestream expects, and does
it compute what the CPU computes? Checks, each pass or fail with its numbers:

1. identity: MAGIC, register map version and the configuration ID (the driver's own check), with the
   geometry and units the bitstream reports;
2. matmul: ternary and INT8/INT4/INT2 linear layers on 1 and 5 tokens, bit-identical to the numpy
   reference (edgestream.numerics.dequant over an exact integer matmul);
3. bandwidth: one ternary layer of K = MAXK: the read bandwidth the shell's counters show (read beats x
   16 bytes over the run's cycles at the configuration's clock) and, on a board, over wall time;
4. demo: the built-in tiny model (edgestream.synth), a few greedy tokens on the device and on the CPU
   executor: identical.

Prints a table (or --json) and exits 0 only when every check passed. docs/board.md says what to send
back when one fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from edgestream.errors import EdgestreamError

DEMO_PROMPT = [1, 5, 9]


def _identity(drv, dev) -> dict:
    from edgestream import regmap as rm

    r = dev.read_reg
    p, mk = r(rm.REG["HW_PARAMS"]), r(rm.REG["HW_MAXK"])
    geo = f"G={p & 0xF} T={p >> 4 & 0xFF} Q={p >> 12 & 0xFF} MAXTOK={p >> 20 & 0xFF} MAXK={mk & 0xFFFF}"
    return {"ok": True, "detail": f"MAGIC 0x{r(rm.REG['MAGIC']):08x}, map v{r(rm.REG['VERSION'])}, config "
                                  f"{drv.config_id():016x}, {geo}, units 0x{r(rm.REG['HW_UNITS']):x}"}


def _matmul(drv) -> dict:
    from edgestream.host.driver import LinearBank
    from edgestream.host.kernels import LinearWeights
    from edgestream.numerics import dequant
    from edgestream.tlmm import dense_matmul

    rng = np.random.default_rng(0)
    lws = [LinearWeights("ternary", "ternary", 2, rng.integers(-1, 2, (37, 23)).astype(np.int8)),
           LinearWeights("int8", "int", 8, rng.integers(-128, 128, (9, 11)).astype(np.int8)),
           LinearWeights("int4", "int", 4, rng.integers(-8, 8, (13, 30)).astype(np.int8)),
           LinearWeights("int2", "int", 2, rng.integers(-2, 2, (6, 7)).astype(np.int8))]
    bank = LinearBank(drv)
    betas = {}
    for lw in lws:
        betas[lw.name] = rng.uniform(1e-3, 2, lw.n).astype(np.float32)
        bank.add(lw, betas[lw.name])
    bank.load()
    bad, runs = [], 0
    for lw in lws:
        for ntok in (1, 5):
            q = rng.integers(-128, 128, (ntok, lw.k)).astype(np.int8)
            s = rng.uniform(1e-3, 1, ntok).astype(np.float32)
            got = bank.matmul(lw.name, q, s)
            want = dequant(dense_matmul(q, lw.w), s, betas[lw.name])
            runs += 1
            if got.tobytes() != want.tobytes():
                diff = int(np.count_nonzero(got.view(np.uint32) != want.view(np.uint32)))
                bad.append(f"{lw.name} x{ntok}: {diff} of {want.size} outputs differ")
    if bad:
        return {"ok": False, "detail": "; ".join(bad)}
    return {"ok": True, "detail": f"{runs} runs (ternary, INT8, INT4, INT2; 1 and 5 tokens) bit-identical"}


def _bandwidth(drv, clock_hz: float) -> dict:
    from edgestream import regmap as rm
    from edgestream.host.driver import LinearBank
    from edgestream.host.kernels import LinearWeights

    rng = np.random.default_rng(1)
    k = drv.geo.max_k
    lw = LinearWeights("bw", "ternary", 2, rng.integers(-1, 2, (256, k)).astype(np.int8))
    bank = LinearBank(drv)
    bank.add(lw)
    bank.load()
    q = rng.integers(-128, 128, (1, k)).astype(np.int8)
    t0 = time.perf_counter()
    bank.matmul(lw.name, q)
    wall = time.perf_counter() - t0
    c = drv.last_counters
    nbytes = c["rd_beats"] * rm.DATA_BYTES
    out = {"ok": c["rd_beats"] > 0, "read_bytes": nbytes, "cycles": c["cycles"], "wall_s": wall}
    if c["cycles"]:
        gbs = nbytes / (c["cycles"] / clock_hz) / 1e9
        out.update(gb_per_s=gbs, bytes_per_cycle=nbytes / c["cycles"])
        out["detail"] = (f"{nbytes} bytes in {c['cycles']} cycles: {nbytes / c['cycles']:.2f} B/cycle, "
                         f"{gbs:.2f} GB/s at {clock_hz / 1e6:g} MHz (wall {wall * 1e3:.1f} ms)")
    else:
        out["detail"] = f"{nbytes} bytes read; this device counts no cycles (wall {wall * 1e3:.1f} ms)"
    if not out["ok"]:
        out["detail"] = "the read-beat counter did not move: " + out["detail"]
    return out


def _demo(device: str, device_options: dict, tokens: int) -> dict:
    import edgestream
    from edgestream.synth import make_checkpoint

    with tempfile.TemporaryDirectory(prefix="edgestream-selftest-") as tmp:
        make_checkpoint(Path(tmp) / "ck", "tiny", seed=0)
        art = edgestream.compile_model(Path(tmp) / "ck", Path(tmp) / "m.esa")
        cpu = edgestream.load(art, device="cpu", kernel="numpy")
        want = list(cpu.generate(DEMO_PROMPT, max_new_tokens=tokens, temperature=0.0))
        sess = edgestream.load(art, device=device, device_options=device_options)
        try:
            got = list(sess.generate(DEMO_PROMPT, max_new_tokens=tokens, temperature=0.0))
        finally:
            sess.close()
    return {"ok": got == want, "tokens": got,
            "detail": f"{len(got)} tokens {'identical to' if got == want else 'DIFFER from'} the CPU's "
                      f"({got} vs {want})"}


def run_selftest(device: str, device_options: dict | None = None, tokens: int = 4) -> dict:
    from edgestream.host.driver import open_accel

    opts = dict(device_options or {})
    checks: dict[str, dict] = {}
    names = ["identity", "matmul", "bandwidth", "demo"]

    def failed(e: BaseException) -> dict:
        text = str(e) if isinstance(e, EdgestreamError) else "".join(traceback.format_exception_only(e)).strip()
        return {"ok": False, "detail": text}

    try:
        drv, dev = open_accel(device, **opts)
    except (EdgestreamError, OSError, RuntimeError) as e:
        checks["identity"] = failed(e)
    else:
        try:
            checks["identity"] = _identity(drv, dev)
            from edgestream import regmap as rm

            clock = rm.SHELL_HW["clock_mhz"] * 1e6
            for name, fn in (("matmul", lambda: _matmul(drv)), ("bandwidth", lambda: _bandwidth(drv, clock))):
                try:
                    checks[name] = fn()
                except (EdgestreamError, AssertionError, RuntimeError, ValueError) as e:
                    checks[name] = failed(e)
        finally:
            dev.close()
        try:
            checks["demo"] = _demo(device, opts, tokens)
        except (EdgestreamError, RuntimeError, ValueError) as e:
            checks["demo"] = failed(e)
    for n in names:
        checks.setdefault(n, {"ok": False, "detail": "not run (the identity check failed)"})
    return {"device": device, "ok": all(c["ok"] for c in checks.values()), "checks": checks}


def print_report(rep: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table("check", "result", "detail", title=f"edgestream selftest --device {rep['device']}")
    for name, c in rep["checks"].items():
        t.add_row(name, "[green]pass[/green]" if c["ok"] else "[red]FAIL[/red]", c["detail"])
    c = Console()
    c.print(t)
    c.print("all checks passed" if rep["ok"] else "[red]some checks failed[/red]: docs/board.md says what to send")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--device", default="sim", choices=["pynq", "sim", "cpu"])
    ap.add_argument("--bitfile", default=None, help="--device pynq: the overlay's .bit (its .hwh beside it)")
    ap.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--latency", type=int, default=100, help="--device sim: DDR read latency in cycles")
    ap.add_argument("--tokens", type=int, default=4, help="demo-model tokens (default 4)")
    ap.add_argument("--json", action="store_true")


def run_cli(a: argparse.Namespace) -> int:
    opts: dict = {}
    if a.device == "sim":
        opts = {"simulator": a.simulator, "latency": a.latency}
    elif a.device == "pynq" and a.bitfile:
        opts = {"bitfile": a.bitfile}
    rep = run_selftest(a.device, opts, a.tokens)
    if a.json:
        sys.stdout.write(json.dumps(rep, indent=2) + "\n")
    else:
        print_report(rep)
    return 0 if rep["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="edgestream selftest", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run_cli(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
