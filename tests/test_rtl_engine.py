"""RTL TLMM engine vs edgestream.tlmm on the package's packed codes, on Verilator and Icarus.

Two engine configurations on both simulators (Verilator build time dominates, so they are small:
MAXK 20, MAXTOK 2), and the bit-serial-only engine (2**G-entry tables) on Icarus, whose build is
instant. Every case of tb_tlmm_engine runs on each: random data, activations -128/127, weights all
+1/-1/0, K not a multiple of G, N = 1 / K = 1, a single row, single token (GEMV) and a GEMM tile,
INT8/INT4/INT2 bit-serial with extreme weights, dense int8 weights (the G = 5 engine: random, -128/127
weights and activations, K not a multiple of G or G*T, padding rows, MAXTOK tokens, between ternary and
bit-serial commands under stalls), idle inputs and result backpressure, invalid codes."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import MODULES_ENGINE, SIMULATORS, run_bench  # noqa: E402
from tlmm_engine_model import EngineConfig  # noqa: E402

CONFIGS = [
    # base-3 1.6 bpw codes (G = 5), bit-serial through the ternary table, dense int8 weights (INT_DENSE),
    # GEMM tile of 2
    (EngineConfig(G=5, T=2, Q=2, MAXK=20, MAXTOK=2, INT_DENSE=1), SIMULATORS),
    # T groups per chunk > K/G for small K (masked groups), 3 rows per beat, a 4-deep result FIFO
    (EngineConfig(G=3, T=4, Q=3, MAXK=20, MAXTOK=2, OFIFO_DEPTH=4), SIMULATORS),
    # bit-serial-only engine: binary 2**G tables, G-bit codes, GEMV only
    (EngineConfig(G=4, T=1, Q=4, MAXK=16, MAXTOK=1, TABLE_BINARY=1), ("icarus",)),
]
CASES = [pytest.param(sim, cfg, id=f"G{cfg.G}T{cfg.T}Q{cfg.Q}{'b' if cfg.TABLE_BINARY else 't'}"
                                  f"{'d' if cfg.INT_DENSE else ''}-{sim}")
         for cfg, sims in CONFIGS for sim in sims]


@pytest.mark.parametrize(("sim", "cfg"), CASES)
def test_engine(sim, cfg):
    run_bench(sim, "tlmm_engine", MODULES_ENGINE, cfg.params(), "tb_tlmm_engine", cfg=asdict(cfg))
