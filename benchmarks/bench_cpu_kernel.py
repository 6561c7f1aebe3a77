"""CPU kernel benchmark: linear layers of one full decoder stack with random ternary weights.

For the BitNet-0.73B shape and the BitNet-2B-4T shape it times, per token, every linear layer of
every decoder layer (q, k, v, o, gate, up, down; decode = GEMV of one token, prefill = GEMM of 64
tokens), for the compiled C kernel and the numpy reference kernel, and measures this machine's
memory bandwidth in the same run (numpy copies of a 1 GiB array, one per thread). The memory roofline
of decode is packed weight bytes per token / bandwidth; the table shows the fraction reached.
A second row adds the INT8 LM head (one GEMV over vocab x hidden) to the stack.

llama.cpp's TQ2_0 figures on this 2-core x86 machine (issue 8) are the bar: 0.73B decode 48.5 tok/s,
prefill-64 153 tok/s; 2B-4T 17.2 and 60 tok/s. They are for the whole model (attention, norms and the
LM head included), so compare them with the "+head" rows. If llama-cpp-python is importable and
$EDGESTREAM_BENCH_GGUF names a TQ2_0 model, it is measured in this run too.

numpy is timed on the first 2 layers and scaled to the stack (it is compute bound; weights do not
fit any cache either way). Run: python benchmarks/bench_cpu_kernel.py [--shapes 0.73b 2b4t] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from edgestream.host.kernels import LinearWeights, get_kernel
from edgestream.host.kernels.c_kernel import PackedWeights


@dataclass(frozen=True)
class Shape:
    name: str
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int
    llama_decode: float  # llama.cpp TQ2_0 on this machine (issue 8), tok/s
    llama_prefill: float

    def linears(self) -> list[tuple[str, int, int]]:
        kv = self.hidden // self.heads * self.kv_heads
        h, f = self.hidden, self.ffn
        return [("q", h, h), ("k", kv, h), ("v", kv, h), ("o", h, h), ("gate", f, h), ("up", f, h), ("down", h, f)]


SHAPES = {
    "0.73b": Shape("BitNet-0.73B", 24, 1536, 4096, 16, 16, 32002, 48.5, 153.0),
    "2b4t": Shape("BitNet-2B-4T", 30, 2560, 6912, 20, 5, 128256, 17.2, 60.0),
}
PREFILL = 64

# all 81 bytes whose four 2-bit fields are ternary codes (t + 1 in {0, 1, 2})
_TERNARY_BYTES = np.array(
    [a | b << 2 | c << 4 | d << 6 for a in range(3) for b in range(3) for c in range(3) for d in range(3)],
    dtype=np.uint8,
)


def random_ternary_packed(rng, name: str, n: int, k: int) -> PackedWeights:
    """Random ternary weights directly in the C kernel's packed layout (what prepare() builds from
    uniform random trits; packing 2 G weights through numpy would dominate the run)."""
    np_rows = -(-n // 8) * 8  # rows padded like pack_codes
    kpb = -(-k // 256) * 64
    packed = np.empty((np_rows, kpb), np.uint8)
    packed[:] = _TERNARY_BYTES[rng.integers(0, 81, size=packed.shape, dtype=np.uint8)]
    return PackedWeights(name, n, k, 2, 1, packed)


def memory_bandwidth(threads: int, nbytes: int = 1 << 30) -> float:
    """Bytes moved per second (read + write) by numpy copies, one array pair per thread."""
    per = nbytes // threads
    src = [np.ones(per, np.uint8) for _ in range(threads)]
    dst = [np.zeros(per, np.uint8) for _ in range(threads)]
    best = 0.0
    with ThreadPoolExecutor(threads) as ex:
        for _ in range(4):
            t0 = time.perf_counter()
            list(ex.map(lambda i: np.copyto(dst[i], src[i]), range(threads)))
            best = max(best, 2 * per * threads / (time.perf_counter() - t0))
    return best


def time_stack(kern, mats, q1, q64, reps: int) -> tuple[float, float]:
    """Median seconds per decode token and per 64-token prefill over all `mats`."""

    def run(q):
        for k, pw in mats:
            kern.matmul(q[k], pw)

    run(q1)
    dec = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run(q1)
        dec.append(time.perf_counter() - t0)
    pre = []
    for _ in range(max(1, reps // 3)):
        t0 = time.perf_counter()
        run(q64)
        pre.append(time.perf_counter() - t0)
    return statistics.median(dec), statistics.median(pre)


def llama_cpp_column(shape: Shape) -> str:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama_cpp (llama-cpp-python) not importable: live llama.cpp column skipped"
    path = os.environ.get("EDGESTREAM_BENCH_GGUF_" + shape.name.replace("-", "_").replace(".", "_").upper()) or (
        os.environ.get("EDGESTREAM_BENCH_GGUF")
    )
    if not path:
        return "llama_cpp importable, but no $EDGESTREAM_BENCH_GGUF TQ2_0 model given: live column skipped"
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=256, n_threads=os.cpu_count(), verbose=False)
    toks = [1 + (i % 100) for i in range(PREFILL)]
    t0 = time.perf_counter()
    llm.eval(toks)
    pre = PREFILL / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(32):
        llm.eval([2 + i])
    dec = 32 / (time.perf_counter() - t0)
    return f"llama.cpp live ({os.path.basename(path)}): decode {dec:.1f} tok/s, prefill-64 {pre:.1f} tok/s"


def bench_shape(shape: Shape, ckern, reps: int, bw: float) -> list[dict]:
    rng = np.random.default_rng(0)
    mats = [random_ternary_packed(rng, f"{i}.{nm}", n, k) for i in range(shape.layers) for nm, n, k in shape.linears()]
    stack_bytes = sum(pw.nbytes for pw in mats)
    head_w = rng.integers(-127, 128, size=(shape.vocab, shape.hidden), dtype=np.int8)
    head = ckern.prepare(LinearWeights("lm_head", "int", 8, head_w))
    ks = {shape.hidden, shape.ffn}
    q1 = {k: rng.integers(-128, 128, size=(1, k), dtype=np.int8) for k in ks}
    q64 = {k: rng.integers(-128, 128, size=(PREFILL, k), dtype=np.int8) for k in ks}

    c_dec, c_pre = time_stack(ckern, [(pw.k, pw) for pw in mats], q1, q64, reps)
    h_dec, h_pre = time_stack(ckern, [(shape.hidden, head)], q1, q64, reps)
    del mats

    # numpy reference kernel: first 2 layers, scaled to the stack
    nk = get_kernel("numpy")
    nl = min(2, shape.layers)
    nmats = []
    for i in range(nl):
        for nm, n, k in shape.linears():
            w = (rng.integers(0, 3, size=(n, k), dtype=np.int8) - 1).astype(np.int8)
            nmats.append((k, nk.prepare(LinearWeights(f"{i}.{nm}", "ternary", 2, w))))
    n_dec, n_pre = time_stack(nk, nmats, q1, q64, max(2, reps // 3))
    n_dec, n_pre = n_dec * shape.layers / nl, n_pre * shape.layers / nl
    nhead = nk.prepare(LinearWeights("lm_head", "int", 8, head_w))
    n_hdec, n_hpre = time_stack(nk, [(shape.hidden, nhead)], q1, q64, 2)
    del nmats, nhead

    rows = []
    for kern_name, dec, pre, hdec, hpre in [
        (ckern.name, c_dec, c_pre, h_dec, h_pre),
        ("numpy", n_dec, n_pre, n_hdec, n_hpre),
    ]:
        for what, d, p, nbytes in [
            ("stack", dec, pre, stack_bytes),
            ("+head", dec + hdec, pre + hpre, stack_bytes + head.nbytes),
        ]:
            rows.append(
                dict(
                    shape=shape.name,
                    kernel=kern_name,
                    part=what,
                    mb_per_token=nbytes / 1e6,
                    decode_tok_s=1 / d,
                    decode_gb_s=nbytes / d / 1e9,
                    roofline=(nbytes / bw) / d,
                    prefill_tok_s=PREFILL / p,
                    vs_llama_decode=(1 / d) / shape.llama_decode,
                    vs_llama_prefill=(PREFILL / p) / shape.llama_prefill,
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--reps", type=int, default=7, help="decode repetitions (median); prefill gets reps/3")
    ap.add_argument("--threads", type=int, default=0, help="C kernel threads (0: all cores)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    ckern = get_kernel("c")
    if args.threads:
        ckern = type(ckern)(threads=args.threads)
    threads = args.threads or os.cpu_count() or 1
    bw = max(memory_bandwidth(1), memory_bandwidth(threads))
    rows, notes = [], []
    for key in args.shapes:
        rows += bench_shape(SHAPES[key], ckern, args.reps, bw)
        notes.append(llama_cpp_column(SHAPES[key]))
    bw_after = max(memory_bandwidth(1), memory_bandwidth(threads))
    if args.json:
        print(json.dumps(dict(kernel=ckern.description, bandwidth_gb_s=bw / 1e9, rows=rows, notes=notes), indent=1))
        return 0
    print(f"C kernel: {ckern.description}")
    print(f"memory bandwidth (numpy copy, read+write, best of 1 and {threads} threads): {bw / 1e9:.1f} GB/s")
    print(f"  (re-measured after the run: {bw_after / 1e9:.1f} GB/s)")
    hdr = (
        f"{'shape':14} {'kernel':14} {'part':6} {'MB/tok':>7} {'decode tok/s':>12} {'GB/s':>6} {'roofline':>8} "
        f"{'prefill64 tok/s':>15} {'x llama dec':>11} {'x llama pre':>11}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(
            f"{r['shape']:14} {r['kernel']:14} {r['part']:6} {r['mb_per_token']:7.0f} {r['decode_tok_s']:12.1f} "
            f"{r['decode_gb_s']:6.1f} {r['roofline']:8.0%} {r['prefill_tok_s']:15.1f} "
            f"{r['vs_llama_decode']:11.2f} {r['vs_llama_prefill']:11.2f}"
        )
    print("x llama: vs llama.cpp TQ2_0 on this machine (issue 8: 0.73B 48.5/153, 2B-4T 17.2/60 tok/s, whole model)")
    for n in notes:
        print(n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
