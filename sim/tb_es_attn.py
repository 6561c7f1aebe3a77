"""cocotb bench: the attention unit (hw/rtl/es_attn.sv) behind its own es_axi_rd / es_axi_wr
(sim/es_attn_bench.sv), with sim/sim_server.py's DdrModel (cocotbext-axi AXI RAM, fixed read latency,
fault windows) as DDR and cocotbext-axi pause generators on R, W and B as idle/backpressure inserters.

Each case builds a real memory image: the buffer map and f32 q/k/v buffers in the tile layout of
docs/registers.md, a KV region holding earlier positions (quantized with edgestream.numerics as the
unit would have written them, docs/units.md "KV cache in DDR"), then runs one ATTENTION and compares
the whole memory byte for byte with sim/es_attn_model.py (edgestream.numerics.quant_heads and
attention on the same image): every KV slot written and every output float, bit for bit.

Tests (the bench config's "tests" list picks them): `cases` (one-token decode at position 0, a full
cache, a causal prefill tile, a prefill longer than MAXTOK, GQA ratios 1/2/4, all-zero rows,
max-magnitude rows), `faults` (KV region too small, bad buffers, bad fields: the error code and an
untouched memory), `perf` (one decode step, or a prefill tile of "ntok" tokens, ending at context
"ctx" of a bench-config shape: cycles by phase, bus beats; written to the config's "perf_out" JSON file).
"""

from __future__ import annotations

import json
import logging
import struct

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus
from cocotbext.axi.constants import AxiResp
from es_attn_model import BEAT, Fault, KvLayout, Regs, attention_instr, cdiv, run_attention, tile_offset
from sim_server import PERIOD_NS, DdrModel, Faults, weight_buses
from tb_common import bench_config, high, random_pause

from edgestream import numerics as nx
from edgestream import program as pg
from edgestream import regmap as rm

CFG = bench_config()
Q, MT = int(CFG.get("Q", 16)), int(CFG.get("MAXTOK", 4))
DMAX, SMAX, NQ = int(CFG.get("DMAX", 256)), int(CFG.get("SMAX", 4096)), int(CFG.get("NQ", 4))
KVP = int(CFG.get("KVP", 1))    # KV ports (the striped KV layout, m_axi_w0.. of the bench)
U = 4 * Q
F32 = np.float32
ACT_BASE = 0x1000
NMAP = 8                     # buffer-map entries (buffer 0..7)


class Case:
    """One ATTENTION: shape, positions, data kind; builds the memory image."""

    def __init__(self, name: str, d: int, heads: int, kv_heads: int, ntok: int, pos0: int, *, layers: int = 2,
                 layer: int = 1, kind: str = "random", slots: int | None = None, seed: int = 0):
        self.name, self.d, self.h, self.kvh, self.ntok, self.pos0 = name, d, heads, kv_heads, ntok, pos0
        self.layers, self.layer, self.kind = layers, layer, kind
        self.slots = slots if slots is not None else pos0 + ntok
        self.rng = np.random.default_rng(seed)

    def rows(self, n: int, width: int) -> np.ndarray:
        r = self.rng
        x = (r.standard_normal((n, width)) * np.exp(r.uniform(-3, 3, (n, 1)))).astype(F32)
        if self.kind == "zero":
            x[:, : width // 2] = 0          # whole heads of zeros (the first half of the heads)
            x[n // 2:] = 0                  # and whole tokens
        elif self.kind == "maxmag":
            # every element at +-m: int8 codes +-127 everywhere, the largest dot products there are
            m = F32(1e15)
            x = np.where(r.random((n, width)) < 0.5, -m, m).astype(F32)
        return x

    def build(self):
        d, ntok = self.d, self.ntok
        widths = [self.h * d, self.kvh * d, self.kvh * d, self.h * d]   # q, k, v, dst
        caps = [cdiv(ntok, MT) * cdiv(w, Q) * MT * U for w in widths]
        offs, o = [], NMAP * BEAT
        for c in caps:
            offs.append(o)
            o += -(-c // 64) * 64
        act_size = o
        kv_base = -(-(ACT_BASE + act_size) // 4096) * 4096
        kv_size = KvLayout.bytes_for(self.layers, self.kvh, d, self.slots, KVP)
        mem = bytearray(kv_base + kv_size + 4096)
        bufs = [1, 2, 3, 4]                   # q, k, v, dst buffer indices
        for i, b in enumerate(bufs):
            struct.pack_into("<IIIB", mem, ACT_BASE + BEAT * b, offs[i], caps[i], widths[i], pg.B_F32)
        struct.pack_into("<IIIB", mem, ACT_BASE + BEAT * 5, offs[0], caps[0], widths[0], pg.B_I8)  # wrong dtype
        struct.pack_into("<IIIB", mem, ACT_BASE + BEAT * 6, offs[0], caps[0] - 16, widths[0], pg.B_F32)  # short
        for i in range(3):
            x = self.rows(ntok, widths[i])
            for t in range(ntok):
                for c0 in range(0, widths[i], Q):
                    a = ACT_BASE + offs[i] + tile_offset(t, ntok, c0, widths[i], Q, MT)
                    n = min(Q, widths[i] - c0)     # a partial last unit keeps its padding
                    mem[a:a + 4 * n] = x[t, c0:c0 + n].astype("<f4").tobytes()
        # dst starts as garbage: every output byte must be written
        da = ACT_BASE + offs[3]
        mem[da:da + caps[3]] = self.rng.integers(0, 256, caps[3], dtype=np.uint8).tobytes()
        # earlier positions of every layer (slot contents as the unit writes them)
        lay = KvLayout(self.layers, self.kvh, d, kv_size, KVP)
        for layer in range(self.layers):
            hist = self.pos0
            if hist == 0:
                continue
            kq, dk = nx.quant_heads(self.rows(hist, self.kvh * d).reshape(hist, self.kvh, d))
            vq, dv = nx.quant_heads(self.rows(hist, self.kvh * d).reshape(hist, self.kvh, d))
            for p in range(hist):
                for g in range(self.kvh):
                    lay.put_k(mem, layer, g, p, struct.pack("<ffII", dk[p, g], dv[p, g], p, 0), kq[p, g].tobytes(),
                              kv_base)
                    lay.put_v(mem, layer, g, p, vq[p, g].tobytes(), kv_base)
        self.mem = mem
        self.regs = Regs(n_buffers=NMAP, act_base=ACT_BASE, act_size=act_size, kv_base=kv_base, kv_size=kv_size,
                         ntok=ntok, pos0=self.pos0)
        self.bufs = bufs
        return self

    def instr(self, **over) -> bytes:
        a = dict(dst=self.bufs[3], q=self.bufs[0], k=self.bufs[1], v=self.bufs[2], layer=self.layer,
                 layers=self.layers, d=self.d, heads=self.h, kv_heads=self.kvh)
        a.update(over)
        return attention_instr(**a)


class TB:
    def __init__(self, dut, latency: int = 40):
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        self.faults = Faults()
        self.size = 0
        self.ddr = None
        self.latency = latency
        dut.go.value = 0
        dut.stop.value = 0

    async def start(self, mem_bytes: int):
        self.ddr = DdrModel(AxiBus.from_prefix(self.dut, "m_axi"), self.dut.clk, self.dut.rst_n, mem_bytes,
                            self.latency, self.faults, wbuses=weight_buses(self.dut, KVP))
        for ch in (self.ddr.read_if, self.ddr.write_if, *self.ddr.wread_ifs):
            ch.log.setLevel(logging.WARNING)   # one line per burst slows the bench down
        self.dut.rst_n.value = 0
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst_n.value = 1
        await ClockCycles(self.dut.clk, 2)

    def channels(self):
        return (self.ddr.read_if.r_channel, self.ddr.write_if.w_channel, self.ddr.write_if.b_channel,
                *(r.r_channel for r in self.ddr.wread_ifs))

    def backpressure(self, seed: int | None):
        """Idle cycles on R and B, backpressure on W (30% random pauses); None: none."""
        for i, ch in enumerate(self.channels()):
            ch.set_pause_generator(None if seed is None else random_pause(seed + i, 0.3))
            ch.pause = False   # a removed generator leaves its last value behind

    async def run(self, case: Case, instr: bytes, timeout: int = 200_000) -> dict:
        dut, r = self.dut, case.regs
        self.ddr.write(0, bytes(case.mem))
        dut.instr.value = int.from_bytes(instr, "little")
        dut.n_buffers.value = r.n_buffers
        dut.act_base.value = r.act_base
        dut.act_size.value = r.act_size
        dut.kv_base.value = r.kv_base
        dut.kv_size.value = r.kv_size
        dut.ntok.value = r.ntok
        dut.pos0.value = r.pos0
        await RisingEdge(dut.clk)
        dut.go.value = 1
        await RisingEdge(dut.clk)
        dut.go.value = 0
        n = 1
        while True:
            await RisingEdge(dut.clk)
            n += 1
            if high(dut.done):
                break
            if n >= timeout:
                u = dut.u_attn
                raise AssertionError(f"{case.name}: no done after {n} cycles (consumer state {int(u.cs.value)}, "
                                     f"issuer state {int(u.ist.value)})")
        u = dut.u_attn
        if int(dut.err_code.value) == 0:   # done means every stream is finished
            assert not high(u.rd_busy) and not high(u.wr_busy) and not high(u.rd_valid) \
                and not high(u.kv_busy) and not high(u.kv_valid), \
                f"{case.name}: done while the read or write stream is still busy"
        return {"cycles": n, "err": int(dut.err_code.value), "info": int(dut.err_info.value),
                "store": int(dut.cyc_store.value), "attend": int(dut.cyc_attend.value),
                "rd_beats": int(dut.rd_beats.value), "wr_beats": int(dut.wr_beats.value)}

    def memory(self, n: int) -> bytes:
        return bytes(self.ddr.read(0, n))


def expected(case: Case, instr: bytes) -> tuple[int, bytes]:
    mem = bytearray(case.mem)
    try:
        run_attention(mem, case.regs, instr, Q, MT, DMAX, SMAX, KVP)
    except Fault as f:
        return f.code, bytes(case.mem)
    return 0, bytes(mem)


def compare(case: Case, got: bytes, want: bytes) -> None:
    if got == want:
        return
    a = np.frombuffer(got, np.uint8)
    b = np.frombuffer(want, np.uint8)
    bad = np.nonzero(a != b)[0]
    r = case.regs
    where = "KV region" if bad[0] >= r.kv_base else "activation arena"
    raise AssertionError(f"{case.name}: {bad.size} bytes differ, first at 0x{bad[0]:x} ({where}, "
                         f"offset 0x{bad[0] - (r.kv_base if bad[0] >= r.kv_base else ACT_BASE):x}): "
                         f"got {a[bad[0]:bad[0] + 8].tobytes().hex()} want {b[bad[0]:bad[0] + 8].tobytes().hex()}")


def functional_cases() -> list[Case]:
    cs = [
        Case("decode-first", 64, 4, 4, 1, 0, seed=1),
        Case("decode-full", 32, 2, 2, 1, 40, seed=2),                 # slots = 41: the last one
        Case("prefill-tile", 32, 4, 2, MT, 5, seed=3),                # causal tile, GQA 2
        Case("prefill-long", 16, 2, 1, MT + 2, 3, seed=4),            # two tiles (partial last), GQA 2
        Case("gqa4", 32, 8, 2, 2, 9, seed=5),                          # 8 queries per KV head: 2 sets
        Case("zero", 32, 2, 2, 2, 4, kind="zero", seed=6),
        Case("maxmag", 48, 2, 1, 2, 3, kind="maxmag", seed=7),
        Case("d96-tile", 96, 4, 2, MT + 1, 2, seed=8),                # 1.5 units at Q = 64 (BitNet 0.73B)
        # D = 128 (the bench's DMAX: the widest output row, column counter and value-sum word), GQA 4
        # from position 0: two sets of 4 queries over 1-2 keys
        Case("gqa4-d128", 128, 4, 1, 2, 0, seed=9),
    ]
    sel = CFG.get("cases")
    return [c for c in cs if sel is None or c.name in sel]


@cocotb.test()
async def cases(dut):
    if "cases" not in CFG.get("tests", ["cases"]):
        return
    tb = TB(dut, latency=int(CFG.get("latency", 30)))
    built = [c.build() for c in functional_cases()]
    await tb.start(max(len(c.mem) for c in built) + 4096)
    for i, c in enumerate(built):
        tb.backpressure(100 + i if i % 2 else None)
        ins = c.instr()
        code, want = expected(c, ins)
        assert code == 0, f"{c.name}: the model refuses the case (error {code})"
        res = await tb.run(c, ins)
        assert res["err"] == 0, f"{c.name}: error {res['err']} info {res['info']:#x}"
        compare(c, tb.memory(len(c.mem)), want)
        dut._log.info("%s: %d cycles (store %d, attend %d), %d read / %d write beats", c.name, res["cycles"],
                      res["store"], res["attend"], res["rd_beats"], res["wr_beats"])


@cocotb.test()
async def faults(dut):
    if "faults" not in CFG.get("tests", ["faults"]):
        return
    tb = TB(dut, latency=10)
    base = Case("fault", 32, 4, 2, 2, 3, seed=11).build()
    small = Case("overflow", 32, 2, 2, 2, 3, slots=4, seed=12).build()   # 5 positions needed, 4 slots
    # SMAX positions of history, a region with room for one more: the score buffer is the limit
    over = Case("smax", 16, 1, 1, 1, SMAX, slots=SMAX + 1, layers=1, layer=0, seed=13).build()
    after = Case("after", 32, 2, 2, 1, 2, seed=14).build()
    await tb.start(max(len(c.mem) for c in (base, small, over, after)) + 4096)
    runs = [
        ("kv-overflow", small, small.instr(), "RANGE"),
        ("kv-misaligned", base, base.instr(), "RANGE"),
        ("dst-dtype", base, base.instr(dst=5), "FIELD"),
        ("q-short", base, base.instr(q=6), "RANGE"),
        ("k-index", base, base.instr(k=NMAP), "RANGE"),
        ("v-width", base, base.instr(v=1), "FIELD"),
        ("head-dim", base, base.instr(d=24), "FIELD"),
        ("gqa", base, base.instr(kv_heads=3), "FIELD"),
        ("layer", base, base.instr(layer=2), "FIELD"),
        ("smax", over, over.instr(), "FIELD"),
    ]
    for name, c, ins, code in runs:
        if name == "kv-misaligned":
            c.regs.kv_base += 8
        want_code, want = expected(c, ins)
        assert want_code == rm.ERR[code], f"{name}: the model says {want_code}, the case expects {code}"
        res = await tb.run(c, ins)
        if name == "kv-misaligned":
            c.regs.kv_base -= 8
        assert res["err"] == rm.ERR[code] and res["info"] == pg.ATTENTION, \
            f"{name}: error {res['err']} info {res['info']:#x}, expected {code}"
        compare(c, tb.memory(len(c.mem)), want)
        dut._log.info("%s: ERR %s after %d cycles, memory untouched", name, code, res["cycles"])
    # a DECERR on the KV region: the key stream (the unit's read stream at KVP = 1, the KV ports at
    # KVP > 1) ends the run with ERR AXI_READ and the response in ERR_INFO; then the masters are
    # aborted, as the shell's fault path does, and drained
    kv_lo = base.regs.kv_base
    tb.faults.read_err.append((kv_lo, kv_lo + base.regs.kv_size, AxiResp.DECERR))
    res = await tb.run(base, base.instr())
    tb.faults.read_err.clear()
    assert res["err"] == rm.ERR["AXI_READ"] and res["info"] == AxiResp.DECERR, \
        f"kv-decerr: error {res['err']} info {res['info']:#x}, expected AXI_READ / DECERR"
    u = dut.u_attn
    dut.stop.value = 1
    for _ in range(10_000):
        await RisingEdge(dut.clk)
        if not (high(u.rd_busy) or high(u.wr_busy) or high(u.kv_busy)):
            break
    else:
        raise AssertionError("kv-decerr: the streams did not drain after the abort")
    dut.stop.value = 0
    await ClockCycles(dut.clk, 2)
    dut._log.info("kv-decerr: ERR AXI_READ after %d cycles, streams drained", res["cycles"])
    # the unit runs correctly after the faults
    c = after
    ins = c.instr()
    _, want = expected(c, ins)
    res = await tb.run(c, ins)
    assert res["err"] == 0
    compare(c, tb.memory(len(c.mem)), want)


# the consumer states of hw/rtl/es_attn.sv (cs), for the perf test's cycles by state
CS_NAMES = ["IDLE", "DIV", "FCHK", "FETCH", "MCHK", "KVDIV", "KVCHK", "GEO", "GEO2", "1_KV", "1_W", "1_BAR", "2_SET",
            "2_QRY", "2_P1", "2_P2", "2_SC", "2_P3", "2_P3W", "2_SET2", "2_NEXT", "FIN", "ABORT"]


async def count_states(dut, counts: dict) -> None:
    u = dut.u_attn
    while True:
        await RisingEdge(dut.clk)
        n = CS_NAMES[int(u.cs.value)]
        counts[n] = counts.get(n, 0) + 1


@cocotb.test()
async def perf(dut):
    if "perf" not in CFG.get("tests", []):
        return
    p = CFG["perf"]
    tb = TB(dut, latency=int(p.get("latency", 100)))
    nt = int(p.get("ntok", 1))             # > 1: a prefill tile ending at context ctx
    c = Case("perf", p["d"], p["heads"], p["kv_heads"], nt, p["ctx"] - nt, layers=1, layer=0, seed=21).build()
    await tb.start(len(c.mem) + 4096)
    ins = c.instr()
    _, want = expected(c, ins)
    states: dict = {}
    mon = cocotb.start_soon(count_states(dut, states))
    res = await tb.run(c, ins, timeout=20_000_000)
    mon.cancel()
    states.pop("IDLE", None)
    res["states"] = states
    assert res["err"] == 0
    compare(c, tb.memory(len(c.mem)), want)
    lay = KvLayout(1, c.kvh, c.d, c.regs.kv_size, KVP)
    res.update({"shape": p, "kvp": KVP, "kv_stream_beats": c.kvh * p["ctx"] * lay.slot_beats})
    dut._log.info("perf %s: %s", p, res)
    if CFG.get("perf_out"):
        with open(CFG["perf_out"], "w") as f:
            json.dump(res, f)
