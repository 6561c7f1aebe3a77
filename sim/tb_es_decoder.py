"""cocotb bench: the whole accelerator shell (edgestream_accel, built with its units: UNITS = 7) running a
compiled decoder's program.bin with one START per forward pass, from the embedding to the logits and
the argmax, against the CPU executor.

The artifact is a real compile (edgestream.compile_model, --target sim --hw-config shell) of a random
checkpoint written by edgestream.synth.make_checkpoint (the bench config's "artifact"). The bench is the
host the contract of /work/notes/contract14.md describes: program.bin and hw_weights.bin in DDR as they
are, an activation arena whose buffer map holds every program buffer (sized for the longest run), the
token ids in buffer 0 (u32 per token), NTOK, POS, KV_BASE/KV_SIZE (the INT8 cache region,
layers*KVH*(2*D/16+1)*16*C bytes, left alone between runs), PC = 0, START; then it reads ARGMAX and the
logits buffer. sim/sim_server.py's DDR model is the memory (kv260 profile unless the config says
"ideal").

Tests: `decode` (a prefill of 5 tokens over two token tiles, then 2 decode steps with the KV cache carried
in DDR; logits bit-identical to edgestream's CpuExecutor and ProgramExecutor, ARGMAX = their first
maximum, the counters), `faults` (ATTENTION with a KV region one position short: ERR RANGE at the first
ATTENTION with ERR_INFO 0x21 and nothing run past it; a DECERR on the KV region: ERR AXI_READ at that
ATTENTION; SOFT_RESET while the attention unit runs, then a correct run; an ACT_MUL turned SwiGLU stops
with STATUS.HOST at its index), `smoke` (one token at position 0: the Icarus case) and `perf` (cycles
per token and the unit counters, printed and written to the bench config's "report" file).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

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
from edgestream.artifact import read_artifact
from edgestream.host.devices.ddr_profile import DdrProfile
from edgestream.host.executor import CpuExecutor
from edgestream.host.program_executor import ProgramExecutor, _State
from edgestream.kv_layout import KvLayout

CFG = rm.shell_config()
G, Q, MT = CFG.G, CFG.Q, CFG.max_tok
U = 4 * Q
SPB = rm.DATA_BYTES // 8
PROG_BASE, WGT_BASE = 0x1000, 0x100000


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def f32_bytes(ntok: int, width: int) -> int:
    """The tile layout of ntok tokens (docs/registers.md)."""
    return cdiv(ntok, MT) * cdiv(width, Q) * MT * U


def buffer_bytes(b: pg.Buffer, ntok: int) -> int:
    if b.dtype == pg.B_F32:
        return f32_bytes(ntok, b.width)
    if b.dtype == pg.B_I8:
        return ntok * cdiv(cdiv(b.width, G), SPB) * 16
    return cdiv(ntok, 4) * 16  # scales, token ids: one u32 per token


def unpack_row(raw: bytes, width: int) -> np.ndarray:
    """A one-token f32 buffer (its row padded to whole units) -> uint32 bits of the width columns."""
    return np.frombuffer(raw, "<u4")[:width].copy()


class Decoder:
    """The device side of one compiled artifact: DDR images, arena, KV region; runs forward passes."""

    def __init__(self, dut, art: Path, max_tok: int, context: int, latency: int, mem: int):
        self.dut = dut
        self.art = art
        self.prog = pg.Program.decode((art / "program.bin").read_bytes())
        self.blob = self.prog.encode()
        self.wgt = (art / "hw_weights.bin").read_bytes()
        self.model = read_artifact(art).config
        c = self.model
        self.out_i = next(i for i in self.prog.instrs if i.op == pg.OUTPUT)
        self.vocab = self.prog.buffers[self.out_i.a].width
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        self.faults = Faults()
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst_n, reset_active_level=False)
        ddr = bench_config().get("ddr", "kv260")
        if ddr == "ideal":
            prof = DdrProfile.ideal(latency)
        else:
            from edgestream.compiler.targets import load_target

            prof = DdrProfile.of_target(load_target(ddr), CFG.clock_mhz, latency=latency)
        self.ddr = DdrModel(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst_n, mem, prof, self.faults,
                            weight_buses(dut, 1))
        # arena: the buffer map (one beat per buffer), then every buffer sized for max_tok tokens
        self.act_base = cdiv(WGT_BASE + len(self.wgt), 4096) * 4096
        off = cdiv(16 * len(self.prog.buffers), 64) * 64
        self.caps = []
        for b in self.prog.buffers:
            n = buffer_bytes(b, max_tok)
            self.caps.append((off, n))
            off += cdiv(n, 64) * 64
        self.act_size = off
        self.kv_base = cdiv(self.act_base + self.act_size, 4096) * 4096
        lay = KvLayout(c.num_layers, c.num_kv_heads, c.head_dim, rm.kv_ports(CFG.to_dict()))
        self.kv_slot_bytes = lay.bytes_for(1)
        self.kv_size = self.kv_slot_bytes * context
        assert self.kv_base + self.kv_size <= mem, "bench memory too small"
        self.pos = 0

    async def start(self):
        d = self.dut
        d.rst_n.value = 0
        await ClockCycles(d.clk, 8)
        d.rst_n.value = 1
        await ClockCycles(d.clk, 2)
        await self.wr("IRQ_EN", 1)
        self.ddr.write(PROG_BASE, self.blob)
        self.ddr.write(WGT_BASE, self.wgt)
        amap = b"".join(struct.pack("<IIIB3x", o, n, b.width, b.dtype)
                        for (o, n), b in zip(self.caps, self.prog.buffers, strict=True))
        self.ddr.write(self.act_base, amap)
        for name, v in (("PROG_BASE_LO", PROG_BASE), ("PROG_BASE_HI", 0), ("PROG_SIZE", len(self.blob)),
                        ("WGT_BASE_LO", WGT_BASE), ("WGT_BASE_HI", 0), ("WGT_SIZE", len(self.wgt)),
                        ("ACT_BASE_LO", self.act_base), ("ACT_BASE_HI", 0), ("ACT_SIZE", self.act_size),
                        ("KV_BASE_LO", self.kv_base), ("KV_BASE_HI", 0), ("KV_SIZE", self.kv_size)):
            await self.wr(name, v)
        units = await self.rd("HW_UNITS")
        assert units & 7 == 7, f"HW_UNITS {units:#x}: the bench needs the vector, attention and argmax units"
        vec = await self.rd("HW_VEC")
        assert (vec & 0xFFFF) >= self.model.intermediate_size and vec >> 16 >= self.model.head_dim, hex(vec)

    async def rd(self, name: str) -> int:
        return int(await self.axil.read_dword(rm.REG[name]))

    async def wr(self, name: str, v: int):
        await self.axil.write_dword(rm.REG[name], v & 0xFFFFFFFF)

    def patch_instr(self, i: int, ins: pg.Instr) -> None:
        """Rewrite instruction i of program.bin in DDR."""
        prog = pg.Program(self.prog.config_id, self.prog.group, self.prog.regions, self.prog.buffers,
                          [ins if j == i else x for j, x in enumerate(self.prog.instrs)], self.prog.lanes_t,
                          self.prog.lanes_q, self.prog.code_bits)
        self.ddr.write(PROG_BASE, prog.encode())

    def restore_program(self) -> None:
        self.ddr.write(PROG_BASE, self.blob)

    async def launch(self, ids: list[int], pos: int) -> None:
        o0, _ = self.caps[0]
        ids_b = np.zeros(cdiv(len(ids), 4) * 4, "<u4")
        ids_b[: len(ids)] = ids
        self.ddr.write(self.act_base + o0, ids_b.tobytes())
        await self.wr("NTOK", len(ids))
        await self.wr("POS", pos)
        await self.wr("PC", 0)
        await self.wr("CTRL", rm.CTRL_START)

    async def wait_idle(self, timeout: int) -> int:
        t = 0
        await ClockCycles(self.dut.clk, 2)
        while True:
            st = await self.rd("STATUS")
            if not st & rm.STATUS_BUSY:
                assert high(self.dut.irq) == bool(st & (rm.STATUS_DONE | rm.STATUS_HOST | rm.STATUS_ERROR))
                return st
            assert not high(self.dut.irq), "irq while busy"
            assert t < timeout, f"run did not finish within {timeout} cycles (STATUS {st:#x})"
            await First(RisingEdge(self.dut.irq), ClockCycles(self.dut.clk, 5000))
            t += 5000

    async def forward(self, ids: list[int], pos: int, timeout: int = 20_000_000) -> tuple[np.ndarray, int, dict]:
        """One START: logits bits of the last token, ARGMAX, counters."""
        await self.launch(ids, pos)
        st = await self.wait_idle(timeout)
        if st & rm.STATUS_ERROR:
            code = await self.rd("ERR_CODE")
            raise AssertionError(f"error {rm.ERR_NAMES.get(code & 0xFF)} at instruction {code >> 16} "
                                 f"(info {await self.rd('ERR_INFO'):#x})")
        assert st == rm.STATUS_DONE, f"STATUS {st:#x}: expected DONE (one START runs the whole pass)"
        assert await self.rd("STOP_PC") == len(self.prog.instrs) - 1
        o, _ = self.caps[self.out_i.a]
        raw = self.ddr.read(self.act_base + o, cdiv(self.vocab, Q) * U)
        ctr = {k.lower(): await self.rd(k) for k in ("CYCLES_LO", "RD_BEATS", "WR_BEATS", "VEC_CYCLES", "ATTN_CYCLES",
                                                      "SEQ_CYCLES", "WGT_BEATS", "INSTR_COUNT")}
        return unpack_row(raw, self.vocab), await self.rd("ARGMAX"), ctr

    async def expect_error(self, st: int, err: str, pc: int, info: int):
        code = await self.rd("ERR_CODE")
        got = rm.ERR_NAMES.get(code & 0xFF, hex(code & 0xFF))
        assert st & rm.STATUS_ERROR, f"STATUS {st:#x}, expected {err}"
        assert (got, code >> 16) == (err, pc), f"error {got} at {code >> 16}, expected {err} at {pc}"
        assert await self.rd("ERR_INFO") == info, f"ERR_INFO {await self.rd('ERR_INFO'):#x}, expected {info:#x}"
        assert await self.rd("STOP_PC") == pc
        assert high(self.dut.irq)

    async def soft_reset(self):
        await self.wr("CTRL", rm.CTRL_SOFT_RESET)
        for _ in range(20000):
            if await self.rd("STATUS") == 0:
                return
        raise AssertionError("soft reset did not finish")


class Reference:
    """The CPU executor (the golden one) and the program executor, stepped alongside the device."""

    def __init__(self, art: Path, context: int):
        self.cpu = CpuExecutor(read_artifact(art))
        self.prg = ProgramExecutor(art)
        for e in (self.cpu, self.prg):
            e.reset(context)

    def forward(self, ids: list[int]) -> np.ndarray:
        a = self.cpu.forward(np.array(ids))[-1].astype(np.float32)
        b = self.prg.forward(np.array(ids))[-1].astype(np.float32)
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), "CPU and program executors disagree"
        return a


def first_argmax(x: np.ndarray) -> int:
    """The first index of the largest non-NaN value (0 if every value is NaN): the ARGMAX contract."""
    ok = ~np.isnan(x)
    return int(np.flatnonzero(ok)[np.argmax(x[ok])]) if ok.any() else 0


def check(got: np.ndarray, am: int, want: np.ndarray, what: str) -> None:
    w = want.view(np.uint32)
    bad = np.flatnonzero(got != w)
    assert not len(bad), (f"{what}: {len(bad)} of {len(w)} logits differ, first at {bad[0]}: "
                          f"got {got[bad[0]]:08x} want {w[bad[0]]:08x}")
    assert am == first_argmax(want), f"{what}: ARGMAX {am}, expected {first_argmax(want)}"


def setup(dut, max_tok: int = 5, context: int = 12, latency: int | None = None):
    bc = bench_config()
    art = Path(bc["artifact"])
    lat = latency if latency is not None else int(bc.get("latency", 100))
    return Decoder(dut, art, max_tok, context, lat, int(bc.get("mem", 16 << 20))), art


PROMPT = [5, 17, 3, 250, 42]


@cocotb.test()
async def decode(dut):
    """Prefill of 5 tokens (two tiles of MAXTOK 4) and two greedy decode steps, one START each."""
    dec, art = setup(dut)
    ref = Reference(art, 12)
    await dec.start()
    ids, pos = PROMPT, 0
    n_instr = len(dec.prog.instrs) - 1
    for step in range(3):
        want = ref.forward(ids)
        got, am, ctr = await dec.forward(ids, pos)
        check(got, am, want, f"step {step} (NTOK {len(ids)}, POS {pos})")
        assert ctr["instr_count"] == n_instr, ctr
        assert ctr["vec_cycles"] > 0 and ctr["attn_cycles"] > 0 and ctr["rd_beats"] > ctr["wgt_beats"] > 0, ctr
        assert ctr["vec_cycles"] + ctr["attn_cycles"] < ctr["cycles_lo"], ctr
        dut._log.info("step %d: NTOK %d POS %d: logits bit-exact, argmax %d, %s", step, len(ids), pos, am, ctr)
        pos += len(ids)
        ids = [am]


@cocotb.test()
async def faults(dut):
    """Unit faults reported at the right instruction, SOFT_RESET mid-run, a host stop; correct runs after."""
    dec, art = setup(dut)
    await dec.start()
    prog = dec.prog
    att = next(i for i, x in enumerate(prog.instrs) if x.op == pg.ATTENTION)
    ref = Reference(art, 12)
    want = ref.forward(PROMPT[:3])

    # a KV region one position short of POS + NTOK: ERR RANGE at the first ATTENTION, before any write
    await dec.wr("KV_SIZE", dec.kv_slot_bytes * 3 - 16)
    await dec.launch(PROMPT[:3], 0)
    st = await dec.wait_idle(2_000_000)
    await dec.expect_error(st, "RANGE", att, pg.ATTENTION)
    assert await dec.rd("INSTR_COUNT") == att, "instructions before the ATTENTION ran, none after"
    await dec.wr("KV_SIZE", dec.kv_size)

    # a read error on the KV region: ERR AXI_READ at the ATTENTION (the unit's own master), then drained
    dec.faults.read_err.append((dec.kv_base, dec.kv_base + dec.kv_size, AxiResp.DECERR))
    await dec.launch(PROMPT[:3], 0)
    st = await dec.wait_idle(2_000_000)
    await dec.expect_error(st, "AXI_READ", att, int(AxiResp.DECERR))
    dec.faults.read_err.clear()
    await dec.soft_reset()

    # SOFT_RESET while the attention unit runs: the run stops, the status clears, the next run is right
    await dec.launch(PROMPT[:3], 0)
    for _ in range(100000):
        if high(dut.u_seq.go_attn):
            break
        await RisingEdge(dut.clk)
    await ClockCycles(dut.clk, 300)
    assert high(dut.g_attn.u_attn.busy), "the attention unit should be running"
    await dec.soft_reset()
    got, am, _ = await dec.forward(PROMPT[:3], 0)
    check(got, am, want, "after SOFT_RESET")

    # an instruction this bitstream cannot run (ACT_MUL with the SwiGLU flag): STATUS.HOST at its index
    am_i = next(i for i, x in enumerate(prog.instrs) if x.op == pg.ACT_MUL)
    x = prog.instrs[am_i]
    dec.patch_instr(am_i, pg.Instr(x.op, pg.F_SILU, x.a, list(x.f)))
    await dec.launch(PROMPT[:3], 0)
    st = await dec.wait_idle(2_000_000)
    assert st == rm.STATUS_HOST, f"STATUS {st:#x}"
    assert await dec.rd("STOP_PC") == am_i and await dec.rd("INSTR_COUNT") == am_i
    dec.restore_program()


@cocotb.test()
async def smoke(dut):
    """The Icarus case (a whole pass is too long there): the program's first layer up to its ATTENTION,
    then LAST_ROW of the attention output and OUTPUT with F_ARGMAX over that copy, END; 2 tokens in one
    START. Every unit runs (es_vec: EMBED, NORM_QUANT, ROPE; the linear datapath; es_attn; es_row),
    compared bit for bit with ProgramExecutor stepping the same instructions."""
    dec, art = setup(dut, max_tok=2, context=2)
    prog = dec.prog
    att = next(i for i, x in enumerate(prog.instrs) if x.op == pg.ATTENTION)
    y = prog.instrs[att].a
    used = {x.a for x in prog.instrs[: att + 1]} | {v for x in prog.instrs[: att + 1] for v in x.f[:3]}
    last = next(i for i, b in enumerate(prog.buffers)
                if b.dtype == pg.B_F32 and b.width == prog.buffers[y].width and i not in used)
    instrs = [*prog.instrs[: att + 1], pg.Instr(pg.LAST_ROW, 0, last, [y]),
              pg.Instr(pg.OUTPUT, pg.F_ARGMAX, last), pg.Instr(pg.END)]
    dec.blob = pg.Program(prog.config_id, prog.group, prog.regions, prog.buffers, instrs, prog.lanes_t,
                          prog.lanes_q, prog.code_bits).encode()
    ids = PROMPT[:2]
    ref = ProgramExecutor(art)
    ref.reset(2)
    st = _State(len(prog.buffers), np.array(ids, np.int64), True)
    for ins in instrs[: att + 1]:
        ref.step(ins, st)
    want = np.asarray(st.buf[y], np.float32)
    await dec.start()
    await dec.launch(ids, 0)
    st_ = await dec.wait_idle(2_000_000)
    assert st_ == rm.STATUS_DONE, f"STATUS {st_:#x}"
    assert await dec.rd("INSTR_COUNT") == len(instrs) - 1
    w = prog.buffers[y].width
    got = np.frombuffer(dec.ddr.read(dec.act_base + dec.caps[y][0], f32_bytes(2, w)), "<u4")
    rb = cdiv(w, Q)
    rows = got[: rb * 2 * Q].reshape(rb, 2, Q).transpose(1, 0, 2).reshape(2, rb * Q)[:, :w]
    assert np.array_equal(rows, want.view(np.uint32)), "attention output differs"
    row = np.frombuffer(dec.ddr.read(dec.act_base + dec.caps[last][0], rb * U), "<u4")
    assert np.array_equal(row[:w], want[-1].view(np.uint32)) and not row[w:].any(), "LAST_ROW copy differs"
    assert await dec.rd("ARGMAX") == first_argmax(want[-1])
    dut._log.info("smoke: %d cycles", await dec.rd("CYCLES_LO"))


@cocotb.test()
async def perf(dut):
    """Cycles of a prefill and of decode steps (the measurement of docs/hardware.md)."""
    bc = bench_config()
    ntok, steps = int(bc.get("prefill", 4)), int(bc.get("steps", 2))
    dec, art = setup(dut, max_tok=ntok, context=ntok + steps)
    check_ref = bool(bc.get("check", True))
    ref = Reference(art, ntok + steps) if check_ref else None
    await dec.start()
    ids, pos, rows = PROMPT[:ntok], 0, []
    for step in range(steps + 1):
        got, am, ctr = await dec.forward(ids, pos)
        if ref is not None:
            check(got, am, ref.forward(ids), f"step {step}")
        rows.append({"ntok": len(ids), "pos": pos, **ctr})
        dut._log.info("perf step %d: %s", step, rows[-1])
        pos += len(ids)
        ids = [am]
    if bc.get("report"):
        Path(bc["report"]).write_text(json.dumps(rows, indent=1))
