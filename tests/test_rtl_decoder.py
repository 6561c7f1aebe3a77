"""The accelerator shell with its units (UNITS = 7: es_vec + es_row, es_attn, the argmax) running a
compiled decoder with one START per forward pass (sim/tb_es_decoder.py): a GQA model (4 heads, 2 KV
heads) compiled from a real checkpoint for the shell; prefill then decode steps with the INT8 KV cache
carried in DDR, logits bit-identical to the CPU executor and ARGMAX its first maximum; unit faults at
the right instruction, SOFT_RESET mid-run, a host stop. Verilator runs every case, Icarus the smoke one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from runner import run_bench, run_built  # noqa: E402
from test_rtl_accel_program import MODULES, UNIT_MODULES  # noqa: E402

import edgestream  # noqa: E402
from edgestream.synth import make_checkpoint  # noqa: E402

SOURCES = MODULES[:-1] + UNIT_MODULES + MODULES[-1:]
PARAMS = {"UNITS": "3'b111"}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    d = tmp_path_factory.mktemp("decoder")
    make_checkpoint(d / "ck", "tiny", seed=3)   # 2 layers, hidden 64, 4 heads / 2 KV heads (D 16), vocab 300
    return edgestream.compile_model(d / "ck", d / "m.esa", target="sim", hw_config="shell")


@pytest.mark.parametrize(("sim", "testcase"), [("verilator", "decode"), ("verilator", "faults"),
                                                ("icarus", "smoke")])
def test_decoder(sim, testcase, artifact):
    cfg = {"artifact": str(artifact), "latency": 100}
    if sim == "verilator":
        # the simulation device's own build of the shipped shell (UNITS = 7 is its default: the same RTL,
        # sources and flags), so the suite compiles it once for --device sim and this bench
        from edgestream.host.devices.sim import build_accel

        runner, bdir = build_accel(sim)
        run_built(runner, bdir, "edgestream_accel", "tb_es_decoder", cfg, testcase, f"-{testcase}")
    else:
        run_bench(sim, "edgestream_accel", SOURCES, PARAMS, "tb_es_decoder", cfg=cfg, testcase=testcase,
                  results_tag=f"-{testcase}")
