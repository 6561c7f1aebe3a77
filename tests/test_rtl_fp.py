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

MODULES = ["es_fadd", "es_f2i", "es_fdiv", "es_fcvt", "es_fmul64", "es_fsqrt", "es_fmul", "../generated/es_exp2_rom",
           "es_exp2neg", "../../sim/tb_es_fp_top"]


@pytest.mark.parametrize("sim", SIMULATORS)
def test_fp_primitives_bit_exact(sim):
    run_bench(sim, "tb_es_fp_top", MODULES, {}, "tb_es_fp")


def test_exp2_rom_is_generated_from_numerics():
    """hw/generated/es_exp2_rom.sv holds exactly numerics.EXP2_T / EXP2_D (python -m edgestream.hwtables)."""
    import numpy as np

    from edgestream import hwtables
    from edgestream.numerics import EXP2_D, EXP2_T

    assert hwtables.EXP2_ROM.read_text() == hwtables.exp2_rom_sv()
    words = [line.split("64'h")[1].rstrip(";") for line in hwtables.EXP2_ROM.read_text().splitlines()
             if ": data <= 64'h" in line]
    assert len(words) == 256
    t = np.array([int(w.split("_")[0], 16) for w in words], np.uint32).view(np.float32)
    d = np.array([int(w.split("_")[1], 16) for w in words], np.uint32).view(np.float32)
    assert np.array_equal(t, EXP2_T) and np.array_equal(d, EXP2_D)
