"""ONNX frontend: a quantized ONNX file -> IR graph (general graph ops, edgestream.ir.GRAPH_OPS).

Reads, with the `onnx` package, graphs quantized by onnxruntime's quantizer (QDQ: QuantizeLinear /
DequantizeLinear around MatMul/Gemm; QOperator: QLinearMatMul, QGemm, QLinearAdd, MatMulInteger with
DynamicQuantizeLinear; per tensor and per channel; INT8 and UINT8) and QONNX `Quant` / `BipolarQuant`
nodes as Brevitas exports them (1-bit/bipolar and 2-bit/ternary to 8-bit), Conv (im2col + the same
accelerated matmul), MaxPool and inference BatchNormalization (FINN's bnn_pynq networks), plus the
float elementwise and shape ops around them. Rules (docs/onnx.md):

* every weight of a MatMul/Gemm must be quantized (a constant behind DequantizeLinear, QLinearMatMul,
  MatMulInteger, QGemm or a QONNX Quant); such a layer becomes one `qmatmul` node (exact integer
  accumulator, TLMM: ternary values with zero point 0 -> ternary TLMM, otherwise bit-serial integer
  weights in the narrowest of INT2/INT4/INT8 that holds them). A float weight is an error naming the
  node: there is no float fallback on the accelerated path;
* DequantizeLinear -> MatMul -> QuantizeLinear is executed as onnxruntime executes it after its QDQ
  fusion, i.e. as QLinearMatMul: integer accumulator, then one requantization;
* anything else (an op outside the table, an attribute value we do not implement) is an InputError
  naming the node, its op type and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgestream.errors import CompileError, InputError
from edgestream.graph_numerics import batchnorm_affine, qonnx_round
from edgestream.ir import Graph, ModelConfig, Node, Tensor, verify

QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
MS_DOMAIN = "com.microsoft"
# ONNX op type -> IR op for the float ops that map one to one
SIMPLE = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Relu": "relu",
    "Sigmoid": "sigmoid", "Tanh": "tanh", "Erf": "erf", "Sqrt": "sqrt", "Reciprocal": "reciprocal",
    "Neg": "neg", "Identity": "identity",
}
# Schemas of the non-ONNX-domain ops we read, which onnx.checker cannot check (it knows no schema
# for them): (min inputs, max inputs, outputs, {attribute: AttributeProto type}), from onnxruntime's
# contrib op docs (com.microsoft) and QONNX's custom-op definitions
_INT, _FLOAT, _STRING = 2, 1, 3
_ATTR_TYPES = {_INT: "INT", _FLOAT: "FLOAT", _STRING: "STRING"}
CUSTOM_SCHEMAS = {
    (MS_DOMAIN, "QLinearAdd"): (7, 8, 1, {}),
    (MS_DOMAIN, "QLinearSigmoid"): (4, 5, 1, {}),
    (MS_DOMAIN, "QGemm"): (6, 9, 1, {"transA": _INT, "transB": _INT, "alpha": _FLOAT}),
    **{(d, "Quant"): (4, 4, 1, {"signed": _INT, "narrow": _INT, "rounding_mode": _STRING}) for d in QONNX_DOMAINS},
    **{(d, "BipolarQuant"): (2, 2, 1, {}) for d in QONNX_DOMAINS},
}
# Every attribute each handler reads (or knows to be without effect on what we accept, e.g. QuantizeLinear's
# saturate, which only applies to float8): any other attribute on a node is refused by name, so an
# attribute from another opset (Add-6's broadcast, ...) never changes a result silently
KNOWN_ATTRS = {
    **{op: set() for op in (*SIMPLE, "MatMul", "QLinearMatMul", "MatMulInteger", "DynamicQuantizeLinear",
                            "QLinearAdd", "QLinearSigmoid", "BipolarQuant")},
    "Cast": {"to", "saturate"}, "Gelu": {"approximate"}, "Softmax": {"axis"},
    "LayerNormalization": {"axis", "epsilon", "stash_type"}, "RMSNormalization": {"axis", "epsilon", "stash_type"},
    "ReduceMean": {"axes", "keepdims", "noop_with_empty_axes"}, "Reshape": {"allowzero"},
    "Transpose": {"perm"}, "Flatten": {"axis"},
    "Constant": {"value", "value_float", "value_floats", "value_int", "value_ints"},
    "DequantizeLinear": {"axis", "block_size", "output_dtype"},
    "QuantizeLinear": {"axis", "block_size", "saturate", "output_dtype"},
    "Gemm": {"transA", "transB", "alpha", "beta"}, "QGemm": {"transA", "transB", "alpha"},
    "Quant": {"signed", "narrow", "rounding_mode"},
    "BatchNormalization": {"epsilon", "momentum", "training_mode", "spatial", "is_test"},
    "Conv": {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"},
    "MaxPool": {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"},
}
# ops whose output has the rank of their first input (for rank derivation past QONNX's custom ops)
_SAME_RANK = ("Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear", "Conv", "MaxPool", "BatchNormalization",
              "Cast", "Softmax", "Gelu", "LayerNormalization", "RMSNormalization")
# QONNX Quant rounding modes (qonnx.custom_op.general.intquant.resolve_rounding_mode; case-insensitive)
ROUNDING_MODES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")
DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64"}


def graph_config() -> ModelConfig:
    return ModelConfig(arch="graph", vocab_size=0, hidden_size=0, intermediate_size=0, num_layers=0,
                       num_heads=0, num_kv_heads=0, head_dim=0, rms_norm_eps=0.0, rope_theta=0.0,
                       max_position=0)


def _import_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise InputError("the ONNX frontend needs the `onnx` package (pip install onnx)") from None
    return onnx, numpy_helper


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _int_range(dtype: str) -> tuple[int, int]:
    return {"uint8": (0, 255), "int8": (-128, 127)}[dtype]


def _weight_encoding(w: np.ndarray, zero: np.ndarray | None) -> str:
    lo, hi = int(w.min()), int(w.max())
    if (zero is None or not np.any(zero)) and lo >= -1 and hi <= 1:
        return "ternary"
    for bits in (2, 4, 8):
        if lo >= -(1 << (bits - 1)) and hi <= (1 << (bits - 1)) - 1:
            return f"int{bits}"
    raise AssertionError("weights were shifted into int8")


class _Builder:
    def __init__(self, model, path: Path):
        onnx, nh = _import_onnx()
        self.path, self.nh = path, nh
        self.model = model
        self.nodes: list[Node] = []
        self.tensors: dict[str, Tensor] = {}
        self.consts: dict[str, np.ndarray] = {}  # ONNX constant values (initializers, Constant)
        self.const_done: set[str] = set()  # constants already emitted as IR `const` nodes
        # quantized constants: float value name -> (integer values, scale, zero point, axis)
        self.qconst: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int | None]] = {}
        # dequantized activations: float value name -> (integer value, scale value, zero value)
        self.dq_src: dict[str, tuple[str, str, str]] = {}
        self.int_dtype: dict[str, str] = {}  # integer activation value -> "uint8"/"int8"
        self.skip: set[int] = set()
        self.fused_q: dict[str, str] = {}  # MatMul output consumed by a fused QuantizeLinear
        self.uid = 0
        self.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
        self.ranks: dict[str, int] = {}
        try:  # ranks for the ops whose meaning depends on them (Softmax-11); unknown ones stay unknown
            inferred = onnx.shape_inference.infer_shapes(model) if model.ByteSize() < (1 << 31) - (1 << 20) else model
        except Exception:  # noqa: BLE001 -- strict inference already passed in _check_model
            inferred = model
        for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
            if vi.type.tensor_type.HasField("shape"):
                self.ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
        for init in model.graph.initializer:
            self.consts[init.name] = nh.to_array(init)
        self.onnx_nodes = list(model.graph.node)
        self.consumers: dict[str, list] = {}
        self.producer = {o: n for n in self.onnx_nodes for o in n.output if o}
        for n in self.onnx_nodes:
            for v in n.input:
                self.consumers.setdefault(v, []).append(n)
        outs = {o.name for o in model.graph.output}
        for o in outs:
            self.consumers.setdefault(o, []).append(None)

    # ---- helpers
    def err(self, node, why: str) -> InputError:
        name = repr(node.name) if node.name else f"(unnamed, output {node.output[0]!r})"
        return InputError(f"{self.path}: node {name} ({node.op_type}): {why}")

    def fresh(self, base: str) -> str:
        self.uid += 1
        return f"{base}.__{self.uid}"

    def const(self, name: str, value: np.ndarray, as_int: bool = False) -> str:
        """An IR value holding a constant (emitted once)."""
        if name in self.const_done:
            return name
        value = np.asarray(value)
        if as_int or value.dtype.kind in "iub":
            t = Tensor(name, "int32", np.ascontiguousarray(value.astype(np.int32)))
            dt = value.dtype.name if value.dtype.kind in "iu" else "int32"
        else:
            t = Tensor(name, "float32", np.ascontiguousarray(value.astype(np.float32)))
            dt = "float32"
        if value.size == 0:
            raise InputError(f"{self.path}: constant {name!r} is empty")
        self.tensors[name] = t
        self.nodes.append(Node("const", name, [], [name], {"value": name, "dtype": dt,
                                                          "shape": list(value.shape)}))
        self.const_done.add(name)
        return name

    def value(self, name: str, node) -> str:
        """An IR value name for ONNX value `name` (materializing constants)."""
        if name in self.qconst and name not in self.const_done:
            q, s, z, axis = self.qconst[name]
            return self.const(name, self._dequant_const(q, s, z, axis))
        if name in self.consts:
            return self.const(name, self.consts[name])
        if name == "":
            raise self.err(node, "an optional input that this op needs is missing")
        return name

    @staticmethod
    def _bcast(v: np.ndarray, axis: int | None, ndim: int) -> np.ndarray:
        v = np.asarray(v)
        if v.ndim == 0 or v.size == 1 or axis is None:
            return v.reshape(()) if v.size == 1 else v
        shape = [1] * ndim
        shape[axis % ndim] = v.size
        return v.reshape(shape)

    def _dequant_const(self, q, s, z, axis):
        """DequantizeLinear on a constant: float32(q - z) * s (exact ONNX semantics)."""
        s_b = self._bcast(s, axis, q.ndim).astype(np.float32)
        z_b = self._bcast(z, axis, q.ndim).astype(np.int64)
        return ((q.astype(np.int64) - z_b).astype(np.float32) * s_b).astype(np.float32)

    def emit(self, op: str, name: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        self.nodes.append(Node(op, name, inputs, outputs, attrs))

    def rank(self, value: str, depth: int = 0) -> int | None:
        """The rank of a value: onnx's shape inference, else derived through its producers (onnx cannot
        infer past QONNX's custom ops, and a file need not be cleaned up by qonnx)."""
        if value in self.consts:
            return np.asarray(self.consts[value]).ndim
        if value in self.ranks or depth > 64:
            return self.ranks.get(value)
        p = self.producer.get(value)
        r = None
        if p is not None:
            ins = [v for v in p.input if v]
            if p.op_type in ("Gemm", "Flatten", "QGemm"):
                r = 2
            elif p.op_type == "Reshape" and len(ins) > 1 and ins[1] in self.consts:
                r = int(np.asarray(self.consts[ins[1]]).size)
            elif p.op_type in SIMPLE or p.op_type in _SAME_RANK:
                rs = [self.rank(v, depth + 1) for v in (ins if p.op_type in SIMPLE else ins[:1])]
                r = None if not rs or None in rs else max(rs)
        self.ranks[value] = r
        return r

    def only_consumer(self, value: str):
        c = self.consumers.get(value, [])
        return c[0] if len(c) == 1 else None

    # ---- weights
    def weight(self, node, wname: str, scale, zero, axis_n: bool, trans: bool):
        """Integer weights from constant q [K, N] (or [N, K] with trans) -> IR int tensor [N, K] plus
        zero points [N] and scale [N]."""
        if wname not in self.consts:
            raise self.err(node, f"weight {wname!r} is not a constant (the accelerated path needs constant "
                                 "quantized weights)")
        q = np.asarray(self.consts[wname])
        return self._weight_from(node, wname, q, scale, zero, trans)

    def _weight_from(self, node, wname, q, scale, zero, trans):
        if q.ndim != 2:
            raise self.err(node, f"weight {wname!r} has shape {list(q.shape)}, expected a 2-D matrix")
        if q.dtype.kind not in "iu":
            raise self.err(node, f"weight {wname!r} has dtype {q.dtype}, expected int8/uint8")
        w = (q.T if not trans else q).astype(np.int64)  # [N, K]
        n = w.shape[0]
        z = np.broadcast_to(np.asarray(zero if zero is not None else 0, np.int64).reshape(-1), (n,)).copy() \
            if np.asarray(zero if zero is not None else 0).size in (1, n) else None
        s = np.asarray(scale, np.float32).reshape(-1)
        if z is None or s.size not in (1, n):
            raise self.err(node, f"weight {wname!r}: scale/zero point must be per tensor or per output channel "
                                 f"({n}), got {s.size} scales")
        if w.min() < -128 or w.max() > 255:
            raise self.err(node, f"weight {wname!r}: values {w.min()}..{w.max()} exceed 8 bits")
        if w.max() > 127:  # uint8 weights: w - 128 is int8 and the zero point moves with it
            w, z = w - 128, z - 128
        enc = _weight_encoding(w, z)
        tname = self.fresh(wname + ".w")
        self.tensors[tname] = Tensor(tname, enc, np.ascontiguousarray(w.astype(np.int8)),
                                     np.broadcast_to(s, (n,)).astype(np.float32).copy())
        zname = None
        if np.any(z):
            zname = tname + ".zero"
            self.tensors[zname] = Tensor(zname, "int32", z.astype(np.int32))
        sname = tname + ".scale"
        self.tensors[sname] = Tensor(sname, "float32", s.astype(np.float32).copy())
        return tname, zname, sname

    def act_q(self, node, fname: str) -> tuple[str, str, str]:
        """The integer source of a dequantized activation, or an error."""
        if fname in self.dq_src:
            return self.dq_src[fname]
        raise self.err(node, f"input {fname!r} is a float activation; the accelerated path needs it "
                             "quantized (DequantizeLinear / QONNX Quant in front of this node)")

    def qlinear(self, node, out: str, xq: str, xs: str, xz: str, wname: str, wq: np.ndarray, ws, wz,
                trans: bool, bias: np.ndarray | None, ys: str | None, yz: str | None, ydtype: str | None):
        """One accelerated layer: qmatmul (+ integer bias) then requant (quantized output) or
        dequant_acc (float output)."""
        tname, zname, sname = self._weight_from(node, wname, wq, ws, wz, trans)
        acc = self.fresh(out + ".acc")
        bname = None
        if bias is not None:
            bname = tname + ".bias"
            n = self.tensors[tname].shape[0]
            if np.asarray(bias).size not in (1, n):
                raise self.err(node, f"bias has {np.asarray(bias).size} values, expected {n} (one per output "
                                     f"channel of weight {wname!r})")
            self.tensors[bname] = Tensor(bname, "int32", np.broadcast_to(
                np.asarray(bias, np.int64).reshape(-1), (n,)).astype(np.int32).copy())
        self.emit("qmatmul", node.name or out, [xq, xz], [acc], weight=tname, w_zero=zname, bias=bname)
        if ys is not None:
            self.emit("requant", (node.name or out) + ".requant", [acc, xs, ys, yz], [out], w_scale=sname,
                      dtype=ydtype)
            self.int_dtype[out] = ydtype
        else:
            self.emit("dequant_acc", (node.name or out) + ".dequant", [acc, xs], [out], w_scale=sname)

    # ---- the walk
    def build(self) -> Graph:
        g = self.model.graph
        inits = set(self.consts)
        meta_in, meta_out = {}, {}
        for vi, dst in [(v, meta_in) for v in g.input if v.name not in inits] + [(v, meta_out) for v in g.output]:
            tt = vi.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]
            dst[vi.name] = {"dtype": DTYPES.get(tt.elem_type, str(tt.elem_type)), "shape": dims}
        for name, spec in meta_in.items():
            if spec["dtype"] not in ("float32", "uint8", "int8"):
                raise InputError(f"{self.path}: graph input {name!r} has type {spec['dtype']}, expected float32, "
                                 "uint8 or int8")
            if spec["dtype"] != "float32":
                self.int_dtype[name] = spec["dtype"]
        for i, node in enumerate(self.onnx_nodes):
            if i in self.skip:
                continue
            dom = node.domain or ""
            if dom in ("", "ai.onnx"):
                fn = getattr(self, "op_" + node.op_type, None)
            elif dom == MS_DOMAIN:
                fn = getattr(self, "ms_" + node.op_type, None)
            elif dom in QONNX_DOMAINS:
                fn = getattr(self, "qonnx_" + node.op_type, None)
            else:
                fn = None
            if fn is None:
                raise self.err(node, f"op {dom + '.' if dom else ''}{node.op_type} is not supported "
                                     "(docs/onnx.md lists the supported ops)")
            self._check_custom(node, dom)
            self._check_attrs(node)
            fn(node)
        outputs = []
        for o in g.output:
            if o.name in self.consts or o.name in self.qconst:
                raise InputError(f"{self.path}: graph output {o.name!r} is a constant")
            outputs.append(o.name)
        graph = Graph(graph_config(), self.nodes, self.tensors, list(meta_in), outputs,
                      {"inputs": meta_in, "outputs": meta_out, "source": "onnx",
                       "opset": max((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")),
                                    default=0)})
        try:
            return verify(graph)
        except CompileError as e:  # a value used before it is defined, ... : the file's structure
            raise InputError(f"{self.path}: {e}") from None

    def _check_custom(self, node, dom: str) -> None:
        schema = CUSTOM_SCHEMAS.get((dom, node.op_type))
        if schema is None:
            return
        lo, hi, n_out, attrs = schema
        if not lo <= len(node.input) <= hi or len(node.output) != n_out:
            want = f"{lo}" if lo == hi else f"{lo} to {hi}"
            raise self.err(node, f"has {len(node.input)} inputs and {len(node.output)} outputs, expected {want} "
                                 f"inputs and {n_out} output")
        for a in node.attribute:
            if a.name in attrs and a.type != attrs[a.name]:
                raise self.err(node, f"attribute {a.name!r} has AttributeProto type {a.type}, expected "
                                     f"{attrs[a.name]} ({_ATTR_TYPES[attrs[a.name]]})")

    def _check_attrs(self, node) -> None:
        known = KNOWN_ATTRS.get(node.op_type)
        if known is None:
            return
        extra = [a.name for a in node.attribute if a.name not in known]
        if extra:
            raise self.err(node, f"attribute {extra[0]!r} is not supported (this op reads "
                                 f"{sorted(known) if known else 'no attributes'})")

    def bad_attr(self, node, name: str, value, why: str) -> InputError:
        return self.err(node, f"attribute {name!r}={value!r} is not supported ({why})")

    def const_input(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.err(node, f"{what} {name!r} must be a constant")
        return self.consts[name]

    # ---- constants
    def op_Constant(self, node):
        a = _attrs(node)
        if "value" in a:
            v = self.nh.to_array(a["value"])
        elif "value_float" in a or "value_floats" in a:
            v = np.asarray(a.get("value_float", a.get("value_floats")), np.float32)
        elif "value_int" in a or "value_ints" in a:
            v = np.asarray(a.get("value_int", a.get("value_ints")), np.int64)
        else:  # checker: exactly one value attribute; sparse_value / strings fall here via _check_attrs
            raise self.err(node, "no value attribute")
        self.consts[node.output[0]] = v

    # ---- quantization ops
    def _sz(self, node, idx_s: int, idx_z: int):
        s = node.input[idx_s]
        z = node.input[idx_z] if len(node.input) > idx_z and node.input[idx_z] else ""
        return s, z

    def op_DequantizeLinear(self, node):
        x, (s, z) = node.input[0], self._sz(node, 1, 2)
        axis = _attrs(node).get("axis", 1)
        if _attrs(node).get("block_size", 0):
            raise self.bad_attr(node, "block_size", _attrs(node)["block_size"], "blocked quantization")
        if _attrs(node).get("output_dtype", 0) not in (0, 1):
            raise self.bad_attr(node, "output_dtype", _attrs(node)["output_dtype"], "the output is float32")
        if x in self.consts and s in self.consts:
            q = self.consts[x]
            zv = self.consts[z] if z else np.zeros((), q.dtype)
            if q.dtype.kind not in "iu":
                raise self.err(node, f"input {x!r} has dtype {q.dtype}, expected an integer type")
            self.qconst[node.output[0]] = (q, self.consts[s], zv, axis if np.asarray(self.consts[s]).size > 1 else None)
            return
        if s in self.consts and np.asarray(self.consts[s]).size > 1:
            raise self.err(node, "per-channel activation quantization is not supported (expected one scale)")
        dt = self.int_dtype.get(x)
        if dt is None:
            raise self.err(node, f"input {x!r} is not a known uint8/int8 activation")
        zero = np.zeros((), np.dtype(dt))
        zname = self.value(z, node) if z else self.const(self.fresh(node.output[0] + ".zero"), zero)
        sname = self.value(s, node)
        self.emit("dequantize", node.name or node.output[0], [x, sname, zname], [node.output[0]])
        self.dq_src[node.output[0]] = (x, sname, zname)

    def op_QuantizeLinear(self, node):
        x, (s, z) = node.input[0], self._sz(node, 1, 2)
        a = _attrs(node)
        if a.get("block_size", 0):
            raise self.bad_attr(node, "block_size", a["block_size"], "blocked quantization")
        # saturate only applies to float8 outputs (ONNX QuantizeLinear-19), which are refused below
        if s in self.consts and np.asarray(self.consts[s]).size > 1:
            raise self.err(node, "per-channel activation quantization is not supported (expected one scale)")
        if z and z in self.consts:
            dt = self.consts[z].dtype.name
            odt = DTYPES.get(a.get("output_dtype", 0), "?")
            if a.get("output_dtype", 0) and odt != dt:
                raise self.bad_attr(node, "output_dtype", a["output_dtype"], f"the zero point is {dt}")
        elif not z:
            dt = {2: "uint8", 3: "int8"}.get(a.get("output_dtype", 2), "?")
        else:
            raise self.err(node, "a zero point that is not a constant is not supported")
        if dt not in ("uint8", "int8"):
            raise self.err(node, f"quantized type {dt} is not supported (expected uint8 or int8)")
        out = node.output[0]
        self.int_dtype[out] = dt
        if x in self.fused_q:
            return  # done by the MatMul's requant
        zname = self.value(z, node) if z else self.const(self.fresh(out + ".zero"), np.zeros((), np.dtype(dt)))
        self.emit("quantize", node.name or out, [self.value(x, node), self.value(s, node), zname], [out], dtype=dt)

    def op_DynamicQuantizeLinear(self, node):
        self.emit("dynamic_quantize", node.name or node.output[0], [self.value(node.input[0], node)],
                  list(node.output))
        self.int_dtype[node.output[0]] = "uint8"

    # ---- linear layers
    def _fusable_q(self, node, out: str):
        """The QuantizeLinear that alone consumes `out` (static scale and zero point), or None."""
        c = self.only_consumer(out)
        if c is None or c.op_type != "QuantizeLinear" or (c.domain or "") not in ("", "ai.onnx"):
            return None
        s, z = self._sz(c, 1, 2)
        if s not in self.consts or (z and z not in self.consts) or np.asarray(self.consts[s]).size != 1:
            return None
        return c

    def _matmul_like(self, node, a: str, b: str, trans_b: bool, bias: str | None):
        out = node.output[0]
        if b in self.qconst:
            wq, ws, wz, axis = self.qconst[b]
            n_axis = 0 if trans_b else 1
            if axis is not None and axis % 2 != n_axis:
                raise self.err(node, f"weight {b!r} is quantized along axis {axis}; expected per output channel "
                                     f"(axis {n_axis}) or per tensor")
            xq, xs, xz = self.act_q(node, a)
            ibias, fbias = None, None
            if bias:
                if bias in self.qconst:
                    bq, bs, bz, _ = self.qconst[bias]
                    if bq.dtype == np.int32 and not np.any(bz):
                        ibias = (bq, bs)
                    else:
                        fbias = bias
                else:
                    fbias = bias
            q = self._fusable_q(node, out) if fbias is None else None
            if ibias is not None and q is None:
                fbias, ibias = bias, None
            if ibias is not None:  # ORT's QGemm adds the int32 bias to the accumulator
                want = (np.float32(self._scalar(xs)) * np.asarray(ws, np.float32)).astype(np.float32)
                if not np.allclose(np.asarray(ibias[1], np.float32), want, rtol=1e-6, atol=0):
                    fbias, ibias = bias, None
            if q is not None:
                ys, yz = self._sz(q, 1, 2)
                qout = q.output[0]
                ydt = self.consts[yz].dtype.name if yz else "uint8"
                yzn = self.value(yz, q) if yz else self.const(self.fresh(qout + ".zero"), np.zeros((), np.dtype(ydt)))
                self.fused_q[out] = qout
                self.qlinear(node, qout, xq, xs, xz, b, wq, ws, wz, trans_b, None if ibias is None else ibias[0],
                             self.value(ys, q), yzn, ydt)
                self.skip.add(self.onnx_nodes.index(q))
                self.int_dtype[qout] = ydt
                return
            tmp = self.fresh(out + ".mm") if fbias else out
            self.qlinear(node, tmp, xq, xs, xz, b, wq, ws, wz, trans_b, None, None, None, None)
            if fbias:
                self.emit("add", (node.name or out) + ".bias", [tmp, self.value(fbias, node)], [out])
            return
        if b in self.consts:
            raise self.err(node, f"weight {b!r} is float ({self.consts[b].dtype}); the accelerated path takes "
                                 "only quantized weights (QDQ, QOperator or QONNX Quant) and has no float "
                                 "fallback: quantize the model first")
        if trans_b or bias:
            raise self.err(node, "Gemm of two activations is not supported")
        if a in self.dq_src and b in self.dq_src:
            aq, _as, az = self.dq_src[a]
            bq, bs, bz = self.dq_src[b]
            acc = self.fresh(out + ".acc")
            self.emit("qmatmul_act", node.name or out, [aq, az, bq, bz], [acc])
            f = self.fresh(out + ".scale")
            self.emit("mul", f, [_as, bs], [f])
            c = self.fresh(out + ".cast")
            self.emit("cast", c, [acc], [c], to="float32")
            self.emit("mul", (node.name or out) + ".dequant", [c, f], [out])
            return
        self.emit("matmul", node.name or out, [self.value(a, node), self.value(b, node)], [out])

    def _scalar(self, vname: str) -> float:
        if vname in self.consts:
            return float(np.asarray(self.consts[vname]).reshape(-1)[0])
        t = self.tensors.get(vname)
        if t is not None:
            return float(np.asarray(t.data).reshape(-1)[0])
        return float("nan")

    def op_MatMul(self, node):
        self._matmul_like(node, node.input[0], node.input[1], False, None)

    def op_Gemm(self, node):
        a = _attrs(node)
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        self._gemm_attrs(node, a, bias is not None)
        self._matmul_like(node, node.input[0], node.input[1], bool(a.get("transB", 0)), bias)

    def _gemm_attrs(self, node, a: dict, has_c: bool) -> None:
        """transA transposes the activation and alpha scales the product: neither has an exact place on
        the accelerated path (the accumulator is of the activation as given, its scale fixed); beta only
        matters when there is a C."""
        if a.get("transA", 0):
            raise self.bad_attr(node, "transA", a["transA"], "the activation is taken as [M, K]: only transA=0")
        if a.get("alpha", 1.0) != 1.0:
            raise self.bad_attr(node, "alpha", a["alpha"], "only alpha=1")
        if has_c and a.get("beta", 1.0) != 1.0:
            raise self.bad_attr(node, "beta", a["beta"], "only beta=1 with a bias C")

    def op_QLinearMatMul(self, node):
        a, as_, az, b, bs, bz, ys, yz = node.input
        if b not in self.consts or bs not in self.consts:
            raise self.err(node, f"input b {b!r} is not a constant (activation x activation QLinearMatMul "
                                 "is not supported)")
        if as_ in self.consts and np.asarray(self.consts[as_]).size > 1:
            raise self.err(node, "per-row scales of input a are not supported")
        ydt = self.consts[yz].dtype.name if yz in self.consts else "uint8"
        self.qlinear(node, node.output[0], a, self.value(as_, node), self.value(az, node), b, self.consts[b],
                     self.consts[bs], self.consts.get(bz), False, None, self.value(ys, node),
                     self.value(yz, node), ydt)

    def ms_QGemm(self, node):
        ins = list(node.input) + [""] * (9 - len(node.input))
        a, as_, az, b, bs, bz, c, ys, yz = ins[:9]
        at = _attrs(node)
        self._gemm_attrs(node, at, False)
        if b not in self.consts:
            raise self.err(node, f"input B {b!r} is not a constant")
        bias = self.const_input(node, c, "bias C") if c else None
        if ys:
            ydt = self.const_input(node, yz, "output zero point").dtype.name if yz else "uint8"
            self.qlinear(node, node.output[0], a, self.value(as_, node), self.value(az, node), b, self.consts[b],
                         self.const_input(node, bs, "B scale"), self.consts.get(bz), bool(at.get("transB", 0)), bias,
                         self.value(ys, node), self.value(yz, node), ydt)
        else:
            raise self.err(node, "QGemm with a float output is not supported")

    def op_MatMulInteger(self, node):
        ins = list(node.input) + [""] * (4 - len(node.input))
        a, b, az, bz = ins[:4]
        if b not in self.consts:
            raise self.err(node, f"input B {b!r} is not a constant (the accelerated path needs constant weights)")
        if az and az in self.consts and np.asarray(self.consts[az]).size > 1:
            raise self.err(node, "per-row zero points of input A are not supported")
        tname, zname, _ = self._weight_from(node, b, self.consts[b], np.ones(1, np.float32),
                                            self.consts.get(bz) if bz else None, False)
        adt = self.int_dtype.get(a, "uint8")
        azn = self.value(az, node) if az else self.const(self.fresh(node.output[0] + ".azero"), np.zeros((), adt))
        self.emit("qmatmul", node.name or node.output[0], [a, azn], [node.output[0]], weight=tname, w_zero=zname,
                  bias=None)

    def ms_QLinearAdd(self, node):
        a, as_, az, b, bs, bz, ys, yz = (list(node.input) + [""])[:8]
        if not (az and bz and yz):
            raise self.err(node, "zero points must be given (optional zero points are not supported)")
        self.const_input(node, yz, "output zero point")
        fa, fb, fs = (self.fresh(node.output[0] + x) for x in (".a", ".b", ".sum"))
        for src, s, z, f in ((a, as_, az, fa), (b, bs, bz, fb)):
            if src in self.consts:
                self.emit("dequantize", f, [self.const(src, self.consts[src]), self.value(s, node),
                                            self.value(z, node)], [f])
            else:
                self.emit("dequantize", f, [src, self.value(s, node), self.value(z, node)], [f])
        self.emit("add", fs, [fa, fb], [fs])
        dt = self.consts[yz].dtype.name
        self.emit("quantize", node.name or node.output[0], [fs, self.value(ys, node), self.value(yz, node)],
                  [node.output[0]], dtype=dt)
        self.int_dtype[node.output[0]] = dt

    def ms_QLinearSigmoid(self, node):
        """Dequantize -> float sigmoid -> quantize (onnxruntime uses a 256-entry table of its own
        float logistic; the two agree except where a value lies within its rounding of a tie)."""
        x, xs, xz, ys, yz = (list(node.input) + [""] * 5)[:5]
        if not (xz and yz and yz in self.consts):
            raise self.err(node, "zero points must be given as constants")
        f, g = self.fresh(node.output[0] + ".f"), self.fresh(node.output[0] + ".sig")
        self.emit("dequantize", f, [x, self.value(xs, node), self.value(xz, node)], [f])
        self.emit("sigmoid", g, [f], [g])
        dt = self.consts[yz].dtype.name
        self.emit("quantize", node.name or node.output[0], [g, self.value(ys, node), self.value(yz, node)],
                  [node.output[0]], dtype=dt)
        self.int_dtype[node.output[0]] = dt

    # ---- QONNX (Brevitas export)
    def qonnx_Quant(self, node):
        x, s, z, bw = node.input
        a = _attrs(node)
        signed, narrow = int(a.get("signed", 1)), int(a.get("narrow", 0))
        mode = a.get("rounding_mode", "ROUND")
        mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
        if bw not in self.consts:
            raise self.err(node, "the bit width must be a constant")
        bits = float(np.asarray(self.consts[bw]).reshape(-1)[0])
        if bits == 1 and signed:  # qonnx executes a signed 1-bit Quant as bipolar (x/s + z >= 0 -> +1)
            return self._bipolar(node, x, s, z)
        if bits != int(bits) or not 2 <= bits <= 8:
            raise self.err(node, f"bit width {bits} is not supported (expected an integer 2..8, or 1 signed)")
        bits = int(bits)
        if mode not in ROUNDING_MODES:
            raise self.bad_attr(node, "rounding_mode", mode, f"qonnx defines {', '.join(ROUNDING_MODES)}")
        mode = "ROUND" if mode == "HALF_EVEN" else mode
        lo = (-(1 << (bits - 1)) + narrow) if signed else 0
        hi = ((1 << (bits - 1)) - 1) if signed else (1 << bits) - 1 - narrow
        if s not in self.consts or z not in self.consts:
            raise self.err(node, "scale and zero point must be constants")
        sv, zv = np.asarray(self.consts[s], np.float32), np.asarray(self.consts[z], np.float32)
        if np.any(zv != np.rint(zv)):
            raise self.err(node, "a non-integer zero point is not supported")
        if x in self.consts:  # a weight: fold to integers now
            w = np.asarray(self.consts[x], np.float32)
            try:
                np.broadcast_shapes(w.shape, sv.shape, zv.shape)
            except ValueError:
                raise self.err(node, f"scale {list(sv.shape)} / zero point {list(zv.shape)} do not broadcast to "
                                     f"weight {x!r} of shape {list(w.shape)}") from None
            q = np.clip(qonnx_round((w / sv).astype(np.float32) + zv, mode), lo, hi).astype(np.int64)
            axis = None
            if sv.size > 1:
                nz = [i for i, d in enumerate(sv.shape) if d > 1]
                axis = nz[0] if len(nz) == 1 and sv.ndim == w.ndim else None
                if axis is None:
                    raise self.err(node, f"scale shape {list(sv.shape)} is not per tensor or per channel")
            self.qconst[node.output[0]] = (q.astype(np.int16), sv.reshape(-1), zv.reshape(-1).astype(np.int64), axis)
            return
        if sv.size != 1 or zv.size != 1:
            raise self.err(node, "per-channel activation quantization is not supported (expected one scale)")
        if hi - lo > 255:
            raise self.err(node, "activation range exceeds 8 bits")
        dt = "int8" if signed else "uint8"
        qv = self.fresh(node.output[0] + ".q")
        sname, zname = self.value(s, node), self.const(self.fresh(z + ".int"), zv.reshape(()).astype(dt))
        self.emit("qonnx_quant", qv, [self.value(x, node), sname, zname], [qv], lo=lo, hi=hi, dtype=dt,
                  rounding=mode)
        self.int_dtype[qv] = dt
        self.emit("dequantize", node.name or node.output[0], [qv, sname, zname], [node.output[0]])
        self.dq_src[node.output[0]] = (qv, sname, zname)

    def qonnx_BipolarQuant(self, node):
        self._bipolar(node, *node.input, None)

    def _bipolar(self, node, x: str, s: str, z: str | None):
        """qonnx's binary_quant: q = +1 where x >= 0 else -1 (NaN -> -1), y = q * s. A 1-bit signed Quant
        is the same op when its zero point is 0 and its scale positive (x / s >= 0 iff x >= 0)."""
        if s not in self.consts or (z is not None and z not in self.consts):
            raise self.err(node, "the scale (and zero point) must be constants")
        sv = np.asarray(self.consts[s], np.float32)
        if z is not None and (np.any(np.asarray(self.consts[z]) != 0) or np.any(sv <= 0)):
            raise self.err(node, "a 1-bit Quant needs zero point 0 and a positive scale (bipolar)")
        if x in self.consts:
            q = np.where(np.asarray(self.consts[x]) >= 0, 1, -1).astype(np.int16)
            if sv.size > 1:
                raise self.err(node, "bipolar weights need one scale")
            self.qconst[node.output[0]] = (q, sv.reshape(-1), np.zeros(1, np.int64), None)
            return
        # activations: int8 +-1 into the TLMM path (exact: the engine multiplies int8 by the weights)
        if sv.size != 1:
            raise self.err(node, "per-channel activation quantization is not supported (expected one scale)")
        qv = self.fresh(node.output[0] + ".q")
        self.emit("bipolar_quant", qv, [self.value(x, node)], [qv])
        self.int_dtype[qv] = "int8"
        sname = self.value(s, node)
        zname = self.const(self.fresh(node.output[0] + ".zero"), np.zeros((), np.int8))
        self.emit("dequantize", node.name or node.output[0], [qv, sname, zname], [node.output[0]])
        self.dq_src[node.output[0]] = (qv, sname, zname)

    # ---- float and shape ops
    def _simple(self, node, op: str, **attrs):
        self.emit(op, node.name or node.output[0], [self.value(v, node) for v in node.input], [node.output[0]],
                  **attrs)

    def __getattr__(self, item):
        if item.startswith("op_") and item[3:] in SIMPLE:
            return lambda node: self._simple(node, SIMPLE[item[3:]])
        raise AttributeError(item)

    def op_Cast(self, node):
        # saturate only applies to float8 targets, which are refused here
        to = DTYPES.get(_attrs(node)["to"])
        if to not in ("float32", "int32", "uint8", "int8"):
            raise self.err(node, f"cast to {to} is not supported")
        self._simple(node, "cast", to=to)

    def op_Gelu(self, node):
        approx = _attrs(node).get("approximate", "none")
        approx = approx.decode() if isinstance(approx, bytes) else approx
        if approx not in ("none", "tanh"):
            raise self.bad_attr(node, "approximate", approx, "ONNX Gelu defines 'none' and 'tanh'")
        self._simple(node, "gelu", approximate=approx)

    def op_Softmax(self, node):
        if self.opset >= 13:
            self._simple(node, "softmax", axis=int(_attrs(node).get("axis", -1)))
            return
        # Softmax-1/11 normalizes over all dims from axis on (the input coerced to 2-D), default axis 1:
        # the same as Softmax-13 only when that is the last dim
        axis, rank = int(_attrs(node).get("axis", 1)), self.rank(node.input[0])
        if rank is None or axis % rank != rank - 1:
            raise self.bad_attr(node, "axis", axis, f"opset {self.opset} Softmax over the flattened dims from "
                                f"axis on is supported only when that is the last dim (input rank {rank})")
        self._simple(node, "softmax", axis=-1)

    def _stash(self, node, a: dict) -> None:
        # the host computes in float64 and rounds once (docs/numerics.md): float32 or float64 stash
        if a.get("stash_type", 1) not in (1, 11):
            raise self.bad_attr(node, "stash_type", a["stash_type"], "only float32 (1) or float64 (11)")

    def op_LayerNormalization(self, node):
        a = _attrs(node)
        self._stash(node, a)
        if len(node.output) > 1 and any(node.output[1:]):
            raise self.err(node, "the optional Mean/InvStdDev outputs are not supported")
        x, g = node.input[0], node.input[1]
        b = node.input[2] if len(node.input) > 2 and node.input[2] else None
        bn = self.value(b, node) if b else self.const(self.fresh(node.output[0] + ".bias"),
                                                      np.zeros_like(np.asarray(self.consts[g], np.float32)))
        self.emit("layernorm", node.name or node.output[0], [self.value(x, node), self.value(g, node), bn],
                  [node.output[0]], axis=int(a.get("axis", -1)), eps=float(a.get("epsilon", 1e-5)))

    def op_RMSNormalization(self, node):
        a = _attrs(node)
        self._stash(node, a)
        self.emit("rmsnorm_op", node.name or node.output[0], [self.value(node.input[0], node),
                                                               self.value(node.input[1], node)],
                  [node.output[0]], axis=int(a.get("axis", -1)), eps=float(a.get("epsilon", 1e-5)))

    def op_ReduceMean(self, node):
        a = _attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(v) for v in np.asarray(self.consts[node.input[1]]).reshape(-1)]
        if not axes:  # no axes: all of them, or (noop_with_empty_axes=1, ReduceMean-18) none
            if a.get("noop_with_empty_axes", 0):
                self._simple(node, "identity")
                return
            axes = None
        self.emit("reduce_mean", node.name or node.output[0], [self.value(node.input[0], node)], [node.output[0]],
                  axes=None if axes is None else [int(v) for v in axes], keepdims=int(a.get("keepdims", 1)))

    def op_Reshape(self, node):
        if node.input[1] not in self.consts:
            raise self.err(node, "the target shape must be a constant")
        shape = [int(v) for v in np.asarray(self.consts[node.input[1]]).reshape(-1)]
        if sum(d == -1 for d in shape) > 1 or any(d < -1 for d in shape):
            raise self.err(node, f"target shape {shape}: at most one -1 and no other negative value")
        # allowzero only decides what a 0 in the shape means (ONNX Reshape-14): the input's dim at that
        # index (0) or a real 0 (1); a shape without zeros is the same reshape either way
        allowzero = int(_attrs(node).get("allowzero", 0)) if 0 in shape else 0
        if allowzero and -1 in shape:
            raise self.err(node, f"attribute 'allowzero'=1 with target shape {shape}: a real 0 and a -1 "
                                 "together are invalid (ONNX Reshape)")
        self._movement(node, "reshape", shape=shape, allowzero=allowzero)

    def op_Transpose(self, node):
        perm = _attrs(node).get("perm")
        self._movement(node, "transpose", perm=None if perm is None else [int(p) for p in perm])

    def op_Flatten(self, node):
        self._movement(node, "flatten", axis=int(_attrs(node).get("axis", 1)))

    def _movement(self, node, op: str, **attrs) -> None:
        """A data-movement op. On a per-tensor dequantized activation it moves the integers and
        dequantizes after (the same values: dequantization is elementwise), so the result still feeds
        the accelerated path (CNV's flatten between the convolutions and the first Gemm)."""
        x, out = node.input[0], node.output[0]
        if x in self.dq_src:
            q, s, z = self.dq_src[x]
            qv = self.fresh(out + ".q")
            self.emit(op, qv, [q], [qv], **attrs)
            self.int_dtype[qv] = self.int_dtype.get(q, "int8")
            self.emit("dequantize", node.name or out, [qv, s, z], [out])
            self.dq_src[out] = (qv, s, z)
            return
        self.emit(op, node.name or out, [self.value(x, node)], [out], **attrs)

    # ---- CNN ops (FINN's CNV)
    def op_BatchNormalization(self, node):
        """Inference BatchNormalization: the per-channel affine y = x * a + b with a, b computed here in
        onnxruntime's float32 order (edgestream.graph_numerics.batchnorm_affine), then two float32 ops."""
        a = _attrs(node)
        if a.get("training_mode", 0):
            raise self.bad_attr(node, "training_mode", a["training_mode"], "inference only")
        if not a.get("spatial", 1):
            raise self.bad_attr(node, "spatial", a["spatial"], "statistics per channel only (spatial=1)")
        if any(node.output[1:]):
            raise self.err(node, "the running mean/var outputs (training) are not supported")
        x = node.input[0]
        names = ("scale", "B", "input_mean", "input_var")
        params = [self.const_input(node, v, what) for v, what in zip(node.input[1:5], names, strict=True)]
        rank = self.rank(x)
        if rank is None or rank < 2:
            raise self.err(node, f"input {x!r} has unknown rank (run shape inference, e.g. qonnx's cleanup_model, "
                                 "so the channel axis is known)" if rank is None else f"input {x!r} is {rank}-d")
        mul, add = batchnorm_affine(*params, float(a.get("epsilon", 1e-5)))
        shape = [mul.size] + [1] * (rank - 2)
        out = node.output[0]
        mname = self.const(self.fresh(out + ".bn_mul"), mul.reshape(shape))
        aname = self.const(self.fresh(out + ".bn_add"), add.reshape(shape))
        t = self.fresh(out + ".bn")
        self.emit("mul", t, [self.value(x, node), mname], [t])
        self.emit("add", node.name or out, [t, aname], [out])

    def _window_attrs(self, node, a: dict, kernel: list[int]) -> dict:
        nd = len(kernel)
        auto = a.get("auto_pad", "NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
            raise self.bad_attr(node, "auto_pad", auto, "ONNX defines NOTSET, VALID, SAME_UPPER, SAME_LOWER")
        out = {"kernel": [int(k) for k in kernel], "strides": [int(v) for v in a.get("strides", [1] * nd)],
               "dilations": [int(v) for v in a.get("dilations", [1] * nd)],
               "pads": [int(v) for v in a.get("pads", [0] * 2 * nd)], "auto_pad": auto}
        for k, n in (("strides", nd), ("dilations", nd), ("pads", 2 * nd)):
            if len(out[k]) != n or min(out[k]) < (0 if k == "pads" else 1):
                raise self.bad_attr(node, k, out[k], f"{n} values, each >= {0 if k == 'pads' else 1}")
        return out

    def op_Conv(self, node):
        """Conv as im2col + one accelerated matmul: the integer activation is unfolded into columns
        (padded with its zero point), the weight [M, C, kh, kw] is the matrix [M, C*kh*kw], and the
        accumulator [N, OH, OW, M] is exact as for any qmatmul; then dequantized and put back to NCHW."""
        x, w = node.input[0], node.input[1]
        b = node.input[2] if len(node.input) > 2 and node.input[2] else None
        a = _attrs(node)
        if w not in self.qconst:
            if w in self.consts:
                raise self.err(node, f"weight {w!r} is float ({self.consts[w].dtype}); the accelerated path takes "
                                     "only quantized weights (QDQ, QOperator or QONNX Quant) and has no float "
                                     "fallback: quantize the model first")
            raise self.err(node, f"weight {w!r} is not a constant (the accelerated path needs constant weights)")
        wq, ws, wz, axis = self.qconst[w]
        if wq.ndim != 4:
            raise self.err(node, f"weight {w!r} has shape {list(wq.shape)}: only 2-D convolutions are supported")
        if int(a.get("group", 1)) != 1:
            raise self.bad_attr(node, "group", a["group"], "only group=1 (one matmul over all input channels)")
        if "kernel_shape" in a and [int(k) for k in a["kernel_shape"]] != list(wq.shape[2:]):
            raise self.bad_attr(node, "kernel_shape", a["kernel_shape"], f"weight {w!r} is {list(wq.shape)}")
        if axis is not None and axis % 4 != 0:
            raise self.err(node, f"weight {w!r} is quantized along axis {axis}; expected per output channel "
                                 "(axis 0) or per tensor")
        win = self._window_attrs(node, a, list(wq.shape[2:]))
        xq, xs, xz = self.act_q(node, x)
        out = node.output[0]
        cols = self.fresh(out + ".cols")
        self.emit("im2col", cols, [xq, xz], [cols], **win)
        self.int_dtype[cols] = self.int_dtype.get(xq, "int8")
        m = wq.shape[0]
        nhwc = self.fresh(out + ".nhwc")
        self.qlinear(node, nhwc, cols, xs, xz, w, wq.reshape(m, -1), ws, wz, True, None, None, None, None)
        tgt = self.fresh(out + ".nchw") if b else out
        self.emit("transpose", tgt if b else (node.name or out) + ".nchw", [nhwc], [tgt], perm=[0, 3, 1, 2])
        if b:
            bv = self._dequant_const(*self.qconst[b]) if b in self.qconst else self.const_input(node, b, "bias B")
            bname = self.const(self.fresh(out + ".bias"), np.asarray(bv, np.float32).reshape(m, 1, 1))
            self.emit("add", (node.name or out) + ".bias", [tgt, bname], [out])

    def op_MaxPool(self, node):
        """On a dequantized activation with a positive scale the integers are pooled and dequantized after:
        dequantization is monotone there, so the maxima are the same values."""
        a = _attrs(node)
        if len(node.output) > 1 and node.output[1]:
            raise self.err(node, "the Indices output is not supported")
        kernel = [int(k) for k in a["kernel_shape"]]
        if len(kernel) != 2:
            raise self.bad_attr(node, "kernel_shape", kernel, "only 2-D pooling")
        win = self._window_attrs(node, a, kernel)
        win["ceil_mode"] = int(a.get("ceil_mode", 0))
        x = node.input[0]
        if x in self.dq_src and self._scalar(self.dq_src[x][1]) > 0:
            self._movement(node, "maxpool", **win)
            return
        self.emit("maxpool", node.name or node.output[0], [self.value(x, node)], [node.output[0]], **win)


def _one_line(msg: str, n: int = 400) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def _check_model(onnx, nh, model, src: Path) -> None:
    """What a valid ONNX file is, before anything reads it: onnx.checker's verdict (op schemas of the
    ai.onnx domain: input/output counts, attribute types, required attributes; every value defined before
    use; opset imports for every domain), then every constant's data matching its dims and type (the
    checker does not look at tensor bytes)."""
    try:
        # by path: a model with external data or over 2 GB cannot be checked as one in-memory proto
        onnx.checker.check_model(str(src))
    except Exception as e:  # noqa: BLE001 -- ValidationError, or the C++ side's own errors
        raise InputError(f"{src}: not a valid ONNX model (onnx.checker: {_one_line(str(e))})") from None
    g = model.graph
    names = [(f"node {i} op_type", n.op_type) for i, n in enumerate(g.node)]
    names += [(f"node {i} domain/name/inputs/outputs", v) for i, n in enumerate(g.node)
              for v in (n.domain, n.name, *n.input, *n.output)]
    names += [("initializer name", t.name) for t in g.initializer]
    names += [("graph input/output name", v.name) for v in (*g.input, *g.output)]
    for what, v in names:
        if not isinstance(v, str):  # protobuf hands back bytes for a string field that is not UTF-8
            raise InputError(f"{src}: {what} {v!r} is not UTF-8 text")
    # strict: an inference error (e.g. MatMul dimensions that do not match) is the file's error; the
    # weights themselves are not needed, only their dims
    light = model if model.ByteSize() < (1 << 31) - (1 << 20) else onnx.load(str(src), load_external_data=False)
    try:
        onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=True)
    except Exception as e:  # noqa: BLE001 -- InferenceError, and the C++ side's own errors
        raise InputError(f"{src}: not a valid ONNX model (shape inference: {_one_line(str(e))})") from None
    consts = [(f"initializer {t.name!r}", t) for t in g.initializer]
    consts += [(f"node {n.name or n.output[0]!r} ({n.op_type}) attribute {a.name!r}", a.t)
               for n in model.graph.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
    for what, t in consts:
        try:
            nh.to_array(t)
        except Exception as e:  # noqa: BLE001 -- numpy and onnx raise ValueError, TypeError, KeyError...
            raise InputError(f"{src}: {what}: data does not match dims {list(t.dims)} and data_type "
                             f"{t.data_type} ({_one_line(str(e), 160)})") from None


def load_onnx(src: str | Path):
    """Returns (IR graph, tokenizer path or None)."""
    onnx, nh = _import_onnx()
    src = Path(src)
    if not src.is_file():
        raise InputError(f"{src}: no such file")
    try:
        model = onnx.load(str(src))
    except Exception as e:  # noqa: BLE001 -- protobuf raises several types for a corrupt file
        raise InputError(f"{src}: not a readable ONNX model ({type(e).__name__}: {_one_line(str(e))})") from None
    if not model.graph.node:
        raise InputError(f"{src}: the ONNX graph has no nodes")
    _check_model(onnx, nh, model, src)
    from edgestream.compiler.frontends import onnx_patterns

    lm = onnx_patterns.match_decoder(model, src)
    if lm is not None:
        return lm
    from edgestream.compiler.frontends.onnx_fold import fold_thresholds

    try:
        return verify(fold_thresholds(_Builder(model, src).build())), None
    except CompileError as e:
        raise InputError(f"{src}: {e}") from None
