"""Compiler passes: each takes a Graph and returns a Graph (verified after every step)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgestream.errors import CompileError, InputError
from edgestream.formats.intweights import quantize_per_channel
from edgestream.ir import Graph, Node, Tensor, verify
from edgestream.numerics import rope_tables

QUANT_CHOICES = ("auto", "ternary", "int8", "int4")


_ROWS = 4096  # rows quantized at a time: the float copy of a large tensor never exists whole


def _float_blocks(t: Tensor):
    """Rows of a float tensor, a block at a time, checked finite (lazy checkpoint tensors read only
    that block)."""
    data = t.data
    if not hasattr(data, "rows"):
        data = np.asarray(data, dtype=np.float32)  # a source that can only be read whole
    n = data.shape[0]
    for r in range(0, n, _ROWS):
        a = data.rows(r, min(n, r + _ROWS)) if hasattr(data, "rows") else data[r : r + _ROWS]
        if not np.all(np.isfinite(a)):
            raise InputError(f"tensor {t.name} contains NaN or Inf")
        yield r, a


def quantize_ternary(t: Tensor | np.ndarray, name: str | None = None) -> Tensor:
    """BitNet b1.58 absmean: beta = max(mean|W|, 1e-5) (float64 mean); t = clamp(rint(W * float32(1/beta)), -1, 1).
    `t` is a float Tensor, or an array named `name`."""
    if not isinstance(t, Tensor):
        t = Tensor(name or "weight", "float32", np.asarray(t, dtype=np.float32))
    total = sum(float(np.sum(np.abs(a), dtype=np.float64)) for _, a in _float_blocks(t))
    beta = np.float32(max(total / max(int(np.prod(t.shape)), 1), 1e-5))
    out = np.empty(t.shape, dtype=np.int8)
    for r, a in _float_blocks(t):
        out[r : r + len(a)] = np.clip(np.rint(a * (np.float32(1.0) / beta)), -1, 1)
    return Tensor(t.name, "ternary", out, np.array([beta], dtype=np.float32))


def quantize_int(t: Tensor, bits: int) -> Tensor:
    """Per-output-channel symmetric integers (rows are independent, so blocks of rows are exact)."""
    q = np.empty(t.shape, dtype=np.int8)
    beta = np.empty(t.shape[0], dtype=np.float32)
    for r, a in _float_blocks(t):
        q[r : r + len(a)], beta[r : r + len(a)] = quantize_per_channel(a, bits)
    return Tensor(t.name, f"int{bits}", q, beta)


def quantize_weights(graph: Graph, quant: str = "auto", lm_head_bits: int = 8,
                     progress: Callable[[int, int, str], None] | None = None) -> Graph:
    """Float linear weights -> ternary (absmean) or per-channel integers; embeddings and the LM head
    -> INT8 per row. Tensors are read and quantized one at a time (never two float copies)."""
    if quant not in QUANT_CHOICES:
        raise CompileError(f"--quant {quant!r}: expected one of {', '.join(QUANT_CHOICES)}")
    if quant == "auto":
        quant = "ternary" if graph.config.arch == "bitnet" else "int8"
    todo = []
    for node in graph.nodes:
        attr = {"embed": "table", "linear": "weight"}.get(node.op)
        if attr is not None and graph.tensors[node.attrs[attr]].encoding == "float32":
            todo.append((node, graph.tensors[node.attrs[attr]]))
    for done, (node, t) in enumerate(todo):
        if graph.tensors[t.name].encoding != "float32":
            continue  # a tied table already quantized through its other user
        if progress:
            progress(done, len(todo), t.name)
        if node.op == "embed" or node.name == "lm_head":
            graph.tensors[t.name] = quantize_int(t, 8 if node.op == "embed" else lm_head_bits)
        elif quant == "ternary":
            graph.tensors[t.name] = quantize_ternary(t)
        else:
            graph.tensors[t.name] = quantize_int(t, int(quant[3:]))
    if progress:
        progress(len(todo), len(todo), "quantized")
    return verify(graph)


def fuse_norm_quant(graph: Graph) -> Graph:
    """Every linear's input gets an INT8 quantizer; an RMSNorm that feeds only linears is folded into
    it (norm_quant), since 1/rms changes only the per-token scale (docs/numerics.md)."""
    nodes: list[Node] = []
    quantized: dict[str, tuple[str, str]] = {}
    norms = {n.outputs[0]: n for n in graph.nodes if n.op == "rmsnorm"}
    folded = {v for v, n in norms.items() if all(c.op == "linear" for c in graph.consumers(v))}
    for n in graph.nodes:
        if n.op == "rmsnorm" and n.outputs[0] in folded:
            continue
        if n.op == "linear":
            v = n.inputs[0]
            if v not in quantized:
                qv, sv = v + ".q", v + ".s"
                if v in folded:
                    nn = norms[v]
                    nodes.append(Node("norm_quant", nn.name, [nn.inputs[0]], [qv, sv],
                                      {"gain": nn.attrs["gain"], "eps": nn.attrs["eps"]}))
                else:
                    nodes.append(Node("norm_quant", v + ".quant", [v], [qv, sv], {"gain": None, "eps": None}))
                quantized[v] = (qv, sv)
            nodes.append(Node("qlinear", n.name, list(quantized[v]), n.outputs, dict(n.attrs)))
        elif n.op == "rmsnorm":
            raise CompileError(f"node {n.name}: RMSNorm that does not feed a linear layer is not supported")
        else:
            nodes.append(n)
    graph.nodes = nodes
    return verify(graph, quantized=True)


def attach_rope_tables(graph: Graph) -> Graph:
    cfg = graph.config
    with np.errstate(all="ignore"):
        cos, sin = rope_tables(cfg.head_dim, cfg.max_position, cfg.rope_theta)
    # the frontends bound rope_theta; this is the one place every frontend's value passes through, and
    # NaN angles would reach the executors (the C attention kernel does not survive them)
    if not (np.all(np.isfinite(cos)) and np.all(np.isfinite(sin))):
        raise InputError(f"rope_theta {cfg.rope_theta} with head_dim {cfg.head_dim} gives non-finite RoPE "
                         f"angles (expected a finite base >= 1)")
    graph.tensors["rope.cos"] = Tensor("rope.cos", "float32", cos)
    graph.tensors["rope.sin"] = Tensor("rope.sin", "float32", sin)
    for n in graph.nodes:
        if n.op == "rope":
            n.attrs.update(cos="rope.cos", sin="rope.sin")
    return graph


def check_weights(graph: Graph) -> Graph:
    """Scales must be finite and positive; shapes of the linears must chain."""
    for t in graph.tensors.values():
        if t.scale is not None and not (np.all(np.isfinite(t.scale)) and np.all(t.scale > 0)):
            raise InputError(f"tensor {t.name}: scale must be finite and positive, got {t.scale[:4].tolist()}")
    return graph


PIPELINE = (quantize_weights, fuse_norm_quant, attach_rope_tables, check_weights)
