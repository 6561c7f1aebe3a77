"""The C kernel's aarch64/NEON path, cross-compiled with aarch64-linux-gnu-gcc and run under
qemu-aarch64-static: a standalone driver (host/kernels/csrc/test_driver.c) checks test vectors made
by numpy, bit for bit, on the NEON and scalar paths with 1 and 2 threads. This proves the board-side
fallback here; timings under qemu mean nothing, so nothing here is a benchmark.

The fused decoder step (csrc/esplan.c) runs there too: a small random model's plan, built by
host/kernels/c_plan.py, is written out with its arena (weights, tables, slots, KV cache) and the
driver runs prefill and decode steps on every path, comparing logits and the KV cache with numpy's.

`make sysdeps` installs gcc-aarch64-linux-gnu and qemu-user-static; without them the test skips
locally and fails on CI ($CI set).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgestream import numerics as nx
from edgestream.host.kernels.c_kernel import pack_codes
from edgestream.tlmm import dense_matmul

CSRC = Path(__file__).resolve().parents[1] / "host" / "kernels" / "csrc"
CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64-static"


def _tools() -> None:
    missing = [t for t in (CC, QEMU) if shutil.which(t) is None]
    if missing:
        msg = f"{', '.join(missing)} missing (make sysdeps installs gcc-aarch64-linux-gnu, qemu-user-static)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _i64(*v: int) -> bytes:
    return struct.pack(f"<{len(v)}q", *v)


def _matmul_record(rng, n: int, k: int, t: int, kind: str, bits: int) -> bytes:
    if kind == "ternary":
        w = rng.integers(-1, 2, size=(n, k)).astype(np.int8)
        sb, off = 2, 1
    else:
        w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(n, k)).astype(np.int8)
        sb = 2 if bits <= 2 else 4 if bits <= 4 else 8
        off = 1 << (sb - 1)
    q = rng.integers(-128, 128, size=(t, k)).astype(np.int8)
    if t > 1:
        q[0] = -128  # extremes
        w[0] = w.min()
    packed = pack_codes(w, sb, off)
    ref = dense_matmul(q, w).astype("<i4")
    return _i64(1, n, k, t, sb, off, *packed.shape) + packed.tobytes() + q.tobytes() + ref.tobytes()


def _extreme_record(kind: str, bits: int, k: int) -> bytes:
    """The largest codes against all -128 / all +127 / alternating activations (the int16 bounds of
    the NEON 2-bit and 8-bit GEMVs), 1 and 3 tokens in one record each."""
    lo, hi = (-1, 1) if kind == "ternary" else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    alt_w = np.resize(np.array([hi, lo], np.int8), k)
    w = np.stack([np.full(k, hi, np.int8), np.full(k, lo, np.int8), alt_w, np.zeros(k, np.int8), alt_w[::-1]])
    alt_q = np.resize(np.array([-128, 127], np.int8), k)
    q = np.stack([np.full(k, -128, np.int8), np.full(k, 127, np.int8), alt_q])
    sb = 2 if bits <= 2 else 8
    off = 1 if kind == "ternary" else 1 << (sb - 1)
    packed = pack_codes(w, sb, off)
    out = b""
    for qt in (q[:1], q):
        ref = dense_matmul(qt, w).astype("<i4")
        out += _i64(1, w.shape[0], k, qt.shape[0], sb, off, *packed.shape) + packed.tobytes() + qt.tobytes()
        out += ref.tobytes()
    return out


def _norm_record(rng, rows: int, k: int, with_g: bool, scale: float) -> bytes:
    x = (rng.standard_normal((rows, k)) * scale).astype(np.float32)
    x[0, : min(k, 3)] = 0.0
    g = (rng.standard_normal(k) * 0.5 + 1).astype(np.float32) if with_g else None
    eps = 1e-6 if with_g else None
    q, s = nx.norm_quant(x, g, eps)
    out = _i64(2, rows, k, int(with_g)) + struct.pack("<d", eps or 0.0) + x.tobytes()
    if with_g:
        out += g.tobytes()
    return out + q.tobytes() + s.astype("<f4").tobytes()


def _attn_record(rng, t: int, s: int, d: int) -> bytes:
    qq, dq = nx.quant_heads(rng.standard_normal((t, d)).astype(np.float32) * 3)
    kq, dk = nx.quant_heads(rng.standard_normal((s, d)).astype(np.float32) * 3)
    vq, dv = nx.quant_heads(rng.standard_normal((s, d)).astype(np.float32))
    pos = np.arange(s - t, s, dtype=np.int64)
    scale = np.float32(1 / np.sqrt(d))
    o = nx.attention(qq, dq, kq, dk, vq, dv, pos, scale)
    arrs = [qq, kq, vq, dq.astype("<f4"), dk.astype("<f4"), dv.astype("<f4"), pos, o.astype("<f4")]
    return _i64(3, t, s, d) + struct.pack("<f", scale) + b"".join(a.tobytes() for a in arrs)


def _plan_record(tmp: Path, arch: str, shape) -> bytes:
    """A fused plan over one arena: every pointer in the op records becomes 1 + its arena offset."""
    import ctypes

    import edgestream
    from edgestream.artifact import read_artifact
    from edgestream.host.executor import CpuExecutor, KVCache
    from edgestream.host.kernels import c_kernel as ck
    from edgestream.host.kernels import get_kernel
    from edgestream.host.kernels.c_plan import EsOp
    from edgestream.synth import make_checkpoint

    art = read_artifact(edgestream.compile_model(make_checkpoint(tmp / arch, shape, arch=arch, seed=3,
                                                                 tokenizer=False), tmp / f"{arch}.esa"))
    cap = 16
    ex = CpuExecutor(art, ck.CKernel("scalar"))
    ref = CpuExecutor(art, get_kernel("numpy"))
    ref.reset(cap)
    plan = ex._plan
    rng = np.random.default_rng(4)
    steps, pos = [], 0
    for t, last_only in [(6, False), (1, True), (3, True), (1, True)]:
        ids = rng.integers(0, art.config.vocab_size, t)
        logits = ref.forward(ids, last_only=last_only)
        x0 = ex._op_embed(ex.graph.nodes[0], ids)
        steps.append((t, pos, plan.head_from if last_only else len(plan.body), x0, logits))
        pos += t
    plan._grow(max(s[0] for s in steps))
    c = art.config
    kv = KVCache(c.num_layers, c.num_kv_heads, c.head_dim, cap)
    logits_buf = np.zeros((max(s[4].shape[0] for s in steps), c.vocab_size), np.float32)
    acc = np.zeros(max(s[0] for s in steps) * max(plan.max_n, c.vocab_size), np.int32)
    plan._ops[plan.logits_op].out[0] = logits_buf.ctypes.data
    arrays = [*plan._bufs, *plan._keep, *ex._gains.values(), *(b for _, _, b in ex.linear.values()),
              *(p.packed for p, _ in ex._group.values()), logits_buf, acc, kv.kq, kv.dk, kv.vq, kv.dv]
    offs, arena, at = {}, [], 0
    for a in arrays:
        if id(a) in offs:
            continue
        pad = -at % 64
        arena.append(b"\0" * pad + a.tobytes())
        offs[id(a)] = at + pad
        at += pad + a.nbytes
    spans = sorted((a.ctypes.data, a.ctypes.data + max(a.nbytes, 1), offs[id(a)]) for a in arrays)

    def off(p):
        if not p:
            return 0
        for lo, hi, o in spans:
            if lo <= p < hi:
                return 1 + o + (p - lo)
        raise AssertionError(f"pointer {p:#x} outside the arena")

    ops = (EsOp * len(plan.body))()
    for i in range(len(plan.body)):
        ctypes.pointer(ops[i])[0] = plan._ops[i]
        o = ops[i]
        for j in range(3):
            o.inp[j] = off(o.inp[j])
        for j in range(4):
            o.out[j], o.beta[j] = off(o.out[j]), off(o.beta[j])
        o.w, o.w2 = off(o.w), off(o.w2)
    x0_off = off(plan._bufs[plan.slot_of[plan.input]].ctypes.data) - 1
    head = _i64(4, ctypes.sizeof(EsOp), len(plan.body), at, x0_off, offs[id(logits_buf)], offs[id(acc)],
                offs[id(kv.kq)], offs[id(kv.dk)], offs[id(kv.vq)], offs[id(kv.dv)], kv.kq.nbytes, kv.dk.nbytes,
                cap, len(steps))
    out = [head, b"".join(arena), bytes(ops)]
    for t, p0, last_from, x0, logits in steps:
        out += [_i64(t, p0, last_from, x0.nbytes, logits.nbytes), x0.tobytes(), logits.astype("<f4").tobytes()]
    c_ = ref.cache
    out.append(b"".join(a.tobytes() for a in (c_.kq, c_.dk, c_.vq, c_.dv)))
    return b"".join(out)


def _build(tmp_path: Path) -> Path:
    exe = tmp_path / "es_test_a64"
    cmd = [CC, "-O2", "-std=gnu11", "-ffp-contract=off", "-pthread", "-static", "-I", str(CSRC),
           str(CSRC / "eskernel.c"), str(CSRC / "esplan.c"), str(CSRC / "test_driver.c"), "-lm",
           "-o", str(exe)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def _header() -> list[bytes]:
    return [b"ESTV", _i64(1), nx.EXP2_T.astype("<f4").tobytes(), nx.EXP2_D.astype("<f4").tobytes()]


def test_fused_plan_under_qemu(tmp_path: Path) -> None:
    """ReLU^2 with GQA and SwiGLU with MQA, prefill then decode, NEON and scalar, 1 and 2 threads."""
    from edgestream.synth import Shape

    _tools()
    exe = _build(tmp_path)
    recs = _header()
    recs.append(_plan_record(tmp_path, "bitnet", Shape(2, 64, 160, 4, 2, 300, 64)))
    recs.append(_plan_record(tmp_path, "llama", Shape(1, 96, 200, 6, 1, 257, 64)))
    recs.append(_i64(0))
    vec = tmp_path / "plan.bin"
    vec.write_bytes(b"".join(recs))
    r = subprocess.run([QEMU, str(exe), str(vec)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "isa paths: 0 4" in r.stdout, r.stdout
    assert "2 cases, 0 failures" in r.stdout, r.stdout


def test_neon_path_under_qemu(tmp_path: Path) -> None:
    _tools()
    exe = _build(tmp_path)

    rng = np.random.default_rng(8)
    recs = _header()
    for kind, bits in [("ternary", 2), ("int", 8), ("int", 4), ("int", 2), ("int", 3)]:
        for n, k, t in [(1, 1, 1), (13, 255, 1), (9, 300, 3), (40, 1037, 6), (70, 513, 1)]:
            recs.append(_matmul_record(rng, n, k, t, kind, bits))
    # the NEON 2-bit and 8-bit GEMVs: K around the 256-weight 2-bit block, its 4-block widening group
    # and the 16-byte step, rows around the 4-row tile and the 8-row padding, then the extremes
    for kind, bits in [("ternary", 2), ("int", 2), ("int", 8), ("int", 6)]:
        for i, k in enumerate([16, 17, 255, 256, 257, 1023, 1024, 1025, 2049]):
            n = [3, 4, 5, 8, 9, 12, 17][i % 7]
            recs.append(_matmul_record(rng, n, k, 1 + i % 3, kind, bits))
        for k in (1024, 4099):
            recs.append(_extreme_record(kind, bits, k))
    recs.append(_extreme_record("int", 8, 65535))
    for rows, k, with_g, scale in [
        (1, 1, True, 1.0),
        (3, 77, True, 1e-3),
        (5, 300, False, 1e3),
        (9, 64, True, 1e-30),
    ]:
        recs.append(_norm_record(rng, rows, k, with_g, scale))
    for t, s, d in [(1, 1, 8), (1, 37, 64), (5, 9, 16), (12, 40, 32)]:
        recs.append(_attn_record(rng, t, s, d))
    recs.append(_i64(0))
    vec = tmp_path / "vectors.bin"
    vec.write_bytes(b"".join(recs))

    r = subprocess.run([QEMU, str(exe), str(vec)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "isa paths: 0 4" in r.stdout, r.stdout  # scalar and NEON both ran
    assert " 0 failures" in r.stdout, r.stdout
