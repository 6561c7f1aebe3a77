"""Cycles of the vector unit's instructions at the shapes of BitNet 0.73B (hidden 1536, FFN 4096, 16 heads
of D = 96) or of the 2B-4T (hidden 2560, FFN 6912, 20 heads of D = 128) on the kv260 geometry (Q = 64,
MAXTOK = 4, G = 5, VMAX = 8192) and a DDR read latency of 100 cycles (the kv260 DDR model's; --latency),
one token (decode) and a tile of MAXTOK (prefill), every result checked bit for bit as in
sim/tb_es_vec.py. Not part of the test suite (a few minutes of simulation per VL and shape):

    .venv/bin/python sim/tb_es_vec_perf.py [--shape 0.73b|2b4t] [--latency L] [VL ...]   # default: 1 4

prints one table row per instruction and VL."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cocotb
import numpy as np

PARAMS = {"Q": 64, "MAXTOK": 4, "G": 5, "VMAX": 8192}


SHAPES = {"0.73b": (1536, 4096, 16, 96), "2b4t": (2560, 6912, 20, 128)}   # hidden, FFN, heads, D


def shapes(tv, shape: str = "0.73b"):
    """(name, case maker) of the layer's vector instructions; tv: the tb_es_vec module. The 2B-4T's
    ROPE of K (5 KV heads) and its sub-layer norms are instructions of the same kinds at other widths."""
    h, f, nh, d = SHAPES[shape]
    return [(f"NORM_QUANT {h} (gain)", lambda rng, n: tv.case_norm(rng, n, h, "normal", True)),
            (f"NORM_QUANT {f} (gain)", lambda rng, n: tv.case_norm(rng, n, f, "normal", True)),
            (f"ADD {h}", lambda rng, n: tv.case_add(rng, n, h)),
            (f"ROPE {nh} x {d}", lambda rng, n: (*tv.case_rope(rng, n, nh, d, 127), 127)),
            (f"ACT_MUL ReLU^2 {f}", lambda rng, n: tv.case_relu2(rng, n, f)),
            (f"EMBED {h}", lambda rng, n: tv.case_embed(rng, n, h, 40))]


@cocotb.test()
async def perf(dut):
    import tb_es_vec as tv  # here: it reads the bench configuration when imported

    tb = tv.TB(dut, latency=int(tv.CFG.get("latency", 100)))
    await tb.reset()
    rng = np.random.default_rng(7)
    rows = []
    for name, make in shapes(tv, tv.CFG.get("shape", "0.73b")):
        for ntok in (1, tv.MT):
            cyc = await tv.run_case(tb, make(rng, ntok), ntok, f"{name} ntok={ntok}", timeout=2_000_000)
            rows.append((name, ntok, cyc))
            dut._log.info("%s ntok=%d: %d cycles", name, ntok, cyc)
    Path(tv.CFG["out"]).write_text(json.dumps(rows))


def main(vls: list[int], shape: str = "0.73b", latency: int = 100) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from runner import run_bench

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_rtl_vec import MODULES

    res = {}
    for vl in vls:
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"es_vec_perf_vl{vl}_{shape}_l{latency}.json"
        params = {**PARAMS, "VL": vl}
        run_bench("verilator", "es_vec_tb_top", MODULES, params, "tb_es_vec_perf",
                  cfg={**params, "out": str(out), "shape": shape, "latency": latency})
        res[vl] = {(n, t): c for n, t, c in json.loads(out.read_text())}
    keys = list(res[vls[0]])
    print("| instruction | tokens | " + " | ".join(f"VL={v}" for v in vls) + " |")
    print("|---|---|" + "---|" * len(vls))
    for k in keys:
        print(f"| {k[0]} | {k[1]} | " + " | ".join(f"{res[v][k]:,}" for v in vls) + " |")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vl", nargs="*", type=int, help="lane counts (default: 1 4)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="0.73b")
    ap.add_argument("--latency", type=int, default=100, help="DDR read latency in cycles")
    a = ap.parse_args()
    main(a.vl or [1, 4], a.shape, a.latency)
