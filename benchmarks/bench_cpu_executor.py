"""CPU executor prefill/decode speed and peak memory on real model shapes, against this machine's
memory-bandwidth roofline measured in the same run.

    python benchmarks/bench_cpu_executor.py [--shapes bitnet-0.73b bitnet-2b4t] [--kernel auto|numpy]

Each shape: a random ternary checkpoint of that shape is written through the real writer (packed
like microsoft/bitnet-b1.58-2B-4T, bf16 embeddings), compiled, then run in a fresh process that
reports its own peak RSS. Decode roofline = bandwidth / bytes a token must read (packed linear
weights as stored in the artifact at 1.6 bpw, the INT8 LM head, the INT8 KV cache at that context).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def measure_bandwidth(mb: int = 1024, reps: int = 5) -> float:
    """Bytes/s of a large memcpy (read + write), best of `reps`."""
    a = np.ones(mb << 20, dtype=np.uint8)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return 2 * a.nbytes / best


def worker(art: str, kernel: str, prompt_len: int, decode_tokens: int) -> dict:
    import edgestream

    t0 = time.perf_counter()
    sess = edgestream.load(art, kernel=kernel)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    prompt = rng.integers(2, sess.config.vocab_size, prompt_len).tolist()
    toks = list(sess.generate(prompt, max_new_tokens=decode_tokens + 1, stop_tokens=[]))
    st = sess.stats
    man = sess.artifact.manifest
    lin = sum(e["data"]["nbytes"] for n, e in man["tensors"].items()
              if e["encoding"] in ("ternary", "int8", "int4", "int2") and n != "model.embed_tokens.weight")
    c = sess.config
    kv = 2 * c.num_layers * c.num_kv_heads * (prompt_len + decode_tokens) * (c.head_dim + 4)
    return {
        "kernel": sess.kernel_name,
        "load_s": load_s,
        "prefill_tok_s": st.prefill_tok_s,
        "ttft_s": st.ttft_s,
        "decode_tok_s": st.decode_tok_s,
        "tokens": len(toks),
        "bytes_per_token": lin + kv,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", nargs="+", default=["bitnet-0.73b", "bitnet-2b4t"])
    ap.add_argument("--kernel", default="auto")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--decode", type=int, default=8)
    ap.add_argument("--workdir", default=None, help="scratch directory for the temp dir (default: system temp)")
    ap.add_argument("--cache", default=None, help="keep checkpoints and artifacts here and reuse them on later runs")
    ap.add_argument("--worker", nargs=4, metavar=("ART", "KERNEL", "PROMPT", "DECODE"), help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.worker:
        art, kernel, p, d = a.worker
        print(json.dumps(worker(art, kernel, int(p), int(d))))
        return

    from edgestream.compiler import compile_model
    from edgestream.synth import make_checkpoint

    bw = measure_bandwidth()
    rows = []
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        base = Path(a.cache) if a.cache else Path(tmp)
        for shape in a.shapes:
            ck, art = base / shape, base / f"{shape}.esa"
            t = time.perf_counter()
            if not (a.cache and (ck / "config.json").is_file()):
                make_checkpoint(ck, shape, packed=True, dtype="bfloat16", tokenizer=False)
            gen_s = time.perf_counter() - t
            t = time.perf_counter()
            if not (a.cache and (art / "manifest.json").is_file()):
                compile_model(ck, art)
            compile_s = time.perf_counter() - t
            out = subprocess.run([sys.executable, __file__, "--worker", str(art), a.kernel, str(a.prompt),
                                  str(a.decode)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r.update(shape=shape, write_s=gen_s, compile_s=compile_s, bandwidth=bw,
                     roofline_tok_s=bw / r["bytes_per_token"])
            r["roofline_frac"] = r["decode_tok_s"] / r["roofline_tok_s"]
            rows.append(r)
            if not a.cache:
                for p in ck.iterdir():
                    p.unlink()
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    tab = Table(title=f"CPU executor, measured memory bandwidth {bw / 1e9:.1f} GB/s (memcpy, read+write)")
    for col in ("shape", "kernel", f"prefill tok/s ({a.prompt})", "TTFT s", "decode tok/s", "MB/token",
                "roofline tok/s", "of roofline", "peak RSS GB", "compile s"):
        tab.add_column(col, justify="right")
    for r in rows:
        tab.add_row(r["shape"], r["kernel"], f"{r['prefill_tok_s']:.1f}", f"{r['ttft_s']:.2f}",
                    f"{r['decode_tok_s']:.2f}", f"{r['bytes_per_token'] / 1e6:.0f}", f"{r['roofline_tok_s']:.1f}",
                    f"{100 * r['roofline_frac']:.1f}%", f"{r['peak_rss_bytes'] / 1e9:.2f}", f"{r['compile_s']:.1f}")
    Console().print(tab)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
