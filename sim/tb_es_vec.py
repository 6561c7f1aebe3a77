"""cocotb bench: the vector unit (hw/rtl/es_vec.sv) behind its own es_axi_rd / es_axi_wr, as the shell
will instantiate it (sim/es_vec_tb_top.sv), with cocotbext-axi's AXI RAM as DDR (sim_server.DdrModel:
read latency, DECERR/SLVERR windows) and idle/backpressure on the R and W channels.

Every case is a real program.bin (edgestream.program: region table at PROG_BASE + 64), a weight image
and an activation arena whose buffer map and buffers follow docs/registers.md ("Memory layouts": f32
tile layout with garbage in the padding columns, i8 slots, scale and ids buffers); the bench pulses
`go` with the encoded 32-byte instruction, as es_seq will, and compares every output byte (padding
included: the unit writes +0 there) with edgestream.numerics / the program executor's numpy, bit for
bit. Tests: `ops` (EMBED, ACT_MUL ReLU^2, ADD, ROPE over token counts 1..9, widths off the row batch,
unaligned embedding and RoPE table rows, zero / subnormal / max-magnitude values, exact cancellations,
positions past 0, several blocks of the row buffer; NORM_QUANT with and without the gain, q in the i8
slot layout and s in the scale buffer compared byte for byte, all-zero rows, K off G),
`backpressure` (the same under R idles and W backpressure) and `faults` (ERR RANGE, ERR FIELD, AXI
read and write errors, a token id past the table, NORM_QUANT's shapes; then good runs).
"""

from __future__ import annotations

import struct

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus
from cocotbext.axi.constants import AxiResp
from sim_server import PERIOD_NS, DdrModel, Faults
from tb_common import bench_config, high, random_pause

from edgestream import numerics as nx
from edgestream import program as pg
from edgestream import regmap as rm

CFG = bench_config()
QUICK = bool(CFG.get("quick"))  # the second simulator runs a subset of the cases (test time)
Q, MT, G, VMAX = int(CFG["Q"]), int(CFG["MAXTOK"]), int(CFG["G"]), int(CFG["VMAX"])
U = 4 * Q
MEM = 4 << 20
PROG_BASE, WGT_BASE, ACT_BASE = 0x1000, 0x20000, 0x200000
F32 = np.float32
ERR = rm.ERR


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def tile_bytes(ntok: int, width: int) -> int:
    return cdiv(ntok, MT) * cdiv(width, Q) * MT * U


def pack_tiles(x: np.ndarray, pad: np.ndarray | None = None) -> bytes:
    """float32 [ntok, width] -> the f32 tile layout (docs/registers.md); padding columns from `pad`."""
    ntok, width = x.shape
    rb = cdiv(width, Q)
    full = np.zeros((ntok, rb * Q), F32) if pad is None else pad.astype(F32).reshape(ntok, rb * Q).copy()
    full[:, :width] = x
    out = np.zeros(cdiv(ntok, MT) * rb * MT * Q, F32)
    for j, t0 in enumerate(range(0, ntok, MT)):
        nt = min(MT, ntok - t0)
        blk = full[t0:t0 + nt].reshape(nt, rb, Q).transpose(1, 0, 2).reshape(-1)
        out[j * rb * MT * Q: j * rb * MT * Q + blk.size] = blk
    return out.astype("<f4").tobytes()


def unpack_tiles_full(raw: bytes, ntok: int, width: int) -> np.ndarray:
    """The tile layout -> uint32 [ntok, RB*Q] (padding columns included)."""
    rb = cdiv(width, Q)
    a = np.frombuffer(raw, "<u4")
    out = np.empty((ntok, rb * Q), np.uint32)
    for j, t0 in enumerate(range(0, ntok, MT)):
        nt = min(MT, ntok - t0)
        blk = a[j * rb * MT * Q: j * rb * MT * Q + rb * nt * Q].reshape(rb, nt, Q)
        out[t0:t0 + nt] = blk.transpose(1, 0, 2).reshape(nt, rb * Q)
    return out


def values(rng, shape, kind: str) -> np.ndarray:
    """float32 test data: 'normal' (mixed magnitudes and signs, exact zeros), 'sub' (subnormals and tiny
    normals), 'big' (near the largest finite float32), 'zero'."""
    n = int(np.prod(shape))
    if kind == "zero":
        return np.zeros(shape, F32)
    if kind == "sub":
        bits = rng.integers(1, 1 << 24, n).astype(np.uint32) | (rng.integers(0, 2, n).astype(np.uint32) << 31)
        return bits.view(F32).reshape(shape)
    if kind == "big":
        v = rng.uniform(0.5, 1.0, n).astype(F32) * F32(3.4e38)
        return (v * rng.choice([-1, 1], n).astype(F32)).reshape(shape)
    v = (rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, n))).astype(F32)
    v[rng.random(n) < 0.1] = 0
    return v.reshape(shape)


class Build:
    """program.bin (regions and buffers), the weight image and the arena with its buffer map."""

    def __init__(self):
        self.regions: list[pg.Region] = []
        self.buffers = [pg.Buffer("ids", pg.B_IDS, 1)]
        self.wgt = bytearray()
        self.maps: dict[int, tuple[int, int, int, int]] = {}  # buffer -> (offset, capacity, width, dtype)
        self.data: dict[int, bytes] = {}
        self.arena_end = 0x1000

    def region(self, raw: bytes, kind: int, n: int, k: int, align: int = 64) -> int:
        self.wgt += b"\0" * ((-len(self.wgt)) % align)
        self.regions.append(pg.Region(len(self.wgt), len(raw), kind, 32 if kind == pg.R_F32 else 8, n, k, 0, n, k))
        self.wgt += raw
        return len(self.regions) - 1

    def buffer(self, dtype: int, width: int, nbytes: int, data: bytes | None = None, idx: int | None = None) -> int:
        if idx is None:
            self.buffers.append(pg.Buffer(f"b{len(self.buffers)}", dtype, width))
            idx = len(self.buffers) - 1
        off = self.arena_end
        self.arena_end += cdiv(nbytes, 16) * 16 + 16
        self.maps[idx] = (off, nbytes, width, dtype)
        self.data[idx] = data if data is not None else bytes(range(256)) * cdiv(nbytes, 256)
        return idx

    def program(self) -> bytes:
        return pg.Program("0" * 16, G, self.regions, self.buffers, [pg.Instr(pg.END)], 1, Q, 8).encode()

    def map_bytes(self) -> bytes:
        out = bytearray(16 * len(self.buffers))
        for i, (off, cap, w, dt) in self.maps.items():
            out[16 * i:16 * i + 16] = struct.pack("<IIIB3x", off, cap, w, dt)
        return bytes(out)


def instr(op: int, a: int = 0, f: list[int] | None = None, flags: int = 0) -> int:
    f = list(f or []) + [0] * (7 - len(f or []))
    return int.from_bytes(struct.pack("<BBH7I", op, flags, a, *f), "little")


class TB:
    def __init__(self, dut, latency: int = 12):
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        self.faults = Faults()
        self.ddr = DdrModel(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst_n, MEM, latency, self.faults)
        for s in ("abort_req", "go", "instr", "ntok", "pos0"):
            getattr(dut, s).value = 0

    async def reset(self):
        self.dut.rst_n.value = 0
        await ClockCycles(self.dut.clk, 8)
        self.dut.rst_n.value = 1
        await ClockCycles(self.dut.clk, 2)

    def pauses(self, on: bool, seed: int = 1):
        self.ddr.read_if.r_channel.set_pause_generator(random_pause(seed, 0.4) if on else None)
        self.ddr.write_if.w_channel.set_pause_generator(random_pause(seed + 1, 0.5) if on else None)
        self.ddr.write_if.aw_channel.set_pause_generator(random_pause(seed + 2, 0.3) if on else None)

    def load(self, b: Build, act_size: int | None = None, wgt_size: int | None = None):
        prog = b.program()
        self.ddr.write(PROG_BASE, prog)
        self.ddr.write(WGT_BASE, bytes(b.wgt) + b"\0" * 64)
        self.ddr.write(ACT_BASE, b.map_bytes())
        for i, (off, _, _, _) in b.maps.items():
            self.ddr.write(ACT_BASE + off, b.data[i])
        d = self.dut
        d.prog_base.value, d.prog_size.value = PROG_BASE, len(prog)
        d.n_regions.value, d.n_buffers.value = len(b.regions), len(b.buffers)
        d.wgt_base.value, d.wgt_size.value = WGT_BASE, wgt_size if wgt_size is not None else len(b.wgt)
        d.act_base.value, d.act_size.value = ACT_BASE, act_size if act_size is not None else b.arena_end

    async def exec(self, word: int, ntok: int, pos0: int = 0, timeout: int = 400_000) -> tuple[int, int, int]:
        """Dispatch one instruction; returns (err_code, err_info, cycles)."""
        d = self.dut
        d.instr.value, d.ntok.value, d.pos0.value = word, ntok, pos0
        d.go.value = 1
        await RisingEdge(d.clk)
        d.go.value = 0
        for n in range(timeout):
            await RisingEdge(d.clk)
            if high(d.done):
                assert not high(d.busy) or True
                return int(d.err_code.value), int(d.err_info.value), n + 1
        v = d.u_vec
        st = {n: int(getattr(v, n).value) for n in ("state", "rj_left", "ex_left", "wn", "wj_left", "pipe_n",
                                                   "ob_v", "rd_busy", "wr_busy", "cnt", "nel")}
        raise AssertionError(f"instruction {word & 0xFF:#x} did not finish in {timeout} cycles: {st}")

    async def drain(self):
        """What the shell does after a fault: abort the unit and its masters until they are idle."""
        d = self.dut
        d.abort_req.value = 1
        for _ in range(20000):
            await RisingEdge(d.clk)
            if not high(d.busy) and not high(d.u_vec.rd_busy) and not high(d.u_vec.wr_busy):
                break
        await ClockCycles(d.clk, 2)
        d.abort_req.value = 0
        await ClockCycles(d.clk, 2)

    def read(self, b: Build, i: int) -> bytes:
        off, cap, _, _ = b.maps[i]
        return self.ddr.read(ACT_BASE + off, cap)


# ---------------------------------------------------------------- cases
def case_embed(rng, ntok: int, width: int, vocab: int, kind: str = "normal"):
    b = Build()
    tab = rng.integers(-128, 128, (vocab, width)).astype(np.int8)
    tab[0] = 0
    tab[1] = -128
    sc = values(rng, (vocab,), kind if kind != "zero" else "normal")
    r_tab = b.region(tab.tobytes(), pg.R_I8ROWS, vocab, width)
    r_sc = b.region(sc.astype("<f4").tobytes(), pg.R_F32, 1, vocab)
    ids = rng.integers(0, vocab, ntok).astype(np.uint32)
    ids[0] = vocab - 1
    idb = np.zeros(cdiv(ntok, 4) * 4, "<u4")
    idb[:ntok] = ids
    b.buffer(pg.B_IDS, 1, idb.nbytes, idb.tobytes(), idx=0)
    dst = b.buffer(pg.B_F32, width, tile_bytes(ntok, width))
    y = (tab[ids].astype(F32) * sc[ids][:, None]).astype(F32)
    return b, instr(pg.EMBED, dst, [0, r_tab, r_sc]), {dst: (y, width)}


def case_relu2(rng, ntok: int, width: int, kind: str = "normal"):
    b = Build()
    gate, up = values(rng, (ntok, width), kind), values(rng, (ntok, width), "normal")
    if kind == "big":   # (r*r) overflows for |gate| > 1.8e19: keep the products finite
        gate = (gate * F32(1e-20)).astype(F32)
    garbage = rng.standard_normal((2, ntok, cdiv(width, Q) * Q)).astype(F32)
    gi = b.buffer(pg.B_F32, width, tile_bytes(ntok, width), pack_tiles(gate, garbage[0]))
    ui = b.buffer(pg.B_F32, width, tile_bytes(ntok, width), pack_tiles(up, garbage[1]))
    dst = b.buffer(pg.B_F32, width, tile_bytes(ntok, width))
    return b, instr(pg.ACT_MUL, dst, [gi, ui]), {dst: (nx.relu2_mul(gate, up), width)}


def case_add(rng, ntok: int, width: int, kind: str = "normal"):
    b = Build()
    x, y = values(rng, (ntok, width), kind), values(rng, (ntok, width), kind)
    y[:, ::7] = -x[:, ::7]   # exact cancellations: +0
    garbage = rng.standard_normal((2, ntok, cdiv(width, Q) * Q)).astype(F32)
    xi = b.buffer(pg.B_F32, width, tile_bytes(ntok, width), pack_tiles(x, garbage[0]))
    yi = b.buffer(pg.B_F32, width, tile_bytes(ntok, width), pack_tiles(y, garbage[1]))
    dst = b.buffer(pg.B_F32, width, tile_bytes(ntok, width))
    return b, instr(pg.ADD, dst, [xi, yi]), {dst: ((x + y).astype(F32), width)}


def case_rope(rng, ntok: int, heads: int, d: int, pos0: int, kind: str = "normal"):
    """cos/sin tables as the compiler stores them (numerics.rope_tables, region [max_pos, D/2]); the
    reference is the program executor's: numerics.rope at positions pos0 + t."""
    b = Build()
    max_pos = pos0 + ntok + 3
    cos, sin = nx.rope_tables(d, max_pos, 10000.0)
    rc = b.region(cos.astype("<f4").tobytes(), pg.R_F32, max_pos, d // 2)
    rs = b.region(sin.astype("<f4").tobytes(), pg.R_F32, max_pos, d // 2)
    width = heads * d
    x = values(rng, (ntok, width), kind)
    garbage = rng.standard_normal((ntok, cdiv(width, Q) * Q)).astype(F32)
    src = b.buffer(pg.B_F32, width, tile_bytes(ntok, width), pack_tiles(x, garbage))
    dst = b.buffer(pg.B_F32, width, tile_bytes(ntok, width))
    pos = np.arange(pos0, pos0 + ntok)
    y = nx.rope(x.reshape(ntok, heads, d), cos[pos], sin[pos]).reshape(ntok, width)
    return b, instr(pg.ROPE, dst, [src, heads, rc, rs]), {dst: (y, width)}


def pack_i8(q: np.ndarray) -> bytes:
    """int8 [ntok, K] -> the i8 slot layout (docs/registers.md; host/driver.pack_q): per token
    ceil(ceil(K/G)/2) beats, group g in bytes 0..G-1 of the 8-byte slot g, zeros elsewhere."""
    ntok, k = q.shape
    ng = cdiv(k, G)
    out = np.zeros((ntok, 2 * cdiv(ng, 2), 8), np.int8)
    qp = np.zeros((ntok, ng * G), np.int8)
    qp[:, :k] = q
    out[:, :ng, :G] = qp.reshape(ntok, ng, G)
    return out.tobytes()


def case_norm(rng, ntok: int, width: int, kind: str, gain: bool, eps: float = 1e-6):
    """NORM_QUANT as the compiler encodes it (flag F_NORM: f2 the gain region [1, width], f3 eps as
    float32 bits; without it q and s of quant_act alone); the reference is numerics.norm_quant, as the
    program executor calls it. Row 0 is all zeros when ntok > 2 (m = 1e-5, e = 0, S = 0)."""
    b = Build()
    x = values(rng, (ntok, width), kind)
    if ntok > 2:
        x[0] = 0
    g = None
    if gain:   # RMSNorm gains: mixed signs and magnitudes around 1, some exact 0 and 1
        g = (rng.standard_normal(width) * np.exp2(rng.integers(-3, 2, width))).astype(F32)
        g[::11] = 1
        g[5::13] = 0
        if kind == "big":   # keep u = x*g finite
            g = np.clip(g, -1, 1).astype(F32)
    garbage = rng.standard_normal((ntok, cdiv(width, Q) * Q)).astype(F32)
    src = b.buffer(pg.B_F32, width, tile_bytes(ntok, width), pack_tiles(x, garbage))
    qi = b.buffer(pg.B_I8, width, ntok * cdiv(cdiv(width, G), 2) * 16)
    si = b.buffer(pg.B_SCALE, 1, cdiv(ntok, 4) * 16)
    e32 = F32(eps)
    f = [qi, si, 0, int(np.array(e32).view(np.uint32))]
    if gain:
        f[2] = b.region(g.astype("<f4").tobytes(), pg.R_F32, 1, width)
    q, sc = nx.norm_quant(x, g, float(e32) if gain else None)
    sb = np.zeros(cdiv(ntok, 4) * 4, "<f4")
    sb[:ntok] = sc
    word = instr(pg.NORM_QUANT, src, f, pg.F_NORM if gain else 0)
    return b, word, {qi: pack_i8(q), si: sb.tobytes()}


def check(tb: TB, b: Build, ntok: int, expect: dict, what: str):
    for i, (y, width) in ((i, v) for i, v in expect.items() if isinstance(v, tuple)):
        got = unpack_tiles_full(tb.read(b, i)[:tile_bytes(ntok, width)], ntok, width)
        want = np.zeros_like(got)
        want[:, :width] = np.ascontiguousarray(y, dtype="<f4").view(np.uint32)
        bad = np.argwhere(got != want)
        assert bad.size == 0, (f"{what}: {len(bad)} words differ (token, column, got, want): "
                               + ", ".join(f"({t}, {c}, {got[t, c]:#010x}, {want[t, c]:#010x})" for t, c in bad[:8]))
    for i, want in ((i, v) for i, v in expect.items() if isinstance(v, bytes)):
        got = tb.read(b, i)[:len(want)]
        bad = [j for j in range(len(want)) if got[j] != want[j]]
        assert not bad, (f"{what}: buffer {i}: {len(bad)} bytes differ (byte, got, want): "
                         + ", ".join(f"({j}, {got[j]:#04x}, {want[j]:#04x})" for j in bad[:12]))


async def run_case(tb: TB, case, ntok: int, what: str, timeout: int = 400_000):
    b, word, expect = case[:3]
    pos0 = case[3] if len(case) > 3 else 0
    tb.load(b)
    code, info, cyc = await tb.exec(word, ntok, pos0, timeout)
    assert code == 0, f"{what}: error {code} info {info:#x}"
    check(tb, b, ntok, expect, what)
    return cyc


def cases(rng):
    out = []
    for ntok, width, kind in ((1, 64, "normal"), (1, 37, "normal"), (3, 100, "sub"), (5, 48, "zero"),
                              (6, 300, "normal"), (9, 21, "big")):
        out.append((f"relu2 ntok={ntok} width={width} {kind}", ntok, case_relu2(rng, ntok, width, kind)))
    for ntok, width, vocab, kind in ((1, 64, 50, "normal"), (3, 37, 70, "normal"), (6, 21, 9, "sub"),
                                     (2, 16, 5, "big")):
        out.append((f"embed ntok={ntok} width={width} vocab={vocab} {kind}", ntok,
                    case_embed(rng, ntok, width, vocab, kind)))
    for ntok, width, kind in ((1, 80, "normal"), (3, 37, "sub"), (6, 300, "big"), (2, 20, "zero")):
        out.append((f"add ntok={ntok} width={width} {kind}", ntok, case_add(rng, ntok, width, kind)))
    # D = 6: D/2 off the lanes (one element per cycle at VL = 4); D = 96: the 0.73B head, 5 tokens (two tiles)
    for ntok, heads, d, pos0, kind in ((1, 4, 16, 7, "normal"), (3, 3, 6, 0, "normal"), (6, 2, 64, 100, "sub"),
                                       (2, 1, 32, 1, "big"), (5, 2, 96, 3, "normal")):
        out.append((f"rope ntok={ntok} heads={heads} D={d} pos0={pos0} {kind}", ntok,
                    (*case_rope(rng, ntok, heads, d, pos0, kind), pos0)))
    # K off the group size G and the beat (odd group counts leave an empty last slot), 1..8 tokens (8: two
    # full beats of scales; 3, 5: a part-filled last beat), and a tile boundary past MAXTOK
    for ntok, width, kind, gain in ((1, 64, "normal", True), (3, 37, "normal", False), (5, 23, "sub", True),
                                    (2, 300, "big", True), (8, 41, "normal", True), (1, 16, "sub", False)):
        out.append((f"norm_quant ntok={ntok} width={width} {kind} gain={int(gain)}", ntok,
                    case_norm(rng, ntok, width, kind, gain)))
    return out


@cocotb.test()
async def ops(dut):
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(5)
    for what, ntok, case in cases(rng)[::3] if QUICK else cases(rng):
        cyc = await run_case(tb, case, ntok, what)
        dut._log.info("%s: %d cycles", what, cyc)


@cocotb.test()
async def backpressure(dut):
    tb = TB(dut, latency=30)
    await tb.reset()
    tb.pauses(True)
    rng = np.random.default_rng(11)
    for what, ntok, case in cases(rng)[1::6] if QUICK else cases(rng)[::2]:
        await run_case(tb, case, ntok, what + " (backpressure)")


@cocotb.test()
async def faults(dut):
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(3)

    async def expect(case, ntok, code, what, info=None, **load):
        b, word, _ = case
        tb.load(b, **load)
        dut._log.info("fault case: %s", what)
        got, ginfo, _ = await tb.exec(word, ntok, timeout=20_000)
        assert got == ERR[code], f"{what}: error {got}, expected {code} ({ERR[code]})"
        want = (word & 0xFF) if info is None else info
        assert ginfo == want, f"{what}: ERR_INFO {ginfo:#x}, expected {want:#x}"

    # a buffer past ACT_SIZE, a map index past the arena, a capacity too small for NTOK
    c = case_relu2(rng, 3, 40)
    await expect(c, 3, "RANGE", "dst past ACT_SIZE", act_size=c[0].maps[3][0] + 16)
    c = case_relu2(rng, 5, 40)
    c[0].maps[2] = (c[0].maps[2][0], tile_bytes(4, 40), 40, pg.B_F32)
    await expect(c, 5, "RANGE", "up buffer smaller than 5 tokens")
    c = case_relu2(rng, 3, 40)
    await expect(c, 3, "RANGE", "buffer index past the map", act_size=16 * 2)
    # wrong dtype, wrong width, NTOK 0, SwiGLU (not in this build), a region of the wrong kind
    c = case_relu2(rng, 2, 40)
    c[0].maps[1] = (*c[0].maps[1][:3], pg.B_I8)
    await expect(c, 2, "FIELD", "gate buffer of dtype i8")
    c = case_relu2(rng, 2, 40)
    c[0].maps[2] = (*c[0].maps[2][:2], 41, pg.B_F32)
    await expect(c, 2, "FIELD", "up buffer of another width")
    await expect(case_relu2(rng, 2, 40), 0, "FIELD", "NTOK 0")
    b, word, e = case_relu2(rng, 2, 40)
    await expect((b, word | pg.F_SILU << 8, e), 2, "FIELD", "SwiGLU")
    c = case_embed(rng, 2, 32, 10)
    c[0].regions[c[1] >> 64 & 0xFFFFFFFF].kind = pg.R_F32
    await expect(c, 2, "FIELD", "embedding table of kind f32")
    c = case_embed(rng, 2, 32, 10)
    await expect(c, 2, "RANGE", "embedding table past WGT_SIZE", wgt_size=len(c[0].wgt) - 64)
    # the region sizes the shared multiplier gives (saturated past 2**33): rows x width far past any
    # region, a table of more bytes than its region holds, an offset with bits above 31
    c = case_embed(rng, 2, 32, 10)
    c[0].regions[c[1] >> 64 & 0xFFFFFFFF].n = 1 << 31
    await expect(c, 2, "RANGE", "embedding table of 2**31 rows")
    c = case_embed(rng, 2, 32, 10)
    c[0].regions[c[1] >> 96 & 0xFFFFFFFF].nbytes -= 16
    await expect(c, 2, "RANGE", "embedding scales one beat short of their region")
    c = case_embed(rng, 2, 32, 10)
    c[0].regions[c[1] >> 64 & 0xFFFFFFFF].offset += 1 << 32
    await expect(c, 2, "RANGE", "embedding table at an offset past 2**32")
    # RoPE positions past the tables, heads x D != width
    b, word, e = case_rope(rng, 2, 2, 8, 0)
    tb.load(b)
    got, _, _ = await tb.exec(word, 2, pos0=4)
    assert got == ERR["RANGE"], f"RoPE at positions 4, 5 of a 5-row table: error {got}"
    b, word, e = case_rope(rng, 2, 2, 8, 0)
    await expect((b, word + (1 << 64), e), 2, "FIELD", "RoPE heads x D != width")
    b, word, e = case_rope(rng, 2, 2, 8, 0)
    b.regions[1].nbytes -= 16
    await expect((b, word, e), 2, "RANGE", "RoPE sin table one beat short of its region")
    # NORM_QUANT: a gain of another length, q of another width, src wider than the row buffer, a q
    # buffer too small for NTOK, a DECERR on token 1's row (requested during token 0's pass 2: it may end
    # the instruction before token 0's q and s are out)
    b, word, e = case_norm(rng, 2, 40, "normal", True)
    b.regions[-1].k = 39
    await expect((b, word, e), 2, "FIELD", "NORM_QUANT gain of 39 for a width of 40")
    c = case_norm(rng, 2, 40, "normal", False)
    c[0].maps[2] = (*c[0].maps[2][:2], 41, pg.B_I8)
    await expect(c, 2, "FIELD", "NORM_QUANT q of width 41")
    c = case_norm(rng, 1, VMAX + 1, "normal", False)
    await expect(c, 1, "FIELD", "NORM_QUANT width past VMAX")
    c = case_norm(rng, 3, 40, "normal", True)
    c[0].maps[2] = (c[0].maps[2][0], 2 * 4 * 16, 40, pg.B_I8)
    await expect(c, 3, "RANGE", "NORM_QUANT q buffer of 2 tokens")
    b, word, e = case_norm(rng, 3, 40, "normal", True)
    lo = ACT_BASE + b.maps[1][0]
    tb.faults.read_err = [(lo + 64, lo + 80, AxiResp.DECERR)]
    await expect((b, word, e), 3, "AXI_READ", "DECERR on NORM_QUANT's src", info=int(AxiResp.DECERR))
    await tb.drain()
    tb.faults.read_err = []
    # a token id past the table: reported when it is read, earlier tokens are written
    b, word, e = case_embed(rng, 3, 32, 10)
    ids = np.frombuffer(b.data[0], "<u4").copy()
    ids[2] = 10
    b.data[0] = ids.tobytes()
    await expect((b, word, e), 3, "RANGE", "token id past the table")
    # AXI faults: a DECERR on an operand row, a SLVERR on the result
    b, word, e = case_relu2(rng, 3, 40)
    lo = ACT_BASE + b.maps[2][0]
    tb.faults.read_err = [(lo + 64, lo + 80, AxiResp.DECERR)]
    await expect((b, word, e), 3, "AXI_READ", "DECERR on the up buffer", info=int(AxiResp.DECERR))
    await tb.drain()
    tb.faults.read_err = []
    b, word, e = case_relu2(rng, 3, 40)
    lo = ACT_BASE + b.maps[3][0]
    tb.faults.write_err = [(lo, lo + 16)]
    await expect((b, word, e), 3, "AXI_WRITE", "SLVERR on dst", info=int(AxiResp.SLVERR))
    await tb.drain()
    tb.faults.write_err = []
    # the unit computes correctly afterwards
    for what, ntok, case in cases(rng)[:3] + [("norm_quant", 3, case_norm(rng, 3, 37, "normal", True))]:
        await run_case(tb, case, ntok, what + " after faults", timeout=50_000)
