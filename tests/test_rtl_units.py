"""Per-module benches of the TLMM engine's decode and lookup stages (tlmm_wdecode, tlmm_lanes) on
Verilator and Icarus; the table builder has its own file, the whole engine tests/test_rtl_engine.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import SIMULATORS, run_bench  # noqa: E402

WDECODE = [({"G": 5, "L": 3, "TABLE_BINARY": 0, "UW": 6}, SIMULATORS),   # base-3 codes, invalid codes
           ({"G": 4, "L": 2, "TABLE_BINARY": 1, "UW": 6}, ("icarus",)),
           ({"G": 4, "L": 2, "TABLE_BINARY": 0, "UW": 6}, ("icarus",))]   # even split: halves of 2 + 2
LANES = [({"G": 2, "T": 2, "Q": 2, "MAXTOK": 2}, SIMULATORS),
         ({"G": 5, "T": 1, "Q": 3, "MAXTOK": 2}, ("verilator",))]   # the shipped split, 3 + 2


def _wid(c: dict, s: str) -> str:
    return f"G{c['G']}L{c['L']}{'b' if c['TABLE_BINARY'] else 't'}-{s}"


@pytest.mark.parametrize(("sim", "cfg"), [pytest.param(s, c, id=_wid(c, s)) for c, sims in WDECODE for s in sims])
def test_wdecode(sim, cfg):
    run_bench(sim, "tlmm_wdecode", ["tlmm_wdecode"], cfg, "tb_tlmm_wdecode", cfg=cfg)


@pytest.mark.parametrize(("sim", "cfg"), [pytest.param(s, c, id=f"G{c['G']}T{c['T']}Q{c['Q']}-{s}")
                                          for c, sims in LANES for s in sims])
def test_lanes(sim, cfg):
    run_bench(sim, "tlmm_lanes", ["tlmm_lanes"], cfg, "tb_tlmm_lanes", cfg=cfg)
