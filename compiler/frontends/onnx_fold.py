"""Exact folding of a quantized layer's float epilogue into integer thresholds (FINN's MultiThreshold).

The chain `qmatmul -> dequant_acc -> [transpose NHWC->NCHW] -> mul(A) -> add(B) -> bipolar_quant |
qonnx_quant` (a Gemm or Conv, its inference BatchNormalization, the next activation quantizer) is, per
output channel, a function of the integer accumulator alone: q = Q(float32(float32(float32(acc) * f) *
A) + B) with f = float32(sa * sw). Every step is monotone in acc (a float32 product or sum with a
constant, rounding, clamping), so q is a monotone step function of acc and equals
`base + step * #{j : acc >= T_j}` (or `acc <= T_j` where it decreases) for integer thresholds T_j found
here by bisection over the accumulator's whole reachable range, evaluating that very float32 chain.
The fold therefore gives the same integers as computing the chain for every accumulator the layer can
produce -- and no float work is left between two accelerated layers.
"""

from __future__ import annotations

import numpy as np

from edgestream.graph_numerics import qonnx_round
from edgestream.ir import Graph, Node, Tensor

F32 = np.float32
MAX_LEVELS = 16  # 4-bit activations and below: a threshold table per channel stays small


def _acc_bound(graph: Graph, mm: Node) -> int:
    """max |acc| of a qmatmul over every int8/uint8 activation and zero point."""
    t = graph.tensors
    w = t[mm.attrs["weight"]].data.astype(np.int64)
    wz = t[mm.attrs["w_zero"]].data.astype(np.int64) if mm.attrs.get("w_zero") else np.zeros(w.shape[0], np.int64)
    b = t[mm.attrs["bias"]].data.astype(np.int64) if mm.attrs.get("bias") else np.zeros(w.shape[0], np.int64)
    return int((255 * np.abs(w - wz[:, None]).sum(axis=1) + np.abs(b)).max())


def _const(graph: Graph, prod: dict, v: str) -> np.ndarray | None:
    n = prod.get(v)
    if n is None or n.op != "const":
        return None
    t = graph.tensors[n.attrs["value"]]
    return np.asarray(t.data).astype(n.attrs.get("dtype", "float32")).reshape(n.attrs.get("shape", t.shape))


def _per_channel(v: np.ndarray | None, m: int, nchw: bool) -> np.ndarray | None:
    """A [M] view of a constant broadcast along the channel axis (last for [.., M], [M, 1, 1] for NCHW)."""
    if v is None:
        return None
    if v.size == 1:
        return np.full(m, v.reshape(-1)[0], F32)
    want = (m, 1, 1) if nchw else (m,)
    if v.shape[-len(want):] != want or v.size != m:
        return None
    return v.reshape(m).astype(F32)


def fold_thresholds(graph: Graph) -> Graph:
    nodes = graph.nodes
    prod = {o: n for n in nodes for o in n.outputs}
    uses: dict[str, int] = {}
    for n in nodes:
        for v in n.inputs:
            uses[v] = uses.get(v, 0) + 1
    for o in graph.outputs:
        uses[o] = uses.get(o, 0) + 1

    def only(v: str, op: str) -> Node | None:
        n = prod.get(v)
        return n if n is not None and n.op == op and uses.get(v, 0) == 1 else None

    drop: set[int] = set()
    new: dict[int, list[Node]] = {}
    for q in nodes:
        if q.op not in ("bipolar_quant", "qonnx_quant"):
            continue
        add = only(q.inputs[0], "add")
        mul = add and only(add.inputs[0], "mul")
        tr = mul and only(mul.inputs[0], "transpose")
        nchw = bool(tr) and tr.attrs.get("perm") == [0, 3, 1, 2]
        dq = mul and only(tr.inputs[0] if nchw else mul.inputs[0], "dequant_acc")
        mm = dq and only(dq.inputs[0], "qmatmul")
        if not mm or (tr and not nchw):
            continue
        sw = graph.tensors[dq.attrs["w_scale"]].data.astype(F32).reshape(-1)
        m = graph.tensors[mm.attrs["weight"]].data.shape[0]
        sw = np.broadcast_to(sw, (m,)) if sw.size in (1, m) else None
        sa = _const(graph, prod, dq.inputs[1])
        a = _per_channel(_const(graph, prod, mul.inputs[1]), m, nchw)
        b = _per_channel(_const(graph, prod, add.inputs[1]), m, nchw)
        if sw is None or sa is None or sa.size != 1 or a is None or b is None:
            continue
        if q.op == "qonnx_quant":
            s, z = _const(graph, prod, q.inputs[1]), _const(graph, prod, q.inputs[2])
            lo, hi = int(q.attrs["lo"]), int(q.attrs["hi"])
            if s is None or z is None or s.size != 1 or z.size != 1 or hi - lo + 1 > MAX_LEVELS:
                continue
            s32, z32, mode = F32(s.reshape(-1)[0]), F32(z.reshape(-1)[0]), q.attrs.get("rounding", "ROUND")
            base, step, levels = lo, 1, hi - lo

            def quant(v, s32=s32, z32=z32, mode=mode, lo=lo, hi=hi):
                return np.clip(qonnx_round(((v / s32).astype(F32) + z32).astype(F32), mode), lo, hi)
        else:
            base, step, levels = -1, 2, 1

            def quant(v):
                return np.where(v >= 0, 1, -1)
        f = (F32(sa.reshape(-1)[0]) * sw).astype(F32)
        bound = _acc_bound(graph, mm)
        if bound + 1 >= 2**31:
            continue

        def q_of(acc, f=f, a=a, b=b, quant=quant):
            """The chain as the executor computes it, for acc [M, P] (one row per channel)."""
            v = (acc.astype(F32) * f[:, None]).astype(F32)
            v = (v * a[:, None]).astype(F32)
            return quant((v + b[:, None]).astype(F32)).astype(np.int64)

        ends = q_of(np.tile(np.array([-bound, bound], np.int64), (m, 1)))
        inc = ends[:, 1] >= ends[:, 0]
        thr = np.empty((m, levels), np.int64)
        for j in range(levels):
            level = base + step * (j + 1)
            # increasing: the least acc with q >= level (bound + 1: never); decreasing: the greatest
            # acc with q >= level (-bound - 1: never), by bisection on the monotone chain
            lo_a = np.full(m, -bound - 1, np.int64)
            hi_a = np.full(m, bound + 1, np.int64)
            while np.any(hi_a - lo_a > 1):
                mid = (lo_a + hi_a) // 2
                ok = q_of(mid[:, None])[:, 0] >= level
                # increasing: ok moves hi down; decreasing: ok moves lo up
                hi_a = np.where(inc & ok, mid, hi_a)
                lo_a = np.where(inc & ~ok, mid, lo_a)
                lo_a = np.where(~inc & ok, mid, lo_a)
                hi_a = np.where(~inc & ~ok, mid, hi_a)
            thr[:, j] = np.where(inc, hi_a, lo_a)
        # check the fold on both sides of every threshold and at the range ends (bisection on a
        # function assumed monotone: a violated assumption must not pass silently)
        probe = np.clip(np.concatenate([thr - 1, thr, thr + 1, np.full((m, 1), -bound), np.full((m, 1), bound)], 1),
                        -bound, bound)
        want = q_of(probe)
        got = base + step * np.where(inc[:, None, None], probe[:, :, None] >= thr[:, None, :],
                                     probe[:, :, None] <= thr[:, None, :]).sum(-1)
        if not np.array_equal(want, got):
            continue
        tname = f"{mm.name}.thresholds"
        dname = f"{mm.name}.threshold_dir"
        graph.tensors[tname] = Tensor(tname, "int32", thr.astype(np.int32))
        graph.tensors[dname] = Tensor(dname, "int32", np.where(inc, 1, -1).astype(np.int32))
        dtype = q.attrs.get("dtype", "int8")
        out = q.outputs[0]
        th_out = out + ".nhwc" if nchw else out
        repl = [Node("threshold", q.name + ".threshold", [mm.outputs[0]], [th_out],
                     {"thresholds": tname, "direction": dname, "base": base, "step": step, "dtype": dtype})]
        if nchw:
            repl.append(Node("transpose", q.name + ".nchw", [th_out], [out], {"perm": [0, 3, 1, 2]}))
        for n in (dq, tr if nchw else None, mul, add):
            if n is not None:
                drop.add(id(n))
        drop.add(id(q))
        new[id(q)] = repl
    out_nodes: list[Node] = []
    for n in nodes:
        if id(n) in new:
            out_nodes += new[id(n)]
        elif id(n) not in drop:
            out_nodes.append(n)
    graph.nodes = _live(graph, out_nodes)
    return graph


def _live(graph: Graph, nodes: list[Node]) -> list[Node]:
    """Without the nodes nothing reads (the folded BatchNorm constants; a dequantize whose consumer took
    the integers instead, e.g. a MaxPool on integers), and the constant tensors only they held."""
    read = set(graph.outputs)
    keep = []
    for n in reversed(nodes):
        if any(o in read for o in n.outputs):
            keep.append(n)
            read.update(n.inputs)
        elif n.op == "const":
            graph.tensors.pop(n.attrs["value"], None)
    keep.reverse()
    return keep
