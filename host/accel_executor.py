"""Runs a lowered program on an accelerator device: the host and the shell walk one program.bin.

The shell's sequencer executes each run of hardware instructions (LOAD_ACT, BUILD_TABLE, TLMM and its
DEQUANTs: the linear layers) and stops at the next instruction the host owns; the host executes those
(EMBED, NORM_QUANT, ROPE, ATTENTION, ACT_MUL, ADD, LAST_ROW, OUTPUT) with the ProgramExecutor's numpy
code and restarts the device at the next hardware instruction. Buffers cross through the activation
arena (edgestream.host.driver). Logits are bit-identical to the CPU executor's (docs/numerics.md).

An artifact compiled for the device's configuration (`--target kv260 --hw-config shell`) runs as it
is; a CPU-only artifact is lowered for the device's configuration first, into a temporary directory.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgestream import program as pg
from edgestream.errors import InputError
from edgestream.host.driver import HW_OPS, AccelDriver, segment_buffers, segment_end
from edgestream.host.program_executor import ProgramExecutor, _State


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
        # linears with K > MAXK come as K tiles whose TLMMs accumulate: this bitstream does not add
        # partial sums, so the host runs those segments (same numpy code as the program executor)
        self.host_segments = self._k_tiled_segments()
        if self.host_segments:
            note = (f"{len(self.host_segments)} linear layers have K > {cfg.max_k} (K tiles): they run on the "
                    f"host, the device does not accumulate K tiles")
            self.note = "; ".join(x for x in (self.note, note) if x)
        driver.load(prog, self.image)
        self.log: list[dict] = []
        self.record = False

    def close(self) -> None:
        if self._tmp:
            self.image = None
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def forward(self, ids: np.ndarray, last_only: bool = True) -> np.ndarray:
        ids = self._checked_ids(ids)
        prog = self.prog
        st = _State(len(prog.buffers), ids, last_only)
        pc = 0
        while pc < len(prog.instrs) and prog.instrs[pc].op != pg.END:
            ins = prog.instrs[pc]
            if ins.op not in HW_OPS:
                self.step(ins, st)
                pc += 1
                continue
            end = segment_end(prog, pc)
            if pc in self.host_segments:
                for i in prog.instrs[pc:end]:
                    self.step(i, st)
                pc = end
                continue
            qs, ss, _ = segment_buffers(prog, pc, end)
            if not qs or any(st.buf[b] is None for b in qs + ss):
                raise InputError(f"program.bin: the linear layer at instruction {pc} reads a buffer no earlier "
                                 f"instruction wrote (corrupt program)")
            inputs = {b: st.rd(b) for b in qs + ss}
            ntok = inputs[qs[0]].shape[0]
            out = self.driver.run_segment(pc, ntok, inputs)
            for b, v in out.items():
                st.buf[b] = v
            if self.record:
                self.log.append({"pc": pc, "ntok": ntok, "counters": dict(self.driver.last_counters),
                                 **self._segment_shape(pc, end)})
            pc = end
        self.pos += len(ids)
        return st.out

    def _k_tiled_segments(self) -> set[int]:
        """First instructions of the hardware segments that accumulate K tiles (or load a tile past
        column 0)."""
        prog, out, pc = self.prog, set(), 0
        while pc < len(prog.instrs):
            if prog.instrs[pc].op not in HW_OPS:
                pc += 1
                continue
            end = segment_end(prog, pc)
            if any((i.op == pg.TLMM and i.flags & pg.F_ACCUMULATE) or (i.op == pg.LOAD_ACT and i.f[0])
                   for i in prog.instrs[pc:end]):
                out.add(pc)
            pc = end
        return out

    def _segment_shape(self, pc: int, end: int) -> dict:
        ins = next(i for i in self.prog.instrs[pc:end] if i.op == pg.TLMM)
        r = self.prog.regions[ins.a]
        planes = ins.f[2] if ins.flags & pg.F_BITSERIAL else 1
        return {"n": r.n, "k": r.k, "planes": planes}

