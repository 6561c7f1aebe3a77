"""Compile time and peak memory for the BitNet 0.73B and 2B4T shapes (random ternary weights written
first as real packed safetensors checkpoints, like microsoft/bitnet-b1.58-2B-4T; or, with --format
gguf-i2s, as bitnet.cpp's I2_S GGUF of the official microsoft/bitnet-b1.58-2B-4T-gguf layout, written
sparsely: all-(-1) trits and a zero embedding), and the report's predicted KV260 decode tok/s, prefill
tok/s and TTFT next to the published KV260 TLMM accelerator.

    python benchmarks/bench_compile.py [--shapes bitnet-0.73b,bitnet-2b4t] [--target kv260] [--keep DIR]
                                       [--format hf|gguf-i2s]

Every compile runs in a fresh subprocess; peak memory is that process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PUBLISHED = {"decode_tok_s": 25.0, "prefill_tok_s": 143.0, "ttft_64_s": 0.45, "ttft_128_s": 0.96}

_CHILD = r"""
import json, sys, time
from edgestream.compiler import compile_model
t0 = time.perf_counter()
out = compile_model(sys.argv[1], sys.argv[2], target=sys.argv[3])
dt = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so the child would report the parent's
# peak (the parent writes multi-GB checkpoints before it starts us)
rss = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"compile_s": dt, "peak_rss_bytes": rss}))
"""


def compile_one(ck: Path, out: Path, target: str) -> dict:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(ck), str(out), target], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"compile of {ck} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="bitnet-0.73b,bitnet-2b4t")
    ap.add_argument("--target", default="kv260")
    ap.add_argument("--keep", default=None, help="keep checkpoints/artifacts in this directory")
    ap.add_argument("--format", choices=("hf", "gguf-i2s"), default="hf")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    from edgestream.bitnet_cpp_gguf import write_official_shape
    from edgestream.compiler.dse import HwConfig
    from edgestream.compiler.perfmodel import predict
    from edgestream.compiler.targets import load_target
    from edgestream.ir import ModelConfig
    from edgestream.synth import SHAPES, make_checkpoint

    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench_compile."))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for shape in a.shapes.split(","):
            ck = work / (f"{shape}-i2s.gguf" if a.format == "gguf-i2s" else f"{shape}-packed")
            if a.format == "gguf-i2s":
                if not ck.exists():
                    write_official_shape(ck, SHAPES[shape])
            elif not (ck / "model.safetensors").exists():
                t = time.perf_counter()
                make_checkpoint(ck, shape, arch="bitnet", seed=0, packed=True, tokenizer=False)
                print(f"[{shape}] wrote checkpoint in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            art = work / f"{shape}.{a.target}.esa"
            r = compile_one(ck, art, a.target)
            man = json.loads((art / "manifest.json").read_text())
            m = ModelConfig.from_dict(man["model"])
            cfg = HwConfig(**man["hw_config"])
            tgt = load_target(a.target)
            wk = man["hw_weight_kind"]
            p64 = predict(m, cfg, tgt, *wk, context=64, prompt=64, detail=False)
            p128 = predict(m, cfg, tgt, *wk, context=128, prompt=128, detail=False)
            util = {k: man["hw_resources"][k] / tgt.resources[k] if tgt.resources[k] else 0.0
                    for k in ("lut", "ff", "dsp", "bram36", "uram")}
            rows.append({
                "shape": shape, "format": a.format, "compile_s": r["compile_s"],
                "peak_rss_gb": r["peak_rss_bytes"] / 1e9,
                "artifact_gb": sum(f.stat().st_size for f in art.iterdir()) / 1e9,
                "config_id": cfg.config_id, "G": cfg.G, "T": cfg.T, "Q": cfg.Q, "clock_mhz": cfg.clock_mhz,
                "decode_tok_s_ctx128": p128["decode_tok_s"], "decode_roofline_frac": p128["decode_roofline_frac"],
                "decode_bound": p128["decode_bound"], "bytes_per_token": p128["bytes_per_token"]["total"],
                "prefill_tok_s_64": p64["prefill_tok_s"], "ttft_64_s": p64["ttft_s"],
                "prefill_tok_s_128": p128["prefill_tok_s"], "ttft_128_s": p128["ttft_s"], "util": util,
                "binding": man["hw_exploration"]["binding"],
            })
            if not a.keep:
                shutil.rmtree(art, ignore_errors=True)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    c = Console(highlight=False)
    t = Table("shape", "compile s", "peak RSS GB", "artifact GB", "target <= 30 s, 2 GB",
              title=f"compile (--target {a.target}, {a.format}, this machine)")
    for r in rows:
        ok = r["compile_s"] <= 30 and r["peak_rss_gb"] <= 2.0
        t.add_row(r["shape"], f"{r['compile_s']:.1f}", f"{r['peak_rss_gb']:.2f}", f"{r['artifact_gb']:.2f}",
                  "met" if ok else "NOT met")
    c.print(t)
    p = Table("shape", "config", "decode tok/s (ctx 128)", "DDR roofline", "prefill tok/s 64 / 128",
              "TTFT s 64 / 128", "LUT", "URAM", "BRAM", title=f"predicted on {a.target} (model, not calibrated)")
    for r in rows:
        p.add_row(r["shape"], f"G={r['G']} T={r['T']} Q={r['Q']} {r['clock_mhz']:.0f} MHz",
                  f"{r['decode_tok_s_ctx128']:.1f}", f"{r['decode_roofline_frac']:.0%} ({r['decode_bound']})",
                  f"{r['prefill_tok_s_64']:.0f} / {r['prefill_tok_s_128']:.0f}",
                  f"{r['ttft_64_s']:.3f} / {r['ttft_128_s']:.3f}", f"{r['util']['lut']:.0%}",
                  f"{r['util']['uram']:.0%}", f"{r['util']['bram36']:.0%}")
    p.add_row("published KV260 (0.73B)", "250 MHz", f"{PUBLISHED['decode_tok_s']:.0f}", "",
              f"{PUBLISHED['prefill_tok_s']:.0f}", f"{PUBLISHED['ttft_64_s']} / {PUBLISHED['ttft_128_s']}", "84%",
              "94%", "")
    c.print(p)
    return 0


if __name__ == "__main__":
    _ = resource
    sys.exit(main())
