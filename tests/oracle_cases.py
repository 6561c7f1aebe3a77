"""Shared by the LM oracle tests (test_hf_oracle, test_onnx_lm, test_oracle_mutations): tiny random
models that attend sharply, long prompts, the error budget of tests/test_hf_oracle.py's docstring as
code, and one comparison that reports what failed instead of asserting, so a test can also demand
that a deliberately broken executor fails it."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edgestream" / "data" / "tiny-bitnet"

EPS = 0.009  # one INT8 absmax rounding of a wide vector (absmax ~ 4 sigma): (4 / 127) / sqrt(12)


@dataclass(frozen=True)
class Roundings:
    """The roundings one layer pass of ours makes that the oracle does not (tests/test_hf_oracle.py's
    docstring), in units of one rounding's squared error: `value` on the value path (EPS^2 each);
    `gate` of those on the FFN gate, which ReLU^2 squares (a relative error e becomes 2e: three more
    EPS^2 each); `qk` on the inputs of q_proj and k_proj besides their INT8 head rounding (e_hidden^2
    each, for the query and for the key)."""

    value: float
    gate: float
    qk: float

    def n(self, relu2: bool) -> float:
        return self.value + (3 * self.gate if relu2 else 0.0)


QUANTIZED_ORACLE = Roundings(5, 0, 0)  # vs transformers' BitNet quantizers
FLOAT_ORACLE = Roundings(14, 2, 2)  # INT8 weights and activations vs a float model


def ort_quantized(r: float) -> Roundings:
    """vs onnxruntime's quantized graph (tests/test_onnx_lm.py): ours 8 value roundings, onnxruntime's
    6 per-tensor ones at r^2 times a per-token rounding's squared error (r: tensor_ratio)."""
    return Roundings(8 + 6 * r**2, 1 + r**2, 1 + r**2)
# Tiny random models: q_proj and k_proj scaled after init so the attention scores deviate by 2.5 to 3
# over the visible keys (init 0.02 alone gives ~0.03: uniform attention). Scores scale as gain^2, and
# ternarizing both projections shrinks them ~0.44x (entries 0 and +-absmean), so a model meant for a
# ternary oracle (transformers' BitNet quantizers) gets the larger gain.
QK_GAIN = {"float": 10.0, "ternary": 16.0}
# Every oracle's every layer must show at least this score deviation, or the test says nothing about
# RoPE, Q or the score scale (the demo model's flattest layer: 1.85).
SHARP = 1.5
PROMPT_LEN = 128
SMALL = dict(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
             bos_token_id=0, eos_token_id=1, attn_implementation="eager")


def prompt(vocab: int, n: int = PROMPT_LEN, seed: int = 0) -> list[int]:
    """BOS (id 0) then n-1 random ids, avoiding the special ids 0 and 1."""
    return [0] + np.random.default_rng(seed).integers(2, vocab, n - 1).tolist()


def sharpen(model, gain: float):
    """Multiply every layer's q_proj and k_proj weights by `gain` (scores scale by gain**2)."""
    import torch

    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(gain)
            layer.self_attn.k_proj.weight.mul_(gain)
    return model


def tiny_bitnet(seed: int, gain: float, **kw):
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.BitNetConfig(**{**SMALL, **kw})
    return sharpen(transformers.BitNetForCausalLM(cfg).eval(), gain)


def tiny_llama(seed: int, gain: float, **kw):
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(**{**SMALL, "rope_theta": 10000.0, **kw})
    return sharpen(transformers.LlamaForCausalLM(cfg).eval(), gain)


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


def demo_transformers():
    """The shipped demo checkpoint through transformers' own from_pretrained, whose
    quantization_config picks BitLinear or AutoBitLinear and its weight_scale convention."""
    import torch
    from transformers import BitNetForCausalLM

    m = BitNetForCausalLM.from_pretrained(str(DEMO), dtype=torch.float32, attn_implementation="eager")
    # the bitnet quantizer leaves unconverted modules in the checkpoint's bf16 and refuses .float();
    # AutoBitLinear's float32 weights need float32 inputs: upcast exactly
    return torch.nn.Module.float(m).eval()


def demo_prompt(stories: int = 8) -> list[int]:
    """`<s> story </s>` ids of the longest of the first held-out stories (a generator seed that
    training never used; examples/train_tiny_bitnet/evaluate.py)."""
    sys.path.insert(0, str(REPO / "examples" / "train_tiny_bitnet"))
    import evaluate as ev

    return max(ev.heldout_ids(ev.load_tokenizer(DEMO), stories), key=len).tolist()


def absmax_rel_err(d: int) -> float:
    """Relative RMS error of INT8 absmax rounding of a d-vector of iid Gaussians:
    E[max_i |x_i|] / sigma / (127 * sqrt(12)), with E[max] = int_0^inf 1 - erf(x/sqrt(2))**d dx."""
    x = np.linspace(0.0, 12.0, 24001)
    tail = 1.0 - np.array([math.erf(v / math.sqrt(2.0)) for v in x]) ** d
    emax = float(np.sum((tail[1:] + tail[:-1]) / 2) * (x[1] - x[0]))
    return emax / (127 * math.sqrt(12))


def score_sigmas(attentions, skip: int = 16) -> np.ndarray:
    """Per layer: the standard deviation of the attention scores over the visible keys (log p differs
    from the score by a per-row constant), averaged over heads and queries from position `skip` on.
    attentions: per layer [1, heads, T, T] probabilities (transformers' output_attentions)."""
    out = []
    for a in attentions:
        a = np.asarray(a, dtype=np.float64)[0]
        lp = np.log(np.maximum(a, 1e-300))
        t_len = a.shape[-1]
        out.append(np.mean([lp[:, t, : t + 1].std(-1).mean() for t in range(skip, t_len)]))
    return np.array(out)


def budget(sigmas, head_dim: int, hidden: int, r: Roundings, relu2: bool) -> float:
    """Relative logit error budget (tests/test_hf_oracle.py): per layer sqrt(n EPS^2 + 2 (e_qk s)^2),
    n value-path roundings, e_qk the relative error of a query or key vector, s that layer's score
    deviation; summed over the layers."""
    eqk2 = absmax_rel_err(head_dim) ** 2 + r.qk * absmax_rel_err(hidden) ** 2
    return float(sum(math.sqrt(r.n(relu2) * EPS**2 + 2 * eqk2 * s**2) for s in sigmas))


@dataclass
class Verdict:
    what: str
    rel: float
    cos: np.ndarray
    agree: np.ndarray
    decisive: np.ndarray
    agree_bound: float
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        return (f"{self.what}: logit cosine mean {self.cos.mean():.6f} min {self.cos.min():.6f} "
                f"(bounds {cos_bound(self.rel):.6f}, {cos_bound(2 * self.rel):.6f} from a {self.rel:.1%} budget), "
                f"greedy agreement {self.agree.mean():.2f} (bound {self.agree_bound:.2f}; "
                f"{int(self.decisive.sum())}/{len(self.agree)} decisive)"
                + (f"; FAILED: {', '.join(self.failures)}" if self.failures else ""))


def cos_bound(rel: float) -> float:
    return 1 - rel**2 / 2


def compare(got: np.ndarray, want: np.ndarray, rel: float, what: str) -> Verdict:
    """Mean cosine >= 1 - rel^2/2, every position >= 1 - (2 rel)^2/2; greedy agreement at every
    decisive position (the oracle's top-1 margin m beyond 4 sigma of the budget's error on the
    difference of two logits, sd = rel * rms(row) * sqrt(2)) and, over all positions, at least the
    agreement that error predicts (a position flips with probability P(N(0, sd^2) > m)) less 3
    binomial standard deviations."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    top2 = np.sort(want, -1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    sd = rel * np.sqrt(np.mean(want**2, -1)) * np.sqrt(2)
    decisive = margin > 4 * sd
    p_flip = np.array([0.5 * math.erfc(m / (s * math.sqrt(2))) for m, s in zip(margin, sd, strict=True)])
    agree_bound = 1 - p_flip.mean() - 3 * math.sqrt(float((p_flip * (1 - p_flip)).sum())) / len(p_flip)
    agree = got.argmax(-1) == want.argmax(-1)
    v = Verdict(what, rel, cos, agree, decisive, agree_bound)
    if not cos.mean() >= cos_bound(rel):
        v.failures.append("cosine mean")
    if not cos.min() >= cos_bound(2 * rel):
        v.failures.append("cosine min")
    if not agree.mean() >= agree_bound:
        v.failures.append("greedy agreement")
    if not agree[decisive].all():
        v.failures.append(f"decisive positions {np.flatnonzero(decisive & ~agree).tolist()}")
    return v


def check(got, want, rel: float, what: str) -> Verdict:
    v = compare(got, want, rel, what)
    print(v)
    assert v.ok, str(v)
    return v


def torch_oracle(model, ids, roundings: Roundings) -> tuple[np.ndarray, float]:
    """A transformers model's float32 logits [T, vocab] and the error budget for them, after checking
    that it attends sharply (the model must run eager attention, which returns the probabilities)."""
    import torch

    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True, use_cache=False)
    sig = score_sigmas([a.float().numpy() for a in out.attentions])
    print(f"oracle score deviation per layer: {np.round(sig, 2).tolist()}")
    assert sig.min() >= SHARP, f"the oracle attends too uniformly to test attention: score std per layer {sig}"
    c = model.config
    rel = budget(sig, c.hidden_size // c.num_attention_heads, c.hidden_size, roundings, c.hidden_act == "relu2")
    return out.logits[0].float().numpy(), rel


def tensor_ratio(model, ids) -> float:
    """How much coarser a per-tensor activation rounding (onnxruntime's dynamic quantization) is than
    a per-token one, for the inputs of `model`'s linear layers on `ids`: the RMS over linears and
    tokens of max|x| over the tensor / max|x_t| over the token."""
    import torch

    ratios = []

    def hook(_mod, args):
        a = args[0].detach().abs().amax(-1).flatten().double()
        ratios.append((a.max() / a.clamp_min(1e-30)).numpy())

    hs = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            model(torch.tensor([ids]), use_cache=False)
    finally:
        for h in hs:
            h.remove()
    return float(np.sqrt(np.mean(np.concatenate(ratios) ** 2)))


def onnx_export(model, path, sample_len: int = 7):
    """torch.onnx.export (TorchScript exporter, opset 17), input_ids -> logits, dynamic sequence length."""
    import torch
    import transformers.masking_utils as mu

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids):
            return self.m(input_ids=ids, use_cache=False).logits

    saved = mu.find_packed_sequence_indices  # uses aten::diff, which has no ONNX export; unpacked input
    mu.find_packed_sequence_indices = lambda position_ids: None
    try:
        torch.onnx.export(Logits(model), (torch.tensor([prompt(model.config.vocab_size, sample_len)]),), str(path),
                          dynamo=False, opset_version=17, input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {1: "seq"}, "logits": {1: "seq"}})
    finally:
        mu.find_packed_sequence_indices = saved
    return path


def ort_quantize(src, dst, per_channel: bool):
    """onnxruntime's quantize_dynamic, INT8 weights. reduce_range (7-bit weights) as onnxruntime
    advises for CPUs without VNNI: their u8 x s8 kernels (AVX2 VPMADDUBSW) saturate int16 pair sums
    of full-range weights, and the oracle itself drifts (per-channel weights here: logit cosine 0.995
    against the float graph with full range, 0.9997 with reduce_range)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel, reduce_range=True)
    return dst


def ort_logits(path, ids) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path)).run(None, {"input_ids": np.array([ids], np.int64)})[0][0]
