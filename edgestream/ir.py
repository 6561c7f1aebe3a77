"""The model IR: a small typed graph of decoder-LM ops over named activations and weight tensors.

Frontends emit a float graph (`rmsnorm`, float `linear`); compiler passes rewrite it (quantize the
weights, fuse every norm into the INT8 quantizer of the linears it feeds) until it holds only the
ops the executors run (QUANTIZED_OPS). `verify` checks a graph after every pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgestream.errors import CompileError


@dataclass
class ModelConfig:
    arch: str  # "bitnet" (ReLU^2 FFN + sub-layer norms) or "llama" (SwiGLU)
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position: int
    tie_word_embeddings: bool = False
    bos_token_id: int | None = None
    eos_token_ids: list[int] = field(default_factory=list)

    @property
    def act(self) -> str:
        return "relu2" if self.arch == "bitnet" else "silu"

    @property
    def sub_norms(self) -> bool:
        return self.arch == "bitnet"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(**d)


@dataclass
class Tensor:
    """A weight tensor. `encoding`: float32 | ternary | int8 | int4 | int2.
    Integer encodings hold int8 values in `data` and their real scale in `scale` (per tensor: shape
    [1]; per output channel: shape [rows])."""

    name: str
    encoding: str
    data: np.ndarray
    scale: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def bits(self) -> int:
        return {"ternary": 2, "int8": 8, "int4": 4, "int2": 2}.get(self.encoding, 32)


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


# op -> (number of inputs, number of outputs, weight attributes)
FLOAT_OPS = {
    "embed": (1, 1, ("table",)),
    "rmsnorm": (1, 1, ("gain",)),
    "linear": (1, 1, ("weight",)),
}
QUANTIZED_OPS = {
    "embed": (1, 1, ("table",)),
    "norm_quant": (1, 2, ("gain",)),
    "qlinear": (2, 1, ("weight",)),
    "rope": (1, 1, ()),
    "attention": (3, 1, ()),
    "relu2_mul": (2, 1, ()),
    "silu_mul": (2, 1, ()),
    "add": (2, 1, ()),
}
ALL_OPS = {**FLOAT_OPS, **QUANTIZED_OPS}

# General (non-LM) graphs, run as batch inference by host/graph_executor.py (ONNX frontend). Values are
# numpy arrays of any rank: float32, or integers (uint8/int8 quantized activations, int32 accumulators).
# Semantics of every op: docs/numerics.md, "General graphs". `qmatmul` is the accelerated (TLMM) layer.
GRAPH_OPS = {
    "const": (0, 1, ("value",)),
    "quantize": (3, 1, ()),  # x, scale, zero_point -> q          (QuantizeLinear)
    "dequantize": (3, 1, ()),  # q, scale, zero_point -> float    (DequantizeLinear)
    "dynamic_quantize": (1, 3, ()),  # x -> q uint8, scale, zero_point
    "qonnx_quant": (3, 1, ()),  # x, scale, zero_point -> integer q (QONNX Quant)
    "bipolar_quant": (1, 1, ()),  # x -> int8 +1 where x >= 0 else -1 (QONNX BipolarQuant)
    "qmatmul": (2, 1, ("weight", "w_zero", "bias")),  # xq, x_zero_point -> int32 acc (TLMM)
    "qmatmul_act": (4, 1, ()),  # aq, a_zero, bq, b_zero -> int32 (activation x activation, host)
    "requant": (4, 1, ("w_scale",)),  # acc, a_scale, y_scale, y_zero -> q (QLinearMatMul requant)
    "dequant_acc": (2, 1, ("w_scale",)),  # acc, a_scale -> float32(acc) * float32(a_scale * w_scale)
    "cast": (1, 1, ()),
    "add": (2, 1, ()),
    "sub": (2, 1, ()),
    "mul": (2, 1, ()),
    "div": (2, 1, ()),
    "pow": (2, 1, ()),
    "matmul": (2, 1, ()),  # float activation x activation (host, float64 then one rounding)
    "relu": (1, 1, ()),
    "sigmoid": (1, 1, ()),
    "tanh": (1, 1, ()),
    "erf": (1, 1, ()),
    "gelu": (1, 1, ()),
    "sqrt": (1, 1, ()),
    "reciprocal": (1, 1, ()),
    "neg": (1, 1, ()),
    "softmax": (1, 1, ()),
    "layernorm": (3, 1, ()),  # x, gain, bias (bias may be a zero const)
    "rmsnorm_op": (2, 1, ()),  # x, gain (ONNX RMSNormalization)
    "reduce_mean": (1, 1, ()),
    "reshape": (1, 1, ()),
    "threshold": (1, 1, ("thresholds", "direction")),  # int32 acc -> base + step * #thresholds passed
    "im2col": (2, 1, ()),  # x [N, C, H, W], pad value -> columns [N, OH, OW, C*kh*kw] (Conv's unfold)
    "maxpool": (1, 1, ()),  # ONNX MaxPool, 2-D
    "transpose": (1, 1, ()),
    "flatten": (1, 1, ()),
    "identity": (1, 1, ()),
}


@dataclass
class Graph:
    config: ModelConfig
    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: list[str] = field(default_factory=lambda: ["ids"])
    outputs: list[str] = field(default_factory=lambda: ["logits"])
    # general graphs: {"inputs": {name: {"dtype", "shape"}}, "outputs": {...}, "source": ...}
    meta: dict[str, Any] = field(default_factory=dict)

    def consumers(self, value: str) -> list[Node]:
        return [n for n in self.nodes if value in n.inputs]

    def producer(self, value: str) -> Node | None:
        return next((n for n in self.nodes if value in n.outputs), None)


def verify(graph: Graph, quantized: bool = False) -> Graph:
    """Structural checks: known ops and arities, every input defined before use, every weight present,
    and (quantized=True) only executable ops with integer linear weights."""
    ops = QUANTIZED_OPS if quantized else ALL_OPS
    if graph.config.arch == "graph":
        ops = GRAPH_OPS
    defined = set(graph.inputs)
    for n in graph.nodes:
        if n.op not in ops:
            raise CompileError(f"node {n.name}: op {n.op!r} is not allowed here (expected one of {sorted(ops)})")
        n_in, n_out, weights = ops[n.op]
        if len(n.inputs) != n_in or len(n.outputs) != n_out:
            raise CompileError(f"node {n.name}: {n.op} takes {n_in} inputs/{n_out} outputs, "
                               f"has {len(n.inputs)}/{len(n.outputs)}")
        for v in n.inputs:
            if v not in defined:
                raise CompileError(f"node {n.name}: input {v!r} is used before it is defined")
        for w in weights:
            tname = n.attrs.get(w)
            if tname is not None and tname not in graph.tensors:
                raise CompileError(f"node {n.name}: weight tensor {tname!r} is missing")
        if quantized and n.op == "qlinear":
            enc = graph.tensors[n.attrs["weight"]].encoding
            if enc not in ("ternary", "int8", "int4", "int2"):
                raise CompileError(f"node {n.name}: quantized linear with {enc} weights")
        defined.update(n.outputs)
    for v in graph.outputs:
        if v not in defined:
            raise CompileError(f"graph output {v!r} is never produced")
    return graph


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    return {
        "config": graph.config.to_dict(),
        "inputs": graph.inputs,
        "outputs": graph.outputs,
        "nodes": [asdict(n) for n in graph.nodes],
        **({"meta": graph.meta} if graph.meta else {}),
    }
