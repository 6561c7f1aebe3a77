"""`edgestream` command line: compile, run, inspect. Every command takes --json for scripts."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgestream.errors import EdgestreamError, InputError


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=1) + "\n")


def _console(stderr: bool = True):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


# ---- compile
def cmd_compile(a: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgestream.compiler import compile_model

    show = not a.json and sys.stderr.isatty() or a.progress
    with Progress(TextColumn("[bold]compile"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=_console(), disable=not show) as prog:
        task = prog.add_task("reading", total=None)

        def progress(done: int, total: int, name: str) -> None:
            prog.update(task, completed=done, total=total, description=name)

        out = compile_model(a.src, a.output, target=a.target, quant=a.quant, fmt=a.format, progress=progress,
                            hw_config=a.hw_config, clock_mhz=a.clock)
    info = _artifact_summary(out)
    hw = _hw_report(out)
    if hw is not None:
        info["hw"] = {k: hw[k] for k in ("config_id", "hw_config", "utilization", "binding")}
        info["hw"]["perf"] = {k: v for k, v in hw["perf"].items() if not isinstance(v, list)}
    if a.json:
        _print_json(info)
    else:
        c = _console(stderr=False)
        c.print(f"wrote {out}  ({info['weights_bytes'] / 1e6:.2f} MB weights, "
                f"{info['bits_per_linear_weight']:.3f} bits/linear weight, {info['compile_s']:.2f} s)")
        if hw is not None:
            from edgestream.compiler.perfmodel import render_report

            render_report(hw, c, headline_only=True)
    return 0


def _hw_report(path) -> dict | None:
    """The hardware report of a board artifact (None for a CPU artifact)."""
    import json as _json

    from edgestream.compiler.perfmodel import report_from_manifest

    try:
        man = _json.loads((Path(path) / "manifest.json").read_text())
    except (OSError, ValueError):
        raise InputError(f"{path}: not an edgestream artifact (manifest.json missing or corrupt)") from None
    return report_from_manifest(man, str(path)) if "hw_config_id" in man else None


# ---- report
def cmd_report(a: argparse.Namespace) -> int:
    p = Path(a.artifact)
    if not (p / "manifest.json").is_file():
        raise InputError(f"{p}: not an edgestream artifact directory (manifest.json is missing)")
    info = _hw_report(p)
    if info is None:
        from edgestream.compiler.perfmodel import report_from_manifest

        report_from_manifest({"target": "cpu"}, str(p))  # raises the clear error
    if a.html or a.png:
        from edgestream.report_html import load_bench, write_html, write_png

        bench = load_bench(a.bench) if a.bench else None
        written = [f(info, out, bench) for f, out in ((write_html, a.html), (write_png, a.png)) if out]
        if not a.json:
            _console(stderr=False).print("wrote " + ", ".join(str(w) for w in written))
            return 0
    if a.bench:  # the text/JSON report: measured figures beside the modelled ones, each labelled
        from edgestream.compiler.perfmodel import attach_measured

        info = attach_measured(info, a.bench)
    if a.json:
        _print_json(info)
    else:
        from edgestream.compiler.perfmodel import render_report

        render_report(info, _console(stderr=False))
    return 0


def _artifact_summary(path) -> dict:
    from edgestream.artifact import read_artifact

    art = read_artifact(path, verify_checksums=False)
    lin_w = lin_b = 0
    for n in art.graph.nodes:
        if n.op in ("qlinear", "qmatmul"):
            e = art.manifest["tensors"][n.attrs["weight"]]
            lin_w += int(np.prod(e["shape"]))
            lin_b += e["data"]["nbytes"]
    return {
        "artifact": str(path),
        "model": art.manifest["model"],
        "target": art.manifest.get("target"),
        "compile_s": art.manifest.get("compile_s", 0.0),
        "weights_bytes": (Path(path) / "weights.bin").stat().st_size,
        "linear_weights": lin_w,
        "bits_per_linear_weight": 8 * lin_b / max(lin_w, 1),
    }


# ---- run
def _parse_ids(s: str) -> list[int]:
    try:
        return [int(x) for x in s.replace(" ", "").split(",") if x]
    except ValueError:
        raise InputError(f"--prompt-ids {s!r}: expected comma-separated integers like 1,2,3") from None


def _save_npy_atomic(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def cmd_run(a: argparse.Namespace) -> int:
    import edgestream

    if a.inputs is not None or a.outputs is not None:
        return _run_graph(a)
    if sum(x is not None for x in (a.prompt, a.prompt_ids, a.chat)) != 1:
        raise InputError("give exactly one of --prompt TEXT, --prompt-ids 1,2,3 or --chat TEXT (or "
                         "--inputs/--outputs for a graph artifact)")
    if a.system is not None and a.chat is None:
        raise InputError("--system goes with --chat (a system prompt is part of the chat template)")
    sess = edgestream.load(a.artifact, device=a.device, kernel=a.kernel, **_device_options(a))
    if getattr(sess, "device_note", "") and not a.json:
        _console().print(f"[dim]{sess.device_note}[/dim]")
    try:
        return _run_session(a, sess)
    finally:
        if hasattr(sess, "close"):
            sess.close()


def _device_options(a: argparse.Namespace) -> dict:
    """`--simulator`/`--latency` for --device sim; nothing for the others."""
    if a.device != "sim":
        return {}
    return {"device_options": {"simulator": a.simulator, "latency": a.latency}}


def _run_session(a: argparse.Namespace, sess) -> int:
    from edgestream.tokenizer import StreamDecoder

    chat_text = None
    if a.chat is not None:
        from edgestream.chat import messages_from

        chat_text, ids = sess.chat_prompt(messages_from(a.chat, a.system))
    else:
        prompt = a.prompt if a.prompt is not None else _parse_ids(a.prompt_ids)
        ids = sess.encode(prompt) if isinstance(prompt, str) else prompt
    if a.verbose and not a.json:
        _console().print(f"device: {sess.device}, kernel: {sess.kernel_name}, prompt: {len(ids)} tokens")
    logits: list[np.ndarray] = []
    tokens: list[int] = []
    stream = StreamDecoder(sess.tokenizer) if sess.tokenizer else None
    gen = sess.generate(ids, max_new_tokens=a.max_new_tokens, temperature=a.temperature, top_k=a.top_k,
                        top_p=a.top_p, seed=a.seed,
                        on_logits=(lambda x: logits.append(np.array(x, np.float32))) if a.dump_logits else None,
                        kv_window=a.kv_window, sinks=a.sinks)
    for tok in gen:
        tokens.append(tok)
        if not a.json:
            sys.stdout.write(stream.push(tok) if stream else f"{tok} ")
            sys.stdout.flush()
    if stream and not a.json:
        sys.stdout.write(stream.flush())
    st = sess.stats
    if a.dump_logits:
        _save_npy_atomic(Path(a.dump_logits), np.stack(logits).astype(np.float32))
    result = {
        "prompt_ids": [int(i) for i in ids],
        "chat_prompt": chat_text,
        "tokens": tokens,
        "text": sess.tokenizer.decode(tokens) if sess.tokenizer else None,
        "device": sess.device,
        "kernel": sess.kernel_name,
        "ttft_s": st.ttft_s,
        "prefill_tok_s": st.prefill_tok_s,
        "decode_tok_s": st.decode_tok_s,
        "stop_reason": st.stop_reason,
    }
    if a.kv_window is not None:
        from edgestream.host.kv_window import DEFAULT_SINKS, KVWindow

        w = KVWindow(a.kv_window, DEFAULT_SINKS if a.sinks is None else a.sinks)
        # on a device that keeps the cache, every shift is host work (docs/numerics.md "KV window")
        result["kv_window"] = {"window": w.window, "sinks": w.sinks, "n_discard": w.n_discard,
                               "shifts": st.extra.get("kv_shifts", 0), **({"host_ops": st.extra["host_ops"]}
                                                                          if "host_ops" in st.extra else {})}
    if a.json:
        _print_json(result)
    else:
        sys.stdout.write("\n")
        _console().print(f"[dim]{len(ids)} prompt tokens, {len(tokens)} generated; TTFT {st.ttft_s * 1e3:.1f} ms; "
                         f"prefill {st.prefill_tok_s:.1f} tok/s; decode {st.decode_tok_s:.1f} tok/s "
                         f"({sess.device}, {sess.kernel_name} kernel)[/dim]")
    return 0


def _run_graph(a: argparse.Namespace) -> int:
    """Batch inference of a general-graph artifact: --inputs in.npz -> --outputs out.npz."""
    from edgestream.host.graph_executor import load_graph

    if a.inputs is None or a.outputs is None:
        raise InputError("graph artifacts need both --inputs IN.npz and --outputs OUT.npz")
    try:
        with np.load(a.inputs, allow_pickle=False) as z:
            inputs = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(f"{a.inputs}: no such file") from None
    except (ValueError, OSError) as e:
        raise InputError(f"{a.inputs}: not a readable .npz file ({e})") from None
    with load_graph(a.artifact, device=a.device, kernel=a.kernel, **_device_options(a)) as sess:
        outputs = sess.run(inputs)
    out = Path(a.outputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **outputs)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    info = {"outputs": {k: {"dtype": v.dtype.name, "shape": list(v.shape)} for k, v in outputs.items()},
            "file": str(out), "device": sess.device, "kernel": sess.kernel_name}
    if a.json:
        _print_json(info)
    else:
        _console(stderr=False).print(f"wrote {out}: " + ", ".join(
            f"{k} {v['dtype']}{v['shape']}" for k, v in info["outputs"].items()))
    return 0


# ---- export-onnx
def cmd_export_onnx(a: argparse.Namespace) -> int:
    from edgestream.onnx_export import export_onnx

    out = export_onnx(a.artifact, a.output)
    if a.json:
        _print_json({"onnx": str(out), "bytes": out.stat().st_size})
    else:
        _console(stderr=False).print(f"wrote {out}")
    return 0


# ---- export-gguf
def cmd_export_gguf(a: argparse.Namespace) -> int:
    import warnings

    from edgestream.gguf_writer import export_gguf

    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        out = export_gguf(a.src, a.output, a.type, untied_output=a.untied_output)
    notes = [str(w.message) for w in ws]
    if a.json:
        _print_json({"gguf": str(out), "type": a.type, "bytes": out.stat().st_size, "warnings": notes})
    else:
        for n in notes:
            _console().print(f"[yellow]warning:[/yellow] {n}")
        _console(stderr=False).print(f"wrote {out} ({a.type}, {out.stat().st_size / 1e6:.2f} MB)")
    return 0


# ---- bench
def cmd_bench(a: argparse.Namespace) -> int:
    import edgestream
    from edgestream.host.accel_bench import bench_session

    if _bench_method(a) == "layer":
        return _bench_layer(a)
    ids = _parse_ids(a.prompt_ids)
    sess = edgestream.load(a.artifact, device=a.device, **_device_options(a))
    try:
        rep = bench_session(sess, ids, a.decode_tokens)
    finally:
        sess.close()
    if a.json:
        _print_json(rep)
        return 0
    from rich.table import Table

    c = _console(stderr=False)
    t = Table("phase", "tokens", "cycles/token", "vector", "attention", "STARTs/token", "host ops/token",
              "read-bus util", "stall wgt", "stall act", "stall res", "sequencer", "model err",
              title=f"{a.device}: {a.artifact}")
    for ph in ("prefill", "decode"):
        p = rep[ph]
        u = p["cycles_per_token_by_unit"]
        t.add_row(ph, str(p["tokens"]), f"{p['cycles_per_token']:,.0f}", f"{u['vector']:,.0f}",
                  f"{u['attention']:,.0f}", f"{p['device_starts_per_token']:g}", f"{p['host_ops_per_token']:g}",
                  f"{p['read_bus_util']:.1%}", f"{p['stall_wgt_frac']:.1%}", f"{p['stall_act_frac']:.1%}",
                  f"{p['stall_res_frac']:.1%}", f"{p['seq_frac']:.1%}", f"{p['model_err']:+.1%}")
    c.print(t)
    m = rep["perf_model"]
    if not m["runs_compared"]:
        c.print("performance model: it covers the linears only, and every START here ran the units too "
                "(no linear-only run to compare it with)")
        return 0
    c.print(f"performance model ({m['source']}) vs these cycles, per linear: mean |error| "
            f"{m['mean_abs_err_raw']:.1%} (max {m['max_abs_err_raw']:.1%}); engine-only model "
            f"{m['mean_abs_err_engine_only']:.1%}; with a residual {m['overhead_cycles']:+.0f} cycles per linear "
            f"and token tile {m['mean_abs_err_calibrated']:.1%}")
    return 0


def _bench_method(a: argparse.Namespace) -> str:
    """auto: whole passes for small models; one layer, scaled, where a whole pass on the simulated RTL
    would take hours (more than LAYER_BENCH_MIN_LAYERS layers)."""
    if a.method != "auto":
        return a.method
    from edgestream.artifact import _json

    man = _json(Path(a.artifact) / "manifest.json")
    return "layer" if man.get("model", {}).get("num_layers", 0) > LAYER_BENCH_MIN_LAYERS else "full"


LAYER_BENCH_MIN_LAYERS = 4


def _bench_layer(a: argparse.Namespace) -> int:
    import edgestream
    from edgestream.artifact import read_artifact
    from edgestream.host.accel_bench import bench_layer, derive_layers, model_vs_measured

    if a.context < 1 or a.prompt_len < 1:
        raise InputError(f"--context {a.context} / --prompt-len {a.prompt_len}: expected whole numbers >= 1")
    man = read_artifact(a.artifact).manifest
    with tempfile.TemporaryDirectory(prefix="es-bench-layer-") as td:
        one = derive_layers(a.artifact, Path(td) / "one_layer.esa", 1)
        sess = edgestream.load(one, device=a.device, **_device_options(a))
        try:
            rep = bench_layer(sess, a.context, a.prompt_len, man["model"]["num_layers"])
        finally:
            sess.close()
    rep["artifact"] = str(a.artifact)
    rep["perf_model"] = model_vs_measured(man, rep)
    if a.json:
        _print_json(rep)
        return 0
    from rich.table import Table

    c = _console(stderr=False)
    err = rep["perf_model"]["error"]
    t = Table("quantity", "measured (scaled)", "perf model", "model error",
              title=f"{a.device}: {a.artifact}, one layer measured, x {rep['layers']} layers")
    mod = rep["perf_model"]["model"]
    for k, fmt in (("decode_tok_s", "{:.2f}"), ("prefill_tok_s", "{:.2f}"), ("ttft_s", "{:.3f}"),
                   ("cycles_per_decode_token", "{:,.0f}")):
        t.add_row(k, fmt.format(rep[k]), fmt.format(mod[k]), f"{err[k]:+.1%}")
    t.add_row("decode_layer_cycles", f"{rep['measured']['layer_decode']['cycles']:,}",
              f"{mod['decode_layer_cycles']:,}", f"{err['decode_layer_cycles']:+.1%}")
    c.print(t)
    parts = rep["cycles_per_decode_token_by_part"]
    c.print(f"context {rep['context']}, prompt {rep['prompt_len']}, {rep['clock_mhz']:g} MHz; decode cycles: "
            f"embed {parts['embed']:,} + layers {parts['layers']:,} + head {parts['head']:,}; read-bus "
            f"utilization {rep['read_bus_utilization']:.1%}; source {rep['source']}; simulated in "
            f"{rep['sim_wall_s']:.0f} s")
    return 0


# ---- selftest
def cmd_selftest(a: argparse.Namespace) -> int:
    from edgestream.selftest import run_cli

    return run_cli(a)


# ---- serve
def cmd_serve(a: argparse.Namespace) -> int:
    from edgestream.serve import build_server, serve

    server = build_server(a.artifact, device=a.device, kernel=a.kernel,
                          device_options=_device_options(a).get("device_options"), model_id=a.model_name,
                          max_queue=a.max_queue)
    note = getattr(server.session, "device_note", "")

    def ready(url: str) -> None:
        sys.stderr.write(f"edgestream serve: model {server.model_id!r} on {server.session.device}"
                         f"{f' ({note})' if note else ''}: {url}/v1\n")
        sys.stderr.flush()

    serve(server, host=a.host, port=a.port, log_level=a.log_level, on_ready=ready)
    return 0


# ---- chat
def cmd_chat(a: argparse.Namespace) -> int:
    import edgestream
    from edgestream.chat_cli import chat_loop

    sess = edgestream.load(a.artifact, device=a.device, kernel=a.kernel, **_device_options(a))
    try:
        return chat_loop(sess, sys.stdin, sys.stdout, _console(), system=a.system, max_new_tokens=a.max_new_tokens,
                         temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, seed=a.seed)
    finally:
        sess.close()


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", choices=["cpu", "sim", "pynq", "auto"],
                   help="cpu (CPU executor), sim (accelerator RTL in Verilator/Icarus), pynq (board), "
                        "auto (pynq when a board is present, else cpu)")
    p.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"], help="for --device sim")
    p.add_argument("--latency", type=int, default=100, help="--device sim: DDR read latency in cycles")
    p.add_argument("--kernel", default=None, help="CPU kernel: auto (default) or numpy")


# ---- inspect
def _inspect_artifact(path: Path) -> dict:
    from edgestream.artifact import read_artifact

    art = read_artifact(path, verify_checksums=False)
    tensors = {n: {"encoding": e["encoding"], "shape": e["shape"], "bytes": e["data"]["nbytes"]
                   + e.get("scale", {}).get("nbytes", 0)} for n, e in art.manifest["tensors"].items()}
    ops: dict[str, int] = {}
    for n in art.graph.nodes:
        ops[n.op] = ops.get(n.op, 0) + 1
    info = {"kind": "artifact", "path": str(path), "model": art.manifest["model"], "ops": ops,
            "tensors": tensors, "total_bytes": sum(t["bytes"] for t in tensors.values()),
            "files": art.manifest["files"]}
    if "hw_config_id" in art.manifest:  # board artifact: configuration, lowered program, regions
        m = art.manifest
        info["hw"] = {"target": m["hw_target"]["name"], "config_id": m["hw_config_id"], "hw_config": m["hw_config"],
                      "program": m.get("hw_program"), "regions": m.get("hw_regions"),
                      "decode_tok_s": m["perf"]["decode_tok_s"], "prefill_tok_s": m["perf"]["prefill_tok_s"],
                      "ttft_s": m["perf"]["ttft_s"]}
    return info


def _inspect_source(path: Path) -> dict:
    from edgestream.compiler import detect_format
    from edgestream.compiler.frontends.hf import read_config
    from edgestream.safetensors_io import SafetensorsFile

    fmt = detect_format(path)
    if fmt == "gguf":
        from edgestream.compiler.frontends.gguf import inspect_gguf

        return inspect_gguf(path)
    if fmt == "onnx":
        return _inspect_onnx(path)
    cfg = read_config(path)
    tensors = {}
    for p in sorted(path.glob("*.safetensors")):
        f = SafetensorsFile(p)
        for k in f.keys():
            b, e = f.header[k]["data_offsets"]
            tensors[k] = {"dtype": f.dtype(k), "shape": list(f.shape(k)), "bytes": e - b, "file": p.name}
    return {"kind": "source", "format": fmt, "path": str(path), "model": cfg.to_dict(), "tensors": tensors,
            "total_bytes": sum(t["bytes"] for t in tensors.values())}


def _inspect_onnx(path: Path) -> dict:
    """An ONNX file as the frontend reads it: the IR it maps to (a decoder LM or a general graph), each
    weight's encoding and shape, and the ONNX op types it contains."""
    import onnx

    from edgestream.compiler.frontends.onnx import load_onnx

    graph, _ = load_onnx(path)  # validates the file and names what is unsupported
    onnx_ops: dict[str, int] = {}
    for n in onnx.load(str(path), load_external_data=False).graph.node:
        onnx_ops[n.op_type] = onnx_ops.get(n.op_type, 0) + 1
    ops: dict[str, int] = {}
    for n in graph.nodes:
        ops[n.op] = ops.get(n.op, 0) + 1
    tensors = {name: {"encoding": t.encoding, "shape": list(t.shape),
                      "bytes": -(-int(np.prod(t.shape, dtype=np.int64)) * t.bits // 8)}
               for name, t in graph.tensors.items()}
    return {"kind": "source", "format": "onnx", "path": str(path), "model": graph.config.to_dict(), "ops": ops,
            "onnx_ops": onnx_ops, "tensors": tensors, "total_bytes": sum(t["bytes"] for t in tensors.values())}


def cmd_inspect(a: argparse.Namespace) -> int:
    p = Path(a.path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    info = _inspect_artifact(p) if (p / "manifest.json").is_file() else _inspect_source(p)
    if a.json:
        _print_json(info)
        return 0
    from rich.table import Table

    c = _console(stderr=False)
    m = info["model"]
    c.print(f"[bold]{info['kind']}[/bold] {p}: {m['arch']}, {m['num_layers']} layers, hidden {m['hidden_size']}, "
            f"FFN {m['intermediate_size']}, heads {m['num_heads']}/{m['num_kv_heads']} (q/kv), "
            f"head_dim {m['head_dim']}, vocab {m['vocab_size']}")
    if "ops" in info:
        c.print("ops: " + ", ".join(f"{k} x{v}" for k, v in info["ops"].items()))
    if "hw" in info:
        h, hc = info["hw"], info["hw"]["hw_config"]
        c.print(f"hardware: {h['target']} config {h['config_id']} (G={hc['G']} T={hc['T']} Q={hc['Q']}, "
                f"{hc['clock_mhz']:.0f} MHz); program: {h['program']['instructions']} instructions, image "
                f"{h['program']['image_bytes'] / 1e6:.2f} MB; modelled decode {h['decode_tok_s']:.1f} tok/s, "
                f"prefill {h['prefill_tok_s']:.1f} tok/s, TTFT {h['ttft_s']:.3f} s (edgestream report for more)")
    t = Table("tensor", "format", "shape", "bytes")
    rows = list(info["tensors"].items())
    show = rows if a.all or len(rows) <= 40 else rows[:20] + rows[-10:]
    for name, e in show:
        t.add_row(name, e.get("encoding", e.get("dtype")), "x".join(map(str, e["shape"])), f"{e['bytes']:,}")
    c.print(t)
    if len(show) < len(rows):
        c.print(f"({len(rows) - len(show)} more tensors; --all lists every one)")
    c.print(f"total: {info['total_bytes'] / 1e6:.2f} MB in {len(rows)} tensors")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgestream", description="Ternary and low-bit LLMs on small FPGA boards.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("compile", help="compile a model into an artifact")
    c.add_argument("src", help="Hugging Face checkpoint directory, .gguf or .onnx")
    c.add_argument("-o", "--output", required=True, help="artifact directory to write (e.g. model.esa)")
    c.add_argument("--target", default="cpu",
                   help="cpu, a board (kv260, zcu104, ultra96v2, generic), sim (the simulated shell) or a target .json "
                        "(docs/targets.md)")
    c.add_argument("--hw-config", default=None, metavar="FILE",
                   help="hardware configuration .json instead of design-space exploration (docs/targets.md), or "
                        "'shell': the configuration of the shipped accelerator RTL (--device sim)")
    c.add_argument("--clock", type=float, default=None, metavar="MHZ", help="fix the clock (board targets)")
    c.add_argument("--quant", default="auto", choices=["auto", "ternary", "int8", "int4"],
                   help="weight quantization of float checkpoints (auto: ternary for BitNet, int8 otherwise)")
    c.add_argument("--format", default=None, choices=["hf", "gguf", "onnx"], help="override format detection")
    c.add_argument("--progress", action="store_true", help="show the progress bar even when not a terminal")
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=cmd_compile)

    r = sub.add_parser("run", help="generate tokens from a compiled artifact")
    r.add_argument("artifact")
    r.add_argument("--device", default="cpu", choices=["cpu", "sim", "pynq", "auto"],
                   help="cpu (CPU executor), sim (accelerator RTL in Verilator/Icarus), pynq (board), "
                        "auto (pynq when a board is present, else cpu)")
    r.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"], help="for --device sim")
    r.add_argument("--latency", type=int, default=100, help="--device sim: DDR read latency in cycles")
    r.add_argument("--kernel", default=None, help="CPU kernel: auto (default) or numpy")
    g = r.add_argument_group("prompt")
    g.add_argument("--prompt", default=None, help="prompt text (needs a tokenizer in the artifact)")
    g.add_argument("--prompt-ids", default=None, help="prompt token ids, e.g. 1,2,3")
    g.add_argument("--chat", default=None, metavar="TEXT",
                   help="a user message, rendered through the model's chat template; stops at end of turn")
    g.add_argument("--system", default=None, metavar="TEXT", help="system prompt for --chat")
    r.add_argument("--max-new-tokens", type=int, default=32)
    r.add_argument("--temperature", type=float, default=0.0)
    r.add_argument("--top-k", type=int, default=0)
    r.add_argument("--top-p", type=float, default=1.0)
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--kv-window", type=int, default=None, metavar="N",
                   help="endless generation in a fixed KV budget: keep the --sinks first positions and the N "
                        "most recent (docs/numerics.md \"KV window\"); without it prompt + new tokens must fit "
                        "the context")
    r.add_argument("--sinks", type=int, default=None, metavar="S",
                   help="attention-sink positions kept when the --kv-window rolls (default 4)")
    r.add_argument("--dump-logits", default=None, metavar="FILE.npy",
                   help="save float32 logits of every generated step, shape (steps, vocab)")
    gg = r.add_argument_group("batch inference (graph artifacts compiled from ONNX)")
    gg.add_argument("--inputs", default=None, metavar="IN.npz", help="named input arrays")
    gg.add_argument("--outputs", default=None, metavar="OUT.npz", help="where to write the named outputs")
    r.add_argument("--verbose", action="store_true")
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=cmd_run)

    x = sub.add_parser("export-onnx", help="write a compiled graph artifact as a standard ONNX model")
    x.add_argument("artifact")
    x.add_argument("-o", "--output", required=True, help="ONNX file to write")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_export_onnx)

    gg = sub.add_parser("export-gguf", help="write a Hugging Face checkpoint as a llama.cpp GGUF file")
    gg.add_argument("src", help="Hugging Face checkpoint directory (BitNet or Llama)")
    gg.add_argument("-o", "--output", required=True, help="GGUF file to write (e.g. model.gguf)")
    gg.add_argument("--type", default="tq2_0", choices=["tq2_0", "tq1_0", "q8_0", "f16", "f32"],
                    help="type of the linear weights (norms stay F32; token_embd is F16 for TQ types)")
    gg.add_argument("--untied-output", action="store_true",
                    help="BitNet with its own lm_head: write output.weight "
                         "(edgestream reads it; llama.cpp does not)")
    gg.add_argument("--json", action="store_true")
    gg.set_defaults(fn=cmd_export_gguf)

    b = sub.add_parser("bench", help="run an artifact on an accelerator device and report cycles, bus use, stalls")
    b.add_argument("artifact")
    b.add_argument("--device", default="sim", choices=["sim", "pynq"])
    b.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    b.add_argument("--latency", type=int, default=100, help="--device sim: DDR read latency in cycles")
    b.add_argument("--prompt-ids", default="1,2,3,4", help="prompt token ids (default 1,2,3,4)")
    b.add_argument("--decode-tokens", type=int, default=2, help="decode steps to measure (default 2)")
    b.add_argument("--method", default="auto", choices=["auto", "full", "layer"],
                   help="full: whole passes; layer: one decoder layer and the LM head measured, scaled by the "
                        f"layer count (auto: layer for more than {LAYER_BENCH_MIN_LAYERS} layers)")
    b.add_argument("--context", type=int, default=128, help="--method layer: KV positions of the decode step")
    b.add_argument("--prompt-len", type=int, default=128, help="--method layer: prompt length of ttft_s")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=cmd_bench, kernel=None)

    st = sub.add_parser("selftest", help="check an accelerator: identity, known matmuls bit-exact, read bandwidth, "
                                         "demo-model tokens against the CPU (docs/board.md)")
    from edgestream.selftest import add_arguments as _selftest_arguments

    _selftest_arguments(st)
    st.set_defaults(fn=cmd_selftest)

    rp = sub.add_parser("report", help="modelled resources and performance of a board artifact (measured ones "
                                       "with --bench)")
    rp.add_argument("artifact")
    rp.add_argument("--html", default=None, metavar="OUT.html",
                    help="write the report as one self-contained HTML page (interactive plots, works offline)")
    rp.add_argument("--png", default=None, metavar="OUT.png", help="write the plots as one PNG image")
    rp.add_argument("--bench", default=None, metavar="BENCH.json",
                    help="`edgestream bench --json` output (whole passes or --method layer): measured figures "
                         "beside the modelled ones, with the model's error at the bench's conditions")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(fn=cmd_report)

    sv = sub.add_parser("serve", help="an OpenAI-compatible HTTP API (completions, chat, SSE streaming, /metrics)")
    sv.add_argument("artifact")
    _add_device_args(sv)
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    sv.add_argument("--model-name", default=None, help="the `model` clients name (default: the artifact's name)")
    sv.add_argument("--max-queue", type=int, default=8,
                    help="requests that may wait for the device; more get 429 (default 8)")
    sv.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    sv.set_defaults(fn=cmd_serve)

    ch = sub.add_parser("chat", help="talk to a model in the terminal through its chat template")
    ch.add_argument("artifact")
    _add_device_args(ch)
    ch.add_argument("--system", default=None, metavar="TEXT", help="system prompt")
    ch.add_argument("--max-new-tokens", type=int, default=256, help="per answer (default 256)")
    ch.add_argument("--temperature", type=float, default=0.0)
    ch.add_argument("--top-k", type=int, default=0)
    ch.add_argument("--top-p", type=float, default=1.0)
    ch.add_argument("--seed", type=int, default=None)
    ch.set_defaults(fn=cmd_chat)

    i = sub.add_parser("inspect", help="show layers, shapes, formats and bytes of an artifact or model")
    i.add_argument("path")
    i.add_argument("--all", action="store_true")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_inspect)
    return ap


def main(argv: list[str] | None = None) -> int:
    import warnings

    args = build_parser().parse_args(argv)

    def show(message, category, filename, lineno, file=None, line=None):
        # user-facing notices (e.g. a GGUF tensor requantized) read like errors, without source lines
        sys.stderr.write(f"edgestream {args.cmd}: warning: {message}\n")

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            return args.fn(args)
    except EdgestreamError as e:
        sys.stderr.write(f"edgestream {args.cmd}: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
