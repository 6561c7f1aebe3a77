"""The simulation device: edgestream_accel under cocotb, served to the host runtime over a Unix socket.

The host (edgestream.host.devices.sim.SimDevice) starts this simulation and connects; every request is
one length-prefixed pickled tuple, answered the same way. Simulated time only moves while a request
needs it (a register access through cocotbext-axi's AXI-Lite master, or `wait`), so the runtime stays
ordinary synchronous Python and drives the RTL exactly as it drives a board.

DDR is cocotbext-axi's AXI RAM (`DdrModel`) with a configurable read latency (cycles from the AR
handshake to the first R beat, bursts pipelined behind it), and fault injection for the tests: address
windows that answer reads with DECERR/SLVERR or writes with SLVERR, and a `hang` switch that stops
read data (a hung interconnect or engine: the host must time out).

Requests: ("read_reg", off) ("write_reg", off, value) ("write_mem", addr, bytes) ("read_mem", addr, n)
("wait", cycles) ("cycles",) ("inject", kind, args...) ("clear_faults",) ("close",).
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, First, RisingEdge, Timer
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster
from cocotbext.axi.axi_ram import AxiRamRead, AxiRamWrite
from cocotbext.axi.constants import AxiBurstType, AxiResp
from cocotbext.axi.memory import Memory

PERIOD_NS = 4  # 250 MHz


def cycles_now() -> int:
    return int(get_sim_time("ns")) // PERIOD_NS


class Faults:
    def __init__(self):
        self.read_err: list[tuple[int, int, int]] = []  # (lo, hi, resp)
        self.write_err: list[tuple[int, int]] = []
        self.hang = False
        self.unhang = Event()

    def read_resp(self, addr: int) -> int:
        for lo, hi, resp in self.read_err:
            if lo <= addr < hi:
                return resp
        return AxiResp.OKAY


class LatencyRead(AxiRamRead):
    """AXI RAM read side with a fixed latency: bursts are accepted at once (many in flight) and each
    one's first beat leaves `latency` cycles after its AR handshake, beats back to back."""

    def __init__(self, *args, latency: int = 0, faults: Faults, **kwargs):
        self.latency = latency
        self.faults = faults
        self.pending: deque = deque()
        self.have = Event()
        self._resp_cr = None
        super().__init__(*args, **kwargs)
        self.ar_channel.queue_occupancy_limit = 64

    async def _process_read(self):
        if self._resp_cr is None:
            self._resp_cr = cocotb.start_soon(self._respond())
        while True:
            ar = await self.ar_channel.recv()
            self.pending.append((cycles_now() + self.latency, ar))
            self.have.set()

    async def _respond(self):
        while True:
            while not self.pending:
                self.have.clear()
                await self.have.wait()
            due, ar = self.pending.popleft()
            wait = due - cycles_now()
            if wait > 0:
                await ClockCycles(self.clock, wait)
            arid = int(ar.arid)
            addr = int(ar.araddr)
            length = int(ar.arlen) + 1
            size = int(ar.arsize)
            assert AxiBurstType(int(ar.arburst)) == AxiBurstType.INCR
            nb = 2**size
            assert 0x1000 - (addr & 0xFFF) >= nb * length, "burst crosses a 4 KiB boundary"
            for n in range(length):
                while self.faults.hang:
                    self.faults.unhang.clear()
                    await self.faults.unhang.wait()
                a = addr + n * nb
                r = self.r_channel._transaction_obj()
                r.rid = arid
                r.rlast = n == length - 1
                r.rresp = self.faults.read_resp(a)
                r.rdata = 0 if r.rresp else int.from_bytes(self.read(a % self.size, self.byte_lanes), "little")
                await self.r_channel.send(r)


class FaultyWrite(AxiRamWrite):
    def __init__(self, *args, faults: Faults, **kwargs):
        self.faults = faults
        super().__init__(*args, **kwargs)

    async def _write(self, address, data):
        for lo, hi in self.faults.write_err:
            if lo <= address < hi:
                raise OSError(f"injected write error at 0x{address:x}")  # AxiSlaveWrite answers SLVERR
        self.write(address % self.size, data)


class DdrModel(Memory):
    def __init__(self, bus, clock, reset, size: int, latency: int, faults: Faults):
        super().__init__(size)
        self.write_if = FaultyWrite(bus.write, clock, reset, False, mem=self.mem, faults=faults)
        self.read_if = LatencyRead(bus.read, clock, reset, False, mem=self.mem, latency=latency, faults=faults)


def _recv(conn: socket.socket):
    hdr = b""
    while len(hdr) < 4:
        chunk = conn.recv(4 - len(hdr))
        if not chunk:
            return None
        hdr += chunk
    (n,) = struct.unpack("<I", hdr)
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            return None
        buf += chunk
    return pickle.loads(bytes(buf))


def _send(conn: socket.socket, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    conn.sendall(struct.pack("<I", len(data)) + data)


@cocotb.test()
async def serve(dut):
    path = os.environ["ES_SIM_SOCKET"]
    latency = int(os.environ.get("ES_SIM_LATENCY", "100"))
    mem_bytes = int(os.environ.get("ES_SIM_MEM", str(256 << 20)))
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    faults = Faults()
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst_n, reset_active_level=False)
    ddr = DdrModel(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst_n, mem_bytes, latency, faults)
    dut.rst_n.value = 0
    await ClockCycles(dut.clk, 8)
    dut.rst_n.value = 1
    await ClockCycles(dut.clk, 2)

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(float(os.environ.get("ES_SIM_ACCEPT_TIMEOUT", "120")))
    conn, _ = srv.accept()
    conn.settimeout(None)
    srv.close()
    _send(conn, ("ready", cycles_now(), latency, mem_bytes))
    try:
        while True:
            msg = _recv(conn)
            if msg is None or msg[0] == "close":
                break
            op = msg[0]
            try:
                if op == "read_reg":
                    v = await axil.read_dword(msg[1])
                    out = int(v)
                elif op == "write_reg":
                    await axil.write_dword(msg[1], msg[2] & 0xFFFFFFFF)
                    out = None
                elif op == "write_mem":
                    ddr.write(msg[1], msg[2])
                    out = None
                elif op == "read_mem":
                    out = bytes(ddr.read(msg[1], msg[2]))
                elif op == "wait":
                    if not int(dut.irq.value):
                        await First(RisingEdge(dut.irq), ClockCycles(dut.clk, max(1, int(msg[1]))))
                        await Timer(1, unit="ns")
                    out = cycles_now()
                elif op == "cycles":
                    out = cycles_now()
                elif op == "inject":
                    kind = msg[1]
                    if kind == "read_error":
                        resp = AxiResp.DECERR if msg[4] == "DECERR" else AxiResp.SLVERR
                        faults.read_err.append((msg[2], msg[3], resp))
                    elif kind == "write_error":
                        faults.write_err.append((msg[2], msg[3]))
                    elif kind == "hang":
                        faults.hang = True
                    else:
                        raise ValueError(f"unknown fault {kind!r}")
                    out = None
                elif op == "clear_faults":
                    faults.read_err.clear()
                    faults.write_err.clear()
                    faults.hang = False
                    faults.unhang.set()
                    out = None
                else:
                    raise ValueError(f"unknown request {op!r}")
                _send(conn, ("ok", out))
            except Exception as e:  # report to the host, keep serving
                _send(conn, ("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()
