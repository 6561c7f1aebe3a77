"""cocotb benches of the floating-point primitives (hw/rtl/es_fadd, es_f2i, es_fdiv, es_fcvt, es_fmul64,
es_fsqrt, es_exp2neg), bit-exact against numpy on random operands over the whole exponent range plus
edge cases (zeros of both signs, the smallest and largest subnormals, 1, the largest finite value,
rounding ties, cancellation, overflow, results that underflow to subnormals or zero).

Pipelined units are driven with random `en` stalls (their inputs carry garbage while en = 0) and every
output is checked for as long as it is held; sequential units get random idle gaps, `start` pulses
while busy (which must be ignored) and changed operands after `start`, and their latency is checked
against the documented cycle count. One cocotb test per module (the toplevel's name picks it); the
bench parameters come from tests/test_rtl_fp.py through TLMM_CFG."""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

CLK_NS = 10
F32, F64 = np.float32, np.float64


# ---------------------------------------------------------------- operand generators (bit patterns)

EDGE32 = np.array([0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00800000,
                   0x00800001, 0x3F800000, 0xBF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7FFFFE, 0x3F800001,
                   0x3FFFFFFF, 0x40000000, 0x00400000, 0x33800000, 0x34000000, 0x4B000000, 0x4B800000],
                  np.uint32)
EDGE64 = np.array([0, 1 << 63, 1, (1 << 63) | 1, (1 << 52) - 1, 1 << 52, (1 << 52) + 1, 0x3FF0000000000000,
                   0xBFF0000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x3FF0000000000001,
                   0x3FFFFFFFFFFFFFFF, 0x4000000000000000, 0x0008000000000000, 0x3CA0000000000000,
                   0x4330000000000000, 0x47EFFFFFE0000000, 0x3810000000000000, 0x36A0000000000000],
                  np.uint64)


def rand_bits(rng: np.random.Generator, n: int, dbl: bool, emin: int = 0, emax: int | None = None,
              sign: bool = True) -> np.ndarray:
    """Finite values with the biased exponent uniform in [emin, emax] (0 = subnormal) and a random, an
    all-zero or an all-one fraction (the last two make ties and carries likely)."""
    ew, mw = (11, 52) if dbl else (8, 23)
    emax = (1 << ew) - 2 if emax is None else emax
    e = rng.integers(emin, emax + 1, n).astype(np.uint64)
    m = rng.integers(0, 1 << mw, n, dtype=np.uint64)
    kind = rng.random(n)
    m[kind < 0.1] = 0
    m[(kind >= 0.1) & (kind < 0.2)] = (1 << mw) - 1
    s = (rng.random(n) < 0.5).astype(np.uint64) if sign else np.zeros(n, np.uint64)
    bits = (s << np.uint64(ew + mw)) | (e << np.uint64(mw)) | m
    return bits if dbl else bits.astype(np.uint32)


def as_float(bits: np.ndarray, dbl: bool) -> np.ndarray:
    return np.asarray(bits, np.uint64 if dbl else np.uint32).view(F64 if dbl else F32)


def as_bits(x: np.ndarray, dbl: bool) -> np.ndarray:
    return np.asarray(x, F64 if dbl else F32).view(np.uint64 if dbl else np.uint32)


def ulp_step(bits: np.ndarray, k: np.ndarray, dbl: bool) -> np.ndarray:
    """bits +- k units in the last place (staying on the same side of zero, finite)."""
    sign = bits.astype(np.uint64) >> np.uint64(63 if dbl else 31)
    mag = bits.astype(np.uint64) & np.uint64((1 << (63 if dbl else 31)) - 1)
    top = (0x7FF << 52) - 1 if dbl else 0x7F7FFFFF
    m = np.clip(mag.astype(object) + k.astype(object), 0, top).astype(np.uint64)
    return ((sign << np.uint64(63 if dbl else 31)) | m).astype(bits.dtype)


def subnormal_count(bits: np.ndarray, dbl: bool) -> int:
    ew, mw = (11, 52) if dbl else (8, 23)
    b = bits.astype(np.uint64)
    return int((((b >> np.uint64(mw)) & np.uint64((1 << ew) - 1)) == 0).sum() -
               ((b & np.uint64((1 << (ew + mw)) - 1)) == 0).sum())


def _fmt(v: int, dbl: bool) -> str:
    return f"{v:016x}" if dbl else f"{v:08x}"


def check_equal(name: str, got: np.ndarray, want: np.ndarray, inputs: dict[str, np.ndarray], dbl: bool):
    got = np.asarray(got, np.uint64)
    want = np.asarray(want, np.uint64)
    bad = np.flatnonzero(got != want)
    assert not len(bad), f"{name}: {len(bad)} of {len(want)} wrong; " + "; ".join(
        " ".join(f"{k}={int(v[i]):x}" for k, v in inputs.items()) +
        f" got {_fmt(int(got[i]), dbl)} want {_fmt(int(want[i]), dbl)}" for i in bad[:6])


# ---------------------------------------------------------------- drivers

async def start_clock(dut):
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rst_n.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst_n.value = 1
    await FallingEdge(dut.clk)


def _sig(dut, unit: str, name: str):
    return getattr(dut, f"{unit}_{name}")


async def run_pipe(dut, unit: str, latency: int, inputs: dict[str, np.ndarray], widths: dict[str, int],
                   seed: int, p_stall: float = 0.3) -> np.ndarray:
    """Drive one operand set per enabled cycle through a pipelined unit with random en stalls; returns
    y for every operand set. Inputs are driven (and y read) at the falling edge: after the rising edge
    the pipeline has settled. While en = 0 the inputs carry random garbage, and y must hold."""
    rnd = random.Random(seed)
    n = len(next(iter(inputs.values())))
    cols = {k: [int(x) for x in v] for k, v in inputs.items()}
    got: list[int | None] = [None] * n
    issued = 0          # enabled edges so far
    en_prev = 0
    cycles = 0
    y_sig, en_sig = _sig(dut, unit, "y"), _sig(dut, unit, "en")
    sigs = {k: _sig(dut, unit, k) for k in widths}
    while True:
        if en_prev:
            issued += 1
        if issued >= latency:
            j = issued - latency
            if j < n:
                v = int(y_sig.value)
                if got[j] is None:
                    got[j] = v
                elif got[j] != v:
                    raise AssertionError(f"y changed during an en stall: {got[j]:x} -> {v:x} (operand {j})")
        if issued - latency >= n - 1 and got[n - 1] is not None:
            break
        en = 0 if rnd.random() < p_stall else 1
        en_sig.value = en
        for k, w in widths.items():
            sigs[k].value = cols[k][issued] if en and issued < n else rnd.getrandbits(w)
        en_prev = en
        await FallingEdge(dut.clk)
        cycles += 1
        if cycles > 4 * (n + latency) + 100:
            raise AssertionError("pipeline drive did not finish")
    return np.array(got, np.uint64)


async def run_seq(dut, unit: str, inputs: dict[str, np.ndarray], widths: dict[str, int], latency,
                  seed: int) -> np.ndarray:
    """One operation at a time on a start/busy/done unit. `latency(i)` is the documented number of
    cycles from the rising edge that takes `start` to the one that raises `done`. Between operations:
    0-3 idle cycles; while busy: a stray start pulse with other operands (ignored) and the operands
    changed (the unit latched them)."""
    rnd = random.Random(seed)
    n = len(next(iter(inputs.values())))
    cols = {k: [int(x) for x in v] for k, v in inputs.items()}
    out = np.zeros(n, np.uint64)
    start, busy, done, y = (_sig(dut, unit, k) for k in ("start", "busy", "done", "y"))
    sigs = {k: _sig(dut, unit, k) for k in widths}
    for i in range(n):
        for _ in range(rnd.randrange(4)):
            await FallingEdge(dut.clk)
        assert int(busy.value) == 0, "busy while idle"
        for k in widths:
            sigs[k].value = cols[k][i]
        start.value = 1
        await FallingEdge(dut.clk)        # the rising edge in between took start
        start.value = 0
        assert int(busy.value) == 1, "busy not raised after start"
        for k, w in widths.items():
            sigs[k].value = rnd.getrandbits(w)
        lat = latency(i)
        k = 0                              # falling edges since the one after the start edge
        if rnd.random() < 0.3 and lat > 4:
            await FallingEdge(dut.clk)
            start.value = 1
            await FallingEdge(dut.clk)
            start.value = 0
            k = 2
        # the rising edge `lat` cycles after the start edge raises done: check the falling edge
        # before it (done still 0) and the one after it
        remaining = lat - 1 - k
        if remaining >= 1:
            await Timer(remaining * CLK_NS - CLK_NS // 2, unit="ns")
            await FallingEdge(dut.clk)
        assert int(done.value) == 0, f"done raised before {lat} cycles (operation {i})"
        await FallingEdge(dut.clk)
        assert int(done.value) == 1, f"done not raised {lat} cycles after start (operation {i})"
        out[i] = int(y.value)
        await FallingEdge(dut.clk)
        assert int(done.value) == 0 and int(busy.value) == 0, "done is not a one-cycle pulse"
        assert int(y.value) == int(out[i]), "y not held after done"
    return out


async def run_seq_copies(dut, unit: str, copies: int, inputs: dict[str, np.ndarray], widths: dict[str, int],
                         latency, seed: int) -> np.ndarray:
    """run_seq on `copies` instances <unit>0.. side by side, operation i on copy i % copies."""
    n = len(next(iter(inputs.values())))
    parts = [np.arange(c, n, copies) for c in range(copies)]
    tasks = [cocotb.start_soon(run_seq(dut, f"{unit}{c}", {k: v[idx] for k, v in inputs.items()}, widths,
                                       lambda i, idx=idx: latency(idx[i]), seed + c))
             for c, idx in enumerate(parts)]
    out = np.zeros(n, np.uint64)
    for idx, t in zip(parts, tasks, strict=True):
        out[idx] = await t
    return out


SEQ_COPIES = 4      # instances of each sequential unit in sim/tb_es_fp_top.sv
# the latencies documented in the modules' headers (en-cycles; start-to-done cycles)
LAT = {"fadd": 6, "f2i": 4, "fcvt": 5, "exp2neg": 14, "fdiv_s": 31, "fdiv_d": 60, "fmul64": 58, "fsqrt": 57}


# ---------------------------------------------------------------- es_fadd

def fadd_cases(rng: np.random.Generator, n: int, dbl: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mw = 52 if dbl else 23
    emax = 2046 if dbl else 254
    q = n // 8
    a = rand_bits(rng, n, dbl)
    b = rand_bits(rng, n, dbl)
    ut = np.uint64 if dbl else np.uint32
    ab = a.astype(np.uint64)
    # close exponents: the near path (cancellation by many bits), carries, exponent 1 <-> 0
    ea = (ab >> np.uint64(mw)) & np.uint64(emax + 1)
    eb = np.clip(ea.astype(np.int64) + rng.integers(-3, 4, n), 0, emax).astype(np.uint64)
    close = (b.astype(np.uint64) & ~(np.uint64(emax + 1) << np.uint64(mw))) | (eb << np.uint64(mw))
    b[q:3 * q] = close.astype(ut)[q:3 * q]
    # b = -(a +- a few ulp) and b = -a: deep and exact cancellation
    sgn = ut(1 << (63 if dbl else 31))
    b[3 * q:4 * q] = ulp_step(a[3 * q:4 * q], rng.integers(-3, 4, q), dbl) ^ sgn
    # ties: b is exactly half an ulp of a (or 1.5 ulp, ...): exponent of a minus P, fraction 0 or 1/2
    tie_e = np.clip(ea.astype(np.int64) - (mw + 1) - rng.integers(0, 2, n), 1, emax).astype(np.uint64)
    tie = (tie_e << np.uint64(mw)) | (rng.integers(0, 2, n).astype(np.uint64) << np.uint64(mw - 1))
    tie |= (rng.random(n) < 0.5).astype(np.uint64) << np.uint64(63 if dbl else 31)
    b[4 * q:5 * q] = tie.astype(ut)[4 * q:5 * q]
    # subnormal and near-subnormal operands, overflow near the largest finite value
    a[5 * q:6 * q] = rand_bits(rng, q, dbl, 0, 2)
    b[5 * q:6 * q] = rand_bits(rng, q, dbl, 0, 2)
    a[6 * q:7 * q] = rand_bits(rng, q, dbl, emax - 1, emax)
    b[6 * q:7 * q] = rand_bits(rng, q, dbl, emax - 2, emax)
    edge = EDGE64 if dbl else EDGE32
    ne = len(edge)
    a[7 * q:7 * q + ne * ne] = np.repeat(edge, ne)[: max(0, min(ne * ne, n - 7 * q))]
    b[7 * q:7 * q + ne * ne] = np.tile(edge, ne)[: max(0, min(ne * ne, n - 7 * q))]
    sub = (rng.random(n) < 0.5).astype(np.uint64)
    return a, b, sub


def fadd_ref(a, b, sub, dbl):
    fa, fb = as_float(a, dbl), as_float(b, dbl)
    with np.errstate(all="ignore"):
        r = np.where(sub.astype(bool), fa - fb, fa + fb)
    return as_bits(r, dbl)


@cocotb.test()
async def es_fadd_matches_numpy(dut):
    await start_clock(dut)
    for w in (32, 64):
        dbl = w == 64
        rng = np.random.default_rng(1400 + w)
        a, b, sub = fadd_cases(rng, 2000, dbl)
        want = fadd_ref(a, b, sub, dbl)
        got = await run_pipe(dut, f"fadd{w}", LAT["fadd"], {"a": a, "b": b, "sub": sub}, {"a": w, "b": w, "sub": 1},
                             seed=w)
        check_equal(f"es_fadd W={w}", got, want, {"a": a, "b": b, "sub": sub}, dbl)
        wf = as_float(want, dbl)
        assert subnormal_count(want, dbl) > 10 and np.isinf(wf).sum() > 10
        assert ((wf == 0) & ~np.signbit(wf) & (as_float(a, dbl) != 0)).sum() > 10   # exact cancellation: +0


# ---------------------------------------------------------------- es_f2i

F2I_UNITS = {"f2i8": (8, -128, 127), "f2ip": (17, 0, 32768), "f2i32": (32, -(2**31), 2**31 - 1)}


def f2i_cases(rng: np.random.Generator, n: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    q = n // 6
    x = rand_bits(rng, n, False)                                   # whole range: mostly 0 or saturated
    span = max(abs(lo), abs(hi)) * 1.2 + 4
    # around the range: integers, halves (ties to even), random fractions, the bounds +- 0.5
    base = rng.integers(-int(span), int(span) + 1, 3 * q).astype(F64)
    frac = np.choose(rng.integers(0, 4, 3 * q), [np.zeros(3 * q), np.full(3 * q, 0.5), np.full(3 * q, -0.5),
                                                 rng.random(3 * q)])
    x[q:4 * q] = as_bits((base + frac).astype(F32), False)
    bounds = np.array([lo, hi, lo - 1, hi + 1], F64)
    x[4 * q:4 * q + 16] = as_bits((np.repeat(bounds, 4) + np.tile([0.5, -0.5, 0.49, -0.51], 4)).astype(F32), False)
    x[4 * q + 16:4 * q + 16 + len(EDGE32)] = EDGE32
    x[4 * q + 40:4 * q + 48] = as_bits(np.array([0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.50000006], F32),
                                       False)
    k = np.zeros(n, np.int64)
    # rms_factor's block fixed point: k = 15 - e with max|x| = f * 2**e over a block of 16
    blk = as_float(rand_bits(rng, q // 16 * 16, False), False).reshape(-1, 16)
    _, e = np.frexp(np.max(np.abs(blk), axis=-1))
    nb = blk.size
    x[5 * q:5 * q + nb] = as_bits(blk.reshape(-1), False)
    k[5 * q:5 * q + nb] = np.repeat(15 - e, 16)
    # scaled by random powers of two (both directions, out of binary32's range too)
    k[4 * q + 64:5 * q] = rng.integers(-300, 300, q - 64)
    return x, k


def f2i_ref(x, k, lo, hi, w):
    v = np.clip(np.rint(np.ldexp(as_float(x, False).astype(F64), k)), lo, hi).astype(np.int64)
    return (v & ((1 << w) - 1)).astype(np.uint64)


@cocotb.test()
async def es_f2i_matches_numpy(dut):
    await start_clock(dut)
    for unit, (w, lo, hi) in F2I_UNITS.items():
        rng = np.random.default_rng(1401 + w)
        x, k = f2i_cases(rng, 1800, lo, hi)
        want = f2i_ref(x, k, lo, hi, w)
        # the form numerics.quant_act uses: clip(rint(float32)) (int8 bounds are exact in binary32)
        plain = (k == 0) & (w == 8)
        assert np.array_equal(want[plain], (np.clip(np.rint(as_float(x[plain], False)), lo, hi).astype(np.int64)
                                            & ((1 << w) - 1)).astype(np.uint64))
        rms = slice(1800 // 6 * 5, 1800 // 6 * 5 + 288)    # the form numerics.rms_factor uses: rint(ldexp(x))
        zr = np.rint(np.ldexp(as_float(x[rms], False), k[rms].astype(np.int32))).astype(np.int64)
        assert np.array_equal(want[rms], (np.clip(zr, lo, hi) & ((1 << w) - 1)).astype(np.uint64))
        got = await run_pipe(dut, unit, LAT["f2i"], {"x": x, "k": k & 0x3FF}, {"x": 32, "k": 10}, seed=w)
        check_equal(f"es_f2i {unit} [{lo}, {hi}]", got, want, {"x": x, "k": k}, False)
        vals = np.where(want >= (1 << (w - 1)), want.astype(np.int64) - (1 << w), want.astype(np.int64)) \
            if lo < 0 else want.astype(np.int64)
        assert (vals == lo).sum() > 10 and (vals == hi).sum() > 10 and (vals == 0).sum() > 10


# ---------------------------------------------------------------- es_fdiv

def fdiv_cases(rng: np.random.Generator, n: int, dbl: bool) -> tuple[np.ndarray, np.ndarray]:
    q = n // 6
    mw, emax, bias = (52, 2046, 1023) if dbl else (23, 254, 127)
    a = rand_bits(rng, n, dbl)
    b = rand_bits(rng, n, dbl)
    ut = np.uint64 if dbl else np.uint32
    # quotients near the subnormal range and overflow: exponent of b set from a's
    ea = (a.astype(np.uint64) >> np.uint64(mw)) & np.uint64(emax + 1)
    for lo_, hi_, sl in ((bias + mw - 2, bias + mw + 3, slice(q, 2 * q)), (bias - 2, bias + 1, slice(2 * q, 3 * q))):
        off = rng.integers(lo_, hi_, n)
        eb = np.clip(ea.astype(np.int64) + off if sl.start == q else ea.astype(np.int64) - off + 2 * bias - bias,
                     0, emax).astype(np.uint64)
        bb = (b.astype(np.uint64) & ~(np.uint64(emax + 1) << np.uint64(mw))) | (eb << np.uint64(mw))
        b[sl] = bb.astype(ut)[sl]
    # ties in the subnormal range: b a power of two, a small
    a[3 * q:4 * q] = rand_bits(rng, q, dbl, 0, mw + 2)
    b[3 * q:4 * q] = (rng.integers(bias, bias + 4, q).astype(np.uint64) << np.uint64(mw)).astype(ut)
    # the units' divisions: 127 / m, m / 127, 32767 / max a, 1 / (1 + e), e / (1 + e)
    f = F64 if dbl else F32
    m = np.maximum(np.abs(as_float(rand_bits(rng, q, dbl, bias - 40, bias + 40), dbl)), f(1e-5)).astype(f)
    e = as_float(rand_bits(rng, q, dbl, bias - 30, bias - 1, sign=False), dbl)
    one_e = (f(1) + e).astype(f)
    cols = [(np.full(q, f(127)), m), (m, np.full(q, f(127))), (np.full(q, f(32767)), m), (np.ones(q, f), one_e),
            (e, one_e)]
    pick = rng.integers(0, len(cols), q)
    a[4 * q:5 * q] = as_bits(np.choose(pick, [c[0] for c in cols]), dbl)
    b[4 * q:5 * q] = as_bits(np.choose(pick, [c[1] for c in cols]), dbl)
    edge = EDGE64 if dbl else EDGE32
    ne = len(edge)
    m2 = min(ne * ne, n - 5 * q)
    a[5 * q:5 * q + m2] = np.repeat(edge, ne)[:m2]
    b[5 * q:5 * q + m2] = np.tile(edge, ne)[:m2]
    return a, b


@cocotb.test()
async def es_fdiv_matches_numpy(dut):
    await start_clock(dut)
    rng = np.random.default_rng(1402)
    n32, n64 = 700, 500
    a32, b32 = fdiv_cases(rng, n32, False)
    a64, b64 = fdiv_cases(rng, n64, True)
    with np.errstate(all="ignore"):
        w32 = as_bits(as_float(a32, False) / as_float(b32, False), False)
        w64 = as_bits(as_float(a64, True) / as_float(b64, True), True)
    # interleave the formats
    dbl = np.concatenate([np.zeros(n32, np.uint64), np.ones(n64, np.uint64)])
    order = rng.permutation(n32 + n64)
    a = np.concatenate([a32.astype(np.uint64), a64])[order]
    b = np.concatenate([b32.astype(np.uint64), b64])[order]
    want = np.concatenate([w32.astype(np.uint64), w64])[order]
    dbl = dbl[order]
    nan = (as_float(a32, False) == 0) & (as_float(b32, False) == 0)
    nan = np.concatenate([nan, (as_float(a64, True) == 0) & (as_float(b64, True) == 0)])[order]
    # 0 / 0: the documented default NaN (numpy's NaN bits differ between platforms)
    want = np.where(nan, np.where(dbl == 1, np.uint64(0x7FF8000000000000), np.uint64(0x7FC00000)), want)
    got = await run_seq_copies(dut, "fdiv", SEQ_COPIES, {"a": a, "b": b, "dbl": dbl}, {"a": 64, "b": 64, "dbl": 1},
                               lambda i: LAT["fdiv_d"] if dbl[i] else LAT["fdiv_s"], seed=5)
    check_equal("es_fdiv", got, want, {"dbl": dbl, "a": a, "b": b}, True)
    assert subnormal_count(w32, False) > 20 and subnormal_count(w64, True) > 20
    assert np.isinf(as_float(w32, False)).sum() > 10 and np.isinf(as_float(w64, True)).sum() > 10


# ---------------------------------------------------------------- es_fcvt

def fcvt_cases(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(op, a, k, want) for the four ops, n each, shuffled."""
    ops, aa, kk, ww = [], [], [], []
    # 0 F2D: every binary32, exact; with k the single rounding of x * 2**k (= ldexp of the exact float64)
    x = rand_bits(rng, n, False)
    x[: len(EDGE32)] = EDGE32
    k = np.where(rng.random(n) < 0.3, rng.integers(-1100, 1100, n), 0)
    ops.append(np.zeros(n, np.int64))
    aa.append(x.astype(np.uint64))
    kk.append(k)
    with np.errstate(all="ignore"):
        ww.append(as_bits(np.ldexp(as_float(x, False).astype(F64), k), True))
    # 1 D2F: binary64 around binary32's range (subnormals, overflow, ties at bit 29) and beyond
    d = rand_bits(rng, n, True, 1023 - 160, 1023 + 130)
    d[: n // 4] = rand_bits(rng, n // 4, True)
    tie = rng.random(n) < 0.2
    d[tie] = (d[tie] & ~np.uint64((1 << 29) - 1)) | np.uint64(1 << 28)
    d[n // 4:n // 4 + len(EDGE64)] = EDGE64
    d[n // 4 + 20:n // 4 + 24] = np.array([0x47EFFFFFF0000000, 0x47EFFFFFEFFFFFFF, 0x36A0000000000000,
                                           0x3690000000000001], np.uint64)   # -> max, inf; 2**-149 tie, above
    k = np.zeros(n, np.int64)
    mid = np.flatnonzero(np.abs(((d >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 1023) < 100)
    ksel = mid[rng.random(len(mid)) < 0.3]
    k[ksel] = rng.integers(-120, 120, len(ksel))
    ops.append(np.ones(n, np.int64))
    aa.append(d)
    kk.append(k)
    with np.errstate(all="ignore"):
        ww.append(as_bits(np.ldexp(as_float(d, True), k).astype(F32), False).astype(np.uint64))
    # 2 L2D: int64 of every length (ties beyond 2**53), 0, -1, extremes
    nb = rng.integers(0, 64, n)
    v = np.array([int(rng.integers(0, 1 << 62)) >> (62 - int(b)) if b < 63 else int(rng.integers(0, 1 << 62)) << 1
                  for b in nb], dtype=object)
    neg = rng.random(n) < 0.5
    v = np.array([-int(t) if g else int(t) for t, g in zip(v, neg, strict=True)], dtype=object)
    v[:8] = [0, 1, -1, -(2**63), 2**63 - 1, 2**53 + 1, -(2**53 + 3), 2**54 + 2]
    k = np.where(rng.random(n) < 0.3, rng.integers(-500, 500, n), 0)
    iv = v.astype(np.int64)
    ops.append(np.full(n, 2, np.int64))
    aa.append(iv.view(np.uint64))
    kk.append(k)
    ww.append(as_bits(np.ldexp(iv.astype(F64), k), True))
    # 3 LDEXP: every binary64, every k: overflow, subnormal results with ties, to zero
    d = rand_bits(rng, n, True)
    d[: len(EDGE64)] = EDGE64
    k = rng.integers(-2048, 2048, n)
    e = ((d >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    near = rng.random(n) < 0.4             # results near the subnormal range
    k[near] = -e[near] + rng.integers(-54, 3, near.sum())
    k = np.clip(k, -2048, 2047)                # the port's range
    ops.append(np.full(n, 3, np.int64))
    aa.append(d)
    kk.append(k)
    with np.errstate(all="ignore"):
        ww.append(as_bits(np.ldexp(as_float(d, True), k), True))
    op, a, k, want = (np.concatenate(c) for c in (ops, aa, kk, ww))
    order = rng.permutation(len(op))
    return op[order], a[order], k[order], want[order].astype(np.uint64)


@cocotb.test()
async def es_fcvt_matches_numpy(dut):
    await start_clock(dut)
    rng = np.random.default_rng(1403)
    op, a, k, want = fcvt_cases(rng, 600)
    got = await run_pipe(dut, "fcvt", LAT["fcvt"], {"op": op, "a": a, "k": k & 0xFFF}, {"op": 2, "a": 64, "k": 12},
                         seed=9)
    check_equal("es_fcvt", got, want, {"op": op, "a": a, "k": k}, True)
    d2f = want[op == 1].astype(np.uint32)
    assert subnormal_count(d2f, False) > 10 and np.isinf(as_float(d2f, False)).sum() > 10
    assert subnormal_count(want[op == 3], True) > 50 and np.isinf(as_float(want[op == 3], True)).sum() > 10


# ---------------------------------------------------------------- es_fmul64

@cocotb.test()
async def es_fmul64_matches_numpy(dut):
    await start_clock(dut)
    rng = np.random.default_rng(1404)
    n = 800
    q = n // 5
    a = rand_bits(rng, n, True)
    b = rand_bits(rng, n, True)
    ea = ((a >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    # products near the subnormal range and near overflow
    eb = np.clip(1023 - ea + np.where(rng.random(n) < 0.5, rng.integers(-56, 3, n), rng.integers(2040, 2050, n)),
                 0, 2046).astype(np.uint64)
    b[:2 * q] = ((b & ~np.uint64(0x7FF << 52)) | (eb << np.uint64(52)))[:2 * q]
    # ties: a significand with two bits times an odd b needs 54-55 bits
    small = (rng.integers(1, 4, q).astype(np.uint64) << np.uint64(50))
    a[2 * q:3 * q] = (a[2 * q:3 * q] & ~np.uint64((1 << 52) - 1)) | small
    b[2 * q:3 * q] |= np.uint64(1)
    # norm_quant's s = float64(m) / 127 * r
    m = np.abs(as_float(rand_bits(rng, q, False, 100, 150), False)).astype(F64)
    r = 1.0 / np.sqrt(np.abs(as_float(rand_bits(rng, q, True, 900, 1100), True)) + 1e-5)
    a[3 * q:4 * q] = as_bits(m / 127.0, True)
    b[3 * q:4 * q] = as_bits(r, True)
    ne = len(EDGE64)
    a[4 * q:4 * q + ne * ne] = np.repeat(EDGE64, ne)[: n - 4 * q]
    b[4 * q:4 * q + ne * ne] = np.tile(EDGE64, ne)[: n - 4 * q]
    with np.errstate(all="ignore"):
        want = as_bits(as_float(a, True) * as_float(b, True), True)
    got = await run_seq_copies(dut, "fmul", SEQ_COPIES, {"a": a, "b": b}, {"a": 64, "b": 64},
                               lambda i: LAT["fmul64"], seed=11)
    check_equal("es_fmul64", got, want, {"a": a, "b": b}, True)
    assert subnormal_count(want, True) > 30 and np.isinf(as_float(want, True)).sum() > 30


# ---------------------------------------------------------------- es_fsqrt

@cocotb.test()
async def es_fsqrt_matches_numpy(dut):
    await start_clock(dut)
    rng = np.random.default_rng(1405)
    n = 600
    a = rand_bits(rng, n, True, sign=False)
    a[: n // 6] = rand_bits(rng, n // 6, True, 0, 3, sign=False)                 # subnormal operands
    sq = rng.integers(1, 1 << 26, n // 6).astype(F64) * 2.0 ** rng.integers(-500, 480, n // 6)
    a[n // 6:n // 3] = as_bits(sq * sq, True)                                     # exact squares
    ms = np.ldexp(rng.integers(1 << 28, 1 << 40, n // 6).astype(F64), rng.integers(-326, 226, n // 6))
    a[n // 3:n // 2] = as_bits(ms / 1536.0 + 1e-5, True)                         # rms_factor's ms + eps
    a[n // 2:n // 2 + len(EDGE64)] = EDGE64 & np.uint64((1 << 63) - 1)
    a[n // 2 + 30:n // 2 + 33] = np.array([1 << 63, 0xBFF0000000000000, 0x8000000000000001], np.uint64)
    with np.errstate(all="ignore"):
        want = as_bits(np.sqrt(as_float(a, True)), True)
    neg = (as_float(a, True) < 0)
    want = np.where(neg, np.uint64(0x7FF8000000000000), want)                  # the documented default NaN
    got = await run_seq_copies(dut, "fsqrt", SEQ_COPIES, {"a": a}, {"a": 64}, lambda i: LAT["fsqrt"], seed=13)
    check_equal("es_fsqrt", got, want, {"a": a}, True)
    assert np.all(want[a == np.uint64(1 << 63)] == np.uint64(1 << 63))                  # sqrt(-0) = -0


# ---------------------------------------------------------------- es_exp2neg

TINY = 2.0 ** -25      # |z| <= 2**-25: f = float32(z - n) rounds to 1.0 (see exp2neg_ref)


def exp2neg_ref(z_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """numerics.exp2_neg; where it indexes past its table (f rounded to 1.0, |z| <= 2**-25, z != 0)
    the unit computes n + 1, f = 0, i.e. 1.0 = 2**z rounded: the value the numerics contract must
    define there. Returns (want, mask of those operands)."""
    from edgestream.numerics import exp2_neg

    z = as_float(z_bits, False)
    tiny = (np.abs(z) <= TINY) & (z != 0)
    want = np.empty(len(z), F32)
    want[~tiny] = exp2_neg(z[~tiny])
    try:
        want[tiny] = exp2_neg(z[tiny])
    except IndexError:
        want[tiny] = F32(1.0)
    return as_bits(want, False), tiny


@cocotb.test()
async def es_exp2neg_matches_numerics(dut):
    from edgestream.numerics import LOG2E

    await start_clock(dut)
    rng = np.random.default_rng(1406)
    n = 2400
    q = n // 6
    z = np.zeros(n, F32)
    z[:q] = -rng.uniform(0, 70, q)                                                # the whole domain and beyond
    z[q:2 * q] = -as_float(rand_bits(rng, q, False, 0, 133, sign=False), False)    # every magnitude, subnormals
    # table boundaries i/256 and their neighbours, integers, -64 and just beyond
    bnd = (-rng.integers(0, 64 * 256, q) / 256.0).astype(F32)
    z[2 * q:3 * q] = as_float(ulp_step(as_bits(bnd, False), rng.integers(-2, 3, q), False), False)
    z[3 * q:3 * q + 12] = [0.0, -0.0, -1.0, -0.5, -64.0, -64.00001, -63.99999, -65.0, -2.0**-25, -2.0**-24,
                           -2.0**-26, -2.0**-149]
    # attention's z = (s - max s) * log2 e, SwiGLU's -|g| * log2 e
    s = (rng.standard_normal((q // 16, 16)) * rng.uniform(0.01, 30, (q // 16, 1))).astype(F32)
    t = (s - s.max(axis=1, keepdims=True)).astype(F32).reshape(-1)
    g = -np.abs(as_float(rand_bits(rng, q, False, 90, 135), False))
    z[4 * q:4 * q + len(t)] = (t * LOG2E).astype(F32)
    z[5 * q:6 * q] = (g * LOG2E).astype(F32)
    zb = as_bits(z, False)
    want, tiny = exp2neg_ref(zb)
    got = await run_pipe(dut, "exp2", LAT["exp2neg"], {"z": zb}, {"z": 32}, seed=15)
    check_equal("es_exp2neg", got, want, {"z": zb}, False)
    assert tiny.sum() > 10 and (as_float(want, False) == 0).sum() > 10
