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
    phase: cycles per token (device cycles of the hardware segments), AXI read-bus utilization (bytes
    moved per cycle / bus peak), stalls, and the performance model's error against the measured cycles
    (raw, and after calibrating one fixed overhead per token tile: the median of measured - model)."""
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
    logits = ex.forward(np.array(prompt_ids))[-1]
    wall_prefill = time.perf_counter() - t0
    n_pre = len(ex.log)
    wall_decode = []
    for _ in range(decode_tokens):
        tok = int(np.argmax(logits))
        t1 = time.perf_counter()
        logits = ex.forward(np.array([tok]))[-1]
        wall_decode.append(time.perf_counter() - t1)
    ex.record = False
    source = None
    rows = []
    engine_only = []
    for seg in ex.log:
        tiles = geo.tiles(seg["ntok"])
        source, model = perf_model_cycles(seg["n"], seg["k"], seg["ntok"], seg["planes"], lat)
        rows.append((seg, seg["counters"], model, tiles))
        engine_only.append(engine_cycles_only(seg["n"], seg["k"], seg["ntok"], seg["planes"]))
    overhead = float(np.median([(c["cycles"] - m) / d for _, c, m, d in rows])) if rows else 0.0

    def phase(sel, tokens, wall):
        cyc = sum(c["cycles"] for _, c, _, _ in sel)
        model = sum(m for _, _, m, _ in sel)
        tot = {k: sum(c[k] for _, c, _, _ in sel) for k in ("rd_beats", "wr_beats", "stall_wgt", "stall_act",
                                                            "stall_res", "seq_cycles", "wgt_beats")}
        div = max(cyc, 1)
        return {"tokens": tokens, "commands": len(sel), "cycles": cyc, "cycles_per_token": cyc / max(tokens, 1),
                "read_bytes": tot["rd_beats"] * BEAT, "read_bus_util": tot["rd_beats"] / div,
                "weight_bus_util": tot["wgt_beats"] / div,
                "stall_wgt_frac": tot["stall_wgt"] / div, "stall_act_frac": tot["stall_act"] / div,
                "stall_res_frac": tot["stall_res"] / div, "seq_frac": tot["seq_cycles"] / div,
                "model_cycles": model, "model_err": (model - cyc) / div,
                "model_err_calibrated": (model + overhead * sum(d for _, _, _, d in sel) - cyc) / div,
                "wall_s_per_token": wall / max(tokens, 1), **tot}

    raw = [abs(m - c["cycles"]) / c["cycles"] for _, c, m, _ in rows]
    before = [abs(m - c["cycles"]) / c["cycles"] for (_, c, _, _), m in zip(rows, engine_only, strict=True)]
    cal = [abs(m + overhead * d - c["cycles"]) / c["cycles"] for _, c, m, d in rows]
    return {
        "device": sess.device,
        "latency_cycles": lat,
        "prefill": phase(rows[:n_pre], len(prompt_ids), wall_prefill),
        "decode": phase(rows[n_pre:], decode_tokens, sum(wall_decode)),
        "decode_wall_s": wall_decode,
        "perf_model": {"source": source, "overhead_cycles": overhead,
                       "mean_abs_err_engine_only": float(np.mean(before)) if before else 0.0,
                       "max_abs_err_engine_only": float(np.max(before)) if before else 0.0,
                       "max_abs_err_raw": float(np.max(raw)) if raw else 0.0,
                       "mean_abs_err_raw": float(np.mean(raw)) if raw else 0.0,
                       "mean_abs_err_calibrated": float(np.mean(cal)) if cal else 0.0,
                       "max_abs_err_calibrated": float(np.max(cal)) if cal else 0.0},
        "commands": [{"pc": s["pc"], "n": s["n"], "k": s["k"], "ntok": s["ntok"], "cycles": c["cycles"], "model": m}
                     for s, c, m, _ in rows],
    }
