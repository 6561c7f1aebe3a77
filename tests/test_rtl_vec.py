"""The vector unit (hw/rtl/es_vec.sv) bit-exact against edgestream.numerics on Verilator and Icarus:
sim/tb_es_vec.py (real program.bin region tables, buffer maps and layouts; AXI RAM as DDR with
backpressure; every fault code the unit reports), at one element per cycle (VL = 1) and at four
(VL = 4, the bus beat)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import run_bench  # noqa: E402

MODULES = ["../generated/es_regs_pkg", "tlmm_fifo", "es_axi_rd", "es_axi_wr", "es_fmul", "es_fadd", "es_i2f",
           "es_f2i", "es_fdiv", "es_fsqrt", "es_fmul64", "es_fcvt", "es_vec_ram", "es_vec_dp",
           "es_vec", "../../sim/es_vec_tb_top"]
PARAMS = {"Q": 16, "MAXTOK": 4, "G": 5, "VMAX": 1024}


# Verilator runs every case at both widths; Icarus (~5x slower) every third case at VL = 1 (the shell's)
# and VL = 4 (the lanes,
# the banked buffers and the byte window are what differ) and every fault
@pytest.mark.parametrize("sim,vl", [("verilator", 1), ("verilator", 4), ("icarus", 1), ("icarus", 4)])
def test_vec_unit(sim, vl):
    params = {**PARAMS, "VL": vl}
    run_bench(sim, "es_vec_tb_top", MODULES, params, "tb_es_vec", cfg={**params, "quick": int(sim == "icarus")})
