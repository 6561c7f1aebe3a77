"""cocotb bench: tlmm_engine, bit-exact against edgestream.tlmm on the package's packed codes."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource
from tb_common import bench_config, cycle_pause, high, random_pause, start_clock_and_reset
from tlmm_engine_model import EngineConfig, Job, bitserial_job, check_results, ternary_job


class TB:
    def __init__(self, dut):
        self.dut = dut
        c = bench_config()
        self.cfg = EngineConfig(**{k: c[k] for k in EngineConfig.__dataclass_fields__ if k in c})
        self.cmd = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_cmd"), dut.clk, dut.rst_n,
                                   reset_active_level=False, byte_lanes=1)
        self.act = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_act"), dut.clk, dut.rst_n,
                                   reset_active_level=False, byte_lanes=1)
        self.w = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_w"), dut.clk, dut.rst_n,
                                 reset_active_level=False, byte_lanes=1)
        self.res = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_res"), dut.clk, dut.rst_n,
                                 reset_active_level=False, byte_lanes=1)

    def set_idle_generator(self, gen=None):
        self.act.set_pause_generator(gen)
        self.w.set_pause_generator(gen)

    def set_backpressure_generator(self, gen=None):
        self.res.set_pause_generator(gen)

    async def reset(self):
        await start_clock_and_reset(self.dut)

    async def submit(self, job: Job):
        await self.cmd.send(AxiStreamFrame([job.cmd]))
        await self.act.send(AxiStreamFrame(job.act_beats))
        await self.w.send(AxiStreamFrame(job.w_beats))

    async def collect(self, job: Job) -> tuple[list[int], list[int]]:
        frame = await self.res.recv()
        tuser = frame.tuser if isinstance(frame.tuser, list) else [frame.tuser] * len(frame.tdata)
        return list(frame.tdata), list(tuser)

    async def run(self, job: Job):
        await self.submit(job)
        words, toks = await self.collect(job)
        check_results(self.cfg, job, words, toks)


def rng_for(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def rand_q(rng, ntok, k):
    return rng.integers(-128, 128, size=(ntok, k)).astype(np.int8)


def rand_trits(rng, n, k):
    return rng.integers(-1, 2, size=(n, k)).astype(np.int8)


def cases(cfg: EngineConfig, seed: int) -> list[Job]:
    """Random data plus the extremes; K not a multiple of G, N not a multiple of Q."""
    rng = rng_for(seed)
    G, MK, MT = cfg.G, cfg.MAXK, cfg.MAXTOK
    k_odd = MK - (G // 2 + 1) if MK % G == 0 else MK - 1          # not a multiple of G
    jobs = [
        ternary_job(cfg, rand_q(rng, 1, k_odd), rand_trits(rng, 3 * cfg.Q + 1, k_odd), rng),   # GEMV
        ternary_job(cfg, rand_q(rng, MT, MK), rand_trits(rng, 2 * cfg.Q - 1, MK), rng),        # GEMM tile
        ternary_job(cfg, rand_q(rng, 1, 1), rand_trits(rng, 1, 1), rng),                      # K=1, N=1
        ternary_job(cfg, rand_q(rng, 1, G * cfg.T + 1), rand_trits(rng, 1, G * cfg.T + 1), rng),  # single row
    ]
    # extremes: activations -128 / 127, weights all +1, all -1, all 0
    k = k_odd
    for a in (-128, 127):
        q = np.full((MT, k), a, np.int8)
        for wv in (1, -1, 0):
            jobs.append(ternary_job(cfg, q, np.full((cfg.Q + 1, k), wv, np.int8), rng))
    if cfg.G == 5:   # the 1.6 bpw base-3 bytes are the G = 5 codes
        jobs.append(ternary_job(cfg, rand_q(rng, 2, k_odd), rand_trits(rng, 2 * cfg.Q, k_odd), rng, base3=True))
    return jobs


def bitserial_cases(cfg: EngineConfig, seed: int) -> list[Job]:
    rng = rng_for(seed)
    jobs = []
    k_odd = cfg.MAXK - 1
    for bits in (8, 4, 2):
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        w = rng.integers(lo, hi + 1, size=(cfg.Q + 3, k_odd))
        jobs.append(bitserial_job(cfg, rand_q(rng, 1, k_odd), w, bits, rng))
        # extremes: most negative / most positive weights against -128 / 127 activations
        q = np.where(np.arange(k_odd) % 2, -128, 127).astype(np.int8)[None].repeat(cfg.MAXTOK, 0)
        wx = np.where(np.arange(k_odd) % 3 == 0, lo, hi)[None].repeat(cfg.Q, 0)
        jobs.append(bitserial_job(cfg, q, wx, bits, rng))
    return jobs


@cocotb.test()
async def test_ternary(dut):
    """Ternary GEMV/GEMM, random and extremes, back to back at full rate."""
    tb = TB(dut)
    await tb.reset()
    if tb.cfg.TABLE_BINARY:
        return
    for job in cases(tb.cfg, 1):
        await tb.run(job)


@cocotb.test()
async def test_bitserial(dut):
    """INT8/INT4/INT2 weights bit-serially through the same lanes."""
    tb = TB(dut)
    await tb.reset()
    for job in bitserial_cases(tb.cfg, 2):
        await tb.run(job)


@cocotb.test()
async def test_stalls(dut):
    """Idle input cycles and result backpressure, commands queued back to back."""
    tb = TB(dut)
    await tb.reset()
    tb.set_idle_generator(random_pause(11, 0.3))
    tb.set_backpressure_generator(cycle_pause())
    if tb.cfg.TABLE_BINARY:
        jobs = bitserial_cases(tb.cfg, 3)[:2]
    else:
        jobs = cases(tb.cfg, 3)[:3] + bitserial_cases(tb.cfg, 4)[:1]
    for job in jobs:
        await tb.submit(job)
    for job in jobs:
        words, toks = await tb.collect(job)
        check_results(tb.cfg, job, words, toks)


@cocotb.test()
async def test_invalid_code(dut):
    """A ternary code >= 3**G raises err_code (and counts as zero weights)."""
    tb = TB(dut)
    await tb.reset()
    if tb.cfg.TABLE_BINARY or 3**tb.cfg.G == 1 << tb.cfg.CB:
        return
    rng = rng_for(5)
    k = tb.cfg.G * tb.cfg.T
    trits = rand_trits(rng, tb.cfg.Q, k)
    trits[0, :tb.cfg.G] = 0
    job = ternary_job(tb.cfg, rand_q(rng, 1, k), trits, rng)
    job.w_beats[0] |= ((1 << tb.cfg.CB) - 1) << 0          # lane 0 = row 0, group 0: invalid code
    await tb.run(job)
    assert high(dut.err_code), "err_code not raised for an invalid G-index code"
    while high(dut.busy):
        await RisingEdge(dut.clk)
    ok = ternary_job(tb.cfg, rand_q(rng, 1, k), trits, rng)
    await tb.run(ok)
    assert not high(dut.err_code), "err_code not cleared by the next command"
