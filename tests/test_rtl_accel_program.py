"""The accelerator shell (hw/rtl/edgestream_accel.sv) running real program.bin images in a cocotb bench
(sim/tb_edgestream_accel.py): ternary and bit-serial linears with fused DEQUANT members over token
tiles, bit-exact against numpy; host stops and restarts; every fault code followed by SOFT_RESET and a
correct run; the per-segment fetch overhead. Verilator runs everything, Icarus the small case."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import run_bench  # noqa: E402

MODULES = ["../generated/es_regs_pkg", "tlmm_fifo", "tlmm_table_builder", "tlmm_table_mem", "tlmm_wdecode",
           "tlmm_lanes", "tlmm_engine", "es_axi_rd", "es_axi_wr", "es_i2f", "es_fmul", "es_dequant",
           "es_act_unpack", "es_axil_csr", "es_seq", "edgestream_accel"]
CASES = [("verilator", "programs", 100), ("verilator", "faults", 100), ("verilator", "overhead", 100),
         ("verilator", "smoke", 20), ("icarus", "smoke", 10)]


@pytest.mark.parametrize(("sim", "testcase", "latency"), [pytest.param(*c, id=f"{c[1]}-{c[0]}") for c in CASES])
def test_accel_program(sim, testcase, latency):
    run_bench(sim, "edgestream_accel", MODULES, {}, "tb_edgestream_accel", cfg={"latency": latency},
              testcase=testcase, results_tag=f"-{testcase}-{latency}")
