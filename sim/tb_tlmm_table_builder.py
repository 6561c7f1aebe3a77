"""cocotb bench: tlmm_table_builder against edgestream.tlmm.build_ternary_tables/build_binary_tables
applied to each half of the group (the low ceil(G/2) and the high floor(G/2) activations: the RTL's
split tables). Ternary: each half's stored lower half, entries 0..(3**n - 1)/2 (the bench also checks
that the reference's upper half is their mirror image, T[3**n - 1 - c] = -T[c], which is what lets the
RTL drop it), and that one entry of each half adds up to the whole group table's entry."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from tb_common import (
    StreamSink,
    StreamSource,
    bench_config,
    cycle_pause,
    pack_words,
    random_pause,
    start_clock_and_reset,
    unpack_words,
)

from edgestream.compiler.dse import half_entries, table_halves, table_width
from edgestream.tlmm import build_binary_tables, build_ternary_tables


class TB:
    def __init__(self, dut):
        self.dut = dut
        cfg = bench_config()
        self.G, self.AW, self.binary = cfg["G"], cfg.get("AW", 8), cfg.get("BINARY", 0)
        self.halves = table_halves(self.G)
        self.P = sum(half_entries(n, bool(self.binary)) for n in self.halves)   # stored entries, both halves
        self.TW = table_width(self.G) - 8 + self.AW
        self.source = StreamSource(dut.clk, dut.a_valid, dut.a_ready, dut.a_data, dut.a_user)
        self.sink = StreamSink(dut.clk, dut.t_valid, dut.t_ready, data=dut.t_data, user=dut.t_user)

    def set_idle_generator(self, gen=None):
        self.source.set_pause_generator(gen)

    def set_backpressure_generator(self, gen=None):
        self.sink.set_pause_generator(gen)

    async def reset(self):
        await start_clock_and_reset(self.dut)

    def expected(self, groups: np.ndarray) -> np.ndarray:
        """[ngroups, P]: the low half's stored entries, then the high half's."""
        gl, gh = self.halves
        build = build_binary_tables if self.binary else build_ternary_tables
        lo_t, hi_t = (build(groups[:, a:a + n].reshape(1, -1), n)[0] for a, n in ((0, gl), (gl, gh)))
        if self.binary:
            return np.concatenate([lo_t, hi_t], axis=1)
        for full in (lo_t, hi_t):
            assert (full[:, ::-1] == -full).all(), "ternary tables are not sign-symmetric"
        # low pattern c % 3**gl plus high pattern c // 3**gl is the whole pattern c
        whole = build_ternary_tables(groups.reshape(1, -1), self.G)[0]
        c = np.arange(3**self.G)
        assert (lo_t[:, c % 3**gl] + hi_t[:, c // 3**gl] == whole).all(), "the halves do not add up"
        return np.concatenate([lo_t[:, : half_entries(gl)], hi_t[:, : half_entries(gh)]], axis=1)

    async def run(self, groups: np.ndarray):
        """groups int8 [n, G]: one beat each; checks every table and the sideband order."""
        self.sink.beats.clear()
        user_mask = (1 << len(self.dut.a_user)) - 1
        for i, g in enumerate(groups):
            self.source.send(pack_words(g, self.AW), i & user_mask)
        while len(self.sink.beats) < len(groups):
            await RisingEdge(self.dut.clk)
        want = self.expected(groups)
        for i, beat in enumerate(self.sink.beats):
            got = unpack_words(beat["data"], self.TW, self.P)
            assert got == want[i].tolist(), f"group {i} {groups[i].tolist()}: table {got} != {want[i].tolist()}"
            assert beat["user"] == i & user_mask, f"sideband out of order at beat {i}"


def stimulus(G: int, rng: np.random.Generator) -> np.ndarray:
    extremes = np.array([[-128] * G, [127] * G, [0] * G, [(-128 if i % 2 else 127) for i in range(G)]], np.int8)
    rand = rng.integers(-128, 128, size=(40, G)).astype(np.int8)
    return np.concatenate([extremes, rand])


async def run_case(dut, idle, backpressure, seed):
    tb = TB(dut)
    await tb.reset()
    tb.set_idle_generator(idle)
    tb.set_backpressure_generator(backpressure)
    await tb.run(stimulus(tb.G, np.random.default_rng(seed)))


@cocotb.test()
async def test_full_rate(dut):
    """No idle, no backpressure: one table per cycle."""
    tb = TB(dut)
    await tb.reset()
    groups = stimulus(tb.G, np.random.default_rng(1))
    start = None
    count = 0
    for i, g in enumerate(groups):
        tb.source.send(pack_words(g, tb.AW), i)
    while len(tb.sink.beats) < len(groups):
        await RisingEdge(dut.clk)
        count += 1
        if start is None and tb.sink.beats:
            start = count
    # after the first table, one table per cycle (II = 1)
    assert count - start <= len(groups) + 1, f"{len(groups)} tables took {count - start} cycles"
    want = tb.expected(groups)
    for i, beat in enumerate(tb.sink.beats):
        assert unpack_words(beat["data"], tb.TW, tb.P) == want[i].tolist(), f"group {i}"


@cocotb.test()
async def test_idle_and_backpressure(dut):
    await run_case(dut, cycle_pause(), random_pause(7), 2)


@cocotb.test()
async def test_backpressure(dut):
    await run_case(dut, None, cycle_pause(), 3)
