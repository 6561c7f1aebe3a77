"""cocotb bench: tlmm_lanes against a Python model of its contract: every op, each of the Q*T lanes looks
up its entry of the stored half table ((3**G + 1)/2 entries) and negates it where its sign is set,
masked groups add 0, the row sum is shifted by the bit plane (negated for the sign plane)
and accumulated in INT32 per (row, token); in_first restarts, in_last emits the Q accumulators of that
token 3 cycles later. Ops come in the engine's order (row batch, plane, chunk, token) with random idle
cycles; entries cover the extremes -128*G and 127*G."""

from __future__ import annotations

import math

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge
from tb_common import bench_config, pack_words, start_clock_and_reset, to_signed, unpack_words


def ops(cfg: dict, rng) -> list[dict]:
    G, T, Q, MT = cfg["G"], cfg["T"], cfg["Q"], cfg["MAXTOK"]
    P = (3**G + 1) // 2                   # stored entries
    lo, hi = -128 * G, 127 * G            # the range of a table entry: G int8 activations, +-1
    out = []
    for batch in range(6):
        planes = [(0, False)] if batch % 2 == 0 else [(b, b == 7) for b in range(8)]   # ternary / INT8 planes
        nch = 1 + batch % 3
        ntok = 1 + batch % MT
        for p, (shift, neg) in enumerate(planes):
            for c in range(nch):
                for tok in range(ntok):
                    if batch == 0:      # extremes
                        tbl = np.full((T, P), hi if c % 2 == 0 else lo)
                    else:
                        tbl = rng.integers(lo, hi + 1, size=(T, P))
                    out.append({"tbl": tbl, "idx": rng.integers(0, P, size=(Q, T)),
                                "sgn": rng.integers(0, 2, size=(Q, T)),
                                "gmask": [1] + [int(c < nch - 1 or rng.random() < 0.5) for _ in range(T - 1)],
                                "tok": tok, "shift": shift, "neg": neg, "first": p == 0 and c == 0,
                                "last": p == len(planes) - 1 and c == nch - 1})
    return out


def model(cfg: dict, seq: list[dict]) -> list[tuple[int, list[int]]]:
    Q, T = cfg["Q"], cfg["T"]
    acc = {}
    res = []
    for op in seq:
        for q in range(Q):
            s = sum((-1 if op["sgn"][q, t] else 1) * int(op["tbl"][t, op["idx"][q, t]])
                    for t in range(T) if op["gmask"][t])
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
    P, TW = (3**G + 1) // 2, 8 + math.ceil(math.log2(G))
    IW = int(P - 1).bit_length()
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
        dut.in_tbl.value = pack_words(op["tbl"].reshape(-1), TW)
        dut.in_idx.value = pack_words(op["idx"].reshape(-1), IW)
        dut.in_sgn.value = pack_words(op["sgn"].reshape(-1), 1)
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
