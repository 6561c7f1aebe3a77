"""The fused decoder step (one C call per forward pass, host/kernels/c_plan.py + csrc/esplan.c) gives
the op-by-op executor's logits and KV cache bit for bit, and both equal the numpy reference: ReLU^2
(BitNet, with sub-layer norms) and SwiGLU (Llama) FFNs, GQA and plain multi-head attention, prefill
in one and in several calls, last-token and all-token logits, every ISA path and 1 or 2 threads."""

from __future__ import annotations

import numpy as np
import pytest
from ckernel_required import require_c_kernel

import edgestream
from edgestream.artifact import read_artifact
from edgestream.host.executor import CpuExecutor
from edgestream.host.kernels import c_kernel as ck
from edgestream.host.kernels import get_kernel
from edgestream.synth import Shape, make_checkpoint

require_c_kernel()

MODELS = {  # arch, shape (layers, hidden, ffn, heads, kv_heads, vocab, max_position)
    "bitnet-gqa": ("bitnet", Shape(2, 64, 160, 4, 2, 300, 64)),
    "llama-gqa": ("llama", Shape(2, 96, 200, 6, 2, 257, 64)),
    "bitnet-mha": ("bitnet", Shape(3, 128, 96, 2, 2, 130, 64)),
    "llama-mqa": ("llama", Shape(1, 64, 128, 4, 1, 200, 64)),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def artifact(request, tmp_path_factory):
    arch, shape = MODELS[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    ck_dir = make_checkpoint(tmp / "ck", shape, arch=arch, seed=len(request.param), tokenizer=False)
    return read_artifact(edgestream.compile_model(ck_dir, tmp / "m.esa"))


def _run(ex: CpuExecutor, rng_seed: int, vocab: int) -> list[np.ndarray]:
    """A prompt in two chunks (all-token logits, then last-token), 4 decode steps and a 3-token
    chunk, then a reset to a larger context (a new cache) and one more prompt."""
    rng = np.random.default_rng(rng_seed)
    out = []
    ex.reset(24)
    out.append(ex.forward(rng.integers(0, vocab, 7), last_only=False))
    out.append(ex.forward(rng.integers(0, vocab, 5)))
    for _ in range(4):
        out.append(ex.forward(rng.integers(0, vocab, 1)))
    out.append(ex.forward(rng.integers(0, vocab, 3)))
    out += [ex.cache.kq.copy(), ex.cache.dk.copy(), ex.cache.vq.copy(), ex.cache.dv.copy()]
    ex.reset(48)
    out.append(ex.forward(rng.integers(0, vocab, 30), last_only=False))
    out.append(ex.forward(rng.integers(0, vocab, 1)))
    return out


def test_fused_equals_op_by_op_and_numpy(artifact) -> None:
    vocab = artifact.config.vocab_size
    ref = _run(CpuExecutor(artifact, get_kernel("numpy")), 1, vocab)
    for isa in ck.available_isas():
        for threads in (1, 2):
            kern = ck.CKernel(isa, threads)
            fused = CpuExecutor(artifact, kern)
            assert fused.fused, "the fused step must cover this program"
            op = CpuExecutor(artifact, kern, fused=False)
            assert not op.fused
            got_op, got_fused = _run(op, 1, vocab), _run(fused, 1, vocab)
            for i, (a, b, r) in enumerate(zip(got_fused, got_op, ref, strict=True)):
                assert a.dtype == r.dtype and a.shape == r.shape, (isa, threads, i)
                np.testing.assert_array_equal(a, b, err_msg=f"fused vs op-by-op, {isa}, {threads} threads, #{i}")
                np.testing.assert_array_equal(a, r, err_msg=f"fused vs numpy, {isa}, {threads} threads, #{i}")


def test_fused_is_the_default_and_env_turns_it_off(artifact, monkeypatch) -> None:
    assert CpuExecutor(artifact, get_kernel("c")).fused
    assert not CpuExecutor(artifact, get_kernel("numpy")).fused  # the reference always runs op by op
    monkeypatch.setenv("EDGESTREAM_FUSED", "0")
    assert not CpuExecutor(artifact, get_kernel("c")).fused


def test_generate_through_the_session_is_unchanged(artifact, tmp_path) -> None:
    """Greedy generation through the public API: same tokens and logits fused and op by op."""
    ex_f = CpuExecutor(artifact, get_kernel("c"))
    ex_o = CpuExecutor(artifact, get_kernel("c"), fused=False)
    seq = []
    for ex in (ex_f, ex_o):
        ex.reset(20)
        toks, logits = [3, 1, 4, 1, 5], []
        lg = ex.forward(np.array(toks))
        for _ in range(6):
            logits.append(lg)
            toks.append(int(np.argmax(lg[-1])))
            lg = ex.forward(np.array(toks[-1:]))
        seq.append((toks, np.stack(logits)))
    assert seq[0][0] == seq[1][0]
    np.testing.assert_array_equal(seq[0][1], seq[1][1])
