"""The accelerator shell (hw/rtl/edgestream_accel.sv) running real program.bin images in a cocotb bench
(sim/tb_edgestream_accel.py): ternary and bit-serial linears with fused DEQUANT members over token
tiles, bit-exact against numpy; host stops and restarts; every fault code followed by SOFT_RESET and a
correct run; the per-segment fetch overhead. Verilator runs everything, Icarus the small case.

Geometries: the shipped one (es_regs_pkg, edgestream.regmap.SHELL_HW: G=5, T=1, Q=16; a result or
beta unit of Q float32 is four bus beats, through the shell's serializer and beta gearbox), G=5, T=4,
Q=4 (RTL parameters T, Q and the matching CONFIG_ID: a unit is one bus beat, no converters), and the
weight-port builds WP = 2 (Q = 32) and WP = 4 (Q = 64): striped weight regions over 2 / 4 read-only
AXI ports sharing the DDR model with the shell's port; and MAXK 256 with a 48-row K-tile accumulator
(K-tiled linears on the device, bit-exact, and one of more rows than it holds stopping for the host)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import run_bench  # noqa: E402

from edgestream import regmap as rm  # noqa: E402

MODULES = ["../generated/es_regs_pkg", "tlmm_fifo", "tlmm_table_builder", "tlmm_table_mem", "tlmm_wdecode",
           "tlmm_lanes", "tlmm_engine", "es_axi_rd", "es_axi_wr", "es_i2f", "es_fmul", "es_dequant",
           "es_act_unpack", "es_axil_csr", "es_seq", "edgestream_accel"]
# these benches test the linear datapath and its host stops: the shell without its units (UNITS = 0)
LINEAR_ONLY = {"UNITS": "3'b000"}
# the units (UNITS != 0 builds; tests/test_rtl_decoder.py)
UNIT_MODULES = ["../generated/es_exp2_rom", "es_fadd", "es_f2i", "es_fdiv", "es_fsqrt", "es_fmul64", "es_fcvt",
                "es_exp2neg", "es_vec_ram", "es_vec_dp", "es_vec", "es_row", "es_attn_dly", "es_attn_div",
                "es_attn_rowaddr", "es_attn_dot", "es_attn_vacc", "es_attn_quant", "es_attn_score", "es_attn_soft",
                "es_attn_wgt", "es_attn_scal", "es_attn_out", "es_attn"]


def geometry(T: int, Q: int, ports: int = 1) -> tuple[dict, dict]:
    """RTL parameters and bench config for the shell configuration with T and Q replaced, and `ports`
    weight ports (each with the shipped weight FIFO of 256 beats)."""
    wbuf = rm.SHELL_HW["wbuf_kib"] * ports
    cfg = replace(rm.shell_config(), T=T, Q=Q, axi_ports=ports, wbuf_kib=wbuf).validate("bench configuration")
    params = {**LINEAR_ONLY, "T": T, "Q": Q, "CONFIG_ID": f"64'h{cfg.config_id}"}
    if ports > 1:
        params.update(WP=ports, WFIFO=wbuf * 1024 // rm.DATA_BYTES)
    return params, {"T": T, "Q": Q, "axi_ports": ports, "wbuf_kib": wbuf}


def ktile_geometry(max_k: int = 256, krows: int = 48) -> tuple[dict, dict]:
    """The shell with a small MAXK, so K = 2-3 x MAXK linears come as K tiles, and a small K-tile
    accumulator (KROWS rows), so one of more rows stops for the host."""
    cfg = replace(rm.shell_config(), max_k=max_k).validate("bench configuration")
    return {**LINEAR_ONLY, "MAXK": max_k, "KROWS": krows, "CONFIG_ID": f"64'h{cfg.config_id}"}, {"max_k": max_k}


GEOMETRIES = {"shipped": (LINEAR_ONLY, {}), "t4q4": geometry(4, 4), "p2": geometry(1, 32, 2), "p4": geometry(1, 64, 4),
              "ktile": ktile_geometry()}
# Icarus: the K-tile case at NTOK 6 only (two token tiles), no cycle comparison
GEOMETRIES["ktile-short"] = (GEOMETRIES["ktile"][0], {**GEOMETRIES["ktile"][1], "short": 1})
CASES = [("verilator", "shipped", "programs", 100), ("verilator", "shipped", "faults", 100),
         ("verilator", "shipped", "overhead", 100), ("verilator", "shipped", "smoke", 20),
         ("icarus", "shipped", "smoke", 10),
         ("verilator", "t4q4", "programs", 100), ("verilator", "t4q4", "faults", 100),
         ("verilator", "p2", "programs", 100), ("verilator", "p2", "faults", 100), ("verilator", "p4", "smoke", 60),
         ("verilator", "ktile", "ktile", 100), ("verilator", "shipped", "ktile_ref", 100),
         ("icarus", "ktile-short", "ktile", 20)]


@pytest.mark.parametrize(("sim", "geo", "testcase", "latency"),
                         [pytest.param(*c, id=f"{c[2]}-{c[0]}" + ("" if c[1] == "shipped" else f"-{c[1]}"))
                          for c in CASES])
def test_accel_program(sim, geo, testcase, latency):
    params, bench = GEOMETRIES[geo]
    run_bench(sim, "edgestream_accel", MODULES, params, "tb_edgestream_accel", cfg={"latency": latency, **bench},
              testcase=testcase, results_tag=f"-{testcase}-{latency}")
