"""The simulation device: edgestream_accel under cocotb, served to the host runtime over a Unix socket.

The host (edgestream.host.devices.sim.SimDevice) starts this simulation and connects; every request is
one length-prefixed pickled tuple, answered the same way. Simulated time only moves while a request
needs it (a register access through cocotbext-axi's AXI-Lite master, or `wait`), so the runtime stays
ordinary synchronous Python and drives the RTL exactly as it drives a board.

DDR (`DdrModel`) is one cocotbext-axi memory behind every AXI port of the top: the shell's port
(m_axi: program, activations, beta, results) and its weight read ports (m_axi_w0.., when the build has
WP > 1). Reads go through a memory-system model (`DdrProfile`, docs/registers.md "Memory model"):
* one DDR shared by all ports: bursts are served first come, first served at `bytes_per_cycle`
  (the target's peak x refresh x controller efficiency at the shell's clock) plus
  `burst_overhead_bytes` of command/bank time per burst;
* a read latency (cycles from the AR handshake to the first R beat, after the data is served) with a
  per-burst jitter of 0..`jitter` cycles (row misses, queueing);
* AR backpressure: a port accepts at most `accept` bursts in flight (ARREADY falls while it has
  them); R: each port returns one beat per cycle at most, when the DDR has served it (RVALID gaps);
* out-of-order responses across IDs: a port returns whichever burst is ready first (its jitter),
  bursts of one ID in order, each burst whole.
`DdrProfile.ideal(latency)` is the former fixed-latency AXI RAM (no bandwidth limit, no jitter).
Fault injection for the tests: address windows that answer reads with DECERR/SLVERR or writes with
SLVERR, and a `hang` switch that stops read data (a hung interconnect or engine: the host must time
out).

Requests: ("read_reg", off) ("write_reg", off, value) ("write_mem", addr, bytes) ("read_mem", addr, n)
("wait", cycles) ("cycles",) ("inject", kind, args...) ("clear_faults",) ("close",).
"""

from __future__ import annotations

import math
import os
import pickle
import random
import socket
import struct
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, First, RisingEdge, Timer
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiReadBus
from cocotbext.axi.axi_ram import AxiRamRead, AxiRamWrite
from cocotbext.axi.constants import AxiBurstType, AxiResp
from cocotbext.axi.memory import Memory

from edgestream import regmap as rm
from edgestream.host.devices.ddr_profile import DdrProfile

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


class DdrSchedule:
    """The shared DDR: serves bursts first come, first served; returns the cycle each beat may leave."""

    def __init__(self, profile: DdrProfile):
        self.p = profile
        self.free = 0.0  # when the DDR has served everything reserved so far
        self.rng = random.Random(profile.seed)
        self.served_bytes = 0
        self.bursts = 0

    def reserve(self, now: int, beats: int, beat_bytes: int) -> list[int]:
        p = self.p
        lat = p.latency + (self.rng.randint(0, p.jitter) if p.jitter else 0)
        self.bursts += 1
        self.served_bytes += beats * beat_bytes
        if p.bytes_per_cycle == math.inf:
            return [now + lat] * beats
        t = max(float(now), self.free) + p.burst_overhead_bytes / p.bytes_per_cycle
        out = []
        for _ in range(beats):
            t += beat_bytes / p.bytes_per_cycle
            out.append(math.ceil(t) + lat)
        self.free = t
        return out


class DdrRead(AxiRamRead):
    """One AXI read port of the memory system: AR accepted while fewer than `accept` bursts are in
    flight; each burst's beats served by the shared DdrSchedule; R one beat per cycle, the ready burst
    with the earliest first beat next (bursts of one ID in order)."""

    def __init__(self, *args, sched: DdrSchedule, faults: Faults, **kwargs):
        self.sched = sched
        self.faults = faults
        self.by_id: dict[int, deque] = {}
        self.inflight = 0
        self.have = Event()
        self.room = Event()
        self._resp_cr = None
        super().__init__(*args, **kwargs)
        # the AR sink takes back-to-back requests while it holds fewer than two (it is popped at once
        # while bursts in flight < accept): a port accepts accept + 2 before ARREADY falls
        self.ar_channel.queue_occupancy_limit = 2

    async def _process_read(self):
        if self._resp_cr is None:
            self._resp_cr = cocotb.start_soon(self._respond())
        while True:
            while self.inflight >= self.sched.p.accept:
                self.room.clear()
                await self.room.wait()
            ar = await self.ar_channel.recv()
            length = int(ar.arlen) + 1
            ready = self.sched.reserve(cycles_now(), length, self.byte_lanes)
            self.by_id.setdefault(int(ar.arid), deque()).append((ready, ar))
            self.inflight += 1
            self.have.set()

    async def _respond(self):
        while True:
            heads = [q[0] for q in self.by_id.values() if q]
            if not heads:
                self.have.clear()
                await self.have.wait()
                continue
            ready, ar = min(heads, key=lambda h: h[0][0])
            wait = ready[0] - cycles_now()
            if wait > 0:
                # a burst that arrives meanwhile may be ready sooner: look again after a short wait
                await ClockCycles(self.clock, min(wait, 8))
                continue
            self.by_id[int(ar.arid)].popleft()
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
                wait = ready[n] - cycles_now()
                if wait > 0:
                    await ClockCycles(self.clock, wait)
                a = addr + n * nb
                r = self.r_channel._transaction_obj()
                r.rid = arid
                r.rlast = n == length - 1
                r.rresp = self.faults.read_resp(a)
                r.rdata = 0 if r.rresp else int.from_bytes(self.read(a % self.size, self.byte_lanes), "little")
                await self.r_channel.send(r)
            self.inflight -= 1
            self.room.set()


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
    """The memory behind the shell's port `bus` and its weight read ports `wbuses` (one memory, one
    shared DdrSchedule)."""

    def __init__(self, bus, clock, reset, size: int, profile: DdrProfile | int, faults: Faults, wbuses=()):
        super().__init__(size)
        if isinstance(profile, int):
            profile = DdrProfile.ideal(profile)
        self.profile = profile
        self.sched = DdrSchedule(profile)
        self.write_if = FaultyWrite(bus.write, clock, reset, False, mem=self.mem, faults=faults)
        self.read_if = DdrRead(bus.read, clock, reset, False, mem=self.mem, sched=self.sched, faults=faults)
        self.wread_ifs = [DdrRead(b, clock, reset, False, mem=self.mem, sched=self.sched, faults=faults)
                          for b in wbuses]


def weight_buses(dut, wp: int) -> list:
    """The weight read ports a build with `wp` weight ports uses (wp > 1: m_axi_w0..), read-only AXI4;
    the unused ones are tied off in the RTL (ARVALID 0) and get inputs that never answer."""
    buses = []
    for i in range(4):
        if wp > 1 and i < wp:
            buses.append(AxiReadBus.from_prefix(dut, f"m_axi_w{i}"))
        else:
            getattr(dut, f"m_axi_w{i}_arready").value = 0
            getattr(dut, f"m_axi_w{i}_rvalid").value = 0
            getattr(dut, f"m_axi_w{i}_rid").value = 0
            getattr(dut, f"m_axi_w{i}_rdata").value = 0
            getattr(dut, f"m_axi_w{i}_rresp").value = 0
            getattr(dut, f"m_axi_w{i}_rlast").value = 0
    return buses


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
    prof = os.environ.get("ES_SIM_DDR")
    profile = DdrProfile.from_json(prof) if prof else DdrProfile.ideal(latency)
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    faults = Faults()
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst_n, reset_active_level=False)
    ddr = DdrModel(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst_n, mem_bytes, profile, faults,
                   weight_buses(dut, int(os.environ.get("ES_SIM_WPORTS", "1"))))
    dut.rst_n.value = 0
    await ClockCycles(dut.clk, 8)
    dut.rst_n.value = 1
    await ClockCycles(dut.clk, 2)
    # "wait" below sleeps on the interrupt line (level: DONE, HOST or ERROR), so the line is enabled
    # from the start; a host that clears IRQ_EN gets the bounded wait of its request instead
    await axil.write_dword(rm.REG["IRQ_EN"], 1)

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
