"""`pynq` device: the accelerator on a PYNQ board (KV260) through pynq.Overlay, pynq.MMIO, pynq.allocate
buffers and, when the overlay has it, pynq.Interrupt. The same driver runs it as runs the simulation.

Tested against the real `pynq` package (tests/test_board_venv.py: pynq 4.0 with numpy 1.26 in its own
venv, a pynq.Device subclass standing in for the board, over the accelerator's register model and over
the RTL simulated by Verilator); what only a board shows is listed in docs/board.md.
pynq needs root (/dev/mem, the FPGA manager, XRT buffers) and the PYNQ venv
(`sudo -i; source /etc/profile.d/pynq_venv.sh`).

Cache maintenance. pynq 3.1 and 4.0 flush and invalidate the WHOLE buffer object whatever slice of a
PynqBuffer the call is made on (XrtDevice.flush: bo.sync without offset or size); pynq 3.0.1 synced
exactly the slice. So with 3.1+ this device never syncs per write: a write marks its buffer dirty, and
START (the CTRL write the driver makes) flushes every dirty buffer once; after a run every buffer is
stale, and the first read of one invalidates it once (flushing it first when the host wrote it since,
so an invalidate cannot discard the host's bytes). With 3.0.1 (and a pynq module of no known version)
every write flushes and every read invalidates exactly its slice, which is what that version does.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from edgestream import regmap as rm
from edgestream.errors import DeviceError

DEFAULT_BITFILE = Path(__file__).resolve().parents[2] / "hw" / "boards" / "kv260" / "build" / "edgestream.bit"
IP_NAME = "edgestream_accel_0"
MEMINFO = "/proc/meminfo"
CLOSE_TIMEOUT_S = 0.1  # a soft reset drains in microseconds unless the bus hangs (docs/registers.md)
POLL_MAX_S = 1e-3  # longest sleep of the bounded poll (no interrupt): a run is noticed within 1 ms
ROOT_HINT = "run as root inside the PYNQ venv: sudo -i, then source /etc/profile.d/pynq_venv.sh (docs/board.md)"


def pynq_version(mod) -> tuple[int, ...] | None:
    m = re.match(r"(\d+)\.(\d+)", str(getattr(mod, "__version__", "")))
    return (int(m.group(1)), int(m.group(2))) if m else None


def syncs_whole_buffers(mod) -> bool:
    """True for pynq >= 3.1, whose flush/invalidate act on the whole buffer object."""
    v = pynq_version(mod)
    return v is not None and v >= (3, 1)


def cma_bytes(meminfo: str | os.PathLike = MEMINFO) -> tuple[int, int] | None:
    """(CmaFree, CmaTotal) in bytes from /proc/meminfo; None when the kernel does not report them."""
    try:
        text = Path(meminfo).read_text()
    except OSError:
        return None
    got = {k: int(v) * 1024 for k, v in re.findall(r"^(CmaFree|CmaTotal):\s+(\d+)\s+kB", text, re.M)}
    return (got["CmaFree"], got["CmaTotal"]) if len(got) == 2 else None


class _Buf:
    __slots__ = ("addr", "nbytes", "buf", "dirty", "stale")

    def __init__(self, addr: int, nbytes: int, buf):
        self.addr, self.nbytes, self.buf = addr, nbytes, buf
        self.dirty = self.stale = False


class PynqDevice:
    name = "pynq"

    def __init__(self, bitfile: str | os.PathLike | None = None, ip_name: str = IP_NAME, pynq_module=None,
                 pynq_device=None, interrupt: bool = True, meminfo: str | os.PathLike = MEMINFO):
        """pynq_device: the pynq.Device to use (pynq's active device by default: the board's). interrupt:
        wait on pynq.Interrupt when the overlay wires the accelerator's irq (else a bounded poll)."""
        if pynq_module is None:
            try:
                pynq_module = importlib.import_module("pynq")
            except ImportError:
                raise DeviceError("the pynq device needs the 'pynq' package: run inside the PYNQ venv "
                                  "(source /etc/profile.d/pynq_venv.sh) with edgestream installed there "
                                  "(docs/board.md)") from None
        self.pynq = pynq_module
        self.meminfo = meminfo
        self._kw = {} if pynq_device is None else {"device": pynq_device}
        self._target = {} if pynq_device is None else {"target": pynq_device}
        self.whole_buffer_sync = syncs_whole_buffers(pynq_module)
        self._bufs: list[_Buf] = []
        self._closed = False
        bit = Path(bitfile or os.environ.get("EDGESTREAM_BITFILE") or DEFAULT_BITFILE)
        if not bit.is_file():
            raise DeviceError(f"{bit}: no such bitstream (build it with hw/boards/kv260/build.sh, or set "
                              f"EDGESTREAM_BITFILE); its .hwh must lie next to it")
        try:
            self.overlay = pynq_module.Overlay(str(bit), **self._kw)
        except PermissionError as e:
            raise DeviceError(f"{bit}: pynq could not load the overlay ({e}): {ROOT_HINT}") from None
        except OSError as e:
            raise DeviceError(f"{bit}: pynq could not load the overlay ({e}); {ROOT_HINT}") from None
        ips = self.overlay.ip_dict
        if ip_name not in ips:
            raise DeviceError(f"{bit}: the overlay has no IP named {ip_name!r} (has: {', '.join(sorted(ips))})")
        ip = ips[ip_name]
        try:
            self.mmio = pynq_module.MMIO(int(ip["phys_addr"]), int(ip["addr_range"]), **self._kw)
        except OSError as e:  # EmbeddedDevice.mmap: "Root permissions required."
            raise DeviceError(f"pynq: cannot map the accelerator's registers ({e}): {ROOT_HINT}") from None
        self.irq = self._open_interrupt(f"{ip_name}/irq") if interrupt else None
        self._loop = None
        self.irq_waits = 0

    # ---- interrupt
    def _open_interrupt(self, pin: str):
        pins = getattr(self.overlay, "interrupt_pins", None) or {}
        if pin not in pins or not hasattr(self.pynq, "Interrupt"):
            return None
        try:
            return self.pynq.Interrupt(pin)
        except (ValueError, RuntimeError, OSError) as e:
            # no UIO device for pl_ps_irq0 (the PYNQ image's device tree provides it): poll instead
            print(f"pynq: {pin} is wired but pynq.Interrupt failed ({e}); polling STATUS", file=sys.stderr)
            return None

    def _idle_or_stopped(self) -> bool:
        st = self.read_reg(rm.REG["STATUS"])
        return bool(st & (rm.STATUS_DONE | rm.STATUS_ERROR | rm.STATUS_HOST)) or not st & (
            rm.STATUS_BUSY | rm.STATUS_RESETTING)

    def wait(self, seconds: float) -> None:
        """Until the accelerator stops (DONE, ERROR or HOST, or idle) or `seconds` pass; the driver
        re-reads STATUS after it either way. With the interrupt: pynq.Interrupt.wait with a timeout;
        without: STATUS polled with sleeps of at most POLL_MAX_S."""
        deadline = time.monotonic() + max(seconds, 0.0)
        if self._idle_or_stopped() or seconds <= 0:
            return
        if self.irq is not None:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)  # pynq's UIO reader registers on the current loop
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.irq_waits += 1
                try:
                    self._loop.run_until_complete(asyncio.wait_for(self.irq.wait(), left))
                except asyncio.TimeoutError:  # noqa: UP041 - not the builtin TimeoutError on Python 3.10
                    return
                # a wait that timed out earlier leaves pynq's event registered, and a later interrupt
                # sets it: that wakes the next wait at once, so only a stopped accelerator ends it
                if self._idle_or_stopped():
                    return
        step = 2e-5
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(step, left))
            if self._idle_or_stopped():
                return
            step = min(step * 2, POLL_MAX_S)

    def now(self) -> float:
        return time.monotonic()

    # ---- registers (pynq.MMIO takes Python ints only: `type(data) is int`)
    def read_reg(self, off: int) -> int:
        return int(self.mmio.read(int(off)))

    def write_reg(self, off: int, value: int) -> None:
        off, value = int(off), int(value) & 0xFFFFFFFF
        if off == rm.REG["CTRL"] and value & rm.CTRL_START:
            self._before_start()
        self.mmio.write(off, value)

    def _before_start(self) -> None:
        for b in self._bufs:
            if self.whole_buffer_sync and b.dirty:
                b.buf.flush()
                b.dirty = False
            b.stale = True

    # ---- memory
    def alloc(self, nbytes: int) -> int:
        n = max(int(nbytes), 64)
        cma = cma_bytes(self.meminfo)
        if cma is not None and n > cma[0]:
            raise DeviceError(self._cma_message(n, cma))
        try:
            buf = self.pynq.allocate(shape=(n,), dtype=np.uint8, **self._target)
        except (RuntimeError, MemoryError) as e:
            raise DeviceError(f"pynq.allocate of {n} bytes failed ({e}); "
                              + self._cma_message(n, cma_bytes(self.meminfo))) from None
        addr = int(buf.physical_address)
        self._bufs.append(_Buf(addr, n, buf))
        return addr

    @staticmethod
    def _cma_message(n: int, cma) -> str:
        have = (f"the kernel has {cma[0]} bytes of contiguous memory free ({cma[0] >> 20} MiB of "
                f"CmaTotal {cma[1] >> 20} MiB, /proc/meminfo)") if cma else "CmaFree is not in /proc/meminfo"
        return (f"pynq: a buffer of {n} bytes ({n / 2**20:.1f} MiB) needs physically contiguous memory, "
                f"{have}: boot with a larger cma= on the kernel command line (e.g. cma=1200M; cat /proc/cmdline "
                f"shows the current one), free other PYNQ buffers, or use a smaller model")

    def _find(self, addr: int, n: int) -> tuple[_Buf, int]:
        for b in self._bufs:
            if b.addr <= addr and addr + n <= b.addr + b.nbytes:
                return b, addr - b.addr
        raise DeviceError(f"pynq: address 0x{addr:x} (+{n}) is in no buffer this device allocated")

    def write_mem(self, addr: int, data: bytes) -> None:
        b, off = self._find(addr, len(data))
        view = b.buf[off:off + len(data)]
        view[:] = np.frombuffer(data, dtype=np.uint8)
        if self.whole_buffer_sync:
            b.dirty = True  # flushed once at START
        else:
            view.flush()  # a slice of a PynqBuffer flushes exactly its bytes on pynq 3.0.1

    def read_mem(self, addr: int, n: int) -> bytes:
        b, off = self._find(addr, n)
        view = b.buf[off:off + n]
        if not self.whole_buffer_sync:
            view.invalidate()
        elif b.stale:
            if b.dirty:  # the host wrote into it since the run: clean before the whole-buffer invalidate
                b.buf.flush()
                b.dirty = False
            b.buf.invalidate()
            b.stale = False
        return bytes(np.asarray(view, dtype=np.uint8))

    # ---- close: stop the accelerator before its buffers go back to the allocator
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stopped = self._stop()
        if not stopped:
            held = sum(b.nbytes for b in self._bufs)
            print(f"pynq: the accelerator did not stop after a soft reset; its {len(self._bufs)} buffers "
                  f"({held} bytes) stay allocated so that it cannot write into freed memory (reload the "
                  f"overlay or reboot to get them back)", file=sys.stderr)
            return
        for b in self._bufs:
            b.buf.freebuffer()
        self._bufs.clear()
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def _stop(self) -> bool:
        """SOFT_RESET and wait for BUSY and RESETTING to clear; False when they do not within
        CLOSE_TIMEOUT_S or the registers cannot be reached."""
        try:
            self.mmio.write(rm.REG["CTRL"], rm.CTRL_SOFT_RESET)
            t0 = time.monotonic()
            while True:
                st = self.read_reg(rm.REG["STATUS"])
                if not st & (rm.STATUS_BUSY | rm.STATUS_RESETTING):
                    return True
                if time.monotonic() - t0 > CLOSE_TIMEOUT_S:
                    return False
                time.sleep(1e-4)
        except Exception as e:  # noqa: BLE001 - any failure here means we cannot prove it stopped
            print(f"pynq: could not soft-reset the accelerator at close ({e})", file=sys.stderr)
            return False
