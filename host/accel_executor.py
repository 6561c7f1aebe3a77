"""Runs a lowered program on an accelerator device: the host and the shell walk one program.bin, with
one START per forward pass.

Every buffer of the program lives in the device's activation arena for the whole session (its map is
written once). A forward pass writes the token ids into buffer 0, NTOK and POS, and STARTs at PC 0; the
sequencer runs the linear layers and dispatches the rest to its units (docs/units.md: vector unit,
attention over the INT8 KV cache in the KV region, argmax at OUTPUT) up to END. Where the bitstream
cannot run an instruction (a unit it lacks per HW_UNITS, SwiGLU, a K-tiled linear when the bitstream
does not accumulate K tiles, HW_UNITS bit 3, or one of more rows than it holds) it stops with
STATUS.HOST at it: the host executes it with the ProgramExecutor's numpy code on the arena's buffers
(read and written in the device layouts) and STARTs again after it. Greedy decoding reads the ARGMAX
register; the logits are read back only when asked for. Logits are bit-identical to the CPU
executor's (docs/numerics.md) whatever runs where.

An artifact compiled for the device's configuration (`--target kv260 --hw-config shell`) runs as it
is; a CPU-only artifact is lowered for the device's configuration first, into a temporary directory.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgestream import program as pg
from edgestream import regmap as rm
from edgestream.errors import DeviceError, InputError
from edgestream.host.devices.cpu_units import U_ARGMAX, U_ATTN, UNIT_OF
from edgestream.host.driver import (
    HW_OPS,
    AccelDriver,
    buffer_bytes,
    linear_group,
    pack_ids,
    pack_q,
    pack_scales,
    pack_tiles,
    segment_buffers,
    segment_end,
    unpack_q,
    unpack_scales,
    unpack_tiles,
)
from edgestream.host.program_executor import ProgramExecutor, _State

# tokens one START takes at most: a longer prompt runs as several STARTs (each a causal prefill over the
# cache so far: the same integers); bounded further by the arena budget below and HW_SMAX
RUN_TOKENS = 64
ARENA_BUDGET = 32 << 20


def _reads_writes(ins: pg.Instr) -> tuple[list[int], list[int]]:
    """Buffers a host-run unit instruction reads and writes."""
    a, f = ins.a, ins.f
    if ins.op == pg.NORM_QUANT:
        return [a], [f[0], f[1]]
    if ins.op in (pg.EMBED, pg.ROPE, pg.LAST_ROW):
        return [f[0]], [a]
    if ins.op == pg.ATTENTION:
        return [f[0], f[1], f[2]], [a]
    if ins.op in (pg.ACT_MUL, pg.ADD):
        return [f[0], f[1]], [a]
    if ins.op == pg.OUTPUT:
        return [a], []
    raise DeviceError(f"the accelerator stopped at {pg.OPNAMES.get(ins.op, hex(ins.op))}, which the host does "
                      f"not execute")


def _writes(ins: pg.Instr) -> list[int]:
    """Buffers any instruction writes."""
    if ins.op == pg.NORM_QUANT:
        return [ins.f[0], ins.f[1]]
    if ins.op in (pg.EMBED, pg.ROPE, pg.LAST_ROW, pg.ATTENTION, pg.ACT_MUL, pg.ADD, pg.DEQUANT):
        return [ins.a]
    return []


class _DeviceKV:
    """The KV cache lives in the device's KV region: the host keeps only its size."""

    def __init__(self, capacity: int):
        self.capacity = capacity


class AccelProgramExecutor(ProgramExecutor):
    kernel_name = "accel"

    def __init__(self, artifact, driver: AccelDriver, device_config=None):
        """artifact: an edgestream.artifact.Artifact; device_config: the device's HwConfig (the shell's by
        default)."""
        from edgestream import regmap as rm

        self.driver = driver
        self.note = ""
        self._tmp: str | None = None
        cfg = device_config or rm.shell_config()
        man = artifact.manifest
        path = Path(artifact.path)
        if man.get("hw_config_id"):
            from edgestream.compiler.lowering import check_config_id

            check_config_id(artifact, cfg.config_id)
            prog = pg.Program.decode((path / "program.bin").read_bytes(), str(path / "program.bin"))
            img = path / "hw_weights.bin"
        else:
            from edgestream.compiler.lowering import lower_graph

            self._tmp = tempfile.mkdtemp(prefix="es-lowered-")
            img = Path(self._tmp) / "hw_weights.bin"
            prog, _ = lower_graph(artifact.graph, cfg, img)
            self.note = f"lowered {path.name} for the device's configuration {cfg.config_id}"
        self.manifest = man
        self._setup(artifact.config, prog, img)
        driver.load(prog, self.image)
        self.units = driver.units()
        # linears with K > MAXK come as K tiles whose TLMMs accumulate: a bitstream with the K-tile
        # accumulator (HW_UNITS bit 3) runs those of up to KROWS rows itself; at the others the sequencer
        # stops and the host runs them (same numpy code as the program executor)
        self.host_segments = self._k_tiled_segments(rm.KROWS if self.units & rm.HW_KTILE else 0)
        if self.host_segments:
            why = (f"more than {rm.KROWS} rows" if self.units & rm.HW_KTILE
                   else "the device does not accumulate K tiles")
            note = (f"{len(self.host_segments)} linear layers have K > {cfg.max_k} (K tiles): they run on the "
                    f"host ({why})")
            self.note = "; ".join(x for x in (self.note, note) if x)
        self.limits = driver.unit_limits()
        self._layout()
        self.kv_capacity = 0
        self.log: list[dict] = []
        self.record = False
        self.starts = self.host_ops = 0  # of the last forward pass

    def close(self) -> None:
        if self._tmp:
            self.image = None
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # ---- session state on the device
    def _layout(self) -> None:
        """Capacities of every buffer for `run_tokens` tokens (one token from LAST_ROW on) and the arena."""
        prog, geo = self.prog, self.driver.geo
        lr = next((i for i, ins in enumerate(prog.instrs) if ins.op == pg.LAST_ROW), len(prog.instrs))
        self._last_row = lr
        tail = {b for ins in prog.instrs[lr:] for b in _writes(ins)}
        self._tail = tail

        def caps(t: int) -> dict[int, int]:
            return {b: buffer_bytes(buf.dtype, 1 if b in tail else t, buf.width, geo)
                    for b, buf in enumerate(prog.buffers)}

        t = RUN_TOKENS
        if self.units & U_ATTN:
            t = min(t, self.limits["smax"])
        while t > 1 and sum(caps(t).values()) > ARENA_BUDGET:
            t //= 2
        self.run_tokens = t
        self.driver.map_buffers(caps(t))

    def reset(self, capacity: int) -> None:
        c = self.cfg
        if not self.units & U_ATTN:
            super().reset(capacity)  # the host's own INT8 cache, as the CPU executor keeps it
            return
        if capacity > c.max_position:
            raise InputError(f"context of {capacity} tokens exceeds the model's max_position {c.max_position}")
        lim = self.limits
        if capacity > lim["smax"]:
            raise InputError(f"context of {capacity} tokens exceeds the attention unit's score buffer: the "
                             f"bitstream holds HW_SMAX = {lim['smax']} positions (use a shorter prompt or fewer "
                             f"new tokens)")
        if c.head_dim % 16 or c.head_dim > lim["dmax"]:
            raise InputError(f"head dimension {c.head_dim}: the attention unit runs multiples of 16 up to its "
                             f"DMAX = {lim['dmax']}")
        if capacity > self.kv_capacity:
            self.driver.alloc_kv(self.kv_bytes(capacity))
            self.kv_capacity = capacity
        self.cache = _DeviceKV(capacity)
        self.pos = 0

    def kv_layout(self):
        """The KV region's layout on this bitstream (its KV ports: HW_UNITS [7:4])."""
        from edgestream.kv_layout import KvLayout

        c = self.cfg
        return KvLayout(c.num_layers, c.num_kv_heads, c.head_dim, self.limits["kvp"])

    def kv_bytes(self, positions: int) -> int:
        """The KV region for `positions` (docs/units.md "KV cache in DDR")."""
        return self.kv_layout().bytes_for(positions)

    # ---- forward passes
    def forward(self, ids: np.ndarray, last_only: bool = True) -> np.ndarray:
        """Logits float32 [1, vocab] of the last token (every position's [T, vocab] with last_only =
        False: the device computes only the last row, so that takes one START per token)."""
        ids = self._checked_ids(ids)
        self.starts = self.host_ops = 0
        if not last_only:
            return np.concatenate([self._run_tokens(ids[i:i + 1], logits=True)[1] for i in range(len(ids))])
        return self._run_tokens(ids, logits=True)[1]

    def forward_argmax(self, ids: np.ndarray) -> int:
        """The greedy next token after `ids`: the device's ARGMAX; the logits stay on the device."""
        ids = self._checked_ids(ids)
        self.starts = self.host_ops = 0
        return self._run_tokens(ids, logits=False)[0]

    def _run_tokens(self, ids: np.ndarray, logits: bool) -> tuple[int, np.ndarray | None]:
        out = (0, None)
        for c0 in range(0, len(ids), self.run_tokens):
            last = c0 + self.run_tokens >= len(ids)
            out = self._pass(ids[c0:c0 + self.run_tokens], logits and last)
        return out

    def _pass(self, ids: np.ndarray, want_logits: bool) -> tuple[int, np.ndarray | None]:
        """One forward pass of len(ids) tokens at self.pos: START at 0, host work where the device stops."""
        from edgestream import regmap as rm

        drv, prog = self.driver, self.prog
        n = len(ids)
        drv.write_buffer(0, pack_ids(ids))
        pc = 0
        host_logits = None
        while True:
            # instructions of units the bitstream lacks (HW_UNITS) run on the host without a START: the
            # device would stop at each at once; a START that would only read END is not made
            while self._absent(prog.instrs[pc]):
                got = self._host_instr(prog.instrs[pc], n, pc)
                if prog.instrs[pc].op == pg.OUTPUT:
                    host_logits = got
                self.host_ops += 1
                pc += 1
            if prog.instrs[pc].op == pg.END:
                break
            ntok = 1 if pc > self._last_row else n
            c = drv.run(pc, ntok, self.pos, self._beats(pc, ntok), counters=self.record)
            self.starts += 1
            stop = c["stop_pc"]
            if self.record:
                self.log.append({"pc": pc, "stop_pc": stop, "ntok": ntok, "pos": self.pos, "counters": dict(c),
                                 "linears": self._linears(pc, stop)})
            if c["status"] & rm.STATUS_DONE:
                break
            ins = prog.instrs[stop] if pc <= stop < len(prog.instrs) else None
            if ins is None or ins.op == pg.END:
                raise DeviceError(f"{drv.dev.name}: the accelerator stopped for the host at instruction {stop}, "
                                  f"which is not one the host runs (started at {pc})")
            if ins.op in HW_OPS:
                s0, end = linear_group(prog, stop)
                self._host_linear(s0, end, 1 if s0 > self._last_row else n)
                self.host_ops += end - s0
                pc = end
            else:  # a unit instruction this bitstream does not run (SwiGLU)
                got = self._host_instr(ins, n, stop)
                if ins.op == pg.OUTPUT:
                    host_logits = got
                self.host_ops += 1
                pc = stop + 1
        self.pos += n
        out = next(i for i in reversed(prog.instrs) if i.op == pg.OUTPUT)
        if host_logits is not None:  # the host ran OUTPUT: it has the logits already
            return int(np.argmax(host_logits[-1])), host_logits
        argmax = self.units & U_ARGMAX and out.flags & pg.F_ARGMAX
        lg = self._read(out.a, 1) if want_logits or not argmax else None
        tok = drv.dev.read_reg(rm.REG["ARGMAX"]) if argmax else int(np.argmax(lg[-1]))
        return tok, lg

    def _absent(self, ins: pg.Instr) -> bool:
        """An instruction of a unit the bitstream does not have."""
        unit = UNIT_OF.get(ins.op)
        return unit is not None and not self.units & unit

    # ---- host work on the arena's buffers
    def _read(self, b: int, ntok: int) -> np.ndarray:
        buf, geo = self.prog.buffers[b], self.driver.geo
        raw = self.driver.read_buffer(b, buffer_bytes(buf.dtype, ntok, buf.width, geo))
        if buf.dtype == pg.B_F32:
            return unpack_tiles(raw, ntok, buf.width, geo)
        if buf.dtype == pg.B_I8:
            return unpack_q(raw, ntok, buf.width, geo)
        if buf.dtype == pg.B_IDS:
            return np.frombuffer(raw, "<u4", ntok).astype(np.int64)
        return unpack_scales(raw, ntok)

    def _write(self, b: int, v: np.ndarray) -> None:
        buf, geo = self.prog.buffers[b], self.driver.geo
        if buf.dtype == pg.B_F32:
            data = pack_tiles(np.asarray(v, np.float32).reshape(v.shape[0], -1), geo)
        elif buf.dtype == pg.B_I8:
            data = pack_q(np.asarray(v, np.int8), geo)
        else:
            data = pack_scales(np.asarray(v, np.float32).reshape(-1))
        self.driver.write_buffer(b, data)

    def _ntok(self, pc: int, b: int, n: int) -> int:
        return 1 if pc > self._last_row or (pc == self._last_row and b in self._tail) else n

    def _host_instr(self, ins: pg.Instr, n: int, pc: int) -> np.ndarray | None:
        """Execute one unit instruction on the host; OUTPUT returns the logits."""
        reads, writes = _reads_writes(ins)
        st = _State(len(self.prog.buffers), None, True)
        for b in reads:
            st.buf[b] = self._read(b, self._ntok(pc, b, n))
        self.step(ins, st)
        for b in writes:
            self._write(b, st.buf[b])
        return st.out

    def _host_linear(self, s0: int, end: int, ntok: int) -> None:
        qs, ss, ds = segment_buffers(self.prog, s0, end)
        st = _State(len(self.prog.buffers), None, True)
        for b in qs + ss:
            st.buf[b] = self._read(b, ntok)
        for ins in self.prog.instrs[s0:end]:
            self.step(ins, st)
        for b in ds:
            self._write(b, st.buf[b])

    # ---- bookkeeping
    def _beats(self, pc: int, ntok: int) -> int:
        """Bus beats (and a few hundred cycles per token of each unit instruction's scalar work) a run from
        pc may take: its timeout grows with the work."""
        prog, geo, c = self.prog, self.driver.geo, self.cfg
        beats, n = 0, ntok
        for i, ins in enumerate(prog.instrs[pc:], pc):
            if i > self._last_row:
                n = 1
            if ins.op == pg.TLMM and ins.a < len(prog.regions):
                r = prog.regions[ins.a]
                planes = ins.f[2] if ins.flags & pg.F_BITSERIAL else 1
                beats += geo.tiles(n) * geo.weight_beats(r.n, r.k, planes) + n * (geo.groups(r.k) + r.n // 4)
            elif ins.op == pg.ATTENTION:
                ctx = self.pos + n
                beats += n * c.num_heads * ctx * (2 * (c.head_dim // 16) + 1) + 1000 * n
            elif ins.op in (pg.EMBED, pg.NORM_QUANT, pg.ROPE, pg.ACT_MUL, pg.ADD, pg.LAST_ROW, pg.OUTPUT):
                w = prog.buffers[ins.a].width
                beats += n * (3 * w // 4 + 1000)
        return beats

    def _linears(self, pc: int, stop: int) -> list[dict]:
        """Shapes of the linears the device ran in pc..stop (the bench's performance model adds them up)."""
        prog, out = self.prog, []
        i = pc
        while i < min(stop, len(prog.instrs)):
            if prog.instrs[i].op in HW_OPS:
                end = segment_end(prog, i)
                if end <= stop:
                    out.append(self._segment_shape(i, end))
                i = end
            else:
                i += 1
        return out

    def _k_tiled_segments(self, krows: int) -> set[int]:
        """First instructions of the hardware segments that accumulate K tiles (or load a tile past
        column 0) and that the device stops at: all of them without the K-tile accumulator (krows = 0),
        else those with more than krows rows or a tile before the last that does not end on a bus beat
        of the q rows (klen not a multiple of G * group slots per beat: artifacts lowered before the
        lowering aligned K tiles; docs/registers.md "K tiles")."""
        prog, out, pc = self.prog, set(), 0
        unit = self.driver.geo.G * (rm.DATA_BYTES // 8)
        while pc < len(prog.instrs):
            if prog.instrs[pc].op not in HW_OPS:
                pc += 1
                continue
            end = segment_end(prog, pc)
            seg = prog.instrs[pc:end]
            tiled = any((i.op == pg.TLMM and i.flags & pg.F_ACCUMULATE) or (i.op == pg.LOAD_ACT and i.f[0])
                        for i in seg)
            loads = [i for i in seg if i.op == pg.LOAD_ACT]
            runs = krows and all(i.f[1] % unit == 0 for i in loads[:-1]) and all(
                i.f[0] <= krows for i in seg if i.op == pg.TLMM)
            if tiled and not runs:
                out.add(pc)
            pc = end
        return out

    def _segment_shape(self, pc: int, end: int) -> dict:
        ins = next(i for i in self.prog.instrs[pc:end] if i.op == pg.TLMM)
        r = self.prog.regions[ins.a]
        planes = ins.f[2] if ins.flags & pg.F_BITSERIAL else 1
        return {"n": r.n, "k": r.k, "planes": planes}

