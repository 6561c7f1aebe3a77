"""cocotb bench: tlmm_wdecode. A code's pattern is cut into its low ceil(G/2) and high floor(G/2)
weights (the RTL's split tables), each part's index decoded on its own. Ternary codes of pack_gindex
(invalid codes >= 3**G included): each part's code (c % 3**GL, c // 3**GL) folded onto its stored lower
half (index 3**n - 1 - c with the sign set above the zero pattern), or both zero patterns with d_bad;
bit-serial codes of bit_planes: each part's bits as 0/1 trits, folded. Both checked on edgestream.tlmm's
own tables: the two signed half entries add up to the whole table's entry (T[code], or B[code]);
valid/ready with idle inputs and backpressure, sideband in order."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from tb_common import StreamSink, StreamSource, bench_config, pack_words, random_pause, start_clock_and_reset

from edgestream.compiler.dse import half_entries, table_halves
from edgestream.formats.ternary import pack_gindex
from edgestream.tlmm import build_binary_tables, build_ternary_tables


class TB:
    def __init__(self, dut):
        self.dut = dut
        c = bench_config()
        self.G, self.L, self.binary = c["G"], c["L"], c.get("TABLE_BINARY", 0)
        self.P = 2**self.G if self.binary else 3**self.G
        self.CB = self.G if self.binary else int(3**self.G - 1).bit_length()
        self.halves = table_halves(self.G)
        self.PS = [half_entries(n, bool(self.binary)) for n in self.halves]
        self.IWS = [max(1, int(p - 1).bit_length()) for p in self.PS]
        self.source = StreamSource(dut.clk, dut.w_valid, dut.w_ready, dut.w_codes, dut.w_user)
        self.sink = StreamSink(dut.clk, dut.d_valid, dut.d_ready, idx=dut.d_idx, sgn=dut.d_sgn, bad=dut.d_bad,
                               user=dut.d_user)

    @staticmethod
    def fold(i: int, n: int) -> tuple[int, int]:
        """An n-weight ternary table index -> (stored index, sign)."""
        return (3**n - 1 - i, 1) if i > (3**n - 1) // 2 else (i, 0)

    def expected(self, codes: list[int], bitserial: bool) -> tuple[list[tuple], list[tuple], int]:
        """Per code ((low index, high index), (low sign, high sign)), and d_bad."""
        gl, gh = self.halves
        if self.binary:
            return [(c & ((1 << gl) - 1), c >> gl) for c in codes], [(0, 0)] * len(codes), 0
        if bitserial:   # the binary code's bits as 0/1 trits -> their G-index code
            bits = np.array([[(c >> i) & 1 for i in range(self.G)] for c in codes], np.int8)
            tern = [int(v) for v in pack_gindex(bits.reshape(1, -1), self.G)[0]]
            bad = 0
        else:
            zero = (self.P - 1) // 2
            tern, bad = [c if c < self.P else zero for c in codes], int(any(c >= self.P for c in codes))
        f = [(self.fold(c % 3**gl, gl), self.fold(c // 3**gl, gh)) for c in tern]
        return [(lo[0], hi[0]) for lo, hi in f], [(lo[1], hi[1]) for lo, hi in f], bad

    async def run(self, beats: list[list[int]], bitserial: bool):
        self.dut.bitserial.value = int(bitserial)
        self.sink.beats.clear()
        umask = (1 << len(self.dut.w_user)) - 1
        for i, codes in enumerate(beats):
            self.source.send(pack_words(codes, self.CB), i & umask)
        while len(self.sink.beats) < len(beats):
            await RisingEdge(self.dut.clk)
        iwl, iwh = self.IWS
        iw = iwl + iwh
        assert len(self.dut.d_idx) == self.L * iw, "index width"
        for i, (codes, beat) in enumerate(zip(beats, self.sink.beats, strict=True)):
            want_idx, want_sgn, want_bad = self.expected(codes, bitserial)
            words = [(beat["idx"] >> (l * iw)) & ((1 << iw) - 1) for l in range(self.L)]
            got = [(w & ((1 << iwl) - 1), w >> iwl) for w in words]
            sgn = [((beat["sgn"] >> (2 * l)) & 1, (beat["sgn"] >> (2 * l + 1)) & 1) for l in range(self.L)]
            assert got == want_idx, f"beat {i} codes {codes}: (low, high) indices {got} != {want_idx}"
            assert sgn == want_sgn, f"beat {i} codes {codes}: signs {sgn} != {want_sgn}"
            assert beat["bad"] == want_bad, f"beat {i} codes {codes}: d_bad {beat['bad']} != {want_bad}"
            assert beat["user"] == i & umask, f"sideband out of order at beat {i}"
        # the two signed stored half entries add up to the code's entry: T[c] (valid codes) or B[c]
        q = np.random.default_rng(0).integers(-128, 128, size=(3, self.G)).astype(np.int8)
        gl, gh = self.halves
        half = build_binary_tables if self.binary else build_ternary_tables
        lo_t = half(q[:, :gl].reshape(1, -1), gl)[0]
        hi_t = half(q[:, gl:].reshape(1, -1), gh)[0]
        tt, bt = build_ternary_tables(q.reshape(1, -1), self.G)[0], build_binary_tables(q.reshape(1, -1), self.G)[0]
        for codes in beats:
            idx, sgn, _ = self.expected(codes, bitserial)
            for c, (il, ih), (sl, sh) in zip(codes, idx, sgn, strict=True):
                assert il < self.PS[0] and ih < self.PS[1]
                got = (-1 if sl else 1) * lo_t[:, il] + (-1 if sh else 1) * hi_t[:, ih]
                want = bt[:, c & ((1 << self.G) - 1)] if bitserial else tt[:, c] if c < self.P else 0
                assert (got == want).all(), f"code {c}: half entries {got} != {want}"


def stimulus(tb: TB, rng, bitserial: bool) -> list[list[int]]:
    hi = (1 << tb.G) if bitserial else (1 << tb.CB)          # ternary: invalid codes >= 3**G included
    beats = [list(rng.integers(0, hi, tb.L)) for _ in range(40)]
    beats += [[0] * tb.L, [hi - 1] * tb.L]
    if not bitserial and not tb.binary:
        beats += [[tb.P - 1] * tb.L, [(tb.P - 1) // 2] * tb.L, [3**tb.halves[0] - 1] * tb.L, [3**tb.halves[0]] * tb.L]
    return [[int(c) for c in b] for b in beats]


@cocotb.test()
async def test_decode(dut):
    tb = TB(dut)
    await start_clock_and_reset(dut)
    rng = np.random.default_rng(1)
    modes = (True,) if tb.binary else (False, True)
    for bitserial in modes:                     # full rate
        await tb.run(stimulus(tb, rng, bitserial), bitserial)
    tb.source.set_pause_generator(random_pause(3, 0.3))
    tb.sink.set_pause_generator(random_pause(4, 0.5))
    for bitserial in modes:                     # idle inputs and backpressure
        await tb.run(stimulus(tb, rng, bitserial), bitserial)
