"""`edgestream selftest`: every check passes on a correct accelerator (the cpu model here; --device sim
runs the RTL, docs/board.md has a board's), and a wrong one fails with the reason and exit code 1."""

from __future__ import annotations

import json

from edgestream.cli import main
from edgestream.selftest import run_selftest


def test_selftest_passes_on_the_cpu_model(capsys):
    assert main(["selftest", "--device", "cpu", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and list(rep["checks"]) == ["identity", "matmul", "bandwidth", "demo"]
    assert all(c["ok"] for c in rep["checks"].values())
    assert "bit-identical" in rep["checks"]["matmul"]["detail"]
    assert rep["checks"]["bandwidth"]["read_bytes"] > 256 * 4096 * 1.6 / 8  # at least the packed weights
    assert len(rep["checks"]["demo"]["tokens"]) == 4


def test_selftest_names_a_wrong_accelerator():
    rep = run_selftest("cpu", {"config_id": 0x1234})
    assert not rep["ok"]
    assert "configuration ID is 0000000000001234" in rep["checks"]["identity"]["detail"]
    assert rep["checks"]["demo"]["detail"].startswith("not run")


def test_selftest_table_and_exit_code(capsys):
    assert main(["selftest", "--device", "cpu", "--tokens", "2"]) == 0
    out = capsys.readouterr().out
    assert "edgestream selftest --device cpu" in out and "all checks passed" in out
