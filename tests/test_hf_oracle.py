"""The CPU executor against Hugging Face transformers' own BitNet and Llama implementations: tiny
random checkpoints written by transformers (save_pretrained, and its own BitNet packer), and the
shipped demo model (trained, edgestream/data/tiny-bitnet) on a held-out story.

Oracles that can fail. At init 0.02 a tiny model's attention scores deviate by ~0.03 over the keys:
attention is uniform, and RoPE, the queries and the 1/sqrt(D) score scale barely reach the logits.
So q_proj and k_proj are scaled after init (tests/oracle_cases.py: QK_GAIN) until the scores deviate
by a few units, prompts are 128 positions and more, and every test measures this on the oracle
itself (every layer >= SHARP = 1.5; the trained demo model's layers: 1.9 to 3.2).
tests/test_oracle_mutations.py shows that each comparison here fails when RoPE is removed or turns
the wrong way, Q is zeroed, or the scores are scaled by 1/D.

Tolerance (tests/oracle_cases.py: budget). The oracle for a ternary model is transformers' quantized
BitNet (weights absmean ternary, activations per-token INT8 absmax: the same quantizers as ours).
* Value path. One absmax rounding of a roughly Gaussian wide vector has relative RMS error about
  (4 sigma / 127) / sqrt(12) / sigma = 0.9% (EPS). Beyond the oracle, a layer pass of ours rounds at
  most five more values (embedding rows, V, the LM head's input and rows, the attention weights at 15
  bits; docs/numerics.md): sqrt(5) * 0.9% = 2%.
* Scores. Q and K are INT8 per token and head too. Each rounding moves the score s = q.k / sqrt(D)
  by (dq.k + q.dk) / sqrt(D), of RMS sqrt(2) * e_qk * sigma_s: sigma_s the scores' deviation over
  the keys, e_qk a D-vector's rounding error, E[max_i |x_i|] / sigma / (127 sqrt(12)) for D Gaussians
  = 0.47% at D = 16, 0.59% at D = 64 (absmax_rel_err). The attention output sum_j p_j v_j moves by
  sum_j p_j (ds_j - E_p ds) v_j: at most about that fraction of |v|, so a pass adds
  sqrt(2) * e_qk * sigma_s in quadrature, 2% at sigma_s = 3.
Per pass sqrt(5 EPS^2 + 2 (e_qk sigma_s)^2), summed over the layers (errors aligned: the worst case)
with each oracle's measured sigma_s per layer, is the relative logit error budget REL: 5.5% for the
two-layer random models, 17% for the six-layer demo. Asserted (oracle_cases.compare): cosine >=
1 - REL^2/2 on average over positions, every position >= 1 - (2 REL)^2/2 (twice the error); greedy
agreement at every position whose top-1 margin m exceeds 4 sigma of the budget's error on the
difference of two logits (sd = REL rms(row) sqrt(2)), and over all positions at least what that error
predicts (a position flips with probability P(N(0, sd^2) > m); random models have near-ties) less 3
binomial standard deviations.
For INT8-weight Llama the oracle is the float model. Our pass then also rounds the inputs of q/k/v,
o, gate/up and down (per token) and the weights of v, o, gate, up, down (per channel): 14 value
roundings; Q and K each carry an input and a weight rounding besides the head rounding, e_qk^2 =
e_h^2 + 2 e_hidden^2 (0.96% at hidden 64); and where the FFN is ReLU^2 (BitNet) the two gate
roundings count four times (squaring doubles a relative error): oracle_cases.FLOAT_ORACLE, REL about
9.5% (10.3% for BitNet).
Measured (REL, then cosine mean / min): BitNet vs online quant 5.5%, 0.99920 / 0.9954; packed
BitLinear 0.99915 / 0.9968; Llama INT8 vs float 9.5%, 0.99969 / 0.9991; Llama ternary 5.5%, 0.99990 /
0.9997; demo 16.8%, 0.99990 / 0.9939. The mutations of tests/test_oracle_mutations.py give 0.22-0.83.
"""

from __future__ import annotations

import json

import numpy as np
import oracle_cases
import pytest
import torch
import transformers
from oracle_cases import (
    DEMO,
    FLOAT_ORACLE,
    QK_GAIN,
    QUANTIZED_ORACLE,
    SMALL,
    bitnet_online,
    budget,
    demo_prompt,
    demo_transformers,
    prompt,
    tiny_bitnet,
    tiny_llama,
    torch_oracle,
)

import edgestream

IDS = prompt(SMALL["vocab_size"])
# The budget of a two-layer SMALL model that attends uniformly (sigma_s ~ 0, init 0.02 left alone):
# 2 * sqrt(5) * EPS = 4%, for tests of checkpoint layouts that do not exercise attention.
UNIFORM_REL = budget([0.0, 0.0], 16, 64, QUANTIZED_ORACLE, relu2=False)


def check(got, want, what, rel=UNIFORM_REL):
    return oracle_cases.check(got, want, rel, what)


def cosine(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def ours(src, tmp_path, ids, kernel=None, **kw):
    art = edgestream.compile_model(src, tmp_path / (src.name + ".esa"), **kw)
    return edgestream.load(art, kernel=kernel).forward(ids)


@pytest.fixture(scope="module")
def bitnet_float(tmp_path_factory):
    m = tiny_bitnet(0, QK_GAIN["ternary"])
    d = tmp_path_factory.mktemp("hf") / "bitnet-float"
    m.save_pretrained(d)
    return m, d


def test_bitnet_float_checkpoint_vs_transformers_quantized(bitnet_float, tmp_path):
    m, d = bitnet_float
    want, rel = torch_oracle(bitnet_online(m), IDS, QUANTIZED_ORACLE)
    check(ours(d, tmp_path, IDS), want, "BitNet float ckpt vs HF online-quant", rel)


def test_bitnet_packed_checkpoint_vs_transformers_bitlinear(bitnet_float, tmp_path):
    """Weights packed by transformers' own packer, loaded by transformers' own BitLinear."""
    from safetensors.torch import save_file
    from transformers.integrations.bitnet import pack_weights

    m, _ = bitnet_float
    d = tmp_path / "bitnet-packed"
    d.mkdir()
    sd = {}
    for k, v in m.state_dict().items():
        if k.endswith("_proj.weight"):
            scale = 1.0 / v.abs().mean().clamp(min=1e-5)
            t = (v * scale).round().clamp(-1, 1)
            sd[k] = pack_weights(t.clone())
            sd[k.replace(".weight", ".weight_scale")] = scale.reshape(1).to(torch.bfloat16)
        else:
            sd[k] = v.to(torch.bfloat16).contiguous()
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    cfg = m.config.to_dict()
    cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": "bitlinear",
                                  "quantization_mode": "offline"}
    (d / "config.json").write_text(json.dumps(cfg))
    ref = transformers.BitNetForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    assert type(ref.model.layers[0].mlp.up_proj).__name__ == "BitLinear"
    want, rel = torch_oracle(ref, IDS, QUANTIZED_ORACLE)
    check(ours(d, tmp_path, IDS), want, "BitNet packed bf16 ckpt vs HF BitLinear", rel)


@pytest.fixture(scope="module")
def llama_float(tmp_path_factory):
    m = tiny_llama(1, QK_GAIN["float"], tie_word_embeddings=False)
    d = tmp_path_factory.mktemp("hf") / "llama-float"
    m.save_pretrained(d)
    return m, d


def test_llama_int8_vs_transformers_float(llama_float, tmp_path):
    m, d = llama_float
    want, rel = torch_oracle(m, IDS, FLOAT_ORACLE)
    check(ours(d, tmp_path, IDS, quant="int8"), want, "Llama INT8 vs HF float", rel)


def test_llama_ternary_vs_transformers_quantized(tmp_path):
    m = tiny_llama(1, QK_GAIN["ternary"], tie_word_embeddings=False)
    m.save_pretrained(tmp_path / "llama-t")
    want, rel = torch_oracle(bitnet_online(m), IDS, QUANTIZED_ORACLE)
    check(ours(tmp_path / "llama-t", tmp_path, IDS, quant="ternary"), want, "Llama ternary vs HF online-quant Llama",
          rel)


def test_tied_embeddings(tmp_path):
    m = tiny_llama(2, QK_GAIN["float"], tie_word_embeddings=True)
    m.save_pretrained(tmp_path / "tied")
    want, rel = torch_oracle(m, IDS, FLOAT_ORACLE)
    check(ours(tmp_path / "tied", tmp_path, IDS, quant="int8"), want, "tied Llama INT8 vs HF", rel)


def test_demo_model_vs_transformers(tmp_path):
    """The trained model as it ships, through transformers' from_pretrained, on a held-out story."""
    ids = demo_prompt()
    assert len(ids) >= 128
    want, rel = torch_oracle(demo_transformers(), ids, QUANTIZED_ORACLE)
    check(ours(DEMO, tmp_path, ids), want, "demo model vs HF from_pretrained", rel)
