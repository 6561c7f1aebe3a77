"""What the attention unit (hw/rtl/es_attn.sv) does to memory, as a function on a memory image: the
ATTENTION instruction's checks in docs/units.md order ("KV cache in DDR"), the K/V slots it writes
into the KV region and the f32 tile-layout rows it writes to dst. The arithmetic is
edgestream.numerics (quant_heads, attention), so the RTL compared byte for byte with this image is
bit-exact to the CPU executor. The cpu device model (host/devices/cpu.py) is meant to adopt it when
ATTENTION moves onto the device."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from edgestream import numerics as nx
from edgestream import program as pg
from edgestream import regmap as rm
from edgestream.kv_layout import KvLayout as HostKvLayout

BEAT = 16
F32 = np.float32


class Fault(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = rm.ERR[code]


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def attention_instr(dst: int, q: int, k: int, v: int, layer: int, layers: int, d: int, heads: int,
                    kv_heads: int, scale: float | None = None) -> bytes:
    """The 32-byte ATTENTION instruction with the operands of docs/units.md."""
    sc = F32(1.0 / np.sqrt(d)) if scale is None else F32(scale)
    f = [q, k, v, layer | layers << 16, d, heads | kv_heads << 16, int(np.array(sc, F32).view(np.uint32))]
    return struct.pack("<BBH7I", pg.ATTENTION, 0, dst, *f)


@dataclass(frozen=True)
class KvLayout:
    """The KV region of docs/units.md: per (layer, KV head) a block of P K slots then P V slots. With
    KVP KV ports (kvp > 1) a K slot is padded to KW = ceil((DB+1)/KVP) words of KVP beats and a V slot
    to VW = ceil(DB/KVP) words; beat b of a slot lives in stripe b % KVP (the K part and the V part are
    KVP stripes each, stripe p of the K part at block + p*P*KW*16), word b // KVP of the slot's run of
    KW (VW) beats in it. kvp = 1 is the layout of one port: contiguous slots of DB+1 and DB beats."""

    layers: int
    kv_heads: int
    d: int
    kv_size: int
    kvp: int = 1

    # the geometry (DB, KW, VW, slot sizes) is the host's (edgestream/kv_layout.py); the per-beat
    # addresses below are this model's own, what tests/test_kv_layout.py checks the host's packing against
    @property
    def geo(self) -> HostKvLayout:
        return HostKvLayout(self.layers, self.kv_heads, self.d, self.kvp)

    @property
    def db(self) -> int:
        return self.geo.db

    @property
    def kw(self) -> int:
        return self.geo.kw

    @property
    def vw(self) -> int:
        return self.geo.vw

    @property
    def slot_beats(self) -> int:
        """Beats of one position's K and V slots (padding included)."""
        return self.geo.slot_bytes // BEAT

    @property
    def slots(self) -> int:
        return self.geo.slots(self.kv_size)

    def block(self, layer: int, g: int) -> int:
        return (layer * self.kv_heads + g) * self.slots * self.slot_beats * BEAT

    def kbeat(self, layer: int, g: int, s: int, b: int) -> int:
        """Offset of beat b of K slot s (b = 0 the scale beat)."""
        return (self.block(layer, g) + (b % self.kvp) * self.slots * self.kw * BEAT + s * self.kw * BEAT
                + (b // self.kvp) * BEAT)

    def vbeat(self, layer: int, g: int, s: int, b: int) -> int:
        return (self.block(layer, g) + self.slots * self.kw * self.kvp * BEAT
                + (b % self.kvp) * self.slots * self.vw * BEAT + s * self.vw * BEAT + (b // self.kvp) * BEAT)

    def kslot(self, layer: int, g: int, s: int) -> int:
        return self.kbeat(layer, g, s, 0)

    def vslot(self, layer: int, g: int, s: int) -> int:
        return self.vbeat(layer, g, s, 0)

    def put_k(self, mem, layer: int, g: int, s: int, head: bytes, row: bytes, base: int = 0) -> None:
        """Write K slot s: the scale beat `head`, the row's beats, zero padding (as the unit writes it)."""
        data = head + row + bytes(BEAT * self.kw * self.kvp - BEAT - len(row))
        for b in range(self.kw * self.kvp):
            o = base + self.kbeat(layer, g, s, b)
            mem[o:o + BEAT] = data[BEAT * b:BEAT * b + BEAT]

    def put_v(self, mem, layer: int, g: int, s: int, row: bytes, base: int = 0) -> None:
        data = row + bytes(BEAT * self.vw * self.kvp - len(row))
        for b in range(self.vw * self.kvp):
            o = base + self.vbeat(layer, g, s, b)
            mem[o:o + BEAT] = data[BEAT * b:BEAT * b + BEAT]

    def get_k(self, mem, layer: int, g: int, s: int, base: int = 0) -> tuple[bytes, bytes]:
        """K slot s: (its scale beat, the row's D bytes)."""
        beats = [bytes(mem[base + self.kbeat(layer, g, s, b):][:BEAT]) for b in range(self.db + 1)]
        return beats[0], b"".join(beats[1:])

    def get_v(self, mem, layer: int, g: int, s: int, base: int = 0) -> bytes:
        return b"".join(bytes(mem[base + self.vbeat(layer, g, s, b):][:BEAT]) for b in range(self.db))

    @staticmethod
    def bytes_for(layers: int, kv_heads: int, d: int, positions: int, kvp: int = 1) -> int:
        return HostKvLayout(layers, kv_heads, d, kvp).bytes_for(positions)


@dataclass
class Regs:
    """What the unit sees of the shell: the arena and KV registers, NTOK, POS and the program header's
    #buffers (es_seq latches it from the header)."""

    n_buffers: int
    act_base: int
    act_size: int
    kv_base: int
    kv_size: int
    ntok: int
    pos0: int


def tile_offset(t: int, ntok: int, col: int, width: int, q: int, mt: int) -> int:
    """Byte offset of column `col` of token t in an f32 buffer of `width` columns holding ntok tokens
    (tile layout: tile j at j*RB*MT*U, inside it unit (rb, t) at (rb*nt_j + t%MT)*U, nt_j the tokens of
    the tile)."""
    rb = cdiv(width, q)
    u = 4 * q
    j = t // mt
    ntj = min(mt, ntok - j * mt)
    return j * rb * mt * u + ((col // q) * ntj + t % mt) * u + 4 * (col % q)


def read_rows(mem, base: int, ntok: int, width: int, q: int, mt: int) -> np.ndarray:
    out = np.zeros((ntok, width), F32)
    for t in range(ntok):
        for c0 in range(0, width, q):
            o = base + tile_offset(t, ntok, c0, width, q, mt)
            n = min(q, width - c0)
            out[t, c0:c0 + n] = np.frombuffer(bytes(mem[o:o + 4 * n]), "<f4")
    return out


def write_rows(mem, base: int, rows: np.ndarray, q: int, mt: int) -> None:
    ntok, width = rows.shape
    for t in range(ntok):
        for c0 in range(0, width, q):
            # the columns of the row only: a unit past the width keeps its padding (a bytearray slice
            # assigned fewer bytes would shift the memory behind it)
            o = base + tile_offset(t, ntok, c0, width, q, mt)
            n = min(q, width - c0)
            mem[o:o + 4 * n] = rows[t, c0:c0 + n].astype("<f4").tobytes()


def run_attention(mem: bytearray, regs: Regs, instr: bytes, q: int, mt: int, dmax: int, smax: int,
                  kvp: int = 1) -> None:
    """Execute one ATTENTION on `mem` (byte addresses = offsets into mem) for a unit with `kvp` KV ports
    (the KV region's layout, KvLayout); raises Fault before writing anything when a check fails."""
    op, _, a, *f = struct.unpack("<BBH7I", instr)
    assert op == pg.ATTENTION
    layer, layers = f[3] & 0xFFFF, f[3] >> 16
    d, heads, kvh = f[4], f[5] & 0xFFFF, f[5] >> 16
    scale = np.array(f[6], np.uint32).view(F32)[()]
    ntok, pos0 = regs.ntok, regs.pos0
    if (ntok == 0 or d == 0 or d % BEAT or d > dmax or heads == 0 or kvh == 0 or heads % kvh or layers == 0
            or layer >= layers):
        raise Fault("FIELD")
    nbuf = regs.n_buffers

    def buf(i: int, width: int) -> int:
        if i >= nbuf or BEAT * (i + 1) > regs.act_size:
            raise Fault("RANGE")
        off, cap, w, dt = struct.unpack_from("<IIIB", mem, regs.act_base + BEAT * i)
        if dt != pg.B_F32 or w != width:
            raise Fault("FIELD")
        need = cdiv(ntok, mt) * cdiv(width, q) * mt * 4 * q
        if off % BEAT or off + cap > regs.act_size or need > cap:
            raise Fault("RANGE")
        return regs.act_base + off

    qa, ka, va, da = buf(f[0], heads * d), buf(f[1], kvh * d), buf(f[2], kvh * d), buf(a, heads * d)
    lay = KvLayout(layers, kvh, d, regs.kv_size, kvp)
    if regs.kv_base % BEAT or pos0 + ntok > lay.slots:
        raise Fault("RANGE")
    if pos0 + ntok > smax:
        raise Fault("FIELD")
    kx = read_rows(mem, ka, ntok, kvh * d, q, mt).reshape(ntok, kvh, d)
    vx = read_rows(mem, va, ntok, kvh * d, q, mt).reshape(ntok, kvh, d)
    qx = read_rows(mem, qa, ntok, heads * d, q, mt).reshape(ntok, heads, d)
    kq, dk = nx.quant_heads(kx)
    vq, dv = nx.quant_heads(vx)
    kb = regs.kv_base
    for t in range(ntok):
        p = pos0 + t
        for g in range(kvh):
            lay.put_k(mem, layer, g, p, struct.pack("<ffII", dk[t, g], dv[t, g], p, 0), kq[t, g].tobytes(), kb)
            lay.put_v(mem, layer, g, p, vq[t, g].tobytes(), kb)
    end = pos0 + ntok
    ck = np.zeros((kvh, end, d), np.int8)
    cv = np.zeros((kvh, end, d), np.int8)
    cdk = np.zeros((kvh, end), F32)
    cdv = np.zeros((kvh, end), F32)
    for g in range(kvh):
        for s in range(end):
            head, row = lay.get_k(mem, layer, g, s, kb)
            cdk[g, s], cdv[g, s] = struct.unpack_from("<ff", head)
            ck[g, s] = np.frombuffer(row, np.int8)
            cv[g, s] = np.frombuffer(lay.get_v(mem, layer, g, s, kb), np.int8)
    qq, dq = nx.quant_heads(qx)
    grp = np.arange(heads) // (heads // kvh)
    o = nx.attention(qq.transpose(1, 0, 2), dq.T, ck[grp], cdk[grp], cv[grp], cdv[grp],
                     np.arange(pos0, end), scale)
    write_rows(mem, da, o.transpose(1, 0, 2).reshape(ntok, heads * d), q, mt)
