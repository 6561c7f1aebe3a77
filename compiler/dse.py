"""Hardware configuration, resource model and design-space exploration (DSE).

A `HwConfig` fixes everything the RTL and the program must agree on: TLMM group size G, number of
table memories T (groups looked up per beat) and lane copies Q (rows per beat), where the tables
live, the weight encodings, AXI width/ports/burst/outstanding, buffer depths, tile sizes and the
clock. Its `config_id` (a hash of the fields) is written into the artifact and into the generated
SystemVerilog package, so a bitstream built for one configuration refuses a program built for
another.

`estimate_resources` is an analytic model of LUT/FF/DSP/BRAM36/URAM (coefficients in COEFFS, each
explained); `explore` enumerates configurations, drops those over any budget of the target, ranks the
rest by predicted decode tok/s, then prefill tok/s, then fewer LUTs, and says which resource
stopped the faster candidates. The TLMM engine's terms are calibrated against Yosys synth_xilinx
(edgestream.hwsynth) on three small configurations (docs/hardware.md, "Cost"); the rest of the design
(AXI, vector unit, shell) is still an estimate (docs/targets.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from edgestream.compiler.targets import RESOURCES, Target
from edgestream.errors import InputError

HWCONFIG_VERSION = 1
TERN_ENCODINGS = ("gindex", "base3")
INT_ENCODINGS = ("planes", "int8")
TABLE_MEMS = ("uram", "bram", "lutram")
ALIGN = 4096  # weight regions start on a 4 KiB boundary: an AXI burst never crosses one


def code_bits(g: int) -> int:
    """CB: bits of a G-index code slot, ceil(log2(3**G)) (= formats.ternary.gindex_bits)."""
    return int(3**g - 1).bit_length()


def table_halves(g: int) -> tuple[int, int]:
    """The RTL splits a group's table in two (tlmm_table_builder.sv): its low ceil(G/2) and high
    floor(G/2) weights each look up their own table, and a lane adds one entry of each (the same
    integer as the whole table's entry: G = 5 is 3 + 2, 14 + 5 stored entries instead of 122)."""
    return (g + 1) // 2, g // 2


def half_entries(n: int, binary: bool = False) -> int:
    """Stored entries of an n-weight table: the lower half of the sign-symmetric ternary table, up to
    the all-zero pattern, or all 2**n entries of a binary one."""
    return 2**n if binary else (3**n + 1) // 2


def table_width(g: int) -> int:
    """TW: bits of one (half) table entry, 8 + ceil(log2(GL + 1)): |entry| <= 128 GL, and +128 GL
    (every activation -128, every trit -1) needs the extra bit when GL is a power of two."""
    return 8 + math.ceil(math.log2(table_halves(g)[0] + 1))


@dataclass(frozen=True)
class HwConfig:
    G: int = 5  # TLMM group size (weights per lookup)
    T: int = 4  # table memories = groups looked up per beat
    Q: int = 4  # lane copies = output rows per beat
    table_mem: str = "uram"  # uram | bram | lutram: where the group tables live
    tern_encoding: str = "gindex"  # ternary weights in DDR: G-index codes (CB bits) or base3 (1.6 bpw)
    int_encoding: str = "planes"  # integer weights in DDR: bit-plane codes (CB bits) or dense int8
    axi_ports: int = 4  # PS-PL read masters streaming weights and KV
    axi_width_bits: int = 128
    axi_burst_beats: int = 256  # beats per AXI burst (256 x 16 B = 4 KiB)
    axi_outstanding: int = 8  # read bursts in flight per port
    wbuf_kib: int = 256  # weight prefetch buffer (BRAM), lets DDR run ahead of the engine
    max_k: int = 4096  # K tile: tables for at most max_k activations at once
    max_tok: int = 8  # prefill tile: tokens sharing one pass over the weights
    ofifo_depth: int = 16  # result FIFO depth (power of two)
    vec_lanes: int = 16  # width of the vector unit (norm, RoPE, softmax, attention, activations)
    clock_mhz: float = 250.0

    # ---- derived
    @property
    def lanes(self) -> int:
        return self.Q * self.T

    @property
    def CB(self) -> int:
        return code_bits(self.G)

    @property
    def TW(self) -> int:
        return table_width(self.G)

    @property
    def P(self) -> int:
        return 3**self.G

    @property
    def PS_HALVES(self) -> tuple[int, int]:
        """Stored entries of the low and high half tables (table_halves; lanes negate the mirrored ones)."""
        return tuple(half_entries(n) for n in table_halves(self.G))

    @property
    def PS(self) -> int:
        """Table entries stored per group: both half tables (tlmm_table_builder.sv)."""
        return sum(self.PS_HALVES)

    @property
    def beat_bytes_codes(self) -> int:
        return math.ceil(self.lanes * self.CB / 8)

    @property
    def beat_bytes_base3(self) -> int:
        return math.ceil(self.lanes * self.G / 5)

    @property
    def chunks_max(self) -> int:
        return math.ceil(math.ceil(self.max_k / self.G) / self.T)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def config_id(self) -> str:
        blob = json.dumps({"v": HWCONFIG_VERSION, **self.to_dict()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def validate(self, src: str = "hardware config") -> HwConfig:
        def bad(f: str, why: str):
            raise InputError(f"{src}: field {f!r} = {getattr(self, f)!r}, expected {why}")

        if not 2 <= self.G <= 5:
            bad("G", "2..5")
        for f in ("T", "Q"):
            v = getattr(self, f)
            if v < 1 or v & (v - 1) or v > 256:
                bad(f, "a power of two in 1..256")
        if self.table_mem not in TABLE_MEMS:
            bad("table_mem", f"one of {TABLE_MEMS}")
        if self.tern_encoding not in TERN_ENCODINGS:
            bad("tern_encoding", f"one of {TERN_ENCODINGS}")
        if self.int_encoding not in INT_ENCODINGS:
            bad("int_encoding", f"one of {INT_ENCODINGS}")
        if self.axi_ports < 1:
            bad("axi_ports", ">= 1")
        if self.axi_width_bits not in (32, 64, 128, 256, 512):
            bad("axi_width_bits", "32, 64, 128, 256 or 512")
        if not 1 <= self.axi_burst_beats <= 256 or self.axi_burst_beats * self.axi_width_bits // 8 > 4096:
            bad("axi_burst_beats", "1..256 beats and at most 4096 bytes per burst (AXI4)")
        if not 1 <= self.axi_outstanding <= 64:
            bad("axi_outstanding", "1..64")
        if self.wbuf_kib < 4:
            bad("wbuf_kib", ">= 4")
        if self.max_k < self.G * self.T or self.max_k > 65535:
            bad("max_k", f"{self.G * self.T}..65535 (at least one beat of groups)")
        if not 1 <= self.max_tok <= 255:
            bad("max_tok", "1..255")
        if self.ofifo_depth < 2 or self.ofifo_depth & (self.ofifo_depth - 1):
            bad("ofifo_depth", "a power of two >= 2")
        if self.vec_lanes < 1:
            bad("vec_lanes", ">= 1")
        if not 10 <= self.clock_mhz <= 1000:
            bad("clock_mhz", "10..1000 MHz")
        return self

    def check_target(self, target: Target, src: str = "hardware config") -> HwConfig:
        if self.axi_ports > target.ports:
            raise InputError(f"{src}: field 'axi_ports' = {self.axi_ports}, target {target.name} has "
                             f"{target.ports} PS-PL ports")
        if self.axi_width_bits > target.port_width_bits:
            raise InputError(f"{src}: field 'axi_width_bits' = {self.axi_width_bits}, target {target.name} "
                             f"ports are {target.port_width_bits} bits")
        return self


def hwconfig_from_dict(d: dict[str, Any], src: str = "hardware config") -> HwConfig:
    if not isinstance(d, dict):
        raise InputError(f"{src}: expected a JSON object of hardware configuration fields")
    d = dict(d.get("hw_config", d))
    d.pop("config_id", None)
    known = {f.name: f.type for f in fields(HwConfig)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise InputError(f"{src}: unknown field {unknown[0]!r} (expected some of {', '.join(known)})")
    kw = {}
    for k, v in d.items():
        want = float if k == "clock_mhz" else str if known[k] == "str" else int
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, want) or isinstance(v, bool):
            raise InputError(f"{src}: field {k!r} = {v!r}, expected a {want.__name__}")
        kw[k] = v
    return HwConfig(**kw).validate(src)


def load_hwconfig(path: str | Path) -> HwConfig:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such hardware configuration file") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: not valid JSON ({e})") from None
    return hwconfig_from_dict(d, str(p))


# ---------------------------------------------------------------- resource model
# Per-unit costs on UltraScale+ fabric (LUT6 + F7/F8/F9 muxes, 36 Kb BRAM as 512 x 72, 288 Kb URAM as
# 4096 x 72, RAM64M8 = 8 LUTs for a 64 x 7 simple-dual-port LUTRAM). Estimates from the structure of
# hw/rtl (tlmm_engine, tlmm_lanes, tlmm_table_builder, tlmm_wdecode). Engine terms calibrated against
# Yosys synth_xilinx -family xcup (abc9) of the engine (docs/hardware.md, "Cost"). Since the tables are
# sign-symmetric (half stored, PS = (3**G + 1)/2 entries) the lane mux, table builder, lane register and
# result FIFO terms are refitted on the two configurations the DSE weighs for the KV260 class, G/T/Q =
# 5/1/16 and 5/1/64 at MAXK 2048, MAXTOK 4 (14,562 and 53,343 LUT, 5,027 and 15,348 FF, 75 BRAM36):
# the fit reproduces the LUTs exactly, FFs +12/+11% (the earlier fit, on the full-table RTL, was
# G/T/Q = 2/4/4, 3/4/2, 4/2/2, 5/2/2, 5/4/4 and is not re-measured; the rest of the design is not
# calibrated).
COEFFS = {
    "engine_ctrl_luts": 370,  # command/phase control, ingest and weight counters, K masking, credits (fitted)
    "engine_ctrl_ffs": 0,  # (the structural FF terms below already land within 12%)
    "mux_luts_per_4": 1.6,  # a P:1 one-bit mux: 1.6 ceil(P/4) LUTs as Yosys/abc9 maps it (fitted; 1.0 by hand)
    # a lane's PS:1 mux of one entry bit, with the sign's inversion in the row adder: 2.10 ceil(PS/4) LUTs
    # (fitted at G = 5, T = 1: 122:1 muxes; 1.6 for the 243:1 muxes of the full-table RTL at T = 2..4)
    "lane_mux_luts_per_4": 2.10,
    "lane_ff_per_bit": 1.0,  # lane pipeline registers per entry + code bit (index, sign, entry stages; fitted)
    "builder_adders_per_entry": 0.46,  # table build: 0.46 TW-bit adders per level entry (fitted; many are copies)
    "fifo_lutram_bits_per_8_luts": 14,  # the result FIFO's word in RAM32M16 cells (14 bits x 32, 8 LUTs)
    "row_tree_luts_per_bit": 1.0,  # adder tree + accumulator: 1 LUT per adder bit (carry chain)
    "acc_bits": 32,
    "wdecode_luts_per_code_bit": 1.0,
    "base3_repack_luts_per_byte": 60,  # base-3 byte -> 5 trits ROM (10 bits x 256 entries)
    # int-dense (tlmm_lanes INT_DENSE, Yosys at Q = 8 with the mode on and off): one DSP48E2 per lane for
    # the column entry x weight product, its operand/product registers, the weights riding the pipeline
    "dense_luts_per_lane": 32,
    "dense_ffs_per_lane": 73,
    "axi_port_luts": 1800,  # AXI4 read master + address generator + width converter per port
    # es_dequant per lane (dequant_lanes(cfg) of them): es_i2f + two es_fmul (24x24 significand products:
    # 2 DSP48E2 each), six stages;
    # Yosys synth_xilinx (abc9) of es_dequant Q=4 MAXTOK=4: 4816 LUT, 1698 FF, 16 DSP
    "dequant_lane_luts": 1204,
    "dequant_lane_ffs": 425,
    "dequant_lane_dsps": 4,
    "axi_port_ffs": 2600,
    "axi_outstanding_luts": 24,  # per outstanding burst tracked
    "vec_lane_luts": 1400,  # fp32 mul + add + int8 MAC + compare per vector lane
    "vec_lane_ffs": 2000,
    "vec_lane_dsps": 5,  # fp32 multiplier (3 DSP) + two int8 MACs packed in DSP48E2
    "vec_fixed_luts": 7000,  # exp2 table, rsqrt (fp64 scalar path), RoPE address gen, quantizer control
    "vec_fixed_ffs": 9000,
    "vec_fixed_dsps": 16,
    "vec_fixed_bram36": 6,
    "shell_luts": 9000,  # sequencer (program fetch/decode), control registers, interconnect, reset
    "shell_ffs": 13000,
    "shell_bram36": 8,  # activation (128 x 128 b) and beta (256 x 128 b) read FIFOs, program line buffer
}

# The whole accelerator by Yosys (0.70 synth_xilinx -family xcup -uram, abc9, hierarchy kept, per
# instance; python -m edgestream.hwsynth --top accel --config kv260-0.73b, docs/hardware.md "Whole
# accelerator"): the kv260 choice G5 T1 Q64, 4 weight ports (KVP 4), URAM tables, MAXK 4096, int8 head,
# VL 1, UNITS 7, with the split tables (RTL of 2026-12-02 17:43 UTC). These terms replace the structural
# shell/unit terms above and add what they lack (the attention unit, the row unit, the K-tile
# accumulators, the engine control that grew with K tiles and the dense head, the split tables' decode).
# SHELL_TERMS selects them.
COEFFS_YOSYS = {
    # the lanes with split tables (14:1 and 5:1 muxes, the plane shift on the entry sum only): 12,713 LUT of
    # tlmm_lanes at Q 64 with its accumulators and dense multipliers (the row_accumulators and
    # dense_multipliers terms: 6,784 of them); wdecode's halves (c % 27, c / 27) and folds: 2,907 LUT for
    # 64 codes
    "lane_mux_luts_per_4": (12713 - 640 - 6144) / 3840,
    "wdecode_luts_per_code_bit": 2907 / 512,
    # tlmm_engine's own cells beyond the lanes/builder/decode/FIFO terms (command and phase control, the
    # K-tile accumulate path, the dense weights riding beside the indices): 2,310 LUT; its FFs are what
    # the structural terms leave of the engine's 22,039
    "engine_ctrl_luts": 2310,
    "engine_ctrl_ffs": 1595,
    # es_axi_rd: address generator (4 KiB split, in-flight count, FIFO room), its data FIFO apart
    # (_fifo_cost); es_axi_wr with its 32-beat LUTRAM FIFO
    "rd_master_luts": 352,
    "rd_master_ffs": 293,
    "wr_master_luts": 400,
    "wr_master_ffs": 172,
    # es_dequant per lane (DL = 4 lanes: es_i2f + two es_fmul, six stages) beside the Q/DL:1 sub-beat
    # muxes (mux_luts_per_4): 6,551 LUT, 1,774 FF, 16 DSP at Q 64
    "dequant_lane_luts": 1228,
    "dequant_lane_ffs": 444,
    "dequant_lane_dsps": 4,
    # es_vec at VL = 1 (15,052 LUT, 6,741 FF, 9 DSP, two URAM row buffers); the step per lane from es_vec
    # alone at VL 1 and 4 (docs/hardware.md "Vector unit", after its LUT cuts: 14,626 -> 24,430 LUT,
    # 6,755 -> 10,898 FF, 9 -> 24 DSP; at VL 4 the row buffers are 16 BRAM36 instead of 2 URAM)
    "vec_lane_luts": 3268,
    "vec_lane_ffs": 1381,
    "vec_lane_dsps": 5,
    "vec_fixed_luts": 11784,
    "vec_fixed_ffs": 5360,
    "vec_fixed_dsps": 4,
    "vec_fixed_uram": 2,
    "vec4_bram36": 16,
    # es_row (LAST_ROW, the argmax)
    "row_luts": 1420,
    "row_ffs": 606,
    "row_dsps": 5,
    # es_attn at the shell's DMAX 256, SMAX 4096, NQ 4, measured at KVP 1 (29,781 LUT, 14,948 FF, 189 DSP) and
    # KVP 4 (36,156 / 20,756 / 382: es_attn_dot's lanes read four KV beats a cycle); KVP 2 (two weight
    # ports) is interpolated linearly, not synthesized
    "attn_luts": 29781,
    "attn_ffs": 14948,
    "attn_dsps": 189,
    "attn_uram": 3,
    "attn_kvp4": (36156, 20756, 382),
    # es_seq + es_axil_csr + es_act_unpack + the top's glue (read/write multiplexers, result gearbox)
    "shell_luts": 7501,
    "shell_ffs": 5787,
    "shell_dsps": 53,
}
# "yosys" (the default): COEFFS_YOSYS, the whole accelerator as Yosys maps it (the kv260 choice for the
# 0.73B, (T, Q, ports) = (1, 64, 4), at 77% of the LUTs). "structural": the hand-written shell/unit
# terms of COEFFS, which the DSE chose with before the whole accelerator was synthesized (they said 77%
# where Yosys found 106% for the whole-table RTL). With "yosys" nothing the RTL implements fits the
# Ultra96-V2 or the generic template (the shell and units without the engine are ~70k LUT of their
# 56,448 and 40,000 budgets): `compile --target ultra96v2` says so.
SHELL_TERMS = "yosys"


def dequant_lanes(cfg: HwConfig) -> int:
    """es_dequant's lanes in the shell (edgestream_accel DQL): min(Q, 4), one 128-bit result beat of
    float32 per cycle, the rate the write port takes them at anyway."""
    return min(cfg.Q, 4)


def _bram36(depth: int, width: int) -> float:
    """Block RAM of a depth x width simple-dual-port memory as Yosys maps it: RAMB18 columns of
    36/18/9/4/2/1 bits at depth 512/1K/2K/4K/8K/16K, two to a RAMB36 (so a half counts)."""
    w18, d = 36, 512
    while d < depth and w18 > 1:
        d, w18 = 2 * d, w18 // 2
    return math.ceil(width / w18) * math.ceil(depth / d) / 2


def _fifo_cost(depth: int, width: int) -> dict[str, float]:
    """A tlmm_fifo of depth x width: LUTRAM up to 64 words (RAM32M16: 14 bits x 32 words in 8 LUTs),
    block RAM beyond."""
    if depth <= 64:
        return {"lut": math.ceil(width / 14) * 8 * math.ceil(depth / 32)}
    return {"bram36": _bram36(depth, width)}


def _table_memory(cfg: HwConfig) -> dict[str, float]:
    width = cfg.PS * cfg.TW  # one word = a whole group table (its stored half)
    depth = cfg.max_tok * cfg.chunks_max
    cols = math.ceil(width / 72)
    if cfg.table_mem == "uram":
        return {"uram": cfg.T * cols * math.ceil(depth / 4096)}
    if cfg.table_mem == "bram":
        return {"bram36": cfg.T * cols * math.ceil(depth / 512)}
    # LUTRAM: the registered read port is a fabric register of the whole word per table
    return {"lut": cfg.T * math.ceil(width / 7) * 8 * math.ceil(depth / 64), "ff": cfg.T * width}


def estimate_resources(cfg: HwConfig, shell: str | None = None) -> dict[str, float]:
    """LUT/FF/DSP/BRAM36/URAM of the whole design for `cfg`, with a breakdown by unit; `shell` picks the
    shell/unit terms (SHELL_TERMS by default: "structural" or "yosys", the whole-accelerator refit)."""
    shell = shell or SHELL_TERMS
    if shell not in ("structural", "yosys"):
        raise InputError(f"resource model shell terms {shell!r}: expected 'structural' or 'yosys'")
    y = shell == "yosys"
    c = {**COEFFS, **COEFFS_YOSYS} if y else COEFFS
    parts: dict[str, dict[str, float]] = {}
    P, TW, CB, L = cfg.PS, cfg.TW, cfg.CB, cfg.lanes
    # a lane: one PS_half:1 mux of TW-bit entries per half table, the signs' inversions inside the row
    # adders, which add the lane's two entries (one adder bit per entry bit)
    parts["lanes"] = {"lut": L * TW * (sum(math.ceil(p / 4) for p in cfg.PS_HALVES) * c["lane_mux_luts_per_4"]
                                       + c["row_tree_luts_per_bit"]),
                      "ff": L * (2 * TW + CB) * c["lane_ff_per_bit"]}
    rw = TW + max(1, math.ceil(math.log2(cfg.T))) if cfg.T > 1 else TW
    parts["row_accumulators"] = {
        "lut": cfg.Q * ((cfg.T - 1) * rw + c["acc_bits"] * 2) * c["row_tree_luts_per_bit"],
        # row sum + per-token accumulators + the plane-weighted sum and output registers
        "ff": cfg.Q * (rw + c["acc_bits"] * (cfg.max_tok + 2)),
    }
    parts["engine_control"] = {"lut": c["engine_ctrl_luts"], "ff": c["engine_ctrl_ffs"]}
    if y:
        # the K-tile accumulators (tlmm_engine u_kmem): KROWS/Q x MAXTOK words of Q INT32 sums
        from edgestream.regmap import KROWS
        parts["ktile_memory"] = {"bram36": _bram36(math.ceil(KROWS / cfg.Q) * cfg.max_tok, cfg.Q * c["acc_bits"])}
    # per half table of n weights every level of the build but the last is whole (3 + 9 + ... + 3**(n-1)
    # entries), the last only the stored half
    level_entries = sum((3**n - 3) // 2 + half_entries(n) for n in table_halves(cfg.G))
    parts["table_builder"] = {"lut": c["builder_adders_per_entry"] * level_entries * TW, "ff": P * TW}
    parts["table_memory"] = _table_memory(cfg)
    wd = L * CB * c["wdecode_luts_per_code_bit"]
    if cfg.tern_encoding == "base3":
        wd += cfg.beat_bytes_base3 * c["base3_repack_luts_per_byte"]
    parts["weight_decode"] = {"lut": wd, "ff": L * CB}
    if cfg.int_encoding == "int8":
        # int-dense: the lane multiplies its int8 weight by the table entry of -e_i (no plane buffer: the
        # weights stream once, G column beats per chunk)
        parts["dense_multipliers"] = {"lut": L * c["dense_luts_per_lane"], "ff": L * c["dense_ffs_per_lane"],
                                      "dsp": L}
    if not y:
        parts["weight_buffer"] = {"bram36": math.ceil(cfg.wbuf_kib * 1024 * 8 / 36864)}
    # LUTRAM (Yosys: RAM32M16 cells, the LUTs it reports as memory), a word of Q accumulators + token + last
    fifo_w = cfg.Q * c["acc_bits"] + max(1, math.ceil(math.log2(cfg.max_tok))) + 1
    parts["result_fifo"] = {"lut": math.ceil(fifo_w / c["fifo_lutram_bits_per_8_luts"]) * 8
                            * math.ceil(cfg.ofifo_depth / 32) + 40, "ff": 20}
    # P = 1: one port for everything; P > 1: the shell's port (program, activations, beta, results) plus P
    # weight read masters (wbuf_kib is their FIFOs together)
    masters = cfg.axi_ports + (1 if cfg.axi_ports > 1 else 0)
    parts["axi"] = {"lut": masters * (c["axi_port_luts"] + cfg.axi_outstanding * c["axi_outstanding_luts"]),
                    "ff": masters * c["axi_port_ffs"] * cfg.axi_width_bits / 128}
    if y:
        # read masters (edgestream_accel): program (32-beat FIFO), activations (128), beta (256), the
        # vector unit's and the attention unit's (256 each) and one per weight port, whose FIFOs share
        # wbuf_kib; write masters: results, vector unit, attention unit
        bw = cfg.axi_width_bits
        fifos = [2 * cfg.axi_burst_beats, 8 * cfg.axi_burst_beats] + [16 * cfg.axi_burst_beats] * 3
        fifos += [cfg.wbuf_kib * 1024 * 8 // bw // cfg.axi_ports] * cfg.axi_ports
        axi = {"lut": len(fifos) * c["rd_master_luts"] + 3 * c["wr_master_luts"],
               "ff": len(fifos) * c["rd_master_ffs"] + 3 * c["wr_master_ffs"], "bram36": 0.0}
        for depth in fifos:
            for r, v in _fifo_cost(depth, bw).items():
                axi[r] += v
        parts["axi"] = axi
    # DL lanes, not Q: a unit goes through them in Q/DL sub-beats, picked by a Q/DL:1 mux of the
    # accumulator and beta units (held by their senders, so no extra registers)
    dl = dequant_lanes(cfg)
    parts["dequant"] = {"lut": dl * c["dequant_lane_luts"]
                        + 2 * dl * 32 * math.ceil(cfg.Q // dl / 4) * c["mux_luts_per_4"] * (cfg.Q > dl),
                        "ff": dl * c["dequant_lane_ffs"], "dsp": dl * c["dequant_lane_dsps"]}
    parts["vector_unit"] = {"lut": c["vec_fixed_luts"] + cfg.vec_lanes * c["vec_lane_luts"],
                            "ff": c["vec_fixed_ffs"] + cfg.vec_lanes * c["vec_lane_ffs"],
                            "dsp": c["vec_fixed_dsps"] + cfg.vec_lanes * c["vec_lane_dsps"]}
    if y:
        if cfg.vec_lanes > 1:
            parts["vector_unit"]["bram36"] = c["vec4_bram36"]
        else:
            parts["vector_unit"]["uram"] = c["vec_fixed_uram"]
        parts["row_unit"] = {"lut": c["row_luts"], "ff": c["row_ffs"], "dsp": c["row_dsps"]}
        from edgestream.regmap import kv_ports
        kvp = kv_ports({"axi_ports": cfg.axi_ports})
        base = (c["attn_luts"], c["attn_ffs"], c["attn_dsps"])
        lut, ff, dsp = (b + (k4 - b) * (kvp - 1) / 3 for b, k4 in zip(base, c["attn_kvp4"], strict=True))
        parts["attention_unit"] = {"lut": lut, "ff": ff, "dsp": math.ceil(dsp), "uram": c["attn_uram"]}
        parts["shell"] = {"lut": c["shell_luts"], "ff": c["shell_ffs"], "dsp": c["shell_dsps"]}
    else:
        parts["vector_unit"]["bram36"] = c["vec_fixed_bram36"]
        parts["shell"] = {"lut": c["shell_luts"], "ff": c["shell_ffs"], "bram36": c["shell_bram36"]}
    total = {r: 0.0 for r in RESOURCES}
    for p in parts.values():
        for r, v in p.items():
            total[r] += v
    total = {r: float(math.ceil(v)) for r, v in total.items()}
    return {**total, "breakdown": {k: {r: math.ceil(v) for r, v in p.items()} for k, p in parts.items()}}


def utilization(res: dict[str, float], target: Target) -> dict[str, float]:
    return {r: (res[r] / target.resources[r] if target.resources[r] else (math.inf if res[r] else 0.0))
            for r in RESOURCES}


def over_budget(res: dict[str, float], target: Target) -> list[str]:
    return [r for r in RESOURCES if res[r] > target.budget(r) + 1e-9]


# ---------------------------------------------------------------- exploration
@dataclass(eq=False)
class Candidate:
    cfg: HwConfig
    resources: dict[str, float]
    perf: dict[str, Any]
    over: list[str]

    @property
    def fits(self) -> bool:
        return not self.over

    def key(self) -> tuple:
        return (round(self.perf["decode_tok_s"], 1), round(self.perf["prefill_tok_s"], 1),
                -self.resources["lut"], -self.resources["bram36"])

    def summary(self, target: Target) -> dict[str, Any]:
        util = utilization(self.resources, target)
        return {"config_id": self.cfg.config_id, "G": self.cfg.G, "T": self.cfg.T, "Q": self.cfg.Q,
                "table_mem": self.cfg.table_mem, "tern_encoding": self.cfg.tern_encoding,
                "int_encoding": self.cfg.int_encoding, "axi_ports": self.cfg.axi_ports,
                "max_tok": self.cfg.max_tok, "max_k": self.cfg.max_k,
                "wbuf_kib": self.cfg.wbuf_kib, "clock_mhz": self.cfg.clock_mhz,
                "decode_tok_s": round(self.perf["decode_tok_s"], 2),
                "prefill_tok_s": round(self.perf["prefill_tok_s"], 2),
                "decode_roofline_frac": round(self.perf["decode_roofline_frac"], 3),
                "util": {r: round(u, 3) for r, u in util.items()}, "fits": self.fits, "over": self.over}


def _max_k_options(model_k: int, g: int, t: int) -> list[int]:
    full = math.ceil(model_k / (g * t)) * g * t
    opts = [full]
    k = full
    while k > 512:
        nk = math.ceil(k / 2 / (g * t)) * g * t
        if nk >= k:
            break
        k = nk
        opts.append(k)
    return opts


def explore(model: Any, target: Target, wkind: str = "ternary", wbits: int = 2, context: int = 128,
            prompt: int = 128, clock_mhz: float | None = None, top: int = 12, effort: str = "full") -> dict[str, Any]:
    """Choose a HwConfig for (model, target). `model` is an edgestream.ir.ModelConfig; wkind/wbits the
    encoding of the decoder linears (the LM head is INT8). Returns the chosen config, its resources and
    performance, the binding limits and the candidates weighed (best `top` plus a sample of rejected).
    effort "quick" searches a coarser grid (fewer lane shapes, the fastest clock, two prefill tiles)."""
    if effort not in ("full", "quick"):
        raise InputError(f"DSE effort {effort!r}: expected 'full' or 'quick'")
    from edgestream.compiler.perfmodel import predict

    max_model_k = max(model.hidden_size, model.intermediate_size, model.num_heads * model.head_dim)
    from edgestream.compiler import rtl_space

    clocks = [clock_mhz] if clock_mhz else [c for c in target.clocks_mhz if c <= rtl_space.MAX_CLOCK_MHZ]
    quick = effort == "quick"
    if quick and not clock_mhz:
        clocks = clocks[-1:]
    # only configurations the RTL implements (rtl_space): a figure for anything else is not a figure
    cands: list[Candidate] = []
    n_eval = 0
    best_of: dict[tuple, Candidate] = {}  # per lane shape and clock: the best memory/MAXK that fits
    for cfg in rtl_space.candidates(clocks, max_model_k, target.ports):
        if quick and cfg.table_mem != "uram" and (cfg.T, cfg.Q, cfg.clock_mhz) in best_of:
            continue
        res = estimate_resources(cfg)
        over = over_budget(res, target)
        n_eval += 1
        perf = predict(model, cfg, target, wkind, wbits, context=context, prompt=prompt, detail=False)
        cand = Candidate(cfg, res, perf, over)
        cands.append(cand)
        if not over:
            k = (cfg.T, cfg.Q, cfg.clock_mhz)
            if k not in best_of or cand.key() > best_of[k].key():
                best_of[k] = cand
    if not cands:
        clks = ", ".join(f"{c:g}" for c in target.clocks_mhz)
        raise InputError(f"target {target.name}: none of its clocks ({clks} MHz) is one the RTL closes "
                         f"(at most {rtl_space.MAX_CLOCK_MHZ:g} MHz)")
    fitting = sorted((c for c in cands if c.fits), key=Candidate.key, reverse=True)
    if not fitting:
        worst = {}
        for c in cands:
            for r in c.over:
                worst[r] = worst.get(r, 0) + 1
        least = min(cands, key=lambda c: (len(c.over), c.resources["lut"]))
        need = ", ".join(f"{int(least.resources[r]):,} {r.upper()} of {int(target.budget(r)):,}" for r in least.over)
        units = sum(least.resources["breakdown"].get(u, {}).get("lut", 0) for u in ("vector_unit", "attention_unit"))
        raise InputError(f"target {target.name}: no hardware configuration fits its budget "
                         f"(most often over: {', '.join(sorted(worst, key=worst.get, reverse=True)) or 'n/a'}; "
                         f"the smallest the RTL implements, {least.cfg.config_id} (T {least.cfg.T}, Q {least.cfg.Q}), "
                         f"needs {need}, {units:,} LUT of it the vector and attention units)")
    # decode figures within 1% of the best are a tie (below the model's resolution): among those the
    # fastest prefill wins, then the fewest LUTs
    top_dec = fitting[0].perf["decode_tok_s"]
    pool = [c for c in fitting if c.perf["decode_tok_s"] >= 0.99 * top_dec]
    best = max(pool, key=lambda c: (round(c.perf["prefill_tok_s"], 1), -c.resources["lut"]))
    fitting.remove(best)
    fitting.insert(0, best)
    faster_rejected = [c for c in cands if not c.fits and c.perf["decode_tok_s"] > best.perf["decode_tok_s"] * 1.001]
    binds_count: dict[str, int] = {}
    for c in faster_rejected:
        for r in c.over:
            binds_count[r] = binds_count.get(r, 0) + 1
    util = utilization(best.resources, target)
    resource_binds = max(binds_count, key=binds_count.get) if binds_count else None
    rejected_sample = sorted(faster_rejected, key=Candidate.key, reverse=True)[:top]
    return {
        "chosen": best.cfg,
        "resources": best.resources,
        "perf": best.perf,
        "utilization": util,
        "binding": {
            "decode_bound_by": best.perf["decode_bound"],
            "resource": resource_binds,
            "faster_rejected_by_resource": binds_count,
            "highest_utilization": max(RESOURCES, key=lambda r: util[r] / target.max_utilization[r]),
        },
        "evaluated": n_eval,
        "candidates": [c.summary(target) for c in fitting[:top]] + [c.summary(target) for c in rejected_sample],
    }
