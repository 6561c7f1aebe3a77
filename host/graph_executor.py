"""Batch executor of general (non-LM) graphs: the program of an ONNX-compiled artifact, op by op.

The accelerated layers (`qmatmul`) run through the kernel interface (kernel.matmul(q int8 [T, K],
prepared) -> int32 [T, N], exact; TLMM in hardware); zero points are exact integer corrections around
it. Everything else is host work with the semantics of docs/numerics.md ("General graphs").

Python API:
    sess = edgestream.host.graph_executor.load_graph("model.esa")     # or edgestream.load(...)
    outputs = sess.run({"x": x})                                      # dict name -> numpy array
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgestream.artifact import Artifact, read_artifact
from edgestream.errors import InputError
from edgestream.graph_numerics import im2col, maxpool2d, qonnx_round
from edgestream.host.kernels import Kernel, LinearWeights, get_kernel
from edgestream.ir import Node

F32 = np.float32
INT_RANGE = {"uint8": (0, 255), "int8": (-128, 127), "int32": (-(2**31), 2**31 - 1)}
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _r32(a) -> np.ndarray:
    """One rounding to float32."""
    return np.asarray(a, dtype=np.float64).astype(F32)


def quantize_linear(x: np.ndarray, s, z, dtype: str) -> np.ndarray:
    """ONNX QuantizeLinear: clamp(rint(float32(x / s)) + z, qmin, qmax)."""
    lo, hi = INT_RANGE[dtype]
    v = np.rint((np.asarray(x, F32) / F32(s)).astype(F32)).astype(np.int64) + np.int64(z)
    return np.clip(v, lo, hi).astype(dtype)


def dequantize_linear(q: np.ndarray, s, z) -> np.ndarray:
    """ONNX DequantizeLinear: float32(q - z) * s."""
    return ((np.asarray(q, np.int64) - np.asarray(z, np.int64)).astype(F32) * np.asarray(s, F32)).astype(F32)


def dynamic_quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX DynamicQuantizeLinear (uint8), in float32 as onnxruntime computes it:
    lo = min(min x, 0); hi = max(max x, 0); s = (hi - lo) / 255 (s = 1 when hi == lo);
    z = rint(clamp(0 - lo / s, 0, 255)); q = QuantizeLinear(x, s, z)."""
    x = np.asarray(x, F32)
    lo = F32(min(float(x.min()) if x.size else 0.0, 0.0))
    hi = F32(max(float(x.max()) if x.size else 0.0, 0.0))
    s = F32(1.0) if hi == lo else F32((hi - lo) / F32(255.0))
    z = np.rint(np.clip(F32(F32(0.0) - F32(lo / s)), F32(0), F32(255)))
    q = quantize_linear(x, s, int(z), "uint8")
    return q, np.asarray(s, F32), np.asarray(int(z), np.uint8)


def qmatmul(kernel: Kernel, prepared, colsum: np.ndarray, wzero: np.ndarray | None, bias: np.ndarray | None,
            x: np.ndarray, xz) -> np.ndarray:
    """acc[t, n] = sum_k (x[t,k] - xz) * (w[n,k] - wz[n]) (+ bias[n]), exact, through the int8 kernel:
    a = x - off (off = 128 for uint8 x, else 0) is int8, c = off - xz, and
    acc = kernel(a, w) + c * colsum(w)[n] - wz[n] * rowsum(a)[t] - K * c * wz[n]."""
    shape = x.shape
    xi = np.asarray(x).reshape(-1, shape[-1])
    off = 128 if x.dtype == np.uint8 else 0
    a = (xi.astype(np.int16) - off).astype(np.int8)
    c = np.int64(off) - np.int64(np.asarray(xz).reshape(-1)[0])
    acc = kernel.matmul(a, prepared).astype(np.int64) + c * colsum[None, :]
    if wzero is not None:
        k = xi.shape[1]
        acc -= wzero[None, :] * (a.astype(np.int64).sum(axis=1)[:, None] + k * c)
    if bias is not None:
        acc += bias[None, :]
    return acc.astype(np.int32).reshape(*shape[:-1], -1)


class GraphExecutor:
    def __init__(self, artifact: Artifact, kernel: Kernel | None = None):
        if artifact.config.arch != "graph":
            raise InputError(f"{artifact.path}: a decoder-LM artifact; use edgestream.load(...).generate")
        self.artifact, self.graph = artifact, artifact.graph
        self.kernel = kernel or get_kernel()
        t = self.graph.tensors
        self.linear: dict[str, tuple] = {}
        for n in self.graph.nodes:
            if n.op == "qmatmul":
                w = t[n.attrs["weight"]]
                lw = LinearWeights(w.name, "ternary" if w.encoding == "ternary" else "int", w.bits,
                                   np.ascontiguousarray(w.data))
                wz = n.attrs.get("w_zero")
                b = n.attrs.get("bias")
                self.linear[n.name] = (self.kernel.prepare(lw), w.data.astype(np.int64).sum(axis=1),
                                       None if not wz else t[wz].data.astype(np.int64),
                                       None if not b else t[b].data.astype(np.int64))

    @property
    def kernel_name(self) -> str:
        return self.kernel.name

    def check_inputs(self, inputs: dict) -> dict[str, np.ndarray]:
        spec = self.graph.meta.get("inputs", {})
        missing = [k for k in self.graph.inputs if k not in inputs]
        if missing:
            raise InputError(f"missing input(s) {missing} (the model takes {list(self.graph.inputs)})")
        extra = [k for k in inputs if k not in self.graph.inputs]
        if extra:
            raise InputError(f"unknown input(s) {extra} (the model takes {list(self.graph.inputs)})")
        out = {}
        for name in self.graph.inputs:
            a = np.asarray(inputs[name])
            sp = spec.get(name, {})
            dt, shape = sp.get("dtype", "float32"), sp.get("shape")
            if dt == "float32" and a.dtype.kind == "f":
                a = a.astype(F32)
            elif a.dtype.name != dt:
                raise InputError(f"input {name!r}: dtype {a.dtype.name}, expected {dt}")
            if shape is not None and (len(shape) != a.ndim or any(isinstance(d, int) and d > 0 and d != s
                                                                   for d, s in zip(shape, a.shape, strict=False))):
                raise InputError(f"input {name!r}: shape {list(a.shape)}, expected {shape}")
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                raise InputError(f"input {name!r} contains NaN or Inf")
            out[name] = a
        return out

    def run(self, inputs: dict) -> dict[str, np.ndarray]:
        vals: dict[str, np.ndarray] = dict(self.check_inputs(inputs))
        for n in self.graph.nodes:
            out = getattr(self, "_op_" + n.op)(n, *[vals[v] for v in n.inputs])
            for name, v in zip(n.outputs, out if isinstance(out, tuple) else (out,), strict=True):
                vals[name] = v
        return {o: vals[o] for o in self.graph.outputs}

    # ---- ops (docs/numerics.md, "General graphs")
    def _op_const(self, n: Node):
        t = self.graph.tensors[n.attrs["value"]]
        return np.asarray(t.data).astype(n.attrs.get("dtype", "float32")).reshape(n.attrs.get("shape", t.shape))

    def _op_quantize(self, n, x, s, z):
        return quantize_linear(x, s, z, n.attrs["dtype"])

    def _op_dequantize(self, n, q, s, z):
        return dequantize_linear(q, s, z)

    def _op_dynamic_quantize(self, n, x):
        return dynamic_quantize(x)

    def _op_qonnx_quant(self, n, x, s, z):
        """QONNX Quant: q = clamp(round(float32(float32(x / s) + z)), lo, hi), round by rounding_mode
        (qonnx clamps first: the same, since the bounds are integers and every mode is monotone)."""
        v = ((np.asarray(x, F32) / F32(s)).astype(F32) + F32(z)).astype(F32)
        r = qonnx_round(v, n.attrs.get("rounding", "ROUND"))
        return np.clip(r, n.attrs["lo"], n.attrs["hi"]).astype(n.attrs["dtype"])

    def _op_bipolar_quant(self, n, x):
        return np.where(np.asarray(x) >= 0, np.int8(1), np.int8(-1))

    def _op_qmatmul(self, n, x, xz):
        prepared, colsum, wz, bias = self.linear[n.name]
        return qmatmul(self.kernel, prepared, colsum, wz, bias, x, xz)

    def _op_qmatmul_act(self, n, a, az, b, bz):
        r = (np.asarray(a, np.int64) - np.int64(az)) @ (np.asarray(b, np.int64) - np.int64(bz))
        return r.astype(np.int32)

    def _w_scale(self, n):
        return self.graph.tensors[n.attrs["w_scale"]].data.astype(F32)

    def _op_requant(self, n, acc, sa, sy, zy):
        """QLinearMatMul's requantization: m = float32(float32(sa * sw) / sy);
        y = clamp(rint(float32(acc) * m) + zy)."""
        m = ((F32(sa) * self._w_scale(n)).astype(F32) / F32(sy)).astype(F32)
        lo, hi = INT_RANGE[n.attrs["dtype"]]
        v = np.rint((acc.astype(F32) * m).astype(F32)).astype(np.int64) + np.int64(zy)
        return np.clip(v, lo, hi).astype(n.attrs["dtype"])

    def _op_dequant_acc(self, n, acc, sa):
        """y = float32(acc) * float32(sa * sw)."""
        f = (F32(sa) * self._w_scale(n)).astype(F32)
        return (acc.astype(F32) * f).astype(F32)

    def _op_threshold(self, n, acc):
        """A folded epilogue (compiler/frontends/onnx_fold.py): q = base + step * #{j : acc >= T[c, j]}
        per channel c (the last axis), or #{j : acc <= T[c, j]} where the channel's chain decreases."""
        t = self.graph.tensors
        thr = t[n.attrs["thresholds"]].data.astype(np.int64)
        inc = t[n.attrs["direction"]].data.reshape(-1, 1) > 0
        a = np.asarray(acc, np.int64)[..., None]
        c = np.where(inc, a >= thr, a <= thr).sum(axis=-1)
        return (n.attrs["base"] + n.attrs["step"] * c).astype(n.attrs["dtype"])

    def _op_cast(self, n, x):
        return np.asarray(x).astype(n.attrs["to"])

    def _op_add(self, n, a, b):
        return np.add(a, b)

    def _op_sub(self, n, a, b):
        return np.subtract(a, b)

    def _op_mul(self, n, a, b):
        return np.multiply(a, b)

    def _op_div(self, n, a, b):
        return np.divide(a, b).astype(np.result_type(a, b))

    def _op_pow(self, n, a, b):
        b = np.asarray(b)
        if b.size == 1 and float(b.reshape(-1)[0]) == 2.0:
            return (a * a).astype(a.dtype)
        return _r32(np.power(np.asarray(a, np.float64), np.asarray(b, np.float64)))

    def _op_matmul(self, n, a, b):
        return _r32(np.matmul(np.asarray(a, np.float64), np.asarray(b, np.float64)))

    def _op_relu(self, n, x):
        return np.maximum(x, np.zeros((), x.dtype))

    def _op_sigmoid(self, n, x):
        return _r32(1.0 / (1.0 + np.exp(-np.asarray(x, np.float64))))

    def _op_tanh(self, n, x):
        return _r32(np.tanh(np.asarray(x, np.float64)))

    def _op_erf(self, n, x):
        return _r32(_erf(np.asarray(x, np.float64)))

    def _op_gelu(self, n, x):
        d = np.asarray(x, np.float64)
        if n.attrs.get("approximate", "none") == "tanh":
            return _r32(0.5 * d * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (d + 0.044715 * d**3))))
        return _r32(0.5 * d * (1.0 + _erf(d / math.sqrt(2.0))))

    def _op_sqrt(self, n, x):
        return np.sqrt(x)

    def _op_reciprocal(self, n, x):
        return (F32(1) / x).astype(x.dtype)

    def _op_neg(self, n, x):
        return -x

    def _op_softmax(self, n, x):
        d = np.asarray(x, np.float64)
        e = np.exp(d - d.max(axis=n.attrs["axis"], keepdims=True))
        return _r32(e / e.sum(axis=n.attrs["axis"], keepdims=True))

    def _op_layernorm(self, n, x, g, b):
        axes = tuple(range(n.attrs["axis"] % x.ndim, x.ndim))
        d = np.asarray(x, np.float64)
        mu = d.mean(axis=axes, keepdims=True)
        var = ((d - mu) ** 2).mean(axis=axes, keepdims=True)
        return _r32((d - mu) / np.sqrt(var + n.attrs["eps"]) * np.asarray(g, np.float64) + np.asarray(b, np.float64))

    def _op_rmsnorm_op(self, n, x, g):
        axes = tuple(range(n.attrs["axis"] % x.ndim, x.ndim))
        d = np.asarray(x, np.float64)
        return _r32(d / np.sqrt((d * d).mean(axis=axes, keepdims=True) + n.attrs["eps"]) * np.asarray(g, np.float64))

    def _op_reduce_mean(self, n, x):
        axes = None if n.attrs["axes"] is None else tuple(n.attrs["axes"])
        return _r32(np.asarray(x, np.float64).mean(axis=axes, keepdims=bool(n.attrs["keepdims"])))

    def _op_reshape(self, n, x):
        shape = n.attrs["shape"]
        if not n.attrs.get("allowzero", 0):  # a 0 copies the input's dim at that index
            if any(d == 0 and i >= x.ndim for i, d in enumerate(shape)):
                raise InputError(f"node {n.name}: target shape {shape} copies dim(s) the {x.ndim}-d input "
                                 "does not have")
            shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
        try:
            return x.reshape(shape)
        except ValueError:
            raise InputError(f"node {n.name}: cannot reshape {list(x.shape)} to {n.attrs['shape']}") from None

    def _win(self, n, x, what: str):
        if x.ndim != 4:
            raise InputError(f"node {n.name}: {what} takes a 4-d [N, C, H, W] input, got shape {list(x.shape)}")
        return n.attrs["kernel"], n.attrs["strides"], n.attrs["dilations"], n.attrs["pads"], n.attrs["auto_pad"]

    def _op_im2col(self, n, x, fill):
        try:
            return im2col(x, np.asarray(fill).reshape(()), *self._win(n, x, "Conv"))
        except ValueError as e:
            raise InputError(f"node {n.name}: input shape {list(x.shape)}: {e}") from None

    def _op_maxpool(self, n, x):
        try:
            return maxpool2d(x, *self._win(n, x, "MaxPool"), n.attrs.get("ceil_mode", 0))
        except ValueError as e:
            raise InputError(f"node {n.name}: input shape {list(x.shape)}: {e}") from None

    def _op_transpose(self, n, x):
        return np.transpose(x, n.attrs.get("perm"))

    def _op_flatten(self, n, x):
        ax = n.attrs["axis"] % (x.ndim + 1) if x.ndim else 0
        return x.reshape(int(np.prod(x.shape[:ax], dtype=np.int64)), -1)

    def _op_identity(self, n, x):
        return x


class GraphSession:
    """A loaded general-graph artifact: `run(inputs) -> outputs` (batch inference). device "cpu": the
    CPU kernels; "sim" / "pynq": the quantized matmuls on the accelerator (host/graph_accel.py), the
    rest on the host, outputs bit-identical to "cpu"."""

    def __init__(self, path: str | Path, device: str = "cpu", kernel: str | None = None,
                 device_options: dict | None = None):
        if device not in ("cpu", "sim", "pynq", "auto"):
            raise InputError(f"device {device!r} is not available for graph artifacts (expected cpu, sim or pynq)")
        self.device_note = ""
        if device == "auto":
            from edgestream.host.devices import board_present

            device = "pynq" if board_present() else "cpu"
            self.device_note = f"--device auto picked {device}" + ("" if device == "pynq" else " (no PYNQ board found)")
        self.device = device
        self.artifact = read_artifact(path)
        self.accel_device = None
        if device in ("sim", "pynq"):
            from edgestream.host.driver import open_accel
            from edgestream.host.graph_accel import AccelKernel

            drv, self.accel_device = open_accel(device, **(device_options or {}))
            try:
                self.executor = GraphExecutor(self.artifact, AccelKernel(drv, device))
            except BaseException:
                self.close()
                raise
        else:
            self.executor = GraphExecutor(self.artifact, get_kernel(kernel))
        self.inputs = dict(self.artifact.graph.meta.get("inputs", {}))
        self.outputs = dict(self.artifact.graph.meta.get("outputs", {}))

    @property
    def kernel_name(self) -> str:
        return self.executor.kernel_name

    def run(self, inputs: dict) -> dict[str, np.ndarray]:
        return self.executor.run(inputs)

    def close(self) -> None:
        if self.accel_device is not None:
            self.accel_device.close()
            self.accel_device = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_graph(path: str | Path, device: str = "cpu", kernel: str | None = None,
               device_options: dict | None = None) -> GraphSession:
    return GraphSession(path, device=device, kernel=kernel, device_options=device_options)


def run(path: str | Path, inputs: dict, device: str = "cpu", kernel: str | None = None,
        device_options: dict | None = None) -> dict[str, np.ndarray]:
    """One-shot batch inference: load the artifact and run `inputs` (dict name -> array)."""
    with load_graph(path, device, kernel, device_options) as sess:
        return sess.run(inputs)
