"""Graph artifacts on the accelerator: `edgestream run ART --device sim` runs every quantized matmul
(im2col'd convolutions included) on the Verilator-simulated RTL through the driver, the rest on the
host, and writes outputs bit-identical to `--device cpu` (host/graph_accel.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")
pytest.importorskip("qonnx")

import edgestream  # noqa: E402
from edgestream.host.driver import open_accel  # noqa: E402
from edgestream.host.graph_accel import EXACT, AccelKernel, k_chunks  # noqa: E402
from edgestream.host.kernels import LinearWeights  # noqa: E402
from edgestream.tlmm import dense_matmul  # noqa: E402


def _tiny_bnn():
    """FINN's CNV in miniature, with Brevitas' bnn_pynq quantizers: 8-bit power-of-two input, a 2-bit
    padded Conv, BatchNorm, bipolar activations, MaxPool, flatten, a 1-bit and a 2-bit linear, TensorNorm."""
    from brevitas.core.restrict_val import RestrictValueType
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
    from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = QuantIdentity(act_quant=CommonActQuant, bit_width=8, min_val=-1.0, max_val=1.0 - 2.0 ** -7,
                                     narrow_range=False, restrict_scaling_type=RestrictValueType.POWER_OF_TWO)
            self.conv = QuantConv2d(2, 4, 3, padding=1, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=2)
            self.bn = nn.BatchNorm2d(4, eps=1e-4)
            self.a1 = QuantIdentity(act_quant=CommonActQuant, bit_width=1)
            self.pool = nn.MaxPool2d(2)
            self.fc1 = QuantLinear(16, 6, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1)
            self.bn1 = nn.BatchNorm1d(6)
            self.a2 = QuantIdentity(act_quant=CommonActQuant, bit_width=2)
            self.fc2 = QuantLinear(6, 3, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=2)
            self.tn = TensorNorm()

        def forward(self, x):
            x = self.pool(self.a1(self.bn(self.conv(self.inp(2.0 * x - 1.0)))))
            return self.tn(self.fc2(self.a2(self.bn1(self.fc1(x.view(x.shape[0], -1))))))

    torch.manual_seed(0)
    m = Tiny()
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            mod.weight.data.uniform_(-1, 1, generator=g)
        if hasattr(mod, "running_var"):  # random affine; the statistics calibrated on data below
            c = mod.running_var.numel()
            mod.weight.data.copy_(1 + 0.3 * torch.randn(c, generator=g))
            mod.bias.data.copy_(0.3 * torch.randn(c, generator=g))
            mod.momentum = None if isinstance(mod, nn.modules.batchnorm._BatchNorm) else 1.0
    m.train()
    with torch.no_grad():
        for _ in range(4):
            m(torch.rand(32, 2, 4, 4, generator=g))
    return m.eval()


def test_graph_artifact_on_simulated_accelerator(tmp_path):
    import warnings

    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(_tiny_bnn(), torch.rand(2, 2, 4, 4), str(tmp_path / "raw.onnx"), dynamo=False)
    mw = cleanup_model(ModelWrapper(str(tmp_path / "raw.onnx")))
    mw.save(str(tmp_path / "tiny.onnx"))
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    art = edgestream.compile_model(tmp_path / "tiny.onnx", tmp_path / "tiny.esa")
    x = np.random.default_rng(2).random((2, 2, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "in.npz", **{iname: x})
    cli = [sys.executable, "-m", "edgestream.cli", "run", str(art), "--inputs", str(tmp_path / "in.npz"), "--json"]
    info = {}
    for dev in ("cpu", "sim"):
        r = subprocess.run(cli + ["--outputs", str(tmp_path / f"{dev}.npz"), "--device", dev],
                           capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, r.stderr
        info[dev] = json.loads(r.stdout)
    assert info["sim"]["device"] == "sim" and info["sim"]["kernel"] == "accel:sim"
    with np.load(tmp_path / "cpu.npz") as c, np.load(tmp_path / "sim.npz") as s:
        cpu, sim = c[oname], s[oname]
    assert cpu.dtype == sim.dtype == np.float32
    assert sim.tobytes() == cpu.tobytes()  # bit-identical
    np.testing.assert_array_equal(cpu, execute_onnx(mw, {iname: x})[oname])  # and qonnx's result
    assert len(np.unique(cpu)) > 2


def test_accumulators_past_float32_split_along_k():
    """The accelerator hands back float32(acc): a layer whose accumulator could reach 2**24, or whose K
    exceeds MAXK, is split along K and summed in int64 on the host -- exact on the accelerator's
    register-level model (the same driver code as the simulator and the board)."""
    rng = np.random.default_rng(3)
    drv, dev = open_accel("cpu")
    try:
        kern = AccelKernel(drv, "cpu")
        big = np.where(rng.random((5, 1100)) < 0.5, -128, 127).astype(np.int8)  # 1100 * 128 * 128 > 2**24
        wide = rng.integers(-1, 2, (3, drv.geo.max_k + 7)).astype(np.int8)
        assert len(k_chunks(big, drv.geo.max_k)) > 1 and len(k_chunks(wide, drv.geo.max_k)) == 2
        prep = [kern.prepare(LinearWeights("big", "int", 8, big)),
                kern.prepare(LinearWeights("wide", "ternary", 2, wide))]
        q_big = np.where(big[:2] < 0, -128, 127).astype(np.int8)  # drives |acc| to its bound
        q_wide = rng.integers(-128, 128, (2, wide.shape[1])).astype(np.int8)
        for q, w, p in ((q_big, big, prep[0]), (q_wide, wide, prep[1])):
            want = q.astype(np.int64) @ w.astype(np.int64).T
            got = kern.matmul(q, p)
            assert got.dtype == np.int32
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(got, dense_matmul(q, w))
        assert int(np.abs(q_big.astype(np.int64) @ big.astype(np.int64).T).max()) >= EXACT
    finally:
        dev.close()
