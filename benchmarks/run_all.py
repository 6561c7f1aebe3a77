"""Run every benchmark in turn (each prints its own table). `make bench` calls this.

    python benchmarks/run_all.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "cpu_executor": "bench_cpu_executor.py",
    "cpu_kernel": "bench_cpu_kernel.py",
    "compile": "bench_compile.py",
    "tlmm_engine": "bench_tlmm_engine.py",
    "accel_sim": "bench_accel_sim.py",
    "head_precision": "bench_head_precision.py",
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHES), default=sorted(BENCHES))
    a = ap.parse_args()
    failed = []
    for name in a.only:
        print(f"\n=== {name} ({BENCHES[name]})", flush=True)
        if subprocess.run([sys.executable, str(HERE / BENCHES[name])]).returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
