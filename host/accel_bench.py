"""Cycles, bus use and stalls of a model on an accelerator device, and how far the compiler's
performance model is from them (`edgestream bench ART --device sim`)."""

from __future__ import annotations

import time

import numpy as np

from edgestream import regmap as rm
from edgestream.errors import DeviceError
from edgestream.host.driver import BEAT, Geometry


def _kind(planes: int) -> tuple[str, int]:
    return ("int", planes) if planes > 1 else ("ternary", 2)


def perf_model_cycles(n: int, k: int, ntok: int, planes: int, latency: int, cfg=None,
                      ddr_bytes_per_cycle: float | None = None) -> tuple[str, int]:
    """(source, cycles) the compiler's performance model charges for one linear of the shell built for
    `cfg` (the shipped one by default), with the DDR sustaining `ddr_bytes_per_cycle` for all ports."""
    from edgestream.compiler.perfmodel import command_cost

    c = command_cost(cfg or rm.shell_config(), n, k, *_kind(planes), ntok, latency, ddr_bytes_per_cycle)
    return "compiler.perfmodel.command_cost", int(c["engine_cycles"])


def engine_cycles_only(n: int, k: int, ntok: int, planes: int) -> int:
    """The performance model without its shell terms (sequencer, DDR latency, shared read port): what
    it predicted before it was calibrated against this simulation."""
    from edgestream.compiler.lowering import region_layout
    from edgestream.compiler.perfmodel import ISSUE_CYCLES, PIPE_CYCLES

    lay = region_layout(rm.shell_config(), n, k, *_kind(planes))
    return int(ISSUE_CYCLES * 4 + PIPE_CYCLES + ntok * lay["groups"] + lay["beats"] * ntok)


def bench_session(sess, prompt_ids: list[int], decode_tokens: int = 2, latency: int | None = None) -> dict:
    """Prefill `prompt_ids` and run `decode_tokens` greedy decode steps on an accelerator session; per
    phase: cycles per token (device cycles of every START), the split by unit (VEC_CYCLES,
    ATTN_CYCLES, the rest: linears and sequencer), STARTs and host-executed instructions per token, AXI
    read-bus utilization (bytes moved per cycle / bus peak), stalls, and the performance model's error
    against the measured cycles of the runs that are linears only (raw, and after calibrating one fixed
    overhead per token tile: the median of measured - model)."""
    from edgestream.host.accel_executor import AccelProgramExecutor

    ex = sess.executor
    if not isinstance(ex, AccelProgramExecutor):
        raise DeviceError("bench needs an accelerator device (--device sim or pynq)")
    geo = Geometry()
    lat = latency if latency is not None else getattr(sess.accel_device, "latency", 100)
    ex.reset(len(prompt_ids) + decode_tokens + 1)
    ex.record = True
    ex.log.clear()
    t0 = time.perf_counter()
    tok = ex.forward_argmax(np.array(prompt_ids))
    wall_prefill = time.perf_counter() - t0
    n_pre, host_pre = len(ex.log), ex.host_ops
    wall_decode, host_dec = [], 0
    for _ in range(decode_tokens):
        t1 = time.perf_counter()
        tok = ex.forward_argmax(np.array([tok]))
        wall_decode.append(time.perf_counter() - t1)
        host_dec += ex.host_ops
    ex.record = False
    source = None
    rows = []  # (run, counters, model cycles, token tiles) of the runs the model covers: linears only
    engine_only = []
    for run in ex.log:
        lins = run["linears"]
        tiles = geo.tiles(run["ntok"]) * len(lins)
        model = 0
        for seg in lins:
            source, m = perf_model_cycles(seg["n"], seg["k"], run["ntok"], seg["planes"], lat)
            model += m
        run["model"] = model
        # the model covers linears only; a device that counts no cycles (the cpu model) has no error
        c = run["counters"]
        if lins and c["cycles"] and not c["vec_cycles"] and not c["attn_cycles"]:
            rows.append((run, run["counters"], model, tiles))
            engine_only.append(sum(engine_cycles_only(seg["n"], seg["k"], run["ntok"], seg["planes"]) for seg in lins))
    overhead = float(np.median([(c["cycles"] - m) / d for _, c, m, d in rows])) if rows else 0.0

    def phase(sel, tokens, wall, host_ops):
        cs = [r["counters"] for r in sel]
        cyc = sum(c["cycles"] for c in cs)
        model = sum(r["model"] for r in sel)
        tot = {k: sum(c[k] for c in cs) for k in ("rd_beats", "wr_beats", "stall_wgt", "stall_act", "stall_res",
                                                   "seq_cycles", "wgt_beats", "vec_cycles", "attn_cycles")}
        tiles = sum(geo.tiles(r["ntok"]) * len(r["linears"]) for r in sel)
        div = max(cyc, 1)
        tk = max(tokens, 1)
        return {"tokens": tokens, "commands": sum(len(r["linears"]) for r in sel), "cycles": cyc,
                "cycles_per_token": cyc / tk, "device_starts_per_token": len(sel) / tk,
                "host_ops_per_token": host_ops / tk,
                "cycles_per_token_by_unit": {"vector": tot["vec_cycles"] / tk, "attention": tot["attn_cycles"] / tk,
                                             "linears_and_sequencer": (cyc - tot["vec_cycles"] - tot["attn_cycles"])
                                             / tk},
                "read_bytes": tot["rd_beats"] * BEAT, "read_bus_util": tot["rd_beats"] / div,
                "weight_bus_util": tot["wgt_beats"] / div,
                "stall_wgt_frac": tot["stall_wgt"] / div, "stall_act_frac": tot["stall_act"] / div,
                "stall_res_frac": tot["stall_res"] / div, "seq_frac": tot["seq_cycles"] / div,
                "model_cycles": model, "model_err": (model - cyc) / div,
                "model_err_calibrated": (model + overhead * tiles - cyc) / div,
                "wall_s_per_token": wall / tk, **tot}

    raw = [abs(m - c["cycles"]) / c["cycles"] for _, c, m, _ in rows]
    before = [abs(m - c["cycles"]) / c["cycles"] for (_, c, _, _), m in zip(rows, engine_only, strict=True)]
    cal = [abs(m + overhead * d - c["cycles"]) / c["cycles"] for _, c, m, d in rows]
    dec = phase(ex.log[n_pre:], decode_tokens, sum(wall_decode), host_dec)
    return {
        "device": sess.device,
        "latency_cycles": lat,
        "device_starts_per_decode_token": dec["device_starts_per_token"],
        "host_ops_per_decode_token": dec["host_ops_per_token"],
        "prefill": phase(ex.log[:n_pre], len(prompt_ids), wall_prefill, host_pre),
        "decode": dec,
        "decode_wall_s": wall_decode,
        # None where no run was linears only (a bitstream with its units runs a whole pass per START,
        # which the linear-only model does not cover): an error of 0 would claim a perfect model
        "perf_model": {"source": source, "overhead_cycles": overhead, "runs_compared": len(rows),
                       "mean_abs_err_engine_only": float(np.mean(before)) if before else None,
                       "max_abs_err_engine_only": float(np.max(before)) if before else None,
                       "max_abs_err_raw": float(np.max(raw)) if raw else None,
                       "mean_abs_err_raw": float(np.mean(raw)) if raw else None,
                       "mean_abs_err_calibrated": float(np.mean(cal)) if cal else None,
                       "max_abs_err_calibrated": float(np.max(cal)) if cal else None},
        # runs of one linear each (a bitstream without units): what benchmarks/bench_accel_sim.py fits
        "commands": [{"pc": r["pc"], "ntok": r["ntok"], "cycles": c["cycles"], "model": m, **r["linears"][0]}
                     for r, c, m, _ in rows if len(r["linears"]) == 1],
        "runs": [{"pc": r["pc"], "stop_pc": r["stop_pc"], "ntok": r["ntok"], "pos": r["pos"],
                  "cycles": r["counters"]["cycles"], "linears": r["linears"], "model": r["model"]}
                 for r in ex.log],
    }
