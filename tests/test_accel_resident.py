"""One START per forward pass on the `cpu` model of the accelerator (host/devices/cpu.py with the units of
docs/units.md): buffers resident in the arena, the KV cache in the device's KV region, the host only
where the bitstream stops for it (a unit it lacks, SwiGLU, K tiles); tokens and logits bit-identical to
the CPU executor, greedy tokens from the ARGMAX register, clear errors at the limits."""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np
import pytest

import edgestream
from edgestream import program as pg
from edgestream import regmap as rm
from edgestream.artifact import read_artifact
from edgestream.errors import DeviceError, InputError
from edgestream.host.accel_executor import AccelProgramExecutor
from edgestream.host.devices.cpu import CpuDevice
from edgestream.host.devices.cpu_units import U_ARGMAX, U_ATTN, U_VEC, UNIT_OF
from edgestream.host.driver import AccelDriver, pack_tiles
from edgestream.host.executor import CpuExecutor
from edgestream.host.kernels import get_kernel
from edgestream.synth import make_checkpoint

ALL = U_VEC | U_ATTN | U_ARGMAX


@pytest.fixture(scope="module")
def bitnet(tmp_path_factory):
    d = tmp_path_factory.mktemp("bitnet")
    make_checkpoint(d / "ck", "tiny", seed=0)
    return read_artifact(edgestream.compile_model(d / "ck", d / "m.esa"))


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama")
    make_checkpoint(d / "ck", "tiny", arch="llama", seed=4)
    return read_artifact(edgestream.compile_model(d / "ck", d / "m.esa"))


def _accel(art, units=ALL, cfg=None, **kw):
    if cfg is None:
        return AccelProgramExecutor(art, AccelDriver(CpuDevice(units=units, **kw)))
    cid = int(cfg.config_id, 16)
    dev = CpuDevice(hw_config=cfg, units=units, **kw)
    return AccelProgramExecutor(art, AccelDriver(dev, expected_config_id=cid), device_config=cfg)


def _compare(art, ex, prompt, steps, starts_per_token, host_ops_per_token):
    """Prefill then greedy decode on both executors: logits bit-identical every step, the device's
    ARGMAX = argmax of the CPU logits, and the START / host-instruction counts per decode token."""
    cpu = CpuExecutor(art, get_kernel("numpy"))
    cap = len(prompt) + steps + 1
    cpu.reset(cap)
    ex.reset(cap)
    want = cpu.forward(np.array(prompt))
    got = ex.forward(np.array(prompt))
    assert got.tobytes() == want.tobytes()
    tok = int(np.argmax(want[-1]))
    for i in range(steps):
        want = cpu.forward(np.array([tok]))
        if i % 2:  # greedy: the device's ARGMAX only, the logits stay on the device
            runs = ex.driver.runs
            reads = []
            real = ex.driver.read_buffer
            ex.driver.read_buffer = lambda b, n, reads=reads, real=real: reads.append(b) or real(b, n)
            try:
                assert ex.forward_argmax(np.array([tok])) == int(np.argmax(want[-1]))
            finally:
                del ex.driver.read_buffer
            logits_buf = next(ins.a for ins in ex.prog.instrs if ins.op == pg.OUTPUT)
            assert (logits_buf in reads) == (not ex.units & U_ARGMAX)
        else:
            runs = ex.driver.runs
            assert ex.forward(np.array([tok])).tobytes() == want.tobytes()
        assert ex.driver.runs - runs == ex.starts == starts_per_token
        assert ex.host_ops == host_ops_per_token
        tok = int(np.argmax(want[-1]))
    ex.close()


def test_relu2_bitnet_one_start_per_token_no_host_work(bitnet):
    ex = _accel(bitnet)
    _compare(bitnet, ex, [1, 5, 9, 2, 7, 3, 4, 6, 8, 10], 4, starts_per_token=1, host_ops_per_token=0)


def test_every_position_and_prompts_longer_than_a_start(bitnet, monkeypatch):
    """last_only = False (perplexity) runs one START per token; a prompt longer than one START's tokens
    runs as several causal prefills over the cache: the same integers."""
    import edgestream.host.accel_executor as ae

    cpu = CpuExecutor(bitnet, get_kernel("numpy"))
    ids = np.array([1, 5, 9, 2, 7, 3, 4, 6, 8, 10, 11])
    cpu.reset(16)
    want = cpu.forward(ids, last_only=False)
    ex = _accel(bitnet)
    ex.reset(16)
    assert ex.forward(ids, last_only=False).tobytes() == want.tobytes()
    assert ex.starts == len(ids)
    monkeypatch.setattr(ae, "RUN_TOKENS", 4)
    ex = _accel(bitnet)
    ex.reset(16)
    assert ex.forward(ids).tobytes() == want[-1:].tobytes() and ex.starts == 3  # 4 + 4 + 3 tokens


def test_swiglu_runs_on_the_host(llama):
    """es_vec has no SwiGLU: the run stops at each ACT_MUL (one per layer), the host computes it on the
    arena's buffers and STARTs again after it."""
    n = llama.config.num_layers
    _compare(llama, _accel(llama), [3, 1, 4, 1, 5], 3, starts_per_token=1 + n, host_ops_per_token=n)
    # a vector unit with SwiGLU (what the RTL will have) runs the whole token
    _compare(llama, _accel(llama, vec_swiglu=True), [3, 1, 4], 2, starts_per_token=1, host_ops_per_token=0)


def test_k_tiled_linears_run_on_the_device(bitnet):
    """MAXK 64: the down projection (K = 160) comes as three K tiles (60 + 60 + 40 columns: every tile
    but the last a whole number of q-row beats). The shell's K-tile accumulator (HW_UNITS bit 3) runs
    them: one START per token, no host instruction, logits identical; a 6-token prompt takes two token
    tiles (MAXTOK 4), the sequencer going back to the linear's first LOAD_ACT for the second."""
    cfg = replace(edgestream.regmap.shell_config(), max_k=64)
    ex = _accel(bitnet, cfg=cfg)
    assert ex.units & rm.HW_KTILE and not ex.host_segments and "K > 64" not in ex.note
    tiles = [(i.f[0], i.f[1]) for i in ex.prog.instrs if i.op == pg.LOAD_ACT and i.f[0]]
    assert tiles[:2] == [(60, 60), (120, 40)]
    _compare(bitnet, ex, [1, 5, 9, 2, 6, 5], 2, starts_per_token=1, host_ops_per_token=0)
    ex.close()


def test_k_tiled_linears_without_the_accumulator_run_on_the_host(bitnet):
    """A bitstream without the K-tile accumulator stops at each K-tiled linear (at its first LOAD_ACT);
    the host runs it (LOAD_ACT..DEQUANT: 3 x 3 + 1 instructions) and STARTs after it."""
    cfg = replace(edgestream.regmap.shell_config(), max_k=64)
    ex = _accel(bitnet, cfg=cfg, ktile=False)
    assert len(ex.host_segments) == bitnet.config.num_layers and "K > 64" in ex.note
    n = bitnet.config.num_layers
    _compare(bitnet, ex, [1, 5, 9], 2, starts_per_token=1 + n, host_ops_per_token=10 * n)
    ex.close()


@pytest.mark.parametrize("units", [0, U_VEC | U_ARGMAX, U_VEC | U_ATTN])
def test_units_absent_run_on_the_host(bitnet, units):
    """No units (the linear-only shell), no attention unit (the host keeps its own INT8 cache), no
    argmax (the host reads the logits): the same bits, with a START after every host instruction."""
    ex = _accel(bitnet, units=units)
    absent = [i for i, ins in enumerate(ex.prog.instrs) if UNIT_OF.get(ins.op) and not units & UNIT_OF[ins.op]]
    # the host runs each stretch of absent units without a START; every stretch of device instructions
    # between them is one START
    dev_runs = sum(1 for i, ins in enumerate(ex.prog.instrs[:-1])
                   if i not in absent and (i == 0 or i - 1 in absent))
    _compare(bitnet, ex, [2, 4, 6], 2, starts_per_token=dev_runs, host_ops_per_token=len(absent))
    if units == 0:
        assert dev_runs == 9  # the linear-only shell: one START per linear, as before


def test_context_limits_are_clear_errors(bitnet):
    ex = _accel(bitnet, smax=8)
    with pytest.raises(InputError, match="HW_SMAX = 8"):
        ex.reset(9)
    ex.reset(8)
    with pytest.raises(InputError, match="KV cache holds 8 positions, 10 needed"):
        ex.forward(np.arange(10))
    # a KV region too small for the positions the run writes: the device refuses it, no logits
    ex.reset(8)
    ex.driver.dev.write_reg(rm.REG["KV_SIZE"], ex.kv_bytes(2))
    with pytest.raises(DeviceError, match=r"RANGE at instruction \d+ \(ATTENTION\).*opcode 0x21"):
        ex.forward(np.arange(3))


def test_unit_faults_follow_docs_units(bitnet):
    """The vector unit's checks as docs/units.md orders them, reported at the instruction with
    ERR_INFO = its opcode; the device works again after SOFT_RESET."""
    ex = _accel(bitnet)
    drv, dev, prog = ex.driver, ex.driver.dev, ex.prog
    ex.reset(8)
    nq = next(i for i, ins in enumerate(prog.instrs) if ins.op == pg.NORM_QUANT)
    q = prog.instrs[nq].f[0]  # its i8 output (only it writes the buffer)
    entry = drv.act_base + 16 * q
    good = dev.read_mem(entry, 16)
    off, cap, width, _ = struct.unpack("<IIIB3x", good)
    cases = [(struct.pack("<IIIB3x", off, cap, width, pg.B_F32), "FIELD"),      # q of dtype f32
             (struct.pack("<IIIB3x", off, cap, width + 1, pg.B_I8), "FIELD"),   # q wider than src
             (struct.pack("<IIIB3x", off, 32, width, pg.B_I8), "RANGE"),        # capacity < 3 tokens
             (struct.pack("<IIIB3x", off + 8, cap, width, pg.B_I8), "RANGE")]   # misaligned
    for raw, code in cases:
        dev.write_mem(entry, raw)
        with pytest.raises(DeviceError, match=rf"{code} at instruction {nq} \(NORM_QUANT\).*opcode 0x02"):
            ex.forward(np.array([1, 2, 3]))
        drv.reset()
        dev.write_mem(entry, good)
        ex.reset(8)
    # a token id past the embedding table (the host checks ids against the vocabulary first)
    drv.write_buffer(0, np.array([1, 10_000, 0, 0], "<u4").tobytes())
    with pytest.raises(DeviceError, match=r"RANGE at instruction 0 \(EMBED\)"):
        drv.run(0, 2, 0, 0)
    drv.reset()
    ex.reset(8)
    _compare(bitnet, ex, [1, 2, 3], 1, starts_per_token=1, host_ops_per_token=0)


def test_argmax_first_on_ties_nan_never_wins():
    """OUTPUT F_ARGMAX on hand-made logits: the first index of the largest value, NaN never, all-NaN 0."""
    dev = CpuDevice()
    drv = AccelDriver(dev)
    cfg = rm.shell_config()
    width = 37
    prog = pg.Program(cfg.config_id, cfg.G, [], [pg.Buffer("ids", pg.B_IDS, 1), pg.Buffer("logits", pg.B_F32, width)],
                      [pg.Instr(pg.OUTPUT, pg.F_ARGMAX, 1), pg.Instr(pg.END)], cfg.T, cfg.Q, cfg.CB)
    drv.load(prog, b"")
    drv.map_buffers({0: 16, 1: 4096})
    nan = np.float32("nan")
    for row, want in (([0.5] * width, 0), ([1, 3, 3, nan, 2] + [-np.inf] * (width - 5), 1),
                      ([nan, -1, nan, 7, 7] + [0] * (width - 5), 3), ([nan] * width, 0),
                      ([-0.0, 0.0] + [-1] * (width - 2), 0)):
        logits = np.array([[0] * width, row], np.float32)  # two tokens: the last one's row counts
        drv.write_buffer(1, pack_tiles(logits, drv.geo))
        c = drv.run(0, 2, 0, 0)
        assert c["status"] & rm.STATUS_DONE and dev.read_reg(rm.REG["ARGMAX"]) == want, row
