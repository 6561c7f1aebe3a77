"""cocotb bench: es_dequant, the shell's dequantize stage. Float32 results bit-exact against numpy's
float32(acc) * float32(beta * s) (IEEE binary32, round to nearest even) on random and edge values:
acc = 0, +-1, +-(2**31 - 1), -2**31, 2**24 + 1 (int -> float rounding), scales from subnormal to
huge (subnormal f and y, overflow to inf); s[t] loading, beta popped once per row batch, valid/ready
with random idle inputs and backpressure; en = 0 passes the INT32 accumulators through. DL < Q: each
unit comes out as Q/DL beats of DL lanes, the lowest first, and the accumulator and beta units are taken
only with the last one (the engine is held back while the stage works through a unit)."""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from tb_common import StreamSink, StreamSource, pack_words, random_pause, start_clock_and_reset, unpack_words

_CFG = json.loads(os.environ.get("TLMM_CFG", "{}"))
Q = int(_CFG.get("Q", 4))
DL = int(_CFG.get("DL", Q))
NS = Q // DL  # output beats per unit
EDGE_ACC = [0, 1, -1, 2**31 - 1, -(2**31 - 1), -(2**31), 2**24 + 1, -(2**24 + 3), 12345, -7]


def _scales(rng, n):
    """Positive finite float32 scales: log-uniform over the whole exponent range plus edge values."""
    e = rng.uniform(-140, 120, n)
    v = (2.0 ** e * rng.uniform(1, 2, n)).astype(np.float32)
    edge = np.array([1.0, 2.0**-126, 2.0**-149, 3e38, 1e-5, 0.5, 2.0**-140], np.float32)
    v[: min(n, len(edge))] = edge[: min(n, len(edge))]
    return v[rng.permutation(n)]


async def _run(dut, rng, ntok: int, rb: int, seed: int):
    s = _scales(rng, ntok)
    beta = _scales(rng, rb * Q).reshape(rb, Q)
    acc = rng.integers(-(2**31), 2**31, (rb, ntok, Q), dtype=np.int64)
    edge = np.array(EDGE_ACC * (acc.size // len(EDGE_ACC) + 1))[: acc.size // 3]
    acc.reshape(-1)[rng.choice(acc.size, len(edge), replace=False)] = edge
    small = rng.random(acc.shape) < 0.3
    acc[small] = rng.integers(-1000, 1000, small.sum())
    with np.errstate(over="ignore", under="ignore"):
        f = (beta[:, None, :] * s[None, :, None]).astype(np.float32)
    # es_fmul takes finite operands only (hw/rtl/es_fmul.sv): where beta * s overflowed to inf, acc = 0
    # (0 * inf, NaN in IEEE) is outside the stage's contract, so those lanes get a nonzero accumulator
    acc[(acc == 0) & np.isinf(np.broadcast_to(f, acc.shape))] = 1
    acc = acc.astype(np.int32)
    with np.errstate(over="ignore", under="ignore"):
        want = (acc.astype(np.float32) * f).astype(np.float32)

    dut.en.value = 1
    dut.ntok.value = ntok
    sp = np.zeros(-(-ntok // 4) * 4, np.float32)
    sp[:ntok] = s
    for i in range(len(sp) // 4):
        dut.ld_valid.value = 1
        dut.ld_idx.value = i
        dut.ld_data.value = pack_words(sp[4 * i:4 * i + 4].view(np.uint32), 32)
        await RisingEdge(dut.clk)
    dut.ld_valid.value = 0

    src = StreamSource(dut.clk, dut.in_valid, dut.in_ready, dut.in_data, dut.in_tok)
    bsrc = StreamSource(dut.clk, dut.b_valid, dut.b_ready, dut.b_data)
    sink = StreamSink(dut.clk, dut.out_valid, dut.out_ready, data=dut.out_data)
    src.set_pause_generator(random_pause(seed, 0.3))
    bsrc.set_pause_generator(random_pause(seed + 1, 0.5))
    sink.set_pause_generator(random_pause(seed + 2, 0.3))
    for r in range(rb):
        bsrc.send(pack_words(beta[r].view(np.uint32), 32))
        for t in range(ntok):
            src.send(pack_words(acc[r, t], 32), t)
    for _ in range(20 * rb * ntok * NS + 200):
        await RisingEdge(dut.clk)
        if len(sink.beats) == rb * ntok * NS and src.empty() and bsrc.empty():
            break
    for _ in range(10):
        await RisingEdge(dut.clk)
    assert len(sink.beats) == rb * ntok * NS, f"{len(sink.beats)} output beats of {rb * ntok * NS}"
    got = _units(sink.beats)
    exp = want.reshape(rb * ntok, Q).view(np.uint32)
    bad = np.argwhere(got != exp)
    assert not len(bad), "mismatch " + ", ".join(
        f"acc={acc.reshape(-1, Q)[i, q]} f={f.reshape(-1, Q)[i, q]!r} got {got[i, q]:08x} want {exp[i, q]:08x}"
        for i, q in bad[:5])
    assert _subnormals(exp) > 0  # the edge values did produce subnormal outputs
    return src, bsrc, sink


def _units(beats) -> np.ndarray:
    """Output beats (DL lanes each) regrouped into units of Q lanes."""
    lanes = np.array([unpack_words(b["data"], 32, DL, signed=False) for b in beats], np.uint32)
    return lanes.reshape(-1, Q)


def _subnormals(bits: np.ndarray) -> int:
    return int(((((bits >> 23) & 0xFF) == 0) & ((bits & 0x7FFFFF) != 0)).sum())


@cocotb.test()
async def dequant_matches_numpy(dut):
    dut.en.value = 0
    dut.ld_valid.value = 0
    dut.ntok.value = 1
    await start_clock_and_reset(dut)
    rng = np.random.default_rng(5)
    await _run(dut, rng, ntok=8, rb=max(4, 192 // Q), seed=1)  # about 200 lanes of beta at any Q


@cocotb.test()
async def dequant_ragged_tokens_and_passthrough(dut):
    dut.en.value = 0
    dut.ld_valid.value = 0
    dut.ntok.value = 1
    await start_clock_and_reset(dut)
    rng = np.random.default_rng(6)
    src, bsrc, sink = await _run(dut, rng, ntok=3, rb=max(4, 160 // Q), seed=7)
    # INT32 mode: the accelerator's accumulators pass through untouched, beta is never taken
    dut.en.value = 0
    sink.beats.clear()
    vals = [pack_words(rng.integers(-(2**31), 2**31, Q), 32) for _ in range(20)]
    bsrc.set_pause_generator(None)
    bsrc.send(0)
    for v in vals:
        src.send(v, 0)
    for _ in range(200 * NS):
        await RisingEdge(dut.clk)
    want = np.array([unpack_words(v, 32, Q, signed=False) for v in vals], np.uint32)
    got = _units(sink.beats)
    assert got.shape == want.shape and (got == want).all()
    assert int(dut.b_valid.value) == 1  # the beta beat is still offered: never taken in INT32 mode
