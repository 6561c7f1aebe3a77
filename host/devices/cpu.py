"""`cpu` device: a functional model of the accelerator shell on the CPU.

It has the shell's registers (edgestream.regmap) and a flat memory, and on START executes program.bin
from PC the way es_seq.sv does (docs/registers.md: same checks in the same order, same error codes,
same stops at host instructions, same memory layouts), computing each TLMM with the reference TLMM of
edgestream.tlmm on the codes read back from the weight image, and the instructions of the units behind
the sequencer (docs/units.md: vector unit, attention over the INT8 KV cache in the KV region, argmax
at OUTPUT) with edgestream.host.devices.cpu_units. `units` (HW_UNITS) says which units it has: an
instruction of a unit it lacks and a SwiGLU ACT_MUL (es_vec does not have it) stop the run with
STATUS.HOST for the host to execute. K-tiled linears run as es_seq runs them with the engine's K-tile
accumulator (HW_UNITS bit 3, `ktile`; docs/registers.md "K tiles"); one it cannot accumulate (more
than KROWS rows, a tile not ending on a bus beat of the q rows), or every one with ktile=False, stops
with STATUS.HOST at the linear's first LOAD_ACT (ERR FIELD on the linear-only shell). It lets the
driver run with no simulator or board, and is the executable statement of what the RTL must do. Timing
is not modelled: runs finish at once, CYCLES = 0. (Sessions with --device cpu use the CPU executor directly.)
"""

from __future__ import annotations

import struct
import time

import numpy as np

from edgestream import numerics as nx
from edgestream import program as pg
from edgestream import regmap as rm
from edgestream.host.devices import BumpAllocator
from edgestream.host.devices.cpu_units import U_ARGMAX, U_ATTN, U_VEC, UNIT_OF, Units, attention_model
from edgestream.host.devices.cpu_units import Fault as _Fault
from edgestream.host.driver import Geometry
from edgestream.tlmm import tlmm_bitserial, tlmm_ternary

BEAT = rm.DATA_BYTES
# what es_vec / es_attn are built with (their parameter defaults): longest vector row, head row, context
VMAX, DMAX, SMAX = 8192, 256, 4096


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


class _HostStop(Exception):
    """A linear the sequencer does not run (K tiles): STATUS.HOST at the LOAD_ACT that starts it."""


class CpuDevice:
    name = "cpu"

    def __init__(self, mem_bytes: int = 64 << 20, config_id: int | None = None, hw_config=None,
                 units: int | None = None, vec_swiglu: bool = False, vmax: int = VMAX, dmax: int = DMAX,
                 smax: int = SMAX, ktile: bool = True, kvp: int | None = None):
        """hw_config: the HwConfig this model stands in for (the shipped shell's by default). units: the
        HW_UNITS bits (default: vector unit, attention unit when sim/es_attn_model.py is there, argmax;
        0 is the linear-only shell, where K tiles are ERR FIELD as before). vec_swiglu: the vector unit
        runs SwiGLU (the RTL does not yet: the run stops with STATUS.HOST at it). ktile: the engine
        accumulates K tiles (the RTL's KROWS > 0: HW_UNITS bit 3); False models a bitstream without.
        kvp: the attention unit's KV ports, i.e. the KV region's layout (default the configuration's,
        edgestream.regmap.kv_ports; another value models the striped layout on this geometry)."""
        self.mem = bytearray(mem_bytes)
        self.regs = {off: 0 for off in rm.REG.values()}
        hw = rm.SHELL_HW if hw_config is None else hw_config.to_dict()
        self.hw = hw
        if config_id is None:
            config_id = rm.shell_config_id() if hw_config is None else int(hw_config.config_id, 16)
        cid = config_id
        self.config_id = cid
        self.regs.update({rm.REG["MAGIC"]: rm.MAGIC, rm.REG["VERSION"]: rm.REGMAP_VERSION,
                          rm.REG["CONFIG_ID_LO"]: cid & 0xFFFFFFFF, rm.REG["CONFIG_ID_HI"]: cid >> 32,
                          rm.REG["HW_PARAMS"]: hw["G"] | hw["T"] << 4 | hw["Q"] << 12 | hw["max_tok"] << 20,
                          rm.REG["HW_MAXK"]: hw["max_k"] | rm.DATA_BYTES << 16})
        if units is None:
            units = U_VEC | U_ARGMAX | (U_ATTN if attention_model() is not None else 0)
        self.units, self.vec_swiglu = units & (U_VEC | U_ATTN | U_ARGMAX), vec_swiglu
        self.krows = rm.KROWS if ktile else 0
        self.kvp = rm.kv_ports(hw) if kvp is None else kvp  # the KV region's layout (the RTL's KVP)
        self.regs.update({rm.REG["HW_UNITS"]: self.units | (rm.HW_KTILE if ktile else 0) | self.kvp << 4,
                          rm.REG["HW_VEC"]: vmax | dmax << 16,
                          rm.REG["HW_SMAX"]: smax})
        self.unit = Units(self, Geometry(hw["G"], hw["T"], hw["Q"], hw["max_k"], hw["max_tok"]), vmax, dmax, smax)
        self._alloc = BumpAllocator(0x1000, mem_bytes - 0x1000, "cpu device memory")
        self._rw = {rm.REG[n] for n, in [(r[1],) for r in rm.REGISTERS if r[2] == "RW"]}

    # ---- device interface
    def read_reg(self, off: int) -> int:
        return self.regs.get(off, 0)

    def write_reg(self, off: int, value: int) -> None:
        value &= 0xFFFFFFFF
        if off == rm.REG["CTRL"]:
            if value & rm.CTRL_SOFT_RESET:
                self._set_status(0)
                self.regs[rm.REG["ERR_CODE"]] = self.regs[rm.REG["ERR_INFO"]] = 0
            elif value & rm.CTRL_START and not self.regs[rm.REG["STATUS"]] & rm.STATUS_BUSY:
                self._run()
        elif off in self._rw:
            self.regs[off] = value

    def alloc(self, nbytes: int) -> int:
        return self._alloc.alloc(nbytes)

    def write_mem(self, addr: int, data: bytes) -> None:
        self.mem[addr:addr + len(data)] = data

    def read_mem(self, addr: int, n: int) -> bytes:
        return bytes(self.mem[addr:addr + n])

    def wait(self, seconds: float) -> None:
        pass

    def now(self) -> float:
        return time.monotonic()

    def close(self) -> None:
        pass

    # ---- the sequencer
    def _set_status(self, v: int) -> None:
        self.regs[rm.REG["STATUS"]] = v

    def _r64(self, lo: str) -> int:
        return self.regs[rm.REG[lo]] | (self.regs[rm.REG[lo.replace("_LO", "_HI")]] & 0xFF) << 32

    def _run(self) -> None:
        for k in ("CYCLES_LO", "CYCLES_HI", "RD_BEATS", "WR_BEATS", "STALL_WGT", "STALL_ACT", "STALL_RES",
                  "SEQ_CYCLES", "WGT_BEATS", "INSTR_COUNT", "ERR_CODE", "ERR_INFO", "VEC_CYCLES", "ATTN_CYCLES"):
            self.regs[rm.REG[k]] = 0
        self.pc = self.regs[rm.REG["PC"]]
        try:
            status = self._execute()
            self._set_status(status)
        except _HostStop:
            self._set_status(rm.STATUS_HOST)
        except _Fault as f:
            self.regs[rm.REG["ERR_CODE"]] = f.code | (self.pc & 0xFFFF) << 16
            self.regs[rm.REG["ERR_INFO"]] = f.info
            self._set_status(rm.STATUS_ERROR)
        self.regs[rm.REG["STOP_PC"]] = self.pc

    def _prog(self, off: int, n: int) -> bytes:
        if off + n > self.regs[rm.REG["PROG_SIZE"]]:
            raise _Fault("RANGE", self.op)
        self.regs[rm.REG["RD_BEATS"]] += -(-n // BEAT)
        base = self._r64("PROG_BASE_LO") + off
        return bytes(self.mem[base:base + n])

    def _execute(self) -> int:
        hw = self.hw
        self.op = 0
        if any(self._r64(b) % BEAT for b in ("PROG_BASE_LO", "WGT_BASE_LO", "ACT_BASE_LO")):
            raise _Fault("RANGE")
        if self.regs[rm.REG["PROG_SIZE"]] < pg.HEADER_BYTES:
            raise _Fault("HEADER")
        magic, ver, isz, nr, nb, ni, _, cid, geo, ioff = struct.unpack_from("<4sHHIIIIQ8xII16x",
                                                                            self._prog(0, pg.HEADER_BYTES))
        if magic != pg.MAGIC or ver != pg.PROGRAM_VERSION or isz != pg.INSTR_BYTES:
            raise _Fault("HEADER")
        cb = (3 ** hw["G"] - 1).bit_length()
        if cid != self.config_id or geo != hw["G"] | cb << 8 | hw["T"] << 16 | hw["Q"] << 24:
            raise _Fault("CONFIG")
        if ioff % BEAT or ioff + ni * pg.INSTR_BYTES > self.regs[rm.REG["PROG_SIZE"]]:
            raise _Fault("RANGE")
        self.nr, self.nb, self.ni = nr, nb, ni
        ntok = self.regs[rm.REG["NTOK"]]
        pos0 = self.regs[rm.REG["POS"]]
        act = None  # LOAD_ACT: (q buffer, klen, the linear's first LOAD_ACT, k0, first beat in a token's row)
        table = False
        self.kt = None  # the K-tile accumulator holds a linear's tiles so far: (next k0, its beat, rows, sums)

        def fetch(pc):
            if pc >= ni:
                raise _Fault("PROG_END")
            op, fl, a, *f = struct.unpack("<BBH7I", self._prog(ioff + pc * pg.INSTR_BYTES, pg.INSTR_BYTES))
            return op, fl, a, f

        ins = None
        while True:
            if ins is None:
                ins = fetch(self.pc)
            op, fl, a, f = ins
            self.op = op
            if op == pg.END:
                return rm.STATUS_DONE
            unit = UNIT_OF.get(op)
            if unit is not None:
                if not self.units & unit or (op == pg.ACT_MUL and fl & pg.F_SILU and not self.vec_swiglu):
                    return rm.STATUS_HOST
                self.regs[rm.REG["INSTR_COUNT"]] += 1
                if op == pg.ATTENTION:
                    self.unit.attention(struct.pack("<BBH7I", op, fl, a, *f), ntok, pos0)
                elif op == pg.OUTPUT:
                    if fl & pg.F_ARGMAX:
                        self.regs[rm.REG["ARGMAX"]] = self.unit.argmax(a, ntok)
                else:
                    self.unit.vector(op, fl, a, f, ntok, pos0)
                    if op == pg.LAST_ROW:
                        ntok = 1  # NTOK_eff: the rest of the run works on the last token
                self.pc += 1
                ins = None
                continue
            self.regs[rm.REG["INSTR_COUNT"]] += 1
            if op == pg.LOAD_ACT:
                if a >= self.nb:
                    raise _Fault("RANGE", op)
                if f[0] != 0:
                    if self.kt is None or f[0] != self.kt[0]:
                        if self.units:
                            raise _HostStop  # a K tile that continues no kept one: the host runs the linear
                        raise _Fault("FIELD", op)
                    act = (a, f[1], act[2], f[0], self.kt[1])
                else:
                    act = (a, f[1], self.pc, 0, 0)
            elif op == pg.BUILD_TABLE:
                if f[0] != hw["G"]:
                    raise _Fault("FIELD", op)
                table = True
            elif op == pg.TLMM:
                if act is None or not table:
                    raise _Fault("FIELD", op)
                tlmm_pc = self.pc
                try:
                    ins = self._tlmm(fl, a, f, act, ntok, fetch)
                except _Fault:
                    self.pc = tlmm_pc  # whatever is wrong with a fused linear is reported at its TLMM
                    raise
                continue
            else:  # a DEQUANT that does not follow a TLMM, or an unknown opcode
                raise _Fault("OPCODE", op)
            self.pc += 1
            ins = None

    def _k_tiles(self, act) -> None:
        """A bitstream with units stops at a K-tiled linear for the host, at the LOAD_ACT starting it."""
        if self.units:
            self.pc = act[2]
            raise _HostStop

    def _region(self, i: int):
        if i >= self.nr:
            raise _Fault("RANGE", self.op)
        o, nbytes, kind, bits, stripes, n, k, _, _, _ = struct.unpack(
            "<QQBBHIIIII8x", self._prog(pg.HEADER_BYTES + i * pg.REGION_BYTES, pg.REGION_BYTES))
        return o, nbytes, kind, bits, n, k, max(1, stripes)

    def _map_entry(self, b: int) -> tuple[int, int, int, int, int, int]:
        """Buffer b's map entry (base, offset, capacity, width, dtype, ACT_SIZE), fetched as the RTL does
        (one read beat) after its index checks."""
        asz = self.regs[rm.REG["ACT_SIZE"]]
        if b >= self.nb or BEAT * (b + 1) > asz:
            raise _Fault("RANGE", self.op)
        base = self._r64("ACT_BASE_LO")
        off, cap, w, dt = struct.unpack_from("<IIIB", self.mem, base + BEAT * b)
        self.regs[rm.REG["RD_BEATS"]] += 1
        return base, off, cap, w, dt, asz

    def _map(self, b: int, dtype: int, width: int | None, need: int) -> int:
        """Address of buffer b after the buffer-map checks."""
        base, off, cap, w, dt, asz = self._map_entry(b)
        if dt != dtype or (width is not None and w != width):
            raise _Fault("FIELD", self.op)
        if off % BEAT or off + cap > asz or need > cap:
            raise _Fault("RANGE", self.op)
        return base + off

    def _tlmm(self, fl, a, f, act, ntok, fetch):
        hw = self.hw
        g, t_, q_, mt = hw["G"], hw["T"], hw["Q"], hw["max_tok"]
        op = pg.TLMM
        bs = bool(fl & pg.F_BITSERIAL)
        if fl & pg.F_ACCUMULATE and (self.kt is None or f[0] != self.kt[2]):
            self._k_tiles(act)
            raise _Fault("FIELD", op)
        woff, wbytes, kind, rbits, n, k, stripes = self._region(a)
        klen = act[1]
        wp = hw["axi_ports"]
        # an int-dense region (G column planes of int8, tlmm_engine's dense mode) on a build whose engine has it
        dense = bs and kind == pg.R_INT_DENSE and hw["int_encoding"] == "int8"
        if ((kind != (pg.R_INT_PLANES if bs else pg.R_TERN_GINDEX) and not dense)
                or (bs and not (rbits == f[2] and 2 <= f[2] <= 8))
                or k != klen or not 1 <= klen <= hw["max_k"] or n != f[0] or n == 0 or not 1 <= ntok <= 0xFFFF
                or stripes != wp):
            raise _Fault("FIELD", op)
        planes = g if dense else f[2] if bs else 1
        groups = -(-k // g)
        chunks, rb = -(-groups // t_), -(-n // q_)
        wbeats = rb * planes * chunks  # engine beats: BEAT bytes of each of the wp stripes
        stride = (wbytes // wp) & ~(BEAT - 1)  # from one stripe to the next (es_seq: nbytes >> log2 WP)
        if (woff % BEAT or wbeats * BEAT > stride
                or woff + (wp - 1) * stride + wbeats * BEAT > self.regs[rm.REG["WGT_SIZE"]]):
            raise _Fault("RANGE", op)
        # the members: the DEQUANTs right after the TLMM
        members = []
        col = 0
        while True:
            self.pc += 1
            if self.pc >= self.ni:  # the linear still runs; the next fetch reports PROG_END
                nxt = None
                break
            nxt = fetch(self.pc)
            if nxt[0] != pg.DEQUANT:
                break
            self.op = pg.DEQUANT
            self.regs[rm.REG["INSTR_COUNT"]] += 1
            _, dfl, dst, df = nxt
            if (len(members) == 4 or not dfl & pg.F_PER_CHANNEL or df[0] != col or df[0] % q_
                    or (members and df[2] != members[0][2])):
                raise _Fault("FIELD", pg.DEQUANT)
            if members and members[-1][1] % q_:
                raise _Fault("FIELD", pg.DEQUANT)  # only the last member may end inside a row batch
            members.append((dst, df[1], df[2], df[3]))
            col += df[1]
        self.op = pg.DEQUANT
        spb = BEAT // 8
        abt = -(-groups // spb)
        k0, kb0 = act[3], act[4]
        keep = False
        if not members and nxt is not None and nxt[0] == pg.LOAD_ACT:
            # the next K tile follows instead of the DEQUANTs: the accumulator keeps this tile's sums
            # when it holds the rows and the tile ends on a bus beat of the q rows
            if not (self.krows and nxt[3][0] == k0 + klen and klen % (g * spb) == 0 and n <= self.krows):
                self._k_tiles(act)
                raise _Fault("FIELD", pg.TLMM)
            keep = True
        elif not members or col != n:
            raise _Fault("FIELD", pg.TLMM if not members else pg.DEQUANT)
        unit = q_ * 4  # one row batch of one token: Q float32 (results, betas)
        # the q buffer: the last (or only) tile ends its rows, an earlier one lies inside them
        qa, qw = self._map_q(act[0], k0 + klen, keep, ntok)
        abt_w = _cdiv(_cdiv(qw, g), spb)
        if keep:
            part = self._tile_sums(fl, a, f, ntok, qa, abt_w, kb0, groups, klen, woff, wbytes, n, k, stripes, bs, dense)
            self.kt = (k0 + klen, kb0 + abt, n, part + self.kt[3] if fl & pg.F_ACCUMULATE else part)
            self._count_tile(ntok, 0, abt, wbeats * wp)
            return nxt
        sa = self._map(members[0][2], pg.B_SCALE, None, -(-ntok // 4) * BEAT)
        mem = []
        for dst, cols, _, breg in members:
            mrb = -(-cols // q_)
            da = self._map(dst, pg.B_F32, cols, -(-ntok // mt) * mrb * mt * unit)
            boff, bbytes, bkind, _, _, _, _ = self._region(breg)
            if bkind != pg.R_F32:
                raise _Fault("FIELD", pg.DEQUANT)
            if boff % BEAT or mrb * unit > bbytes or boff + mrb * unit > self.regs[rm.REG["WGT_SIZE"]]:
                raise _Fault("RANGE", pg.DEQUANT)
            mem.append((da, mrb, self._r64("WGT_BASE_LO") + boff))
        part = self._tile_sums(fl, a, f, ntok, qa, abt_w, kb0, groups, klen, woff, wbytes, n, k, stripes, bs, dense)
        tiled = bool(fl & pg.F_ACCUMULATE)
        total = part + self.kt[3] if tiled else part
        self.kt = None
        s_all = np.frombuffer(self.mem, "<f4", ntok, sa)
        for j, t0 in enumerate(range(0, ntok, mt)):
            nt = min(mt, ntok - t0)
            full = np.zeros((nt, rb * q_), np.int64)
            full[:, :n] = total[t0:t0 + nt]
            r0 = 0
            for da, mrb, ba in mem:
                beta = np.frombuffer(self.mem, "<f4", mrb * q_, ba)
                y = nx.dequant(full[:, r0 * q_:(r0 + mrb) * q_].astype(np.int32), s_all[t0:t0 + nt], beta)
                y = y.astype("<f4").reshape(nt, mrb, q_).transpose(1, 0, 2)
                o = da + j * mrb * mt * unit
                self.mem[o:o + y.nbytes] = np.ascontiguousarray(y).tobytes()
                self.regs[rm.REG["WR_BEATS"]] += mrb * nt * unit // BEAT
                self.regs[rm.REG["RD_BEATS"]] += mrb * unit // BEAT
                r0 += mrb
        self._count_tile(ntok, 1, abt, wbeats * wp)
        if tiled:
            # es_seq runs a K-tiled linear token tile by token tile, the linear's instructions (its first
            # LOAD_ACT through this TLMM, and the members) once per token tile: counted each time
            self.regs[rm.REG["INSTR_COUNT"]] += (-(-ntok // mt) - 1) * (self.pc - act[2])
        return nxt

    def _count_tile(self, ntok: int, scales: int, abt: int, wbeats: int) -> None:
        """Read beats of a TLMM's token tiles (scales, q rows, weights)."""
        for t0 in range(0, ntok, self.hw["max_tok"]):
            nt = min(self.hw["max_tok"], ntok - t0)
            self.regs[rm.REG["RD_BEATS"]] += scales * -(-nt // 4) + nt * abt + wbeats
            self.regs[rm.REG["WGT_BEATS"]] += wbeats

    def _map_q(self, b: int, kend: int, keep: bool, ntok: int) -> tuple[int, int]:
        """Address and width of LOAD_ACT's q buffer after its buffer-map checks (es_seq S_C3): its width is
        the tile's end (a tile before the last: past it), at most 65535; NTOK whole rows fit."""
        base, off, cap, w, dt, asz = self._map_entry(b)
        if dt != pg.B_I8 or w > 0xFFFF or (w <= kend if keep else w != kend):
            raise _Fault("FIELD", self.op)
        g, spb = self.hw["G"], BEAT // 8
        if off % BEAT or off + cap > asz or ntok * _cdiv(_cdiv(w, g), spb) * BEAT > cap:
            raise _Fault("RANGE", self.op)
        return base + off, w

    def _tile_sums(self, fl, a, f, ntok, qa, abt_w, boff, groups, klen, woff, wbytes, n, k, stripes, bs, dense):
        """int64 sums [ntok, n] of one K tile: columns boff*SPB*G.. of every token's q row times the region."""
        hw = self.hw
        g, t_, q_ = hw["G"], hw["T"], hw["Q"]
        wp = hw["axi_ports"]
        planes = g if dense else f[2] if bs else 1
        chunks, rb = -(-groups // t_), -(-n // q_)
        wbeats = rb * planes * chunks
        stride = (wbytes // wp) & ~(BEAT - 1)
        self.op = pg.TLMM
        wa = self._r64("WGT_BASE_LO") + woff
        # port p streams stripe p: bytes [16p, 16p+16) of every engine beat of Q*T code bytes
        raw = np.stack([np.frombuffer(self.mem, np.uint8, wbeats * BEAT, wa + p * stride).reshape(wbeats, BEAT)
                        for p in range(wp)], axis=1)
        spb = BEAT // 8
        qv_all = np.frombuffer(self.mem, np.int8, ntok * abt_w * BEAT, qa).reshape(ntok, abt_w * spb, 8)
        g0 = boff * spb
        qv = np.ascontiguousarray(qv_all[:, g0:g0 + groups, :g]).reshape(ntok, groups * g)[:, :klen]
        if dense:
            # beat (rb, column i, chunk c), lane q*T + t: int8 w[rb*Q + q][G*(c*T + t) + i]
            w = raw.view(np.int8).reshape(rb, g, chunks, q_, t_).transpose(0, 3, 2, 4, 1)
            w = w.reshape(rb * q_, chunks * t_ * g)[:n, :klen]
            return qv.astype(np.int64) @ w.astype(np.int64).T
        codes = raw.reshape(rb, planes, chunks, q_, t_)
        codes = codes.transpose(1, 0, 3, 2, 4).reshape(planes, rb * q_, chunks * t_)[:, :n, :groups]
        if not bs and codes.size and codes.max() >= 3**g:
            raise _Fault("CODE")
        acc = tlmm_bitserial(qv, codes.astype(np.uint16) & ((1 << g) - 1), planes, g) if bs \
            else tlmm_ternary(qv, codes[0], g)
        return np.asarray(acc, np.int64)
