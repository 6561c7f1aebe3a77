"""cocotb bench: tlmm_lanes against a Python model of its contract: every op, each of the Q*T lanes looks
up one entry of each of its group's two stored half tables (the low ceil(G/2) and high floor(G/2)
weights: (3**n + 1)/2 entries each) and negates each where its sign is set, masked groups add 0, the
row sum is shifted by the bit plane (negated for the sign plane) and accumulated in INT32 per (row,
token); in_first restarts, in_last emits the Q accumulators of that token 3 cycles later. Ops come in
the engine's order (row batch, plane, chunk, token) with random idle cycles; entries cover the
extremes -128*n and 127*n, and +128*n (every activation -128, every weight -1)."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge
from tb_common import bench_config, pack_words, start_clock_and_reset, to_signed, unpack_words

from edgestream.compiler.dse import half_entries, table_halves, table_width


def ops(cfg: dict, rng) -> list[dict]:
    G, T, Q, MT = cfg["G"], cfg["T"], cfg["Q"], cfg["MAXTOK"]
    halves = table_halves(G)
    out = []
    for batch in range(6):
        planes = [(0, False)] if batch % 2 == 0 else [(b, b == 7) for b in range(8)]   # ternary / INT8 planes
        nch = 1 + batch % 3
        ntok = 1 + batch % MT
        for p, (shift, neg) in enumerate(planes):
            for c in range(nch):
                for tok in range(ntok):
                    op = {"gmask": [1] + [int(c < nch - 1 or rng.random() < 0.5) for _ in range(T - 1)],
                          "tok": tok, "shift": shift, "neg": neg, "first": p == 0 and c == 0,
                          "last": p == len(planes) - 1 and c == nch - 1}
                    for h, n in enumerate(halves):
                        ps = half_entries(n)
                        lo, hi = -128 * n, 128 * n    # an n-weight entry's range
                        if batch == 0:      # extremes
                            tbl = np.full((T, ps), hi if c % 2 == 0 else lo)
                        else:
                            tbl = rng.integers(lo, hi + 1, size=(T, ps))
                        op[f"tbl{h}"] = tbl
                        op[f"idx{h}"] = rng.integers(0, ps, size=(Q, T))
                        op[f"sgn{h}"] = rng.integers(0, 2, size=(Q, T))
                    out.append(op)
    return out


def model(cfg: dict, seq: list[dict]) -> list[tuple[int, list[int]]]:
    Q, T = cfg["Q"], cfg["T"]
    acc = {}
    res = []
    for op in seq:
        for q in range(Q):
            s = sum((-1 if op[f"sgn{h}"][q, t] else 1) * int(op[f"tbl{h}"][t, op[f"idx{h}"][q, t]])
                    for t in range(T) if op["gmask"][t] for h in (0, 1))
            v = -(s << op["shift"]) if op["neg"] else s << op["shift"]
            a = (0 if op["first"] else acc[(q, op["tok"])]) + v
            acc[(q, op["tok"])] = to_signed(a, 32)
        if op["last"]:
            res.append((op["tok"], [acc[(q, op["tok"])] for q in range(Q)]))
    return res


@cocotb.test()
async def test_lanes(dut):
    cfg = bench_config()
    G, T, Q = cfg["G"], cfg["T"], cfg["Q"]
    ps = [half_entries(n) for n in table_halves(G)]
    P, TW = sum(ps), table_width(G)
    iws = [max(1, int(n - 1).bit_length()) for n in ps]
    rng = np.random.default_rng(1)
    seq = ops(cfg, rng)
    got: list[tuple[int, list[int]]] = []

    async def monitor():
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if dut.out_valid.value.is_resolvable and int(dut.out_valid.value):
                got.append((int(dut.out_tok.value), unpack_words(int(dut.out_acc.value), 32, Q)))

    dut.in_valid.value = 0
    await start_clock_and_reset(dut)
    cocotb.start_soon(monitor())
    for op in seq:
        while rng.random() < 0.3:                 # idle cycles between ops
            dut.in_valid.value = 0
            await RisingEdge(dut.clk)
        dut.in_valid.value = 1
        # table t's word: {high half, low half}; lane l's index {high, low}, its signs {high, low}
        dut.in_tbl.value = pack_words(np.concatenate([op["tbl0"], op["tbl1"]], axis=1).reshape(-1), TW)
        dut.in_idx.value = pack_words((op["idx0"] + (op["idx1"] << iws[0])).reshape(-1), iws[0] + iws[1])
        dut.in_sgn.value = pack_words(np.stack([op["sgn0"], op["sgn1"]], axis=-1).reshape(-1), 1)
        dut.in_gmask.value = pack_words(op["gmask"], 1)
        dut.in_tok.value = op["tok"]
        dut.in_shift.value = op["shift"]
        dut.in_neg.value = int(op["neg"])
        dut.in_first.value = int(op["first"])
        dut.in_last.value = int(op["last"])
        await RisingEdge(dut.clk)
    dut.in_valid.value = 0
    for _ in range(6):
        await RisingEdge(dut.clk)
    want = model(cfg, seq)
    assert len(got) == len(want), f"{len(got)} results, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"result {i}: (token, accumulators) {g} != {w}"
    assert P * TW * T == len(dut.in_tbl)
