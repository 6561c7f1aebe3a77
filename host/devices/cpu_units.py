"""The execution units behind the sequencer in the `cpu` device model (docs/units.md): the vector unit
(EMBED, NORM_QUANT, ROPE, ACT_MUL ReLU^2, ADD, and LAST_ROW), the argmax at OUTPUT and the attention
unit, as memory-to-memory functions on the model's flat memory, with the checks of docs/units.md in
their order and ERR_INFO = the opcode. The arithmetic is edgestream.numerics, so a run on this model is
bit-identical to the CPU executor; the attention unit is sim/es_attn_model.py (the RTL bench's
reference), not a copy of it.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np

from edgestream import numerics as nx
from edgestream import program as pg
from edgestream import regmap as rm
from edgestream.host.driver import BEAT, Geometry, buffer_bytes, pack_q, pack_scales, pack_tiles, unpack_tiles

ROOT = Path(__file__).resolve().parents[2]
U_VEC, U_ATTN, U_ARGMAX = 1, 2, 4  # HW_UNITS bits (edgestream/regmap.py)
VEC_OPS = frozenset({pg.EMBED, pg.NORM_QUANT, pg.ROPE, pg.ACT_MUL, pg.ADD, pg.LAST_ROW})
UNIT_OF = {**{op: U_VEC for op in VEC_OPS}, pg.ATTENTION: U_ATTN, pg.OUTPUT: U_ARGMAX}


class Fault(Exception):
    def __init__(self, code: str, info: int = 0):
        super().__init__(code)
        self.code, self.info = rm.ERR[code], info


def attention_model():
    """sim/es_attn_model.py (a source checkout), or None: the model then has no attention unit."""
    if "es_attn_model" in sys.modules:
        return sys.modules["es_attn_model"]
    path = ROOT / "sim" / "es_attn_model.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("es_attn_model", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["es_attn_model"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


class Units:
    """One instruction of a unit on the device's memory. `dev` gives the registers, the memory and the
    program header's counts (CpuDevice)."""

    def __init__(self, dev, geo: Geometry, vmax: int, dmax: int, smax: int):
        self.dev, self.geo, self.vmax, self.dmax, self.smax = dev, geo, vmax, dmax, smax
        self.attn = attention_model()

    # ---- operands (docs/units.md "Operands and checks")
    def _reg(self, name: str) -> int:
        return self.dev.regs[rm.REG[name]]

    def buf_entry(self, i: int, dtype: int, op: int) -> tuple[int, int, int]:
        """Index check and dtype of buffer i: (offset, capacity, width)."""
        if i >= self.dev.nb or BEAT * (i + 1) > self._reg("ACT_SIZE"):
            raise Fault("RANGE", op)
        off, cap, w, dt = struct.unpack_from("<IIIB", self.dev.mem, self.dev._r64("ACT_BASE_LO") + BEAT * i)
        self.dev.regs[rm.REG["RD_BEATS"]] += 1
        if dt != dtype:
            raise Fault("FIELD", op)
        return off, cap, w

    def buf_place(self, ent: tuple[int, int, int], dtype: int, ntok: int, op: int) -> int:
        off, cap, w = ent
        if off % BEAT or off + cap > self._reg("ACT_SIZE") or buffer_bytes(dtype, ntok, w, self.geo) > cap:
            raise Fault("RANGE", op)
        return self.dev._r64("ACT_BASE_LO") + off

    def reg_entry(self, i: int, kind: int, op: int) -> tuple[int, int, int, int]:
        """Index check and kind of region i: (offset, nbytes, n, k)."""
        if i >= self.dev.nr or pg.HEADER_BYTES + (i + 1) * pg.REGION_BYTES > self._reg("PROG_SIZE"):
            raise Fault("RANGE", op)
        o, nbytes, rk, _, _, n, k, _, _, _ = struct.unpack("<QQBBHIIIII8x", self.dev._prog(
            pg.HEADER_BYTES + i * pg.REGION_BYTES, pg.REGION_BYTES))
        if rk != kind:
            raise Fault("FIELD", op)
        return o, nbytes, n, k

    def reg_place(self, ent: tuple[int, int, int, int], used: int, op: int) -> int:
        o, nbytes, _, _ = ent
        if o % BEAT or o >= 1 << 32 or used > nbytes or o + used > self._reg("WGT_SIZE"):
            raise Fault("RANGE", op)
        return self.dev._r64("WGT_BASE_LO") + o

    # ---- memory
    def rows(self, addr: int, ntok: int, width: int) -> np.ndarray:
        n = buffer_bytes(pg.B_F32, ntok, width, self.geo)
        return unpack_tiles(bytes(self.dev.mem[addr:addr + n]), ntok, width, self.geo)

    def put(self, addr: int, data: bytes) -> None:
        self.dev.mem[addr:addr + len(data)] = data
        self.dev.regs[rm.REG["WR_BEATS"]] += len(data) // BEAT

    def f32(self, addr: int, n: int) -> np.ndarray:
        return np.frombuffer(self.dev.mem, "<f4", n, addr).astype(np.float32)

    # ---- the vector unit
    def vector(self, op: int, fl: int, a: int, f: list[int], ntok: int, pos0: int) -> None:
        if ntok == 0:
            raise Fault("FIELD", op)
        getattr(self, "_" + pg.OPNAMES[op].lower())(op, fl, a, f, ntok, pos0)

    def _embed(self, op, fl, a, f, ntok, pos0):
        dst, ids = self.buf_entry(a, pg.B_F32, op), self.buf_entry(f[0], pg.B_IDS, op)
        tab, sc = self.reg_entry(f[1], pg.R_I8ROWS, op), self.reg_entry(f[2], pg.R_F32, op)
        n, k = tab[2], tab[3]
        if dst[2] != k or ids[2] != 1 or n < 1:
            raise Fault("FIELD", op)
        da, ia = self.buf_place(dst, pg.B_F32, ntok, op), self.buf_place(ids, pg.B_IDS, ntok, op)
        ta, sa = self.reg_place(tab, n * k, op), self.reg_place(sc, 4 * n, op)
        idv = np.frombuffer(self.dev.mem, "<u4", ntok, ia).astype(np.int64)
        bad = np.flatnonzero(idv >= n)
        good = ntok if not bad.size else int(bad[0])  # the rows before a bad id are written
        rows = np.frombuffer(self.dev.mem, np.int8, n * k, ta).reshape(n, k)[idv[:good]]
        y = (rows.astype(np.float32) * self.f32(sa, n)[idv[:good]][:, None]).astype(np.float32)
        out = np.zeros((ntok, k), np.float32)
        out[:good] = y
        raw = pack_tiles(out, self.geo)
        if bad.size:
            # the tokens before the bad id are written (whole units; tokens of a tile interleave by row batch)
            rbq = self.geo.row_batches(k) * self.geo.Q
            tok = np.frombuffer(pack_tiles(np.arange(1, ntok + 1, dtype=np.float32)[:, None].repeat(rbq, 1),
                                           self.geo), "<f4")
            mask = (tok >= 1) & (tok <= good)
            old = np.frombuffer(bytes(self.dev.mem[da:da + len(raw)]), "<f4")
            self.put(da, np.where(mask, np.frombuffer(raw, "<f4"), old).astype("<f4").tobytes())
            raise Fault("RANGE", op)
        self.put(da, raw)

    def _norm_quant(self, op, fl, a, f, ntok, pos0):
        src, q, s = (self.buf_entry(a, pg.B_F32, op), self.buf_entry(f[0], pg.B_I8, op),
                     self.buf_entry(f[1], pg.B_SCALE, op))
        gain = self.reg_entry(f[2], pg.R_F32, op) if fl & pg.F_NORM else None
        w = src[2]
        if q[2] != w or w > self.vmax or (gain is not None and (gain[2] != 1 or gain[3] != w)):
            raise Fault("FIELD", op)
        sa, qa, ca = (self.buf_place(src, pg.B_F32, ntok, op), self.buf_place(q, pg.B_I8, ntok, op),
                      self.buf_place(s, pg.B_SCALE, ntok, op))
        g = self.f32(self.reg_place(gain, 4 * w, op), w) if gain is not None else None
        eps = float(np.uint32(f[3]).view(np.float32)) if g is not None else None
        qv, sv = nx.norm_quant(self.rows(sa, ntok, w), g, eps)
        self.put(qa, pack_q(qv, self.geo))
        self.put(ca, pack_scales(sv))

    def _rope(self, op, fl, a, f, ntok, pos0):
        dst, src = self.buf_entry(a, pg.B_F32, op), self.buf_entry(f[0], pg.B_F32, op)
        cos, sin = self.reg_entry(f[2], pg.R_F32, op), self.reg_entry(f[3], pg.R_F32, op)
        w, heads, half = dst[2], f[1], cos[3]
        if (src[2] != w or w > self.vmax or cos[2:] != sin[2:] or 2 * half * heads != w or 2 * half > self.vmax):
            raise Fault("FIELD", op)
        da, sa = self.buf_place(dst, pg.B_F32, ntok, op), self.buf_place(src, pg.B_F32, ntok, op)
        n = cos[2]
        ca, sn = self.reg_place(cos, 4 * n * half, op), self.reg_place(sin, 4 * n * half, op)
        if pos0 + ntok > n:
            raise Fault("RANGE", op)
        pos = np.arange(pos0, pos0 + ntok)
        ct, st = self.f32(ca, n * half).reshape(n, half)[pos], self.f32(sn, n * half).reshape(n, half)[pos]
        x = self.rows(sa, ntok, w)
        self.put(da, pack_tiles(nx.rope(x.reshape(ntok, heads, 2 * half), ct, st).reshape(ntok, w), self.geo))

    def _binary(self, op, a, f, ntok, fn):
        ents = [self.buf_entry(i, pg.B_F32, op) for i in (a, f[0], f[1])]
        if len({e[2] for e in ents}) != 1:
            raise Fault("FIELD", op)
        da, xa, ya = (self.buf_place(e, pg.B_F32, ntok, op) for e in ents)
        w = ents[0][2]
        self.put(da, pack_tiles(fn(self.rows(xa, ntok, w), self.rows(ya, ntok, w)), self.geo))

    def _act_mul(self, op, fl, a, f, ntok, pos0):
        # SwiGLU gets here only in a model built with it (vec_swiglu): es_vec lacks it, the sequencer
        # stops at it (STATUS.HOST)
        self._binary(op, a, f, ntok, nx.silu_mul if fl & pg.F_SILU else nx.relu2_mul)

    def _add(self, op, fl, a, f, ntok, pos0):
        self._binary(op, a, f, ntok, lambda x, y: (x + y).astype(np.float32))

    def _last_row(self, op, fl, a, f, ntok, pos0):
        dst, src = self.buf_entry(a, pg.B_F32, op), self.buf_entry(f[0], pg.B_F32, op)
        if dst[2] != src[2]:
            raise Fault("FIELD", op)
        da, sa = self.buf_place(dst, pg.B_F32, 1, op), self.buf_place(src, pg.B_F32, ntok, op)
        self.put(da, pack_tiles(self.rows(sa, ntok, src[2])[-1:], self.geo))

    # ---- argmax at OUTPUT
    def argmax(self, a: int, ntok: int) -> int:
        op = pg.OUTPUT
        ent = self.buf_entry(a, pg.B_F32, op)
        la = self.buf_place(ent, pg.B_F32, ntok, op)
        row = self.rows(la, ntok, ent[2])[-1]
        ok = ~np.isnan(row)
        # the first index of the largest value; NaN never wins (all NaN: 0)
        return int(np.flatnonzero(ok)[np.argmax(row[ok])]) if ok.any() else 0

    # ---- the attention unit
    def attention(self, instr: bytes, ntok: int, pos0: int) -> None:
        r64 = self.dev._r64
        regs = self.attn.Regs(self.dev.nb, r64("ACT_BASE_LO"), self._reg("ACT_SIZE"), r64("KV_BASE_LO"),
                              self._reg("KV_SIZE"), ntok, pos0)
        try:
            self.attn.run_attention(self.dev.mem, regs, instr, self.geo.Q, self.geo.max_tok, self.dmax, self.smax,
                                    self.dev.kvp)
        except self.attn.Fault as e:
            raise Fault(rm.ERR_NAMES[e.code], pg.ATTENTION) from None
