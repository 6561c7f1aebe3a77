"""Executes the lowered binary program (program.bin) on the packed hardware-order weight image
(hw_weights.bin), instruction by instruction, the way the hardware sequencer does: LOAD_ACT +
BUILD_TABLE build the group tables of the activation tile, TLMM sums table entries selected by the
region's codes (bit-serial integer weights through the same ternary table, as tlmm_wdecode.sv maps
them), DEQUANT scales the accumulators. It must give logits bit-identical to CpuExecutor (tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgestream import numerics as nx
from edgestream import program as pg
from edgestream.compiler.lowering import unpack_region
from edgestream.errors import InputError
from edgestream.formats.ternary import gindex_digits
from edgestream.host.executor import CachedDecoder
from edgestream.ir import ModelConfig


class _State:
    """Buffers and engine state of one forward pass."""

    def __init__(self, nbuf: int, ids: np.ndarray, last_only: bool):
        self.buf: list[np.ndarray | None] = [None] * nbuf
        self.buf[0] = ids
        self.act = self.tables = self.acc = self.out = None
        self.last_only = last_only

    def rd(self, s: int) -> np.ndarray:
        return self.buf[s]


class ProgramExecutor(CachedDecoder):
    def __init__(self, artifact_path: str | Path):
        path = Path(artifact_path)
        try:
            man = json.loads((path / "manifest.json").read_text())
            blob = (path / "program.bin").read_bytes()
        except FileNotFoundError as e:
            raise InputError(f"{path}: {Path(e.filename).name} is missing (compile with --target <board> to "
                             f"get a lowered program)") from None
        self.manifest = man
        prog = pg.Program.decode(blob, str(path / "program.bin"))
        if man.get("hw_config_id") != prog.config_id:
            raise InputError(f"{path}: program.bin was lowered for config {prog.config_id}, manifest says "
                             f"{man.get('hw_config_id')}")
        img = path / "hw_weights.bin"
        self._setup(ModelConfig.from_dict(man["model"]), prog, img)

    def _setup(self, cfg: ModelConfig, prog: pg.Program, img: Path) -> None:
        self.cfg, self.prog = cfg, prog
        self.image = np.memmap(img, dtype=np.uint8, mode="r") if img.stat().st_size else np.zeros(0, np.uint8)
        for i, r in enumerate(self.prog.regions):
            if r.offset + r.nbytes > self.image.size:
                raise InputError(f"{img}: region {i} lies beyond the end of the image (truncated)")
        self._check_attention()
        g = self.prog.group
        self._codes: dict[int, np.ndarray] = {}
        self._data: dict[int, np.ndarray] = {}
        self._zero = (3**g - 1) // 2
        # binary group code -> index of the ternary pattern with those digits (tlmm_wdecode.sv)
        self._bin2tern = (self._zero + (((np.arange(1 << g)[:, None] >> np.arange(g)) & 1)
                                        * (3 ** np.arange(g))).sum(1)).astype(np.int64)
        self._digits = gindex_digits(g).astype(np.int64)  # [3**G, G]
        self.cache = None
        self.pos = 0

    kernel_name = "program"

    def _check_attention(self) -> None:
        """The shape ATTENTION carries for the attention unit must be the model's (the host's own
        attention reads the model config)."""
        c = self.cfg
        scale = int(np.float32(1.0 / np.sqrt(c.head_dim)).view(np.uint32))
        want = [c.num_layers, c.head_dim, c.num_heads | c.num_kv_heads << 16, scale]
        for i, ins in enumerate(self.prog.instrs):
            if ins.op == pg.ATTENTION and ([ins.f[3] >> 16, *ins.f[4:7]] != want or ins.f[3] & 0xFFFF >= c.num_layers):
                raise InputError(f"program.bin: instruction {i} (ATTENTION) has layer {ins.f[3] & 0xFFFF} of "
                                 f"{ins.f[3] >> 16}, D {ins.f[4]}, heads {ins.f[5] & 0xFFFF}/{ins.f[5] >> 16}, "
                                 f"scale bits {ins.f[6]:#x}; the model has {c.num_layers} layers, D {c.head_dim}, "
                                 f"heads {c.num_heads}/{c.num_kv_heads}, scale bits {scale:#x}: recompile")

    # ---- region access
    def _raw(self, i: int) -> np.ndarray:
        r = self.prog.regions[i]
        return self.image[r.offset : r.offset + r.nbytes]

    def data(self, i: int) -> np.ndarray:
        if i not in self._data:
            r = self.prog.regions[i]
            raw = self._raw(i)
            a = raw.view("<f4") if r.kind == pg.R_F32 else raw.view(np.int8)
            self._data[i] = a.reshape(r.n, r.k) if r.n > 1 else a.reshape(-1)
        return self._data[i]

    def codes(self, i: int) -> np.ndarray:
        if i not in self._codes:
            p = self.prog
            self._codes[i] = unpack_region(p.group, p.lanes_t, p.lanes_q, p.code_bits, p.regions[i],
                                           np.asarray(self._raw(i)))
        return self._codes[i]

    # ---- state
    def forward(self, ids: np.ndarray, last_only: bool = True) -> np.ndarray:
        ids = self._checked_ids(ids)
        st = _State(len(self.prog.buffers), ids, last_only)
        for ins in self.prog.instrs:
            if ins.op == pg.END:
                break
            self.step(ins, st)
        self.pos += len(ids)
        return st.out

    def step(self, ins: pg.Instr, st: _State) -> None:
        """Execute one instruction on the state of a forward pass."""
        op, a, f, buf, rd = ins.op, ins.a, ins.f, st.buf, st.rd
        if op == pg.EMBED:
            tab, sc = self.data(f[1]), self.data(f[2])
            idv = buf[f[0]]
            buf[a] = (tab[idv].astype(np.float32) * sc[idv][:, None]).astype(np.float32)
        elif op == pg.NORM_QUANT:
            gain = self.data(f[2]) if ins.flags & pg.F_NORM else None
            eps = float(np.uint32(f[3]).view(np.float32)) if gain is not None else None
            buf[f[0]], buf[f[1]] = nx.norm_quant(rd(a), gain, eps)
        elif op == pg.LOAD_ACT:
            st.act = rd(a)[:, f[0] : f[0] + f[1]]
        elif op == pg.BUILD_TABLE:
            g = f[0]
            q = st.act.astype(np.int64)
            pad = (-q.shape[1]) % g
            if pad:
                q = np.pad(q, ((0, 0), (0, pad)))
            # T[tok, group, c] = sum_i digit_i(c) * q[tok, group*G + i]  (int16 entries)
            st.tables = (q.reshape(q.shape[0], -1, g) @ self._digits.T).astype(np.int16)
        elif op == pg.TLMM:
            part = self._tlmm(st.tables, self.codes(a), ins.flags & pg.F_BITSERIAL, f[2])
            st.acc = st.acc + part if ins.flags & pg.F_ACCUMULATE else part
        elif op == pg.DEQUANT:
            r = self.prog.regions[f[3]]
            beta = self.data(f[3]).reshape(-1)
            n = f[1]
            beta = beta[:n] if ins.flags & pg.F_PER_CHANNEL else np.broadcast_to(beta[:1], (n,))
            assert r.k * r.n >= 1
            buf[a] = nx.dequant(st.acc[:, f[0] : f[0] + n].astype(np.int32), rd(f[2]), beta)
        elif op == pg.ROPE:
            x = rd(f[0])
            d = self.cfg.head_dim
            pos = np.arange(self.pos, self.pos + x.shape[0])
            cos, sin = self.data(f[2])[pos], self.data(f[3])[pos]
            buf[a] = nx.rope(x.reshape(x.shape[0], -1, d), cos, sin).reshape(x.shape)
        elif op == pg.ATTENTION:
            buf[a] = self.attend(rd(f[0]), rd(f[1]), rd(f[2]), f[3] & 0xFFFF)
        elif op == pg.ACT_MUL:
            fn = nx.silu_mul if ins.flags & pg.F_SILU else nx.relu2_mul
            buf[a] = fn(rd(f[0]), rd(f[1]))
        elif op == pg.ADD:
            buf[a] = (rd(f[0]) + rd(f[1])).astype(np.float32)
        elif op == pg.LAST_ROW:
            # every position's logits (perplexity) keep all rows; the devices always take the last
            buf[a] = buf[f[0]][-1:] if st.last_only else buf[f[0]]
        elif op == pg.OUTPUT:
            st.out = buf[a]

    def _tlmm(self, tables: np.ndarray, codes: np.ndarray, bitserial: int, bits: int) -> np.ndarray:
        """tables int16 [tok, groups, 3**G]; codes [planes, n, groups] -> int64 accumulators [tok, n]."""
        ng = codes.shape[2]
        gidx = np.arange(ng)[None, :]
        out = np.zeros((tables.shape[0], codes.shape[1]), np.int64)
        idx = [self._bin2tern[codes[b]] if bitserial else codes[b].astype(np.int64) for b in range(codes.shape[0])]
        for t in range(tables.shape[0]):
            tab = tables[t, :ng]
            if not bitserial:
                out[t] = tab[gidx, idx[0]].astype(np.int64).sum(axis=1)
                continue
            for b in range(bits):
                s = tab[gidx, idx[b]].astype(np.int64).sum(axis=1)
                out[t] += (-s if b == bits - 1 else s) << b
        return out
