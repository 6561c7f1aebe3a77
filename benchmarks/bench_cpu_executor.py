"""Whole-model CPU decode/prefill, side by side: edgestream's executor with its compiled kernel, with
the numpy reference kernel, and llama.cpp on the same weights -- all in one run, against this
machine's memory-bandwidth roofline measured in the same run.

    python benchmarks/bench_cpu_executor.py [--shapes bitnet-0.73b bitnet-2b4t]
        [--engines c c-planes c-planes8 c-ops numpy llama.cpp] [--repeat 3] [--llama-python PATH] [--cache DIR]
    python benchmarks/bench_cpu_executor.py --gemv [--shapes ...] [--threads 1] [--repeat 5]

Each shape: a random ternary BitNet of that shape with tied embeddings (llama.cpp's bitnet graph uses
token_embd as the output layer) is written through the real writer, packed like
microsoft/bitnet-b1.58-2B-4T, and
  * compiled by edgestream (ternary linears at 1.6 bpw in the artifact, INT8 embedding/LM head);
  * exported by edgestream's GGUF writer as TQ2_0 (llama.cpp: 2.06 bpw linears, F16 token_embd).
Every engine runs in a fresh process (its own peak RSS), 2 threads, a 64-token prompt then greedy
decode; `c` is the fused C step (one call per forward pass), `c-planes` the same with the version-6
AVX2 loop for 2- and 8-bit codes (c_kernel.set_variant), `c-planes8` with it for 8-bit codes only (the
version-7 kernel: the INT8 LM head's old loop), `c-ops` the same kernel op by op. The
engines alternate round by round (--repeat rounds), and median and best are reported: on a shared
machine load bursts only slow runs down, and alternation spreads them over every engine.
llama.cpp runs through llama-cpp-python, from this interpreter or --llama-python (it is not a project
dependency: the column is skipped with a message when neither has it).
Bytes per token: what one decode step streams (that engine's linear weights and LM head in the layout
its kernel reads: edgestream's C kernel 2 bpw codes + INT8 head, llama.cpp's GGUF file; plus its KV
cache at that context). GB/s moved = bytes per token x median decode tok/s, as a fraction of the read
bandwidth measured by the C kernel's own thread pool (2 threads, 1 GiB) before and after every round.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2


def read_bandwidth() -> float:
    """Bytes/s the C kernel's pool of THREADS threads reads from a 1 GiB buffer (best of 3), in a fresh
    process like the engines."""
    code = (f"from edgestream.host.kernels.c_kernel import CKernel; print(CKernel(threads={THREADS}).read_bandwidth())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(r.stdout.strip().splitlines()[-1])


def _peak() -> int:
    """This process's peak resident set (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker_edgestream(art: str, kernel: str, prompt_len: int, decode_tokens: int) -> dict:
    import os

    os.environ["EDGESTREAM_THREADS"] = str(THREADS)
    engine = kernel
    if kernel == "c-ops":  # the same C kernel, op by op from Python (no fused step)
        kernel = "c"
        os.environ["EDGESTREAM_FUSED"] = "0"
    import edgestream

    if kernel in ("c-planes", "c-planes8"):  # the fused step with an older AVX2 loop (c_kernel.set_variant)
        from edgestream.host.kernels import c_kernel

        c_kernel.set_variant(kernel[2:])
        kernel = "c"

    sess = edgestream.load(art, kernel=kernel)
    prompt = np.random.default_rng(0).integers(2, sess.config.vocab_size, prompt_len).tolist()
    list(sess.generate(prompt, max_new_tokens=decode_tokens + 1, stop_tokens=[]))
    st = sess.stats
    ex = sess.executor
    # what the kernel streams per step: its prepared layout of every linear (LM head included: the
    # tied INT8 embedding), not the artifact's 1.6 bpw storage
    lin = sum(p.nbytes if hasattr(p, "nbytes") else p.wf.nbytes for p, _ in ex._group.values())
    c = sess.config
    kv = 2 * c.num_layers * c.num_kv_heads * (prompt_len + decode_tokens) * (c.head_dim + 4)
    prof = {}
    if getattr(ex, "fused", False):  # where a fused decode step spends its time, in a separate pass
        ex.reset(prompt_len + 9)
        ex.forward(np.asarray(prompt))
        ex._plan.profile(True)
        t = time.perf_counter()
        for i in range(8):
            ex.forward(np.asarray([2 + i]))
        prof = {"total": (time.perf_counter() - t) / 8}
        prof.update({op: v[0] / 8 for op, v in ex._plan.profile(False).items()})
    name = f"edgestream {sess.kernel_name}" + ("" if getattr(ex, "fused", False) or kernel == "numpy" else " op-by-op")
    if engine == "c-planes":
        name += " (v6 plane loop)"
    elif engine == "c-planes8":
        name += " (v7: 8-bit plane loop)"
    return {"engine": name, "prefill_tok_s": st.prefill_tok_s, "ttft_s": st.ttft_s,
            "decode_tok_s": st.decode_tok_s, "bytes_per_token": lin + kv, "peak_rss_bytes": _peak(),
            "profile": prof}


def worker_llama(gguf_path: str, prompt_len: int, decode_tokens: int) -> dict:
    from llama_cpp import Llama

    llm = Llama(model_path=gguf_path, n_threads=THREADS, n_threads_batch=THREADS, n_ctx=prompt_len + decode_tokens + 8,
                n_batch=prompt_len, verbose=False)
    vocab = llm.n_vocab()

    def last_logits() -> np.ndarray:  # only the last position's logits are computed (logits_all=False)
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,))

    prompt = np.random.default_rng(0).integers(2, vocab, prompt_len).tolist()
    t = time.perf_counter()
    llm.eval(prompt)
    ttft = time.perf_counter() - t
    tok = int(np.argmax(last_logits()))
    t = time.perf_counter()
    for _ in range(decode_tokens):
        llm.eval([tok])
        tok = int(np.argmax(last_logits()))
    dec = time.perf_counter() - t
    size = Path(gguf_path).stat().st_size
    n_ctx = prompt_len + decode_tokens
    meta = llm.metadata
    arch = meta.get("general.architecture", "bitnet")
    layers = int(meta.get(f"{arch}.block_count", 0))
    kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", meta.get(f"{arch}.attention.head_count", 0)))
    hidden = int(meta.get(f"{arch}.embedding_length", 0))
    heads = int(meta.get(f"{arch}.attention.head_count", 1))
    kv = 2 * layers * kv_heads * n_ctx * (hidden // heads) * 2  # F16 KV cache
    # every weight in the file is read per decode step except all but one row of token_embd, which
    # is read again in full as the output layer: file size is the right count
    return {"engine": "llama.cpp TQ2_0", "prefill_tok_s": prompt_len / ttft, "ttft_s": ttft,
            "decode_tok_s": decode_tokens / dec, "bytes_per_token": size + kv, "peak_rss_bytes": _peak()}


def gemv_bench(shapes: list[str], rounds: int, prompt: int) -> list[dict]:
    """The linear layers alone, the 2-bit kernels and the 8-bit GEMV against the version-6 plane loop
    ('planes'), in the same process, alternating round by round: decode = one token through every
    layer's stacked q/k/v, o, gate/up and down matrices (the whole stack: far larger than the caches,
    so weights come from DRAM as in decode), head = one token through the INT8 LM head (vocab x
    hidden, also from DRAM), hot = one o matrix again and again (L2/L3-resident), prefill = `prompt`
    tokens through one layer. Random valid ternary codes and random INT8 head codes, packed as the
    kernel reads them. GB/s = weight bytes / time; the read probe of the kernel's pool runs in every
    round."""
    from edgestream.host.kernels import c_kernel as ckm
    from edgestream.synth import SHAPES

    kern = ckm.CKernel(threads=THREADS)
    rng = np.random.default_rng(0)
    valid = np.array([b for b in range(256) if all((b >> (2 * i)) & 3 <= 2 for i in range(4))], np.uint8)
    out = []
    for shape in shapes:
        sh = SHAPES[shape]
        kvd = sh.kv_heads * (sh.hidden // sh.heads)
        dims = [(sh.hidden + 2 * kvd, sh.hidden), (sh.hidden, sh.hidden), (2 * sh.ffn, sh.hidden), (sh.hidden, sh.ffn)]

        def packed(n: int, k: int, name: str) -> ckm.PackedWeights:
            kpb = -(-k // 256) * 64
            return ckm.PackedWeights(name, n, k, 2, 1, valid[rng.integers(0, valid.size, (-(-n // 8) * 8, kpb))])

        stack = [packed(n, k, f"blk.{i}.{j}") for i in range(sh.layers) for j, (n, k) in enumerate(dims)]
        total = sum(p.nbytes for p in stack)
        q1 = {k: rng.integers(-128, 128, (1, k)).astype(np.int8) for _, k in dims}
        qp = {k: rng.integers(-128, 128, (prompt, k)).astype(np.int8) for _, k in dims}
        hot = stack[1]
        head = ckm.PackedWeights("head", sh.vocab, sh.hidden, 8, 128,
                                 rng.integers(0, 256, (-(-sh.vocab // 8) * 8, -(-sh.hidden // 64) * 64), np.uint8))
        res: dict[str, dict[str, list[float]]] = {v: {"decode": [], "head": [], "hot": [], "prefill": []}
                                                  for v in ("planes", "default")}
        probe = []
        for _ in range(max(1, rounds)):
            probe.append(kern.read_bandwidth())
            for v in ("planes", "default"):
                ckm.set_variant(v)
                t = time.perf_counter()
                for p in stack:
                    kern.matmul(q1[p.k], p)
                res[v]["decode"].append(total / (time.perf_counter() - t))
                t = time.perf_counter()
                kern.matmul(q1[sh.hidden], head)
                res[v]["head"].append(head.nbytes / (time.perf_counter() - t))
                best = float("inf")
                for _ in range(200):
                    t = time.perf_counter()
                    kern.matmul(q1[hot.k], hot)
                    best = min(best, time.perf_counter() - t)
                res[v]["hot"].append(hot.nbytes / best)
                t = time.perf_counter()
                for p in stack[:4]:
                    kern.matmul(qp[p.k], p)
                res[v]["prefill"].append(prompt / ((time.perf_counter() - t) * sh.layers))
        ckm.set_variant("default")
        for p in stack[:4]:  # the two variants compute the same integers
            a = kern.matmul(qp[p.k], p)
            ckm.set_variant("planes")
            b = kern.matmul(qp[p.k], p)
            ckm.set_variant("default")
            assert np.array_equal(a, b), p.name
        a = kern.matmul(q1[sh.hidden], head)
        ckm.set_variant("planes")
        b = kern.matmul(q1[sh.hidden], head)
        ckm.set_variant("default")
        assert np.array_equal(a, b), head.name
        out.append({"shape": shape, "stack_bytes": total, "head_bytes": head.nbytes, "hot_bytes": hot.nbytes,
                    "probe": probe,
                    "runs": res, "isa": kern.isa})
    return out


def print_gemv(rows: list[dict], prompt: int) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console(width=220)
    for r in rows:
        pr = r["probe"]
        tab = Table(title=f"{r['shape']}: linear layers alone, c-{r['isa']}, {THREADS} thread(s), {len(pr)} "
                          f"alternating rounds (median / best); read probe "
                          f"{statistics.median(pr) / 1e9:.1f} GB/s median "
                          f"({min(pr) / 1e9:.1f}-{max(pr) / 1e9:.1f}), same run")
        for col in ("kernel", f"decode GB/s (stack, {r['stack_bytes'] / 1e6:.0f} MB)", "of read probe",
                    f"INT8 head GB/s ({r['head_bytes'] / 1e6:.0f} MB)", "of read probe",
                    f"hot GEMV GB/s ({r['hot_bytes'] / 1e6:.1f} MB)", f"prefill-{prompt} tok/s (stack)"):
            tab.add_column(col, justify="right")
        for v, label in (("planes", "v6 plane loop"), ("default", "2-bit kernels, 8-bit GEMV (v8)")):
            d = r["runs"][v]
            tab.add_row(label, f"{statistics.median(d['decode']) / 1e9:.2f} / {max(d['decode']) / 1e9:.2f}",
                        f"{100 * statistics.median(d['decode']) / statistics.median(pr):.0f}%",
                        f"{statistics.median(d['head']) / 1e9:.2f} / {max(d['head']) / 1e9:.2f}",
                        f"{100 * statistics.median(d['head']) / statistics.median(pr):.0f}%",
                        f"{statistics.median(d['hot']) / 1e9:.2f} / {max(d['hot']) / 1e9:.2f}",
                        f"{statistics.median(d['prefill']):.1f} / {max(d['prefill']):.1f}")
        new, old = r["runs"]["default"], r["runs"]["planes"]
        ratio = [f"{statistics.median(new[k]) / statistics.median(old[k]):.2f}x / {max(new[k]) / max(old[k]):.2f}x"
                 for k in ("decode", "head", "hot", "prefill")]
        tab.add_row("v8 / v6", ratio[0], "", ratio[1], "", ratio[2], ratio[3])
        c.print(tab)


def _run(cmd: list[str]) -> dict:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _has_llama(python: str) -> bool:
    return subprocess.run([python, "-c", "import llama_cpp"], capture_output=True).returncode == 0


def main() -> None:
    global THREADS
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", nargs="+", default=["bitnet-0.73b", "bitnet-2b4t"])
    ap.add_argument("--engines", nargs="+", default=["c", "numpy", "llama.cpp"],
                    choices=["c", "c-planes", "c-planes8", "c-ops", "numpy", "llama.cpp"])
    ap.add_argument("--llama-python", default=sys.executable, help="a Python that has llama-cpp-python")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--decode", type=int, default=16)
    ap.add_argument("--cache", default=None, help="keep checkpoints, artifacts and GGUFs here and reuse them")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds: each round runs every engine once (fresh process each); median and best reported")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=THREADS, help="threads of every engine (and the bandwidth probe)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--gemv", action="store_true",
                    help="only the linear layers: the 2-bit kernels and 8-bit GEMV against the version-6 loop, "
                         "same process")
    a = ap.parse_args()
    THREADS = a.threads
    if a.gemv:
        rows = gemv_bench(a.shapes, a.repeat, a.prompt)
        if a.json:
            print(json.dumps(rows, indent=1))
        else:
            print_gemv(rows, a.prompt)
        return
    if a.worker:
        kind, path, *rest = a.worker
        fn = worker_llama if kind == "llama" else (lambda p, n, d: worker_edgestream(p, kind, n, d))
        print(json.dumps(fn(path, int(rest[-2]), int(rest[-1]))))
        return

    from edgestream.compiler import compile_model
    from edgestream.gguf_writer import export_gguf
    from edgestream.synth import make_checkpoint

    bws: list[float] = []
    rows, notes = [], []
    llama_ok = "llama.cpp" in a.engines and _has_llama(a.llama_python)
    if "llama.cpp" in a.engines and not llama_ok:
        notes.append(f"llama.cpp column skipped: {a.llama_python} cannot import llama_cpp "
                     "(pip install llama-cpp-python, or pass --llama-python)")
    engines = [e for e in a.engines if e != "llama.cpp" or llama_ok]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(a.cache) if a.cache else Path(tmp)
        for shape in a.shapes:
            ck, art, gg = base / f"{shape}-tied", base / f"{shape}-tied.esa", base / f"{shape}-tied.tq2_0.gguf"
            if not (ck / "config.json").is_file():
                make_checkpoint(ck, shape, packed=True, dtype="bfloat16", tokenizer=False, tie=True)
            t = time.perf_counter()
            if not (art / "manifest.json").is_file():
                compile_model(ck, art)
            compile_s = time.perf_counter() - t
            if "llama.cpp" in engines and not gg.is_file():
                export_gguf(ck, gg, "tq2_0")
            runs: dict[str, list[dict]] = {e: [] for e in engines}
            shape_bw = []
            # rounds alternate the engines, so a burst of load on this shared machine hits them alike
            for _ in range(max(1, a.repeat)):
                shape_bw.append(read_bandwidth())
                for eng in engines:
                    if eng == "llama.cpp":
                        cmd = [a.llama_python, __file__, "--threads", str(THREADS), "--worker", "llama", str(gg),
                               str(a.prompt), str(a.decode)]
                    else:
                        cmd = [sys.executable, __file__, "--threads", str(THREADS), "--worker", eng, str(art),
                               str(a.prompt), str(a.decode)]
                    runs[eng].append(_run(cmd))
            shape_bw.append(read_bandwidth())
            bws += shape_bw
            bw = statistics.median(shape_bw)
            for eng in engines:
                rs = runs[eng]
                r = dict(rs[0])
                for key in ("prefill_tok_s", "decode_tok_s"):
                    vals = [x[key] for x in rs]
                    r[key] = max(vals)
                    r[key + "_median"] = statistics.median(vals)
                    r[key + "_all"] = vals
                r["ttft_s"] = min(x["ttft_s"] for x in rs)
                r["peak_rss_bytes"] = max(x["peak_rss_bytes"] for x in rs)
                r["gb_s"] = r["decode_tok_s_median"] * r["bytes_per_token"] / 1e9
                r.update(shape=shape, compile_s=compile_s, read_bw=bw, bw_frac=r["gb_s"] * 1e9 / bw)
                rows.append(r)
    for shape in a.shapes:
        ref = next((r for r in rows if r["shape"] == shape and r["engine"].startswith("llama")), None)
        for r in rows:
            if r["shape"] == shape and ref:
                for key in ("decode_tok_s", "prefill_tok_s"):
                    r[key + "_vs_llama"] = r[key + "_median"] / ref[key + "_median"]
                    r[key + "_vs_llama_best"] = r[key] / ref[key]
    if a.json:
        print(json.dumps({"read_bandwidth": bws, "rows": rows, "notes": notes}, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    tab = Table(title=f"Whole model on the CPU, {THREADS} threads, {max(1, a.repeat)} alternating runs per engine "
                      f"(median / best); read bandwidth {statistics.median(bws) / 1e9:.1f} GB/s median "
                      f"({min(bws) / 1e9:.1f}-{max(bws) / 1e9:.1f}), {THREADS} threads, same run")
    for col in ("shape", "engine", f"prefill tok/s ({a.prompt}) med / best", "decode tok/s med / best", "MB/token",
                "GB/s moved (med)", "of read bw", "decode vs llama.cpp med / best", "prefill vs llama.cpp med / best",
                "peak RSS GB"):
        tab.add_column(col, justify="right")
    for r in rows:
        vs = tuple(f"{r[k + '_vs_llama']:.2f}x / {r[k + '_vs_llama_best']:.2f}x"
                   for k in ("decode_tok_s", "prefill_tok_s")) if "decode_tok_s_vs_llama" in r else ("-", "-")
        tab.add_row(r["shape"], r["engine"], f"{r['prefill_tok_s_median']:.1f} / {r['prefill_tok_s']:.1f}",
                    f"{r['decode_tok_s_median']:.2f} / {r['decode_tok_s']:.2f}", f"{r['bytes_per_token'] / 1e6:.0f}",
                    f"{r['gb_s']:.1f}", f"{100 * r['bw_frac']:.0f}%", *vs, f"{r['peak_rss_bytes'] / 1e9:.2f}")
    c = Console(width=220)
    c.print(tab)
    for r in rows:
        c.print(f"{r['shape']} {r['engine']}: decode " + " ".join(f"{v:.2f}" for v in r["decode_tok_s_all"])
                + " | prefill " + " ".join(f"{v:.1f}" for v in r["prefill_tok_s_all"]))
    for r in rows:
        prof = r.get("profile")
        if prof:
            tot = prof.pop("total")
            parts = ", ".join(f"{op} {1e3 * v:.2f} ({100 * v / tot:.0f}%)" for op, v in prof.items())
            c.print(f"{r['shape']} {r['engine']} decode step profile (ms/token, 8 steps, timed separately): total "
                    f"{1e3 * tot:.2f}; {parts}; outside the plan (embedding, Python) "
                    f"{1e3 * (tot - sum(prof.values())):.2f}")
    for n in notes:
        c.print(n)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
