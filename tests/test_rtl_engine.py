"""RTL TLMM engine vs edgestream.tlmm on the package's packed codes, on Verilator and Icarus."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import SIMULATORS, run_bench  # noqa: E402
from tlmm_engine_model import EngineConfig  # noqa: E402

MODULES = ["tlmm_table_builder", "tlmm_wdecode", "tlmm_table_mem", "tlmm_lanes", "tlmm_fifo", "tlmm_engine"]

CONFIGS = [
    EngineConfig(G=5, T=2, Q=2, MAXK=32, MAXTOK=3),                  # base-3 codes, GEMM tile of 3
    EngineConfig(G=3, T=4, Q=3, MAXK=40, MAXTOK=2, OFIFO_DEPTH=4),   # T groups > K/G sometimes, tiny FIFO
    EngineConfig(G=4, T=1, Q=4, MAXK=24, MAXTOK=1, TABLE_BINARY=1),  # bit-serial-only engine, GEMV only
]


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"G{c.G}T{c.T}Q{c.Q}{'b' if c.TABLE_BINARY else 't'}")
def test_engine(sim, cfg):
    run_bench(sim, "tlmm_engine", MODULES, cfg.params(), "tb_tlmm_engine", cfg=asdict(cfg))
