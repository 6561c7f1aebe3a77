"""cocotb bench: the whole accelerator shell (edgestream_accel) running real program.bin images.

cocotbext-axi's AXI-Lite master drives the registers and sim/sim_server.py's DDR model (an AXI RAM with
a fixed read latency and fault windows) is the memory. Programs are built with edgestream.program;
their TLMM regions are packed by compiler.lowering.pack_region under the shell configuration
(edgestream.regmap.shell_config: G=5, T=1, Q=16, CB=8, MAXTOK 8; the bench config's "T" and "Q"
replace T and Q, with the RTL built for the same geometry and config ID), beta regions are float32
padded to whole row batches, and the buffer map and the activation buffers follow docs/registers.md
("Memory layouts": a result or beta unit is Q float32, U = 4*Q bytes). Every result is compared
bit-exact with numpy: edgestream.tlmm (ternary G-index and bit-serial references, checked against
the dense matmul) and edgestream.numerics.dequant.

Tests: `programs` (ternary, INT8/INT4/INT2 bit-serial, fused members, NTOK 1/3/8/13, host stops and
restarts), `faults` (each fault code, then SOFT_RESET and a correct run), `overhead` (cycles from
START and between segments before the streams start) and `smoke` (small: the Icarus case).
"""

from __future__ import annotations

import struct
from dataclasses import replace

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster
from cocotbext.axi.constants import AxiResp
from sim_server import PERIOD_NS, DdrModel, Faults, weight_buses
from tb_common import bench_config, high

from edgestream import program as pg
from edgestream import regmap as rm
from edgestream.compiler.lowering import k_tiles, region_image, region_kind
from edgestream.formats.ternary import pack_gindex
from edgestream.host.devices.ddr_profile import DdrProfile
from edgestream.numerics import dequant
from edgestream.tlmm import bit_planes, dense_matmul, tlmm_bitserial, tlmm_ternary


def bench_hw():
    """The shell configuration, with T, Q, the weight ports and their buffer from the bench config when
    it sets them."""
    bc = bench_config()
    cfg = rm.shell_config()
    geo = {k: int(bc[k]) for k in ("T", "Q", "axi_ports", "wbuf_kib", "max_k") if k in bc}
    return replace(cfg, **geo).validate("bench configuration") if geo else cfg


def bench_ddr(latency: int) -> DdrProfile:
    """The memory system: the kv260 DDR model (shared bandwidth, jitter, AR backpressure, responses out
    of order across IDs) unless the bench config asks for the ideal fixed-latency RAM."""
    if bench_config().get("ddr", "kv260") == "ideal":
        return DdrProfile.ideal(latency)
    from edgestream.compiler.targets import load_target

    return DdrProfile.of_target(load_target(bench_config().get("ddr", "kv260")), CFG.clock_mhz, latency=latency)


CFG = bench_hw()
G, T, Q, MT = CFG.G, CFG.T, CFG.Q, CFG.max_tok
U = 4 * Q  # bytes of a result / beta unit (one row batch of one token: Q float32)
SPB = rm.DATA_BYTES // 8  # activation group slots per beat
MEM = 8 << 20
PROG_BASE, WGT_BASE, ACT_BASE = 0x1000, 0x40000, 0x200000
F32 = np.float32


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def abt(klen: int) -> int:
    """Activation beats per token."""
    return cdiv(cdiv(klen, G), SPB)


# ---------------------------------------------------------------- program builder
class Build:
    """A program.bin with its weight image, buffer map and the expected results of its linears."""

    def __init__(self, max_tok: int, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.max_tok = max_tok
        self.regions: list[pg.Region] = []
        self.buffers = [pg.Buffer("ids", pg.B_IDS, 1)]
        self.instrs: list[pg.Instr] = []
        self.wgt = bytearray()
        self.caps = {0: (0, 0)}  # buffer -> (arena offset, capacity); capacity 0: not mapped
        self.acts: dict[int, tuple[int, int]] = {}  # q buffer -> (scale buffer, klen)
        self.linears: list[dict] = []
        self.arena_end = 0

    # buffers in the arena (offsets fixed once the map size is known: allocated from 4 KiB)
    def buffer(self, name: str, dtype: int, width: int, nbytes: int) -> int:
        self.buffers.append(pg.Buffer(name, dtype, width))
        i = len(self.buffers) - 1
        off = 0x1000 + self.arena_end
        self.arena_end += cdiv(nbytes, 64) * 64
        self.caps[i] = (off, nbytes)
        return i

    def act(self, klen: int) -> int:
        """A q (i8) buffer and its per-token scale buffer."""
        q = self.buffer(f"q{len(self.buffers)}", pg.B_I8, klen, self.max_tok * abt(klen) * 16)
        s = self.buffer(f"s{len(self.buffers)}", pg.B_SCALE, 1, cdiv(self.max_tok, 4) * 16)
        self.acts[q] = (s, klen)
        return q

    def _wdata(self, blob: bytes, align: int) -> int:
        self.wgt += b"\0" * ((-len(self.wgt)) % align)
        off = len(self.wgt)
        self.wgt += blob
        return off

    def tlmm_region(self, w: np.ndarray, kind: str, bits: int, k0: int = 0) -> int:
        blob, lay = region_image(CFG, w, kind, bits)
        off = self._wdata(blob, 4096)
        self.regions.append(pg.Region(off, lay["nbytes"], region_kind(CFG, kind), bits, w.shape[0], w.shape[1], k0,
                                      lay["rows_padded"], lay["cols_padded"], lay["stripes"]))
        return len(self.regions) - 1

    def f32_region(self, a: np.ndarray) -> int:
        off = self._wdata(np.asarray(a, "<f4").tobytes(), 64)
        self.regions.append(pg.Region(off, a.size * 4, pg.R_F32, 32, 1, a.size, 0, 1, a.size))
        return len(self.regions) - 1

    def weights(self, n: int, klen: int, kind: str, bits: int) -> np.ndarray:
        if kind == "ternary":
            return self.rng.integers(-1, 2, (n, klen)).astype(np.int8)
        lo = -(1 << (bits - 1))
        return self.rng.integers(lo, -lo, (n, klen)).astype(np.int8)

    def linear(self, q: int, kind: str, bits: int, widths: list[int], load: bool = True) -> dict:
        """LOAD_ACT/BUILD_TABLE (unless load=False: reuse the loaded activations), TLMM, one DEQUANT per
        width. K > MAXK: one LOAD_ACT/BUILD_TABLE/TLMM per K tile as the lowering splits it
        (compiler.lowering.k_tiles), later tiles with F_ACCUMULATE."""
        s, klen = self.acts[q]
        n = sum(widths)
        w = self.weights(n, klen, kind, bits)
        for k0, kl in k_tiles(CFG, klen):
            r = self.tlmm_region(w[:, k0:k0 + kl], kind, bits, k0)
            if load:
                self.instrs.append(pg.Instr(pg.LOAD_ACT, 0, q, [k0, kl]))
                self.instrs.append(pg.Instr(pg.BUILD_TABLE, 0, 0, [G]))
            fl = (pg.F_BITSERIAL if kind == "int" else 0) | (pg.F_ACCUMULATE if k0 else 0)
            self.instrs.append(pg.Instr(pg.TLMM, fl, r, [n, 0, bits if kind == "int" else 0]))
        lin = {"q": q, "s": s, "w": w, "kind": kind, "bits": bits, "members": []}
        col = 0
        for wd in widths:
            rbs = cdiv(wd, Q)
            beta = np.zeros(rbs * Q, F32)
            beta[:wd] = self.rng.uniform(0.5, 2.0, wd).astype(F32) * F32(2.0 ** self.rng.integers(-8, 8))
            br = self.f32_region(beta)
            dst = self.buffer(f"y{len(self.buffers)}", pg.B_F32, wd, cdiv(self.max_tok, MT) * rbs * MT * U)
            self.instrs.append(pg.Instr(pg.DEQUANT, pg.F_PER_CHANNEL, dst, [col, wd, s, br]))
            lin["members"].append({"dst": dst, "col": col, "width": wd, "beta": beta[:wd]})
            col += wd
        self.linears.append(lin)
        return lin

    def op(self, op: int, a: int = 0, f: list[int] | None = None, flags: int = 0) -> int:
        self.instrs.append(pg.Instr(op, flags, a, f or []))
        return len(self.instrs) - 1

    def program(self, config_id: str | None = None) -> pg.Program:
        return pg.Program(config_id or CFG.config_id, G, self.regions, self.buffers, self.instrs, T, Q, CFG.CB)

    def map_bytes(self, overrides: dict | None = None) -> bytes:
        """The buffer map: one beat per program buffer (offset, capacity, width, dtype)."""
        out = b""
        for i, b in enumerate(self.buffers):
            off, cap = self.caps[i]
            e = {"off": off, "cap": cap, "width": b.width, "dtype": b.dtype}
            e.update((overrides or {}).get(i, {}))
            out += struct.pack("<IIIB3x", e["off"], e["cap"], e["width"], e["dtype"])
        return out

    @property
    def act_size(self) -> int:
        return 0x1000 + self.arena_end


def pack_q(q: np.ndarray) -> bytes:
    """i8 buffer layout: per token abt beats, group g in bytes 0..G-1 of 8-byte slot g."""
    ntok, klen = q.shape
    ng = cdiv(klen, G)
    out = np.zeros((ntok, abt(klen) * SPB, 8), np.int8)
    qp = np.zeros((ntok, ng * G), np.int8)
    qp[:, :klen] = q
    out[:, :ng, :G] = qp.reshape(ntok, ng, G)
    return out.tobytes()


def unpack_tiles(raw: bytes, ntok: int, width: int) -> np.ndarray:
    """f32 tile layout -> [ntok, width] (uint32 bit patterns)."""
    rbs = cdiv(width, Q)
    a = np.frombuffer(raw, "<u4")
    y = np.zeros((ntok, rbs * Q), np.uint32)
    for j in range(cdiv(ntok, MT)):
        t0, nt = j * MT, min(MT, ntok - j * MT)
        base = j * rbs * MT * Q
        blk = a[base : base + rbs * nt * Q].reshape(rbs, nt, Q)
        y[t0 : t0 + nt] = blk.transpose(1, 0, 2).reshape(nt, rbs * Q)
    return y[:, :width]


def reference_acc(lin: dict, q: np.ndarray) -> np.ndarray:
    w = lin["w"]
    dense = dense_matmul(q, w)
    if lin["kind"] == "ternary":
        acc = tlmm_ternary(q, pack_gindex(w, G), G)
    else:
        acc = tlmm_bitserial(q, bit_planes(w, lin["bits"], G), lin["bits"], G)
    assert np.array_equal(acc, dense), "TLMM reference disagrees with the dense matmul"
    return acc


# ---------------------------------------------------------------- the bench
class TB:
    def __init__(self, dut, latency: int):
        self.dut = dut
        self.latency = latency
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        self.faults = Faults()
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst_n, reset_active_level=False)
        self.ddr = DdrModel(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst_n, MEM, bench_ddr(latency), self.faults,
                            weight_buses(dut, CFG.axi_ports))
        self.cycle = 0
        self.events: list[tuple] = []  # (cycle, what, detail)
        self.ars: list[tuple] = []  # (cycle, ARID, ARADDR)
        self.build: Build | None = None
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            self.cycle += 1
            if high(d.m_axi_arvalid) and high(d.m_axi_arready):
                self.events.append((self.cycle, "ar", int(d.m_axi_arid.value)))
                self.ars.append((self.cycle, int(d.m_axi_arid.value), int(d.m_axi_araddr.value)))
            if high(d.m_axi_bvalid) and high(d.m_axi_bready):
                self.events.append((self.cycle, "b", 0))
            if (high(d.s_axil_awvalid) and high(d.s_axil_wvalid) and high(d.s_axil_awready)
                    and int(d.s_axil_awaddr.value) == rm.REG["CTRL"] and int(d.s_axil_wdata.value) & rm.CTRL_START):
                self.events.append((self.cycle, "start", 0))

    async def reset(self):
        self.dut.rst_n.value = 0
        await ClockCycles(self.dut.clk, 8)
        self.dut.rst_n.value = 1
        await ClockCycles(self.dut.clk, 2)
        # the bench waits on the interrupt line, as a board's driver does
        await self.wr("IRQ_EN", 1)

    async def rd(self, name: str) -> int:
        return int(await self.axil.read_dword(rm.REG[name]))

    async def wr(self, name: str, v: int):
        await self.axil.write_dword(rm.REG[name], v & 0xFFFFFFFF)

    # ---- loading
    async def load(self, b: Build, prog: bytes | None = None, map_overrides: dict | None = None,
                   wgt_size: int | None = None, prog_size: int | None = None):
        self.build = b
        prog = prog if prog is not None else b.program().encode()
        self.ddr.write(PROG_BASE, prog)
        self.ddr.write(WGT_BASE, bytes(b.wgt))
        self.ddr.write(ACT_BASE, b.map_bytes(map_overrides))
        for name, v in (("PROG_BASE_LO", PROG_BASE), ("PROG_BASE_HI", 0), ("PROG_SIZE", prog_size or len(prog)),
                        ("WGT_BASE_LO", WGT_BASE), ("WGT_BASE_HI", 0), ("WGT_SIZE", wgt_size or len(b.wgt)),
                        ("ACT_BASE_LO", ACT_BASE), ("ACT_BASE_HI", 0), ("ACT_SIZE", b.act_size)):
            await self.wr(name, v)

    def inputs(self, ntok: int, rng) -> dict:
        """Fresh activations and scales for every q buffer, and poisoned result buffers."""
        b = self.build
        data = {}
        for qb, (sb, klen) in b.acts.items():
            q = rng.integers(-128, 128, (ntok, klen)).astype(np.int8)
            s = (rng.uniform(0.5, 2.0, ntok) * 2.0 ** rng.integers(-12, 0, ntok)).astype(F32)
            sp = np.zeros(cdiv(ntok, 4) * 4, F32)
            sp[:ntok] = s
            self.ddr.write(ACT_BASE + b.caps[qb][0], pack_q(q))
            self.ddr.write(ACT_BASE + b.caps[sb][0], sp.astype("<f4").tobytes())
            data[qb] = (q, s)
        for lin in b.linears:
            for m in lin["members"]:
                off, cap = b.caps[m["dst"]]
                self.ddr.write(ACT_BASE + off, b"\xa5" * cap)
        return data

    def check(self, ntok: int, data: dict, linears: list[dict] | None = None):
        b = self.build
        for li, lin in enumerate(linears if linears is not None else b.linears):
            q, s = data[lin["q"]]
            acc = reference_acc(lin, q)
            for m in lin["members"]:
                off, cap = b.caps[m["dst"]]
                rbs = cdiv(m["width"], Q)
                raw = self.ddr.read(ACT_BASE + off, cdiv(ntok, MT) * rbs * MT * U)
                got = unpack_tiles(raw, ntok, m["width"])
                want = dequant(acc[:, m["col"] : m["col"] + m["width"]], s, m["beta"]).view(np.uint32)
                bad = np.argwhere(got != want)
                assert not len(bad), (f"linear {li} ({lin['kind']}{lin['bits']}) member at column {m['col']}, "
                                      f"ntok {ntok}: {len(bad)} mismatches, first {bad[:3].tolist()}: "
                                      f"got {got[tuple(bad[0])]:08x} want {want[tuple(bad[0])]:08x}")

    # ---- running
    async def run(self, pc: int, ntok: int, timeout: int = 400_000) -> int:
        await self.wr("PC", pc)
        await self.wr("NTOK", ntok)
        await self.wr("CTRL", rm.CTRL_START)
        return await self.wait_idle(timeout)

    async def wait_idle(self, timeout: int) -> int:
        end = self.cycle + timeout
        await ClockCycles(self.dut.clk, 2)
        while True:
            st = await self.rd("STATUS")
            if not st & rm.STATUS_BUSY:
                return st
            assert self.cycle < end, f"run did not finish within {timeout} cycles (STATUS {st:#x})"
            if not high(self.dut.irq):
                await First(RisingEdge(self.dut.irq), ClockCycles(self.dut.clk, 2000))

    async def expect_stop(self, st: int, what: str, stop_pc: int, instrs: int | None = None):
        want = {"done": rm.STATUS_DONE, "host": rm.STATUS_HOST}[what]
        if st & rm.STATUS_ERROR:
            code, info = await self.rd("ERR_CODE"), await self.rd("ERR_INFO")
            raise AssertionError(f"expected {what} at {stop_pc}, got error {rm.ERR_NAMES.get(code & 0xFF)} at "
                                 f"instruction {code >> 16}, info {info:#x}")
        assert st == want, f"STATUS {st:#x}, expected {what}"
        assert high(self.dut.irq)
        assert await self.rd("STOP_PC") == stop_pc
        if instrs is not None:
            assert await self.rd("INSTR_COUNT") == instrs

    async def expect_error(self, st: int, err: str, pc: int, info: int | None = None):
        code = await self.rd("ERR_CODE")
        got = rm.ERR_NAMES.get(code & 0xFF, hex(code & 0xFF))
        assert st & rm.STATUS_ERROR and not st & (rm.STATUS_DONE | rm.STATUS_HOST), f"STATUS {st:#x}, expected {err}"
        assert (got, code >> 16) == (err, pc), f"error {got} at {code >> 16}, expected {err} at {pc}"
        if info is not None:
            assert await self.rd("ERR_INFO") == info, f"ERR_INFO {await self.rd('ERR_INFO'):#x}, expected {info:#x}"
        assert await self.rd("STOP_PC") == pc
        assert high(self.dut.irq)

    async def soft_reset(self):
        await self.wr("CTRL", rm.CTRL_SOFT_RESET)
        for _ in range(1000):
            st = await self.rd("STATUS")
            if st == 0:
                return
        raise AssertionError(f"soft reset did not finish (STATUS {st:#x})")


async def make_tb(dut, latency: int | None = None) -> TB:
    tb = TB(dut, latency if latency is not None else int(bench_config().get("latency", 100)))
    await tb.reset()
    assert await tb.rd("MAGIC") == rm.MAGIC
    assert (await tb.rd("CONFIG_ID_HI") << 32 | await tb.rd("CONFIG_ID_LO")) == int(CFG.config_id, 16)
    return tb


def main_program(max_tok: int) -> tuple[Build, dict]:
    """NORM_QUANT(host) | ternary q/k/v-like 3 members | INT8, 66 rows | INT4 on the same activations (no reload),
    2 members | ROPE(host) | INT2 2 members | ternary, K = 300, one member | END."""
    b = Build(max_tok, seed=11)
    qa = b.act(64)
    qb = b.act(37)
    qc = b.act(300)
    pcs = {"norm": b.op(pg.NORM_QUANT, qa, [qa, qa + 1, pg.NONE, 0])}
    b.linear(qa, "ternary", 2, [3 * Q, 2 * Q, Q + 2])
    b.linear(qb, "int", 8, [66])  # 17 row batches (Q = 4): beta and results in more than one burst
    b.linear(qb, "int", 4, [2 * Q, Q + 1], load=False)
    pcs["rope"] = b.op(pg.ROPE, 0, [0, 1, 0, 0])
    b.linear(qa, "int", 2, [2 * Q, 2 * Q])
    b.linear(qc, "ternary", 2, [7])
    pcs["end"] = b.op(pg.END)
    return b, pcs


@cocotb.test()
async def programs(dut):
    """Every linear kind, fused members, NTOK 1/3/8/13 (MAXTOK 8: up to two tiles), host stops."""
    tb = await make_tb(dut)
    b, pcs = main_program(13)
    await tb.load(b)
    rng = np.random.default_rng(3)
    # instructions executed by the hardware: segment 1 = 3+3 + 3+1 + 1+2, segment 2 = 3+2 + 3+1 (END is not
    # counted)
    seg1 = 6 + 4 + 3
    for ntok in (1, 3, 8, 13):
        data = tb.inputs(ntok, rng)
        st = await tb.run(pcs["norm"], ntok)
        await tb.expect_stop(st, "host", pcs["norm"], 0)
        st = await tb.run(pcs["norm"] + 1, ntok)
        await tb.expect_stop(st, "host", pcs["rope"], seg1)
        st = await tb.run(pcs["rope"] + 1, ntok)
        await tb.expect_stop(st, "done", pcs["end"], 5 + 4)
        tb.check(ntok, data)
        dut._log.info("NTOK %d: results bit-exact, last run %d cycles", ntok, await tb.rd("CYCLES_LO"))
    # another program at the same address (PROG_SIZE still covers the old one's tables): the first line
    # requested behind the header, at the old program's instruction offset, is dropped and fetched again
    b2, pcs2 = small_program(5)
    await tb.load(b2, prog_size=len(b.program().encode()))
    data = tb.inputs(5, rng)
    tb.ars.clear()
    st = await tb.run(0, 5)
    await tb.expect_stop(st, "host", pcs2["host"], 5)
    lines = [a - PROG_BASE for _, i, a in tb.ars if i == 0 and a - PROG_BASE in (b.program().instr_offset,
                                                                               b2.program().instr_offset)]
    assert lines == [b.program().instr_offset, b2.program().instr_offset], lines
    st = await tb.run(pcs2["host"] + 1, 5)
    await tb.expect_stop(st, "done", pcs2["end"], 4)
    tb.check(5, data)


def small_program(max_tok: int = 3) -> tuple[Build, dict]:
    b = Build(max_tok, seed=5)
    qa = b.act(24)
    b.linear(qa, "ternary", 2, [Q, Q + 2])  # Q = 4: 4 and 6 columns
    pcs = {"host": b.op(pg.ADD, 0, [0, 0])}
    b.linear(qa, "int", 3, [5])
    pcs["tlmm2"] = pcs["host"] + 3
    pcs["end"] = b.op(pg.END)
    return b, pcs


async def good_run(tb: TB, b: Build, pcs: dict, ntok: int, rng):
    await tb.load(b)
    data = tb.inputs(ntok, rng)
    st = await tb.run(0, ntok)
    await tb.expect_stop(st, "host", pcs["host"], 5)
    st = await tb.run(pcs["host"] + 1, ntok)
    await tb.expect_stop(st, "done", pcs["end"], 4)
    tb.check(ntok, data)


@cocotb.test()
async def smoke(dut):
    """Small program on both simulators: two segments around a host instruction (NTOK 9: two token
    tiles), a config fault, SOFT_RESET, and the program again (NTOK 2)."""
    tb = await make_tb(dut)
    b, pcs = small_program(10)
    rng = np.random.default_rng(1)
    await good_run(tb, b, pcs, 9, rng)  # two token tiles
    await tb.load(b, prog=b.program(config_id="0123456789abcdef").encode())
    st = await tb.run(0, 3)
    await tb.expect_error(st, "CONFIG", 0)
    await tb.soft_reset()
    await good_run(tb, b, pcs, 2, rng)


@cocotb.test()
async def faults(dut):
    """Each fault stops the run with its code, instruction and detail; SOFT_RESET; a correct run."""
    tb = await make_tb(dut, latency=int(bench_config().get("latency", 100)) // 2)
    good, gpcs = small_program()
    rng = np.random.default_rng(2)

    async def fault(b: Build, err: str, pc: int, info=None, start_pc: int = 0, ntok: int = 3, prog=None, **load):
        await tb.load(b, prog=prog, **load)
        tb.inputs(min(ntok, b.max_tok), rng)
        st = await tb.run(start_pc, ntok)
        await tb.expect_error(st, err, pc, info)
        tb.faults.read_err.clear()
        tb.faults.write_err.clear()
        await tb.soft_reset()
        assert await tb.rd("ERR_CODE") == 0
        await good_run(tb, good, gpcs, 3, rng)
        dut._log.info("fault %s at %d: reported, recovered", err, pc)

    # header: config ID, geometry, magic, version; the tables outside PROG_SIZE; PROG_SIZE < header
    b, pcs = small_program()
    await fault(b, "CONFIG", 0, prog=b.program(config_id="0123456789abcdef").encode())
    p = b.program()
    p.lanes_q = 2 * Q  # Q = 4: 8
    await fault(b, "CONFIG", 1, start_pc=1, prog=p.encode())
    raw = bytearray(b.program().encode())
    raw[0:4] = b"ESPX"
    await fault(b, "HEADER", 0, prog=bytes(raw))
    raw = bytearray(b.program().encode())
    raw[4] = 1
    await fault(b, "HEADER", 0, prog=bytes(raw))
    full = b.program().encode()
    names = sum(len(x.name.encode()) for x in b.buffers)
    await fault(b, "RANGE", 0, prog=full, prog_size=len(full) - names - 16)
    await fault(b, "HEADER", 0, prog=full, prog_size=48)
    # PC past the end, and a program without END
    await fault(b, "PROG_END", len(b.instrs), start_pc=len(b.instrs))
    b2, _ = small_program()
    b2.instrs.pop()
    await fault(b2, "PROG_END", len(b2.instrs), start_pc=pcs["host"] + 1)
    # opcodes: unknown, and a DEQUANT that does not follow a TLMM
    b3, _ = small_program()
    b3.instrs.insert(1, pg.Instr(0x7E))
    await fault(b3, "OPCODE", 1, 0x7E)
    await fault(b, "OPCODE", 3, pg.DEQUANT, start_pc=3)
    # fields: accumulate, k0, G, bit width, columns, dtype, width; NTOK = 0
    b4, _ = small_program()
    b4.instrs[2].flags |= pg.F_ACCUMULATE
    await fault(b4, "FIELD", 2, pg.TLMM)
    b4, _ = small_program()
    b4.instrs[0].f[0] = 5
    await fault(b4, "FIELD", 0, pg.LOAD_ACT)
    b4, _ = small_program()
    b4.instrs[1].f[0] = 4
    await fault(b4, "FIELD", 1, pg.BUILD_TABLE)
    b4, p4 = small_program()
    b4.instrs[p4["tlmm2"]].f[2] = 4  # INT3 region run as INT4
    await fault(b4, "FIELD", p4["tlmm2"], pg.TLMM, start_pc=p4["host"] + 1)
    b4, _ = small_program()
    b4.instrs[4].f[0] = Q + 1  # second member's first column is not a row-batch boundary
    await fault(b4, "FIELD", 2, pg.DEQUANT)
    b4, _ = small_program()
    b4.instrs[3].f[1] = 3  # a member width that is not a multiple of Q and is not the last
    b4.instrs[4].f[0] = 3
    await fault(b4, "FIELD", 2, pg.DEQUANT)
    b4, _ = small_program()
    b4.instrs.insert(5, pg.Instr(pg.DEQUANT, pg.F_PER_CHANNEL, b4.instrs[4].a, [2 * Q + 2, 2, 2, 1]))  # a 3rd member
    await fault(b4, "FIELD", 2, pg.DEQUANT)
    b4, _ = small_program()
    b4.instrs[2].f[0] = 2 * Q + 1  # the members add up to 2*Q + 2 rows
    await fault(b4, "FIELD", 2, pg.TLMM)
    await fault(b, "FIELD", 2, pg.DEQUANT, map_overrides={1: {"dtype": pg.B_F32}})  # q buffer
    await fault(b, "FIELD", 2, pg.DEQUANT, map_overrides={2: {"dtype": pg.B_I8}})  # scale buffer
    await fault(b, "FIELD", 2, pg.DEQUANT, map_overrides={b.instrs[4].a: {"width": 7}})
    await fault(b, "FIELD", 2, pg.TLMM, ntok=0)
    # ranges: region outside WGT_SIZE, a buffer past its capacity, a map entry outside ACT_SIZE,
    # a region index past the table
    await fault(b, "RANGE", 2, pg.TLMM, wgt_size=b.regions[0].offset + 64)
    dst = b.instrs[3].a
    await fault(b, "RANGE", 2, pg.DEQUANT, map_overrides={dst: {"cap": 32}})  # the tile layout needs MAXTOK*U
    await fault(b, "RANGE", 2, pg.DEQUANT, map_overrides={1: {"off": b.act_size - 32}})
    # a result unit is U = 4*Q bytes: a dst buffer one beat short of its tile layout (MAXTOK units),
    # a beta region one beat short of its row batch (U bytes)
    await fault(b, "RANGE", 2, pg.DEQUANT, map_overrides={dst: {"cap": MT * U - 16}})
    b5, _ = small_program()
    b5.regions[b5.instrs[3].f[3]].nbytes = U - 16
    await fault(b5, "RANGE", 2, pg.DEQUANT)
    b5, _ = small_program()
    b5.instrs[2].a = 99
    await fault(b5, "RANGE", 2, pg.TLMM)
    b5, _ = small_program()
    b5.instrs[3].f[3] = 99  # a beta region index past the table: not fetched
    await fault(b5, "RANGE", 2, pg.DEQUANT)
    b5, _ = small_program()
    b5.instrs[4].a = 99  # a dst buffer index past the map: not fetched
    await fault(b5, "RANGE", 2, pg.DEQUANT)
    b5, _ = small_program()
    b5.instrs[0].a = 99  # LOAD_ACT's buffer index
    await fault(b5, "RANGE", 0, pg.LOAD_ACT)
    # AXI read errors (DECERR on the weights; SLVERR on the program) and a write error on a result
    tb.faults.read_err.append((WGT_BASE + b.regions[0].offset, WGT_BASE + b.regions[0].offset + 4096,
                               AxiResp.DECERR))
    await fault(b, "AXI_READ", 2, 3)
    tb.faults.read_err.append((PROG_BASE + b.program().instr_offset, PROG_BASE + 0x1000, AxiResp.SLVERR))
    await fault(b, "AXI_READ", 0, 2)
    dst = b.instrs[4].a
    tb.faults.write_err.append((ACT_BASE + b.caps[dst][0], ACT_BASE + b.caps[dst][0] + 4096))
    await fault(b, "AXI_WRITE", 2, 2)
    # an invalid ternary code in the weight image
    b6, _ = small_program()
    b6.wgt[b6.regions[0].offset + 3] = 250
    await fault(b6, "CODE", 2, 0)


@cocotb.test()
async def overhead(dut):
    """Cycles before the streams start: from START (header, instruction line, region and map entries,
    checks) and between two segments of one run (entries and checks only), at the bench latency."""
    tb = await make_tb(dut)
    b = Build(1, seed=9)
    qa = b.act(64)
    b.linear(qa, "ternary", 2, [16, 16])
    b.linear(qa, "ternary", 2, [32], load=False)
    end = b.op(pg.END)
    await tb.load(b)
    rng = np.random.default_rng(4)
    firsts = []
    for _ in range(2):  # the first run after reset has no header to speculate the first line from
        data = tb.inputs(1, rng)
        tb.events.clear()
        st = await tb.run(0, 1)
        await tb.expect_stop(st, "done", end, 3 + 2 + 1 + 1)
        tb.check(1, data)
        ev = tb.events
        t_start = next(c for c, k, _ in ev if k == "start")
        streams = [c for c, k, i in ev if k == "ar" and i in (1, 2, 3)]
        bresp = [c for c, k, _ in ev if k == "b"]
        firsts.append(streams[0] - t_start)
        seg1_end = bresp[1]  # the first segment's two members: one write burst each
        seg_gap = next(c for c in streams if c > seg1_end) - seg1_end
    first = firsts[-1]
    total = await tb.rd("CYCLES_LO")
    lat = tb.latency
    dut._log.info("latency %d: START -> first stream AR %d cycles (%.2f latencies; %d after reset), "
                  "segment -> segment %d cycles, run %d cycles, SEQ_CYCLES %d", lat, first, first / max(lat, 1),
                  firsts[0], seg_gap, total, await tb.rd("SEQ_CYCLES"))
    assert first <= 2 * (lat + 2) + 120
    assert seg_gap <= lat + 60


def ktile_program(ntok: int, kt: bool) -> tuple[Build, dict]:
    """K-tiled linears (MAXK 256 build: K = 640 as 250 + 250 + 140, K = 600 as 250 + 250 + 100) between
    single-tile ones: ternary with two fused members (35 rows), INT8 bit-serial (20 rows), a ternary
    K = 200, then a K-tiled linear of 50 rows (more than the build's KROWS = 48: on this linear-only
    shell ERR FIELD at its first TLMM, with units STATUS.HOST at its first LOAD_ACT). kt = False
    (the shipped build, MAXK 4096): the same first linear as one tile, for the cycle comparison."""
    b = Build(ntok, seed=21)
    qa = b.act(640)
    qb = b.act(600)
    qc = b.act(200)
    b.linear(qa, "ternary", 2, [2 * Q, 3])
    pcs = {"end1": len(b.instrs)}
    if kt:
        b.linear(qb, "int", 8, [20])
        b.linear(qc, "ternary", 2, [Q + 1])
        pcs["host"] = len(b.instrs)
        b.linear(qa, "ternary", 2, [50], load=True)
        pcs["after"] = len(b.instrs)
    pcs["end"] = b.op(pg.END)
    return b, pcs


@cocotb.test()
async def ktile(dut):
    """K > MAXK on the device: the engine's K-tile accumulator adds the tiles' int32 sums on chip and the
    DEQUANTs apply once, bit-exact; NTOK 1 and 6 (MAXTOK 4: two token tiles, each running the linear's
    K tiles again); a K-tiled linear of more rows than KROWS is ERR FIELD at its first TLMM
    (the linear-only shell; with units: STATUS.HOST at its first LOAD_ACT, as the cpu model tests).
    Then the cycles of the first linear alone (NTOK 1 and 4), against the shipped build's single tile
    (testcase ktile_ref)."""
    tb = await make_tb(dut)
    assert CFG.max_k == 256
    if bench_config().get("short") is not None:  # Icarus: the first linear at NTOK 6 (two token tiles)
        await ktile_cycles(tb, True, (6,))
        return
    b, pcs = ktile_program(9, True)
    await tb.load(b)
    rng = np.random.default_rng(8)
    tiles = [(i.f[0], i.f[1]) for i in b.instrs if i.op == pg.LOAD_ACT]
    assert tiles[:6] == [(0, 250), (250, 250), (500, 140), (0, 250), (250, 250), (500, 100)], tiles
    for ntok in (1, 6):
        data = tb.inputs(ntok, rng)
        st = await tb.run(0, ntok)
        cycles = await tb.rd("CYCLES_LO")
        ntt = cdiv(ntok, MT)
        # per token tile each K-tiled linear runs all its instructions (3 tiles x 3 + members)
        await tb.expect_error(st, "FIELD", pcs["host"] + 2, pg.TLMM)
        assert await tb.rd("INSTR_COUNT") == ntt * (11 + 10) + 4 + 2
        st = await tb.run(pcs["after"], ntok)
        await tb.expect_stop(st, "done", pcs["end"], 0)
        tb.check(ntok, data, b.linears[:3])
        dut._log.info("NTOK %d: K-tiled linears bit-exact, %d cycles", ntok, cycles)
    await ktile_cycles(tb, True)


@cocotb.test()
async def ktile_ref(dut):
    """The shipped build (MAXK 4096): ktile's first linear (K = 640, 35 rows) as one tile, its cycles."""
    tb = await make_tb(dut)
    await ktile_cycles(tb, False)


async def ktile_cycles(tb: TB, kt: bool, ntoks: tuple[int, ...] = (1, 4)):
    b, pcs = ktile_program(max(ntoks), kt)
    b.instrs = b.instrs[:pcs["end1"]] + [pg.Instr(pg.END)]
    await tb.load(b)
    rng = np.random.default_rng(9)
    for ntok in ntoks:
        data = tb.inputs(ntok, rng)
        st = await tb.run(0, ntok)
        await tb.expect_stop(st, "done", pcs["end1"], 11 * cdiv(ntok, MT) if kt else 5)
        tb.check(ntok, data, b.linears[:1])
        tb.dut._log.info("cycles %s K = 640 x 35 rows, NTOK %d: %d (SEQ_CYCLES %d, WGT_BEATS %d)",
                         "K-tiled (3 tiles)" if kt else "single tile", ntok, await tb.rd("CYCLES_LO"),
                         await tb.rd("SEQ_CYCLES"), await tb.rd("WGT_BEATS"))


@cocotb.test()
async def ktile_measure(dut):
    """Cycles of one ternary linear of bench config "K" x "N" rows (default 6912 x 64: the 2B4T down
    projection's K) at NTOK 1 and 4: K tiles when K > the build's MAXK, else one tile. Not in the test
    suite (benchmarks: run it on a MAXK 4096 and a MAXK 8192 build)."""
    tb = await make_tb(dut)
    k, n = int(bench_config().get("K", 6912)), int(bench_config().get("N", 64))
    b = Build(4, seed=31)
    q = b.act(k)
    b.linear(q, "ternary", 2, [n])
    end = b.op(pg.END)
    await tb.load(b)
    rng = np.random.default_rng(10)
    for ntok in (1, 4):
        data = tb.inputs(ntok, rng)
        st = await tb.run(0, ntok, timeout=4_000_000)
        await tb.expect_stop(st, "done", end)
        tb.check(ntok, data)
        dut._log.info("measure K = %d x %d rows, MAXK %d (%d tiles), NTOK %d: %d cycles, WGT_BEATS %d", k, n,
                      CFG.max_k, len(k_tiles(CFG, k)), ntok, await tb.rd("CYCLES_LO"), await tb.rd("WGT_BEATS"))
