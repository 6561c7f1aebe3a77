"""Decoder-only LMs exported from PyTorch to ONNX (torch.onnx.export, TorchScript exporter) and compiled by
edgestream's decoder-pattern matcher (compiler/frontends/onnx_patterns.py), against onnxruntime running
the very same ONNX file.

The models are tests/oracle_cases.py's tiny random ones with sharpened q/k projections (attention scores
deviating by a few units, measured on the torch model the file was exported from; 128-position prompts),
so RoPE, Q and the score scale reach the logits: tests/test_oracle_mutations.py shows these comparisons
fail when any of them is broken.

Tolerance: tests/test_hf_oracle.py's budget (per layer pass sqrt(n EPS^2 + 2 (e_qk sigma_s)^2), summed
over the layers; cosine, greedy and decisive-position rules as there), with these roundings n:
* Float ONNX, compiled with --quant int8: onnxruntime computes the float model (float32, a few ulp from
  transformers): test_hf_oracle's "INT8 Llama vs float" count, oracle_cases.FLOAT_ORACLE.
* onnxruntime-quantized ONNX (quantize_dynamic with reduce_range, INT8 weights used as they are): both
  sides use the exact same integer weights. Each side rounds activations its own way, independently:
  onnxruntime each linear's input per *tensor* to UINT8 (step (max - min)/255, the per-token absmax
  step 2*absmax/255 of the tensor's largest token: r times a token's own, r = tensor_ratio measured on
  the torch model, about 1.5-1.8 over 128 positions), ours per token; onnxruntime's embedding is UINT8
  per tensor where we re-round rows to INT8. Per pass: ours embedding, V, the 15-bit attention weights
  and the inputs of q/k/v, o, gate/up, down and the LM head (8 value roundings); onnxruntime's
  embedding and the same five inputs (6, each r^2 times the squared error); the gate input rounded by
  both, and Q and K carrying both sides' input roundings besides our head rounding:
  oracle_cases.ort_quantized(r). REL about 13%; measured cosine mean 0.9996 (Llama) and 0.9969 (BitNet).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from oracle_cases import (
    FLOAT_ORACLE,
    QK_GAIN,
    SMALL,
    check,
    onnx_export,
    ort_logits,
    ort_quantize,
    ort_quantized,
    prompt,
    tensor_ratio,
    tiny_bitnet,
    tiny_llama,
    torch_oracle,
)

import edgestream
from edgestream.errors import InputError

IDS = prompt(SMALL["vocab_size"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx_lm")
    llama, bitnet = tiny_llama(3, QK_GAIN["float"]), tiny_bitnet(4, QK_GAIN["float"])
    out = {"llama": onnx_export(llama, d / "llama.onnx"), "bitnet": onnx_export(bitnet, d / "bitnet.onnx")}
    out["llama_q_channel"] = ort_quantize(out["llama"], d / "llama_qc.onnx", True)
    out["llama_q_tensor"] = ort_quantize(out["llama"], d / "llama_qt.onnx", False)
    out["bitnet_q"] = ort_quantize(out["bitnet"], d / "bitnet_q.onnx", False)
    return out, {"llama": llama, "bitnet": bitnet}


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
    r = FLOAT_ORACLE if quant == "int8" else ort_quantized(tensor_ratio(models[arch], IDS))
    _, rel = torch_oracle(models[arch], IDS, r)
    check(sess.forward(IDS), ort_logits(path, IDS), rel, f"{name} --quant {quant} vs onnxruntime")


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
