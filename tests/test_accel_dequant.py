"""The shell's dequantize stage (hw/rtl/es_dequant.sv: es_i2f + es_fmul) bit-exact against numpy's
float32 dequantization (docs/numerics.md) on random and edge values, on Verilator and Icarus; the
whole shell in DEQUANT mode is covered by tests/test_accel.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import SIMULATORS, run_bench  # noqa: E402


@pytest.mark.parametrize("sim", SIMULATORS)
def test_dequant_stage_bit_exact(sim):
    cfg = {"Q": 4, "MAXTOK": 8}
    run_bench(sim, "es_dequant", ["es_i2f", "es_fmul", "es_dequant"], cfg, "tb_accel_dequant", cfg=cfg)
