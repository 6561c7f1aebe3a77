"""The Vivado flow of a board overlay, generated from one hardware configuration (an HwConfig: the
shipped shell's SHELL_HW by default, or an artifact's own `hw_config`), the same one that
`edgestream.regmap.render_sv` turns into the RTL's package:

* `edgestream_accel_wrapper.v`: a plain Verilog-2001 module around the SystemVerilog top. Vivado's
  block-design module references accept only Verilog or VHDL tops (UG994, "Limitations of the Module
  Reference Feature"), and the top's parameters are typed by a package, which a module reference
  cannot express; the wrapper passes none (the package compiled with it holds this configuration) and
  carries the X_INTERFACE_INFO / X_INTERFACE_PARAMETER attributes that make IP integrator see the
  AXI4-Lite slave, the AXI4 masters (the main port and one per weight port of the configuration), the
  clock with its ASSOCIATED_BUSIF, the active-low reset and the level interrupt (UG994, "Inferring
  interfaces"; the same attribute names UG1118 uses for packaged IP).
* `bd.tcl`: the block design for the board (PS with the board preset, every HP port the
  configuration uses, an AXI interrupt controller on pl_ps_irq0 as PYNQ's interrupt layer expects,
  pl_clk0 at the configuration's clock).
* `es_regs_pkg.sv`: the package of this configuration (identical to hw/generated/es_regs_pkg.sv for
  the shell).

The ports are read from the top's header in hw/rtl/edgestream_accel.sv, so a port H1 adds there
shows up in the wrapper (or the generator stops naming it). NOTHING HERE HAS RUN IN VIVADO: Vivado
cannot run in this project's CI. What CI checks: the wrapper parses as Verilog-2001 (Icarus `-g2001`)
and elaborates under Yosys with the SystemVerilog sources (tests/test_board_flow.py), and the
committed files are what this module generates.

    python -m edgestream.vivado                       # rewrite the committed shell files
    python -m edgestream.vivado --check               # exit 1 when they are stale
    python -m edgestream.vivado --hw-config m.esa --out build/gen   # an artifact's configuration
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from edgestream.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
TOP_SV = ROOT / "hw" / "rtl" / "edgestream_accel.sv"
WRAPPER_PATH = ROOT / "hw" / "rtl" / "edgestream_accel_wrapper.v"
BOARDS = ROOT / "hw" / "boards"
WRAPPER = "edgestream_accel_wrapper"
CELL = "edgestream_accel_0"  # the name pynq's ip_dict and edgestream.host.devices.pynq use
INTC = "axi_intc_0"
ADDR_WINDOW = "4K"

# Zynq UltraScale+ PS slave ports for PL masters (UG1085 "PL-PS AXI interfaces"): the bd interface,
# the PS configuration's port number (PSU__USE__S_AXI_GPn / PSU__SAXIGPn__DATA_WIDTH), its clock pin.
PS_SLAVES = [("S_AXI_HP0_FPD", 2, "saxihp0_fpd_aclk"), ("S_AXI_HP1_FPD", 3, "saxihp1_fpd_aclk"),
             ("S_AXI_HP2_FPD", 4, "saxihp2_fpd_aclk"), ("S_AXI_HP3_FPD", 5, "saxihp3_fpd_aclk"),
             ("S_AXI_HPC0_FPD", 0, "saxihpc0_fpd_aclk")]


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # input | output
    width: int


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    board_glob: str  # get_board_parts pattern (the board store's part, found in batch mode)


# No carrier-card connection: the design has no PL pins (Kria-PYNQ's base.tcl sets only the SOM part).
BOARD_DEFS = {"kv260": Board("kv260", "xck26-sfvc784-2LV-c", "*:kv260_som:*")}


# ---------------------------------------------------------------- the top's ports
_PORT = re.compile(r"^\s*(input|output)\s+logic\s*(?:\[(\d+):0\])?\s*(\w+)\s*,?\s*(//.*)?$")


def top_ports(sv: Path = TOP_SV) -> list[Port]:
    """The port list of module edgestream_accel, read from its ANSI header."""
    text = sv.read_text()
    m = re.search(r"module\s+edgestream_accel\s*#\s*\(.*?\)\s*\((.*?)\);", text, re.S)
    if not m:
        raise InputError(f"{sv}: no 'module edgestream_accel #(...) (...);' header")
    ports = []
    for line in m.group(1).splitlines():
        s = line.strip()
        if not s or s.startswith("//"):
            continue
        pm = _PORT.match(line)
        if not pm:
            raise InputError(f"{sv}: port line {s!r} is not 'input|output logic [N:0] name' (the wrapper "
                             f"generator reads only that form)")
        ports.append(Port(pm.group(3), pm.group(1), int(pm.group(2)) + 1 if pm.group(2) else 1))
    return ports


def interface_of(port: str) -> tuple[str, str] | None:
    """(bus interface, logical signal) of an AXI port name; None for clk/rst_n/irq."""
    for prefix in ("s_axil", r"m_axi_w\d", "m_axi"):
        m = re.fullmatch(rf"({prefix})_(\w+)", port)
        if m:
            return m.group(1), m.group(2).upper()
    return None


def weight_ports(cfg) -> list[str]:
    """The weight ports this configuration drives: none with one port (the weights share m_axi)."""
    return [f"m_axi_w{p}" for p in range(cfg.axi_ports)] if cfg.axi_ports > 1 else []


# ---------------------------------------------------------------- wrapper
def _bus_parameters(bus: str, ports: dict[str, Port], cfg) -> str:
    if bus == "s_axil":
        return (f"XIL_INTERFACENAME {bus}, PROTOCOL AXI4LITE, DATA_WIDTH {ports['s_axil_wdata'].width}, "
                f"ADDR_WIDTH {ports['s_axil_awaddr'].width}, HAS_PROT 0, HAS_WSTRB 1, HAS_BRESP 1, HAS_RRESP 1")
    has = {k: int(f"{bus}_{k.lower()}" in ports) for k in ("AWCACHE", "AWPROT", "WSTRB", "BRESP", "RRESP", "AWBURST")}
    read_only = f"{bus}_awaddr" not in ports
    p = [f"XIL_INTERFACENAME {bus}", "PROTOCOL AXI4", f"DATA_WIDTH {ports[bus + '_rdata'].width}",
         f"ADDR_WIDTH {ports[bus + '_araddr'].width}", f"ID_WIDTH {ports[bus + '_arid'].width}",
         f"MAX_BURST_LENGTH {cfg.axi_burst_beats}",
         f"NUM_READ_OUTSTANDING {cfg.axi_outstanding}", "HAS_LOCK 0", "HAS_QOS 0", "HAS_REGION 0",
         f"HAS_CACHE {int(f'{bus}_arcache' in ports)}", f"HAS_PROT {int(f'{bus}_arprot' in ports)}",
         "HAS_BURST 1", "SUPPORTS_NARROW_BURST 0"]
    if read_only:
        p += ["READ_WRITE_MODE READ_ONLY", "HAS_WSTRB 0", "HAS_BRESP 0", "HAS_RRESP 1"]
    else:
        p += ["READ_WRITE_MODE READ_WRITE", "NUM_WRITE_OUTSTANDING 2", f"HAS_WSTRB {has['WSTRB']}",
              f"HAS_BRESP {has['BRESP']}", f"HAS_RRESP {has['RRESP']}"]
    return ", ".join(p)


def render_wrapper(cfg, ports: list[Port] | None = None, units: int = 0) -> str:
    """The Verilog-2001 wrapper for configuration `cfg` (an HwConfig). units: the top's UNITS (HW_UNITS:
    bit 0 vector + row unit, bit 1 attention, bit 2 argmax; 0 is the linear-only shell), passed as a
    plain integer parameter (the package-typed ones stay at their package defaults)."""
    if not 0 <= units <= 7:
        raise InputError(f"units = {units}: expected 0..7 (HW_UNITS bits: 1 vector, 2 attention, 4 argmax)")
    ports = top_ports() if ports is None else ports
    by_name = {p.name: p for p in ports}
    used_w = set(weight_ports(cfg))
    exposed: list[Port] = []
    tied: list[Port] = []
    for p in ports:
        itf = interface_of(p.name)
        if itf and re.fullmatch(r"m_axi_w\d", itf[0]) and itf[0] not in used_w:
            tied.append(p)
        else:
            exposed.append(p)
    buses = [b for b in ["s_axil", "m_axi", *sorted(used_w)] if any(interface_of(p.name) and
                                                                   interface_of(p.name)[0] == b for p in exposed)]
    from edgestream import regmap as rm

    L = [
        "// GENERATED by `python -m edgestream.vivado` from the hardware configuration below: do not edit.",
        "// Verilog-2001 wrapper of the SystemVerilog top edgestream_accel, for Vivado IP integrator: a block",
        "// design module reference must be Verilog or VHDL (UG994), and the attributes declare its bus",
        "// interfaces. No parameters are passed: the es_regs_pkg compiled with the top holds this",
        "// configuration. Weight ports the configuration does not use are tied off here (inputs idle).",
        f"// configuration {cfg.config_id}: G={cfg.G} T={cfg.T} Q={cfg.Q} axi_ports={cfg.axi_ports} "
        f"max_k={cfg.max_k} max_tok={cfg.max_tok} clock_mhz={cfg.clock_mhz:g} units={units}",
        f"// register map version {rm.REGMAP_VERSION}, MAGIC 0x{rm.MAGIC:08x}",
        "`timescale 1ns / 1ps",
        f"module {WRAPPER} (",
    ]
    decls = []
    for p in exposed:
        attrs = []
        itf = interface_of(p.name)
        if p.name == "clk":
            attrs.append('X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 clk CLK"')
            attrs.append(f'X_INTERFACE_PARAMETER = "XIL_INTERFACENAME clk, ASSOCIATED_BUSIF {":".join(buses)}, '
                         'ASSOCIATED_RESET rst_n"')
        elif p.name == "rst_n":
            attrs.append('X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 rst_n RST"')
            attrs.append('X_INTERFACE_PARAMETER = "XIL_INTERFACENAME rst_n, POLARITY ACTIVE_LOW"')
        elif p.name == "irq":
            attrs.append('X_INTERFACE_INFO = "xilinx.com:signal:interrupt:1.0 irq INTERRUPT"')
            attrs.append('X_INTERFACE_PARAMETER = "XIL_INTERFACENAME irq, SENSITIVITY LEVEL_HIGH, PortWidth 1"')
        elif itf:
            bus, sig = itf
            attrs.append(f'X_INTERFACE_INFO = "xilinx.com:interface:aximm:1.0 {bus} {sig}"')
            first = next(q for q in exposed if interface_of(q.name) and interface_of(q.name)[0] == bus)
            if first is p:
                attrs.append(f'X_INTERFACE_PARAMETER = "{_bus_parameters(bus, by_name, cfg)}"')
        else:
            raise InputError(f"{TOP_SV}: port {p.name!r} belongs to no interface the wrapper generator knows")
        rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
        decls.append("".join(f"    (* {a} *)\n" for a in attrs) + f"    {p.direction} wire {rng}{p.name}")
    L.append(",\n".join(decls))
    L.append(");")
    for p in tied:
        if p.direction == "output":
            rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
            L.append(f"    wire {rng}nc_{p.name};  // unused weight port")
    # always explicit: the SV top's own default is the full unit set (UNITS = 7), so leaving the
    # parameter out would not give the linear-only shell units = 0 asks for
    L.append(f"    edgestream_accel #(.UNITS(3'd{units})) u_accel (")
    conns = []
    for p in ports:
        if p in tied:
            tie = f"nc_{p.name}" if p.direction == "output" else f"{p.width}'b0"
            conns.append(f"        .{p.name}({tie})")
        else:
            conns.append(f"        .{p.name}({p.name})")
    L.append(",\n".join(conns))
    L.append("    );")
    L.append("endmodule")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- block design
def ps_assignment(cfg, ports: list[Port] | None = None) -> list[tuple[str, str, int, str]]:
    """(accelerator master, PS slave interface, PS port number, PS clock pin): the weight ports take HP0
    upwards (each its own HP port: UG1085 gives each HP port its own FIFO into the DDR controller), the
    main port the next free one."""
    masters = weight_ports(cfg) + ["m_axi"]
    if len(masters) > len(PS_SLAVES):
        raise InputError(f"configuration {cfg.config_id}: {len(masters)} AXI masters, the PS has "
                         f"{len(PS_SLAVES)} PL slave ports")
    return [(m, *PS_SLAVES[i]) for i, m in enumerate(masters)]


def render_bd(cfg, board: Board) -> str:
    pss = ps_assignment(cfg)
    ps_cfg = [
        # the PS preset of the board, then what this design changes (Kria-PYNQ's base.tcl sets the same
        # keys): HPM0_FPD for the registers, the HP ports below, IRQ0, pl_clk0 at the configuration clock
        "CONFIG.PSU__USE__M_AXI_GP0 {1}", "CONFIG.PSU__MAXIGP0__DATA_WIDTH {32}",
        "CONFIG.PSU__USE__M_AXI_GP1 {0}", "CONFIG.PSU__USE__M_AXI_GP2 {0}",
        "CONFIG.PSU__USE__IRQ0 {1}", "CONFIG.PSU__FPGA_PL0_ENABLE {1}", "CONFIG.PSU__HIGH_ADDRESS__ENABLE {1}",
        # the override switch Kria's own designs set: keep the board preset's PS clocks, change only PL0
        "CONFIG.PSU__OVERRIDE__BASIC_CLOCK {0}",
        "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__SRCSEL {IOPLL}",
        f"CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {{{cfg.clock_mhz:g}}}",
    ]
    for _, _, n, _ in pss:
        ps_cfg += [f"CONFIG.PSU__USE__S_AXI_GP{n} {{1}}", f"CONFIG.PSU__SAXIGP{n}__DATA_WIDTH {{{cfg.axi_width_bits}}}"]
    L = [
        "# GENERATED by `python -m edgestream.vivado`: do not edit. NOT RUN: Vivado cannot run in this",
        "# project's CI; nothing here has been through Vivado yet (docs/board.md).",
        f"# Block design of the {board.name} overlay for configuration {cfg.config_id} "
        f"(axi_ports={cfg.axi_ports}, {cfg.clock_mhz:g} MHz).",
        "#   M_AXI_HPM0_FPD -> sc_ctl -> edgestream_accel_0/s_axil (registers, 4 KiB) and axi_intc_0/s_axi",
    ]
    L += [f"#   edgestream_accel_0/{m} -> sc_{m} -> {s}" for m, s, _, _ in pss]
    L += [
        "#   edgestream_accel_0/irq -> axi_intc_0/intr[0] -> pl_ps_irq0 (pynq.Interrupt needs the AXI INTC)",
        "#   pl_clk0 for the whole PL; proc_sys_reset from pl_resetn0",
        "# Sourced by build.tcl with BD_NAME set, inside a project whose sources hold the wrapper.",
        "",
        "create_bd_design $BD_NAME",
        "set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e zynq_ultra_ps_e_0]",
        "apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset \"1\"} $ps",
        "set_property -dict [list \\",
    ]
    L += [f"    {c} \\" for c in ps_cfg]
    L += [
        "] $ps",
        "# the PS derives pl_clk0 from IOPLL by integer dividers: stop when it misses the configuration's",
        "# clock by more than 1% (the configuration ID, the timing constraints and the perf model assume it)",
        "set act [get_property CONFIG.PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ $ps]",
        f"if {{abs($act - {cfg.clock_mhz:g}) > {cfg.clock_mhz / 100:g}}} {{",
        f"    error \"pl_clk0 is $act MHz, configuration {cfg.config_id} is built for {cfg.clock_mhz:g} MHz\"",
        "}",
        "",
        "# the accelerator: a module reference of the Verilog-2001 wrapper (UG994: not the SV top)",
        f"set acc [create_bd_cell -type module -reference {WRAPPER} {CELL}]",
        "",
        "set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_pl]",
        "connect_bd_net [get_bd_pins $ps/pl_resetn0] [get_bd_pins $rst/ext_reset_in]",
        "set clk_pins [list [get_bd_pins $ps/pl_clk0] [get_bd_pins $acc/clk] [get_bd_pins $rst/slowest_sync_clk] \\",
        "    [get_bd_pins $ps/maxihpm0_fpd_aclk]]",
        "set rstn_pins [list [get_bd_pins $rst/peripheral_aresetn] [get_bd_pins $acc/rst_n]]",
        "",
        "# registers and the interrupt controller behind HPM0_FPD",
        "set sc_ctl [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect sc_ctl]",
        "set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {2}] $sc_ctl",
        "connect_bd_intf_net [get_bd_intf_pins $ps/M_AXI_HPM0_FPD] [get_bd_intf_pins $sc_ctl/S00_AXI]",
        "connect_bd_intf_net [get_bd_intf_pins $sc_ctl/M00_AXI] [get_bd_intf_pins $acc/s_axil]",
        f"set intc [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_intc {INTC}]",
        "set_property -dict [list CONFIG.C_IRQ_CONNECTION {1} CONFIG.C_IRQ_IS_LEVEL {1}] $intc",
        "connect_bd_intf_net [get_bd_intf_pins $sc_ctl/M01_AXI] [get_bd_intf_pins $intc/s_axi]",
        "connect_bd_net [get_bd_pins $acc/irq] [get_bd_pins $intc/intr]",
        "connect_bd_net [get_bd_pins $intc/irq] [get_bd_pins $ps/pl_ps_irq0]",
        "lappend clk_pins [get_bd_pins $sc_ctl/aclk] [get_bd_pins $intc/s_axi_aclk]",
        "lappend rstn_pins [get_bd_pins $sc_ctl/aresetn] [get_bd_pins $intc/s_axi_aresetn]",
        "",
        "# data: every master of the configuration to its own PS slave port",
    ]
    for m, s, _, clkpin in pss:
        L += [
            f"set sc [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect sc_{m}]",
            "set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {1}] $sc",
            f"connect_bd_intf_net [get_bd_intf_pins $acc/{m}] [get_bd_intf_pins $sc/S00_AXI]",
            f"connect_bd_intf_net [get_bd_intf_pins $sc/M00_AXI] [get_bd_intf_pins $ps/{s}]",
            f"lappend clk_pins [get_bd_pins $sc/aclk] [get_bd_pins $ps/{clkpin}]",
            "lappend rstn_pins [get_bd_pins $sc/aresetn]",
        ]
    L += [
        "connect_bd_net {*}$clk_pins",
        "connect_bd_net {*}$rstn_pins",
        "",
        "# addresses: the register window; each master sees all of DDR (low and high: 40-bit addresses)",
        "assign_bd_address",
        f"set_property range {ADDR_WINDOW} [get_bd_addr_segs -of_objects [get_bd_addr_spaces "
        f"zynq_ultra_ps_e_0/Data] -filter {{NAME =~ *{CELL}*}}]",
        "validate_bd_design",
        "save_bd_design",
    ]
    return "\n".join(L) + "\n"


def render_sources(board: Board, cfg) -> str:
    """Tcl read by build.tcl: the board and configuration facts, and `es_add_sources` (the package, the
    SystemVerilog RTL, the Verilog wrapper)."""
    L = [
        "# GENERATED by `python -m edgestream.vivado`: do not edit. NOT RUN (see bd.tcl).",
        f"set PART {board.part}",
        f"set BOARD_PART_GLOB {{{board.board_glob}}}",
        f"set CLOCK_MHZ {cfg.clock_mhz:g}",
        f"set CONFIG_ID {cfg.config_id}",
        "proc es_add_sources {ROOT GEN} {",
        "    add_files -norecurse [file join $GEN es_regs_pkg.sv]",
    ]
    for p in rtl_sv():  # hw/rtl/*.sv and generated tables such as hw/generated/es_exp2_rom.sv
        rel = " ".join(p.resolve().relative_to(ROOT.resolve()).parts)
        L.append(f"    add_files -norecurse [file join $ROOT {rel}]")
    L += [
        f"    add_files -norecurse [file join $GEN {WRAPPER}.v]",
        "    set_property file_type SystemVerilog [get_files *.sv]",
        f"    set_property file_type Verilog [get_files {WRAPPER}.v]",
        "    update_compile_order -fileset sources_1",
        "}",
    ]
    return "\n".join(L) + "\n"


def rtl_sv() -> list[Path]:
    """The SystemVerilog sources after the package, in compile order: the simulator's list, so the
    bitstream and `--device sim` build the same files."""
    from edgestream.host.devices.sim import rtl_sources

    return rtl_sources()[1:]


def generate(cfg, board: str = "kv260", units: int = 0) -> dict[str, str]:
    """File name -> text of every generated file for `cfg` on `board`."""
    from edgestream import regmap as rm

    if board not in BOARD_DEFS:
        raise InputError(f"unknown board {board!r} (expected one of {', '.join(BOARD_DEFS)})")
    b = BOARD_DEFS[board]
    return {"es_regs_pkg.sv": rm.render_sv(cfg.to_dict()), f"{WRAPPER}.v": render_wrapper(cfg, units=units),
            "bd.tcl": render_bd(cfg, b), "sources.tcl": render_sources(b, cfg)}


def committed_paths(board: str = "kv260") -> dict[str, Path]:
    """Where the shell configuration's wrapper and block design are committed (the package is
    hw/generated/es_regs_pkg.sv, `python -m edgestream.regmap`'s; build.sh generates sources.tcl)."""
    return {f"{WRAPPER}.v": WRAPPER_PATH, "bd.tcl": BOARDS / board / "bd.tcl"}


def _config_from(path: str | None):
    from edgestream.compiler.rtl_space import check_implemented
    from edgestream.regmap import shell_config

    if path is None:
        return shell_config()
    p = Path(path)
    if p.suffix == ".esa" or p.is_dir():
        from edgestream.artifact import read_artifact
        from edgestream.compiler.dse import hwconfig_from_dict

        hw = read_artifact(p).manifest.get("hw_config")
        if not hw:
            raise InputError(f"{p}: the artifact's manifest has no hw_config (compile it with --target kv260)")
        cfg = hwconfig_from_dict(hw, f"{p}: hw_config")
    else:
        from edgestream.compiler.dse import load_hwconfig

        cfg = load_hwconfig(p)
    return check_implemented(cfg, f"{p}: hw_config")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--hw-config", help="an artifact (.esa) or a JSON HwConfig (default: the shipped shell)")
    ap.add_argument("--out", help="write all files into this directory (default: the committed shell files)")
    ap.add_argument("--units", type=int, default=0,
                    help="HW_UNITS of the build: 1 vector+row, 2 attention, 4 argmax, summed (default 0: linear-only)")
    ap.add_argument("--check", action="store_true", help="exit 1 when the committed shell files are stale")
    a = ap.parse_args(argv)
    try:
        if a.units and not a.out:
            raise InputError("--units needs --out (the committed files are the linear-only shell's)")
        files = generate(_config_from(a.hw_config), a.board, a.units)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.out:
        dests = {name: Path(a.out) / name for name in files}
    elif a.hw_config:
        print("error: --hw-config needs --out (the committed files are the shell's)", file=sys.stderr)
        return 2
    else:
        dests = committed_paths(a.board)
        files = {n: t for n, t in files.items() if n in dests}
    if a.check:
        stale = [str(dests[n]) for n, t in files.items() if not dests[n].is_file() or dests[n].read_text() != t]
        for s in stale:
            print(f"stale: {s} (run python -m edgestream.vivado)", file=sys.stderr)
        return 1 if stale else 0
    for name, text in files.items():
        dests[name].parent.mkdir(parents=True, exist_ok=True)
        dests[name].write_text(text)
        print(f"wrote {dests[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
