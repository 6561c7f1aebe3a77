"""edgestream: ternary and low-bit integer LLMs on small FPGA boards."""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, device: str = "cpu", kernel: str | None = None, device_options: dict | None = None):
    """Load a compiled artifact: a decoder LM gives a Session whose generate(...) yields tokens; a
    general graph (ONNX) gives a GraphSession whose run(inputs) returns outputs."""
    import json
    from pathlib import Path

    try:
        arch = json.loads((Path(path) / "manifest.json").read_text()).get("model", {}).get("arch")
    except (OSError, ValueError, AttributeError):
        arch = None  # read_artifact reports what is wrong
    if arch == "graph":
        from edgestream.host.graph_executor import load_graph

        return load_graph(path, device=device, kernel=kernel, device_options=device_options)
    from edgestream.host.session import load as _load

    return _load(path, device=device, kernel=kernel, device_options=device_options)


def compile_model(src, out, **kw):
    """Compile a model (HF checkpoint directory, GGUF, ONNX) into an artifact directory."""
    from edgestream.compiler import compile_model as _compile

    return _compile(src, out, **kw)
