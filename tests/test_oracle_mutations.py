"""The LM oracle comparisons can fail: with the CPU executor's reference attention broken in the ways
that uniform attention hides, the very comparisons of tests/test_hf_oracle.py (transformers) and
tests/test_onnx_lm.py (onnxruntime), with their models, prompts and budgets, must report failure, and
the logit cosine must drop below its bound.

Mutations, each patched into edgestream.numerics for one test (the numpy kernel runs
numerics.attention itself; the C kernel's fused attention would bypass the patch):
  rope_removed    rope() returns its input
  rope_reversed   rope() turns by -angle (sin negated)
  q_zeroed        attention() gets all-zero INT8 queries (uniform attention over the keys)
  scale_1_over_d  attention() scales scores by 1/D instead of 1/sqrt(D)
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle_cases import (
    DEMO,
    FLOAT_ORACLE,
    QK_GAIN,
    QUANTIZED_ORACLE,
    SMALL,
    bitnet_online,
    compare,
    demo_prompt,
    demo_transformers,
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
from edgestream import numerics as nx

IDS = prompt(SMALL["vocab_size"])
_rope, _attention = nx.rope, nx.attention
MUTATIONS = {
    "rope_removed": ("rope", lambda x, cos, sin: np.asarray(x, np.float32)),
    "rope_reversed": ("rope", lambda x, cos, sin: _rope(x, cos, -sin)),
    "q_zeroed": ("attention", lambda qq, *rest: _attention(np.zeros_like(qq), *rest)),
    "scale_1_over_d": ("attention", lambda *a: _attention(*a[:-1], np.float32(a[-1] * a[-1]))),
}


def _case(tmp, name, src, ids, want, rel, **kw):
    art = edgestream.compile_model(src, tmp / f"{name}.esa", **kw)
    return name, art, ids, want, rel


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """The oracle comparisons, built exactly as their own test modules build them (same seeds)."""
    tmp = tmp_path_factory.mktemp("mutations")
    out = {}
    m = tiny_bitnet(0, QK_GAIN["ternary"])
    m.save_pretrained(tmp / "bitnet")
    out["hf_bitnet"] = _case(tmp, "hf_bitnet", tmp / "bitnet", IDS,
                             *torch_oracle(bitnet_online(m), IDS, QUANTIZED_ORACLE))
    m = tiny_llama(1, QK_GAIN["float"], tie_word_embeddings=False)
    m.save_pretrained(tmp / "llama")
    out["hf_llama_int8"] = _case(tmp, "hf_llama_int8", tmp / "llama", IDS, *torch_oracle(m, IDS, FLOAT_ORACLE),
                                 quant="int8")
    ids = demo_prompt()
    out["hf_demo"] = _case(tmp, "hf_demo", DEMO, ids, *torch_oracle(demo_transformers(), ids, QUANTIZED_ORACLE))
    llama = tiny_llama(3, QK_GAIN["float"])
    f = onnx_export(llama, tmp / "llama.onnx")
    out["onnx_llama_int8"] = _case(tmp, "onnx_llama_int8", f, IDS, ort_logits(f, IDS),
                                   torch_oracle(llama, IDS, FLOAT_ORACLE)[1], quant="int8")
    bitnet = tiny_bitnet(4, QK_GAIN["float"])
    q = ort_quantize(onnx_export(bitnet, tmp / "bitnet.onnx"), tmp / "bitnet_q.onnx", False)
    out["onnx_bitnet_q"] = _case(tmp, "onnx_bitnet_q", q, IDS, ort_logits(q, IDS),
                                 torch_oracle(bitnet, IDS, ort_quantized(tensor_ratio(bitnet, IDS)))[1], quant="auto")
    return out


ORACLES = ["hf_bitnet", "hf_llama_int8", "hf_demo", "onnx_llama_int8", "onnx_bitnet_q"]


@pytest.mark.parametrize("oracle", ORACLES)
def test_unmutated_numpy_reference_passes(cases, oracle):
    """The control: the numpy reference (which the mutations patch) passes each comparison."""
    name, art, ids, want, rel = cases[oracle]
    v = compare(edgestream.load(art, kernel="numpy").forward(ids), want, rel, name)
    print(v)
    assert v.ok, str(v)


@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize("oracle", ORACLES)
def test_mutation_fails_oracle(cases, oracle, mutation, monkeypatch):
    name, art, ids, want, rel = cases[oracle]
    attr, fn = MUTATIONS[mutation]
    calls = []

    def counted(*a):
        calls.append(1)
        return fn(*a)

    monkeypatch.setattr(nx, attr, counted)
    v = compare(edgestream.load(art, kernel="numpy").forward(ids), want, rel, f"{name} with {mutation}")
    print(v)
    assert calls, f"the mutated numerics.{attr} never ran"
    assert "cosine mean" in v.failures, str(v)
