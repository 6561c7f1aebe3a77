"""Devices behind one driver (edgestream.host.driver.AccelDriver).

A device is the small interface the driver needs from an accelerator and its memory:

    read_reg(off) -> int            32-bit AXI-Lite register read
    write_reg(off, value)           32-bit AXI-Lite register write
    alloc(nbytes) -> int            a device-visible buffer; returns its bus address (64-byte aligned)
    write_mem(addr, data)           host -> buffer, made visible to the device (flush)
    read_mem(addr, n) -> bytes      buffer -> host, after the device wrote it (invalidate)
    wait(seconds)                   let device time pass (returns early on the shell's interrupt)
    now() -> float                  device time in seconds (simulated cycles / clock on `sim`)
    close()

Optional: `irq_wait = True` when wait() returns as soon as the shell's irq output is high (IRQ_EN = 1,
STATUS DONE, HOST or ERROR): the driver then waits for a run with one wait(timeout) instead of polling
every `poll_s` seconds (default 2 us). The simulation has it; a board device sets it once its wait()
blocks on pynq.Interrupt (the shell's `irq` line).

Implementations: `cpu` (CpuDevice: a functional model of the shell running the same program with the
CPU reference TLMM), `sim` (SimDevice: the RTL under Verilator or Icarus through cocotb) and `pynq`
(PynqDevice: pynq.Overlay, MMIO and pynq.allocate buffers on a board).
"""

from __future__ import annotations

from typing import Protocol


class Device(Protocol):
    name: str

    def read_reg(self, off: int) -> int: ...

    def write_reg(self, off: int, value: int) -> None: ...

    def alloc(self, nbytes: int) -> int: ...

    def write_mem(self, addr: int, data: bytes) -> None: ...

    def read_mem(self, addr: int, n: int) -> bytes: ...

    def wait(self, seconds: float) -> None: ...

    def now(self) -> float: ...

    def close(self) -> None: ...


class BumpAllocator:
    """Bus addresses for a flat device memory [base, base + size): 64-byte aligned, never freed."""

    def __init__(self, base: int, size: int, what: str):
        self.base, self.size, self.what, self.top = base, size, what, base

    def alloc(self, nbytes: int) -> int:
        from edgestream.errors import DeviceError

        addr = (self.top + 63) & ~63
        if addr + nbytes > self.base + self.size:
            raise DeviceError(f"{self.what}: out of device memory ({nbytes} bytes asked, "
                              f"{self.base + self.size - addr} left of {self.size})")
        self.top = addr + nbytes
        return addr


def board_present() -> bool:
    """A PYNQ board: the pynq package imports and the kernel exposes an FPGA manager."""
    import importlib.util
    import os

    return importlib.util.find_spec("pynq") is not None and os.path.exists("/sys/class/fpga_manager/fpga0")


def open_device(name: str, **kwargs):
    """Open device `name` ('cpu', 'sim', 'pynq'); kwargs go to its constructor."""
    if name == "cpu":
        from edgestream.host.devices.cpu import CpuDevice

        return CpuDevice(**kwargs)
    if name == "sim":
        from edgestream.host.devices.sim import SimDevice

        return SimDevice(**kwargs)
    if name == "pynq":
        from edgestream.host.devices.pynq import PynqDevice

        return PynqDevice(**kwargs)
    from edgestream.errors import InputError

    raise InputError(f"unknown device {name!r} (expected cpu, sim or pynq)")
