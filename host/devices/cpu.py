"""`cpu` device: a functional model of the accelerator shell on the CPU.

It has the shell's registers (edgestream.regmap) and a flat memory, and on START runs the descriptor
program the way es_seq.sv does (same checks, same error codes, same memory layouts), computing each
MATMUL with the reference TLMM of edgestream.tlmm (tables built from the activations, codes read back
from the weight image). It lets the driver run with no simulator or board, and is the executable
statement of what the RTL sequencer must do. Timing is not modelled: runs finish at once, CYCLES = 0.
(Sessions with --device cpu use the CPU executor directly; this model sits behind the driver.)
"""

from __future__ import annotations

import struct
import time

import numpy as np

from edgestream import regmap as rm
from edgestream.host.devices import BumpAllocator
from edgestream.tlmm import tlmm_bitserial, tlmm_ternary


class _Fault(Exception):
    def __init__(self, code: str, info: int = 0):
        self.code, self.info = rm.ERR[code], info


class CpuDevice:
    name = "cpu"

    def __init__(self, mem_bytes: int = 64 << 20, config_id: int | None = None):
        self.mem = bytearray(mem_bytes)
        self.regs = {off: 0 for off in rm.REG.values()}
        hw = rm.SHELL_HW
        self.hw = hw
        cid = rm.shell_config_id() if config_id is None else config_id
        self.config_id = cid
        self.regs.update({rm.REG["MAGIC"]: rm.MAGIC, rm.REG["VERSION"]: rm.REGMAP_VERSION,
                          rm.REG["CONFIG_ID_LO"]: cid & 0xFFFFFFFF, rm.REG["CONFIG_ID_HI"]: cid >> 32,
                          rm.REG["HW_PARAMS"]: hw["G"] | hw["T"] << 4 | hw["Q"] << 12 | hw["max_tok"] << 20,
                          rm.REG["HW_MAXK"]: hw["max_k"] | rm.DATA_BYTES << 16})
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
                  "SEQ_CYCLES", "WGT_BEATS", "DESC_COUNT", "ERR_CODE", "ERR_INFO"):
            self.regs[rm.REG[k]] = 0
        idx = 0
        try:
            plen = self.regs[rm.REG["PROG_LEN"]]
            if plen == 0:
                raise _Fault("PROG_LEN")
            base = self._r64("PROG_BASE_LO")
            while True:
                w0, w1, w2, _ = struct.unpack_from("<QQQQ", self.mem, base + idx * rm.DESC_BYTES)
                self.regs[rm.REG["DESC_COUNT"]] += 1
                op = w0 & 0xFF
                if idx == 0 and op != rm.OP_HEADER:
                    raise _Fault("OPCODE", op)
                if op == rm.OP_HEADER:
                    if w1 != self.config_id:
                        raise _Fault("CONFIG", op)
                elif op == rm.OP_END:
                    self._set_status(rm.STATUS_DONE)
                    return
                elif op == rm.OP_MATMUL:
                    self._matmul(w0, w1, w2)
                else:
                    raise _Fault("OPCODE", op)
                if idx + 1 >= plen:
                    idx += 1
                    raise _Fault("PROG_LEN")
                idx += 1
        except _Fault as f:
            self.regs[rm.REG["ERR_CODE"]] = f.code | (idx & 0xFFFF) << 16
            self.regs[rm.REG["ERR_INFO"]] = f.info
            self._set_status(rm.STATUS_ERROR)

    def _matmul(self, w0: int, w1: int, w2: int) -> None:
        hw, beat = self.hw, rm.DATA_BYTES
        g, t_, q_ = hw["G"], hw["T"], hw["Q"]
        bits, bs, ntok = (w0 >> 8) & 0xF, (w0 >> 12) & 1, (w0 >> 16) & 0xFF
        k, n = (w0 >> 24) & 0xFFFF, (w0 >> 40) & 0xFFFFFF
        woff, aoff, roff = w1 & 0xFFFFFFFF, w1 >> 32, w2 & 0xFFFFFFFF
        dq, boff = (w0 >> 13) & 1, w2 >> 32
        if (k == 0 or k > hw["max_k"] or n == 0 or ntok == 0 or ntok > hw["max_tok"]
                or (bs and not 2 <= bits <= 8) or (not bs and bits)):
            raise _Fault("FIELD")
        if woff % 16 or aoff % 16 or roff % 16 or (dq and boff % 16):
            raise _Fault("RANGE")
        groups = -(-k // g)
        chunks, rb, planes = -(-groups // t_), -(-n // q_), bits if bs else 1
        abt = -(-groups // (beat // 8))
        wbeats, abeats, rbeats = rb * planes * chunks, abt * ntok, rb * ntok
        sbeats = -(-ntok // 4) if dq else 0  # DEQUANT: float32 s[t] beats before the activations
        if (woff + wbeats * beat > self.regs[rm.REG["WGT_SIZE"]]
                or aoff + (abeats + sbeats) * beat > self.regs[rm.REG["ACT_SIZE"]]
                or roff + rbeats * beat > self.regs[rm.REG["RES_SIZE"]]
                or (dq and boff + rb * beat > self.regs[rm.REG["WGT_SIZE"]])):
            raise _Fault("RANGE")
        wa, aa, ra = self._r64("WGT_BASE_LO") + woff, self._r64("ACT_BASE_LO") + aoff, self._r64("RES_BASE_LO") + roff
        codes = np.frombuffer(self.mem, np.uint8, wbeats * beat, wa).reshape(rb, planes, chunks, q_, t_)
        codes = codes.transpose(1, 0, 3, 2, 4).reshape(planes, rb * q_, chunks * t_)[:, :n, :groups]
        s_tok = np.frombuffer(self.mem, "<f4", ntok, aa).astype(np.float32)
        aa += sbeats * beat
        acts = np.frombuffer(self.mem, np.int8, abeats * beat, aa).reshape(ntok, abt * (beat // 8), 8)
        qv = acts[:, :groups, :g].reshape(ntok, groups * g)[:, :k]
        if bs:
            acc = tlmm_bitserial(qv, codes.astype(np.uint16) & ((1 << g) - 1), bits, g)
        else:
            if codes.size and codes.max() >= 3**g:
                raise _Fault("CODE")
            acc = tlmm_ternary(qv, codes[0], g)
        out = np.zeros((rb, ntok, q_), dtype="<i4")
        full = np.zeros((ntok, rb * q_), dtype=np.int64)
        full[:, :n] = acc
        out[:] = full.reshape(ntok, rb, q_).transpose(1, 0, 2)
        if dq:  # y = float32(acc) * float32(beta * s[t]) (docs/numerics.md), same layout as the INT32 results
            beta = np.frombuffer(self.mem, "<f4", rb * q_, self._r64("WGT_BASE_LO") + boff).reshape(rb, 1, q_)
            f = (beta * s_tok.reshape(1, ntok, 1)).astype(np.float32)
            out = (out.astype(np.float32) * f).astype("<f4")
        self.mem[ra:ra + out.nbytes] = out.tobytes()
        self.regs[rm.REG["RD_BEATS"]] += 2 + abeats + wbeats + sbeats + (rb if dq else 0)
        self.regs[rm.REG["WGT_BEATS"]] += wbeats
        self.regs[rm.REG["WR_BEATS"]] += rbeats
