"""ONNX frontend, batch graph executor and export-onnx against onnxruntime running the same file.

Oracles and tolerances (docs/onnx.md):
* QOperator (QLinearMatMul, QLinearAdd, QGemm) and dynamic (DynamicQuantizeLinear + MatMulInteger) MLPs:
  every step is integer or one IEEE float32 operation, so our outputs must equal onnxruntime's bit for
  bit, with and without its graph optimizations.
* QDQ: onnxruntime with optimizations disabled executes each ONNX op as specified; our integer
  accumulator + requantization gives the same integers (a float SGEMM rounding could in principle flip a
  requantization tie; none does on these inputs, and we assert equality). onnxruntime's optimized run
  fuses QDQ groups into its own kernels and deviates from its *own* unoptimized result; we assert that
  our distance to it is no larger than that self-inconsistency.
* Float host ops (LayerNormalization, Softmax, Gelu, activation x activation MatMul) are float64
  evaluated and rounded once; onnxruntime's float32 kernels differ by a few ulp: relative L2 <= 1e-5.
* QONNX (no onnxruntime kernel for `Quant`): the oracle is onnxruntime on the file's standard QCDQ
  lowering (QuantizeLinear -> Clip -> DequantizeLinear, the lowering QONNX itself uses), built next
  to it from the same float weights.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

import edgestream  # noqa: E402
from edgestream.errors import InputError  # noqa: E402
from edgestream.host.graph_executor import load_graph  # noqa: E402
from edgestream.onnx_export import export_onnx  # noqa: E402

N = h.make_node
FLOAT_TOL = 1e-5


def _model(nodes, inits, x_shape, y_shape, opset=20, domains=()):
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TP.FLOAT, x_shape)],
                     [h.make_tensor_value_info("y", TP.FLOAT, y_shape)],
                     [nh.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)] + [h.make_opsetid(d, 1) for d in domains])
    m.ir_version = 10
    return m


def _ort_integer_matmul_exact() -> bool:
    """Whether this onnxruntime build computes a u8 x s8 MatMulInteger exactly on this CPU. On x86
    without VNNI (AVX2-only EPYC, for one) its kernel adds pairs of products in saturating int16
    (vpmaddubsw), so 255*127 + 255*127 comes out as 32767."""
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])
    w = helper.make_tensor("w", TensorProto.INT8, [2, 1], [127, 127])
    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "probe", [a], [y], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return int(sess.run(None, {"a": np.array([[255, 255]], np.uint8)})[0][0, 0]) == 2 * 255 * 127


ORT_PLAIN_EXACT = _ort_integer_matmul_exact()


def ort_run(path, x, optimize=True):
    if not optimize and not ORT_PLAIN_EXACT:
        # the unfused graph is the literal reference; where onnxruntime's plain integer kernels are not
        # exact (probe above), the ONNX project's own reference implementation runs it instead, and a
        # graph with contrib ops it lacks (QLinearAdd, ...) runs in onnxruntime's optimized session,
        # whose integer kernels x64quantprecision makes exact
        if all(n.domain in ("", "ai.onnx") for n in onnx.load(str(path)).graph.node):
            from onnx.reference import ReferenceEvaluator

            return ReferenceEvaluator(str(path)).run(None, {"x": x})[0]
        optimize = True
    so = ort.SessionOptions()
    # x86 without VNNI (AVX2-only EPYC, for one): onnxruntime's u8s8 integer kernels add pairs of
    # products in saturating int16 (vpmaddubsw), so they are not the exact integer matmul; this option
    # makes them use the exact (slower) u8u8 path. No effect where VNNI exists.
    so.add_session_config_entry("session.x64quantprecision", "1")
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def ours(path, tmp_path, x):
    sess = load_graph(edgestream.compile_model(path, tmp_path / (path.stem + ".esa")), kernel="numpy")
    return sess.artifact, sess.run({"x": x})["y"]


def rel(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


class _Calib:
    def __init__(self, shape, seed):
        rng = np.random.default_rng(seed)
        self.it = iter([{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(4)])

    def get_next(self):
        return next(self.it, None)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("onnx")
    w = {"W1": rng.standard_normal((16, 32)) * 0.3, "b1": rng.standard_normal(32) * 0.1,
         "W2": rng.standard_normal((32, 24)) * 0.3, "b2": rng.standard_normal(24) * 0.1,
         "W3": rng.standard_normal((8, 24)) * 0.3, "b3": rng.standard_normal(8) * 0.1}
    w = {k: v.astype(np.float32) for k, v in w.items()}
    nodes = [N("MatMul", ["x", "W1"], ["h0"]), N("Add", ["h0", "b1"], ["h1"]), N("Relu", ["h1"], ["h2"]),
             N("MatMul", ["h2", "W2"], ["h3"]), N("Add", ["h3", "b2"], ["h4"]), N("Sigmoid", ["h4"], ["h5"]),
             N("Gemm", ["h5", "W3", "b3"], ["y"], transB=1)]
    p = d / "mlp.onnx"
    onnx.save(_model(nodes, w, ["N", 16], ["N", 8]), p)
    return p


def _quantize(src, kind, out):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    shape = [4] + [d.dim_value or 2 for d in onnx.load(src).graph.input[0].type.tensor_type.shape.dim][1:]
    if kind == "dynamic-s8":
        quantize_dynamic(src, out, weight_type=QuantType.QInt8)
    elif kind == "dynamic-u8":
        quantize_dynamic(src, out, weight_type=QuantType.QUInt8, per_channel=True)
    else:
        fmt, pc, act, wt = {
            "qdq-perchannel-u8s8": (QuantFormat.QDQ, True, QuantType.QUInt8, QuantType.QInt8),
            "qdq-pertensor-s8s8": (QuantFormat.QDQ, False, QuantType.QInt8, QuantType.QInt8),
            "qdq-pertensor-u8u8": (QuantFormat.QDQ, False, QuantType.QUInt8, QuantType.QUInt8),
            "qoperator-u8s8": (QuantFormat.QOperator, False, QuantType.QUInt8, QuantType.QInt8),
            "qoperator-u8u8": (QuantFormat.QOperator, False, QuantType.QUInt8, QuantType.QUInt8),
        }[kind]
        quantize_static(src, out, _Calib(shape, 1), quant_format=fmt, per_channel=pc, activation_type=act,
                        weight_type=wt)
    return out


MLP_KINDS = ["qdq-perchannel-u8s8", "qdq-pertensor-s8s8", "qdq-pertensor-u8u8", "qoperator-u8s8",
             "qoperator-u8u8", "dynamic-s8", "dynamic-u8"]


@pytest.mark.parametrize("kind", MLP_KINDS)
def test_mlp_equals_onnxruntime(mlp, tmp_path, kind):
    q = _quantize(mlp, kind, tmp_path / f"mlp-{kind}.onnx")
    x = (np.random.default_rng(2).standard_normal((37, 16)) * 1.5).astype(np.float32)
    art, got = ours(q, tmp_path, x)
    ops = {n.op for n in art.graph.nodes}
    assert "qmatmul" in ops and "matmul" not in ops, ops  # every linear layer is on the TLMM path
    for optimize in (False, True):
        want = ort_run(q, x, optimize)
        np.testing.assert_array_equal(got, want, err_msg=f"{kind}, ORT optimize={optimize}")
    # the compiled program, exported as integer ONNX, run by onnxruntime
    exp = export_onnx(art.path, tmp_path / f"exp-{kind}.onnx")
    np.testing.assert_array_equal(got, ort_run(exp, x), err_msg=f"{kind}: export-onnx")


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    """A CNN-free pre-LN transformer block: LayerNorm, MHA (Q/K/V/O), residual, LayerNorm, GELU FFN."""
    rng = np.random.default_rng(0)
    d, heads, f, s = 32, 4, 64, 8
    hd = d // heads

    def w(*shape, sc=0.2):
        return (rng.standard_normal(shape) * sc).astype(np.float32)

    inits = dict(g1=1 + w(d, sc=0.1), b1=w(d, sc=0.1), Wq=w(d, d), Wk=w(d, d), Wv=w(d, d), Wo=w(d, d),
                 g2=1 + w(d, sc=0.1), b2=w(d, sc=0.1), W1=w(d, f), bf1=w(f, sc=0.1), W2=w(f, d), bf2=w(d, sc=0.1),
                 sh=np.array([0, s, heads, hd], np.int64), sh2=np.array([0, s, d], np.int64),
                 sc=np.array(1 / np.sqrt(hd), np.float32))
    nodes = [N("LayerNormalization", ["x", "g1", "b1"], ["xn"], axis=-1, epsilon=1e-5),
             N("MatMul", ["xn", "Wq"], ["q"]), N("MatMul", ["xn", "Wk"], ["k"]), N("MatMul", ["xn", "Wv"], ["v"]),
             N("Reshape", ["q", "sh"], ["q4"]), N("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
             N("Reshape", ["k", "sh"], ["k4"]), N("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
             N("Reshape", ["v", "sh"], ["v4"]), N("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
             N("MatMul", ["qt", "kt"], ["s0"]), N("Mul", ["s0", "sc"], ["s1"]),
             N("Softmax", ["s1"], ["p"], axis=-1), N("MatMul", ["p", "vt"], ["o4"]),
             N("Transpose", ["o4"], ["ot"], perm=[0, 2, 1, 3]), N("Reshape", ["ot", "sh2"], ["o"]),
             N("MatMul", ["o", "Wo"], ["ao"]), N("Add", ["x", "ao"], ["h1"]),
             N("LayerNormalization", ["h1", "g2", "b2"], ["hn"], axis=-1, epsilon=1e-5),
             N("MatMul", ["hn", "W1"], ["f0"]), N("Add", ["f0", "bf1"], ["f1"]), N("Gelu", ["f1"], ["f2"]),
             N("MatMul", ["f2", "W2"], ["f3"]), N("Add", ["f3", "bf2"], ["f4"]), N("Add", ["h1", "f4"], ["y"])]
    p = tmp_path_factory.mktemp("onnx") / "block.onnx"
    onnx.save(_model(nodes, inits, ["B", s, d], ["B", s, d]), p)
    return p


def test_transformer_block_static_qdq(block, tmp_path):
    q = _quantize(block, "qdq-perchannel-u8s8", tmp_path / "block-qdq.onnx")
    x = np.random.default_rng(3).standard_normal((3, 8, 32)).astype(np.float32)
    art, got = ours(q, tmp_path, x)
    assert sum(n.op == "qmatmul" for n in art.graph.nodes) == 6
    assert sum(n.op == "qmatmul_act" for n in art.graph.nodes) == 2  # QK^T and PV, both quantized
    plain = ort_run(q, x, optimize=False)
    np.testing.assert_array_equal(got, plain)
    fused = ort_run(q, x, optimize=True)
    self_gap = rel(fused, plain)  # onnxruntime's fused kernels against its own op-by-op result
    print(f"QDQ block: ORT fused vs ORT op-by-op rel {self_gap:.4f}, vs ours rel {rel(fused, got):.4f}")
    assert rel(fused, got) <= self_gap + FLOAT_TOL
    np.testing.assert_array_equal(got, ort_run(export_onnx(art.path, tmp_path / "exp.onnx"), x, optimize=False))


def test_transformer_block_dynamic(block, tmp_path):
    q = _quantize(block, "dynamic-s8", tmp_path / "block-dyn.onnx")
    x = np.random.default_rng(4).standard_normal((3, 8, 32)).astype(np.float32)
    art, got = ours(q, tmp_path, x)
    assert sum(n.op == "qmatmul" for n in art.graph.nodes) == 6
    for optimize in (False, True):
        r = rel(got, ort_run(q, x, optimize))
        print(f"dynamic block vs ORT (optimize={optimize}): rel {r:.2e}")
        assert r <= FLOAT_TOL
    assert rel(got, ort_run(export_onnx(art.path, tmp_path / "exp.onnx"), x, optimize=False)) <= FLOAT_TOL


# ---- QONNX (Brevitas export style)
QONNX = "qonnx.custom_op.general"


def _qonnx_pair(tmp_path, act_bits2=4):
    """A QONNX MLP (8-bit signed input quant, ternary weights, ReLU, 4-bit unsigned activations,
    4-bit per-channel weights, bipolar weights) and its standard QCDQ twin for onnxruntime."""
    rng = np.random.default_rng(7)
    w1 = (rng.standard_normal((16, 32)) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((32, 24)) * 0.2).astype(np.float32)
    w3 = rng.standard_normal((24, 8)).astype(np.float32)
    s1, s2 = np.float32(0.07), (np.abs(w2).max(axis=0, keepdims=True) / 7).astype(np.float32)
    s3, sx, sa = np.float32(0.05), np.float32(3.0 / 127), np.float32(2.0 / 15)
    # QONNX graph
    qi = dict(W1=w1, W2=w2, W3=w3, s1=s1, s2=s2, s3=s3, sx=sx, sa=sa, z0=np.float32(0),
              b2=np.float32(2), b4=np.float32(4), b8=np.float32(8), ba=np.float32(act_bits2))
    qn = [N("Quant", ["x", "sx", "z0", "b8"], ["xq"], domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND"),
          N("Quant", ["W1", "s1", "z0", "b2"], ["W1q"], domain=QONNX, signed=1, narrow=1, rounding_mode="ROUND"),
          N("MatMul", ["xq", "W1q"], ["h0"]), N("Relu", ["h0"], ["h1"]),
          N("Quant", ["h1", "sa", "z0", "ba"], ["h1q"], domain=QONNX, signed=0, narrow=0, rounding_mode="ROUND"),
          N("Quant", ["W2", "s2", "z0", "b4"], ["W2q"], domain=QONNX, signed=1, narrow=1, rounding_mode="ROUND"),
          N("MatMul", ["h1q", "W2q"], ["h2"]),
          N("Quant", ["h2", "sx", "z0", "b8"], ["h2q"], domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND"),
          N("BipolarQuant", ["W3", "s3"], ["W3q"], domain=QONNX), N("MatMul", ["h2q", "W3q"], ["y"])]
    qm = _model(qn, qi, ["N", 16], ["N", 8], domains=(QONNX,))
    # QCDQ twin: weights as DequantizeLinear of their integers, activations Quantize -> Clip -> Dequantize
    t1 = np.clip(np.rint(w1 / s1), -1, 1).astype(np.int8)
    t2 = np.clip(np.rint(w2 / s2), -7, 7).astype(np.int8)
    t3 = np.where(w3 >= 0, 1, -1).astype(np.int8)
    ti = dict(t1=t1, t2=t2, t3=t3, s1=s1, s2=s2.reshape(-1), s3=s3, sx=sx, sa=sa, zs=np.int8(0), zu=np.uint8(0),
              lo=np.uint8(0), hi=np.uint8(2**act_bits2 - 1))
    tn = [N("QuantizeLinear", ["x", "sx", "zs"], ["xi"]), N("DequantizeLinear", ["xi", "sx", "zs"], ["xq"]),
          N("DequantizeLinear", ["t1", "s1", "zs"], ["W1q"]), N("MatMul", ["xq", "W1q"], ["h0"]),
          N("Relu", ["h0"], ["h1"]), N("QuantizeLinear", ["h1", "sa", "zu"], ["ai"]),
          N("Clip", ["ai", "lo", "hi"], ["aic"]), N("DequantizeLinear", ["aic", "sa", "zu"], ["h1q"]),
          N("DequantizeLinear", ["t2", "s2"], ["W2q"], axis=1), N("MatMul", ["h1q", "W2q"], ["h2"]),
          N("QuantizeLinear", ["h2", "sx", "zs"], ["h2i"]), N("DequantizeLinear", ["h2i", "sx", "zs"], ["h2q"]),
          N("DequantizeLinear", ["t3", "s3", "zs"], ["W3q"]), N("MatMul", ["h2q", "W3q"], ["y"])]
    tm = _model(tn, ti, ["N", 16], ["N", 8])
    onnx.save(qm, tmp_path / "brevitas.onnx")
    onnx.save(tm, tmp_path / "brevitas-qcdq.onnx")
    return tmp_path / "brevitas.onnx", tmp_path / "brevitas-qcdq.onnx"


def test_qonnx_brevitas_ternary(tmp_path):
    q, twin = _qonnx_pair(tmp_path)
    x = np.random.default_rng(8).standard_normal((29, 16)).astype(np.float32)
    art, got = ours(q, tmp_path, x)
    enc = [art.graph.tensors[n.attrs["weight"]].encoding for n in art.graph.nodes if n.op == "qmatmul"]
    assert enc == ["ternary", "int4", "ternary"], enc  # 2-bit narrow and bipolar -> ternary TLMM
    want = ort_run(twin, x, optimize=False)
    # ORT's float MatMul of dequantized values vs our exact integer accumulator: the output layer is
    # float (no requantization after it), so the gap is float32 summation rounding only
    print(f"QONNX vs ORT on the QCDQ twin: rel {rel(got, want):.2e}")
    assert rel(got, want) <= FLOAT_TOL
    # the exported program (integer ops) reproduces ours exactly up to the same float32 output steps
    np.testing.assert_array_equal(got, ort_run(export_onnx(art.path, tmp_path / "exp.onnx"), x, optimize=False))


# ---- CLI and the Python API
def test_cli_run_and_export(mlp, tmp_path):
    q = _quantize(mlp, "qoperator-u8s8", tmp_path / "m.onnx")
    x = np.random.default_rng(9).standard_normal((5, 16)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    cli = [sys.executable, "-m", "edgestream.cli"]
    r = subprocess.run(cli + ["compile", str(q), "-o", str(tmp_path / "m.esa"), "--json"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(cli + ["run", str(tmp_path / "m.esa"), "--inputs", str(tmp_path / "in.npz"), "--outputs",
                              str(tmp_path / "out.npz"), "--device", "cpu"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.npz") as z:
        np.testing.assert_array_equal(z["y"], ort_run(q, x))
    r = subprocess.run(cli + ["export-onnx", str(tmp_path / "m.esa"), "-o", str(tmp_path / "e.onnx")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(ort_run(tmp_path / "e.onnx", x, optimize=False), ort_run(q, x))
    r = subprocess.run(cli + ["run", str(tmp_path / "m.esa"), "--inputs", str(tmp_path / "in.npz")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--outputs" in r.stderr and "Traceback" not in r.stderr


# ---- every unsupported case: one clear error naming the node, op type and why
def _compile_err(tmp_path, model, name="bad.onnx"):
    p = tmp_path / name
    onnx.save(model, p)
    with pytest.raises(InputError) as e:
        edgestream.compile_model(p, tmp_path / "bad.esa")
    assert not (tmp_path / "bad.esa").exists()
    return str(e.value)


def test_float_weights_rejected(mlp, tmp_path):
    with pytest.raises(InputError, match=r"MatMul\): weight 'W1' is float .*no float\s+fallback"):
        edgestream.compile_model(mlp, tmp_path / "f.esa")


def test_unsupported_op_rejected(tmp_path):
    m = _model([N("Floor", ["x"], ["y"], name="floor0")], {}, [1, 1, 4, 4], [1, 1, 4, 4])
    msg = _compile_err(tmp_path, m)
    assert "'floor0' (Floor)" in msg and "not supported" in msg
    m = _model([N("Conv", ["x", "w"], ["y"], name="conv0")], {"w": np.ones((1, 1, 1, 1), np.float32)},
               [1, 1, 4, 4], [1, 1, 4, 4])
    assert "'conv0' (Conv): weight 'w' is float" in _compile_err(tmp_path, m)


@pytest.mark.parametrize("shape,allowzero,out", [([0, -1], 0, [2, 12]), ([2, -1], 1, [2, 12]),
                                                 ([0, 0, 4], 0, [2, 3, 4]), ([-1, 4], 1, [6, 4])])
def test_reshape_allowzero(tmp_path, shape, allowzero, out):
    """ONNX Reshape: a 0 copies the input's dim only with allowzero=0; a shape without zeros is the same
    reshape either way (torch's default exporter writes allowzero=1 for every view)."""
    m = _model([N("Reshape", ["x", "shp"], ["y"], allowzero=allowzero)], {"shp": np.asarray(shape, np.int64)},
               [2, 3, 4], out, opset=21)
    onnx.save(m, tmp_path / "r.onnx")
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    art, got = ours(tmp_path / "r.onnx", tmp_path, x)
    want = ort_run(tmp_path / "r.onnx", x, optimize=False)
    assert got.shape == tuple(out)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, ort_run(export_onnx(art.path, tmp_path / "exp.onnx"), x, optimize=False))


@pytest.mark.parametrize("case", ["allowzero", "transA", "alpha", "group", "softmax11"])
def test_attribute_values_refused_by_name(tmp_path, case):
    """An attribute value that changes the meaning in a way we do not implement is one error naming the
    node and the attribute; the cases it does not change compile (the tests above)."""
    wi, s = np.ones((4, 4), np.int8), np.float32(0.1)
    dq = [N("QuantizeLinear", ["x", "s", "zs"], ["xi"]), N("DequantizeLinear", ["xi", "s", "zs"], ["xq"]),
          N("DequantizeLinear", ["wi", "s", "zs"], ["wq"])]
    inits = dict(wi=wi, s=s, zs=np.int8(0))
    xs, ys = ["N", 4], ["N", 4]
    if case == "allowzero":
        nodes = [N("Reshape", ["x", "shp"], ["y"], name="r", allowzero=1)]
        inits, xs, ys = dict(shp=np.asarray([0, -1], np.int64)), [2, 0, 3], [0, 6]
        want = "node name: r): [ShapeInferenceError] Invalid Target shape product of 0"  # onnx refuses it first
    elif case in ("transA", "alpha"):
        nodes = dq + [N("Gemm", ["xq", "wq"], ["y"], name="g", **{case: 1 if case == "transA" else 0.5})]
        want = f"'g' (Gemm): attribute {case!r}="
    elif case == "group":
        nodes = [N("QuantizeLinear", ["x", "s", "zs"], ["xi"]), N("DequantizeLinear", ["xi", "s", "zs"], ["xq"]),
                 N("DequantizeLinear", ["wc", "s", "zs"], ["wq"]), N("Conv", ["xq", "wq"], ["y"], name="c", group=2)]
        inits = dict(wc=np.ones((2, 1, 1, 1), np.int8), s=s, zs=np.int8(0))
        xs, ys = [1, 2, 3, 3], [1, 2, 3, 3]
        want = "'c' (Conv): attribute 'group'=2 is not supported"
    else:
        nodes = [N("Softmax", ["x"], ["y"], name="sm", axis=1)]
        inits, xs, ys = {}, [2, 3, 4], [2, 3, 4]
        want = "'sm' (Softmax): attribute 'axis'=1 is not supported"
    m = _model(nodes, inits, xs, ys, opset=11 if case == "softmax11" else 21)
    msg = _compile_err(tmp_path, m)
    assert want in msg, msg


@pytest.mark.parametrize("case", ["bits", "rounding", "act-matmul-float", "per-channel-act", "blocked"])
def test_bad_quantization_rejected(tmp_path, case):
    z0, s = np.float32(0), np.float32(0.1)
    w = np.ones((4, 4), np.float32)
    if case == "bits":
        nodes, inits = [N("Quant", ["w", "s", "z", "b"], ["wq"], domain=QONNX, name="q9"),
                        N("MatMul", ["x", "wq"], ["y"])], dict(w=w, s=s, z=z0, b=np.float32(9))
        want = "'q9' (Quant): bit width 9.0"
    elif case == "rounding":
        nodes = [N("Quant", ["w", "s", "z", "b"], ["wq"], domain=QONNX, name="qf", rounding_mode="STOCHASTIC"),
                 N("MatMul", ["x", "wq"], ["y"])]
        inits, want = dict(w=w, s=s, z=z0, b=np.float32(4)), "'qf' (Quant): attribute 'rounding_mode'='STOCHASTIC'"
    elif case == "act-matmul-float":
        nodes = [N("DequantizeLinear", ["wi", "s"], ["wq"]), N("MatMul", ["x", "wq"], ["y"], name="mm")]
        inits, want = dict(wi=np.ones((4, 4), np.int8), s=s), "'mm' (MatMul): input 'x' is a float activation"
    elif case == "per-channel-act":
        nodes = [N("QuantizeLinear", ["x", "sv", "zv"], ["xi"], name="qx", axis=1),
                 N("DequantizeLinear", ["xi", "sv", "zv"], ["y"])]
        inits = dict(sv=np.full(4, 0.1, np.float32), zv=np.zeros(4, np.uint8))
        want = "'qx' (QuantizeLinear): per-channel activation quantization"
    else:
        nodes = [N("DequantizeLinear", ["wi", "sv"], ["wq"], name="blk", axis=0, block_size=2),
                 N("MatMul", ["x", "wq"], ["y"])]
        inits = dict(wi=np.ones((4, 4), np.int8), sv=np.ones((2, 4), np.float32))
        want = "'blk' (DequantizeLinear): attribute 'block_size'=2 is not supported (blocked quantization)"
    msg = _compile_err(tmp_path, _model(nodes, inits, ["N", 4], ["N", 4], opset=21, domains=(QONNX,)))
    assert want in msg, msg


def test_bad_files_and_inputs(mlp, tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07not a protobuf" * 3)
    with pytest.raises(InputError, match="junk.onnx: not a readable ONNX model"):
        edgestream.compile_model(tmp_path / "junk.onnx", tmp_path / "j.esa")
    q = _quantize(mlp, "dynamic-s8", tmp_path / "d.onnx")
    sess = load_graph(edgestream.compile_model(q, tmp_path / "d.esa"))
    x = np.zeros((2, 16), np.float32)
    with pytest.raises(InputError, match=r"missing input\(s\) \['x'\]"):
        sess.run({"z": x})
    with pytest.raises(InputError, match=r"input 'x': shape \[2, 15\], expected \['N', 16\]"):
        sess.run({"x": x[:, :15]})
    with pytest.raises(InputError, match="input 'x': dtype int32, expected float32"):
        sess.run({"x": x.astype(np.int32)})
    with pytest.raises(InputError, match="NaN or Inf"):
        sess.run({"x": np.full((2, 16), np.nan, np.float32)})


def test_export_rejects_lm_artifact(tmp_path):
    from edgestream.synth import make_checkpoint

    ck = make_checkpoint(tmp_path / "ck", arch="llama", tokenizer=False)
    art = edgestream.compile_model(ck, tmp_path / "lm.esa")
    with pytest.raises(InputError, match="export-onnx takes general-graph artifacts"):
        export_onnx(art, tmp_path / "lm.onnx")
    assert not (tmp_path / "lm.onnx").exists()


def test_cli_inspect_onnx_source(mlp, tmp_path):
    """inspect reads an ONNX file as the frontend does: its op types, the IR it maps to, and each
    weight's encoding (INT8 weights of the quantized MLP stay INT8)."""
    import json

    q = _quantize(mlp, "qoperator-u8s8", tmp_path / "m.onnx")
    r = subprocess.run([sys.executable, "-m", "edgestream.cli", "inspect", str(q), "--json"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    model = onnx.load(str(q))
    assert info["format"] == "onnx" and info["model"]["arch"] == "graph"
    assert sum(info["onnx_ops"].values()) == len(model.graph.node)
    assert info["ops"].get("qmatmul", 0) == sum(n.op_type in ("QLinearMatMul", "MatMulInteger", "QGemm")
                                                for n in model.graph.node)
    assert any(t["encoding"] == "int8" for t in info["tensors"].values())
    r = subprocess.run([sys.executable, "-m", "edgestream.cli", "inspect", str(q)], capture_output=True, text=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr and "qmatmul" in r.stdout
