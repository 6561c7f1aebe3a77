"""The `pynq` device under the real pynq package over the accelerator RTL itself, run by
tests/test_board_venv.py inside the board's venv (numpy 1.26, pynq from PyPI): pynq's own Overlay,
MMIO, allocate/PynqBuffer (flush, invalidate, freebuffer) run unchanged above
tests/board_side/pynq_model.py's ModelDevice, whose registers are the simulated RTL's AXI-Lite slave
and whose DDR is the memory the RTL's AXI masters read and write (hw/rtl/edgestream_accel.sv on
Verilator under cocotb, through edgestream's SimDevice; tests/board_side/sim_link.py).

Backed by the RTL here: every register read and write pynq.MMIO makes, every byte a PynqBuffer
flush hands the accelerator and every byte an invalidate brings back, the whole computation (linear
layers, vector, attention and argmax units). Not backed by it: the concurrency of host and fabric
(a run completes within the CTRL write that starts it, ModelDevice's docstring says why), so the
pynq.Interrupt path is exercised over the register model only (checks_pynq.py); the irq level the AXI
INTC model samples is computed from STATUS and IRQ_EN as the RTL computes its irq; the CPU cache and
the .bit/.hwh pair are pynq_model.py's models. Not collected by the main suite (pynq pins numpy < 2).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pynq
import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from pynq_model import ModelDevice, write_overlay  # noqa: E402
from sim_link import open_sim  # noqa: E402

import edgestream  # noqa: E402
from edgestream import regmap as rm  # noqa: E402
from edgestream.selftest import run_selftest  # noqa: E402

PROMPT = [1, 5, 9]


@pytest.fixture(scope="module")
def rtl():
    """One simulation for the module (its start costs seconds): the shipped shell, the KV260 DDR model."""
    sim = open_sim(latency=100)
    yield sim
    sim.close()


@pytest.fixture()
def board(rtl, tmp_path):
    """The overlay files and a pynq device over the RTL, pynq's active device as on a board."""
    from pynq.interrupt import _InterruptController

    bit = write_overlay(tmp_path / "ovl")
    md = ModelDevice(rtl)
    pynq.Device.active_device = md
    md.install_uio()
    yield md, bit
    _InterruptController._controllers.clear()
    _InterruptController._uio_devices.clear()
    for k in ("_active_device", "_devices"):
        if k in vars(pynq.Device):
            delattr(pynq.Device, k)


@pytest.fixture(scope="module")
def demo_art(tmp_path_factory):
    """The demo model as `make demo` builds it without a trained checkpoint (edgestream.demo), and as
    tests/test_accel.py and the self-test run it on the RTL: the trained one in edgestream/data takes
    minutes per pass in simulation."""
    from edgestream.synth import make_checkpoint

    d = tmp_path_factory.mktemp("demo")
    make_checkpoint(d / "ck", "tiny", seed=0)
    return edgestream.compile_model(d / "ck", d / "m.esa")


def test_selftest_over_the_rtl(board, rtl, tmp_path):
    """`edgestream selftest --device pynq` as on a board: identity, the known matmuls (ternary, INT8,
    INT4, INT2 on 1 and 5 tokens) bit-identical, the bandwidth from the RTL's own counters, demo tokens."""
    md, bit = board
    c0 = rtl.cycles()
    rep = run_selftest("pynq", {"bitfile": bit, "pynq_device": md, "meminfo": md.meminfo(tmp_path / "meminfo")},
                       tokens=1)  # one pass: the demo's decode steps are the next test's
    assert rep["ok"], rep
    ch = rep["checks"]
    assert f"config {rm.shell_config_id():016x}" in ch["identity"]["detail"]
    assert "bit-identical" in ch["matmul"]["detail"]
    bw = ch["bandwidth"]
    # the RTL's counters (the register model counts no cycles): a K = MAXK row batch moved its packed weights
    assert bw["cycles"] > 0 and bw["read_bytes"] >= 256 * rm.SHELL_HW["max_k"] * 1.6 / 8
    assert len(ch["demo"]["tokens"]) == 1
    assert rtl.cycles() - c0 > bw["cycles"]  # the simulated clock ran: the RTL computed all of it
    # every byte reached the RTL through PynqBuffer.flush and came back through invalidate
    assert any(e[0] == "flush" for e in md.log) and any(e[0] == "invalidate" for e in md.log)
    assert sorted(md.freed) == sorted(md.bos)  # both sessions closed: every PynqBuffer freed


def test_demo_model_over_the_rtl_bit_identical(board, rtl, demo_art, tmp_path):
    """edgestream.load(device='pynq') over the RTL: sampled tokens and the float32 logits of every step
    identical to the CPU executor's, the whole model on the device (one START per pass): the prefill
    and one decode step (a pass of the model is 10-15 s of simulation on 2 loaded cores)."""
    md, bit = board

    def generate(sess):
        logits = []
        toks = list(sess.generate(PROMPT, max_new_tokens=2, temperature=0.8, top_k=40, seed=11,
                                  on_logits=lambda x: logits.append(np.array(x, np.float32))))
        return toks, np.stack(logits)

    want_t, want_l = generate(edgestream.load(demo_art, device="cpu", kernel="numpy"))
    sess = edgestream.load(demo_art, device="pynq", device_options={
        "bitfile": bit, "pynq_device": md, "meminfo": md.meminfo(tmp_path / "meminfo")})
    try:
        assert sess.accel.units() & 7 == 7  # the shipped shell's vector, attention and argmax units
        got_t, got_l = generate(sess)
        assert got_t == want_t
        assert got_l.tobytes() == want_l.tobytes()
        assert sess.stats.extra == {"device_starts": 2, "host_ops": 0}
    finally:
        sess.close()
    assert sorted(md.freed) == sorted(md.bos)
