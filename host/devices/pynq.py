"""`pynq` device: the accelerator on a PYNQ board (KV260) through pynq.Overlay, pynq.MMIO and
pynq.allocate buffers. The same driver runs it as runs the simulation.

NOT RUN IN CI: there is no board here and `pynq` (the [board] extra) is not installed. The exact
calls are unit-tested against a recording fake of the pynq objects (tests/test_devices.py);
docs/board.md says how to bring it up on a KV260.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

import numpy as np

from edgestream.errors import DeviceError

DEFAULT_BITFILE = Path(__file__).resolve().parents[2] / "hw" / "boards" / "kv260" / "build" / "edgestream.bit"
IP_NAME = "edgestream_accel_0"


class PynqDevice:
    name = "pynq"

    def __init__(self, bitfile: str | os.PathLike | None = None, ip_name: str = IP_NAME, pynq_module=None):
        if pynq_module is None:
            try:
                pynq_module = importlib.import_module("pynq")
            except ImportError:
                raise DeviceError("the pynq device needs the 'pynq' package (pip install 'edgestream[board]' on "
                                  "the board)") from None
        self.pynq = pynq_module
        bit = Path(bitfile or os.environ.get("EDGESTREAM_BITFILE") or DEFAULT_BITFILE)
        if not bit.is_file():
            raise DeviceError(f"{bit}: no such bitstream (build it with hw/boards/kv260/build.sh, or set "
                              f"EDGESTREAM_BITFILE); its .hwh must lie next to it")
        self.overlay = pynq_module.Overlay(str(bit))
        ips = self.overlay.ip_dict
        if ip_name not in ips:
            raise DeviceError(f"{bit}: the overlay has no IP named {ip_name!r} (has: {', '.join(sorted(ips))})")
        ip = ips[ip_name]
        self.mmio = pynq_module.MMIO(ip["phys_addr"], ip["addr_range"])
        self._bufs: list[tuple[int, int, object]] = []  # (physical address, bytes, PynqBuffer)

    def read_reg(self, off: int) -> int:
        return int(self.mmio.read(off))

    def write_reg(self, off: int, value: int) -> None:
        self.mmio.write(off, int(value) & 0xFFFFFFFF)

    def alloc(self, nbytes: int) -> int:
        buf = self.pynq.allocate(shape=(max(nbytes, 64),), dtype=np.uint8)
        addr = int(buf.physical_address)
        self._bufs.append((addr, nbytes, buf))
        return addr

    def _find(self, addr: int, n: int):
        for base, size, buf in self._bufs:
            if base <= addr and addr + n <= base + max(size, 64):
                return buf, addr - base
        raise DeviceError(f"pynq: address 0x{addr:x} (+{n}) is in no buffer this device allocated")

    def write_mem(self, addr: int, data: bytes) -> None:
        # a slice of a PynqBuffer is a PynqBuffer of those bytes: flush cleans only them (a whole-buffer
        # flush per map entry would clean megabytes of arena for 16 bytes)
        buf, off = self._find(addr, len(data))
        view = buf[off:off + len(data)]
        view[:] = np.frombuffer(data, dtype=np.uint8)
        view.flush()

    def read_mem(self, addr: int, n: int) -> bytes:
        buf, off = self._find(addr, n)
        view = buf[off:off + n]
        view.invalidate()
        return bytes(np.asarray(view, dtype=np.uint8))

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def now(self) -> float:
        return time.monotonic()

    def close(self) -> None:
        for _, _, buf in self._bufs:
            buf.freebuffer()
        self._bufs.clear()
