"""The binary dataflow program (docs/program.md): what the hardware sequencer and
edgestream.host.program_executor both execute.

    header   (64 bytes)  magic b"ESPG", version u16, instruction size u16, counts, config id (u64),
                         geometry, offset of the instructions
    regions  (48 bytes each: three bus beats) offset u64, nbytes u64, kind u8, bits u8, stripes u16, n u32,
                         k u32, k0 u32, rows_padded u32, cols_padded u32, 8 bytes 0 -- where every
                         weight/table lives in the image
    buffers  (16 bytes each) dtype u8, pad[3], width u32, name offset u32, name length u32
    instrs   (32 bytes each) op u8, flags u8, a u16, f[7] u32
    names    UTF-8 buffer names (debugging only; the executors never look at them)

All integers little endian; every section starts on a 16-byte bus beat, so the hardware sequencer
fetches the file as it is (docs/program.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from edgestream.errors import InputError

MAGIC = b"ESPG"
# 3: ATTENTION carries the model shape (f3 layer | layers << 16, f4 D, f5 H | KVH << 16, f6 scale),
# LAST_ROW names its buffers (a dst, f0 src), OUTPUT may ask for the argmax (F_ARGMAX)
PROGRAM_VERSION = 3
NONE = 0xFFFFFFFF

# opcodes
EMBED, NORM_QUANT = 0x01, 0x02
LOAD_ACT, BUILD_TABLE, TLMM, DEQUANT = 0x10, 0x11, 0x12, 0x13
ROPE, ATTENTION, ACT_MUL, ADD = 0x20, 0x21, 0x22, 0x23
LAST_ROW, OUTPUT, END = 0x30, 0x31, 0x3F
OPNAMES = {EMBED: "EMBED", NORM_QUANT: "NORM_QUANT", LOAD_ACT: "LOAD_ACT", BUILD_TABLE: "BUILD_TABLE",
           TLMM: "TLMM", DEQUANT: "DEQUANT", ROPE: "ROPE", ATTENTION: "ATTENTION", ACT_MUL: "ACT_MUL",
           ADD: "ADD", LAST_ROW: "LAST_ROW", OUTPUT: "OUTPUT", END: "END"}

# flags
F_NORM = 1  # NORM_QUANT: an RMSNorm gain is fused (f2 = gain region)
F_ACCUMULATE = 1  # TLMM: add into the accumulators (later K tiles), else overwrite
F_BITSERIAL = 2  # TLMM: integer weights as bit planes (f2 = bits)
F_PER_CHANNEL = 1  # DEQUANT: beta has one scale per output row
F_SILU = 1  # ACT_MUL: SwiGLU (else ReLU^2)
F_ARGMAX = 1  # OUTPUT: the device computes the argmax of the last token's logits (ARGMAX register)

# region kinds
R_F32, R_I8ROWS, R_TERN_GINDEX, R_TERN_BASE3, R_INT_PLANES, R_INT_DENSE = 0, 1, 2, 3, 4, 5
REGION_KINDS = {R_F32: "f32", R_I8ROWS: "i8rows", R_TERN_GINDEX: "ternary-gindex", R_TERN_BASE3: "ternary-base3",
                R_INT_PLANES: "int-planes", R_INT_DENSE: "int-dense"}

# buffer dtypes
B_F32, B_I8, B_SCALE, B_IDS = 0, 1, 2, 3

_HDR = struct.Struct("<4sHHIIIIQ8xII16x")
_REG = struct.Struct("<QQBBHIIIII8x")
_BUF = struct.Struct("<B3xIII")
_INS = struct.Struct("<BBH7I")
HEADER_BYTES, REGION_BYTES, BUFFER_BYTES, INSTR_BYTES = _HDR.size, _REG.size, _BUF.size, _INS.size
assert (HEADER_BYTES, REGION_BYTES, BUFFER_BYTES, INSTR_BYTES) == (64, 48, 16, 32)


@dataclass
class Region:
    offset: int
    nbytes: int
    kind: int
    bits: int = 0
    n: int = 0  # rows (output channels / table rows)
    k: int = 0  # columns of this region (K tile length)
    k0: int = 0  # first column of the tile in the full matrix
    rows_padded: int = 0
    cols_padded: int = 0
    # weight stripes: a TLMM region streamed over P weight ports is P equal stripes of nbytes / P bytes
    # (docs/program.md, "Weight image"); stored as 0 when 1, so single-port programs keep their bytes
    stripes: int = 1


@dataclass
class Buffer:
    name: str
    dtype: int
    width: int


@dataclass
class Instr:
    op: int
    flags: int = 0
    a: int = 0
    f: list[int] = field(default_factory=lambda: [0] * 7)

    def __post_init__(self):
        self.f = list(self.f) + [0] * (7 - len(self.f))

    def text(self) -> str:
        return f"{OPNAMES.get(self.op, hex(self.op))} flags={self.flags} a={self.a} f={self.f}"


@dataclass
class Program:
    config_id: str
    group: int  # G of the configuration (the executor needs it to read codes)
    regions: list[Region]
    buffers: list[Buffer]
    instrs: list[Instr]
    lanes_t: int = 1  # T
    lanes_q: int = 1  # Q
    code_bits: int = 8

    @property
    def instr_offset(self) -> int:
        return _HDR.size + len(self.regions) * _REG.size + len(self.buffers) * _BUF.size

    def encode(self) -> bytes:
        names = b""
        bufs = []
        for b in self.buffers:
            nb = b.name.encode()
            bufs.append(_BUF.pack(b.dtype, b.width, len(names), len(nb)))
            names += nb
        hdr = _HDR.pack(MAGIC, PROGRAM_VERSION, _INS.size, len(self.regions), len(self.buffers),
                        len(self.instrs), len(names), int(self.config_id, 16),
                        (self.group & 0xFF) | ((self.code_bits & 0xFF) << 8) | ((self.lanes_t & 0xFF) << 16)
                        | ((self.lanes_q & 0xFF) << 24), self.instr_offset)
        regs = b"".join(_REG.pack(r.offset, r.nbytes, r.kind, r.bits, r.stripes if r.stripes > 1 else 0, r.n, r.k,
                                  r.k0, r.rows_padded, r.cols_padded) for r in self.regions)
        ins = b"".join(_INS.pack(i.op, i.flags, i.a, *i.f) for i in self.instrs)
        return hdr + regs + b"".join(bufs) + ins + names

    @classmethod
    def decode(cls, blob: bytes, src: str = "program.bin") -> Program:
        if len(blob) < _HDR.size:
            raise InputError(f"{src}: truncated program (no header)")
        magic, ver, isz, nr, nb, ni, nn, cid, geo, ioff = _HDR.unpack_from(blob, 0)
        if magic != MAGIC:
            raise InputError(f"{src}: not an edgestream program (magic {magic!r}, expected {MAGIC!r})")
        if ver != PROGRAM_VERSION or isz != _INS.size:
            raise InputError(f"{src}: program version {ver} / instruction size {isz}, this edgestream reads "
                             f"version {PROGRAM_VERSION} / {_INS.size}: recompile the artifact (edgestream "
                             f"compile ... --target <board>)")
        need = _HDR.size + nr * _REG.size + nb * _BUF.size + ni * _INS.size + nn
        if ioff != _HDR.size + nr * _REG.size + nb * _BUF.size:
            raise InputError(f"{src}: instruction offset {ioff} does not follow the tables (corrupt header)")
        if len(blob) != need:
            raise InputError(f"{src}: {len(blob)} bytes, header says {need} (truncated or corrupt)")
        off = _HDR.size
        regions = []
        for _ in range(nr):
            o, n_, kind, bits, stripes, n, k, k0, rp, cp = _REG.unpack_from(blob, off)
            if kind not in REGION_KINDS:
                raise InputError(f"{src}: region {len(regions)} has unknown kind {kind}")
            if stripes > 1 and n_ % (stripes * 16):
                raise InputError(f"{src}: region {len(regions)} has {stripes} stripes, but its {n_} bytes are not "
                                 f"{stripes} whole stripes of 16-byte beats")
            regions.append(Region(o, n_, kind, bits, n, k, k0, rp, cp, max(1, stripes)))
            off += _REG.size
        raw_bufs = []
        for _ in range(nb):
            raw_bufs.append(_BUF.unpack_from(blob, off))
            off += _BUF.size
        instrs = []
        for _ in range(ni):
            op, fl, a, *f = _INS.unpack_from(blob, off)
            if op not in OPNAMES:
                raise InputError(f"{src}: instruction {len(instrs)} has unknown opcode {op:#x}")
            instrs.append(Instr(op, fl, a, f))
            off += _INS.size
        names = blob[off:]
        buffers = [Buffer(names[o : o + ln].decode(), dt, w) for dt, w, o, ln in raw_bufs]
        return cls(f"{cid:016x}", geo & 0xFF, regions, buffers, instrs, (geo >> 16) & 0xFF, (geo >> 24) & 0xFF,
                   (geo >> 8) & 0xFF)

    def listing(self) -> str:
        return "\n".join(f"{i:5d}  {ins.text()}" for i, ins in enumerate(self.instrs))
