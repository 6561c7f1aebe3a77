"""Lowering: quantized IR graph + HwConfig -> binary dataflow program (edgestream.program, docs/program.md)
and the packed weight image in hardware order, plus the SystemVerilog parameter package of the
configuration.

Weight regions are in the order tlmm_engine.sv consumes them: for row batch rb (Q rows), for bit
plane b (integer weights; one plane for ternary), for chunk c (T groups of G): one beat of Q*T codes,
lane q*T + t = code of row rb*Q + q, group c*T + t, each code in a CB-bit little-endian slot
(`gindex`, for G = 5 exactly the 1.6 bpw base-3 byte), or the beat's Q*T*G trits packed 5 per byte
(`base3`, 1.6 bpw for any G). Dense integer regions (`int8`, R_INT_DENSE) are beats of Q*T int8 weights
in G column planes instead of bit planes: for row batch rb, for column i (0..G-1), for chunk c: lane
q*T + t = w[rb*Q + q][G*(c*T + t) + i] (tlmm_engine.sv's dense mode multiplies it by x_i of its
group). Rows are padded to a multiple of Q and groups to a
multiple of T with the all-zero pattern. Every TLMM region starts on a 4 KiB boundary (an AXI burst
never crosses one) and is padded to a whole number of bursts.

Weight stripes: with P = axi_ports > 1 weight read ports and an engine beat of m*P whole port beats
(the shell: Q*T*CB = P*128 bits), a beat-ordered region (G-index, base-3, bit-plane codes) is P
stripes, stripe p = bytes [p*B/P, (p+1)*B/P) of every engine beat of B bytes, one after another, each
padded to whole bursts: port p streams its stripe with long bursts from its own contiguous addresses
and the engine joins the P port beats (port p lowest) into one beat. Other configurations keep one
stripe.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edgestream import program as pg
from edgestream.errors import CompileError, DeviceError
from edgestream.formats.ternary import pack_base3, pack_codes, pack_gindex, unpack_base3, unpack_codes
from edgestream.ir import Graph
from edgestream.tlmm import bit_planes

ALIGN = 4096
DATA_ALIGN = 64


def beat_bytes(cfg, kind: str) -> int:
    """Bytes of one engine beat of a TLMM region (dense integer: one int8 slot per lane)."""
    if kind == "ternary":
        return cfg.beat_bytes_base3 if cfg.tern_encoding == "base3" and cfg.G != 5 else cfg.beat_bytes_codes
    return cfg.lanes if cfg.int_encoding == "int8" else cfg.beat_bytes_codes


def dense_planes(cfg, kind: str, bits: int) -> int:
    """Beats per chunk and row batch: 1 ternary, `bits` bit planes, or G column planes (int-dense)."""
    if kind == "ternary":
        return 1
    return cfg.G if cfg.int_encoding == "int8" else bits


def weight_stripes(cfg, kind: str) -> int:
    """Stripes of a TLMM region: axi_ports when every port gets whole port beats of each engine beat."""
    bb, port = beat_bytes(cfg, kind), cfg.axi_width_bits // 8
    return cfg.axi_ports if cfg.axi_ports > 1 and bb % (cfg.axi_ports * port) == 0 else 1


def region_layout(cfg, n: int, klen: int, kind: str, bits: int) -> dict[str, int]:
    """Geometry and byte size of one TLMM region (n rows x klen columns) under `cfg`."""
    groups = math.ceil(klen / cfg.G)
    chunks = math.ceil(groups / cfg.T)
    rbs = math.ceil(n / cfg.Q)
    planes = dense_planes(cfg, kind, bits)
    beats = rbs * planes * chunks
    raw = beats * beat_bytes(cfg, kind)
    burst = cfg.axi_burst_beats * cfg.axi_width_bits // 8
    stripes = weight_stripes(cfg, kind)
    stripe = math.ceil(raw // stripes / burst) * burst  # each stripe padded to whole bursts
    return {"groups": groups, "chunks": chunks, "row_batches": rbs, "planes": planes, "beats": beats,
            "raw_bytes": raw, "nbytes": stripes * stripe, "stripes": stripes, "stripe_bytes": stripe,
            "rows_padded": rbs * cfg.Q, "cols_padded": chunks * cfg.T * cfg.G}


def stripe_image(blob, beat: int, stripes: int, stripe_bytes: int) -> bytes:
    """Engine-ordered region bytes -> `stripes` stripes (stripe p: bytes p*beat/stripes.. of every beat),
    each zero-padded to stripe_bytes."""
    a = np.frombuffer(blob, np.uint8).reshape(-1, stripes, beat // stripes).transpose(1, 0, 2).reshape(stripes, -1)
    out = np.zeros((stripes, stripe_bytes), np.uint8)
    out[:, : a.shape[1]] = a
    return out.tobytes()


def unstripe(raw: np.ndarray, reg: pg.Region, beat: int) -> np.ndarray:
    """The inverse of stripe_image for a region's bytes: the engine-ordered beats (stripe padding dropped)."""
    if reg.stripes <= 1:
        return raw
    s = reg.stripes
    stride = (reg.nbytes // s) & ~15
    nbeats = stride // (beat // s)
    a = raw[: s * stride].reshape(s, stride)[:, : nbeats * (beat // s)].reshape(s, nbeats, beat // s)
    return np.ascontiguousarray(a.transpose(1, 0, 2)).reshape(-1)


def k_tiles(cfg, k: int) -> list[tuple[int, int]]:
    """(k0, klen) of each K tile of a linear with k columns. K <= max_k is one tile. Wider, every tile but
    the last is the largest multiple of G * (group slots per bus beat) within max_k, so each tile's
    activations start on a group and a bus beat of the q buffer's rows, which is what lets the
    sequencer stream a tile's columns and accumulate the tiles on chip (docs/registers.md "K tiles");
    the integer sum over all of K is exact whatever the split."""
    if k <= cfg.max_k:
        return [(0, k)]
    unit = cfg.G * (cfg.axi_width_bits // 64)
    step = cfg.max_k - cfg.max_k % unit or cfg.max_k
    return [(k0, min(step, k - k0)) for k0 in range(0, k, step)]


def region_kind(cfg, kind: str) -> int:
    if kind == "ternary":
        return pg.R_TERN_BASE3 if cfg.tern_encoding == "base3" and cfg.G != 5 else pg.R_TERN_GINDEX
    return pg.R_INT_DENSE if cfg.int_encoding == "int8" else pg.R_INT_PLANES


# ---------------------------------------------------------------- packing (hardware order)
def _beats_from_codes(codes: np.ndarray, rows_p: int, groups_p: int, q: int, t: int, pad: int) -> np.ndarray:
    """codes [planes, n, groups] -> beats [row batches * planes * chunks, Q*T] in engine order."""
    pl, n, g = codes.shape
    full = np.full((pl, rows_p, groups_p), pad, dtype=np.uint16)
    full[:, :n, :g] = codes
    a = full.reshape(pl, rows_p // q, q, groups_p // t, t)  # [plane, rb, q, chunk, t]
    return np.ascontiguousarray(a.transpose(1, 0, 3, 2, 4)).reshape(-1, q * t)


def dense_beats(w: np.ndarray, q: int, t: int, g: int) -> np.ndarray:
    """int8 weights [n, klen] -> the int-dense beats [row batches * G * chunks, Q*T] int8 (module
    docstring), padding rows and columns 0."""
    n, klen = w.shape
    chunks = math.ceil(math.ceil(klen / g) / t)
    rbs = math.ceil(n / q)
    out = np.zeros((rbs, g, chunks, q, t), np.int8)
    # row-batch blocks of ~4096 rows: the padded copy of a large LM head never exists whole
    step = max(1, 4096 // q)
    for b0 in range(0, rbs, step):
        b1 = min(rbs, b0 + step)
        full = np.zeros(((b1 - b0) * q, chunks * t * g), np.int8)
        part = w[b0 * q : b1 * q]
        full[: part.shape[0], :klen] = part
        out[b0:b1] = full.reshape(b1 - b0, q, chunks, t, g).transpose(0, 4, 2, 1, 3)
    return out.reshape(-1, q * t)


def _slots(beats: np.ndarray, cb: int) -> np.ndarray:
    if cb == 8:
        return beats.astype(np.uint8)
    return pack_codes(beats, cb)


def pack_region(cfg, w: np.ndarray, kind: str, bits: int) -> bytes | bytearray:
    """w: trits or integers int8 [n, klen] of one K tile -> the region's bytes (unpadded)."""
    n, klen = w.shape
    lay = region_layout(cfg, n, klen, kind, bits)
    rows_p, groups_p = lay["rows_padded"], lay["chunks"] * cfg.T
    if kind == "ternary":
        if cfg.tern_encoding == "base3" and cfg.G != 5:
            tr = np.zeros((rows_p, groups_p * cfg.G), np.int8)
            tr[:n, :klen] = w
            a = tr.reshape(rows_p // cfg.Q, cfg.Q, groups_p // cfg.T, cfg.T, cfg.G).transpose(0, 2, 1, 3, 4)
            return pack_base3(np.ascontiguousarray(a).reshape(-1, cfg.lanes * cfg.G)).tobytes()
        codes = pack_gindex(w, cfg.G)[None]
        return _slots(_beats_from_codes(codes, rows_p, groups_p, cfg.Q, cfg.T, (3**cfg.G - 1) // 2), cfg.CB).tobytes()
    if cfg.int_encoding == "int8":
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if w.size and (int(w.min()) < lo or int(w.max()) > hi):
            raise CompileError(f"int-dense region: weights outside INT{bits} [{lo}, {hi}]")
        return dense_beats(w, cfg.Q, cfg.T, cfg.G).tobytes()
    planes = bit_planes(w, bits, cfg.G)
    return _slots(_beats_from_codes(planes, rows_p, groups_p, cfg.Q, cfg.T, 0), cfg.CB).tobytes()


def region_image(cfg, w: np.ndarray, kind: str, bits: int) -> tuple[bytes, dict[str, int]]:
    """The bytes of one TLMM region as the weight image holds them (striped, padded to nbytes) and its
    layout."""
    lay = region_layout(cfg, w.shape[0], w.shape[1], kind, bits)
    blob = pack_region(cfg, w, kind, bits)
    assert len(blob) == lay["raw_bytes"], (len(blob), lay)
    if lay["stripes"] > 1:
        blob = stripe_image(blob, beat_bytes(cfg, kind), lay["stripes"], lay["stripe_bytes"])
    return bytes(blob) + b"\0" * (lay["nbytes"] - len(blob)), lay


def unpack_region(cfg_g: int, t: int, q: int, cb: int, reg: pg.Region, raw: np.ndarray) -> np.ndarray:
    """Region bytes -> lookup codes [planes, n, groups]: ternary G-index codes, or binary plane codes."""
    n, klen, bits = reg.n, reg.k, reg.bits
    groups = math.ceil(klen / cfg_g)
    chunks = math.ceil(groups / t)
    rbs = math.ceil(n / q)
    rows_p, groups_p = rbs * q, chunks * t
    if reg.kind == pg.R_TERN_BASE3:
        nbeats = rbs * chunks
        per = math.ceil(q * t * cfg_g / 5)
        tr = unpack_base3(unstripe(raw, reg, per)[: nbeats * per].reshape(nbeats, per), q * t * cfg_g)
        tr = tr.reshape(rbs, chunks, q, t, cfg_g).transpose(0, 2, 1, 3, 4).reshape(rows_p, groups_p * cfg_g)
        return pack_gindex(tr[:n, : groups * cfg_g], cfg_g)[None]
    if reg.kind == pg.R_INT_DENSE:
        return bit_planes(unpack_dense(cfg_g, t, q, reg, raw), bits, cfg_g)
    planes = 1 if reg.kind == pg.R_TERN_GINDEX else bits
    nbeats = rbs * planes * chunks
    per = math.ceil(q * t * cb / 8)
    b = unstripe(raw, reg, per)[: nbeats * per].reshape(nbeats, per)
    codes = b.astype(np.uint16) if cb == 8 else unpack_codes(b, cb, q * t).astype(np.uint16)
    a = codes.reshape(rbs, planes, chunks, q, t).transpose(1, 0, 3, 2, 4).reshape(planes, rows_p, groups_p)
    return np.ascontiguousarray(a[:, :n, :groups])


def unpack_dense(cfg_g: int, t: int, q: int, reg: pg.Region, raw: np.ndarray) -> np.ndarray:
    """An int-dense region's bytes (striped or not) -> its int8 weights [n, k]."""
    groups = math.ceil(reg.k / cfg_g)
    chunks = math.ceil(groups / t)
    rbs = math.ceil(reg.n / q)
    nb = rbs * cfg_g * chunks * q * t
    b = unstripe(raw, reg, q * t)[:nb].view(np.int8)
    w = b.reshape(rbs, cfg_g, chunks, q, t).transpose(0, 3, 2, 4, 1).reshape(rbs * q, chunks * t * cfg_g)
    return np.ascontiguousarray(w[: reg.n, : reg.k])


# ---------------------------------------------------------------- program
class _Image:
    def __init__(self, f: BinaryIO):
        self.f = f
        self.regions: list[pg.Region] = []
        self.by_name: dict[str, int] = {}

    def _align(self, a: int) -> None:
        self.f.write(b"\0" * ((-self.f.tell()) % a))

    def data(self, name: str, arr: np.ndarray, kind: int = pg.R_F32) -> int:
        if name in self.by_name:
            return self.by_name[name]
        self._align(DATA_ALIGN)
        arr = np.ascontiguousarray(arr, dtype="<f4" if kind == pg.R_F32 else np.int8)
        n, k = (arr.shape[0], int(np.prod(arr.shape[1:]))) if arr.ndim > 1 else (1, arr.shape[0])
        r = pg.Region(self.f.tell(), arr.nbytes, kind, 32 if kind == pg.R_F32 else 8, n, k, 0, n, k)
        self.f.write(arr.tobytes())
        self.regions.append(r)
        self.by_name[name] = len(self.regions) - 1
        return len(self.regions) - 1

    def tlmm(self, cfg, w: np.ndarray, kind: str, bits: int, k0: int) -> int:
        self._align(ALIGN)
        blob, lay = region_image(cfg, w, kind, bits)
        off = self.f.tell()
        self.f.write(blob)
        self.regions.append(pg.Region(off, lay["nbytes"], region_kind(cfg, kind), bits, w.shape[0], w.shape[1], k0,
                                      lay["rows_padded"], lay["cols_padded"], lay["stripes"]))
        return len(self.regions) - 1


def lower_graph(graph: Graph, cfg, image_path: Path, progress=None) -> tuple[pg.Program, dict[str, Any]]:
    """Write the weight image to `image_path`; return the program and a manifest summary (region
    offsets of every tensor)."""
    nodes = graph.nodes
    slots: dict[str, int] = {}
    buffers: list[pg.Buffer] = []
    instrs: list[pg.Instr] = []
    manifest_regions: dict[str, list[dict[str, int]]] = {}

    def slot(name: str, dtype: int = pg.B_F32, width: int = 0) -> int:
        if name not in slots:
            slots[name] = len(buffers)
            buffers.append(pg.Buffer(name, dtype, width))
        return slots[name]

    slot("ids", pg.B_IDS, 1)
    head = next(n for n in nodes if n.outputs == ["logits"])
    head_from = next(i for i, n in enumerate(nodes) if n.outputs[0] == head.inputs[0])
    # from the final norm on only the last token's row is needed (next-token logits): LAST_ROW copies
    # it out of every buffer the tail reads from earlier, and the tail reads the one-token copies
    made_before = {o for n in nodes[:head_from] for o in n.outputs}
    tail_reads = list(dict.fromkeys(x for n in nodes[head_from:] for x in n.inputs if x in made_before))
    if len(tail_reads) != 1:  # the device's NTOK_eff = 1 after LAST_ROW allows one copy only
        raise CompileError(f"node {nodes[head_from].name}: the LM head's tail reads {len(tail_reads)} buffers "
                           f"from before it ({', '.join(tail_reads)}); the program's LAST_ROW copies one")
    last_of: dict[str, str] = {}

    def inp(name: str) -> int:
        return slot(last_of.get(name, name))
    n_lin = sum(n.op == "qlinear" for n in nodes)
    done = 0
    with open(image_path, "wb") as f:
        img = _Image(f)
        i = 0
        while i < len(nodes):
            n = nodes[i]
            if i == head_from:
                for x in tail_reads:
                    last_of[x] = x + ".last"
                    instrs.append(pg.Instr(pg.LAST_ROW, 0, slot(x + ".last", pg.B_F32), [slot(x)]))
            if n.op == "embed":
                t = graph.tensors[n.attrs["table"]]
                r_tab = img.data(t.name, t.data, pg.R_I8ROWS)
                r_sc = img.data(t.name + ".scale", t.scale)
                manifest_regions[t.name] = [_reg_json(img.regions[r_tab])]
                instrs.append(pg.Instr(pg.EMBED, 0, slot(n.outputs[0], pg.B_F32, graph.config.hidden_size),
                                       [inp(n.inputs[0]), r_tab, r_sc]))
            elif n.op == "norm_quant":
                g = n.attrs.get("gain")
                rg = img.data(g, graph.tensors[g].data) if g else pg.NONE
                eps = np.float32(n.attrs["eps"] if n.attrs.get("eps") is not None else 0).view(np.uint32)
                instrs.append(pg.Instr(pg.NORM_QUANT, pg.F_NORM if g else 0, inp(n.inputs[0]),
                                       [slot(n.outputs[0], pg.B_I8), slot(n.outputs[1], pg.B_SCALE, 1), rg,
                                        int(eps)]))
            elif n.op == "qlinear":
                # fuse consecutive linears that share the quantized input and the weight format; the
                # sequencer needs every member but the last to end on a row batch (Q rows) and takes at
                # most 4 members (docs/registers.md, TLMM checks), so a group stops where that fails
                group = [n]
                w0 = graph.tensors[n.attrs["weight"]]
                while (i + 1 < len(nodes) and nodes[i + 1].op == "qlinear" and nodes[i + 1].inputs == n.inputs
                       and graph.tensors[nodes[i + 1].attrs["weight"]].encoding == w0.encoding
                       and len(group) < 4 and graph.tensors[group[-1].attrs["weight"]].shape[0] % cfg.Q == 0):
                    i += 1
                    group.append(nodes[i])
                ws = [graph.tensors[g.attrs["weight"]] for g in group]
                kind = "ternary" if w0.encoding == "ternary" else "int"
                bits = w0.bits
                k = w0.shape[1]
                if any(w.shape[1] != k for w in ws):
                    raise CompileError(f"node {group[-1].name}: fused linears disagree on K")
                n_tot = sum(w.shape[0] for w in ws)
                qs = inp(n.inputs[0])
                for k0, klen in k_tiles(cfg, k):
                    wt = np.concatenate([np.asarray(w.data[:, k0 : k0 + klen], np.int8) for w in ws]) \
                        if len(ws) > 1 else np.asarray(ws[0].data[:, k0 : k0 + klen], np.int8)
                    r = img.tlmm(cfg, wt, kind, bits, k0)
                    del wt
                    row0 = 0
                    for w in ws:
                        manifest_regions.setdefault(w.name, []).append(
                            {**_reg_json(img.regions[r]), "row0": row0})
                        row0 += w.shape[0]
                    instrs.append(pg.Instr(pg.LOAD_ACT, 0, qs, [k0, klen]))
                    instrs.append(pg.Instr(pg.BUILD_TABLE, 0, 0, [cfg.G]))
                    fl = (pg.F_ACCUMULATE if k0 else 0) | (pg.F_BITSERIAL if kind == "int" else 0)
                    instrs.append(pg.Instr(pg.TLMM, fl, r, [n_tot, 0, bits if kind == "int" else 0]))
                col = 0
                for g, w in zip(group, ws, strict=True):
                    # one float per output row, padded to whole row batches: the dequantize stage reads
                    # one beat of Q betas per row batch, also for a per-tensor scale
                    beta = np.zeros(-(-w.shape[0] // cfg.Q) * cfg.Q, np.float32)
                    beta[: w.shape[0]] = np.broadcast_to(np.asarray(w.scale, np.float32).reshape(-1), (w.shape[0],))
                    rb = img.data(w.name + ".beta", beta)
                    instrs.append(pg.Instr(pg.DEQUANT, pg.F_PER_CHANNEL, slot(g.outputs[0], pg.B_F32, w.shape[0]),
                                           [col, w.shape[0], inp(n.inputs[1]), rb]))
                    col += w.shape[0]
                done += len(group)
                if progress:
                    progress(done, n_lin, "lowering " + group[-1].name)
            elif n.op == "rope":
                rc = img.data(n.attrs["cos"], graph.tensors[n.attrs["cos"]].data)
                rs = img.data(n.attrs["sin"], graph.tensors[n.attrs["sin"]].data)
                instrs.append(pg.Instr(pg.ROPE, 0, slot(n.outputs[0]), [inp(n.inputs[0]), n.attrs["heads"], rc, rs]))
            elif n.op == "attention":
                c = graph.config
                scale = np.float32(1.0 / np.sqrt(c.head_dim)).view(np.uint32)  # the CPU executor's scale
                instrs.append(pg.Instr(pg.ATTENTION, 0, slot(n.outputs[0]),
                                       [inp(n.inputs[0]), inp(n.inputs[1]), inp(n.inputs[2]),
                                        n.attrs["layer"] | c.num_layers << 16, c.head_dim,
                                        c.num_heads | c.num_kv_heads << 16, int(scale)]))
            elif n.op in ("relu2_mul", "silu_mul"):
                instrs.append(pg.Instr(pg.ACT_MUL, pg.F_SILU if n.op == "silu_mul" else 0, slot(n.outputs[0]),
                                       [inp(n.inputs[0]), inp(n.inputs[1])]))
            elif n.op == "add":
                instrs.append(pg.Instr(pg.ADD, 0, slot(n.outputs[0]), [inp(n.inputs[0]), inp(n.inputs[1])]))
            else:
                raise CompileError(f"node {n.name}: op {n.op!r} has no lowering")
            i += 1
        instrs.append(pg.Instr(pg.OUTPUT, pg.F_ARGMAX, slot("logits")))
        instrs.append(pg.Instr(pg.END))
        image_bytes = f.tell()
    _buffer_widths(buffers, instrs)
    prog = pg.Program(cfg.config_id, cfg.G, img.regions, buffers, instrs, cfg.T, cfg.Q, cfg.CB)
    ops: dict[str, int] = {}
    for ins in instrs:
        ops[pg.OPNAMES[ins.op]] = ops.get(pg.OPNAMES[ins.op], 0) + 1
    return prog, {"image_bytes": image_bytes, "regions": manifest_regions, "instructions": len(instrs),
                  "instruction_counts": ops}


def _buffer_widths(buffers: list[pg.Buffer], instrs: list[pg.Instr]) -> None:
    """Widths of the buffers whose producer does not state one, in program order (the hardware checks
    the widths of the buffers it reads and writes against the buffer map)."""
    w = [b.width for b in buffers]
    for ins in instrs:
        f = ins.f
        if ins.op == pg.NORM_QUANT:
            w[f[0]] = w[f[0]] or w[ins.a]
        elif ins.op == pg.LOAD_ACT:
            w[ins.a] = max(w[ins.a], f[0] + f[1])
        elif ins.op in (pg.ROPE, pg.ATTENTION, pg.ACT_MUL, pg.LAST_ROW):
            w[ins.a] = w[ins.a] or w[f[0]]
        elif ins.op == pg.ADD:
            w[ins.a] = w[ins.a] or w[f[0]] or w[f[1]]
    for b, width in zip(buffers, w, strict=True):
        b.width = width


def _reg_json(r: pg.Region) -> dict[str, int]:
    return {"offset": r.offset, "nbytes": r.nbytes, "kind": pg.REGION_KINDS[r.kind], "bits": r.bits, "n": r.n,
            "k": r.k, "k0": r.k0}


# ---------------------------------------------------------------- RTL parameter package
def sv_package(cfg, name: str = "edgestream_hwcfg_pkg") -> str:
    """SystemVerilog package of the configuration: the RTL top instantiates tlmm_engine with these, and
    the sequencer compares CONFIG_ID with the program header."""
    cid = cfg.config_id
    lines = [
        f"// Generated by edgestream.compiler.lowering from hardware configuration {cid}. Do not edit:",
        "// recompile (edgestream compile --target ...) and take the package from the artifact.",
        "/* verilator lint_off UNUSEDPARAM */",
        f"package {name};",
        f"    localparam logic [63:0] CONFIG_ID = 64'h{cid};",
        f"    localparam int G = {cfg.G};",
        f"    localparam int T = {cfg.T};",
        f"    localparam int Q = {cfg.Q};",
        f"    localparam int CB = {cfg.CB};",
        f"    localparam int TW = {cfg.TW};",
        "    localparam int AW = 8;",
        "    localparam int ACCW = 32;",
        f"    localparam int MAXK = {cfg.max_k};",
        f"    localparam int MAXTOK = {cfg.max_tok};",
        f"    localparam int OFIFO_DEPTH = {cfg.ofifo_depth};",
        "    localparam int TABLE_BINARY = 0;",
        f"    localparam int TABLE_MEM_URAM = {int(cfg.table_mem == 'uram')};",
        f"    localparam int TABLE_MEM_BRAM = {int(cfg.table_mem == 'bram')};",
        f"    localparam int WENC_BASE3 = {int(cfg.tern_encoding == 'base3' and cfg.G != 5)};",
        f"    localparam int WENC_INT_DENSE = {int(cfg.int_encoding == 'int8')};",
        f"    localparam int AXI_PORTS = {cfg.axi_ports};",
        f"    localparam int AXI_DATA_WIDTH = {cfg.axi_width_bits};",
        f"    localparam int AXI_BURST_BEATS = {cfg.axi_burst_beats};",
        f"    localparam int AXI_OUTSTANDING = {cfg.axi_outstanding};",
        f"    localparam int WBUF_BYTES = {cfg.wbuf_kib * 1024};",
        f"    localparam int VEC_LANES = {cfg.vec_lanes};",
        f"    localparam int CLOCK_KHZ = {int(round(cfg.clock_mhz * 1000))};",
        f"    localparam int REGION_ALIGN = {ALIGN};",
        f"endpackage : {name}",
        "/* verilator lint_on UNUSEDPARAM */",
        "",
    ]
    return "\n".join(lines)


def rtl_space_reason(cfg) -> dict[str, Any]:
    from edgestream.compiler import rtl_space

    why = rtl_space.why_not(cfg)
    return {"implemented": why is None, "why_not": why}


def check_config_id(artifact, device_id: str) -> None:
    """Refuse to run `artifact` on a bitstream/simulator built for another hardware configuration."""
    man = artifact.manifest if hasattr(artifact, "manifest") else artifact
    want = man.get("hw_config_id")
    if want is None:
        raise DeviceError(f"{getattr(artifact, 'path', 'artifact')}: compiled for target "
                          f"{man.get('target', 'cpu')!r} without a hardware configuration; recompile with "
                          f"--target kv260 (or another board) to run it on a device")
    got = str(device_id).lower().removeprefix("0x").rjust(16, "0")
    if got != want:
        raise DeviceError(f"hardware configuration mismatch: the device (bitstream/simulator) was built for "
                          f"config {got}, the artifact {getattr(artifact, 'path', '')} needs {want} "
                          f"(rebuild the bitstream from the artifact's {SV_NAME}, or recompile with "
                          f"--hw-config matching the device)")


SV_NAME = "edgestream_hwcfg_pkg.sv"


# ---------------------------------------------------------------- artifact integration
def model_weight_kind(graph: Graph) -> tuple[str, int]:
    """Encoding of the decoder linears (the LM head is INT8 by the numerics contract)."""
    for n in graph.nodes:
        if n.op == "qlinear" and n.outputs != ["logits"]:
            t = graph.tensors[n.attrs["weight"]]
            return ("ternary", 2) if t.encoding == "ternary" else ("int", t.bits)
    return "ternary", 2


def hardware_writer(graph: Graph, target, hw_config=None, clock_mhz=None, progress=None, t0=None):
    """A write_artifact writer: chooses (or loads) the hardware configuration, lowers the program into
    the artifact and returns the manifest fields (config, DSE, predicted performance)."""
    import json
    import time

    from edgestream.compiler import dse, perfmodel

    wkind, wbits = model_weight_kind(graph)
    m = graph.config
    if hw_config is not None:
        if str(hw_config) == "shell":  # the configuration of hw/rtl/edgestream_accel.sv as shipped
            from edgestream.regmap import shell_config

            hw_config = shell_config()
        cfg = dse.load_hwconfig(hw_config) if not isinstance(hw_config, dse.HwConfig) else hw_config.validate()
        if clock_mhz is not None:
            from dataclasses import replace

            cfg = replace(cfg, clock_mhz=float(clock_mhz)).validate()
        cfg.check_target(target, str(hw_config))
        res = dse.estimate_resources(cfg)
        over = dse.over_budget(res, target)
        if over:
            util = dse.utilization(res, target)
            r = over[0]
            raise CompileError(f"{hw_config}: configuration {cfg.config_id} needs {int(res[r]):,} {r.upper()} "
                               f"({util[r]:.0%} of {target.name}), over the budget of "
                               f"{target.max_utilization[r]:.0%}")
        from edgestream.compiler import rtl_space

        if (why := rtl_space.why_not(cfg)) is not None:
            import warnings

            warnings.warn(f"{hw_config}: configuration {cfg.config_id} is not one the RTL implements ({why}): "
                          f"the program runs on the program executor only, and its performance figures are "
                          f"modelled for hardware that does not exist", stacklevel=2)
        exploration = {"chosen_by": "user", "candidates": [], "evaluated": 0,
                       "binding": {"resource": None, "highest_utilization": max(
                           dse.RESOURCES, key=lambda r: res[r] / max(target.budget(r), 1e-9))}}
    else:
        ex = dse.explore(m, target, wkind, wbits, clock_mhz=clock_mhz)
        cfg, res = ex["chosen"], ex["resources"]
        exploration = {"chosen_by": "dse", "candidates": ex["candidates"], "evaluated": ex["evaluated"],
                       "binding": ex["binding"]}
    for r in ("lut", "ff", "dsp", "bram36", "uram"):
        exploration.setdefault("budget", {})[r] = target.budget(r)
    perf = perfmodel.predict(m, cfg, target, wkind, wbits, context=128, prompt=128)
    table = perfmodel.prefill_decode_table(m, cfg, target, wkind, wbits)
    max_k = max(m.hidden_size, m.intermediate_size, m.num_heads * m.head_dim)

    def write(tmp: Path) -> dict[str, Any]:
        prog, summary = lower_graph(graph, cfg, tmp / "hw_weights.bin", progress)
        (tmp / "program.bin").write_bytes(prog.encode())
        (tmp / SV_NAME).write_text(sv_package(cfg))
        (tmp / "hw_config.json").write_text(json.dumps({"config_id": cfg.config_id, **cfg.to_dict()}, indent=1))
        if summary["image_bytes"] > target.ddr_size_bytes:
            raise CompileError(f"weight image of {summary['image_bytes'] / 1e9:.2f} GB does not fit the "
                               f"{target.ddr_size_bytes / 1e9:.2f} GB DDR of {target.name}")
        out = {
            "hw_target": target.to_dict(),
            "hw_config_id": cfg.config_id,
            "hw_config": cfg.to_dict(),
            "hw_rtl_implements": rtl_space_reason(cfg),
            "hw_resources": {k: v for k, v in res.items()},
            "hw_weight_kind": [wkind, wbits],
            "hw_exploration": exploration,
            "hw_program": {k: v for k, v in summary.items() if k != "regions"},
            "hw_regions": summary["regions"],
            "hw_model_max_k": max_k,
            "perf": perf,
            "perf_table": table,
        }
        if t0 is not None:
            out["compile_s"] = round(time.perf_counter() - t0, 3)
        return out

    return write
