"""The CPU executor against Hugging Face transformers' own BitNet and Llama implementations, on tiny
random checkpoints written by transformers (save_pretrained, and its own BitNet packer).

Tolerance. The oracle for a ternary model is transformers' quantized BitNet (weights absmean
ternary, activations per-token INT8 absmax: the same quantizers as ours). Beyond it our numerics
round each value path through at most five more INT8 absmax steps (embedding rows, Q, K, V, the
attention weights at 15 bits, the LM head rows; docs/numerics.md). One absmax rounding of a roughly
Gaussian vector has relative RMS error about (4 sigma / 127) / sqrt(12) / sigma = 0.9%; five
independent ones give sqrt(5) * 0.9% = 2% and, through the two layers, at most about 4% relative
logit error, i.e. cosine >= 1 - 0.04**2 / 2 = 0.9992. We assert the mean cosine over positions
against that and every position >= 0.998 (twice the error), and greedy agreement >= 90% (random
models have near-ties). For INT8-weight Llama the oracle is the float model: INT8 weights add one more
per-channel rounding, within the same budget.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="oracle extra not installed: run `make test`")
transformers = pytest.importorskip("transformers")

import edgestream  # noqa: E402

COS_MEAN = 1 - 0.04**2 / 2
COS_MIN = 1 - 0.08**2 / 2
AGREE = 0.9
SMALL = dict(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
             bos_token_id=0, eos_token_id=1)


def cosine(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def bitnet_online(model):
    """transformers' own QAT BitNet layers (absmean ternary weights, INT8 activations) on `model`'s
    weights."""
    from transformers import BitNetQuantConfig
    from transformers.integrations.bitnet import replace_with_bitnet_linear

    q = type(model)(model.config)
    q = replace_with_bitnet_linear(q, modules_to_not_convert=["lm_head"], quantization_config=BitNetQuantConfig(
        linear_class="autobitlinear", quantization_mode="online"))
    missing = q.load_state_dict(model.state_dict(), strict=False)
    assert not missing.missing_keys and not missing.unexpected_keys
    return q.eval()


def hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def ours(src, tmp_path, ids, **kw):
    art = edgestream.compile_model(src, tmp_path / (src.name + ".esa"), **kw)
    return edgestream.load(art).forward(ids)


IDS = [0, 17, 42, 99, 5, 250, 7, 7, 31, 120, 64, 3]


@pytest.fixture(scope="module")
def bitnet_float(tmp_path_factory):
    torch.manual_seed(0)
    m = transformers.BitNetForCausalLM(transformers.BitNetConfig(**SMALL)).eval()
    d = tmp_path_factory.mktemp("hf") / "bitnet-float"
    m.save_pretrained(d)
    return m, d


def check(got, want, what):
    cos = cosine(got, want)
    agree = float(np.mean(got.argmax(-1) == want.argmax(-1)))
    print(f"{what}: logit cosine mean {cos.mean():.6f} min {cos.min():.6f}, greedy agreement {agree:.2f}")
    assert cos.mean() >= COS_MEAN, (what, cos)
    assert cos.min() >= COS_MIN, (what, cos)
    assert agree >= AGREE, (what, agree)


def test_bitnet_float_checkpoint_vs_transformers_quantized(bitnet_float, tmp_path):
    m, d = bitnet_float
    check(ours(d, tmp_path, IDS), hf_logits(bitnet_online(m), IDS), "BitNet float ckpt vs HF online-quant")


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
    ref = transformers.BitNetForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    assert type(ref.model.layers[0].mlp.up_proj).__name__ == "BitLinear"
    check(ours(d, tmp_path, IDS), hf_logits(ref, IDS), "BitNet packed bf16 ckpt vs HF BitLinear")


@pytest.fixture(scope="module")
def llama_float(tmp_path_factory):
    torch.manual_seed(1)
    cfg = transformers.LlamaConfig(**SMALL, rope_theta=10000.0, tie_word_embeddings=False)
    m = transformers.LlamaForCausalLM(cfg).eval()
    d = tmp_path_factory.mktemp("hf") / "llama-float"
    m.save_pretrained(d)
    return m, d


def test_llama_int8_vs_transformers_float(llama_float, tmp_path):
    m, d = llama_float
    check(ours(d, tmp_path, IDS, quant="int8"), hf_logits(m, IDS), "Llama INT8 vs HF float")


def test_llama_ternary_vs_transformers_quantized(llama_float, tmp_path):
    m, d = llama_float
    check(ours(d, tmp_path, IDS, quant="ternary"), hf_logits(bitnet_online(m), IDS),
          "Llama ternary vs HF online-quant Llama")


def test_tied_embeddings(tmp_path):
    torch.manual_seed(2)
    m = transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL, tie_word_embeddings=True)).eval()
    m.save_pretrained(tmp_path / "tied")
    check(ours(tmp_path / "tied", tmp_path, IDS, quant="int8"), hf_logits(m, IDS), "tied Llama INT8 vs HF")
