"""A `pynq.Device` whose registers and memory are the accelerator's: its register-level model
(edgestream.host.devices.cpu, checks_pynq.py) or the RTL itself under Verilator (edgestream's
SimDevice, checks_pynq_rtl.py), so pynq's own Overlay, MMIO, allocate/PynqBuffer (and Interrupt with
its AXI interrupt controller) run unchanged above it, as on a board. Written the way PYNQ's own tests
mock devices (PYNQ tests/mock_devices.py: a Device subclass with capabilities REGISTER_RW,
read_registers/write_registers, allocate returning a real pynq.buffer.PynqBuffer, flush/invalidate):
the MMIO path is pynq's tinynumpy hook, the buffers are real PynqBuffers, the metadata is parsed by
pynq's own loader (pynqmetadata's HWH frontend, as the EmbeddedDevice does on a Kria board).

What a board has and this model stands in for, each kept as close to the board's behaviour as matters:
* DDR and the CPU cache. Each PynqBuffer is the CPU's view (host memory); the accelerator model reads
  and writes its own copy (its DDR). flush copies the CPU view to DDR, invalidate DDR to the CPU view,
  each over the WHOLE buffer object as pynq 3.1/4.0's XrtDevice does (bo.sync ignores offset and size)
  or over exactly the slice as pynq 3.0.1 did (`sync="slice"`). Data the device code forgets to flush
  is not seen by the accelerator; results it forgets to invalidate are stale: a test then fails.
* CMA: `cma_free` bytes of contiguous memory; /proc/meminfo's CmaTotal/CmaFree are written to a file
  the pynq device reads.
* The .bit and .hwh: Vivado cannot run here, so `write_overlay` writes the smallest pair pynq's parsers
  accept: a .bit with the Xilinx header pynq's parse_bit_header reads, and an .hwh in Vivado's
  EDKSYSTEM layout describing exactly the block design edgestream.vivado generates (the PS with
  M_AXI_HPM0_FPD and pl_ps_irq0, the accelerator's s_axil window, axi_intc_0 between the accelerator's
  irq and pl_ps_irq0). A Vivado-written .hwh carries far more (every PS parameter, every net); pynq
  reads only what is here.
* The kernel's UIO interrupt line: `UioLine` replaces pynq.uio.UioController for the PS IRQ (Linux
  delivers pl_ps_irq0 through /dev/uioN on the board); it sets pynq's event when the interrupt
  controller model's output is high, from the asyncio loop as the real one does from the fd reader.
"""

from __future__ import annotations

import asyncio
import ctypes
import struct
import weakref
from pathlib import Path

import numpy as np
import pynq

from edgestream.host.devices.cpu import CpuDevice
from edgestream.vivado import CELL, INTC, top_ports

REPO = Path(__file__).resolve().parents[2]
ACC_BASE, ACC_RANGE = 0xA000_0000, 0x1000
INTC_BASE, INTC_RANGE = 0xA001_0000, 0x1000
# The PS clock controller (UG1085 CRL_APB / CRF_APB) whose PL0_REF_CTRL pynq's Overlay.download programs
CRL_APB, CRF_APB, CR_RANGE = 0xFF5E0000, 0xFD1A0000, 0x100
IOPLL_CTRL, PL0_REF_CTRL = 0x20, 0xC0
RAW_IRQ = 121  # pl_ps_irq0 channel 0 on Zynq UltraScale+ (pynqmetadata's UltrascaleProcSysCore irq_map)
AXIMM = "xilinx.com:interface:aximm:1.0"
# simulated seconds a run over the RTL may take within its CTRL write, in steps that end early at the irq
RUN_LIMIT_S, RUN_STEP_S = 0.05, 1e-3


# ---------------------------------------------------------------- overlay files
def bit_file(design: str = "edgestream_wrapper", part: str = "xck26-sfvc784-2LV-c", payload: bytes = b"") -> bytes:
    """A .bit with the header Vivado writes (the fields pynq's parse_bit_header reads): the 9-byte
    magic field, 'a' design;version, 'b' part, 'c' date, 'd' time, 'e' data length + data."""
    def field(tag: bytes, text: str) -> bytes:
        b = text.encode("ascii") + b"\0"
        return tag + struct.pack(">H", len(b)) + b

    data = payload or bytes(range(16)) * 4
    head = struct.pack(">H", 9) + bytes.fromhex("0ff00ff00ff00ff000") + struct.pack(">H", 1)
    return (head + field(b"a", f"{design};UserID=0XFFFFFFFF;Version=2023.2") + field(b"b", part)
            + field(b"c", "2026/12/01") + field(b"d", "12:00:00") + b"e" + struct.pack(">I", len(data)) + data)


def _ports_xml(ports, conns: dict[str, tuple[str, str]]) -> str:
    out = []
    for p in ports:
        rng = f' LEFT="{p.width - 1}" RIGHT="0"' if p.width > 1 else ""
        sig = ' SIGIS="clk"' if p.name == "clk" else ' SIGIS="rst"' if p.name == "rst_n" else ""
        sig = ' SENSITIVITY="LEVEL_HIGH" SIGIS="INTERRUPT"' if p.name in ("irq", "intr", "pl_ps_irq0") else sig
        con = ""
        if p.name in conns:
            inst, port = conns[p.name]
            con = f'<CONNECTIONS><CONNECTION INSTANCE="{inst}" PORT="{port}"/></CONNECTIONS>'
        out.append(f'<PORT DIR="{"O" if p.direction == "output" else "I"}" NAME="{p.name}"{rng}{sig}>{con}</PORT>')
    return "\n".join(out)


class _P:
    def __init__(self, name, direction, width=1):
        self.name, self.direction, self.width = name, direction, width


def _axil_slave(prefix: str) -> tuple[list[_P], str]:
    sigs = [("AWADDR", "input", 12), ("AWVALID", "input", 1), ("AWREADY", "output", 1), ("WDATA", "input", 32),
            ("WSTRB", "input", 4), ("WVALID", "input", 1), ("WREADY", "output", 1), ("BRESP", "output", 2),
            ("BVALID", "output", 1), ("BREADY", "input", 1), ("ARADDR", "input", 12), ("ARVALID", "input", 1),
            ("ARREADY", "output", 1), ("RDATA", "output", 32), ("RRESP", "output", 2), ("RVALID", "output", 1),
            ("RREADY", "input", 1)]
    ports = [_P(f"{prefix}_{s.lower()}", d, w) for s, d, w in sigs]
    pm = "".join(f'<PORTMAP LOGICAL="{s}" PHYSICAL="{prefix}_{s.lower()}"/>' for s, _, _ in sigs)
    return ports, pm


def hwh_text(clock_mhz: float = 250.0, with_intc: bool = True) -> str:
    """The block design of edgestream.vivado as Vivado's hardware handoff describes it (the parts pynq
    reads). The accelerator's ports are the wrapper's (edgestream.vivado.top_ports)."""
    acc_ports = [p for p in top_ports(REPO / "hw" / "rtl" / "edgestream_accel.sv") if not p.name.startswith("m_axi_w")]
    div0 = round(1000 / clock_mhz)
    acc_conn = {"irq": (INTC, "intr")} if with_intc else {}
    acc_pm = "".join(f'<PORTMAP LOGICAL="{p.name[len("s_axil_"):].upper()}" PHYSICAL="{p.name}"/>'
                     for p in acc_ports if p.name.startswith("s_axil_"))
    ps_ports = [_P("pl_clk0", "output"), _P("pl_resetn0", "output"), _P("pl_ps_irq0", "input")]
    ps_conn = {"pl_ps_irq0": (INTC, "irq")} if with_intc else {}
    intc_ports, intc_pm = _axil_slave("s_axi")
    intc_ports = intc_ports + [_P("s_axi_aclk", "input"), _P("s_axi_aresetn", "input"), _P("intr", "input"),
                               _P("irq", "output")]
    intc_conn = {"intr": (CELL, "irq"), "irq": ("zynq_ultra_ps_e_0", "pl_ps_irq0")}
    memranges = [f'<MEMRANGE ADDRESSBLOCK="reg0" BASENAME="C_BASEADDR" BASEVALUE="0x{ACC_BASE:08X}" '
                 f'HIGHNAME="C_HIGHADDR" HIGHVALUE="0x{ACC_BASE + ACC_RANGE - 1:08X}" INSTANCE="{CELL}" '
                 f'IS_DATA="TRUE" IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="M_AXI_HPM0_FPD" MEMTYPE="REGISTER" '
                 f'SLAVEBUSINTERFACE="s_axil"/>']
    if with_intc:
        memranges.append(f'<MEMRANGE ADDRESSBLOCK="Reg" BASENAME="C_BASEADDR" BASEVALUE="0x{INTC_BASE:08X}" '
                         f'HIGHNAME="C_HIGHADDR" HIGHVALUE="0x{INTC_BASE + INTC_RANGE - 1:08X}" INSTANCE="{INTC}" '
                         f'IS_DATA="TRUE" IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="M_AXI_HPM0_FPD" '
                         f'MEMTYPE="REGISTER" SLAVEBUSINTERFACE="s_axi"/>')
    ps_params = {"PSU__USE__IRQ0": "1", "PSU__USE__S_AXI_GP2": "1", "PSU__SAXIGP2__DATA_WIDTH": "128",
                 "PSU__MAXIGP0__DATA_WIDTH": "32"}
    for i in range(4):  # pynq reads all four PL clocks; only pl_clk0 is enabled
        ps_params.update({f"PSU__FPGA_PL{i}_ENABLE": "1" if i == 0 else "0",
                          f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR0": str(div0 if i == 0 else 10),
                          f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR1": "1",
                          f"PSU__CRL_APB__PL{i}_REF_CTRL__SRCSEL": "IOPLL",
                          f"PSU__CRL_APB__PL{i}_REF_CTRL__FREQMHZ": f"{clock_mhz:g}" if i == 0 else "100",
                          f"PSU__CRL_APB__PL{i}_REF_CTRL__ACT_FREQMHZ": f"{1000 / (div0 if i == 0 else 10):.6f}"})
    pxml = "".join(f'<PARAMETER NAME="{k}" VALUE="{v}"/>' for k, v in ps_params.items())
    intc_module = "" if not with_intc else f"""
    <MODULE FULLNAME="/{INTC}" INSTANCE="{INTC}" MODTYPE="axi_intc" VLNV="xilinx.com:ip:axi_intc:4.1">
      <PARAMETERS><PARAMETER NAME="C_IRQ_CONNECTION" VALUE="1"/>
        <PARAMETER NAME="C_KIND_OF_INTR" VALUE="0xFFFFFFFF"/></PARAMETERS>
      <PORTS>{_ports_xml(intc_ports, intc_conn)}</PORTS>
      <BUSINTERFACES>
        <BUSINTERFACE BUSNAME="sc_ctl_M01_AXI" NAME="s_axi" TYPE="SLAVE" VLNV="{AXIMM}">
          <PORTMAPS>{intc_pm}</PORTMAPS></BUSINTERFACE></BUSINTERFACES>
    </MODULE>"""
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no" ?>
<EDKSYSTEM EDWVERSION="1.2" TIMESTAMP="Tue Dec  1 12:00:00 2026" VIVADOVERSION="2023.2">
  <SYSTEMINFO ARCH="zynquplus" BOARD="xilinx.com:kv260_som:part0:1.4" DEVICE="xck26" NAME="edgestream"
    PACKAGE="sfvc784" SPEEDGRADE="-2LV"/>
  <EXTERNALPORTS/>
  <EXTERNALINTERFACES/>
  <MODULES>
    <MODULE FULLNAME="/zynq_ultra_ps_e_0" INSTANCE="zynq_ultra_ps_e_0" MODTYPE="zynq_ultra_ps_e"
      VLNV="xilinx.com:ip:zynq_ultra_ps_e:3.5">
      <PARAMETERS>{pxml}</PARAMETERS>
      <MEMORYMAP>{"".join(memranges)}</MEMORYMAP>
      <PORTS>{_ports_xml(ps_ports, ps_conn)}</PORTS>
      <BUSINTERFACES>
        <BUSINTERFACE BUSNAME="zynq_ultra_ps_e_0_M_AXI_HPM0_FPD" NAME="M_AXI_HPM0_FPD" TYPE="MASTER" VLNV="{AXIMM}">
          <PORTMAPS/></BUSINTERFACE></BUSINTERFACES>
    </MODULE>
    <MODULE FULLNAME="/{CELL}" INSTANCE="{CELL}" MODTYPE="edgestream_accel_wrapper"
      VLNV="xilinx.com:module_ref:edgestream_accel_wrapper:1.0">
      <PARAMETERS/>
      <PORTS>{_ports_xml(acc_ports, acc_conn)}</PORTS>
      <BUSINTERFACES>
        <BUSINTERFACE BUSNAME="sc_ctl_M00_AXI" NAME="s_axil" TYPE="SLAVE" VLNV="{AXIMM}">
          <PORTMAPS>{acc_pm}</PORTMAPS></BUSINTERFACE></BUSINTERFACES>
    </MODULE>{intc_module}
  </MODULES>
</EDKSYSTEM>
"""


def write_overlay(d: Path, name: str = "edgestream", with_intc: bool = True) -> Path:
    """.bit + .hwh (+ .xclbin: on a board pynq synthesizes one from the .hwh with XRT's xclbinutil, which
    is not installed here; pynq's own blank default.xclbin next to the .bit takes that path instead)."""
    from pynq.pl_server.embedded_device import DEFAULT_XCLBIN

    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.bit").write_bytes(bit_file())
    (d / f"{name}.hwh").write_text(hwh_text(with_intc=with_intc))
    (d / f"{name}.xclbin").write_bytes(DEFAULT_XCLBIN)
    return d / f"{name}.bit"


# ---------------------------------------------------------------- the device
class IntcModel:
    """AXI INTC v4.1 registers pynq's _InterruptController uses (PG099): ISR 0x00, IPR 0x04, IER 0x08,
    IAR 0x0C, SIE 0x10, CIE 0x14, MER 0x1C; input 0 is the accelerator's level irq."""

    def __init__(self, level):
        self.level = level  # () -> bool
        self.isr = self.ier = self.mer = 0

    def _sample(self):
        if self.level():
            self.isr |= 1  # a level input keeps its ISR bit set while high (re-set after IAR)

    def output(self) -> bool:
        self._sample()
        return bool(self.mer & 1) and bool(self.isr & self.ier)

    def read(self, off: int) -> int:
        self._sample()
        return {0x00: self.isr, 0x04: self.isr & self.ier, 0x08: self.ier, 0x1C: self.mer}.get(off, 0)

    def write(self, off: int, v: int) -> None:
        if off == 0x08:
            self.ier = v
        elif off == 0x0C:
            self.isr &= ~v
        elif off == 0x10:
            self.ier |= v
        elif off == 0x14:
            self.ier &= ~v
        elif off == 0x1C:
            self.mer = v
        self._sample()


class UioLine:
    """The kernel side of pl_ps_irq0 (pynq.uio.UioController's interface: add_event(event, number)):
    the event is set from the asyncio loop once the interrupt controller's output is high."""

    def __init__(self, intc: IntcModel, poll_s: float = 1e-4):
        self.intc, self.poll_s = intc, poll_s
        self.events: list = []
        self.deliveries = 0

    def add_event(self, event, number):
        self.events.append(event)
        asyncio.get_event_loop().call_soon(self._check)

    def _check(self):
        if not self.events:
            return
        if self.intc.output():
            events, self.events = self.events, []
            self.deliveries += 1
            for e in events:
                try:
                    e.set()
                except RuntimeError:  # an event of a loop closed since (a device closed mid-wait)
                    pass
        else:
            asyncio.get_event_loop().call_later(self.poll_s, self._check)


class ModelDevice(pynq.Device):
    """pynq.Device over the accelerator's register-level model (edgestream.host.devices.cpu.CpuDevice),
    or any edgestream device with the same interface: the RTL under simulation (SimDevice; its
    registers are the RTL's AXI-Lite slave, its DDR the memory the RTL's AXI masters read and write).

    A simulation's clock moves only while a request needs it (sim/sim_server.py), and it runs some
    thousand times slower than the fabric; the host's clock (time.monotonic in the pynq device and its
    driver's timeouts) does not stop meanwhile. So over a simulation the fabric is made infinitely
    fast next to the CPU, as the register model is: the CTRL write that starts or soft-resets the
    accelerator returns once the simulated RTL has stopped (ERROR, or neither BUSY nor RESETTING), or
    after RUN_LIMIT_S of its time (a hang: BUSY stays, and the host times out as on a board)."""

    _probe_priority_ = 1000  # registers the class with pynq's DeviceMeta; probing finds no hardware

    @classmethod
    def _probe_(cls):
        return []

    def __init__(self, model=None, sync: str = "whole", cma_free: int = 1 << 30, tag: str = "edgestream_model"):
        super().__init__(tag)
        self.capabilities = {"REGISTER_RW": True}
        self.arch = "aarch64"  # a Zynq UltraScale+ (pynq.ps.Clocks picks its register layout by it)
        self.model = model or CpuDevice()
        self.simulated = getattr(self.model, "name", None) == "sim"
        # IOPLL = 33.333 MHz x 60 / 2 (DIV2): 1000 MHz, the Kria preset's source for pl_clk0
        self.crl = {IOPLL_CTRL: 60 << 8 | 1 << 16, PL0_REF_CTRL: 1 << 24 | 10 << 8 | 1 << 16}
        self.crf: dict[int, int] = {}
        self.sync = sync
        self.cma_free = cma_free
        self.intc = IntcModel(self._irq_level)
        self.uio = UioLine(self.intc)
        self.log: list[tuple] = []  # ("flush"|"invalidate", bo, bytes) and ("download", bitfile)
        self.bos: dict[int, tuple[int, int]] = {}  # bo id -> (bus address, bytes)
        self.freed: list[int] = []
        self._live: dict[int, weakref.ref] = {}

    def _irq_level(self) -> bool:
        from edgestream import regmap as rm

        st = self.model.read_reg(rm.REG["STATUS"])
        en = self.model.read_reg(rm.REG["IRQ_EN"]) & 1
        return bool(en and st & (rm.STATUS_DONE | rm.STATUS_ERROR | rm.STATUS_HOST))

    # ---- metadata and download: pynq's own parser, as EmbeddedDevice.get_bitfile_metadata
    def get_bitfile_metadata(self, bitfile_name):
        from pynq.pl_server.embedded_device import _get_bitstream_handler

        return _get_bitstream_handler(bitfile_name).get_parser()

    def download(self, bitstream, parser=None):
        from pynq.pl_server.embedded_device import bit2bin

        # what EmbeddedDevice hands the FPGA manager: the .bit payload, byte-swapped
        bit2bin(Path(bitstream.bitfile_name).read_bytes())
        self.log.append(("download", bitstream.bitfile_name))
        super().post_download(bitstream, parser, self.tag)

    # ---- registers (pynq.MMIO with REGISTER_RW: bytes through tinynumpy's hook)
    def _target(self, address: int):
        for base, size, rd, wr in ((ACC_BASE, ACC_RANGE, self.model.read_reg, self.model.write_reg),
                                   (INTC_BASE, INTC_RANGE, self.intc.read, self.intc.write),
                                   (CRL_APB, CR_RANGE, lambda o: self.crl.get(o, 0), self.crl.__setitem__),
                                   (CRF_APB, CR_RANGE, lambda o: self.crf.get(o, 0), self.crf.__setitem__)):
            if base <= address < base + size:
                return address - base, rd, wr
        raise RuntimeError(f"no IP at 0x{address:x}")

    def read_registers(self, address, length):
        off, rd, _ = self._target(address)
        words = [rd(o) for o in range(off, off + length, 4)]
        return struct.pack(f"<{len(words)}I", *words)

    def write_registers(self, address, data):
        from edgestream import regmap as rm

        off, _, wr = self._target(address)
        for i, (w,) in enumerate(struct.iter_unpack("<I", bytes(data))):
            wr(off + 4 * i, w)
            if self.simulated and address - off == ACC_BASE and off + 4 * i == rm.REG["CTRL"]:
                self._run_until_stopped()

    def _run_until_stopped(self) -> None:
        """Let the simulated RTL run until it stops; its wait returns early at the shell's irq."""
        from edgestream import regmap as rm

        for _ in range(round(RUN_LIMIT_S / RUN_STEP_S)):
            st = self.model.read_reg(rm.REG["STATUS"])
            if st & rm.STATUS_ERROR or not st & (rm.STATUS_BUSY | rm.STATUS_RESETTING):
                return
            self.model.wait(RUN_STEP_S)

    def pl0_mhz(self) -> float:
        """pl_clk0 as the clock controller is programmed now."""
        r, pll = self.crl[PL0_REF_CTRL], self.crl[IOPLL_CTRL]
        src = 33.333 * (pll >> 8 & 0x7F) / (2 if pll >> 16 & 1 else 1)
        return src / (r >> 8 & 0x3F) / (r >> 16 & 0x3F)

    # ---- memory: PynqBuffers are the CPU's view, the model holds DDR
    def allocate(self, shape, dtype, **kwargs):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if nbytes > self.cma_free:
            # what XRT's allocator does when CMA is exhausted
            raise RuntimeError("Buffer allocation failed: bad_alloc")
        self.cma_free -= nbytes
        addr = self.model.alloc(nbytes)
        bo = len(self.bos) + 1
        self.bos[bo] = (addr, nbytes)
        buf = pynq.buffer.PynqBuffer(shape, dtype, device=self, device_address=addr, bo=bo, coherent=False)
        # freebuffer() hands the allocation back through return_pointer (pynq's pooled-buffer path;
        # XRT's own path munmaps, which needs the board's libc mapping)
        buf.return_to, buf.pointer, buf.memory = self, bo, self
        self._live[bo] = weakref.ref(buf)
        return buf

    def return_pointer(self, bo):
        self.freed.append(bo)
        self.cma_free += self.bos[bo][1]
        buf = self._live.pop(bo)()
        if buf is not None:
            buf.freed = True  # a second freebuffer (its __del__) is then a no-op, as for XRT buffers

    def _sync(self, bo, offset, ptr, size):
        base, nbytes = self.bos[bo]
        if self.sync == "whole":  # pynq 3.1/4.0: bo.sync(direction) over the whole buffer object
            start, n = ptr - offset, nbytes
            offset = 0
        else:  # pynq 3.0.1: the slice
            start, n = ptr, size
        view = np.ctypeslib.as_array((ctypes.c_uint8 * n).from_address(start))
        return base + offset, n, view

    def flush(self, bo, offset, ptr, size):
        addr, n, view = self._sync(bo, offset, ptr, size)
        self.log.append(("flush", bo, n))
        self.model.write_mem(addr, view.tobytes())

    def invalidate(self, bo, offset, ptr, size):
        addr, n, view = self._sync(bo, offset, ptr, size)
        self.log.append(("invalidate", bo, n))
        view[:] = np.frombuffer(self.model.read_mem(addr, n), np.uint8)

    # ---- the interrupt line: the UIO device pynq opens for pl_ps_irq0
    def install_uio(self):
        from pynq.interrupt import _InterruptController

        _InterruptController._uio_devices[RAW_IRQ] = self.uio

    def meminfo(self, path: Path) -> Path:
        """A /proc/meminfo with this device's CMA figures (kB), for the pynq device's capacity check."""
        path.write_text(f"MemTotal:        4027884 kB\nCmaTotal:        {1 << 20} kB\n"
                        f"CmaFree:         {self.cma_free // 1024} kB\n")
        return path
