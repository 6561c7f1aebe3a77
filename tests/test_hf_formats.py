"""Real Hugging Face checkpoint layouts against transformers itself: the weight-scale convention of
packed BitNet linears (`quantization_config.linear_class`), configs that name only `model_type`,
fields left to the config class' defaults, and packed 1.58-bit `LlamaForCausalLM` (Falcon3's layout).

Every checkpoint is written the way its real counterpart is (transformers' save_pretrained and
pack_weights, bf16 tensors, tied embeddings) and loaded by transformers' own `from_pretrained`, so
the quantized linear class is the one transformers picks for that config. Tolerances:
tests/test_hf_oracle.py's docstring (the same quantizers; our extra INT8 roundings).
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="oracle extra not installed: run `make test`")
transformers = pytest.importorskip("transformers")

from test_hf_oracle import IDS, SMALL, check, cosine, hf_logits, ours  # noqa: E402

from edgestream.compiler.frontends.hf import HF_DEFAULTS, read_config  # noqa: E402
from edgestream.errors import InputError  # noqa: E402

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def save_packed(model, d, quantization_config: dict | None, scale_dtype=torch.bfloat16, drop=()):
    """`model`'s linears absmean-ternarized and packed as microsoft/bitnet-b1.58-2B-4T ships them:
    uint8 [out/4, in] by transformers' pack_weights, one `weight_scale` per tensor whose meaning
    follows the linear class (autobitlinear: W = t * ws, ws ~ mean|W|; bitlinear: W = t / ws),
    everything else bf16; config.json keys in `drop` removed."""
    from safetensors.torch import save_file
    from transformers.integrations.bitnet import pack_weights

    cls = (quantization_config or {}).get("linear_class", "bitlinear")
    d.mkdir(parents=True)
    tied = model.config.tie_word_embeddings
    sd = {}
    for k, v in model.state_dict().items():
        if tied and k == "lm_head.weight":
            continue
        if k.rsplit(".", 2)[-2] in LINEARS:
            beta = v.abs().mean().clamp(min=1e-5)
            sd[k] = pack_weights((v / beta).round().clamp(-1, 1).clone())
            ws = beta if cls == "autobitlinear" else 1.0 / beta
            sd[k.replace(".weight", ".weight_scale")] = ws.reshape(1).to(scale_dtype)
        else:
            sd[k] = v.to(torch.bfloat16).contiguous()
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    cfg = model.config.to_dict()
    if quantization_config is not None:
        cfg["quantization_config"] = quantization_config
    for key in drop:
        cfg.pop(key, None)
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def load_ref(d, auto=False):
    cls = transformers.AutoModelForCausalLM if auto else transformers.BitNetForCausalLM
    m = cls.from_pretrained(d, dtype=torch.float32)
    # the bitnet quantizer leaves unconverted modules in the checkpoint's bf16 and refuses .float();
    # nn.Module's own float() upcasts them (and the scales) exactly, so the oracle runs in float32
    return torch.nn.Module.float(m).eval()


@pytest.fixture(scope="module")
def bitnet_tied():
    torch.manual_seed(3)
    return transformers.BitNetForCausalLM(transformers.BitNetConfig(**SMALL, tie_word_embeddings=True)).eval()


AUTO = {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline"}


def test_2b4t_convention_autobitlinear_multiplies(bitnet_tied, tmp_path):
    """The flagship checkpoint's config: transformers builds AutoBitLinear, which multiplies the
    output by weight_scale. Reading it the BitLinear way (divide) was the old bug."""
    d = save_packed(bitnet_tied, tmp_path / "b2b4t", AUTO)
    ref = load_ref(d)
    assert type(ref.model.layers[0].mlp.up_proj).__name__ == "AutoBitLinear"
    check(ours(d, tmp_path, IDS), hf_logits(ref, IDS), "BitNet 2B-4T layout (autobitlinear) vs HF")


def test_the_two_conventions_really_differ(bitnet_tied, tmp_path):
    """The same bytes under the other linear_class are another model, for transformers and for us:
    a frontend that ignored the config could pass at most one of the two conventions' oracle tests."""
    d = save_packed(bitnet_tied, tmp_path / "auto", AUTO)
    auto_ours, auto_hf = ours(d, tmp_path, IDS), hf_logits(load_ref(d), IDS)
    cfg = json.loads((d / "config.json").read_text())
    cfg["quantization_config"] = dict(AUTO, linear_class="bitlinear")
    (d / "config.json").write_text(json.dumps(cfg))
    ref = load_ref(d)
    assert type(ref.model.layers[0].mlp.up_proj).__name__ == "BitLinear"
    div_ours, div_hf = ours(d, tmp_path, IDS), hf_logits(ref, IDS)
    for a, b in ((auto_ours, div_ours), (auto_hf, div_hf)):
        assert cosine(a, b).mean() < 0.9


def test_model_type_only_config_and_class_defaults(bitnet_tied, tmp_path):
    """What BitNetConfig.save_pretrained writes (no `architectures`), with rope and eps left to the
    class defaults (rope_theta 500000, rms_norm_eps 1e-5): transformers' Auto class loads it."""
    d = save_packed(bitnet_tied, tmp_path / "mt", AUTO,
                    drop=("architectures", "rope_parameters", "rope_theta", "rms_norm_eps"))
    cfg = read_config(d)
    assert (cfg.arch, cfg.rope_theta, cfg.rms_norm_eps) == ("bitnet", 500000.0, 1e-5)
    ref = load_ref(d, auto=True)
    assert type(ref).__name__ == "BitNetForCausalLM" and ref.config.rms_norm_eps == 1e-5
    check(ours(d, tmp_path, IDS), hf_logits(ref, IDS), "model_type-only BitNet config vs HF Auto")


@pytest.mark.parametrize("arch, cls", [("bitnet", "BitNetConfig"), ("llama", "LlamaConfig")])
def test_defaults_are_transformers_config_defaults(arch, cls):
    d = getattr(transformers, cls)().to_dict()
    want = {k: d[k] for k in HF_DEFAULTS[arch] if k in d}
    want["rope_theta"] = (d.get("rope_parameters") or {}).get("rope_theta", d.get("rope_theta"))
    got = dict(HF_DEFAULTS[arch])
    got["num_key_value_heads"] = got["num_key_value_heads"] or got["num_attention_heads"]
    assert got == want
    # a missing num_key_value_heads: BitNetConfig keeps 5, LlamaConfig follows the head count
    kv = getattr(transformers, cls)(num_attention_heads=16).num_key_value_heads
    assert kv == (HF_DEFAULTS[arch]["num_key_value_heads"] or 16)


def test_falcon3_packed_llama(tmp_path):
    """Falcon3's 1.58-bit layout: LlamaForCausalLM, quantization_config {quant_method: bitnet} with
    the linear class left to its default (BitLinear: W = t / weight_scale)."""
    torch.manual_seed(4)
    m = transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL, tie_word_embeddings=False)).eval()
    d = save_packed(m, tmp_path / "falcon3", {"quant_method": "bitnet"})
    ref = load_ref(d, auto=True)
    assert type(ref.model.layers[0].mlp.up_proj).__name__ == "BitLinear"
    check(ours(d, tmp_path, IDS), hf_logits(ref, IDS), "packed Llama (Falcon3 layout) vs HF BitLinear")


@pytest.mark.parametrize("qc, match", [
    ({"quant_method": "bitnet", "linear_class": "fancylinear"}, "linear_class 'fancylinear'"),
    ({"quant_method": "gptq"}, "quant_method 'gptq'"),
    (dict(AUTO, quantization_mode="online"), "expected quantization_mode 'offline'"),
])
def test_bad_quantization_config_is_one_clear_error(tmp_path, qc, match):
    from edgestream.synth import make_checkpoint

    ck = make_checkpoint(tmp_path / "pk", "tiny", packed=True)
    cfg = json.loads((ck / "config.json").read_text())
    cfg["quantization_config"] = qc
    (ck / "config.json").write_text(json.dumps(cfg))
    import edgestream

    with pytest.raises(InputError, match=match):
        edgestream.compile_model(ck, tmp_path / "x.esa")
    assert not (tmp_path / "x.esa").exists()
