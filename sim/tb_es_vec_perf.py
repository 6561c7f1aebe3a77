"""Cycles of the vector unit's instructions at the shapes of BitNet 0.73B (hidden 1536, FFN 4096, 16 heads
of D = 96) on the kv260 geometry (Q = 64, MAXTOK = 4, G = 5, VMAX = 8192) and a 100-cycle DDR read
latency (the kv260 DDR model's), one token (decode) and a tile of MAXTOK (prefill), every result checked
bit for bit as in sim/tb_es_vec.py. Not part of the test suite (a few minutes of simulation):

    .venv/bin/python sim/tb_es_vec_perf.py [VL ...]      # default: 1 4

prints one table row per instruction and VL."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cocotb
import numpy as np

PARAMS = {"Q": 64, "MAXTOK": 4, "G": 5, "VMAX": 8192}


def shapes(tv):
    """(name, case maker) of the 0.73B layer's vector instructions; tv: the tb_es_vec module."""
    return [("NORM_QUANT 1536 (gain)", lambda rng, n: tv.case_norm(rng, n, 1536, "normal", True)),
            ("NORM_QUANT 4096 (gain)", lambda rng, n: tv.case_norm(rng, n, 4096, "normal", True)),
            ("ADD 1536", lambda rng, n: tv.case_add(rng, n, 1536)),
            ("ROPE 16 x 96", lambda rng, n: (*tv.case_rope(rng, n, 16, 96, 127), 127)),
            ("ACT_MUL ReLU^2 4096", lambda rng, n: tv.case_relu2(rng, n, 4096)),
            ("EMBED 1536", lambda rng, n: tv.case_embed(rng, n, 1536, 40))]


@cocotb.test()
async def perf(dut):
    import tb_es_vec as tv  # here: it reads the bench configuration when imported

    tb = tv.TB(dut, latency=100)
    await tb.reset()
    rng = np.random.default_rng(7)
    rows = []
    for name, make in shapes(tv):
        for ntok in (1, tv.MT):
            cyc = await tv.run_case(tb, make(rng, ntok), ntok, f"{name} ntok={ntok}", timeout=2_000_000)
            rows.append((name, ntok, cyc))
            dut._log.info("%s ntok=%d: %d cycles", name, ntok, cyc)
    Path(tv.CFG["out"]).write_text(json.dumps(rows))


def main(vls: list[int]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from runner import run_bench

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_rtl_vec import MODULES

    res = {}
    for vl in vls:
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"es_vec_perf_vl{vl}.json"
        params = {**PARAMS, "VL": vl}
        run_bench("verilator", "es_vec_tb_top", MODULES, params, "tb_es_vec_perf", cfg={**params, "out": str(out)})
        res[vl] = {(n, t): c for n, t, c in json.loads(out.read_text())}
    keys = list(res[vls[0]])
    print("| instruction | tokens | " + " | ".join(f"VL={v}" for v in vls) + " |")
    print("|---|---|" + "---|" * len(vls))
    for k in keys:
        print(f"| {k[0]} | {k[1]} | " + " | ".join(f"{res[v][k]:,}" for v in vls) + " |")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 4])
