"""The accelerator shell's register map, status bits and error codes: the one description.

`python -m edgestream.regmap` writes hw/generated/es_regs_pkg.sv (the RTL's constants) from it; the
Python constants below (REG, ERR, STATUS_*, CTRL_*, OP_*) are derived from the same tables at import,
and tests/test_accel_regmap.py checks the generated package is current. docs/registers.md documents
it (the tables there are printed by `python -m edgestream.regmap --markdown`).

The shell instance's hardware configuration (SHELL_HW) is an edgestream.compiler.dse.HwConfig; its
config_id is baked into the RTL (ES_CONFIG_ID) and checked against the header of every program.bin the
sequencer runs (edgestream/program.py; its constants are generated into the same package).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgestream import program as pg

REGMAP_VERSION = 2
MAGIC = 0x45534131  # "ESA1"
DATA_BYTES = 16  # AXI4 data width of the shell's memory port (128 bits, a KV260 HP port)
MAP_ENTRY_BYTES = 16  # one buffer-map entry = one bus beat

# (offset, name, access, description). RO: read-only; RW: read/write; W1P: write 1 to pulse.
REGISTERS: list[tuple[int, str, str, str]] = [
    (0x000, "MAGIC", "RO", "0x45534131 ('ESA1'): an edgestream accelerator is mapped here"),
    (0x004, "VERSION", "RO", "register map version"),
    (0x008, "CONFIG_ID_LO", "RO", "hardware configuration ID, bits 31:0 (HwConfig.config_id)"),
    (0x00C, "CONFIG_ID_HI", "RO", "hardware configuration ID, bits 63:32"),
    (0x010, "HW_PARAMS", "RO", "[3:0] G, [11:4] T, [19:12] Q, [27:20] MAXTOK"),
    (0x014, "HW_MAXK", "RO", "[15:0] MAXK, [31:16] bus bytes per beat"),
    (0x018, "HW_UNITS", "RO", "units behind the sequencer: bit 0 vector unit (EMBED NORM_QUANT ROPE ACT_MUL ADD), "
                              "bit 1 attention unit (ATTENTION), bit 2 argmax at OUTPUT; 0: the host runs them; "
                              "bit 3 K-tile accumulation (K-tiled linears of up to KROWS rows run on the device); "
                              "[7:4] KVP, the KV ports of the attention unit (the KV region's layout, docs/units.md; "
                              "0 reads as 1)"),
    (0x01C, "HW_VEC", "RO", "[15:0] VMAX (longest vector-unit row, floats), [31:16] DMAX (longest head row)"),
    (0x020, "CTRL", "W1P", "bit 0 START (run the program from PC), bit 1 SOFT_RESET (abort, drain the bus, reset)"),
    (0x024, "STATUS", "RO", "bit 0 BUSY, bit 1 DONE (END reached), bit 2 ERROR, bit 3 RESETTING, "
                            "bit 4 HOST (stopped at an instruction the host executes)"),
    (0x028, "ERR_CODE", "RO", "[7:0] error code (ERR_*), [31:16] index of the instruction that failed"),
    (0x02C, "ERR_INFO", "RO", "error detail: AXI response code, or the failing opcode"),
    (0x030, "PROG_BASE_LO", "RW", "program.bin address, bits 31:0 (16-byte aligned)"),
    (0x034, "PROG_BASE_HI", "RW", "program.bin address, bits 39:32"),
    (0x038, "PROG_SIZE", "RW", "program.bin bytes; nothing past it is fetched"),
    (0x03C, "PC", "RW", "index of the instruction START begins at"),
    (0x040, "WGT_BASE_LO", "RW", "weight image (hw_weights.bin) address, bits 31:0 (16-byte aligned)"),
    (0x044, "WGT_BASE_HI", "RW", "weight image address, bits 39:32"),
    (0x048, "WGT_SIZE", "RW", "weight image bytes"),
    (0x050, "ACT_BASE_LO", "RW", "activation arena address, bits 31:0 (16-byte aligned; buffer map at its start)"),
    (0x054, "ACT_BASE_HI", "RW", "activation arena address, bits 39:32"),
    (0x058, "ACT_SIZE", "RW", "activation arena bytes"),
    (0x05C, "NTOK", "RW", "tokens in the activation buffers of this run (1..65535)"),
    (0x060, "POS", "RW", "absolute position of token 0 of this run (RoPE rows, KV-cache slots)"),
    (0x064, "IRQ_EN", "RW", "bit 0: drive the irq output while STATUS has DONE, ERROR or HOST (level; START and "
                            "SOFT_RESET clear it)"),
    (0x068, "HW_SMAX", "RO", "positions the attention unit's score buffer holds (the longest context)"),
    (0x070, "KV_BASE_LO", "RW", "KV-cache region address, bits 31:0 (16-byte aligned; the attention unit's INT8 cache, "
                               "docs/units.md)"),
    (0x074, "KV_BASE_HI", "RW", "KV-cache region address, bits 39:32"),
    (0x078, "KV_SIZE", "RW", "KV-cache region bytes"),
    (0x080, "CYCLES_LO", "RO", "clock cycles of the last run (START to DONE/HOST/ERROR), bits 31:0"),
    (0x084, "CYCLES_HI", "RO", "cycles, bits 63:32"),
    (0x088, "RD_BEATS", "RO", "AXI read beats received (program, map, activations, weights, beta)"),
    (0x08C, "WR_BEATS", "RO", "AXI write beats sent (results)"),
    (0x090, "STALL_WGT", "RO", "cycles the engine wanted a weight beat and none was there"),
    (0x094, "STALL_ACT", "RO", "cycles the engine wanted an activation beat and none was there"),
    (0x098, "STALL_RES", "RO", "cycles the engine held a result the write path could not take"),
    (0x09C, "SEQ_CYCLES", "RO", "busy cycles with the engine idle (fetch, decode, checks, write drain)"),
    (0x0A0, "WGT_BEATS", "RO", "weight beats consumed by the engine"),
    (0x0A4, "INSTR_COUNT", "RO", "instructions the hardware executed in the last run (END not counted)"),
    (0x0A8, "STOP_PC", "RO", "index of the instruction the last run stopped at (END, the host's, or the failing one)"),
    (0x0AC, "ARGMAX", "RO", "with an OUTPUT of flag 1 (argmax): the index of the largest logit of the last token's row "
                            "(the first on ties; NaN is never the largest)"),
    (0x0B0, "VEC_CYCLES", "RO", "cycles the vector unit was busy in the last run"),
    (0x0B4, "ATTN_CYCLES", "RO", "cycles the attention unit was busy in the last run"),
]

CTRL_BITS = {"START": 0, "SOFT_RESET": 1}
STATUS_BITS = {"BUSY": 0, "DONE": 1, "ERROR": 2, "RESETTING": 3, "HOST": 4}

# (code, name, meaning)
ERRORS: list[tuple[int, str, str]] = [
    (0, "NONE", "no error"),
    (1, "CONFIG", "the program was lowered for another configuration (header config ID or G/CB/T/Q)"),
    (2, "OPCODE", "unknown opcode, or a DEQUANT that does not follow a TLMM (ERR_INFO = opcode)"),
    (3, "FIELD", "an instruction this bitstream cannot run: K tiles it does not accumulate (k0 != 0 or F_ACCUMULATE "
                 "outside a kept K-tiled linear, more rows than KROWS; linear-only shell), another G, a region "
                 "kind or bit width it does not decode, DEQUANT columns that split a row batch, a buffer of the "
                 "wrong dtype or width, NTOK = 0, K > MAXK (ERR_INFO = opcode)"),
    (4, "RANGE", "a region, buffer or map entry outside WGT_SIZE / ACT_SIZE / its capacity, an index past the "
                 "program's tables, or a misaligned address (ERR_INFO = opcode)"),
    (5, "PROG_END", "the program ran past its last instruction (or PROG_SIZE) without END"),
    (6, "AXI_READ", "an AXI read returned SLVERR or DECERR (ERR_INFO = RRESP)"),
    (7, "AXI_WRITE", "an AXI write returned SLVERR or DECERR (ERR_INFO = BRESP)"),
    (8, "CODE", "the engine saw an invalid ternary weight code"),
    (9, "HEADER", "PROG_BASE does not hold an edgestream program of the version this bitstream runs"),
]

# HW_UNITS bit 3: the engine accumulates K tiles on chip (KROWS rows x MAXTOK tokens of int32), so a linear
# with K > MAXK of up to KROWS rows runs on the device (docs/registers.md "K tiles")
HW_KTILE = 1 << 3
KROWS = 4096

REG = {name: off for off, name, _, _ in REGISTERS}
ERR = {name: code for code, name, _ in ERRORS}
ERR_NAMES = {code: name for code, name, _ in ERRORS}
ERR_TEXT = {code: text for code, _, text in ERRORS}
CTRL_START = 1 << CTRL_BITS["START"]
CTRL_SOFT_RESET = 1 << CTRL_BITS["SOFT_RESET"]
STATUS_BUSY = 1 << STATUS_BITS["BUSY"]
STATUS_DONE = 1 << STATUS_BITS["DONE"]
STATUS_ERROR = 1 << STATUS_BITS["ERROR"]
STATUS_RESETTING = 1 << STATUS_BITS["RESETTING"]
STATUS_HOST = 1 << STATUS_BITS["HOST"]

# The shell instance (hw/rtl/edgestream_accel.sv defaults): one 128-bit AXI4 port, 16-beat bursts,
# 16 weight bursts in flight (256 beats: a 200-cycle read latency stays covered), a 4 KiB weight FIFO,
# K up to 4096 (every linear of BitNet 0.73B without K tiles), prefill tiles of 4 tokens (the table
# memory is MAXTOK x K/G words deep: 4 x 820 fits one URAM depth).
SHELL_HW = dict(G=5, T=1, Q=16, table_mem="uram", tern_encoding="gindex", int_encoding="int8", axi_ports=1,
                axi_width_bits=128, axi_burst_beats=16, axi_outstanding=16, wbuf_kib=4, max_k=4096, max_tok=4,
                ofifo_depth=16, vec_lanes=1, clock_mhz=250.0)


def kv_ports(hw: dict) -> int:
    """KVP of a build: the attention unit streams keys and values through the weight ports when there
    are several (idle while a unit runs), else on its own read master (docs/units.md "KV cache in DDR")."""
    return hw["axi_ports"] if hw["axi_ports"] > 1 else 1


def shell_config():
    from edgestream.compiler.dse import HwConfig

    return HwConfig(**SHELL_HW).validate("shell configuration")


def shell_config_id() -> int:
    return int(shell_config().config_id, 16)


# ---- generators
PKG_PATH = Path(__file__).resolve().parent.parent / "hw" / "generated" / "es_regs_pkg.sv"


def render_sv(hw: dict | None = None) -> str:
    """The package for the shell built with configuration `hw` (an HwConfig's fields; the shipped
    SHELL_HW by default): hw/generated/es_regs_pkg.sv, or a per-configuration build's copy."""
    from edgestream.compiler.dse import HwConfig

    hw = SHELL_HW if hw is None else hw
    cid = int(HwConfig(**hw).config_id, 16)
    lines = [
        "// GENERATED by `python -m edgestream.regmap` from edgestream/regmap.py: do not edit.",
        "// The accelerator shell's register offsets, control/status bits, error codes, opcodes and the",
        "// configuration of this build (docs/registers.md).",
        "/* verilator lint_off UNUSEDPARAM */",
        "package es_regs_pkg;",
        f"    localparam logic [31:0] ES_MAGIC = 32'h{MAGIC:08x};",
        f"    localparam logic [31:0] ES_VERSION = 32'd{REGMAP_VERSION};",
        f"    localparam logic [63:0] ES_CONFIG_ID = 64'h{cid:016x};",
        f"    localparam int ES_G = {hw['G']};",
        f"    localparam int ES_T = {hw['T']};",
        f"    localparam int ES_Q = {hw['Q']};",
        f"    localparam int ES_MAXK = {hw['max_k']};",
        f"    localparam int ES_MAXTOK = {hw['max_tok']};",
        f"    localparam int ES_BURST = {hw['axi_burst_beats']};",
        f"    localparam int ES_OUTSTANDING = {hw['axi_outstanding']};",
        f"    localparam int ES_WFIFO = {hw['wbuf_kib'] * 1024 // DATA_BYTES};",
        f"    localparam int ES_WPORTS = {hw['axi_ports']};",
        f"    localparam int ES_DATA_BYTES = {DATA_BYTES};",
        f"    localparam int ES_KROWS = {KROWS};",
        # the engine's dense integer mode (int-dense regions: the LM head at 8 bits per weight)
        f"    localparam int ES_INT_DENSE = {int(hw['int_encoding'] == 'int8')};",
        f"    localparam int ES_KVP = {kv_ports(hw)};",
        f"    localparam int ES_VEC_LANES = {hw['vec_lanes']};",
        "    // register byte offsets",
    ]
    for off, name, _, _ in REGISTERS:
        lines.append(f"    localparam logic [11:0] ES_REG_{name} = 12'h{off:03x};")
    lines.append("    // CTRL and STATUS bit positions")
    for name, b in CTRL_BITS.items():
        lines.append(f"    localparam int ES_CTRL_{name} = {b};")
    for name, b in STATUS_BITS.items():
        lines.append(f"    localparam int ES_STATUS_{name} = {b};")
    lines.append("    // error codes")
    for code, name, _ in ERRORS:
        lines.append(f"    localparam logic [7:0] ES_ERR_{name} = 8'd{code};")
    lines.append("    // program.bin (edgestream/program.py, docs/program.md): header, opcodes, region kinds, dtypes")
    lines.append(f"    localparam logic [31:0] ES_PROG_MAGIC = 32'h{int.from_bytes(pg.MAGIC, 'little'):08x};")
    lines.append(f"    localparam int ES_PROG_VERSION = {pg.PROGRAM_VERSION};")
    lines.append(f"    localparam int ES_PROG_HEADER_BYTES = {pg.HEADER_BYTES};")
    lines.append(f"    localparam int ES_PROG_REGION_BYTES = {pg.REGION_BYTES};")
    lines.append(f"    localparam int ES_PROG_INSTR_BYTES = {pg.INSTR_BYTES};")
    for code, name in sorted(pg.OPNAMES.items()):
        lines.append(f"    localparam logic [7:0] ES_OP_{name} = 8'h{code:02x};")
    for code, name in sorted(pg.REGION_KINDS.items()):
        lines.append(f"    localparam logic [7:0] ES_RK_{name.upper().replace('-', '_')} = 8'd{code};")
    for name in ("B_F32", "B_I8", "B_SCALE", "B_IDS"):
        lines.append(f"    localparam logic [7:0] ES_{name} = 8'd{getattr(pg, name)};")
    for name in ("F_ACCUMULATE", "F_BITSERIAL", "F_PER_CHANNEL"):
        lines.append(f"    localparam int ES_{name} = {getattr(pg, name)};")
    lines.append(f"    localparam int ES_MAP_ENTRY_BYTES = {MAP_ENTRY_BYTES};")
    lines.append("endpackage")
    lines.append("/* verilator lint_on UNUSEDPARAM */")
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    out = ["| offset | name | access | meaning |", "|---|---|---|---|"]
    out += [f"| 0x{off:03X} | {name} | {acc} | {desc} |" for off, name, acc, desc in REGISTERS]
    out += ["", "| code | error | meaning |", "|---|---|---|"]
    out += [f"| {code} | {name} | {text} |" for code, name, text in ERRORS]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print the register and error tables")
    ap.add_argument("--check", action="store_true", help="exit 1 when hw/generated/es_regs_pkg.sv is stale")
    a = ap.parse_args(argv)
    if a.markdown:
        sys.stdout.write(render_markdown())
        return 0
    text = render_sv()
    if a.check:
        return 0 if PKG_PATH.is_file() and PKG_PATH.read_text() == text else 1
    PKG_PATH.parent.mkdir(parents=True, exist_ok=True)
    PKG_PATH.write_text(text)
    print(f"wrote {PKG_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
