"""FINN's example networks (Brevitas' bnn_pynq TFC, SFC, LFC and CNV, every bit width it ships a
config for) exported as FINN users export them -- brevitas.export.export_qonnx, then qonnx's
cleanup_model -- compile and agree bit for bit with qonnx's own executor (execute_onnx).

The nets are randomly initialised here (no downloads), with random BatchNorm/TensorNorm statistics so
that the folded affine and the thresholds between layers are exercised, not the identity. All
arithmetic in these nets is exact in float32 (+-1 and 2-bit integers times power-of-two scales), so
onnxruntime's float Gemm/Conv inside qonnx equals our integer accumulators exactly; BatchNormalization
follows onnxruntime's float32 order (edgestream.graph_numerics.batchnorm_affine). Each export is done
once per session with the TorchScript exporter (about 1-3 s a net); the default exporter of current
torch (torch.export: 10-20 s a net here, which writes Reshape(allowzero=1) for the flatten) on TFC.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")
pytest.importorskip("qonnx")
onnx = pytest.importorskip("onnx")

from brevitas.export import export_qonnx  # noqa: E402
from brevitas_examples.bnn_pynq import models as bnn  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.util.cleanup import cleanup_model  # noqa: E402

import edgestream  # noqa: E402
from edgestream.host.graph_executor import load_graph  # noqa: E402

# every bnn_pynq FC/CNV config Brevitas ships (resnet18_4w4a is not one of FINN's bnn_pynq nets)
NETS = sorted(n for n in bnn.__all__ if re.fullmatch(r"(tfc|sfc|lfc|cnv)_\dw\da", n))
BATCH = 3


def _net(name: str, seed: int = 0):
    torch.manual_seed(seed)
    model, _ = bnn.model_with_cfg(name, pretrained=False)
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():  # BatchNorm1d/2d and TensorNorm: statistics a trained net could have
        if hasattr(m, "running_var"):
            c = m.running_var.numel()
            fan = 64.0 if c > 1 else 8.0
            m.running_mean.copy_(torch.randn(c, generator=g) * fan ** 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) * fan + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.5)
    return model.eval()


def _input_shape(name: str) -> tuple[int, ...]:
    return (BATCH, 1, 28, 28) if "fc" in name else (BATCH, 3, 32, 32)


def _export(name: str, path, dynamo: bool):
    model = _net(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.rand(_input_shape(name)), str(path), dynamo=dynamo)
    clean = path.with_name(path.stem + "_clean.onnx")
    cleanup_model(ModelWrapper(str(path))).save(str(clean))
    return clean


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("finn_nets")
    cache = {}

    def get(name: str, dynamo: bool = False):
        if (name, dynamo) not in cache:
            cache[name, dynamo] = _export(name, d / f"{name}{'_dynamo' if dynamo else ''}.onnx", dynamo)
        return cache[name, dynamo]

    return get


def _check_against_qonnx(path, tmp_path, seed: int = 3):
    mw = ModelWrapper(str(path))
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    shape = [d.dim_value for d in mw.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(seed).random(shape).astype(np.float32)  # pixels in [0, 1) as the nets expect
    sess = load_graph(edgestream.compile_model(path, tmp_path / (path.stem + ".esa")), kernel="numpy")
    got = sess.run({iname: x})[oname]
    want = execute_onnx(mw, {iname: x})[oname]
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(got)) > BATCH, "outputs too uniform to tell the nets apart"
    return sess


@pytest.mark.parametrize("name", NETS)
def test_bnn_pynq_net_matches_qonnx(exported, tmp_path, name):
    path = exported(name)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "BatchNormalization" in ops and {"Gemm", "MatMul"} & ops
    if name.startswith("cnv"):
        assert {"Conv", "MaxPool"} <= ops
    if "1a" in name:
        assert "BipolarQuant" in ops
    sess = _check_against_qonnx(path, tmp_path)
    g = sess.artifact.graph
    encs = [g.tensors[n.attrs["weight"]].encoding for n in g.nodes if n.op == "qmatmul"]
    # 1-bit (bipolar) and 2-bit narrow weights are {-1, 0, +1}: every layer on the ternary TLMM path
    assert encs and set(encs) == {"ternary"}, encs
    assert len(encs) == (9 if name.startswith("cnv") else 4)
    # each BatchNorm + activation quantizer between two layers folded into integer thresholds: no float
    # work left between the accelerated layers
    ir_ops = [n.op for n in g.nodes]
    assert ir_ops.count("threshold") == (8 if name.startswith("cnv") else 3), ir_ops
    assert ir_ops.count("dequant_acc") == 1  # only the last layer (into TensorNorm) leaves integers
    if not name.startswith("cnv"):  # the compiled program as standard ONNX reproduces ours in onnxruntime
        import onnxruntime as ort

        from edgestream.onnx_export import export_onnx

        x = np.random.default_rng(3).random(_input_shape(name)).astype(np.float32)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        exp = ort.InferenceSession(str(export_onnx(sess.artifact.path, tmp_path / "exp.onnx")), so,
                                   providers=["CPUExecutionProvider"])
        iname = exp.get_inputs()[0].name
        np.testing.assert_array_equal(exp.run(None, {iname: x})[0], list(sess.run({iname: x}).values())[0])


def test_current_torch_default_export(exported, tmp_path, name="tfc_1w1a"):
    """torch 2.9+'s default ONNX exporter (torch.export) writes Reshape(allowzero=1) for x.view(N, -1):
    a plain reshape of a constant shape without zeros."""
    path = exported(name, dynamo=True)
    reshapes = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Reshape"]
    assert reshapes and all(a.i == 1 for n in reshapes for a in n.attribute if a.name == "allowzero")
    _check_against_qonnx(path, tmp_path, seed=4)


@pytest.mark.parametrize("mode", ["ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN"])
def test_quant_rounding_modes_match_qonnx(tmp_path, mode):
    """Every rounding_mode qonnx defines, on an activation Quant, against qonnx's execute_onnx: ties,
    float32 near-ties (0.49999997 + 0.5 rounds to 1.0 in float32, as qonnx computes HALF_UP) and clamps."""
    from onnx import TensorProto as TP
    from onnx import helper as h
    from onnx import numpy_helper as nh

    s = np.float32(0.25)
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.49999997, 0.3, -0.7, 7.6, -9.2, 0.0, 3.5],
                 np.float32)
    x = np.concatenate([v, np.random.default_rng(5).standard_normal(18).astype(np.float32) * 3]).reshape(2, 16) * s
    inits = [nh.from_array(np.asarray(a), n) for a, n in ((s, "s"), (np.float32(0), "z"), (np.float32(4), "b"))]
    g = h.make_graph([h.make_node("Quant", ["x", "s", "z", "b"], ["y"], domain="qonnx.custom_op.general",
                                  signed=1, narrow=0, rounding_mode=mode)], "g",
                     [h.make_tensor_value_info("x", TP.FLOAT, [2, 16])],
                     [h.make_tensor_value_info("y", TP.FLOAT, [2, 16])], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13), h.make_opsetid("qonnx.custom_op.general", 1)])
    onnx.save(m, tmp_path / "q.onnx")
    got = load_graph(edgestream.compile_model(tmp_path / "q.onnx", tmp_path / "q.esa")).run({"x": x})["y"]
    np.testing.assert_array_equal(got, execute_onnx(ModelWrapper(m), {"x": x})["y"])
