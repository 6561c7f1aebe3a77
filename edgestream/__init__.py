"""edgestream: ternary and low-bit integer LLMs on small FPGA boards."""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, device: str = "cpu", kernel: str | None = None):
    """Load a compiled artifact; returns a Session whose generate(...) yields tokens."""
    from edgestream.host.session import load as _load

    return _load(path, device=device, kernel=kernel)


def compile_model(src, out, **kw):
    """Compile a model (HF checkpoint directory, GGUF, ONNX) into an artifact directory."""
    from edgestream.compiler import compile_model as _compile

    return _compile(src, out, **kw)
