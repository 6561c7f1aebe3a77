"""TLMM engine in simulation: sustained lookups/cycle and weights/cycle versus peak (Q*T lookups,
Q*T*G weights per cycle) on slices of the 0.73B BitNet layer shapes (hidden 1536, FFN 4096), GEMV and a
GEMM tile, with and without input stalls, and simulator speed, on Verilator and Icarus. Results are
checked bit-exactly against edgestream.tlmm on every run.

    python benchmarks/bench_tlmm_engine.py [--rows N] [--icarus-rows N] [--json]

A slice is `rows` output rows of the layer with its full K (every table is built). Per command the
engine spends ntok*ceil(K/G) cycles building tables (INGEST) and then looks up ceil(N/Q) row batches
(LOOKUP); both phases are measured separately, so the full layer's sustained share of peak follows
from the slice: (measured lookup rate over N rows) / (that + measured ingest). The engine is built
with MAXTOK = 4 (GEMM tile of 4 tokens) instead of 8: MAXTOK only sizes the table memories and the
accumulators, the schedule of a 4-token tile is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sim"))
from runner import MODULES_ENGINE, run_bench  # noqa: E402
from tlmm_engine_model import EngineConfig  # noqa: E402

CFG = EngineConfig(G=5, T=4, Q=4, MAXK=4096, MAXTOK=4)
LAYERS = [("attn q/k/v/o", 1536, 1536, 1), ("ffn up", 1536, 4096, 1), ("ffn down", 4096, 1536, 1),
          ("attn o GEMM x4", 1536, 1536, 4)]


def shapes(rows: int) -> list[dict]:
    return [{"layer": name, "k": k, "n": min(n, rows), "n_full": n, "ntok": ntok, "stall": stall}
            for stall in (0.0, 0.3) for name, k, n, ntok in LAYERS]


def run(sim: str, rows: int) -> tuple[list[dict], float]:
    """One build (timed) and one simulation of every shape; returns the runs and the build seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        outf = Path(tmp) / "perf.json"
        os.environ["TLMM_PERF"] = json.dumps(shapes(rows))
        os.environ["TLMM_PERF_OUT"] = str(outf)
        t0 = time.perf_counter()
        run_bench(sim, "tlmm_engine", MODULES_ENGINE, CFG.params(), "tb_tlmm_engine_perf", cfg=asdict(CFG),
                  results_tag="_perf", opt="-O1")
        wall = time.perf_counter() - t0
        res = json.loads(outf.read_text())
    for r in res:
        r["sim"] = sim
    return res, wall - sum(r["wall_s"] for r in res)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=64, help="output rows simulated per layer on Verilator")
    ap.add_argument("--icarus-rows", type=int, default=8, help="output rows per layer on Icarus")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    vres, vover = run("verilator", a.rows)
    ires, iover = run("icarus", a.icarus_rows)
    res = vres + ires
    peak_l = CFG.Q * CFG.T
    peak_w = peak_l * CFG.G
    for r in res:
        r["lookups_per_cycle"] = r["lookups"] / r["cycles"]
        r["weights_per_cycle"] = r["weights"] / r["cycles"]
        r["share_of_peak"] = r["lookups_per_cycle"] / peak_l
        r["lookup_phase_share"] = r["lookups"] / r["lookup_cycles"] / peak_l
        # the full layer: the measured lookup rate over all n_full rows plus the measured ingest
        full_lookup_cycles = r["lookup_cycles"] * (-(-r["n_full"] // CFG.Q)) / (-(-r["n"] // CFG.Q))
        r["share_of_peak_full_layer"] = (r["lookup_phase_share"] * full_lookup_cycles
                                         / (full_lookup_cycles + r["ingest_cycles"]))
        r["cycles_per_s"] = r["cycles"] / r["wall_s"]
    overhead = {"verilator": vover, "icarus": iover}
    if a.json:
        print(json.dumps({"config": asdict(CFG), "peak_lookups": peak_l, "peak_weights": peak_w,
                          "build_and_startup_s": overhead, "runs": res}))
        return 0
    print(f"TLMM engine G={CFG.G} T={CFG.T} Q={CFG.Q} MAXK={CFG.MAXK} MAXTOK={CFG.MAXTOK}: peak {peak_l} lookups = "
          f"{peak_w} weights per cycle; rows = simulated slice of the layer's output rows (full K)")
    hdr = (f"{'sim':<10}{'layer':<15}{'K':>5}{'rows':>11}{'tok':>4}{'stall':>6}{'cycles':>8}{'ingest':>7}"
           f"{'lookup/c':>9}{'weight/c':>9}{'%peak':>7}{'%lookup':>8}{'%layer':>8}{'cyc/s':>8}")
    print(hdr)
    print("-" * len(hdr))
    for r in res:
        print(f"{r['sim']:<10}{r['layer']:<15}{r['k']:>5}{r['n']:>5}/{r['n_full']:<5}{r['ntok']:>4}"
              f"{r['stall']:>6.1f}{r['cycles']:>8}{r['ingest_cycles']:>7}{r['lookups_per_cycle']:>9.2f}"
              f"{r['weights_per_cycle']:>9.1f}{100 * r['share_of_peak']:>6.1f}%"
              f"{100 * r['lookup_phase_share']:>7.1f}%{100 * r['share_of_peak_full_layer']:>7.1f}%"
              f"{r['cycles_per_s']:>8.0f}")
    print("%peak: whole command (ingest + lookup) on the slice; %lookup: the LOOKUP phase alone; %layer: the "
          "full layer (all N rows) from the measured lookup rate and ingest cycles; stall: share of idle "
          "input cycles on the activation and weight streams.")
    print(f"build + simulator start: verilator {vover:.0f} s, icarus {iover:.0f} s (cached builds are reused)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
