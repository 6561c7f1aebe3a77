"""The accelerator RTL under simulation, opened from the board's venv: edgestream's own SimDevice
(host/devices/sim.py), whose child process (sim/sim_server.py: cocotb driving the Verilator build of
hw/rtl/edgestream_accel.sv) runs under the main venv's Python, named by $EDGESTREAM_SIM_PYTHON.

Why a second interpreter: the board venv is the PYNQ venv as it ships (numpy 1.26, pynq), which has
neither cocotb nor Verilator, and a board has neither; the simulation needs both. The two talk over
SimDevice's Unix socket (pickled ints and bytes only), so nothing of either venv crosses. The build is
the one `--device sim` and tests/test_accel.py use (sim_build/verilator/edgestream_accel-<RTL hash>/:
the same checkout, the same hash), so CI builds it once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PYTHON_ENV = "EDGESTREAM_SIM_PYTHON"


def sim_python() -> str:
    py = os.environ.get(PYTHON_ENV, "")
    if not py or not Path(py).is_file():
        # a failure, not a skip: without it the RTL-backed checks would test nothing
        raise RuntimeError(f"${PYTHON_ENV} must name the Python of the venv with edgestream's [sim] extra "
                           f"(cocotb, Verilator); got {py!r} (tests/test_board_venv.py sets it)")
    return py


def open_sim(**kwargs):
    """SimDevice(**kwargs) with its simulation child started by sim_python().

    SimDevice starts the child as `sys.executable -m edgestream.host.devices.sim --serve ...` and has no
    setting for another interpreter, so sys.executable names the main venv's Python for the duration of
    the constructor only (nothing else runs meanwhile: the child is spawned and connected to there)."""
    from edgestream.host.devices.sim import SimDevice

    py, saved = sim_python(), sys.executable
    sys.executable = py
    try:
        return SimDevice(**kwargs)
    finally:
        sys.executable = saved
