"""The board's Python as it ships, checked here: Kria-PYNQ v3.0's PYNQ venv is Python 3.10 with pip 22,
setuptools 59 and `no-build-isolation = yes` in its pip.conf, numpy 1.26.4 (pynq pins numpy < 2).

* The code edgestream installs on a board (edgestream/, compiler/, host/) is Python 3.10 code: ruff
  parses it for Python 3.10 (syntax) and vermin finds no 3.11+ module, member or syntax in it (API).
* A venv that is the PYNQ venv as far as this machine allows (Python 3.11 here: no 3.10 interpreter is
  installable from the package registries; pip 22.0.2, setuptools 59.6.0, the PYNQ venv's pip.conf,
  numpy 1.26.4, pynq from PyPI) gets edgestream the way docs/board.md says (a newer setuptools first,
  then `pip install -c hw/boards/kv260/constraints.txt -e .`), and runs the board-side tests there:
  tests/board_side/checks_pynq.py (the pynq device under the real pynq package, over the accelerator's
  register model) and checks_pynq_rtl.py (the same over the RTL simulated by Verilator: the self-test
  and the demo model bit-identical to the CPU; the simulation runs under this interpreter).

The venv is built once per recipe and repository path under ~/.cache/edgestream (or
$EDGESTREAM_BOARD_VENV_DIR) and reused: a fresh machine needs about two minutes for it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOARD_CODE = ["edgestream", "compiler", "host"]
CONSTRAINTS = ROOT / "hw" / "boards" / "kv260" / "constraints.txt"
# Ubuntu 22.04's pip and setuptools (what python3.10 -m venv puts into the PYNQ venv), the PYNQ venv's
# pip.conf (Kria-PYNQ install.sh), the board's numpy, pynq as PyPI resolves it for this Python.
BOARD_TOOLS = ["pip==22.0.2", "setuptools==59.6.0"]
PIP_CONF = "[install]\nno-build-isolation = yes\n"
BOARD_PACKAGES = ["numpy==1.26.4", "pynq>=3.1", "pytest", "vermin"]
# docs/board.md: what a PYNQ venv needs before edgestream's pyproject.toml builds: the setuptools its
# [build-system] asks for (77: the SPDX license string; PEP 621 needs 61, editable installs 64), at most
# 80 (pynqutils; constraints.txt)
SETUP_TOOLS = ["setuptools>=77", "wheel"]
RECIPE = 1


def run(cmd, timeout=900, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    what = " ".join(map(str, cmd))
    assert r.returncode == 0, f"{what} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def board_venv() -> Path:
    h = hashlib.sha256()
    for part in (RECIPE, BOARD_TOOLS, PIP_CONF, BOARD_PACKAGES, SETUP_TOOLS, str(ROOT), sys.version):
        h.update(repr(part).encode())
    for f in (CONSTRAINTS, ROOT / "pyproject.toml", ROOT / "setup.py"):
        h.update(f.read_bytes())
    base = Path(os.environ.get("EDGESTREAM_BOARD_VENV_DIR") or Path.home() / ".cache" / "edgestream")
    d = base / f"board-venv-{h.hexdigest()[:12]}"
    if (d / ".ready").is_file():
        return d
    shutil.rmtree(d, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "venv", d])
    py = d / "bin" / "python"
    pip = [py, "-m", "pip", "--disable-pip-version-check", "-q"]
    run([*pip, "install", *BOARD_TOOLS])
    (d / "pip.conf").write_text(PIP_CONF)
    run([*pip, "install", "-c", CONSTRAINTS, *BOARD_PACKAGES])
    run([*pip, "install", "-c", CONSTRAINTS, *SETUP_TOOLS])
    run([*pip, "install", "-c", CONSTRAINTS, "-e", ROOT])
    (d / ".ready").write_text("ok\n")
    return d


def test_board_code_parses_as_python_310():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--target-version", "py310",
                        "--select", "E9", *BOARD_CODE], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def venv():
    return board_venv()


def test_board_venv_is_the_boards(venv):
    r = run([venv / "bin" / "python", "-c", "import numpy, pynq, pip, setuptools, edgestream; "
             "print(numpy.__version__, pynq.__version__, pip.__version__, edgestream.__file__)"])
    numpy_v, pynq_v, pip_v, where = r.stdout.split()
    assert numpy_v == "1.26.4" and pip_v == "22.0.2"
    assert tuple(int(x) for x in pynq_v.split(".")[:2]) >= (3, 1)
    assert Path(where).resolve().is_relative_to(ROOT)  # the editable install of this checkout
    run([venv / "bin" / "python", "-m", "pip", "check"])


def test_board_code_uses_no_python_311_api(venv):
    r = subprocess.run([venv / "bin" / "vermin", "-q", "-t=3.10-", "--violations", "--no-tips",
                        "--eval-annotations", *BOARD_CODE], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def board_pytest(venv, cwd: Path, checks: str, min_passed: int, **env_extra) -> str:
    """pytest on tests/board_side/<checks> in the board venv (no conftest: the main suite's needs
    hypothesis, which a board has not); every check must pass, none skip."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([venv / "bin" / "python", "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider",
                        ROOT / "tests" / "board_side" / checks], cwd=cwd, env={**env, **env_extra},
                       capture_output=True, text=True, timeout=900)
    out = r.stdout + r.stderr
    m = re.search(r"(\d+) passed", out)
    ok = r.returncode == 0 and m and int(m.group(1)) >= min_passed
    assert ok and "failed" not in out and "skipped" not in out, out[-6000:]
    return out


def test_pynq_device_under_real_pynq(venv, tmp_path):
    board_pytest(venv, tmp_path, "checks_pynq.py", 12)


def test_pynq_device_over_the_rtl(venv, tmp_path):
    """The pynq device under real pynq over the Verilator-simulated RTL (checks_pynq_rtl.py): the
    self-test and the demo model bit-identical to the CPU. The simulation's child runs under this
    interpreter (it has cocotb and Verilator; the board venv has not: sim_link.py), on the build
    tests/test_accel.py makes (the same RTL hash under sim_build/)."""
    board_pytest(venv, tmp_path, "checks_pynq_rtl.py", 2, EDGESTREAM_SIM_PYTHON=sys.executable)
