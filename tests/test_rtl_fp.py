"""The floating-point primitives of the vector and attention units (hw/rtl/es_fadd, es_f2i, es_fdiv,
es_fcvt, es_fmul64, es_fsqrt, es_exp2neg) bit-exact against numpy (sim/tb_es_fp.py) on Verilator and
Icarus: random operands over the whole exponent range, edge cases, en stalls / start-busy-done. All
units sit in one harness (sim/tb_es_fp_top.sv), so each simulator builds and starts once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import SIMULATORS, run_bench  # noqa: E402

MODULES = ["es_fadd", "es_f2i", "es_fdiv", "../../sim/tb_es_fp_top"]


@pytest.mark.parametrize("sim", SIMULATORS)
def test_fp_primitives_bit_exact(sim):
    run_bench(sim, "tb_es_fp_top", MODULES, {}, "tb_es_fp")
