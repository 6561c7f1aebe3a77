"""Performance model: cycles per layer for prefill and decode, DDR bytes per token, the DDR roofline,
and predicted TTFT / prefill tok/s / decode tok/s for a (model, HwConfig, Target).

It is an analytic MODEL of the lowered program on the RTL's structure, calibrated against the RTL in
Verilator (never against a board): every figure it produces is modelled, and says so (`source`,
`calibration`); measured figures come from `edgestream bench` (host/accel_bench.py) and are attached to
a report by attach_measured. What it charges:

* DDR: effective bandwidth = min(ports x width x clock x latency cover, peak x refresh x controller
  efficiency x burst efficiency). Burst efficiency = B / (B + 64) for B-byte bursts (about 3 ns of
  command/bank overhead per burst); latency cover = outstanding x B / (read latency x port rate).
  Bytes are those of this configuration's packed regions (code slots, row/group padding, 4 KiB
  alignment), the INT8 LM head, the KV cache read (int8 + float32 scale per position and KV head),
  KV writes and the embedding row.
* Linears (II = 1, as tlmm_engine.sv): per K tile ntok x ceil(K/G) ingest cycles (table build; not
  overlapped with lookups, the RTL phases are sequential), then ceil(N/Q) x planes x ceil(groups/T)
  x ntok lookup cycles, plus pipeline fill/drain and command issue; never faster than the weight
  ports and the DDR deliver the command's bytes (the LM head on four weight ports is DDR-bound: its
  weight-port stalls). Shell terms (sequencer per linear and token tile, DDR read latencies) fitted on
  the shell (benchmarks/bench_accel_sim.py: within 10% of every simulated linear).
* Units, per instruction the lowering emits (vec_cycles, row_cycles, attn_cycles; constants VEC_CAL,
  ROW_CAL, ATTN_CAL fitted on per-instruction counters of the simulated RTL, errors in docs/hardware.md):
  a fixed cost and a few DDR read latencies per instruction and per token, plus the elements streamed
  at one per lane per cycle (es_vec) or four per cycle (es_row); attention = the KV stream at one
  16-byte beat per cycle per query set + per token and KV head (K/V store) + per query + per set. In
  series with the engine (the data depends on it); the weight prefetch buffer lets DDR run ahead by at
  most wbuf bytes during those gaps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgestream.compiler.dse import dequant_lanes
from edgestream.compiler.lowering import ALIGN, region_layout, weight_stripes

PIPE_CYCLES = 12  # engine fill + drain per K tile (builder 1, table mem 1, lanes 3, fifo, dequant)
ISSUE_CYCLES = 16  # sequencer: fetch + decode + start of one instruction
SEQ_FIXED_CYCLES = 70  # shell, per linear and token tile: fetch/decode/launch, write-response drain (fitted)
BURST_OVERHEAD_BYTES = 64


def ddr_bandwidth(cfg, target) -> dict[str, float]:
    f = cfg.clock_mhz * 1e6
    port_rate = cfg.axi_width_bits / 8 * f
    burst = cfg.axi_burst_beats * cfg.axi_width_bits / 8
    cover = min(1.0, cfg.axi_outstanding * burst / (target.read_latency_ns * 1e-9 * port_rate))
    port_cap = cfg.axi_ports * port_rate * cover
    burst_eff = burst / (burst + BURST_OVERHEAD_BYTES)
    ddr_cap = target.ddr_peak_gbps * 1e9 * target.refresh_efficiency * target.controller_efficiency * burst_eff
    return {"effective": min(port_cap, ddr_cap), "port_cap": port_cap, "ddr_cap": ddr_cap,
            "peak": target.ddr_peak_gbps * 1e9, "burst_efficiency": burst_eff, "latency_cover": cover,
            "bound": "ps_pl_ports" if port_cap < ddr_cap else "ddr"}


def model_commands(m, wkind: str, wbits: int, q: int = 1) -> list[tuple[str, int, int, str, int]]:
    """The fused TLMM commands of one decoder layer: (name, N, K, kind, bits). Members are fused as the
    lowering fuses them (compiler/lowering.py): at most 4, and every member but the last ends on a row
    batch of q rows, so a group splits where one does not (q/k/v of 96-wide heads at Q = 64: q + k, v);
    the parts of a split group are named name#2, name#3."""
    h, ffn = m.hidden_size, m.intermediate_size
    qd, kvd = m.num_heads * m.head_dim, m.num_kv_heads * m.head_dim
    out = []
    for name, members, k in (("qkv", (qd, kvd, kvd), h), ("o", (h,), qd), ("gate_up", (ffn, ffn), h),
                             ("down", (h,), ffn)):
        parts = [[members[0]]]
        for n in members[1:]:
            if parts[-1][-1] % q == 0 and len(parts[-1]) < 4:
                parts[-1].append(n)
            else:
                parts.append([n])
        out += [(name if i == 0 else f"{name}#{i + 1}", sum(p), k, wkind, wbits) for i, p in enumerate(parts)]
    return out


def command_cost(cfg, n: int, k: int, kind: str, bits: int, ntok: int, latency_cycles: float = 0.0,
                 ddr_bytes_per_cycle: float | None = None) -> dict[str, float]:
    """DDR bytes and engine cycles of one fused TLMM (with its dequantization) over n rows x k columns
    for ntok tokens, as the shell's sequencer runs it from program.bin: per token tile of max_tok
    tokens the weights stream again, with one float32 beta per output row and the tile's activations
    and scales on the shell's read port (and the weights too when there is one port; with P > 1 weight
    ports each streams its stripe). latency_cycles: the DDR read latency in clock cycles;
    ddr_bytes_per_cycle: what the DDR sustains for all ports together (None: no limit beyond the ports)."""
    tiles = math.ceil(ntok / cfg.max_tok)
    beat = cfg.axi_width_bits // 8
    wbytes = 0
    cycles = 0
    act_beats = 0
    for k0 in range(0, k, cfg.max_k):
        klen = min(cfg.max_k, k - k0)
        lay = region_layout(cfg, n, klen, kind, bits)
        wbytes += lay["nbytes"]
        cycles += tiles * (ISSUE_CYCLES * 3 + PIPE_CYCLES) + ntok * lay["groups"] + lay["beats"] * ntok
        act_beats += ntok * math.ceil(lay["groups"] * 8 / beat) + tiles * math.ceil(cfg.max_tok * 4 / beat)
    beta_bytes = tiles * math.ceil(n / cfg.Q) * cfg.Q * 4
    nbytes = tiles * wbytes + beta_bytes + act_beats * beat
    # a command cannot finish before its beats have crossed the read ports: one port carries every
    # stream, or the weights stripe over the P weight ports beside the shell's port
    if weight_stripes(cfg, kind) > 1:
        bus = max(math.ceil(tiles * wbytes / (beat * cfg.axi_ports)), math.ceil((nbytes - tiles * wbytes) / beat))
    else:
        bus = math.ceil(nbytes / (beat * cfg.axi_ports))
    if ddr_bytes_per_cycle:
        bus = max(bus, math.ceil(nbytes / ddr_bytes_per_cycle))
    # dequantize: n x ntok values through the result path's dequantize stage (dequant_lanes(cfg) lanes,
    # es_dequant; the 128-bit write port takes no more either), pipelined behind the lookups; it only
    # shows when it is slower than them
    deq = math.ceil(n * ntok / dequant_lanes(cfg))
    # the sequencer: header + instruction line, then the TLMM's region/map entries (two read latencies
    # before the first tile), and per tile the first beats of its streams (one more); calibrated on
    # the shell in Verilator (benchmarks/bench_accel_sim.py)
    seq = SEQ_FIXED_CYCLES * tiles + (2 + tiles) * latency_cycles
    return {"bytes": nbytes, "weight_bytes": tiles * wbytes,
            "engine_cycles": max(cycles, bus, deq + ISSUE_CYCLES) + seq,
            "sequencer_cycles": seq, "bus_cycles": bus}


# ---------------------------------------------------------------- units: calibrated on the simulated RTL
# Busy cycles of es_vec / es_row (VEC_CYCLES) and es_attn (ATTN_CYCLES) per instruction, fitted on the
# counters of the Verilator shell at commit 9ec2716 (the sim device under the kv260 DDR model: 17.2 GB/s
# shared by every port, read latency L plus 0..16 cycles of jitter), each instruction alone in one START
# (benchmarks/calibrate_units_sim.py): the 2-layer test model (hidden 64) and the demo model (hidden 256)
# at position 8, L = 0 and 100, decode and a 4-token prefill tile; attention also on the demo at position
# 64 and one layer each of the 2B4T's and the 0.73B's widths. Checked (vector, row) on those widths.
# Figures, fit and errors: docs/hardware.md "Calibration of the performance model". An RTL change to a
# unit's timing needs a refit (tests/test_perfmodel_rtl.py fails until then).
CALIBRATION = ("rtl-sim-0944737 (Verilator shell: es_vec 1 lane at 0562bcf, es_attn at 0944737; kv260 DDR model; "
               "docs/hardware.md)")
VMAX = 8192  # es_vec row buffer (floats): ADD / ACT_MUL stream their operands in blocks of VMAX
SLOT_BYTES = 8  # one G-group of the i8 slot layout (docs/registers.md), streamed a byte a cycle by NORM_QUANT
ATTN_NQ = 4  # es_attn: queries per key/value stream (NQ of edgestream_accel)
# vec_lanes -> per opcode (a, b, c, d): a + b*L cycles per instruction (buffer-map and region entries,
# the first operand reads, the write-response drain: ~3 read latencies) and c + d*L per token (rows read
# per token: EMBED its id, scale and row, ROPE the cos/sin rows and the row, NORM_QUANT the row and its
# ~380-cycle chain of sequential float64 scalars), on top of the elements the datapath streams at one
# per lane per cycle. Only vec_lanes = 1 is measured; other lane counts use these constants with the
# element terms divided by the lanes (modelled, until the 4-lane unit is measured and gets its row).
# NORM_QUANT has its own form (norm_quant_cycles, below), not a row here.
VEC_CAL = {1: {"EMBED": (75.2, 1.0, 50.8, 2.0), "ROPE": (57.9, 1.0, 36.8, 1.0),
               "ADD": (86.4, 2.0, 0, 0), "ACT_MUL": (84.8, 2.0, 0, 0)}}
# NORM_QUANT without a gain: its scalar chain is ~110 cycles, not ~380 (docs/units.md; not measured here)
NQ_PLAIN_SCALARS = 270
# es_row (four floats a cycle, not lanes): (a, b, k): a + b*L + k*W/4 cycles; OUTPUT's argmax with its
# read window (8 bursts of 16 beats in flight) limiting the rate when L + jitter exceeds 128 cycles.
# LAST_ROW's k is fitted with the one Q = 64 row measured (W = 1536: the padded write costs more)
ROW_CAL = {"LAST_ROW": (54, 1.96, 1.14), "OUTPUT": (34, 2.0, 1.0)}
# es_attn (after a22dca9: its score, softmax and weight chains time-shared, one (key, query) a cycle):
# 2 L per instruction; per token and KV head (phase 1: quantize and store the K and V slots) a constant;
# per query set (up to NQ queries of a GQA group sharing one K and one V stream) a constant; per query
# (quantize, scalars, output row) a + b*D; per set and key, for k queries and DB = D/16: pass 1
# max(DB + 1, k) (the K slot's beats or the k scores), pass 2 k (softmax on chip), pass 3 max(DB, k)
# (the V slot's beats or the k weights), scaled by `passes` (fitted: ~1)
# Refit at 0944737 (the per-query f during pass 3, the output engine behind it): least squares over the
# test model's decode and 4-token tile at position 8 (tests/test_perfmodel_rtl.py), the es_attn bench's
# decode at context 128 for the demo, 0.73B and 2B4T shapes and its 4-token tiles ending there
# (tb_es_attn.perf, L = 100); the per-query D term fitted to ~0 and dropped. Errors -3.0%..+0.2%.
ATTN_CAL = {"fixed_per_lat": 2.0, "store": 236.3, "set": 151.7, "query": (221.9, 0.0), "passes": 0.956}
# KVP > 1 (the KV stream on the weight ports, es_attn at fc06e01: the next set's queries quantized during
# this set's passes, pass 3 VW x k a key): least squares over tb_es_attn.perf at KVP = 4 (Q 64, L = 100;
# docs/hardware.md "ATTN_CAL points at KVP = 4", contexts 64..256 and the 4-token tiles). Errors: MHA
# shapes within +1.3%, GQA decode -0.6..-5.7% at context 128, down to -11.6% at 64 (the output engine's
# floor, k x D a set, is not in the form).
ATTN_CAL_KVP = {"fixed_per_lat": 2.0, "store": 186.53, "set": 81.14, "query": (119.97, -0.384), "passes": 1.012}


def calibration(cfg) -> str:
    """What the unit terms of this configuration were fitted on."""
    if cfg.vec_lanes in VEC_CAL:
        return CALIBRATION
    return (f"{CALIBRATION}; vec_lanes = {cfg.vec_lanes} is not measured: the 1-lane constants with the "
            f"element terms divided by {cfg.vec_lanes}")


def vec_elements(cfg, op: str, width: int, head_dim: int = 0, gain: bool = True) -> tuple[float, float]:
    """(per instruction, per token) elements es_vec streams through its lanes for one instruction (ADD /
    ACT_MUL: per token of the whole buffer): EMBED the int8 row; ROPE the row into the buffer and the
    rotated row out, the cos/sin rows; NORM_QUANT the row in (max|u| taken as it arrives) and the i8
    slot bytes out, the gain once per instruction; ADD / ACT_MUL the two operands."""
    if op == "EMBED":
        return 0, width
    if op == "ROPE":
        return 0, 2 * width + head_dim
    if op in ("ADD", "ACT_MUL"):
        return 0, 2 * width
    slots = 16 * math.ceil(math.ceil(width / cfg.G) * SLOT_BYTES / 16)
    return (width if gain else 0), width + slots


def vec_cycles(cfg, op: str, width: int, ntok: int, lat: float, gain: bool = True, head_dim: int = 0) -> float:
    """Busy cycles of es_vec for one instruction over `width` elements per token (calibrated: VEC_CAL)."""
    if op == "NORM_QUANT":
        return norm_quant_cycles(cfg, width, ntok, lat, gain)
    a, b, c, d = VEC_CAL.get(cfg.vec_lanes, VEC_CAL[1])[op]
    lanes = cfg.vec_lanes
    e_instr, e_tok = vec_elements(cfg, op, width, head_dim, gain)
    if op in ("ADD", "ACT_MUL"):  # whole buffers, in blocks of VMAX: each block pays the instruction's latencies
        return math.ceil(ntok * width / VMAX) * (a + b * lat) + ntok * e_tok / lanes
    per_tok = c + d * lat
    return a + b * lat + e_instr / lanes + ntok * (per_tok + e_tok / lanes)


# NORM_QUANT since 0562bcf (pass 2 streams the row, the scalar chain beside the next token's fill):
# 19 + 2L per instruction, the gain row, every token's pass 2 (2G elements per beat of its i8 slot row),
# the first row's fill with ~70 cycles of read and pipe, then each next token whichever is longer of the
# chain (~400 cycles with the gain) and its row fill, and the last chain. Derived by HC on fresh runs
# (within 0.3% on the test model's widths 64 / 160, 1 and 4 tokens, L = 100).
NQ_CHAIN = 400


def norm_quant_cycles(cfg, width: int, ntok: int, lat: float, gain: bool = True) -> float:
    v = cfg.vec_lanes
    abt = math.ceil(math.ceil(width / cfg.G) * SLOT_BYTES / 16)
    chain = NQ_CHAIN - (0 if gain else NQ_PLAIN_SCALARS)
    fill = width / v + 70
    return (19 + 2 * lat + (width / v if gain else 0) + ntok * 2 * cfg.G * abt / v + fill
            + (ntok - 1) * max(chain, fill) + chain)


def row_cycles(op: str, width: int, lat: float) -> float:
    a, b, k = ROW_CAL[op]
    rate = max(1.0, (lat + 16) / 128) if op == "OUTPUT" else 1.0
    return a + b * lat + k * math.ceil(width / 4) * rate


def attn_stream(m, ntok: int, pos: int, kvp: int = 1) -> tuple[int, int, int]:
    """(query sets per KV head, KV-slot beats read, pass cycles, for all KV heads) of one ATTENTION: each set
    of up to ATTN_NQ queries (token-major) streams the K slots (a scale beat + D/16) and the V slots (D/16)
    of the positions up to its last token (docs/units.md "KV cache in DDR"). With `kvp` KV ports a slot is
    padded to words of kvp beats (KW = ceil((DB+1)/kvp), VW = ceil(DB/kvp)), one word a cycle: the beats
    read count the padding."""
    grp = max(1, m.num_heads // m.num_kv_heads)
    nq = ntok * grp
    sets = math.ceil(nq / ATTN_NQ)
    kw, vw = _kv_words(m.head_dim, kvp)
    beats = passes = 0
    for j in range(sets):
        lo, hi = j * ATTN_NQ, min((j + 1) * ATTN_NQ, nq)
        k, keys = hi - lo, pos + (hi - 1) // grp + 1
        beats += keys * (kw + vw) * kvp
        passes += keys * (max(kw, k) + k + (vw * k if kvp > 1 else max(vw, k)))
    return sets, m.num_kv_heads * beats, m.num_kv_heads * passes


def _kv_words(head_dim: int, kvp: int) -> tuple[int, int]:
    """Words of kvp beats in a K slot (scale beat + D/16) and a V slot (D/16) (docs/units.md)."""
    db = math.ceil(head_dim / 16)
    return math.ceil((db + 1) / kvp), math.ceil(db / kvp)


def kv_ports(cfg) -> int:
    """The attention unit's KV ports on this configuration (edgestream.regmap.kv_ports)."""
    from edgestream.regmap import kv_ports as kvp

    return kvp(cfg.to_dict())


def attn_cycles(m, ntok: int, pos: int, lat: float, kvp: int = 1) -> float:
    """Busy cycles of es_attn for one ATTENTION of ntok tokens at positions pos.. (calibrated: ATTN_CAL)."""
    c = ATTN_CAL if kvp == 1 else ATTN_CAL_KVP
    H, KVH, D = m.num_heads, m.num_kv_heads, m.head_dim
    sets, _, passes = attn_stream(m, ntok, pos, kvp)
    return (c["fixed_per_lat"] * lat + ntok * KVH * c["store"] + KVH * sets * c["set"] + c["passes"] * passes
            + ntok * H * (c["query"][0] + c["query"][1] * D))


def _layer_steps(m, cfg, wkind, wbits, ntok: int, ctx_end: int, lat: float = 0.0,
                 ddr_bpc: float | None = None) -> list[dict[str, Any]]:
    """One decoder layer for ntok tokens whose last position is ctx_end - 1: the instructions the lowering
    emits (compiler/lowering.py), each with its DDR bytes and cycles."""
    h, ffn, D = m.hidden_size, m.intermediate_size, m.head_dim
    qd, kvd = m.num_heads * D, m.num_kv_heads * D
    cmds = model_commands(m, wkind, wbits, cfg.Q)
    sub = m.arch == "bitnet"  # sub-layer norms: the quantizations before o and down carry a gain

    def vec(name, op, width, gain=True):
        return {"name": name, "kind": "vector", "bytes": 0,
                "cycles": vec_cycles(cfg, op, width, ntok, lat, gain, D)}

    def mm(name):  # the group's commands (one, or the parts of a split group) one after another
        cs = [command_cost(cfg, n, k, kind, bits, ntok, lat, ddr_bpc)
              for nm, n, k, kind, bits in cmds if nm.split("#")[0] == name]
        return {"name": name, "kind": "tlmm", "bytes": sum(c["bytes"] for c in cs),
                "weight_bytes": sum(c["weight_bytes"] for c in cs), "cycles": sum(c["engine_cycles"] for c in cs)}

    # attention: the K and V slots of the positions each query set attends to, read once per set (int8 rows
    # and a scale beat per K slot, 16-byte beats), and the new tokens' slots written
    kvp = kv_ports(cfg)
    kv_read = 16 * attn_stream(m, ntok, ctx_end - ntok, kvp)[1]
    kv_write = 16 * ntok * m.num_kv_heads * sum(_kv_words(D, kvp)) * kvp
    attn = {"name": "attention", "kind": "attention", "bytes": kv_read + kv_write,
            "cycles": attn_cycles(m, ntok, ctx_end - ntok, lat, kvp)}
    return [vec("norm_quant.in", "NORM_QUANT", h), mm("qkv"), vec("rope.q", "ROPE", qd), vec("rope.k", "ROPE", kvd),
            attn, vec("norm_quant.o", "NORM_QUANT", qd, sub), mm("o"), vec("residual", "ADD", h),
            vec("norm_quant.ffn", "NORM_QUANT", h), mm("gate_up"), vec("act", "ACT_MUL", ffn),
            vec("norm_quant.down", "NORM_QUANT", ffn, sub), mm("down"), vec("residual", "ADD", h)]


def _head_steps(m, cfg, ntok: int = 1, lat: float = 0.0, ddr_bpc: float | None = None) -> list[dict[str, Any]]:
    h = m.hidden_size
    c = command_cost(cfg, m.vocab_size, h, "int", 8, ntok, lat, ddr_bpc)
    return [{"name": "last_row", "kind": "vector", "bytes": 0,
             "cycles": row_cycles("LAST_ROW", h, lat)},
            {"name": "norm_quant.final", "kind": "vector", "bytes": 0,
             "cycles": vec_cycles(cfg, "NORM_QUANT", h, ntok, lat)},
            {"name": "lm_head", "kind": "tlmm", "bytes": c["bytes"], "weight_bytes": c["weight_bytes"],
             "cycles": c["engine_cycles"]},
            {"name": "argmax", "kind": "vector", "bytes": 0,
             "cycles": row_cycles("OUTPUT", m.vocab_size, lat)}]


def _embed_step(m, cfg, ntok: int, lat: float = 0.0) -> dict[str, Any]:
    return {"name": "embed", "kind": "vector", "bytes": ntok * (m.hidden_size + 4),
            "cycles": vec_cycles(cfg, "EMBED", m.hidden_size, ntok, lat)}


def _run_steps(steps: list[dict[str, Any]], cfg, bw: float, prefetched: float = 0.0,
               record: bool = True) -> dict[str, float]:
    """Time of a sequence of steps: each step takes max(its DDR time, its compute time); weights for
    a later TLMM are prefetched during earlier compute-bound time, up to the prefetch buffer."""
    f = cfg.clock_mhz * 1e6
    buf = cfg.wbuf_kib * 1024
    t = ddr_t = comp_t = 0.0
    for s in steps:
        comp = s["cycles"] / f
        need = s["bytes"]
        if s["kind"] == "tlmm":
            use = min(prefetched, need)
            need -= use
            prefetched = 0.0
        ddr = need / bw
        dt = max(ddr, comp)
        # DDR idle time inside this step fills the buffer for the next weights
        prefetched = min(buf, prefetched + (dt - ddr) * bw)
        if record:
            s["time_s"] = dt
        t += dt
        ddr_t += s["bytes"] / bw
        comp_t += comp
    return {"time_s": t, "ddr_s": ddr_t, "compute_s": comp_t, "prefetched": prefetched}


def _run_model(m, cfg, bw, embed, layer, head, reps: int = 1) -> dict[str, float]:
    """embed, num_layers x layer (prefetch state carried: first layer, then the steady state), head;
    the layer part repeated `reps` times (prefill tiles of the same shape)."""
    a = _run_steps([embed], cfg, bw)
    first = _run_steps(layer, cfg, bw, a["prefetched"])
    steady = _run_steps(layer, cfg, bw, first["prefetched"])
    tot = {k: a[k] + first[k] + (m.num_layers - 1) * steady[k] for k in ("time_s", "ddr_s", "compute_s")}
    tot = {k: v * reps for k, v in tot.items()}
    if head:
        h = _run_steps(head, cfg, bw, steady["prefetched"])
        tot = {k: tot[k] + h[k] for k in tot}
    return tot


def predict(m, cfg, target, wkind: str = "ternary", wbits: int = 2, context: int = 128, prompt: int = 128,
            detail: bool = True) -> dict[str, Any]:
    bw = ddr_bandwidth(cfg, target)
    eff = bw["effective"]
    f = cfg.clock_mhz * 1e6
    lat = target.read_latency_ns * 1e-9 * f  # DDR read latency in cycles: the sequencer waits on it
    dbc = bw["ddr_cap"] / f  # what the DDR sustains per cycle for all ports together

    # ---- decode: one token at position `context` (attends over context + 1 positions)
    embed = _embed_step(m, cfg, 1, lat)
    layer = _layer_steps(m, cfg, wkind, wbits, 1, context + 1, lat, dbc)
    head = _head_steps(m, cfg, 1, lat, dbc)
    dec = _run_model(m, cfg, eff, embed, layer, head)
    w_bytes = m.num_layers * sum(s["weight_bytes"] for s in layer if s["kind"] == "tlmm")
    head_bytes = sum(s["weight_bytes"] for s in head if s["kind"] == "tlmm")
    # per-row betas, activations and scales the sequencer streams next to the weights
    side_bytes = m.num_layers * sum(s["bytes"] - s["weight_bytes"] for s in layer if s["kind"] == "tlmm") + sum(
        s["bytes"] - s["weight_bytes"] for s in head if s["kind"] == "tlmm")
    kv_bytes = m.num_layers * sum(s["bytes"] for s in layer if s["kind"] == "attention")
    tok_bytes = w_bytes + head_bytes + side_bytes + kv_bytes + embed["bytes"]
    decode_tok_s = 1.0 / dec["time_s"]
    roof = bw["peak"] / tok_bytes
    ideal_w = m.num_layers * sum(n * k for _, n, k, _, _ in model_commands(m, wkind, wbits))
    ideal_bytes = (ideal_w * (1.6 if wkind == "ternary" else wbits) / 8 + m.vocab_size * (m.hidden_size + 4)
                   + kv_bytes + m.hidden_size + 4)
    if dec["compute_s"] >= dec["ddr_s"]:
        bound = "engine_compute"
    else:
        bound = "ddr_bandwidth" if bw["bound"] == "ddr" else "ps_pl_ports"

    # ---- prefill: prompt tokens in tiles of max_tok, LM head for the last token only. Full tiles
    # are charged at the mean attention length (attention cost is linear in it), the last partial
    # tile at its own.
    mt = min(cfg.max_tok, prompt)
    nfull, rest = divmod(prompt, mt)
    pre = {"time_s": 0.0, "ddr_s": 0.0, "compute_s": 0.0}
    pre_bytes = 0.0
    tiles = []
    if nfull:
        mean_end = mt * (nfull + 1) / 2
        lay = _layer_steps(m, cfg, wkind, wbits, mt, max(mt, int(round(mean_end))), lat, dbc)
        r = _run_model(m, cfg, eff, _embed_step(m, cfg, mt, lat), lay, None, reps=nfull)
        pre = {k: pre[k] + r[k] for k in pre}
        pre_bytes += nfull * (m.num_layers * sum(s["bytes"] for s in lay) + mt * (m.hidden_size + 4))
        tiles.append((mt, lay))
    if rest:
        lay = _layer_steps(m, cfg, wkind, wbits, rest, prompt, lat, dbc)
        r = _run_model(m, cfg, eff, _embed_step(m, cfg, rest, lat), lay, None)
        pre = {k: pre[k] + r[k] for k in pre}
        pre_bytes += m.num_layers * sum(s["bytes"] for s in lay) + rest * (m.hidden_size + 4)
        tiles.append((rest, lay))
    h = _run_steps(head, cfg, eff, record=False)
    pre_bytes += head_bytes
    ttft = pre["time_s"] + h["time_s"]
    prefill_tok_s = prompt / ttft
    compute_roof = cfg.lanes * cfg.G * f / max(ideal_w, 1)
    out: dict[str, Any] = {
        "clock_mhz": cfg.clock_mhz,
        "context": context,
        "prompt": prompt,
        "decode_tok_s": decode_tok_s,
        "decode_ms_per_token": 1e3 * dec["time_s"],
        "decode_bound": bound,
        "bytes_per_token": {"weights": w_bytes, "lm_head": head_bytes, "beta_activations": side_bytes,
                            "kv_cache": kv_bytes,
                            "embedding": embed["bytes"], "total": tok_bytes,
                            "ideal_total": ideal_bytes},
        "ddr": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in bw.items()},
        "decode_roofline_tok_s": roof,
        "decode_roofline_frac": decode_tok_s / roof,
        "decode_ideal_roofline_tok_s": bw["peak"] / ideal_bytes,
        "ttft_s": ttft,
        "prefill_tok_s": prefill_tok_s,
        "prefill_bytes_per_token": pre_bytes / prompt,
        "prefill_roofline_tok_s": bw["peak"] / (pre_bytes / prompt),
        "prefill_roofline_frac": prefill_tok_s / (bw["peak"] / (pre_bytes / prompt)),
        "prefill_compute_roofline_tok_s": compute_roof,
        "prefill_compute_frac": prefill_tok_s / compute_roof,
        "source": "modelled",
        "calibration": calibration(cfg),
        "read_latency_cycles": round(lat, 1),
        "calibrated": "rtl-simulation",
        "note": "MODELLED: analytic model of the lowered program; linears calibrated on the shell in Verilator "
                "(benchmarks/bench_accel_sim.py), vector/row/attention units on per-instruction counters of the "
                "simulated RTL (VEC_CAL, ATTN_CAL); not against a board",
    }
    if detail:
        def table(steps):
            return [{"step": s["name"], "bytes": int(s["bytes"]), "cycles": int(s["cycles"]),
                     "time_us": round(1e6 * s["time_s"], 3)} for s in steps]

        # cycles per layer (steady state): decode at this context; prefill of one full tile
        _run_steps(layer, cfg, eff)
        out["decode_layer"] = table(layer)
        out["decode_layer_us"] = round(1e6 * sum(s["time_s"] for s in layer), 3)
        out["decode_layer_cycles"] = int(round(sum(s["time_s"] for s in layer) * f))
        nt0, lay0 = tiles[0]
        _run_steps(lay0, cfg, eff)
        out["prefill_layer"] = table(lay0)
        out["prefill_layer_tile_tokens"] = nt0
        out["prefill_layer_cycles"] = int(round(sum(s["time_s"] for s in lay0) * f))
        out["align_bytes"] = ALIGN
    return out


def prefill_decode_table(m, cfg, target, wkind, wbits, prompts=(64, 128), contexts=(128, 512)) -> list[dict]:
    rows = []
    for p in prompts:
        r = predict(m, cfg, target, wkind, wbits, context=p, prompt=p, detail=False)
        rows.append({"prompt": p, "ttft_s": r["ttft_s"], "prefill_tok_s": r["prefill_tok_s"],
                     "prefill_roofline_frac": r["prefill_roofline_frac"]})
    for c in contexts:
        r = predict(m, cfg, target, wkind, wbits, context=c, prompt=1, detail=False)
        rows.append({"context": c, "decode_tok_s": r["decode_tok_s"], "decode_roofline_frac": r["decode_roofline_frac"],
                     "bytes_per_token": r["bytes_per_token"]["total"]})
    return rows


# ---------------------------------------------------------------- report (edgestream report ART)
PUBLISHED_KV260 = {"decode_tok_s": 25.0, "prefill_tok_s": 143.0, "ttft_s": [0.45, 0.96], "lut_frac": 0.84,
                   "uram_frac": 0.94, "clock_mhz": 250}


MODEL_NOTE = ("This is a MODEL (resources and cycles) unless a figure says measured: engine LUT/FF terms "
              "calibrated against Yosys, the cycles of the linears and of the units against the RTL in Verilator "
              "(compiler/perfmodel.py CALIBRATION); not against a board or a Vivado run.")


def report_from_manifest(man: dict[str, Any], path: str = "") -> dict[str, Any]:
    """The report of a board artifact, from its manifest (no weights are read). Every figure in it is
    modelled; attach_measured adds measured ones."""
    from edgestream.errors import InputError

    if "hw_config_id" not in man:
        raise InputError(f"{path}: compiled for target {man.get('target', 'cpu')!r}; `report` needs an artifact "
                         f"compiled for a board (e.g. --target kv260)")
    perf = man["perf"]
    tgt = man["hw_target"]
    res = {k: v for k, v in man["hw_resources"].items() if k != "breakdown"}
    util = {r: res[r] / tgt["resources"][r] if tgt["resources"][r] else 0.0 for r in res}
    return {
        "artifact": path,
        "target": tgt["name"],
        "part": tgt.get("part"),
        "config_id": man["hw_config_id"],
        "hw_config": man["hw_config"],
        "model": man.get("model"),
        "weight_kind": man.get("hw_weight_kind", ["ternary", 2]),
        "resources": res,
        "utilization": util,
        "budget_fraction": tgt.get("max_utilization", {}),
        "resource_breakdown": man["hw_resources"].get("breakdown", {}),
        "binding": man["hw_exploration"].get("binding", {}),
        "chosen_by": man["hw_exploration"].get("chosen_by"),
        "evaluated": man["hw_exploration"].get("evaluated"),
        "candidates": man["hw_exploration"].get("candidates", []),
        "perf": perf,
        "perf_table": man.get("perf_table", []),
        "program": man.get("hw_program", {}),
        "published_kv260": PUBLISHED_KV260,
        # the manifest's figures were predicted when it was compiled: its calibration, if it names one
        # the manifest's figures are the model's when it was compiled: one without a calibration record
        # predates the units' calibration (recompile for today's model)
        "perf_source": {"kind": "modelled",
                        "calibration": perf.get("calibration", "not recorded: compiled before the units were "
                                                               "calibrated on the RTL; recompile"),
                        "read_latency_cycles": perf.get("read_latency_cycles")},
        "resources_source": {"kind": "modelled", "calibration": "engine terms: Yosys synth_xilinx (docs/targets.md)"},
        "calibrated": "rtl-simulation",
        "note": MODEL_NOTE,
    }


MEASURED_KEYS = ("decode_tok_s", "prefill_tok_s", "ttft_s", "cycles_per_decode_token")


def read_bench_json(path: str | Path) -> Any:
    """The parsed JSON of an `edgestream bench --json` file (load_measured and the HTML report's
    roofline check its fields), a missing or unparsable file as one InputError naming it."""
    import json

    from edgestream.errors import InputError

    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: not a JSON file ({e})") from None


def load_measured(path: str | Path) -> dict[str, Any]:
    """Measured figures of an `edgestream bench ART --device sim|pynq --json` file: the layer method's
    (host/accel_bench.bench_layer: one layer measured and scaled) or a whole-pass session's
    (bench_session: cycles per token of its prefill and decode STARTs)."""
    from edgestream.errors import InputError

    p = Path(path)
    b = read_bench_json(p)

    def num(d, k, what):
        v = d.get(k) if isinstance(d, dict) else None
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
            raise InputError(f"{p}: field {what!r}: expected a number > 0 (`edgestream bench --json` output)")
        return float(v)

    if not isinstance(b, dict):
        raise InputError(f"{p}: expected a JSON object (`edgestream bench --json` output)")
    if "cycles_per_decode_token" in b:  # bench --method layer
        out = {k: num(b, k, k) for k in MEASURED_KEYS}
        out.update(method="layer", context=int(num(b, "context", "context")),
                   prompt=int(num(b, "prompt_len", "prompt_len")), clock_mhz=num(b, "clock_mhz", "clock_mhz"))
        lay = b.get("measured", {}).get("layer_decode") if isinstance(b.get("measured"), dict) else None
        if isinstance(lay, dict):
            out["decode_layer_cycles"] = num(lay, "cycles", "measured.layer_decode.cycles")
        out["scaled"] = b.get("scaled", {}).get("decode") if isinstance(b.get("scaled"), dict) else None
    else:  # whole passes (bench_session): the clock comes from the artifact
        for ph in ("prefill", "decode"):
            num(b.get(ph), "cycles_per_token", f"{ph}.cycles_per_token")
            num(b.get(ph), "tokens", f"{ph}.tokens")
        out = {"method": "full", "cycles_per_decode_token": float(b["decode"]["cycles_per_token"]),
               "prefill_cycles_per_token": float(b["prefill"]["cycles_per_token"]),
               "prompt": int(b["prefill"]["tokens"]), "context": None}
    out["source"] = b.get("source", "rtl-simulation" if b.get("device") == "sim" else b.get("device") or "device")
    out["device"] = b.get("device")
    out["hw_config_id"] = b.get("hw_config_id")
    out["latency_cycles"] = b.get("ddr_latency_cycles", b.get("latency_cycles"))
    out["file"] = str(p)
    return out


def attach_measured(info: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The report with the measured figures of a bench JSON beside the modelled ones, and the model's
    error against them: the model re-predicted at the bench's context, prompt and DDR read latency
    (what the simulation ran), so the error is the model's, not a difference of conditions."""
    from dataclasses import replace

    from edgestream.compiler.dse import HwConfig
    from edgestream.compiler.targets import load_target
    from edgestream.errors import InputError
    from edgestream.ir import ModelConfig

    meas = load_measured(path)
    if meas["hw_config_id"] and meas["hw_config_id"] != info["config_id"]:
        raise InputError(f"{path}: measured on hardware config {meas['hw_config_id']}, but {info['artifact']} "
                         f"is compiled for {info['config_id']}: bench this artifact")
    if not info.get("model"):
        raise InputError(f"{info['artifact']}: the manifest has no model section to predict from")
    cfg = HwConfig(**info["hw_config"]).validate()
    f = cfg.clock_mhz * 1e6
    if meas["method"] == "full":  # cycles per token of whole passes: tok/s at the artifact's clock
        meas["decode_tok_s"] = f / meas["cycles_per_decode_token"]
        meas["prefill_tok_s"] = f / meas["prefill_cycles_per_token"]
        meas["ttft_s"] = meas["prompt"] / meas["prefill_tok_s"]
        meas["clock_mhz"] = cfg.clock_mhz
    m = ModelConfig.from_dict(info["model"])
    tgt = load_target(info["target"])
    if meas["latency_cycles"] is not None:
        tgt = replace(tgt, read_latency_ns=meas["latency_cycles"] * 1e3 / cfg.clock_mhz)
    ctx = meas["context"] or meas["prompt"]
    wkind, wbits = info.get("weight_kind") or ["ternary", 2]
    p = predict(m, cfg, tgt, wkind, wbits, context=ctx, prompt=meas["prompt"], detail=True)
    mod = {"decode_tok_s": p["decode_tok_s"], "prefill_tok_s": p["prefill_tok_s"], "ttft_s": p["ttft_s"],
           "cycles_per_decode_token": f / p["decode_tok_s"], "decode_layer_cycles": p["decode_layer_cycles"]}
    keys = [k for k in (*MEASURED_KEYS, "decode_layer_cycles") if k in meas]
    out = dict(info)
    out["measured"] = meas
    out["model_at_measured"] = {"context": ctx, "prompt": meas["prompt"], "read_latency_cycles": meas["latency_cycles"],
                                "calibration": calibration(cfg), "figures": {k: mod[k] for k in keys},
                                "error": {k: (mod[k] - meas[k]) / meas[k] for k in keys}}
    return out


def render_report(info: dict[str, Any], console, headline_only: bool = False) -> None:
    from rich.table import Table

    p = info["perf"]
    cfg = info["hw_config"]
    bpt = p["bytes_per_token"]
    c = console
    c.print(f"[bold]{info['target']}[/bold] ({info.get('part')}): hardware config {info['config_id']}: "
            f"G={cfg['G']} T={cfg['T']} Q={cfg['Q']} ({cfg['T'] * cfg['Q']} lanes), tables in {cfg['table_mem']}, "
            f"ternary {cfg['tern_encoding']}, int {cfg['int_encoding']}, K tile {cfg['max_k']}, "
            f"prefill tile {cfg['max_tok']}, {cfg['axi_ports']}x{cfg['axi_width_bits']}-bit AXI, "
            f"{cfg['clock_mhz']:.0f} MHz")
    src = info.get("perf_source") or {"calibration": info.get("calibrated")}
    lat = f" at a read latency of {src['read_latency_cycles']:g} cycles" if src.get("read_latency_cycles") else ""
    c.print(f"[bold]modelled[/bold] (compiler/perfmodel.py, calibration {src.get('calibration')}{lat}): decode "
            f"{p['decode_tok_s']:.1f} tok/s at {p['context']} tokens of context "
            f"({p['decode_roofline_frac']:.0%} of the DDR roofline {p['decode_roofline_tok_s']:.1f} tok/s, "
            f"{bpt['total'] / 1e6:.1f} MB/token, bound by {p['decode_bound']}); "
            f"prefill {p['prefill_tok_s']:.1f} tok/s, "
            f"TTFT {p['ttft_s']:.3f} s for {p['prompt']} tokens")
    meas = info.get("measured")
    if meas:
        ma = info["model_at_measured"]
        err = ma["error"]
        c.print(f"[bold]measured[/bold] ({meas['source']}, {meas['device']}, bench --method {meas['method']}, "
                f"{meas['file']}): decode {meas['decode_tok_s']:.1f} tok/s (model {err['decode_tok_s']:+.1%}), "
                f"prefill {meas['prefill_tok_s']:.1f} tok/s (model {err['prefill_tok_s']:+.1%}), TTFT "
                f"{meas['ttft_s']:.4g} s for {meas['prompt']} tokens (model {err['ttft_s']:+.1%})")
    util = info["utilization"]
    c.print("resources: " + ", ".join(f"{r.upper()} {int(info['resources'][r]):,} ({util[r]:.0%})" for r in util)
            + f"; binding: {info['binding'].get('resource') or 'none'} (highest use "
            f"{info['binding'].get('highest_utilization')})")
    c.print(f"[dim]{info['note']}[/dim]")
    if headline_only:
        return
    t = Table("figure", "value", "source", "DDR roofline", "fraction", title="performance")
    mod = "modelled"
    t.add_row(f"decode tok/s (context {p['context']})", f"{p['decode_tok_s']:.1f}", mod,
              f"{p['decode_roofline_tok_s']:.1f}", f"{p['decode_roofline_frac']:.1%}")
    t.add_row(f"prefill tok/s (prompt {p['prompt']})", f"{p['prefill_tok_s']:.1f}", mod,
              f"{p['prefill_roofline_tok_s']:.1f}", f"{p['prefill_roofline_frac']:.1%}")
    t.add_row(f"TTFT s (prompt {p['prompt']})", f"{p['ttft_s']:.3f}", mod,
              f"{p['prompt'] / p['prefill_roofline_tok_s']:.3f}", f"{p['prefill_roofline_frac']:.1%}")
    t.add_row("prefill compute roofline tok/s", "", mod, f"{p['prefill_compute_roofline_tok_s']:.1f}",
              f"{p['prefill_compute_frac']:.1%}")
    for row in info["perf_table"]:
        if "prompt" in row:
            t.add_row(f"TTFT s / prefill tok/s (prompt {row['prompt']})",
                      f"{row['ttft_s']:.3f} / {row['prefill_tok_s']:.1f}", mod, "",
                      f"{row['prefill_roofline_frac']:.1%}")
        else:
            t.add_row(f"decode tok/s (context {row['context']})", f"{row['decode_tok_s']:.1f}", mod, "",
                      f"{row['decode_roofline_frac']:.1%}")
    if meas:
        fmt = {"decode_tok_s": "{:.1f}", "prefill_tok_s": "{:.1f}", "ttft_s": "{:.4g}",
               "cycles_per_decode_token": "{:,.0f}", "decode_layer_cycles": "{:,.0f}"}
        for k, e in info["model_at_measured"]["error"].items():
            where = f"context {meas['context']}" if k.startswith(("decode", "cycles")) and meas["context"] else \
                f"prompt {meas['prompt']}"
            t.add_row(f"{k} ({where})", fmt[k].format(meas[k]), f"measured ({meas['source']})", "", "")
            t.add_row(f"{k} ({where})", fmt[k].format(info["model_at_measured"]["figures"][k]),
                      f"modelled at the bench's latency: error {e:+.1%}", "", "")
    c.print(t)
    b = Table("DDR bytes per decoded token (modelled)", "bytes", "share")
    for k in ("weights", "lm_head", "kv_cache", "embedding", "total"):
        b.add_row(k, f"{bpt[k]:,}", f"{bpt[k] / bpt['total']:.1%}")
    b.add_row("ideal (1.6 bpw, INT8 head)", f"{int(bpt['ideal_total']):,}", "")
    d = p["ddr"]
    c.print(b)
    c.print(f"DDR: peak {d['peak'] / 1e9:.1f} GB/s, effective {d['effective'] / 1e9:.2f} GB/s (burst efficiency "
            f"{d['burst_efficiency']:.3f}, latency cover {d['latency_cover']:.2f}, limited by {d['bound']})")
    for key, title in (("decode_layer", "decode: one layer"), ("prefill_layer", "prefill: one layer, one tile")):
        if key in p:
            lt = Table("step", "DDR bytes", "cycles", "time us", title=f"{title} (modelled)")
            for s in p[key]:
                lt.add_row(s["step"], f"{s['bytes']:,}", f"{s['cycles']:,}", f"{s['time_us']:.2f}")
            c.print(lt)
    r = Table("resource", "used", "device", "use", "budget",
              title="resources (modelled: engine terms calibrated on Yosys)")
    for k in util:
        dev = int(round(info["resources"][k] / util[k])) if util[k] else 0
        r.add_row(k.upper(), f"{int(info['resources'][k]):,}", f"{dev:,}" if dev else "", f"{util[k]:.1%}",
                  f"{info['budget_fraction'].get(k, 1):.0%}")
    c.print(r)
    if info["candidates"]:
        ct = Table("config", "G", "T", "Q", "mem", "enc", "tile", "MHz", "decode", "prefill", "roof", "LUT", "URAM",
                   "BRAM", "fits",
                   title=f"candidates weighed ({info['evaluated']} evaluated; best and rejected; modelled)")
        for k in info["candidates"]:
            ct.add_row(k["config_id"][:8], str(k["G"]), str(k["T"]), str(k["Q"]), k["table_mem"],
                       f"{k['tern_encoding']}/{k['int_encoding']}", str(k["max_tok"]), f"{k['clock_mhz']:.0f}",
                       f"{k['decode_tok_s']:.1f}", f"{k['prefill_tok_s']:.1f}", f"{k['decode_roofline_frac']:.0%}",
                       f"{k['util']['lut']:.0%}", f"{k['util']['uram']:.0%}", f"{k['util']['bram36']:.0%}",
                       "yes" if k["fits"] else "over " + ",".join(k["over"]))
        c.print(ct)
    pub = info["published_kv260"]
    c.print(f"published KV260 TLMM accelerator: decode {pub['decode_tok_s']} tok/s, prefill {pub['prefill_tok_s']} "
            f"tok/s, TTFT {pub['ttft_s'][0]}-{pub['ttft_s'][1]} s")
