"""cocotb bench: tlmm_engine, bit-exact against edgestream.tlmm on the package's packed codes."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource
from tb_common import bench_config, cycle_pause, high, random_pause, start_clock_and_reset
from tlmm_engine_model import EngineConfig, Job, bitserial_job, check_results, dense_job, ternary_job


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


def dense_cases(cfg: EngineConfig, seed: int) -> list[Job]:
    """Dense int8 weights (INT_DENSE): random, and the extremes (-128 x -128 is the largest product,
    2**14, every one of K of them in a row: the accumulator's bound); K not a multiple of G nor of G*T,
    padding rows, several row batches, a GEMM tile of MAXTOK tokens."""
    rng = rng_for(seed)
    G, T, Q, MK, MT = cfg.G, cfg.T, cfg.Q, cfg.MAXK, cfg.MAXTOK
    k_odd = MK - (G // 2 + 1) if MK % G == 0 else MK - 1

    def rw(n, k):
        return rng.integers(-128, 128, size=(n, k)).astype(np.int8)

    jobs = [
        dense_job(cfg, rand_q(rng, 1, k_odd), rw(3 * Q + 1, k_odd), rng),     # GEMV, 4 row batches
        dense_job(cfg, rand_q(rng, MT, MK), rw(2 * Q - 1, MK), rng),          # GEMM tile, padding row
        dense_job(cfg, rand_q(rng, 1, 1), rw(1, 1), rng),                    # K = 1, N = 1
        dense_job(cfg, rand_q(rng, MT, G * T + 1), rw(Q + 1, G * T + 1), rng),  # one group in the last chunk
    ]
    for a in (-128, 127):
        q = np.full((MT, MK), a, np.int8)
        for wv in (-128, 127):
            jobs.append(dense_job(cfg, q, np.full((Q + 1, MK), wv, np.int8), rng))
    q = np.where(np.arange(k_odd) % 2, -128, 127).astype(np.int8)[None].repeat(MT, 0)
    w = np.where(np.arange(k_odd) % 3 == 0, -128, 127).astype(np.int8)[None].repeat(2 * Q, 0)
    jobs.append(dense_job(cfg, q, w, rng))
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
async def test_dense(dut):
    """Dense int8 weights (INT_DENSE engines): random and extremes, back to back at full rate."""
    tb = TB(dut)
    await tb.reset()
    if not tb.cfg.INT_DENSE:
        return
    for job in dense_cases(tb.cfg, 6):
        await tb.run(job)
        assert not high(dut.err_code), "a dense beat raised err_code (its slots are weights, not codes)"


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
    if tb.cfg.INT_DENSE:
        # dense commands queued right behind ternary / bit-serial ones and between each other: the mode
        # travels with each beat, not with the command register
        d = dense_cases(tb.cfg, 7)
        jobs = [jobs[0], d[0], jobs[1], d[1], d[4], jobs[3], d[2]]
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
