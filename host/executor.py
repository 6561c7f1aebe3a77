"""The CPU executor: runs an artifact's quantized program, op by op, with an INT8 KV cache.

It is the golden executor: every op is the function of edgestream.numerics (or a kernel proven
bit-identical to it), so the simulator and the board must reproduce its integers exactly.
"""

from __future__ import annotations

import os

import numpy as np

from edgestream import numerics as nx
from edgestream.artifact import Artifact
from edgestream.errors import InputError
from edgestream.host.kernels import Kernel, LinearWeights, get_kernel
from edgestream.ir import ModelConfig, Node


class KVCache:
    """Per layer: int8 K and V [kv_heads, capacity, head_dim] and their float32 scales."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, capacity: int):
        self.capacity = capacity
        shape = (layers, kv_heads, capacity, head_dim)
        self.kq = np.zeros(shape, np.int8)
        self.vq = np.zeros(shape, np.int8)
        self.dk = np.zeros(shape[:3], np.float32)
        self.dv = np.zeros(shape[:3], np.float32)


class CachedDecoder:
    """What every executor of a decoder program shares: the INT8 KV cache, the position, and the
    checks on incoming token ids. Subclasses set `cfg` and implement forward()."""

    cfg: ModelConfig
    cache: KVCache | None = None
    pos: int = 0

    def reset(self, capacity: int) -> None:
        c = self.cfg
        if capacity > c.max_position:
            raise InputError(f"context of {capacity} tokens exceeds the model's max_position {c.max_position}")
        if self.cache is None or self.cache.capacity < capacity:
            self.cache = KVCache(c.num_layers, c.num_kv_heads, c.head_dim, capacity)
        self.pos = 0

    def _checked_ids(self, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if self.cache is None or self.pos + len(ids) > self.cache.capacity:
            raise InputError(f"KV cache holds {0 if self.cache is None else self.cache.capacity} positions, "
                             f"{self.pos + len(ids)} needed (call reset with a larger capacity)")
        if ids.size and (ids.min() < 0 or ids.max() >= self.cfg.vocab_size):
            bad = int(ids[(ids < 0) | (ids >= self.cfg.vocab_size)][0])
            raise InputError(f"token id {bad} is outside the vocabulary [0, {self.cfg.vocab_size})")
        return ids

    def attend(self, q, k, v, layer: int, kernel=None) -> np.ndarray:
        """Append this step's K and V (INT8 per token and head) to the cache at pos.., then causal
        attention of q over the cache (docs/numerics.md). A kernel with `attention_heads` computes
        the same bits in one call; otherwise numerics.attention over all heads at once."""
        c, cache = self.cfg, self.cache
        t, d, p0 = q.shape[0], c.head_dim, self.pos
        end = p0 + t
        kq, dk = nx.quant_heads(k.reshape(t, c.num_kv_heads, d))
        vq, dv = nx.quant_heads(v.reshape(t, c.num_kv_heads, d))
        cache.kq[layer, :, p0:end] = kq.transpose(1, 0, 2)
        cache.vq[layer, :, p0:end] = vq.transpose(1, 0, 2)
        cache.dk[layer, :, p0:end] = dk.T
        cache.dv[layer, :, p0:end] = dv.T
        qq, dq = nx.quant_heads(q.reshape(t, c.num_heads, d))
        scale = np.float32(1.0 / np.sqrt(c.head_dim))
        pos = np.arange(p0, end)
        if hasattr(kernel, "attention_heads"):
            o = kernel.attention_heads(qq, dq, cache.kq[layer], cache.dk[layer], cache.vq[layer], cache.dv[layer],
                                       pos, end, scale)
            return o.reshape(t, c.num_heads * d)
        kvh = np.arange(c.num_heads) // (c.num_heads // c.num_kv_heads)
        o = nx.attention(qq.transpose(1, 0, 2), dq.T, cache.kq[layer][kvh, :end], cache.dk[layer][kvh, :end],
                         cache.vq[layer][kvh, :end], cache.dv[layer][kvh, :end], pos, scale)
        return o.transpose(1, 0, 2).reshape(t, c.num_heads * d)


class CpuExecutor(CachedDecoder):
    """fused: run each forward pass as one call of the kernel's fused step (C kernel: every op
    after the embedding, bit-identical to the op-by-op path) where the kernel has one; None reads
    $EDGESTREAM_FUSED (default 1; 0 runs op by op)."""

    def __init__(self, artifact: Artifact, kernel: Kernel | None = None, fused: bool | None = None):
        self.artifact = artifact
        self.graph = artifact.graph
        self.cfg = artifact.config
        self.kernel = kernel or get_kernel()
        t = self.graph.tensors
        # Linears that read the same quantized input with the same weight encoding (q/k/v, gate/up)
        # run as one matmul over their stacked rows: rows are independent, so the integers are the
        # same, and one call streams all their weights.
        self.linear: dict[str, tuple[int, int, np.ndarray]] = {}  # node -> (row0, rows, beta)
        self._group: dict[str, tuple[object, list[str]]] = {}  # first node -> (prepared, members)
        self._acc: dict[str, np.ndarray] = {}
        groups: dict[tuple, list] = {}
        for n in self.graph.nodes:
            if n.op == "qlinear":
                w = t[n.attrs["weight"]]
                groups.setdefault((tuple(n.inputs), w.encoding), []).append((n, w))
        for members in groups.values():
            w0 = members[0][1]
            kind = "ternary" if w0.encoding == "ternary" else "int"
            stacked = np.concatenate([np.asarray(w.data, dtype=np.int8) for _, w in members]) \
                if len(members) > 1 else np.ascontiguousarray(w0.data)
            name = "+".join(w.name for _, w in members)
            self._group[members[0][0].name] = (self.kernel.prepare(LinearWeights(name, kind, w0.bits, stacked)),
                                               [n.name for n, _ in members])
            del stacked
            row0 = 0
            for n, w in members:
                beta = np.ascontiguousarray(np.broadcast_to(w.scale.astype(np.float32), (w.shape[0],)))
                self.linear[n.name] = (row0, w.shape[0], beta)
                row0 += w.shape[0]
        # lm_head's quantizer and the head itself run on the last row only when just the next
        # token's logits are wanted.
        head = next(n for n in self.graph.nodes if n.outputs == ["logits"])
        self._head_from = next(i for i, n in enumerate(self.graph.nodes) if n.outputs[0] == head.inputs[0])
        self._gains = {n.attrs["gain"]: np.ascontiguousarray(t[n.attrs["gain"]].data, dtype=np.float32)
                       for n in self.graph.nodes if n.op == "norm_quant" and n.attrs.get("gain")}
        self.cache: KVCache | None = None
        self.pos = 0
        if fused is None:
            fused = os.environ.get("EDGESTREAM_FUSED", "1") not in ("0", "")
        self._plan = None
        if fused and hasattr(self.kernel, "fused_plan"):
            from edgestream.host.kernels.c_plan import Unsupported

            try:
                self._plan = self.kernel.fused_plan(self)
            except Unsupported:
                self._plan = None  # an op the fused step lacks: op by op, same bits

    @property
    def fused(self) -> bool:
        return self._plan is not None

    @property
    def kernel_name(self) -> str:
        return self.kernel.name

    def forward(self, ids: np.ndarray, last_only: bool = True) -> np.ndarray:
        """Run tokens `ids` at positions pos..pos+T-1, append to the KV cache, return float32 logits
        [T, vocab] (or [1, vocab] for the last token when last_only)."""
        ids = self._checked_ids(ids)
        if self._plan is not None and len(ids):
            x0 = self._op_embed(self.graph.nodes[0], ids)
            logits = self._plan.run(x0, self.pos, self.cache, last_only)
            self.pos += len(ids)
            return logits
        vals: dict[str, np.ndarray] = {"ids": ids}
        for i, n in enumerate(self.graph.nodes):
            args = [vals[v] for v in n.inputs]
            if last_only and i == self._head_from:
                args = [a[-1:] for a in args]
            out = getattr(self, "_op_" + n.op)(n, *args)
            for name, v in zip(n.outputs, out if isinstance(out, tuple) else (out,), strict=True):
                vals[name] = v
        self.pos += len(ids)
        return vals["logits"]

    # ---- ops (semantics: docs/numerics.md)
    def _op_embed(self, n: Node, ids):
        t = self.graph.tensors[n.attrs["table"]]
        return (t.data[ids].astype(np.float32) * t.scale[ids][:, None]).astype(np.float32)

    def _op_norm_quant(self, n: Node, x):
        g = n.attrs.get("gain")
        gain = self._gains[g] if g else None
        if hasattr(self.kernel, "norm_quant"):
            return self.kernel.norm_quant(x, gain, n.attrs.get("eps"))
        return nx.norm_quant(x, gain, n.attrs.get("eps"))

    def _op_qlinear(self, n: Node, q, s):
        if n.name in self._group:
            prepared, members = self._group[n.name]
            acc = self.kernel.matmul(q, prepared)
            for m in members:
                row0, rows, _ = self.linear[m]
                self._acc[m] = acc[:, row0 : row0 + rows]
        row0, rows, beta = self.linear[n.name]
        acc = self._acc.pop(n.name)
        return nx.dequant(acc, s, beta)

    def _op_rope(self, n: Node, x):
        d = self.cfg.head_dim
        pos = np.arange(self.pos, self.pos + x.shape[0])
        cos = self.graph.tensors[n.attrs["cos"]].data[pos]
        sin = self.graph.tensors[n.attrs["sin"]].data[pos]
        return nx.rope(x.reshape(x.shape[0], -1, d), cos, sin).reshape(x.shape)

    def _op_attention(self, n: Node, q, k, v):
        return self.attend(q, k, v, n.attrs["layer"], self.kernel)

    def _op_relu2_mul(self, n: Node, g, u):
        return nx.relu2_mul(g, u)

    def _op_silu_mul(self, n: Node, g, u):
        return nx.silu_mul(g, u)

    def _op_add(self, n: Node, a, b):
        return (a + b).astype(np.float32)
