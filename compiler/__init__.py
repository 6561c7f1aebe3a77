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
    with open(src, "rb") as f:
        if f.read(4) == b"GGUF":  # a GGUF file without the .gguf suffix
            return "gguf"
    raise InputError(f"{src}: unknown model format (expected a Hugging Face checkpoint directory, "
                     f".gguf or .onnx)")


def load_model(src: str | Path, fmt: str | None = None):
    """(float graph, tokenizer.json path or None, TokenizerSettings or None) of a model file."""
    loaded = _load_model(src, fmt)
    return loaded if len(loaded) == 3 else (*loaded, None)


def _load_model(src: str | Path, fmt: str | None):
    src = Path(src)
    fmt = fmt or detect_format(src)
    if fmt == "hf":
        from edgestream.compiler.frontends.hf import load_hf

        return load_hf(src)
    if fmt == "onnx":
        from edgestream.compiler.frontends.onnx import load_onnx

        return load_onnx(src)
    if fmt == "gguf":
        from edgestream.compiler.frontends.gguf import load_gguf

        return load_gguf(src)
    raise InputError(f"{src}: the {fmt} frontend is not available yet")


def lower(graph: Graph, quant: str = "auto", progress: Callable[[int, int, str], None] | None = None) -> Graph:
    from edgestream.compiler import passes

    graph = passes.quantize_weights(graph, quant, progress=progress)
    for p in passes.PIPELINE[1:]:
        graph = p(graph)
    return graph


def compile_model(src: str | Path, out: str | Path, target: str = "cpu", quant: str = "auto",
                  fmt: str | None = None, progress: Callable[[int, int, str], None] | None = None,
                  hw_config: str | Path | None = None, clock_mhz: float | None = None) -> Path:
    """Compile a model file/directory into an artifact directory; returns its path.

    target "cpu" writes the CPU artifact; a board target (kv260, zcu104, ultra96v2, generic or a target
    .json) also chooses a hardware configuration (design-space exploration, or `hw_config` FILE),
    lowers the program (program.bin, hw_weights.bin, docs/program.md) and records the predicted
    performance (edgestream.compiler.lowering.hardware_writer)."""
    t0 = time.perf_counter()
    tgt = None
    if target != "cpu":
        from edgestream.compiler.targets import load_target

        tgt = load_target(target)
    elif hw_config is not None or clock_mhz is not None:
        raise InputError("--hw-config/--clock need a board target (e.g. --target kv260), not 'cpu'")
    try:
        graph, tok, tok_settings = load_model(src, fmt)
        if graph.config.arch == "graph":  # general graphs arrive quantized: nothing to lower (docs/onnx.md)
            from edgestream.compiler.passes import check_weights

            graph = check_weights(graph)
        else:
            graph = lower(graph, quant, progress)
    except InputError as e:
        # passes (and a few frontend helpers) name the tensor or token, not the file it came from
        if str(src) in str(e):
            raise
        raise InputError(f"{src}: {e}") from None
    extra = {"target": target, "source": str(src), "compile_s": round(time.perf_counter() - t0, 3)}
    writers = []
    if tgt is not None:
        from edgestream.compiler.lowering import hardware_writer

        writers.append(hardware_writer(graph, tgt, hw_config, clock_mhz, progress, t0))
    if tok_settings is not None:
        extra["tokenizer"] = tok_settings.to_dict()
    return write_artifact(graph, out, tok, extra, writers=writers)
