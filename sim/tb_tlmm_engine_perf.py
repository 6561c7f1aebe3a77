"""cocotb perf run for benchmarks/bench_tlmm_engine.py: one job per shape, results still checked
bit-exactly. Per job it counts the cycles from the command to the last result, split at the first
weight beat into INGEST (activations -> tables) and LOOKUP (weight beats -> results). Shapes come in
TLMM_PERF (JSON), results go to the JSON file TLMM_PERF_OUT. A shape's "mode" is "ternary" (the default),
"bitserial" (INT8 weights as 8 bit planes, or "bits") or "dense" (int8 weights, INT_DENSE engines)."""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from tb_common import high, random_pause
from tb_tlmm_engine import TB
from tlmm_engine_model import bitserial_job, check_results, dense_job, ternary_job


@cocotb.test()
async def perf(dut):
    tb = TB(dut)
    await tb.reset()
    cycle = [0]
    first_w = [None]

    async def count():
        while True:
            await RisingEdge(dut.clk)
            cycle[0] += 1
            if first_w[0] is None and high(dut.s_w_tvalid) and high(dut.s_w_tready):
                first_w[0] = cycle[0]

    cocotb.start_soon(count())
    out = []
    rng = np.random.default_rng(0)
    for shape in json.loads(os.environ["TLMM_PERF"]):
        k, n, ntok = shape["k"], shape["n"], shape["ntok"]
        q = rng.integers(-128, 128, size=(ntok, k)).astype(np.int8)
        mode = shape.get("mode", "ternary")
        if mode == "ternary":
            job = ternary_job(tb.cfg, q, rng.integers(-1, 2, size=(n, k)).astype(np.int8), rng)
        else:
            bits = shape.get("bits", 8)
            w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(n, k)).astype(np.int8)
            job = dense_job(tb.cfg, q, w, rng, bits) if mode == "dense" else bitserial_job(tb.cfg, q, w, bits, rng)
        tb.set_idle_generator(random_pause(1, shape["stall"]) if shape["stall"] else None)
        while high(dut.busy):
            await RisingEdge(dut.clk)
        t0, c0 = time.perf_counter(), cycle[0]
        first_w[0] = None
        await tb.submit(job)
        words, toks = await tb.collect(job)
        c1, t1 = cycle[0], time.perf_counter()
        check_results(tb.cfg, job, words, toks)
        out.append({**shape, "cycles": c1 - c0, "ingest_cycles": first_w[0] - c0, "lookup_cycles": c1 - first_w[0],
                    "lookups": job.lookups, "weights": job.weights, "wall_s": t1 - t0})
    with open(os.environ["TLMM_PERF_OUT"], "w") as f:
        json.dump(out, f)
