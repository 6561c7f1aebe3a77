"""The fused decoder step: a CPU executor's program (everything after the embedding) turned into one
array of C op records (es_op, csrc/eskernel.h) that csrc/esplan.c runs in a single call per forward
pass, with no Python between ops. Bit-identical to the op-by-op executor (tests/test_fused_plan.py).

Buffers: every value of the program gets a slot of T rows; slots are reused once a value's last
reader has run (liveness in program order), so a 30-layer model needs a handful of buffers. They
grow when a call brings more tokens than the last one.
"""

from __future__ import annotations

import ctypes

import numpy as np

from edgestream.host.kernels.c_kernel import CKernel, PackedWeights

_OPS = {"norm_quant": 1, "qlinear": 2, "rope": 3, "attention": 4, "relu2_mul": 5, "silu_mul": 6, "add": 7}
_MEMBERS = 4
_P = ctypes.c_void_p
_I64 = ctypes.c_int64


class EsOp(ctypes.Structure):
    _fields_ = [
        ("op", ctypes.c_int32), ("full_in", ctypes.c_int32), ("k", _I64), ("n", _I64),
        ("inp", _P * 3), ("in_row_bytes", _I64 * 3), ("out", _P * _MEMBERS), ("w", _P), ("w2", _P),
        ("beta", _P * _MEMBERS), ("rows", _I64 * _MEMBERS),
        ("np_rows", _I64), ("kpb", _I64), ("bits", _I64), ("offset", _I64),
        ("layer", _I64), ("heads", _I64), ("kv_heads", _I64), ("head_dim", _I64),
        ("eps", ctypes.c_double), ("scale", ctypes.c_float), ("pad", ctypes.c_int32),
    ]  # fmt: skip


class Unsupported(Exception):
    """The program has an op the fused step does not implement: the executor runs it op by op."""


class FusedPlan:
    """Built once per executor (`CpuExecutor`, whose prepared weights, scales and gains it shares)."""

    def __init__(self, ex, kernel: CKernel):
        lib = kernel._lib
        if not hasattr(lib, "es_run_plan"):
            raise Unsupported("library without es_run_plan")
        lib.es_run_plan.restype = ctypes.c_int
        lib.es_run_plan.argtypes = [_P, _I64, _I64, _I64, _I64, _P, _P, _P, _P, _I64, _P, ctypes.c_int, ctypes.c_int]
        self._lib, self._kernel, self._ex = lib, kernel, ex
        c = ex.cfg
        nodes = ex.graph.nodes
        if not nodes or nodes[0].op != "embed":
            raise Unsupported("the program does not start with the embedding")
        self.input = nodes[0].outputs[0]
        if nodes[ex._head_from].op == "embed":
            raise Unsupported("the LM head reads the embedding")
        # one record per op; a stacked linear group (q/k/v, gate/up) is one record at its first
        # member, which writes every member's output
        members_of = {first: members for first, (_, members) in ex._group.items()}
        grouped = {m for ms in members_of.values() for m in ms[1:]}
        by_name = {n.name: n for n in nodes}
        body, outs = [], []
        head_node = nodes[ex._head_from].name
        self.head_from = None
        for n in nodes[1:]:
            if n.op not in _OPS:
                raise Unsupported(f"op {n.op}")
            if n.name in grouped:
                continue
            if n.name == head_node:
                self.head_from = len(body)
            body.append(n)
            outs.append([by_name[m].outputs[0] for m in members_of[n.name]] if n.op == "qlinear" else list(n.outputs))
        if self.head_from is None:
            raise Unsupported("the LM head's input is produced inside a stacked group")
        self.logits_op = next(i for i, o in enumerate(outs) if "logits" in o)
        # value -> (dtype, row width); the embedding's output is the hidden state
        info: dict[str, tuple[np.dtype, int]] = {self.input: (np.dtype(np.float32), c.hidden_size)}
        for n, o in zip(body, outs, strict=True):
            w = info[n.inputs[0]][1]
            if n.op == "norm_quant":
                info[o[0]] = (np.dtype(np.int8), w)
                info[o[1]] = (np.dtype(np.float32), 1)
            elif n.op == "qlinear":
                for m, v in zip(members_of[n.name], o, strict=True):
                    info[v] = (np.dtype(np.float32), ex.linear[m][1])
            elif n.op == "attention":
                info[o[0]] = (np.dtype(np.float32), c.num_heads * c.head_dim)
            else:
                info[o[0]] = (np.dtype(np.float32), w)
        self.info = info
        # liveness: each value's slot is free again after its last reader
        last_use: dict[str, int] = {}
        for i, n in enumerate(body):
            for v in n.inputs:
                last_use[v] = i
        produced_at = {self.input: -1}
        slots: list[tuple[np.dtype, int]] = []  # (dtype, width) of each slot
        free: dict[tuple, list[int]] = {}
        self.slot_of: dict[str, int] = {}

        def alloc(v: str) -> None:
            key = info[v]
            lst = free.get(key)
            if lst:
                self.slot_of[v] = lst.pop()
            else:
                slots.append(key)
                self.slot_of[v] = len(slots) - 1

        alloc(self.input)
        for i, n in enumerate(body):
            for v in outs[i]:
                produced_at[v] = i
                if v != "logits":
                    alloc(v)
            for v in set(n.inputs):
                if last_use.get(v) == i:
                    free.setdefault(info[v], []).append(self.slot_of[v])
        self.slots = slots
        self.body, self.outs = body, outs
        self.produced_at = produced_at
        self.max_n = max((ex._group[n.name][0].n for n in body if n.op == "qlinear" and n.name in ex._group),
                         default=1)
        self.vocab = c.vocab_size
        self._keep: list[np.ndarray] = []  # arrays the records point to (gains, scales, tables)
        self._static = [self._static_record(i, n) for i, n in enumerate(body)]
        self._cap = 0
        self._bufs: list[np.ndarray] = []
        self._acc = np.empty(0, np.int32)
        self._ops = None

    def _static_record(self, i: int, n) -> EsOp:
        ex, c, t = self._ex, self._ex.cfg, self._ex.graph.tensors
        o = EsOp()
        o.op = _OPS[n.op]
        o.k = self.info[n.inputs[0]][1]
        o.n = self.info[self.outs[i][0]][1] if n.op != "qlinear" else 0
        for j, v in enumerate(n.inputs):
            if self.produced_at[v] < self.head_from:
                o.full_in |= 1 << j
            dt, w = self.info[v]
            o.in_row_bytes[j] = dt.itemsize * w
        if n.op == "norm_quant":
            g = n.attrs.get("gain")
            if g:
                o.w = ex._gains[g].ctypes.data
                o.eps = float(n.attrs.get("eps") or 0.0)
        elif n.op == "qlinear":
            if n.name not in ex._group:
                raise Unsupported("a stacked linear group that does not start at its first member")
            pw, members = ex._group[n.name]
            if not isinstance(pw, PackedWeights) or len(members) > _MEMBERS:
                raise Unsupported("linear group")
            o.n = pw.n
            o.w = pw.packed.ctypes.data
            o.np_rows, o.kpb = pw.packed.shape
            o.bits, o.offset = pw.bits, pw.offset
            for m, name in enumerate(members):
                _, rows, beta = ex.linear[name]
                o.rows[m] = rows
                o.beta[m] = beta.ctypes.data
        elif n.op == "rope":
            cos = np.ascontiguousarray(t[n.attrs["cos"]].data, dtype=np.float32)
            sin = np.ascontiguousarray(t[n.attrs["sin"]].data, dtype=np.float32)
            self._keep += [cos, sin]
            o.w, o.w2 = cos.ctypes.data, sin.ctypes.data
            o.head_dim = c.head_dim
            o.heads = self.info[n.inputs[0]][1] // c.head_dim
        elif n.op == "attention":
            o.layer = n.attrs["layer"]
            o.heads, o.kv_heads, o.head_dim = c.num_heads, c.num_kv_heads, c.head_dim
            o.scale = float(np.float32(1.0 / np.sqrt(c.head_dim)))
            if i >= self.head_from:
                raise Unsupported("attention after the LM head's input")
        return o

    def _grow(self, cap: int) -> None:
        self._cap = cap
        self._bufs = [np.empty(cap * w, dt) for dt, w in self.slots]
        ops = (EsOp * len(self.body))()
        for i, n in enumerate(self.body):
            ctypes.pointer(ops[i])[0] = self._static[i]
            o = ops[i]
            for j, v in enumerate(n.inputs):
                o.inp[j] = self._bufs[self.slot_of[v]].ctypes.data
            for j, v in enumerate(self.outs[i]):
                if v != "logits":
                    o.out[j] = self._bufs[self.slot_of[v]].ctypes.data
        self._ops = ops

    def profile(self, enable: bool = True) -> dict[str, tuple[float, int]]:
        """Starts (or stops) timing every op by kind; returns {op: (seconds, calls)} since the last call."""
        f = self._lib.es_plan_profile
        f.restype, f.argtypes = None, [ctypes.c_int, _P, _P]
        ns, calls = np.zeros(8), np.zeros(8)
        f(int(enable), ns.ctypes.data, calls.ctypes.data)
        return {op: (ns[i] * 1e-9, int(calls[i])) for op, i in _OPS.items() if calls[i]}

    def run(self, x0: np.ndarray, pos: int, cache, last_only: bool) -> np.ndarray:
        """x0 float32 [T, hidden] (the embedded tokens at positions pos..) -> logits [T or 1, vocab]."""
        t = x0.shape[0]
        if t > self._cap:
            self._grow(t)
        xb = self._bufs[self.slot_of[self.input]]
        xb[: x0.size] = x0.reshape(-1)
        last_from = self.head_from if last_only else len(self.body)
        te_head = 1 if last_only else t
        need = max(t * self.max_n, te_head * self.vocab)
        if self._acc.size < need:
            self._acc = np.empty(need, np.int32)
        logits = np.empty((te_head, self.vocab), np.float32)
        self._ops[self.logits_op].out[0] = logits.ctypes.data
        rc = self._lib.es_run_plan(
            ctypes.addressof(self._ops), len(self.body), last_from, t, pos,
            cache.kq.ctypes.data, cache.dk.ctypes.data, cache.vq.ctypes.data, cache.dv.ctypes.data,
            cache.capacity, self._acc.ctypes.data, self._kernel.isa_id, self._kernel.threads,
        )  # fmt: skip
        if rc != 0:
            raise RuntimeError(f"fused decoder step failed ({rc})")
        return logits
