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


# ---------------------------------------------------------------- one layer, scaled (issue 13 item 6)
def derive_layers(art, out, layers: int = 1, vocab: int | None = None):
    """An artifact of the same model with only its first `layers` decoder layers (their own weights),
    the final norm and the LM head, lowered for the artifact's own hardware configuration and target.
    A whole 0.73B pass is ~24x the simulation of one layer; the layers are alike in shape, so one
    stands for all of them (their cycles do not depend on the weight values). `vocab`: keep only the
    first rows of the embedding and the LM head (a head slice to measure and extrapolate: the 2B4T's
    128k-row head is 6M cycles of simulation; the tokenizer is dropped, ids stay below `vocab`)."""
    import re
    from dataclasses import replace

    from edgestream.artifact import read_artifact, write_artifact
    from edgestream.compiler.dse import HwConfig
    from edgestream.compiler.lowering import hardware_writer
    from edgestream.compiler.targets import load_target
    from edgestream.errors import InputError
    from edgestream.ir import Graph

    a = read_artifact(art)
    man, g = a.manifest, a.graph
    m = g.config
    if not man.get("hw_config"):
        raise InputError(f"{art}: not compiled for a board (compile it with --target kv260 or another board)")
    if not 1 <= layers <= m.num_layers:
        raise InputError(f"{art}: cannot keep {layers} of its {m.num_layers} layers")
    if m.arch == "graph":
        raise InputError(f"{art}: a general graph has no decoder layers to measure one by one")
    if vocab is not None and not 1 <= vocab <= m.vocab_size:
        raise InputError(f"{art}: cannot keep {vocab} rows of its {m.vocab_size}-row vocabulary")
    cfg = HwConfig(**man["hw_config"]).validate()
    tgt = load_target(man.get("target") or "kv260")
    layer_of = re.compile(r"^L(\d+)\.")
    tensor_of = re.compile(r"^model\.layers\.(\d+)\.")

    def dropped(name: str, pat) -> bool:
        hit = pat.match(name)
        return hit is not None and int(hit.group(1)) >= layers

    last, keep_last = f"L{m.num_layers - 1}.out", f"L{layers - 1}.out"
    nodes = []
    for n in g.nodes:
        if any(dropped(o, layer_of) for o in n.outputs):
            continue
        nodes.append(replace(n, inputs=[keep_last if i == last else i for i in n.inputs]))
    tensors = {k: t for k, t in g.tensors.items() if not dropped(k, tensor_of)}
    sub_m = replace(m, num_layers=layers)
    tok = a.tokenizer_path
    extra = {"target": man.get("target"), "source": f"{art} (first {layers} of {m.num_layers} layers)"}
    if vocab is not None and vocab < m.vocab_size:
        for k in VOCAB_TENSORS:
            if k in tensors:
                t = tensors[k]
                sc = t.scale
                if sc is not None and np.asarray(sc).shape[:1] == (m.vocab_size,):  # per-row scales
                    sc = np.asarray(sc)[:vocab]
                tensors[k] = replace(t, data=np.asarray(t.data)[:vocab], scale=sc)
        sub_m = replace(sub_m, vocab_size=vocab, bos_token_id=None, eos_token_ids=[])
        tok = None
        extra["source"] += f", first {vocab} of {m.vocab_size} vocabulary rows"
    elif man.get("tokenizer") is not None:
        extra["tokenizer"] = man["tokenizer"]
    sub = Graph(sub_m, nodes, tensors, g.inputs, g.outputs, g.meta)
    return write_artifact(sub, out, tok, extra, writers=[hardware_writer(sub, tgt, cfg)])


VOCAB_TENSORS = ("model.embed_tokens.weight", "lm_head.weight")


_PARTS = ("cycles", "vec_cycles", "attn_cycles", "rd_beats", "wgt_beats", "stall_wgt", "seq_cycles")


class _Stepper:
    """STARTs of a resident program's instruction ranges: an END written over the instruction at `stop`
    (in the device's copy of program.bin) ends the run there, so the counters of one START are those
    of the instructions [pc, stop) alone."""

    def __init__(self, ex):
        from edgestream.host.accel_executor import pack_ids

        self.ex, self.drv, self.pack_ids = ex, ex.driver, pack_ids
        self.prog = self.drv.prog
        self.blob = self.prog.encode()
        self.ins0 = self.prog.instr_offset

    def _put(self, pc: int, end: bool) -> None:
        from dataclasses import replace

        from edgestream import program as pg

        lo = self.ins0 + pc * pg.INSTR_BYTES
        if end:
            p = replace(self.prog, instrs=[pg.Instr(pg.END) if i == pc else x for i, x in enumerate(self.prog.instrs)])
            raw = p.encode()[lo:lo + pg.INSTR_BYTES]
        else:
            raw = self.blob[lo:lo + pg.INSTR_BYTES]
        self.drv.dev.write_mem(self.drv.prog_base + lo, raw)

    def run(self, pc: int, stop: int | None, ntok: int, pos: int) -> dict[str, int]:
        from edgestream import regmap as rm

        n_ins = len(self.prog.instrs)
        if stop is not None and stop < n_ins - 1:
            self._put(stop, True)
        try:
            self.drv.write_buffer(0, self.pack_ids(np.arange(1, ntok + 1) % self.ex.cfg.vocab_size))
            c = self.drv.run(pc, ntok, pos, self.ex._beats(pc, ntok), counters=True)
        finally:
            if stop is not None and stop < n_ins - 1:
                self._put(stop, False)
        if not c["status"] & rm.STATUS_DONE:
            raise DeviceError(f"instructions {pc}..{stop}: the device stopped for the host at {c['stop_pc']} "
                              f"(the layer measurement needs a bitstream that runs the whole layer: its units and, "
                              f"for K > MAXK, the K-tile accumulator)")
        return {k: int(c[k]) for k in _PARTS}


def _sub(a: dict, b: dict) -> dict:
    return {k: a[k] - b[k] for k in a}


def _program_marks(sess):
    from edgestream import program as pg
    from edgestream.host.accel_executor import AccelProgramExecutor

    ex = sess.executor
    if not isinstance(ex, AccelProgramExecutor):
        raise DeviceError("bench needs an accelerator device (--device sim or pynq)")
    instrs = ex.prog.instrs
    if instrs[0].op != pg.EMBED:  # EMBED is instruction 0 (compiler/lowering.py)
        raise DeviceError("program.bin does not start with EMBED: not a decoder program")
    return ex, next(i for i, x in enumerate(instrs) if x.op == pg.LAST_ROW)


def measure_head(sess, context: int = 128) -> dict[str, int]:
    """The counters of the final norm + LM head alone (one START from LAST_ROW), at `context`."""
    ex, last_row = _program_marks(sess)
    ex.reset(context + 1)
    return _Stepper(ex).run(last_row, None, 1, context)


def extrapolate_head(small: dict[str, int], large: dict[str, int], rows: tuple[int, int], vocab: int) -> dict:
    """The head's counters at `vocab` rows from two measured slices (rows[0] < rows[1]): linear in the rows
    (the final norm and LAST_ROW are the constant part, the streamed head rows the slope)."""
    r0, r1 = rows
    return {k: round(small[k] + (large[k] - small[k]) * (vocab - r0) / (r1 - r0)) for k in _PARTS}


def bench_layer(sess, context: int = 128, prompt_len: int = 128, layers: int | None = None,
                head: dict[str, int] | None = None, head_note: str | None = None) -> dict:
    """A session on the one-layer artifact (derive_layers): the counters of the embedding, of the
    layer (a decode step at position `context`, and a prefill tile of max_tok tokens) and of the final
    norm + LM head, each one START; scaled to `layers` decoder layers:
    per-token cycles = embed + layers x layer + head. `head`: the head's counters measured elsewhere
    (extrapolate_head of two vocabulary slices; `head_note` says how), so this session's is not run."""
    ex, last_row = _program_marks(sess)
    first_layer = 1
    cfg = _hw_config(sess)
    L = layers or ex.cfg.num_layers
    tile = cfg.max_tok
    ex.reset(max(context + 1, prompt_len))
    st = _Stepper(ex)
    t0 = time.perf_counter()
    # the KV cache is not filled token by token: the decode step reads `context` positions of the KV
    # region as they are (the attention unit's time depends on the number of positions, not on their
    # values; tests/test_bench_layer.py checks this against a real prefill)
    emb1 = st.run(0, first_layer, 1, context)
    dec = _sub(st.run(0, last_row, 1, context), emb1)
    # a prefill tile at the mean start of the prompt's tiles: attention is linear in the position
    pre_pos = max(0, (prompt_len - tile) // 2)
    emb_t = st.run(0, first_layer, tile, pre_pos)
    pre = _sub(st.run(0, last_row, tile, pre_pos), emb_t)
    if head is None:
        head = st.run(last_row, None, 1, context)
        head_note = "measured"
    wall = time.perf_counter() - t0

    f = cfg.clock_mhz * 1e6
    per_tok = {k: emb1[k] + L * dec[k] + head[k] for k in _PARTS}
    cyc = per_tok["cycles"]
    passes = -(-prompt_len // ex.run_tokens)  # the LM head runs once per forward pass (its last row)
    pre_cycles = prompt_len / tile * (emb_t["cycles"] + L * pre["cycles"]) + passes * head["cycles"]
    ttft = pre_cycles / f
    return {
        "source": "rtl-simulation",
        "device": sess.device,
        "hw_config_id": cfg.config_id,
        "clock_mhz": cfg.clock_mhz,
        "ddr_latency_cycles": getattr(sess.accel_device, "latency", None),
        "layers": L,
        "context": context,
        "prompt_len": prompt_len,
        "prefill_tile_tokens": tile,
        "decode_tok_s": f / cyc,
        "prefill_tok_s": prompt_len / ttft,
        "ttft_s": ttft,
        "cycles_per_decode_token": cyc,
        "cycles_per_decode_token_by_part": {"embed": emb1["cycles"], "layers": L * dec["cycles"],
                                            "head": head["cycles"]},
        # every weight port and the shared read port move one beat per cycle at most
        "read_bus_utilization": per_tok["rd_beats"] / (cyc * cfg.axi_ports),
        "weight_port_utilization": per_tok["wgt_beats"] / (cyc * cfg.axi_ports),
        "read_bytes_per_decode_token": per_tok["rd_beats"] * BEAT,
        "ddr_roofline": _roofline(sess, cfg, per_tok["rd_beats"] * BEAT, f / cyc),
        "prefill_cycles": pre_cycles,
        "measured": {"embed_decode": emb1, "layer_decode": dec, "embed_prefill_tile": emb_t,
                     "layer_prefill_tile": pre, "head": head,
                     "positions": {"decode": context, "prefill_tile_start": pre_pos}},
        "scaled": {"decode": f"embed + {L} x layer_decode + head",
                   "prefill": f"{prompt_len}/{tile} x (embed_prefill_tile + {L} x layer_prefill_tile) "
                              f"+ {passes} x head (one per pass of {ex.run_tokens} tokens)",
                   "head": head_note,
                   "kv_cache": f"not written: the decode step reads {context} positions of the KV region as "
                               f"they are (attention time depends on their number only)"},
        "sim_wall_s": wall,
    }


def _roofline(sess, cfg, bytes_per_token: float, decode_tok_s: float) -> dict:
    """The decode rate the token's measured read bytes allow: at the target's DDR peak, and at the rate
    the simulated DDR sustains for the shell's bursts (refresh, controller efficiency and the per-burst
    overhead of docs/registers.md "Memory model"); the measured rate as a share of each."""
    from edgestream.compiler.targets import load_target

    tgt = load_target(sess.artifact.manifest.get("target") or "kv260")
    out = {"bytes_per_token": bytes_per_token, "peak_gbps": tgt.ddr_peak_gbps,
           "peak_tok_s": tgt.ddr_peak_gbps * 1e9 / bytes_per_token}
    out["frac_of_peak"] = decode_tok_s / out["peak_tok_s"]
    ddr = getattr(sess.accel_device, "ddr", None)
    if ddr is not None and np.isfinite(ddr.bytes_per_cycle):
        burst = cfg.axi_burst_beats * BEAT
        bps = ddr.bytes_per_cycle * burst / (burst + ddr.burst_overhead_bytes) * cfg.clock_mhz * 1e6
        out.update(sustained_gbps=bps / 1e9, sustained_tok_s=bps / bytes_per_token)
        out["frac_of_sustained"] = decode_tok_s / out["sustained_tok_s"]
    return out


def _hw_config(sess):
    from edgestream.compiler.dse import HwConfig

    hc = sess.artifact.manifest.get("hw_config")
    if not hc:
        raise DeviceError("bench of one layer needs an artifact compiled for a board (--target kv260 ...)")
    return HwConfig(**hc).validate()


def model_vs_measured(art_manifest: dict, rep: dict) -> dict:
    """compiler/perfmodel.py's prediction of the same model, configuration, context and prompt, and its
    error against the measured (scaled) figures: (model - measured) / measured."""
    from edgestream.compiler import perfmodel
    from edgestream.compiler.dse import HwConfig
    from edgestream.compiler.targets import load_target
    from edgestream.ir import ModelConfig

    m = ModelConfig.from_dict(art_manifest["model"])
    cfg = HwConfig(**art_manifest["hw_config"]).validate()
    tgt = load_target(art_manifest.get("target") or "kv260")
    if rep.get("ddr_latency_cycles") is not None:  # the model at the read latency the simulation ran
        from dataclasses import replace

        tgt = replace(tgt, read_latency_ns=rep["ddr_latency_cycles"] * 1e3 / cfg.clock_mhz)
    wkind, wbits = art_manifest.get("hw_weight_kind", ["ternary", 2])
    p = perfmodel.predict(m, cfg, tgt, wkind, wbits, context=rep["context"], prompt=rep["prompt_len"])
    f = cfg.clock_mhz * 1e6
    mod = {"decode_tok_s": p["decode_tok_s"], "prefill_tok_s": p["prefill_tok_s"], "ttft_s": p["ttft_s"],
           "cycles_per_decode_token": f / p["decode_tok_s"], "decode_layer_cycles": p["decode_layer_cycles"]}
    meas = {k: rep[k] for k in ("decode_tok_s", "prefill_tok_s", "ttft_s", "cycles_per_decode_token")}
    meas["decode_layer_cycles"] = rep["measured"]["layer_decode"]["cycles"]
    return {"source": "compiler.perfmodel.predict", "model": mod,
            "error": {k: (mod[k] - meas[k]) / meas[k] for k in meas}}
