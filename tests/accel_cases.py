"""Shared by the accelerator tests (cpu model and RTL): linear layers, and corrupt or unsupported
programs with the error each must raise (docs/registers.md)."""

from __future__ import annotations

import copy
import struct

import numpy as np
import pytest

from edgestream import program as pg
from edgestream import regmap as rm
from edgestream.errors import DeviceError
from edgestream.host.driver import LinearBank
from edgestream.host.kernels import LinearWeights
from edgestream.numerics import dequant
from edgestream.tlmm import dense_matmul


def layers(rng, big: bool = True) -> list[LinearWeights]:
    out = [LinearWeights("t_odd", "ternary", 2, rng.integers(-1, 2, (37, 23)).astype(np.int8)),  # ragged N, K
           LinearWeights("i8", "int", 8, rng.integers(-128, 128, (9, 11)).astype(np.int8)),
           LinearWeights("i4", "int", 4, rng.integers(-8, 8, (13, 30)).astype(np.int8)),
           LinearWeights("i2", "int", 2, rng.integers(-2, 2, (6, 7)).astype(np.int8))]
    if big:
        out.insert(1, LinearWeights("t_maxk", "ternary", 2,
                                    rng.integers(-1, 2, (8, rm.SHELL_HW["max_k"])).astype(np.int8)))
    return out


def make_bank(drv, lws, rng) -> tuple[LinearBank, dict[str, np.ndarray]]:
    bank = LinearBank(drv)
    betas = {}
    for lw in lws:
        betas[lw.name] = rng.uniform(1e-3, 2, lw.n).astype(np.float32)
        bank.add(lw, betas[lw.name])
    bank.load()
    return bank, betas


def check_matmul(bank, lw, beta, q, s) -> None:
    got = bank.matmul(lw.name, q, s)
    want = dequant(dense_matmul(q, lw.w), s, beta)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert got.tobytes() == want.tobytes(), f"{lw.name} ntok={q.shape[0]}"


def _instr(prog: pg.Program, name: str, op: int) -> pg.Instr:
    assert name == "t_odd"  # the first layer of the bank
    return next(i for i in prog.instrs if i.op == op)


HOST_AT_0 = "stops for the host at instruction 0"


def fault_cases(prog: pg.Program, wgt_size: int, units: int = 0):
    """(label, corrupt program.bin, PC, expected error regex). The host side keeps the good program;
    the device gets the corrupt one (the first layer is t_odd: LOAD_ACT, BUILD_TABLE, TLMM, DEQUANT).
    K tiles are ERR FIELD on the linear-only shell (HW_UNITS = 0); a bitstream with units stops for the
    host at the linear's LOAD_ACT instead (docs/units.md)."""
    k_tile = "FIELD at instruction {}" if not units else HOST_AT_0
    cases = []

    def mut(label, fn, match, pc=0):
        p = copy.deepcopy(prog)
        blob = fn(p)
        cases.append((label, p.encode() if blob is None else blob, pc, match))

    def tlmm_region(p):
        return p.regions[_instr(p, "t_odd", pg.TLMM).a]

    mut("config id", lambda p: setattr(p, "config_id", f"{int(p.config_id, 16) ^ 1:016x}"),
        r"CONFIG at the program header \(run from instruction 0\)")
    mut("magic", lambda p: b"XSPG" + p.encode()[4:], "HEADER")
    mut("version", lambda p: p.encode()[:4] + struct.pack("<H", 1) + p.encode()[6:], "HEADER")
    mut("PC past the end", lambda p: None, "PROG_END", pc=len(prog.instrs))
    mut("no END after a linear", lambda p: setattr(p, "instrs", p.instrs[:4]), "PROG_END at instruction 4")
    mut("unknown opcode", lambda p: _set(p, 0, op=0x7F), r"OPCODE at instruction 0 .*0x7f")
    mut("stray DEQUANT", lambda p: None, "OPCODE at instruction 3", pc=3)
    mut("accumulate", lambda p: _set(p, 2, flags=pg.F_ACCUMULATE), k_tile.format(2))
    mut("K tile k0 != 0", lambda p: _setf(p, 0, 0, 5), k_tile.format(0))
    mut("G", lambda p: _setf(p, 1, 0, 4), "FIELD at instruction 1")
    mut("bit-serial flag on a ternary region", lambda p: _set(p, 2, flags=pg.F_BITSERIAL), "FIELD")
    mut("rows", lambda p: _setf(p, 2, 0, 36), "FIELD")
    mut("DEQUANT columns", lambda p: _setf(p, 3, 1, 36), "FIELD")
    mut("scalar DEQUANT", lambda p: _set(p, 3, flags=0), "FIELD")
    mut("region index", lambda p: _set(p, 2, a=len(p.regions)), "RANGE at instruction 2")
    mut("region past WGT_SIZE", lambda p: setattr(tlmm_region(p), "offset", wgt_size - 16), "RANGE at instruction 2")
    mut("region misaligned", lambda p: setattr(tlmm_region(p), "offset", tlmm_region(p).offset + 8), "RANGE")
    mut("beta past WGT_SIZE", lambda p: setattr(p.regions[_instr(p, "t_odd", pg.DEQUANT).f[3]], "offset",
                                                wgt_size - 16), "RANGE")
    mut("buffer index", lambda p: _set(p, 0, a=len(p.buffers)), "RANGE at instruction 0")
    mut("instruction table past PROG_SIZE", lambda p: p.encode()[: len(p.encode()) // 2], "RANGE")
    return cases


def _set(p, i, **kw):
    for k, v in kw.items():
        setattr(p.instrs[i], k, v)


def _setf(p, i, j, v):
    p.instrs[i].f[j] = v


def run_fault(drv, bank, case, rng) -> None:
    """Load the corrupt program, run it, expect the error; then the device is reset, reloaded with the
    good program and computes correctly."""
    label, blob, pc, match = case
    drv.load(bank.program, bank.image, blob=blob)
    lay = bank.layers["t_odd"]
    q = rng.integers(-128, 128, (2, lay.k)).astype(np.int8)
    if match == HOST_AT_0:
        with pytest.raises(DeviceError, match="stopped at instruction 0"):
            drv.run_segment(pc, 2, {lay.q_buf: q, lay.s_buf: np.ones(2, np.float32)})
        st = drv.dev.read_reg(rm.REG["STATUS"])
        assert st & rm.STATUS_HOST and not st & rm.STATUS_ERROR, label
        assert drv.dev.read_reg(rm.REG["STOP_PC"]) == 0, label
    else:
        with pytest.raises(DeviceError, match=match):
            drv.run_segment(pc, 2, {lay.q_buf: q, lay.s_buf: np.ones(2, np.float32)})
        assert drv.dev.read_reg(rm.REG["STATUS"]) & rm.STATUS_ERROR, label
    drv.reset()
    assert not drv.dev.read_reg(rm.REG["STATUS"]) & (rm.STATUS_BUSY | rm.STATUS_ERROR | rm.STATUS_RESETTING)
