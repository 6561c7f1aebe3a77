"""RTL table builder vs edgestream.tlmm table reference, on Verilator and Icarus (full rate, idle
inputs, backpressure, extreme activations). G = 3 ternary tables are also built inside the engine
tests' G = 3 configuration on both simulators."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import SIMULATORS, run_bench  # noqa: E402

CONFIGS = [
    {"G": 5, "BINARY": 0},   # base-3 / 1.6 bpw group: split 3 + 2, 14 + 5 stored entries
    {"G": 4, "BINARY": 1},   # bit-serial binary tables (2 + 2)
    {"G": 4, "BINARY": 0},   # halves of 2: +256 needs TW = 10 (8 + ceil(log2 2) = 9 overflowed)
]


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"G{c['G']}{'b' if c['BINARY'] else 't'}")
def test_table_builder(sim, cfg):
    params = {"G": cfg["G"], "BINARY": cfg["BINARY"], "UW": 6}
    run_bench(sim, "tlmm_table_builder", ["tlmm_table_builder"], params, "tb_tlmm_table_builder", cfg=cfg)
