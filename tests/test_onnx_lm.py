"""Decoder-only LMs exported from PyTorch to ONNX (torch.onnx.export, TorchScript exporter) and compiled by
edgestream's decoder-pattern matcher (compiler/frontends/onnx_patterns.py), against onnxruntime running
the very same ONNX file.

Tolerance, derived as in tests/test_hf_oracle.py. One absmax INT8 rounding of a roughly Gaussian vector
has relative RMS error about 0.9%.
* Float ONNX, compiled with --quant int8: onnxruntime computes the float model (float32, a few ulp from
  transformers). Our path adds per-channel INT8 weights plus per-token INT8 activations, Q/K/V, 15-bit
  attention weights, embedding and LM-head rows: the budget of test_hf_oracle's "INT8 Llama vs float",
  4% relative logit error (cosine >= 1 - 0.04**2/2 mean, >= 1 - 0.08**2/2 at every position).
* onnxruntime-quantized ONNX (quantize_dynamic, INT8 weights used as they are): both sides use the exact
  same integer weights; onnxruntime quantizes each linear's input per *tensor* to UINT8 (step
  (max - min)/255, about the per-token absmax step 2*absmax/255 of its largest token), ours per token,
  and its embedding is UINT8 per tensor where we re-round rows to INT8. Those are two independent
  roundings per linear instead of the weight rounding they replace: the same count of 0.9% terms within
  a factor sqrt(2) for the per-linear ones, so we keep the same 4% budget per layer pass.
Greedy agreement: random tiny models have near-ties, so a disagreement is only an error where the
oracle's top-1 margin exceeds what the budget allows: 4 sigma of a 4% relative error of the logit row,
margin > 4 * 0.04 * rms(row) * sqrt(2) (difference of two logits). Every such position must agree, and
overall agreement must be >= 90% as in test_hf_oracle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
torch = pytest.importorskip("torch", reason="oracle extra not installed: run `make test`")
transformers = pytest.importorskip("transformers")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import edgestream  # noqa: E402
from edgestream.errors import InputError  # noqa: E402

REL = 0.04
COS_MEAN = 1 - REL**2 / 2
COS_MIN = 1 - (2 * REL) ** 2 / 2
AGREE = 0.9
SMALL = dict(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
             bos_token_id=0, eos_token_id=1, use_cache=False, attn_implementation="eager")
IDS = [0, 17, 42, 99, 5, 250, 7, 7, 31, 120, 64, 3, 200, 11, 150, 77, 9, 260, 33, 101]


class _Logits(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, ids):
        return self.m(input_ids=ids, use_cache=False).logits


def export(model, path):
    """torch.onnx.export (TorchScript exporter, opset 17), input_ids -> logits, dynamic sequence length."""
    import transformers.masking_utils as mu

    saved = mu.find_packed_sequence_indices  # uses aten::diff, which has no ONNX export; unpacked input
    mu.find_packed_sequence_indices = lambda position_ids: None
    try:
        torch.onnx.export(_Logits(model), (torch.tensor([IDS[:7]]),), str(path), dynamo=False, opset_version=17,
                          input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {1: "seq"}, "logits": {1: "seq"}})
    finally:
        mu.find_packed_sequence_indices = saved
    return path


def quantize(src, dst, per_channel):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel)
    return dst


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx_lm")
    torch.manual_seed(3)
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL, rope_theta=10000.0)).eval()
    torch.manual_seed(4)
    bitnet = transformers.BitNetForCausalLM(transformers.BitNetConfig(**SMALL)).eval()
    out = {"llama": export(llama, d / "llama.onnx"), "bitnet": export(bitnet, d / "bitnet.onnx")}
    out["llama_q_channel"] = quantize(out["llama"], d / "llama_qc.onnx", True)
    out["llama_q_tensor"] = quantize(out["llama"], d / "llama_qt.onnx", False)
    out["bitnet_q"] = quantize(out["bitnet"], d / "bitnet_q.onnx", False)
    return out, {"llama": llama, "bitnet": bitnet}


def ort_logits(path, ids):
    return ort.InferenceSession(str(path)).run(None, {"input_ids": np.array([ids], np.int64)})[0][0]


def check(got, want, what):
    cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    top2 = np.sort(want, -1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    decisive = margin > 4 * REL * np.sqrt(np.mean(want**2, -1)) * np.sqrt(2)
    agree = got.argmax(-1) == want.argmax(-1)
    print(f"{what}: cosine mean {cos.mean():.6f} min {cos.min():.6f}, greedy agreement {agree.mean():.2f} "
          f"({int(decisive.sum())}/{len(agree)} decisive positions)")
    assert cos.mean() >= COS_MEAN, (what, cos)
    assert cos.min() >= COS_MIN, (what, cos)
    assert agree.mean() >= AGREE, (what, agree)
    assert agree[decisive].all(), (what, np.flatnonzero(decisive & ~agree))


@pytest.mark.parametrize("name,quant,arch", [
    ("llama", "int8", "llama"), ("bitnet", "int8", "bitnet"),
    ("llama_q_channel", "auto", "llama"), ("llama_q_tensor", "auto", "llama"), ("bitnet_q", "auto", "bitnet")])
def test_exported_lm_vs_onnxruntime(exported, tmp_path, name, quant, arch):
    files, models = exported
    path = files[name]
    art = edgestream.compile_model(path, tmp_path / f"{name}.esa", quant=quant)
    sess = edgestream.load(art)
    cfg = models[arch].config
    c = sess.config
    assert (c.arch, c.vocab_size, c.hidden_size, c.intermediate_size, c.num_layers) == \
        (arch, cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers)
    assert (c.num_heads, c.num_kv_heads, c.head_dim) == \
        (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads)
    assert c.rope_theta == pytest.approx(cfg.rope_parameters["rope_theta"], rel=1e-6)
    assert c.rms_norm_eps == pytest.approx(cfg.rms_norm_eps, rel=1e-6)
    check(sess.forward(IDS), ort_logits(path, IDS), f"{name} --quant {quant} vs onnxruntime")


def test_quantized_onnx_weights_are_used_as_is(exported):
    """MatMulInteger's int8 weights and per-channel scales reach the IR unchanged (no re-quantization)."""
    from onnx import numpy_helper

    from edgestream.compiler.frontends.onnx import load_onnx

    files, _ = exported
    graph, _ = load_onnx(files["llama_q_channel"])
    m = onnx.load(str(files["llama_q_channel"]))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    qnode = next(n for n in m.graph.node if n.op_type == "MatMulInteger")
    t = graph.tensors["model.layers.0.self_attn.q_proj.weight"]
    assert t.encoding == "int8"
    np.testing.assert_array_equal(t.data, inits[qnode.input[1]].T.astype(np.int8))
    np.testing.assert_array_equal(t.scale, inits[qnode.input[1].replace("_quantized", "_scale")])


def test_cli_compile_and_run(exported, tmp_path):
    files, _ = exported
    art = tmp_path / "cli.esa"
    cli = [sys.executable, "-m", "edgestream.cli"]
    r = subprocess.run(cli + ["compile", str(files["llama"]), "-o", str(art), "--quant", "int8", "--json"],
                       capture_output=True, text=True, env={**os.environ, "TORCHDYNAMO_DISABLE": "1"})
    assert r.returncode == 0, r.stderr
    r = subprocess.run(cli + ["run", str(art), "--prompt-ids", ",".join(map(str, IDS[:6])), "--max-new-tokens",
                              "4", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    sess = edgestream.load(art)
    assert [int(t) for t in out["tokens"]] == list(sess.generate(IDS[:6], max_new_tokens=4))


def test_unrecognized_lm_names_the_node(exported, tmp_path):
    """An LM-like graph whose MLP is not SwiGLU/ReLU^2 (Sigmoid swapped for Tanh) is rejected with the
    node where matching failed."""
    files, _ = exported
    m = onnx.load(str(files["llama"]))
    sig = next(n for n in m.graph.node if n.op_type == "Sigmoid")
    sig.op_type = "Tanh"
    bad = tmp_path / "bad.onnx"
    onnx.save(m, str(bad))
    with pytest.raises(InputError) as e:
        edgestream.compile_model(bad, tmp_path / "bad.esa")
    msg = str(e.value)
    assert "decoder LM pattern not matched at node" in msg and "post_attention_layernorm" in msg, msg
    assert "SiLU" in msg and "ReLU" in msg, msg
    assert not (tmp_path / "bad.esa").exists()
