"""`edgestream export-onnx`: a compiled general-graph artifact as a standard ONNX graph.

Every accelerated layer becomes integer ONNX ops that onnxruntime runs exactly (MatMulInteger with the
artifact's integer weights and zero points, an int32 Add for the bias, then Cast/Mul/QuantizeLinear
for the requantization with the same float32 steps as the executor), so onnxruntime -- an executor
nobody here wrote -- cross-checks the CPU executor on the compiled program itself (weights as packed
and unpacked from the artifact, not as read from the source file). Decoder-LM artifacts (KV cache,
table-based attention) are not exported.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from edgestream.artifact import read_artifact
from edgestream.errors import InputError

ONNX_TYPES = {"float32": 1, "uint8": 2, "int8": 3, "int32": 6, "int64": 7}
SAME = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "matmul": "MatMul",
        "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "erf": "Erf", "sqrt": "Sqrt",
        "reciprocal": "Reciprocal", "neg": "Neg", "identity": "Identity"}


def to_onnx(artifact_path: str | Path):
    """Returns an onnx.ModelProto of the artifact's program."""
    import onnx
    from onnx import helper as h
    from onnx import numpy_helper as nh

    art = read_artifact(artifact_path)
    g = art.graph
    if g.config.arch != "graph":
        raise InputError(f"{artifact_path}: export-onnx takes general-graph artifacts (compiled from ONNX); "
                         f"this one is a {g.config.arch} decoder LM")
    nodes, inits = [], []
    uid = [0]
    opset = 21

    def fresh(base: str) -> str:
        uid[0] += 1
        return f"{base}__x{uid[0]}"

    def init(name: str, a: np.ndarray) -> str:
        inits.append(nh.from_array(np.asarray(a), name))
        return name

    def node(op: str, ins: list[str], outs: list[str] | None = None, **attrs) -> str:
        outs = outs or [fresh(op)]
        nodes.append(h.make_node(op, ins, outs, name=fresh(op), **attrs))
        return outs[0]

    for n in g.nodes:
        a, ins, out = n.attrs, n.inputs, n.outputs
        if n.op == "const":
            t = g.tensors[a["value"]]
            init(out[0], np.asarray(t.data).astype(a.get("dtype", "float32")).reshape(a.get("shape", t.shape)))
        elif n.op == "quantize":
            node("QuantizeLinear", ins, out)
        elif n.op == "dequantize":
            node("DequantizeLinear", ins, out)
        elif n.op == "dynamic_quantize":
            node("DynamicQuantizeLinear", ins, out)
        elif n.op == "qonnx_quant":
            v = node("Div", ins[:2])
            v = node("Add", [v, node("Cast", [ins[2]], to=1)])
            v = node("Round", [v])
            v = node("Clip", [v, init(fresh("lo"), np.float32(a["lo"])), init(fresh("hi"), np.float32(a["hi"]))])
            node("Cast", [v], out, to=ONNX_TYPES[a["dtype"]])
        elif n.op == "bipolar_quant":
            ge = node("GreaterOrEqual", [ins[0], init(fresh("zero"), np.float32(0.0))])
            node("Where", [ge, init(fresh("one"), np.int8(1)), init(fresh("minus_one"), np.int8(-1))], out)
        elif n.op == "threshold":
            thr = init(fresh("thresholds"), np.asarray(g.tensors[a["thresholds"]].data, np.int32))
            inc = init(fresh("increasing"), np.asarray(g.tensors[a["direction"]].data).reshape(-1, 1) > 0)
            last = init(fresh("last"), np.asarray([-1], np.int64))
            u = node("Unsqueeze", [ins[0], last])
            ge, le = (node("Cast", [node(op, [u, thr])], to=6) for op in ("GreaterOrEqual", "LessOrEqual"))
            c = node("Where", [inc, ge, le])  # onnxruntime's Where has no bool kernel
            v = node("ReduceSum", [c, last], keepdims=0)
            v = node("Add", [node("Mul", [v, init(fresh("step"), np.int32(a["step"]))]),
                             init(fresh("base"), np.int32(a["base"]))])
            node("Cast", [v], out, to=ONNX_TYPES[a["dtype"]])
        elif n.op == "maxpool":
            node("MaxPool", ins, out, kernel_shape=a["kernel"], strides=a["strides"], dilations=a["dilations"],
                 ceil_mode=a["ceil_mode"], **({"pads": a["pads"]} if a["auto_pad"] == "NOTSET" else
                                              {"auto_pad": a["auto_pad"]}))
        elif n.op == "qmatmul":
            w = g.tensors[a["weight"]]
            wt = init(fresh(w.name), np.ascontiguousarray(np.asarray(w.data, np.int8).T))
            mm_in = [ins[0], wt, ins[1]]
            if a.get("w_zero"):
                mm_in.append(init(fresh(a["w_zero"]), np.asarray(g.tensors[a["w_zero"]].data).astype(np.int8)))
            if a.get("bias"):
                acc = node("MatMulInteger", mm_in)
                node("Add", [acc, init(fresh(a["bias"]), np.asarray(g.tensors[a["bias"]].data, np.int32))], out)
            else:
                node("MatMulInteger", mm_in, out)
        elif n.op in ("requant", "dequant_acc"):
            sw = init(fresh(a["w_scale"]), np.asarray(g.tensors[a["w_scale"]].data, np.float32))
            f = node("Mul", [ins[1], sw])
            accf = node("Cast", [ins[0]], to=1)
            if n.op == "requant":
                m = node("Div", [f, ins[2]])
                v = node("Mul", [accf, m])
                node("QuantizeLinear", [v, init(fresh("one"), np.float32(1.0)), ins[3]], out)
            else:
                node("Mul", [accf, f], out)
        elif n.op == "qmatmul_act":
            node("MatMulInteger", [ins[0], ins[2], ins[1], ins[3]], out)
        elif n.op == "cast":
            node("Cast", ins, out, to=ONNX_TYPES[a["to"]])
        elif n.op in SAME:
            node(SAME[n.op], ins, out)
        elif n.op == "gelu":
            node("Gelu", ins, out, approximate=a.get("approximate", "none"))
        elif n.op == "softmax":
            node("Softmax", ins, out, axis=a["axis"])
        elif n.op == "layernorm":
            node("LayerNormalization", ins, out, axis=a["axis"], epsilon=a["eps"])
        elif n.op == "rmsnorm_op":
            opset = 23
            node("RMSNormalization", ins, out, axis=a["axis"], epsilon=a["eps"])
        elif n.op == "reduce_mean":
            axes = [] if a["axes"] is None else [init(fresh("axes"), np.asarray(a["axes"], np.int64))]
            node("ReduceMean", [ins[0], *axes], out, keepdims=a["keepdims"])
        elif n.op == "reshape":
            node("Reshape", [ins[0], init(fresh("shape"), np.asarray(a["shape"], np.int64))], out,
                 **({"allowzero": 1} if a.get("allowzero") else {}))
        elif n.op == "transpose":
            node("Transpose", ins, out, **({"perm": a["perm"]} if a.get("perm") is not None else {}))
        elif n.op == "flatten":
            node("Flatten", ins, out, axis=a["axis"])
        else:
            raise InputError(f"{artifact_path}: node {n.name}: op {n.op!r} has no ONNX export")

    def vi(name: str, spec: dict):
        return h.make_tensor_value_info(name, ONNX_TYPES.get(spec.get("dtype", "float32"), 1), spec.get("shape"))

    meta = g.meta
    graph = h.make_graph(nodes, "edgestream", [vi(i, meta.get("inputs", {}).get(i, {})) for i in g.inputs],
                         [vi(o, meta.get("outputs", {}).get(o, {})) for o in g.outputs], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], producer_name="edgestream")
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def export_onnx(artifact_path: str | Path, out: str | Path) -> Path:
    """Write the artifact's program as ONNX to `out` (atomically)."""
    model = to_onnx(artifact_path)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return out
