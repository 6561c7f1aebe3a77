"""The edgestream compiler: frontends -> IR -> passes -> artifact."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from edgestream.artifact import write_artifact
from edgestream.errors import InputError
from edgestream.ir import Graph


def detect_format(src: Path) -> str:
    if src.is_dir():
        return "hf"
    suffix = src.suffix.lower()
    if suffix == ".gguf":
        return "gguf"
    if suffix == ".onnx":
        return "onnx"
    if not src.exists():
        raise InputError(f"{src}: no such file or directory")
    raise InputError(f"{src}: unknown model format (expected a Hugging Face checkpoint directory, "
                     f".gguf or .onnx)")


def load_model(src: str | Path, fmt: str | None = None):
    src = Path(src)
    fmt = fmt or detect_format(src)
    if fmt == "hf":
        from edgestream.compiler.frontends.hf import load_hf

        return load_hf(src)
    if fmt == "onnx":
        from edgestream.compiler.frontends.onnx import load_onnx

        return load_onnx(src)
    raise InputError(f"{src}: the {fmt} frontend is not available yet")


def lower(graph: Graph, quant: str = "auto", progress: Callable[[int, int, str], None] | None = None) -> Graph:
    from edgestream.compiler import passes

    graph = passes.quantize_weights(graph, quant, progress=progress)
    for p in passes.PIPELINE[1:]:
        graph = p(graph)
    return graph


def compile_model(src: str | Path, out: str | Path, target: str = "cpu", quant: str = "auto",
                  fmt: str | None = None, progress: Callable[[int, int, str], None] | None = None) -> Path:
    """Compile a model file/directory into an artifact directory; returns its path."""
    if target != "cpu":
        raise InputError(f"target {target!r} is not available yet (expected 'cpu')")
    t0 = time.perf_counter()
    graph, tok = load_model(src, fmt)
    if graph.config.arch == "graph":  # general graphs arrive quantized: nothing to lower (docs/onnx.md)
        from edgestream.compiler.passes import check_weights

        graph = check_weights(graph)
    else:
        graph = lower(graph, quant, progress)
    extra = {"target": target, "source": str(src), "compile_s": round(time.perf_counter() - t0, 3)}
    return write_artifact(graph, out, tok, extra)
