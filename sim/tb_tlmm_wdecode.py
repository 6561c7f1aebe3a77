"""cocotb bench: tlmm_wdecode. Ternary codes of pack_gindex (invalid codes >= 3**G included) decode to
themselves folded onto the stored lower half of the table (index 3**G - 1 - c with the sign set above
the zero pattern) or to the zero pattern with d_bad; bit-serial codes of bit_planes decode to the
folded ternary pattern whose signed entry equals the binary table's; both checked on
edgestream.tlmm's own tables (sign * T[idx] == T[code], == B[code]); valid/ready with idle inputs and
backpressure, sideband in order."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from tb_common import StreamSink, StreamSource, bench_config, pack_words, random_pause, start_clock_and_reset

from edgestream.formats.ternary import pack_gindex
from edgestream.tlmm import build_binary_tables, build_ternary_tables


class TB:
    def __init__(self, dut):
        self.dut = dut
        c = bench_config()
        self.G, self.L, self.binary = c["G"], c["L"], c.get("TABLE_BINARY", 0)
        self.P = 2**self.G if self.binary else 3**self.G
        self.CB = self.G if self.binary else int(3**self.G - 1).bit_length()
        self.IW = self.G if self.binary else max(1, int((self.P + 1) // 2 - 1).bit_length())
        self.source = StreamSource(dut.clk, dut.w_valid, dut.w_ready, dut.w_codes, dut.w_user)
        self.sink = StreamSink(dut.clk, dut.d_valid, dut.d_ready, idx=dut.d_idx, sgn=dut.d_sgn, bad=dut.d_bad,
                               user=dut.d_user)

    def fold(self, i: int) -> tuple[int, int]:
        """A ternary table index -> (stored index, sign)."""
        zero = (self.P - 1) // 2
        return (self.P - 1 - i, 1) if i > zero else (i, 0)

    def expected(self, codes: list[int], bitserial: bool) -> tuple[list[int], list[int], int]:
        if self.binary:
            return list(codes), [0] * len(codes), 0
        if bitserial:   # the binary code's bits as 0/1 trits -> their G-index code
            bits = np.array([[(c >> i) & 1 for i in range(self.G)] for c in codes], np.int8)
            tern = [int(v) for v in pack_gindex(bits.reshape(1, -1), self.G)[0]]
            bad = 0
        else:
            zero = (self.P - 1) // 2
            tern, bad = [c if c < self.P else zero for c in codes], int(any(c >= self.P for c in codes))
        f = [self.fold(i) for i in tern]
        return [i for i, _ in f], [s for _, s in f], bad

    async def run(self, beats: list[list[int]], bitserial: bool):
        self.dut.bitserial.value = int(bitserial)
        self.sink.beats.clear()
        umask = (1 << len(self.dut.w_user)) - 1
        for i, codes in enumerate(beats):
            self.source.send(pack_words(codes, self.CB), i & umask)
        while len(self.sink.beats) < len(beats):
            await RisingEdge(self.dut.clk)
        iw = self.IW
        assert len(self.dut.d_idx) == self.L * iw, "index width"
        for i, (codes, beat) in enumerate(zip(beats, self.sink.beats, strict=True)):
            want_idx, want_sgn, want_bad = self.expected(codes, bitserial)
            got = [(beat["idx"] >> (l * iw)) & ((1 << iw) - 1) for l in range(self.L)]
            sgn = [(beat["sgn"] >> l) & 1 for l in range(self.L)]
            assert got == want_idx, f"beat {i} codes {codes}: indices {got} != {want_idx}"
            assert sgn == want_sgn, f"beat {i} codes {codes}: signs {sgn} != {want_sgn}"
            assert beat["bad"] == want_bad, f"beat {i} codes {codes}: d_bad {beat['bad']} != {want_bad}"
            assert beat["user"] == i & umask, f"sideband out of order at beat {i}"
        if not self.binary:   # the signed stored entry is the code's entry: T[c] (valid codes) or B[c]
            q = np.random.default_rng(0).integers(-128, 128, size=(3, self.G)).astype(np.int8)
            tt, bt = build_ternary_tables(q.reshape(1, -1), self.G)[0], build_binary_tables(q.reshape(1, -1), self.G)[0]
            for codes in beats:
                idx, sgn, _ = self.expected(codes, bitserial)
                for c, ix, sg in zip(codes, idx, sgn, strict=True):
                    assert ix <= (self.P - 1) // 2
                    want = bt[:, c & ((1 << self.G) - 1)] if bitserial else tt[:, c] if c < self.P else 0
                    assert ((-1 if sg else 1) * tt[:, ix] == want).all()


def stimulus(tb: TB, rng, bitserial: bool) -> list[list[int]]:
    hi = (1 << tb.G) if bitserial else (1 << tb.CB)          # ternary: invalid codes >= 3**G included
    beats = [list(rng.integers(0, hi, tb.L)) for _ in range(40)]
    beats += [[0] * tb.L, [hi - 1] * tb.L]
    if not bitserial and not tb.binary:
        beats += [[tb.P - 1] * tb.L, [(tb.P - 1) // 2] * tb.L]
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
