"""The `pynq` device against the real pynq package, run by tests/test_board_venv.py inside a venv
that is the board's as it ships (numpy 1.26, pynq from PyPI, pip 22 / setuptools as the PYNQ venv):
pynq's own Overlay (bitstream handler, metadata parser, download), MMIO (REGISTER_RW through its
tinynumpy hook), allocate/PynqBuffer (slices, flush, invalidate, freebuffer) and Interrupt (its
_InterruptController over the AXI INTC registers) run unchanged above tests/board_side/pynq_model.py,
whose ModelDevice holds the accelerator's register-level model (fast, and able to model slow runs,
hangs and Ctrl-C: SlowModel). checks_pynq_rtl.py runs the same device over the simulated RTL instead.
Not collected by the main suite (its name is not test_*: pynq pins numpy < 2)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pynq
import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # pynq_model, and tests/accel_cases.py

from accel_cases import check_matmul, layers, make_bank  # noqa: E402
from pynq_model import ModelDevice, write_overlay  # noqa: E402

import edgestream  # noqa: E402
from edgestream import regmap as rm  # noqa: E402
from edgestream.errors import DeviceError  # noqa: E402
from edgestream.host.devices.cpu import CpuDevice  # noqa: E402
from edgestream.host.devices.pynq import PynqDevice, syncs_whole_buffers  # noqa: E402
from edgestream.host.driver import AccelDriver  # noqa: E402


class SlowModel:
    """The register model with runs that take `delay_s` of wall time (the cpu model finishes inside the
    START write, so nothing would ever be waited for): START shows BUSY until the delay has passed.
    stuck: a run never ends and a soft reset never drains (a bus that stopped answering)."""

    def __init__(self, delay_s: float = 2e-3, stuck: bool = False, ctrl_c_after: int | None = None):
        """ctrl_c_after: the N-th STATUS read of a run raises KeyboardInterrupt (Ctrl-C while the host
        waits, delivered deterministically: a SIGALRM can land in a GC callback and be swallowed)."""
        self.inner, self.delay_s, self.stuck, self.ctrl_c_after = CpuDevice(), delay_s, stuck, ctrl_c_after
        self.pending: float | None = None
        self.events: list[str] = []
        self.status_reads = 0

    def __getattr__(self, k):
        return getattr(self.inner, k)

    def _settle(self):
        if self.pending is not None and not self.stuck and time.monotonic() >= self.pending:
            self.pending = None
            self.inner.write_reg(rm.REG["CTRL"], rm.CTRL_START)

    def read_reg(self, off):
        self._settle()
        if off == rm.REG["STATUS"] and self.pending is not None and self.ctrl_c_after is not None:
            self.status_reads += 1
            if self.status_reads == self.ctrl_c_after:
                self.ctrl_c_after = None
                raise KeyboardInterrupt
        if off == rm.REG["STATUS"] and (self.pending is not None or self.stuck and self.events):
            return rm.STATUS_BUSY | (rm.STATUS_RESETTING if "reset" in self.events else 0)
        return self.inner.read_reg(off)

    def write_reg(self, off, value):
        if off == rm.REG["CTRL"] and value & rm.CTRL_START:
            self.events.append("start")
            self.pending = time.monotonic() + self.delay_s
            return
        if off == rm.REG["CTRL"] and value & rm.CTRL_SOFT_RESET:
            self.events.append("reset")
            if not self.stuck:
                self.pending = None
        self.inner.write_reg(off, value)


@pytest.fixture(autouse=True)
def fresh_pynq_state():
    """pynq keeps module-level state (the active device, interrupt controllers per bitstream)."""
    from pynq.interrupt import _InterruptController

    yield
    _InterruptController._controllers.clear()
    _InterruptController._uio_devices.clear()
    for k in ("_active_device", "_devices"):
        if k in vars(pynq.Device):
            delattr(pynq.Device, k)


def open_dev(tmp_path, model=None, sync="whole", with_intc=True, cma_free=1 << 30, interrupt=True):
    bit = write_overlay(tmp_path / "ovl", with_intc=with_intc)
    md = ModelDevice(model, sync=sync, cma_free=cma_free)
    pynq.Device.active_device = md  # what pynq.Interrupt and PL consult (the board's only device)
    md.install_uio()
    dev = PynqDevice(bit, pynq_device=md, interrupt=interrupt, meminfo=md.meminfo(tmp_path / "meminfo"))
    return md, dev


def test_the_environment_is_the_boards():
    assert np.__version__.startswith("1.26"), np.__version__
    assert tuple(int(x) for x in pynq.__version__.split(".")[:2]) >= (3, 1)
    assert syncs_whole_buffers(pynq)


def test_overlay_mmio_and_identity(tmp_path):
    md, dev = open_dev(tmp_path)
    assert ("download", str(tmp_path / "ovl" / "edgestream.bit")) in md.log  # pynq's Overlay downloaded it
    assert dev.overlay.ip_dict["edgestream_accel_0"]["phys_addr"] == 0xA000_0000
    assert abs(md.pl0_mhz() - 250) < 0.1  # pynq programmed pl_clk0 from the .hwh (was 100 MHz)
    assert dev.read_reg(rm.REG["MAGIC"]) == rm.MAGIC
    # real pynq.MMIO refuses numpy integers (`type(data) is int`); the device hands it Python ints
    with pytest.raises(ValueError, match="Data type must be int or bytes"):
        dev.mmio.write(rm.REG["NTOK"], np.uint32(3))
    dev.write_reg(np.int64(rm.REG["NTOK"]), np.uint32(3))
    assert md.model.read_reg(rm.REG["NTOK"]) == 3
    AccelDriver(dev)  # MAGIC, VERSION, CONFIG_ID, soft reset
    dev.close()


@pytest.mark.parametrize("sync", ["whole", "slice"])
def test_matmuls_bit_exact_through_pynq_buffers(sync, tmp_path, monkeypatch):
    """Every layer kind, 1..9 tokens, bit-identical to the numpy reference, with pynq 4.0's whole-buffer
    cache maintenance and with 3.0.1's slice-exact one (the device picks its strategy from the version)."""
    if sync == "slice":
        monkeypatch.setattr(pynq, "__version__", "3.0.1")
    md, dev = open_dev(tmp_path, sync=sync)
    assert dev.whole_buffer_sync == (sync == "whole")
    drv = AccelDriver(dev, timeout_s=0.5)
    rng = np.random.default_rng(5)
    lws = layers(rng, big=False)
    bank, betas = make_bank(drv, lws, rng)
    n_bufs = len(dev._bufs)
    md.log.clear()
    for lw in lws:
        for ntok in (1, 4, 9):
            q = rng.integers(-128, 128, (ntok, lw.k)).astype(np.int8)
            check_matmul(bank, lw, betas[lw.name], q, rng.uniform(1e-3, 1, ntok).astype(np.float32))
    runs = drv.runs
    flushes = [e for e in md.log if e[0] == "flush"]
    invals = [e for e in md.log if e[0] == "invalidate"]
    if sync == "whole":
        # one flush per dirty buffer per START (program and weights once, at the first), one invalidate
        # of the arena per run: not one whole-buffer sync per 16-byte map entry
        assert len(flushes) <= runs + 2 and len(invals) == runs
        assert len({bo for _, bo, _ in flushes}) <= n_bufs
    else:
        assert len(flushes) > runs and all(n < md.bos[bo][1] for _, bo, n in invals)
    dev.close()
    assert sorted(md.freed) == sorted(md.bos)


def test_a_forgotten_flush_is_seen(tmp_path):
    """The model is not lenient: bytes written into a PynqBuffer without a flush never reach the
    accelerator (so the bit-exact runs above do prove the device's cache maintenance)."""
    md, dev = open_dev(tmp_path)
    addr = dev.alloc(256)
    b, off = dev._find(addr, 16)
    b.buf[off:off + 16] = 7  # as if write_mem had not marked it dirty
    dev.write_reg(rm.REG["CTRL"], rm.CTRL_START)
    assert md.model.read_mem(addr, 16) == bytes(16)
    dev.write_mem(addr, bytes([9] * 16))
    dev.write_reg(rm.REG["CTRL"], rm.CTRL_START)
    assert md.model.read_mem(addr, 16) == bytes([9] * 16)
    dev.close()


def test_waits_on_pynq_interrupt(tmp_path):
    md, dev = open_dev(tmp_path, model=SlowModel(delay_s=3e-3))
    assert dev.irq is not None  # the overlay's edgestream_accel_0/irq through axi_intc_0
    drv = AccelDriver(dev, timeout_s=1.0)
    dev.write_reg(rm.REG["IRQ_EN"], 1)
    rng = np.random.default_rng(1)
    lws = layers(rng, big=False)[:2]
    bank, betas = make_bank(drv, lws, rng)
    for lw in lws:  # runs with the driver's waits on the interrupt path
        q = rng.integers(-128, 128, (3, lw.k)).astype(np.int8)
        check_matmul(bank, lw, betas[lw.name], q, np.ones(3, np.float32))
    # one wait of up to a second ends at the interrupt: pynq's controller saw the level and set the event
    n, w = md.uio.deliveries, dev.irq_waits
    dev.write_reg(rm.REG["CTRL"], rm.CTRL_START)
    t0 = time.monotonic()
    dev.wait(1.0)
    assert time.monotonic() - t0 < 0.5 and md.uio.deliveries > n and dev.irq_waits > w
    assert dev.read_reg(rm.REG["STATUS"]) & rm.STATUS_DONE
    dev.close()


def test_bounded_poll_without_interrupt_controller(tmp_path):
    md, dev = open_dev(tmp_path, model=SlowModel(delay_s=3e-3), with_intc=False)
    assert dev.irq is None and "edgestream_accel_0/irq" not in dev.overlay.interrupt_pins
    drv = AccelDriver(dev, timeout_s=1.0)
    rng = np.random.default_rng(2)
    lw = layers(rng, big=False)[0]
    bank, betas = make_bank(drv, [lw], rng)
    t0 = time.monotonic()
    check_matmul(bank, lw, betas[lw.name], rng.integers(-128, 128, (2, lw.k)).astype(np.int8),
                 np.ones(2, np.float32))
    assert time.monotonic() - t0 < 0.2  # noticed within the poll's 1 ms steps, not at the timeout
    t0 = time.monotonic()
    dev.wait(0.05)  # idle: returns at once
    assert time.monotonic() - t0 < 0.01
    dev.close()


def test_close_soft_resets_before_freeing(tmp_path):
    model = SlowModel(delay_s=10.0)
    md, dev = open_dev(tmp_path, model=model)
    drv = AccelDriver(dev, timeout_s=0.5)
    rng = np.random.default_rng(3)
    lw = layers(rng, big=False)[0]
    bank, _ = make_bank(drv, [lw], rng)
    dev.write_reg(rm.REG["CTRL"], rm.CTRL_START)  # a run in flight (as at Ctrl-C)
    dev.close()
    assert model.events[-2:] == ["start", "reset"] and sorted(md.freed) == sorted(md.bos)


def test_close_keeps_buffers_when_the_accelerator_does_not_stop(tmp_path, capsys):
    md, dev = open_dev(tmp_path, model=SlowModel(stuck=True))
    dev.alloc(4096)
    dev.write_reg(rm.REG["CTRL"], rm.CTRL_START)
    dev.close()
    assert md.freed == [] and "stay allocated" in capsys.readouterr().err


def test_ctrl_c_mid_run_leaves_the_device_reusable(tmp_path):
    model = SlowModel(delay_s=30.0, ctrl_c_after=5)
    md, dev = open_dev(tmp_path, model=model)
    drv = AccelDriver(dev, timeout_s=20.0)
    rng = np.random.default_rng(4)
    lw = layers(rng, big=False)[0]
    bank, betas = make_bank(drv, [lw], rng)
    with pytest.raises(KeyboardInterrupt):
        bank.matmul(lw.name, np.zeros((1, lw.k), np.int8))
    assert model.pending is not None  # the run was still in flight
    dev.close()
    assert model.events[-1] == "reset" and sorted(md.freed) == sorted(md.bos)
    model.delay_s = 1e-3
    dev2 = PynqDevice(tmp_path / "ovl" / "edgestream.bit", pynq_device=md, meminfo=md.meminfo(tmp_path / "meminfo"))
    drv2 = AccelDriver(dev2, timeout_s=1.0)
    bank2, betas2 = make_bank(drv2, [lw], rng)
    check_matmul(bank2, lw, betas2[lw.name], rng.integers(-128, 128, (2, lw.k)).astype(np.int8),
                 np.ones(2, np.float32))
    dev2.close()


def test_contiguous_memory_checked_before_allocating(tmp_path):
    md, dev = open_dev(tmp_path, cma_free=8 << 20)
    with pytest.raises(DeviceError, match=r"buffer of 134217728 bytes .*needs physically contiguous.*cma="):
        dev.alloc(128 << 20)
    assert len(md.bos) == 0  # refused before pynq.allocate was asked
    dev.close()


def test_demo_model_end_to_end_bit_identical(tmp_path):
    """The tiny model through edgestream.load(device='pynq') over real pynq: the tokens and the logits
    of every step identical to the CPU executor's."""
    from edgestream.synth import make_checkpoint

    bit = write_overlay(tmp_path / "ovl")
    make_checkpoint(tmp_path / "ck", "tiny", seed=0)
    art = edgestream.compile_model(tmp_path / "ck", tmp_path / "m.esa")
    cpu = edgestream.load(art, device="cpu", kernel="numpy")
    want = list(cpu.generate([1, 5, 9], max_new_tokens=4, temperature=0.8, seed=3))
    md = ModelDevice()
    pynq.Device.active_device = md
    md.install_uio()
    sess = edgestream.load(art, device="pynq", device_options={"bitfile": bit, "pynq_device": md})
    try:
        assert list(sess.generate([1, 5, 9], max_new_tokens=4, temperature=0.8, seed=3)) == want
    finally:
        sess.close()
    assert sorted(md.freed) == sorted(md.bos)
