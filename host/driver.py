"""The accelerator driver: one code path for the `cpu` model, the `sim` RTL and a `pynq` board.

The shell's sequencer executes the compiler's program.bin itself (docs/registers.md): the driver
uploads program.bin and hw_weights.bin as they are, keeps the activation arena (buffer map + the
buffers the hardware instructions read and write, in the documented layouts), and runs the program
from a PC: the hardware executes LOAD_ACT/BUILD_TABLE/TLMM/DEQUANT and stops at the next instruction
the host owns (STATUS.HOST) or at END. It writes the registers, waits with a timeout and decodes errors
into DeviceError. `edgestream.host.accel_executor.AccelProgramExecutor` walks the same program and runs
the host instructions in between; `LinearBank` builds one-linear programs for tests and benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgestream import program as pg
from edgestream import regmap as rm
from edgestream.errors import DeviceError

BEAT = rm.DATA_BYTES
SLOT = 8  # bytes per activation group slot
HW_OPS = frozenset({pg.LOAD_ACT, pg.BUILD_TABLE, pg.TLMM, pg.DEQUANT})
CLOCK_HZ = rm.SHELL_HW["clock_mhz"] * 1e6


@dataclass(frozen=True)
class Geometry:
    G: int = rm.SHELL_HW["G"]
    T: int = rm.SHELL_HW["T"]
    Q: int = rm.SHELL_HW["Q"]
    max_k: int = rm.SHELL_HW["max_k"]
    max_tok: int = rm.SHELL_HW["max_tok"]

    @classmethod
    def of(cls, cfg) -> Geometry:
        return cls(cfg.G, cfg.T, cfg.Q, cfg.max_k, cfg.max_tok)

    def groups(self, k: int) -> int:
        return -(-k // self.G)

    def chunks(self, k: int) -> int:
        return -(-self.groups(k) // self.T)

    def row_batches(self, n: int) -> int:
        return -(-n // self.Q)

    def act_beats_per_token(self, k: int) -> int:
        return -(-self.groups(k) // (BEAT // SLOT))

    def weight_beats(self, n: int, k: int, planes: int) -> int:
        return self.row_batches(n) * planes * self.chunks(k)

    def tiles(self, ntok: int) -> int:
        return -(-ntok // self.max_tok)


# ---------------------------------------------------------------- arena layouts (docs/registers.md)
def q_bytes(ntok: int, width: int, geo: Geometry) -> int:
    return ntok * geo.act_beats_per_token(width) * BEAT


def s_bytes(ntok: int) -> int:
    return -(-ntok // 4) * BEAT


def tile_bytes(ntok: int, width: int, geo: Geometry) -> int:
    return geo.tiles(ntok) * geo.row_batches(width) * geo.max_tok * geo.Q * 4


def pack_q(q: np.ndarray, geo: Geometry) -> bytes:
    """int8 [T, K] -> per token ceil(groups / 2) beats; group g in the 8-byte slot g, bytes 0..G-1."""
    t, k = q.shape
    ng = geo.groups(k)
    out = np.zeros((t, geo.act_beats_per_token(k) * (BEAT // SLOT), SLOT), dtype=np.int8)
    qp = np.zeros((t, ng * geo.G), dtype=np.int8)
    qp[:, :k] = q
    out[:, :ng, : geo.G] = qp.reshape(t, ng, geo.G)
    return out.tobytes()


def pack_scales(s: np.ndarray) -> bytes:
    """float32 s [T] -> ceil(T / 4) beats."""
    out = np.zeros(-(-len(s) // 4) * 4, dtype="<f4")
    out[: len(s)] = s
    return out.tobytes()


def unpack_tiles(raw: bytes, ntok: int, width: int, geo: Geometry) -> np.ndarray:
    """f32 buffer in tile layout -> float32 [ntok, width]: tile j at j * RB*MAXTOK*Q*4 bytes, inside it
    [row batch][token of the tile][Q]."""
    rb, mt, q = geo.row_batches(width), geo.max_tok, geo.Q
    a = np.frombuffer(raw, dtype="<f4", count=geo.tiles(ntok) * rb * mt * q)
    out = np.empty((ntok, rb * q), dtype=np.float32)
    for j, t0 in enumerate(range(0, ntok, mt)):
        nt = min(mt, ntok - t0)
        blk = a[j * rb * mt * q : j * rb * mt * q + rb * nt * q].reshape(rb, nt, q)
        out[t0 : t0 + nt] = blk.transpose(1, 0, 2).reshape(nt, rb * q)
    return out[:, :width]


def pack_tiles(x: np.ndarray, geo: Geometry) -> bytes:
    """float32 [ntok, width] -> the tile layout of unpack_tiles, padding columns +0 (what the units write)."""
    ntok, width = x.shape
    rb, mt, q = geo.row_batches(width), geo.max_tok, geo.Q
    full = np.zeros((ntok, rb * q), "<f4")
    full[:, :width] = x
    out = np.zeros(geo.tiles(ntok) * rb * mt * q, "<f4")
    for j, t0 in enumerate(range(0, ntok, mt)):
        nt = min(mt, ntok - t0)
        out[j * rb * mt * q : j * rb * mt * q + rb * nt * q] = full[t0 : t0 + nt].reshape(nt, rb, q).transpose(
            1, 0, 2).reshape(-1)
    return out.tobytes()


def unpack_q(raw: bytes, ntok: int, width: int, geo: Geometry) -> np.ndarray:
    """The i8 slot layout of pack_q -> int8 [ntok, width]."""
    ng = geo.groups(width)
    a = np.frombuffer(raw, np.int8, ntok * geo.act_beats_per_token(width) * BEAT).reshape(ntok, -1, SLOT)
    return np.ascontiguousarray(a[:, :ng, : geo.G].reshape(ntok, ng * geo.G)[:, :width])


def unpack_scales(raw: bytes, ntok: int) -> np.ndarray:
    return np.frombuffer(raw, "<f4", ntok).astype(np.float32)


def pack_ids(ids: np.ndarray) -> bytes:
    """Token ids -> the ids buffer (docs/units.md): u32 per token, ceil(ntok / 4) beats."""
    out = np.zeros(-(-len(ids) // 4) * 4, "<u4")
    out[: len(ids)] = ids
    return out.tobytes()


def buffer_bytes(dtype: int, ntok: int, width: int, geo: Geometry) -> int:
    """Bytes of a buffer of `ntok` tokens in its device layout (docs/registers.md, docs/units.md)."""
    if dtype == pg.B_F32:
        return tile_bytes(ntok, width, geo)
    if dtype == pg.B_I8:
        return q_bytes(ntok, width, geo)
    return s_bytes(ntok)  # per-token scales and token ids: 4 bytes a token, whole beats


def map_entry(offset: int, capacity: int, width: int, dtype: int) -> bytes:
    return np.array([offset, capacity, width, dtype], dtype="<u4").tobytes()


# ---------------------------------------------------------------- errors
def error_message(code_reg: int, info: int, prog: pg.Program | None = None) -> str:
    code, idx = code_reg & 0xFF, code_reg >> 16
    name = rm.ERR_NAMES.get(code, f"unknown error {code}")
    text = rm.ERR_TEXT.get(code, "")
    where = f"instruction {idx}"
    if code in (rm.ERR["HEADER"], rm.ERR["CONFIG"]):
        where = f"the program header (run from instruction {idx})"
    elif prog is not None and idx < len(prog.instrs):
        where += f" ({pg.OPNAMES.get(prog.instrs[idx].op, '?')})"
    detail = ""
    if code in (rm.ERR["AXI_READ"], rm.ERR["AXI_WRITE"]):
        detail = f" ({ {2: 'SLVERR', 3: 'DECERR'}.get(info, f'RESP={info}') })"
    elif code in (rm.ERR["OPCODE"], rm.ERR["FIELD"], rm.ERR["RANGE"]):
        detail = f" (opcode 0x{info:02x})"
    return f"accelerator error {name} at {where}: {text}{detail}"


def segment_end(prog: pg.Program, pc: int) -> int:
    """Index of the first instruction at or after pc that the hardware does not execute."""
    while pc < len(prog.instrs) and prog.instrs[pc].op in HW_OPS:
        pc += 1
    return pc


def linear_group(prog: pg.Program, pc: int) -> tuple[int, int]:
    """(first, end) of the linear layer instruction pc belongs to: from its first LOAD_ACT (k0 = 0)
    through its last DEQUANT. The device stops anywhere inside a linear it cannot run (K tiles)."""
    ins = prog.instrs
    start = pc
    while start > 0 and ins[start].op in HW_OPS and not (ins[start].op == pg.LOAD_ACT and ins[start].f[0] == 0):
        start -= 1
    end = pc
    while end < len(ins) and ins[end].op in HW_OPS and ins[end].op != pg.DEQUANT:
        end += 1
    while end < len(ins) and ins[end].op == pg.DEQUANT:
        end += 1
    return start, end


def segment_buffers(prog: pg.Program, pc: int, end: int) -> tuple[list[int], list[int], list[int]]:
    """(q buffers, scale buffers, destination buffers) the instructions pc..end-1 touch."""
    qs, ss, ds = [], [], []
    for ins in prog.instrs[pc:end]:
        if ins.op == pg.LOAD_ACT and ins.a not in qs:
            qs.append(ins.a)
        elif ins.op == pg.DEQUANT:
            if ins.f[2] not in ss:
                ss.append(ins.f[2])
            ds.append(ins.a)
    return qs, ss, ds


# ---------------------------------------------------------------- driver
class AccelDriver:
    """Register-level driver. `expected_config_id` is the configuration the program was built for."""

    def __init__(self, device, expected_config_id: int | None = None, timeout_s: float = 1e-3,
                 geo: Geometry = Geometry()):
        self.dev, self.geo, self.timeout_s = device, geo, timeout_s
        # a run's deadline: timeout_s plus this much device time per bus beat it may move (4 cycles)
        self.beat_slack_s = 4 / CLOCK_HZ
        self.expected_config_id = rm.shell_config_id() if expected_config_id is None else expected_config_id
        self.prog: pg.Program | None = None
        self.prog_base = self.wgt_base = self.wgt_size = 0
        self.act_base = self.act_cap = self.map_bytes = 0
        self.last_counters: dict[str, int] = {}
        self.runs = 0
        self._check_identity()

    # ---- identity
    def _check_identity(self) -> None:
        magic = self.dev.read_reg(rm.REG["MAGIC"])
        if magic != rm.MAGIC:
            raise DeviceError(f"{self.dev.name}: no edgestream accelerator at the register window "
                              f"(MAGIC = 0x{magic:08x}, expected 0x{rm.MAGIC:08x})")
        ver = self.dev.read_reg(rm.REG["VERSION"])
        if ver != rm.REGMAP_VERSION:
            raise DeviceError(f"{self.dev.name}: register map version {ver}, this driver speaks {rm.REGMAP_VERSION}")
        cid = self.config_id()
        if cid != self.expected_config_id:
            raise DeviceError(f"{self.dev.name}: the accelerator's configuration ID is {cid:016x} but the program "
                              f"was built for {self.expected_config_id:016x}: load the matching bitstream or "
                              f"recompile for this one")
        self.reset()

    def config_id(self) -> int:
        return self.dev.read_reg(rm.REG["CONFIG_ID_LO"]) | self.dev.read_reg(rm.REG["CONFIG_ID_HI"]) << 32

    def _write64(self, lo: str, hi: str, v: int) -> None:
        self.dev.write_reg(rm.REG[lo], v & 0xFFFFFFFF)
        self.dev.write_reg(rm.REG[hi], v >> 32)

    # ---- load
    def load(self, program: pg.Program, image, blob: bytes | None = None) -> None:
        """Upload program.bin and the weight image (bytes or a uint8 array) as they are. `blob` replaces
        the program's encoding (tests hand the device corrupt programs this way)."""
        if blob is None and int(program.config_id, 16) != self.expected_config_id:
            raise DeviceError(f"program.bin was lowered for configuration {program.config_id}, the driver "
                              f"expects {self.expected_config_id:016x}")
        blob = program.encode() if blob is None else blob
        self.prog = program
        self.prog_base = self.dev.alloc(len(blob))
        self.dev.write_mem(self.prog_base, blob)
        self._write64("PROG_BASE_LO", "PROG_BASE_HI", self.prog_base)
        self.dev.write_reg(rm.REG["PROG_SIZE"], len(blob))
        img = memoryview(np.ascontiguousarray(np.frombuffer(image, np.uint8) if isinstance(image, bytes | bytearray)
                                              else image, dtype=np.uint8)).cast("B")
        self.wgt_size = max(len(img), BEAT)
        self.wgt_base = self.dev.alloc(self.wgt_size)
        for o in range(0, len(img), 8 << 20):  # bounded chunks: the sim socket and pynq copies stay small
            self.dev.write_mem(self.wgt_base + o, bytes(img[o : o + (8 << 20)]))
        self._write64("WGT_BASE_LO", "WGT_BASE_HI", self.wgt_base)
        self.dev.write_reg(rm.REG["WGT_SIZE"], self.wgt_size)
        self.map_bytes = len(program.buffers) * rm.MAP_ENTRY_BYTES
        self.act_cap = 0
        self.resident: dict[int, tuple[int, int]] = {}
        self._ensure_arena(64 << 10)
        self.dev.write_reg(rm.REG["IRQ_EN"], 1)  # the shell's irq ends a device wait (sim, boards)

    # ---- device-resident buffers (one START per forward pass)
    def units(self) -> int:
        """HW_UNITS: the units behind the sequencer (edgestream.host.devices.cpu_units.U_*)."""
        return self.dev.read_reg(rm.REG["HW_UNITS"])

    def unit_limits(self) -> dict[str, int]:
        v = self.dev.read_reg(rm.REG["HW_VEC"])
        kvp = self.units() >> 4 & 0xF
        return {"vmax": v & 0xFFFF, "dmax": v >> 16, "smax": self.dev.read_reg(rm.REG["HW_SMAX"]), "kvp": kvp or 1}

    def map_buffers(self, caps: dict[int, int]) -> None:
        """A new arena holding every buffer of `caps` (program buffer -> capacity in bytes) for the rest
        of the session, its map written once; unlisted buffers are unmapped."""
        prog = self.prog
        top, offs = self.map_bytes, {}
        top = -(-top // 64) * 64
        for b, cap in caps.items():
            offs[b] = (top, cap)
            top += -(-cap // 64) * 64
        self.act_cap = max(top, BEAT)
        self.act_base = self.dev.alloc(self.act_cap)
        table = bytearray(self.map_bytes)
        for b, (off, cap) in offs.items():
            buf = prog.buffers[b]
            table[b * rm.MAP_ENTRY_BYTES:(b + 1) * rm.MAP_ENTRY_BYTES] = map_entry(off, cap, buf.width, buf.dtype)
        self.dev.write_mem(self.act_base, bytes(table))
        self._write64("ACT_BASE_LO", "ACT_BASE_HI", self.act_base)
        self.dev.write_reg(rm.REG["ACT_SIZE"], self.act_cap)
        self.resident = offs

    def write_buffer(self, b: int, data: bytes) -> None:
        off, cap = self.resident[b]
        assert len(data) <= cap, (b, len(data), cap)
        self.dev.write_mem(self.act_base + off, data)

    def read_buffer(self, b: int, nbytes: int) -> bytes:
        off, cap = self.resident[b]
        assert nbytes <= cap, (b, nbytes, cap)
        return self.dev.read_mem(self.act_base + off, nbytes)

    def alloc_kv(self, nbytes: int) -> None:
        """The attention unit's KV region (docs/units.md), kept for the session."""
        base = self.dev.alloc(max(nbytes, BEAT))
        self._write64("KV_BASE_LO", "KV_BASE_HI", base)
        self.dev.write_reg(rm.REG["KV_SIZE"], nbytes)

    def run(self, pc: int, ntok: int, pos: int, beats: int, counters: bool = True) -> dict[str, int]:
        """START the resident program at pc on `ntok` tokens at positions pos..; returns `status` (DONE or
        HOST), `stop_pc` and, with `counters`, the run's counters. `beats`: bus beats the run may move
        (its timeout)."""
        self.dev.write_reg(rm.REG["NTOK"], ntok)
        self.dev.write_reg(rm.REG["POS"], pos)
        self.dev.write_reg(rm.REG["PC"], pc)
        return self.start_and_wait(self.timeout_s + self.beat_slack_s * beats, counters)

    def _ensure_arena(self, data_bytes: int) -> None:
        need = self.map_bytes + data_bytes
        if need <= self.act_cap:
            return
        self.act_cap = max(need, 2 * self.act_cap)
        self.act_base = self.dev.alloc(self.act_cap)
        self.dev.write_mem(self.act_base, bytes(self.map_bytes))  # every buffer unmapped
        self._write64("ACT_BASE_LO", "ACT_BASE_HI", self.act_base)
        self.dev.write_reg(rm.REG["ACT_SIZE"], self.act_cap)

    # ---- run
    def run_segment(self, pc: int, ntok: int, inputs: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Run the hardware instructions pc.. (up to the next host instruction) on `ntok` tokens. `inputs`:
        q buffers (int8 [ntok, width]) and scale buffers (float32 [ntok]) by program buffer index.
        Returns the DEQUANT destination buffers, float32 [ntok, width]."""
        prog, geo = self.prog, self.geo
        end = segment_end(prog, pc)
        qs, ss, ds = segment_buffers(prog, pc, end)
        layout: list[tuple[int, int, bytes | None]] = []  # (buffer, capacity, data)
        for b in qs:
            layout.append((b, q_bytes(ntok, prog.buffers[b].width, geo), pack_q(inputs[b], geo)))
        for b in ss:
            layout.append((b, s_bytes(ntok), pack_scales(np.asarray(inputs[b], np.float32).reshape(ntok))))
        for b in ds:
            layout.append((b, tile_bytes(ntok, prog.buffers[b].width, geo), None))
        offs, top = [], self.map_bytes
        for _, cap, _ in layout:
            offs.append(top)
            top += -(-cap // 64) * 64
        self._ensure_arena(top - self.map_bytes)
        for (b, cap, data), off in zip(layout, offs, strict=True):
            buf = prog.buffers[b]
            self.dev.write_mem(self.act_base + b * rm.MAP_ENTRY_BYTES, map_entry(off, cap, buf.width, buf.dtype))
            if data is not None:
                self.dev.write_mem(self.act_base + off, data)
        self.dev.write_reg(rm.REG["NTOK"], ntok)
        self.dev.write_reg(rm.REG["PC"], pc)
        stop = self.start_and_wait(self.timeout_s + self.beat_slack_s * self._beats(pc, end, ntok))["stop_pc"]
        if stop != end:
            want = pg.OPNAMES.get(prog.instrs[end].op, "?") if end < len(prog.instrs) else "end"
            raise DeviceError(f"{self.dev.name}: the accelerator stopped at instruction {stop}, the host expected "
                              f"{end} ({want})")
        out = {}
        for (b, cap, data), off in zip(layout, offs, strict=True):
            if data is None:
                out[b] = unpack_tiles(self.dev.read_mem(self.act_base + off, cap), ntok, prog.buffers[b].width, geo)
        return out

    def _beats(self, pc: int, end: int, ntok: int) -> int:
        """Bus beats a run moves (weights once per token tile): the timeout grows with the work."""
        prog, geo = self.prog, self.geo
        beats = 0
        for ins in prog.instrs[pc:end]:
            if ins.op == pg.TLMM and ins.a < len(prog.regions):
                r = prog.regions[ins.a]
                planes = ins.f[2] if ins.flags & pg.F_BITSERIAL else 1
                beats += geo.tiles(ntok) * geo.weight_beats(r.n, r.k, planes) + ntok * (geo.groups(r.k) + r.n // 4)
        return beats

    def start_and_wait(self, timeout_s: float | None = None, counters: bool = True) -> dict[str, int]:
        st = self.dev.read_reg(rm.REG["STATUS"])
        if st & (rm.STATUS_BUSY | rm.STATUS_RESETTING):
            raise DeviceError(f"{self.dev.name}: the accelerator is busy (STATUS 0x{st:x}); reset it first")
        self.dev.write_reg(rm.REG["CTRL"], rm.CTRL_START)
        self.runs += 1
        st = self.wait(timeout_s)
        # a token's run reads only where it stopped; the counters (a dozen reads) when someone records them
        self.last_counters = self.counters() if counters else {"stop_pc": self.dev.read_reg(rm.REG["STOP_PC"])}
        self.last_counters["status"] = st
        return self.last_counters

    def wait(self, timeout_s: float | None = None) -> int:
        """Until DONE or HOST; returns STATUS. ERROR raises DeviceError; a timeout soft-resets and raises.

        A tight bounded poll: a device whose wait() returns at the shell's interrupt (`irq_wait`: the
        simulation; a board that wires pynq.Interrupt) is waited on for the rest of the timeout at once;
        others are polled every `poll_s` seconds of device time (the cpu model finishes within START, so
        its first read sees the end). No growing sleeps: a run is noticed when it ends."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        t0 = self.dev.now()
        irq = getattr(self.dev, "irq_wait", False)
        poll = getattr(self.dev, "poll_s", 2e-6)
        while True:
            # the time first, then STATUS: past the deadline one more read decides (a host descheduled
            # between a read and the clock must not call a finished run a timeout)
            waited = self.dev.now() - t0
            st = self.dev.read_reg(rm.REG["STATUS"])
            if st & rm.STATUS_ERROR:
                code = self.dev.read_reg(rm.REG["ERR_CODE"])
                info = self.dev.read_reg(rm.REG["ERR_INFO"])
                raise DeviceError(f"{self.dev.name}: {error_message(code, info, self.prog)}")
            if st & (rm.STATUS_DONE | rm.STATUS_HOST) and not st & rm.STATUS_BUSY:
                return st
            if waited >= timeout:
                msg = (f"{self.dev.name}: the accelerator did not finish within {timeout * 1e3:.3f} ms "
                       f"(STATUS 0x{st:x}); ")
                try:
                    self.reset(timeout_s=timeout)
                except DeviceError as e:
                    raise DeviceError(msg + f"and did not come back from a soft reset ({e})") from None
                raise DeviceError(msg + "it was soft-reset")
            self.dev.wait(timeout - waited if irq else min(poll, timeout - waited))

    def reset(self, timeout_s: float | None = None) -> None:
        """SOFT_RESET: abort the program, drain the bus, clear the status. Raises when it does not finish."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        self.dev.write_reg(rm.REG["CTRL"], rm.CTRL_SOFT_RESET)
        t0 = self.dev.now()
        while True:
            st = self.dev.read_reg(rm.REG["STATUS"])
            if not st & (rm.STATUS_BUSY | rm.STATUS_RESETTING):
                self.dev.write_reg(rm.REG["IRQ_EN"], 1)
                return
            if self.dev.now() - t0 >= timeout:
                raise DeviceError(f"{self.dev.name}: still resetting after {timeout * 1e3:.3f} ms "
                                  f"(STATUS 0x{st:x}): the memory system does not answer")
            self.dev.wait(timeout / 16)

    def counters(self) -> dict[str, int]:
        r = self.dev.read_reg
        c = {name.lower(): r(rm.REG[name]) for name in ("RD_BEATS", "WR_BEATS", "STALL_WGT", "STALL_ACT", "STALL_RES",
                                                         "SEQ_CYCLES", "WGT_BEATS", "INSTR_COUNT", "STOP_PC",
                                                         "VEC_CYCLES", "ATTN_CYCLES")}
        c["cycles"] = r(rm.REG["CYCLES_LO"]) | r(rm.REG["CYCLES_HI"]) << 32
        return c


def open_accel(device: str, expected_config_id: int | None = None, hw_config=None, **device_kwargs):
    """Open `device` ('cpu', 'sim', 'pynq') and return (driver, device). hw_config (an HwConfig the
    RTL implements): the cpu model and the simulator are built for it (a board runs whatever its
    bitstream is: the driver then expects that configuration's ID)."""
    from edgestream.host.devices import open_device

    geo = Geometry()
    if hw_config is not None:
        geo = Geometry.of(hw_config)
        expected_config_id = int(hw_config.config_id, 16) if expected_config_id is None else expected_config_id
        if device in ("cpu", "sim"):
            device_kwargs["hw_config"] = hw_config
    dev = open_device(device, **device_kwargs)
    try:
        return AccelDriver(dev, expected_config_id=expected_config_id, geo=geo), dev
    except BaseException:
        dev.close()
        raise


# ---------------------------------------------------------------- one-linear programs
@dataclass
class BankLinear:
    name: str
    n: int
    k: int
    planes: int
    pc: int  # its LOAD_ACT
    q_buf: int
    s_buf: int
    dst_buf: int


class LinearBank:
    """Independent linear layers as one program.bin for the shell configuration: per layer LOAD_ACT,
    BUILD_TABLE, TLMM, DEQUANT, then END (the sequencer stops after the layer). `matmul(name, q, s)`
    runs one layer from its PC: y float32 [T, N] = float32(q x W^T) * float32(beta * s), bit-exact to
    edgestream.numerics.dequant. Tests and benchmarks use it; models run through AccelProgramExecutor."""

    def __init__(self, driver: AccelDriver, cfg=None):
        """cfg: the HwConfig the device was built for (the shipped shell's by default)."""
        self.driver = driver
        self.cfg = cfg
        self.layers: dict[str, BankLinear] = {}
        self._pending: list[tuple] = []
        self.image = b""
        self.program: pg.Program | None = None

    def add(self, lw, beta=None) -> None:
        if lw.k > self.driver.geo.max_k:
            raise DeviceError(f"layer {lw.name}: K = {lw.k} exceeds the accelerator's MAXK {self.driver.geo.max_k}")
        self._pending.append((lw, np.ones(lw.n, np.float32) if beta is None else np.asarray(beta, np.float32)))

    def build(self) -> pg.Program:
        import io

        from edgestream.compiler.lowering import ALIGN, region_image, region_kind

        cfg = self.cfg or rm.shell_config()
        f = io.BytesIO()
        regions: list[pg.Region] = []
        buffers = [pg.Buffer("ids", pg.B_IDS, 1)]
        instrs: list[pg.Instr] = []
        for lw, beta in self._pending:
            kind = "ternary" if lw.kind == "ternary" else "int"
            f.write(b"\0" * ((-f.tell()) % ALIGN))
            blob, lay = region_image(cfg, lw.w, kind, lw.bits)
            off = f.tell()
            f.write(blob)
            regions.append(pg.Region(off, lay["nbytes"], region_kind(cfg, kind), lw.bits, lw.n, lw.k, 0,
                                     lay["rows_padded"], lay["cols_padded"], lay["stripes"]))
            f.write(b"\0" * ((-f.tell()) % 64))
            b = np.zeros(-(-lw.n // cfg.Q) * cfg.Q, np.float32)
            b[: lw.n] = beta
            boff = f.tell()
            f.write(b.tobytes())
            regions.append(pg.Region(boff, b.nbytes, pg.R_F32, 32, 1, b.size, 0, 1, b.size))
            qb, sb, db = len(buffers), len(buffers) + 1, len(buffers) + 2
            buffers += [pg.Buffer(lw.name + ".q", pg.B_I8, lw.k), pg.Buffer(lw.name + ".s", pg.B_SCALE, 1),
                        pg.Buffer(lw.name + ".y", pg.B_F32, lw.n)]
            self.layers[lw.name] = BankLinear(lw.name, lw.n, lw.k, lw.bits if kind == "int" else 1, len(instrs),
                                              qb, sb, db)
            instrs += [pg.Instr(pg.LOAD_ACT, 0, qb, [0, lw.k]), pg.Instr(pg.BUILD_TABLE, 0, 0, [cfg.G]),
                       pg.Instr(pg.TLMM, pg.F_BITSERIAL if kind == "int" else 0, len(regions) - 2,
                                [lw.n, 0, lw.bits if kind == "int" else 0]),
                       pg.Instr(pg.DEQUANT, pg.F_PER_CHANNEL, db, [0, lw.n, sb, len(regions) - 1]),
                       pg.Instr(pg.END)]
        instrs.append(pg.Instr(pg.END))
        self._pending.clear()
        self.image = f.getvalue()
        return pg.Program(cfg.config_id, cfg.G, regions, buffers, instrs, cfg.T, cfg.Q, cfg.CB)

    def load(self) -> pg.Program:
        self.program = self.build()
        self.driver.load(self.program, self.image)
        return self.program

    def matmul(self, name: str, q: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
        lay = self.layers[name]
        q = np.ascontiguousarray(np.atleast_2d(q), dtype=np.int8)
        if q.shape[1] != lay.k:
            raise DeviceError(f"layer {name}: activations have K = {q.shape[1]}, the weights {lay.k}")
        s = np.ones(q.shape[0], np.float32) if s is None else np.asarray(s, np.float32)
        return self.driver.run_segment(lay.pc, q.shape[0], {lay.q_buf: q, lay.s_buf: s})[lay.dst_buf]
