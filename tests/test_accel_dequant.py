"""The shell's dequantize stage (hw/rtl/es_dequant.sv: es_i2f + es_fmul) bit-exact against numpy's
float32 dequantization (docs/numerics.md) on random and edge values, on Verilator and Icarus, with one
lane per accumulator (DL = Q) and with DL < Q lanes working through each unit in Q/DL sub-beats (the
shell's DL = 4 at Q = 16 and 64); the whole shell in DEQUANT mode is covered by tests/test_accel.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import SIMULATORS, run_bench  # noqa: E402


@pytest.mark.parametrize("q,dl", [(4, 4), (16, 4), (64, 4)])
@pytest.mark.parametrize("sim", SIMULATORS)
def test_dequant_stage_bit_exact(sim, q, dl):
    cfg = {"Q": q, "DL": dl, "MAXTOK": 8}
    run_bench(sim, "es_dequant", ["es_i2f", "es_fmul", "es_dequant"], cfg, "tb_accel_dequant", cfg=cfg)
