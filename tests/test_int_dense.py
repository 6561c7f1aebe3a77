"""The INT8 LM head as an int-dense region (G column planes of int8, tlmm_engine's dense mode) on the
cpu model of the accelerator (host/devices/cpu.py executes the program and the weight image as the RTL
does): logits bit-identical to the CPU executor on every weight-port geometry the RTL has, the head's
weight stream G beats per chunk and row batch instead of 8, and a build without the dense mode refusing
the region (ERR FIELD at its TLMM, as es_seq.sv)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

import edgestream
from edgestream import program as pg
from edgestream import regmap as rm
from edgestream.artifact import read_artifact
from edgestream.errors import DeviceError
from edgestream.host.accel_executor import AccelProgramExecutor
from edgestream.host.devices.cpu import CpuDevice
from edgestream.host.devices.cpu_units import U_ARGMAX, U_ATTN, U_VEC
from edgestream.host.driver import AccelDriver, Geometry
from edgestream.host.executor import CpuExecutor
from edgestream.host.kernels import get_kernel
from edgestream.synth import make_checkpoint

ALL = U_VEC | U_ATTN | U_ARGMAX


@pytest.fixture(scope="module")
def bitnet(tmp_path_factory):
    d = tmp_path_factory.mktemp("dense")
    make_checkpoint(d / "ck", "tiny", seed=3)
    return read_artifact(edgestream.compile_model(d / "ck", d / "m.esa"))


def _dense(t: int, q: int, ports: int):
    return replace(rm.shell_config(), T=t, Q=q, axi_ports=ports, wbuf_kib=4 * ports, int_encoding="int8").validate()


def _head(prog: pg.Program) -> pg.Region:
    tl = [i for i in prog.instrs if i.op == pg.TLMM]
    return prog.regions[tl[-1].a]


@pytest.mark.parametrize(("t", "q", "ports"), [(1, 16, 1), (1, 64, 4), (4, 4, 1)])
def test_dense_head_bit_identical(bitnet, t, q, ports):
    cfg = _dense(t, q, ports)
    drv = AccelDriver(CpuDevice(hw_config=cfg, units=ALL), expected_config_id=int(cfg.config_id, 16),
                      geo=Geometry.of(cfg))
    ex = AccelProgramExecutor(bitnet, drv, device_config=cfg)
    head = _head(ex.prog)
    assert head.kind == pg.R_INT_DENSE and head.bits == 8 and head.stripes == ports
    cpu = CpuExecutor(bitnet, get_kernel("numpy"))
    prompt = [1, 5, 9, 2, 7, 3]
    cpu.reset(12)
    ex.reset(12)
    assert ex.forward(np.array(prompt)).tobytes() == cpu.forward(np.array(prompt)).tobytes()
    tok = 4
    for _ in range(2):
        want = cpu.forward(np.array([tok]))
        assert ex.forward(np.array([tok])).tobytes() == want.tobytes()
        assert ex.starts == 1 and ex.host_ops == 0
        tok = int(np.argmax(want[-1]))
    # the head streams G column planes per chunk: ceil(V/Q) * G * chunks engine beats of `ports` port beats
    chunks = math.ceil(math.ceil(head.k / cfg.G) / cfg.T)
    head_beats = math.ceil(head.n / cfg.Q) * cfg.G * chunks * ports
    regs = ex.prog.regions  # the decoder's ternary linears: one plane
    other = sum(math.ceil(r.n / cfg.Q) * math.ceil(math.ceil(r.k / cfg.G) / cfg.T) * ports
                for i in ex.prog.instrs if i.op == pg.TLMM and (r := regs[i.a]).kind == pg.R_TERN_GINDEX)
    assert ex.driver.dev.regs[rm.REG["WGT_BEATS"]] == other + head_beats   # one decode token's START
    ex.close()


def test_build_without_dense_mode_refuses_the_region(bitnet):
    """A program with an int-dense head on a build whose engine has no dense mode (the cpu model of a
    planes build answering with the dense configuration's ID): ERR FIELD at the head's TLMM, no integer
    computed from misread bytes."""
    dense, planes = _dense(1, 16, 1), replace(rm.shell_config(), int_encoding="planes").validate()
    dev = CpuDevice(hw_config=planes, config_id=int(dense.config_id, 16), units=ALL)
    drv = AccelDriver(dev, expected_config_id=int(dense.config_id, 16), geo=Geometry.of(dense))
    ex = AccelProgramExecutor(bitnet, drv, device_config=dense)
    head_pc = max(i for i, ins in enumerate(ex.prog.instrs) if ins.op == pg.TLMM)
    ex.reset(4)
    with pytest.raises(DeviceError, match="FIELD") as e:
        ex.forward(np.array([1, 2]))
    assert str(head_pc) in str(e.value)
    ex.close()
