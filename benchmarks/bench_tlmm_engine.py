"""TLMM engine in simulation: sustained lookups/cycle and weights/cycle versus peak (Q*T lookups,
Q*T*G weights per cycle) on the 0.73B BitNet layer shapes (hidden 1536, FFN 4096), with and without
input stalls, and simulator speed, on Verilator and Icarus. Results are checked bit-exactly against
edgestream.tlmm on every run.

    python benchmarks/bench_tlmm_engine.py [--rows N] [--icarus-rows N] [--json]

Rows are a representative slice of each layer's output rows (the full K is always used: every
table is built); the table-build (ingest) cost is per activation vector, so the sustained share of
peak grows with the number of rows: steady state = N*ceil(K/G)/(Q*T) / (that + ntok*ceil(K/G)).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sim"))
from runner import MODULES_ENGINE, run_bench  # noqa: E402
from tlmm_engine_model import EngineConfig  # noqa: E402

CFG = EngineConfig(G=5, T=4, Q=4, MAXK=4096, MAXTOK=8)


def shapes(rows: int) -> list[dict]:
    out = []
    for name, k, n, ntok in [("attn/o GEMV", 1536, 1536, 1), ("ffn up GEMV", 1536, 4096, 1),
                             ("ffn down GEMV", 4096, 1536, 1), ("attn GEMM x8", 1536, 1536, 8)]:
        for stall in (0.0, 0.3):
            out.append({"layer": name, "k": k, "n": min(n, rows), "n_full": n, "ntok": ntok, "stall": stall})
    return out


def run(sim: str, rows: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        outf = Path(tmp) / "perf.json"
        cfg = asdict(CFG)
        import os

        os.environ["TLMM_PERF"] = json.dumps(shapes(rows))
        os.environ["TLMM_PERF_OUT"] = str(outf)
        run_bench(sim, "tlmm_engine", MODULES_ENGINE, CFG.params(), "tb_tlmm_engine_perf", cfg=cfg,
                  results_tag="_perf")
        res = json.loads(outf.read_text())
    for r in res:
        r["sim"] = sim
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=256, help="output rows simulated per layer on Verilator")
    ap.add_argument("--icarus-rows", type=int, default=32, help="output rows per layer on Icarus")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = run("verilator", a.rows) + run("icarus", a.icarus_rows)
    peak_l = CFG.Q * CFG.T
    peak_w = peak_l * CFG.G
    for r in res:
        r["lookups_per_cycle"] = r["lookups"] / r["cycles"]
        r["weights_per_cycle"] = r["weights"] / r["cycles"]
        r["share_of_peak"] = r["lookups_per_cycle"] / peak_l
        ng = -(-r["k"] // CFG.G)
        look = -(-r["n_full"] // CFG.Q) * -(-ng // CFG.T)
        r["steady_state_full_rows"] = look * r["ntok"] / (look * r["ntok"] + r["ntok"] * ng)
        r["cycles_per_s"] = r["cycles"] / r["wall_s"]
    if a.json:
        print(json.dumps({"config": asdict(CFG), "peak_lookups": peak_l, "peak_weights": peak_w, "runs": res}))
        return 0
    print(f"TLMM engine G={CFG.G} T={CFG.T} Q={CFG.Q}: peak {peak_l} lookups = {peak_w} weights per cycle; "
          f"rows = simulated slice of the layer's output rows (full K)")
    hdr = (f"{'sim':<10}{'layer':<15}{'K':>5}{'rows':>11}{'tok':>4}{'stall':>6}{'cycles':>9}"
           f"{'lookup/c':>9}{'weight/c':>9}{'%peak':>7}{'%peak@N':>8}{'cyc/s':>9}")
    print(hdr)
    print("-" * len(hdr))
    for r in res:
        print(f"{r['sim']:<10}{r['layer']:<15}{r['k']:>5}{r['n']:>5}/{r['n_full']:<5}{r['ntok']:>4}"
              f"{r['stall']:>6.1f}{r['cycles']:>9}{r['lookups_per_cycle']:>9.2f}{r['weights_per_cycle']:>9.1f}"
              f"{100 * r['share_of_peak']:>6.1f}%{100 * r['steady_state_full_rows']:>7.1f}%"
              f"{r['cycles_per_s']:>9.0f}")
    print("%peak@N: the same schedule's share of peak for all N rows of the layer with no stalls "
          "(ingest of ntok*ceil(K/G) beats + ceil(N/Q)*ceil(ceil(K/G)/T)*ntok lookup cycles).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
