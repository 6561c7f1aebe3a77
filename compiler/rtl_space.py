"""The hardware configurations the RTL under hw/rtl implements, and nothing else.

The DSE (edgestream.compiler.dse.explore) chooses only among `candidates(...)`, and a hand-written
`--hw-config` is refused by `check_implemented` unless the RTL implements it, so every predicted
figure belongs to hardware that can be simulated (`--device sim` builds the accelerator for the
artifact's own configuration: edgestream.host.devices.sim) and synthesized.

What the shell (edgestream_accel.sv, es_seq.sv, tlmm_engine.sv) implements today, and why each
limit is there (docs/registers.md):
- G = 5 with G-index codes (CB = 8 bits, the 1.6 bpw base-3 byte): es_seq checks BUILD_TABLE's G
  against its own and the engine decodes CB-bit slots;
- one weight beat fills the weight ports exactly: Q * T * CB = P * 128 for P weight ports, i.e.
  (T, Q, P) in (1, 16, 1), (2, 8, 1), (4, 4, 1) (one port: the weights share the shell's port) and
  (1, 32, 2), (1, 64, 4) (P read-only weight ports, the weight image striped across them: each port
  keeps the 256-beat weight FIFO, wbuf_kib = 4 P); all run in the accelerator bench
  (tests/test_rtl_accel_program.py);
- integer weights (the LM head): dense int8 (`int-dense`, int_encoding "int8": G column beats per chunk,
  one multiplier per lane, 8 bits per weight streamed), or as 8 bit planes through the same tables
  (`int-planes`, 12.8 bits per weight and 1.6x the cycles); the DSE is given int8 (calibrated on the
  shell: the 0.73B kv260 layer and head within 1%, docs/hardware.md) and the shipped shell has it;
- 128-bit AXI4 ports, 16-beat bursts, 16 bursts in flight per weight reader;
- MAXK a power of two 256..4096 (K > MAXK: the K tiles accumulate on chip, up to KROWS = 4096 rows
  per linear, regmap.KROWS; a taller K-tiled linear runs on the host), MAXTOK 4 tokens per tile,
  result FIFO 16;
- the vector and attention units (UNITS = 7) on every (T, Q, ports) above, es_vec at one or four
  elements per cycle (vec_lanes 1 or 4; the DSE is given 1 until the model is calibrated on the
  4-lane unit);
- table memories are plain simple-dual-port arrays with a registered read, so where they live
  (URAM, BRAM, LUTRAM) is the synthesis tool's mapping, modelled by the resource estimate; a group's
  table is split into two tables over its low 3 and high 2 weights (14 + 5 stored entries: the lower
  half of each sign-symmetric ternary table, the lanes negate the mirrored ones and add the two), which
  is what lets (1, 64, 4) fit a KV260 (docs/hardware.md, "Split tables");
- clock: the pipeline is cut for 250 MHz (docs/hardware.md), so a target's clocks up to 250 MHz.
"""

from __future__ import annotations

from collections.abc import Iterator

from edgestream.errors import InputError

G = 5
TQP = ((1, 16, 1), (2, 8, 1), (4, 4, 1), (1, 32, 2), (1, 64, 4))  # (T, Q, weight ports)
TQ = tuple((t, q) for t, q, _ in TQP)
WBUF_KIB_PER_PORT = 4
INT_ENCODINGS = ("int8", "planes")  # the DSE's choice first: dense is never slower
FIXED = dict(tern_encoding="gindex", axi_width_bits=128, axi_burst_beats=16,
             axi_outstanding=16, max_tok=4, ofifo_depth=16)
VEC_LANES = (1, 4)  # es_vec's VL
# what the DSE is given among the implemented choices (VL = 4 waits for its calibration on the shell)
GIVEN = dict(int_encoding="int8", vec_lanes=1)
MAX_K = (256, 512, 1024, 2048, 4096)
MAX_CLOCK_MHZ = 250.0
TABLE_MEMS = ("uram", "bram", "lutram")


def why_not(cfg) -> str | None:
    """None when the RTL implements `cfg` (an edgestream.compiler.dse.HwConfig), else the reason."""
    if cfg.G != G:
        return f"G = {cfg.G}: the RTL decodes G = {G} only"
    if (cfg.T, cfg.Q, cfg.axi_ports) not in TQP:
        return (f"T = {cfg.T}, Q = {cfg.Q}, axi_ports = {cfg.axi_ports}: the RTL needs Q*T*CB = 128 x ports with "
                f"(T, Q, ports) in {list(TQP)}")
    if cfg.wbuf_kib != WBUF_KIB_PER_PORT * cfg.axi_ports:
        return f"wbuf_kib = {cfg.wbuf_kib}: the RTL implements {WBUF_KIB_PER_PORT} KiB per weight port"
    if cfg.vec_lanes not in VEC_LANES:
        return f"vec_lanes = {cfg.vec_lanes}: the RTL implements {list(VEC_LANES)}"
    if cfg.int_encoding not in INT_ENCODINGS:
        return f"int_encoding = {cfg.int_encoding!r}: the RTL implements {list(INT_ENCODINGS)}"
    for f, v in FIXED.items():
        if getattr(cfg, f) != v:
            return f"{f} = {getattr(cfg, f)!r}: the RTL implements {v!r}"
    if cfg.max_k not in MAX_K:
        return f"max_k = {cfg.max_k}: the RTL implements {list(MAX_K)}"
    if cfg.clock_mhz > MAX_CLOCK_MHZ:
        return f"clock_mhz = {cfg.clock_mhz}: the RTL's pipeline is cut for at most {MAX_CLOCK_MHZ:g} MHz"
    return None


def check_implemented(cfg, src: str = "hardware config"):
    reason = why_not(cfg)
    if reason:
        raise InputError(f"{src}: configuration {cfg.config_id} is not one the RTL implements ({reason}); "
                         f"implemented: edgestream/compiler/rtl_space.py")
    return cfg


def candidates(clocks_mhz, max_model_k: int, max_ports: int = 1) -> Iterator:
    """Every implemented configuration worth weighing for a model whose largest linear has
    `max_model_k` columns: the smallest MAXK that holds it (or 4096, with K tiles) and every smaller
    one, at each of the given clocks the RTL closes, with at most `max_ports` weight ports (the
    target's PS-PL ports)."""
    from edgestream.compiler.dse import HwConfig

    fit = [k for k in MAX_K if k >= max_model_k] or [MAX_K[-1]]
    ks = [k for k in MAX_K if k <= fit[0]]  # smaller tables cost K tiles, and may be what fits
    for clk in [c for c in clocks_mhz if c <= MAX_CLOCK_MHZ]:
        for t, q, p in TQP:
            if p > max_ports:
                continue
            for mk in reversed(ks):
                for mem in TABLE_MEMS:
                    yield HwConfig(G=G, T=t, Q=q, table_mem=mem, max_k=mk, clock_mhz=float(clk), axi_ports=p,
                                   wbuf_kib=WBUF_KIB_PER_PORT * p, **GIVEN, **FIXED)
