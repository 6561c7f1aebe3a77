"""Devices behind the one driver, without a simulator: the `cpu` functional model of the shell, the
`pynq` device against a recording fake of pynq's Overlay/MMIO/allocate (the board itself is not
available here), and `--device auto`."""

from __future__ import annotations

import numpy as np
import pytest
from accel_cases import check_matmul, fault_cases, layers, make_bank, run_fault

import edgestream
from edgestream import regmap as rm
from edgestream.errors import DeviceError
from edgestream.host.devices.cpu import CpuDevice
from edgestream.host.devices.pynq import PynqDevice
from edgestream.host.driver import AccelDriver, Geometry, pack_q, unpack_tiles
from edgestream.synth import make_checkpoint


def test_cpu_device_matmul_dequant_bit_exact():
    rng = np.random.default_rng(3)
    drv = AccelDriver(CpuDevice())
    lws = layers(rng)
    bank, betas = make_bank(drv, lws, rng)
    for lw in lws:
        for ntok in (1, 8, 17):  # 17 tokens: three MAXTOK tiles in one run
            q = rng.integers(-128, 128, (ntok, lw.k)).astype(np.int8)
            check_matmul(bank, lw, betas[lw.name], q, rng.uniform(1e-4, 1, ntok).astype(np.float32))
    c = drv.last_counters
    assert c["instr_count"] == 4 and c["stop_pc"] == bank.layers["i2"].pc + 4  # stopped at its OUTPUT


def test_arena_layouts():
    """q buffers: group g of a token in the 8-byte slot g; f32 buffers in tile layout: tile j, row batch,
    token, Q floats (here Q = 4; the shell's Q comes from edgestream.regmap.SHELL_HW)."""
    geo = Geometry(G=5, T=4, Q=4, max_k=2048, max_tok=8)
    q = np.arange(2 * 12, dtype=np.int8).reshape(2, 12)
    raw = np.frombuffer(pack_q(q, geo), np.int8).reshape(2, 2, 16)  # 3 groups -> 2 beats per token
    assert raw[1, 0, 8:13].tolist() == q[1, 5:10].tolist() and raw[1, 1, 0:2].tolist() == q[1, 10:12].tolist()
    assert not raw[1, 1, 2:].any()
    ntok, width = 11, 6  # two tiles (8 + 3 tokens), two row batches
    y = np.arange(ntok * 8, dtype=np.float32).reshape(ntok, 8)
    tiles = np.zeros((2, 2, 8, 4), np.float32)
    tiles[0] = y[:8].reshape(8, 2, 4).transpose(1, 0, 2)
    tiles[1].reshape(-1)[: 2 * 3 * 4] = y[8:].reshape(3, 2, 4).transpose(1, 0, 2).reshape(-1)
    np.testing.assert_array_equal(unpack_tiles(tiles.tobytes(), ntok, width, geo), y[:, :width])


def test_cpu_device_faults_match_the_shell():
    rng = np.random.default_rng(1)
    drv = AccelDriver(CpuDevice())
    lws = layers(rng, big=False)
    bank, betas = make_bank(drv, lws, rng)
    for case in fault_cases(bank.program, drv.wgt_size, drv.units()):
        run_fault(drv, bank, case, rng)
        drv.load(bank.program, bank.image)
        q = rng.integers(-128, 128, (3, lws[0].k)).astype(np.int8)
        check_matmul(bank, lws[0], betas[lws[0].name], q, np.ones(3, np.float32))
    with pytest.raises(DeviceError, match="configuration ID"):
        AccelDriver(CpuDevice(config_id=5))


def test_cpu_device_runs_the_demo_program_bit_identically(tmp_path):
    """The whole tiny model through program.bin on the cpu shell model: host instructions on the host,
    linear layers on the device, logits bit-identical to the CPU executor over prefill (two token
    tiles) and decode."""
    from edgestream.artifact import read_artifact
    from edgestream.host.accel_executor import AccelProgramExecutor
    from edgestream.host.executor import CpuExecutor
    from edgestream.host.kernels import get_kernel

    make_checkpoint(tmp_path / "ck", "tiny", seed=0)
    art = read_artifact(edgestream.compile_model(tmp_path / "ck", tmp_path / "m.esa"))
    cpu = CpuExecutor(art, get_kernel("numpy"))
    ex = AccelProgramExecutor(art, AccelDriver(CpuDevice()))
    assert "lowered m.esa" in ex.note
    cpu.reset(16)
    ex.reset(16)
    for ids in ([1, 5, 9, 2, 7, 3, 4, 6, 8, 10], [11], [12]):
        want = cpu.forward(np.array(ids), last_only=False)
        assert ex.forward(np.array(ids), last_only=False).tobytes() == want.tobytes()
    ex.close()


def test_k_tiled_linears_run_on_the_host(tmp_path):
    """A configuration with MAXK 64: the tiny model's down projection (K = 160) is lowered as K tiles
    that accumulate, which a bitstream without the K-tile accumulator (ktile=False, HW_UNITS bit 3
    clear) does not do; those segments run on the host, the rest on the device, and the logits stay
    identical (with the accumulator: tests/test_accel_resident.py)."""
    from dataclasses import replace

    from edgestream.artifact import read_artifact
    from edgestream.host.accel_executor import AccelProgramExecutor
    from edgestream.host.executor import CpuExecutor
    from edgestream.host.kernels import get_kernel

    make_checkpoint(tmp_path / "ck", "tiny", seed=0)
    art = read_artifact(edgestream.compile_model(tmp_path / "ck", tmp_path / "m.esa"))
    cfg = replace(rm.shell_config(), max_k=64)
    cid = int(cfg.config_id, 16)
    dev = CpuDevice(config_id=cid, ktile=False)
    ex = AccelProgramExecutor(art, AccelDriver(dev, expected_config_id=cid), device_config=cfg)
    assert len(ex.host_segments) == art.config.num_layers and "K > 64" in ex.note
    cpu = CpuExecutor(art, get_kernel("numpy"))
    cpu.reset(8)
    ex.reset(8)
    for ids in ([1, 5, 9], [4]):
        want = cpu.forward(np.array(ids), last_only=False)
        assert ex.forward(np.array(ids), last_only=False).tobytes() == want.tobytes()
    ex.close()


# ---------------------------------------------------------------- pynq against a recording fake
class _FakeBuffer(np.ndarray):
    """pynq.buffer.PynqBuffer's contract: a slice is a buffer whose physical_address and nbytes are
    the slice's, and flush/invalidate act on exactly those bytes (here: copy them to/from the cpu
    shell model standing in for DDR, and record the call)."""

    def __array_finalize__(self, obj):
        if isinstance(obj, _FakeBuffer) and getattr(obj, "fake", None) is not None:
            self.fake = obj.fake
            self.physical_address = obj.physical_address + (self.__array_interface__["data"][0]
                                                            - obj.__array_interface__["data"][0])
        else:
            self.fake = None

    def flush(self):
        self.fake.calls.append(("flush", self.physical_address, self.nbytes))
        self.fake.model.write_mem(self.physical_address, self.tobytes())

    def invalidate(self):
        self.fake.calls.append(("invalidate", self.physical_address, self.nbytes))
        self[:] = np.frombuffer(self.fake.model.read_mem(self.physical_address, self.nbytes), np.uint8)

    def freebuffer(self):
        self.fake.calls.append(("freebuffer", self.physical_address))


class FakePynq:
    """Records every call the pynq device makes; MMIO and buffers are backed by the cpu shell model so
    the driver's runs complete and their results can be checked."""

    PHYS, RANGE = 0xA000_0000, 0x1000

    def __init__(self):
        self.calls: list[tuple] = []
        self.model = CpuDevice()
        fake = self

        class Overlay:
            def __init__(self, path):
                fake.calls.append(("Overlay", path))
                self.ip_dict = {"edgestream_accel_0": {"phys_addr": FakePynq.PHYS, "addr_range": FakePynq.RANGE}}

        class MMIO:
            def __init__(self, base, length):
                fake.calls.append(("MMIO", base, length))

            def read(self, off):
                fake.calls.append(("read", off))
                return fake.model.read_reg(off)

            def write(self, off, value):
                fake.calls.append(("write", off, value))
                fake.model.write_reg(off, value)

        def allocate(shape, dtype):
            n = shape[0]
            buf = np.zeros(n, dtype=dtype).view(_FakeBuffer)
            buf.fake = fake
            buf.physical_address = fake.model.alloc(n)
            fake.calls.append(("allocate", n, buf.physical_address))
            return buf

        self.Overlay, self.MMIO, self.allocate = Overlay, MMIO, allocate


def test_pynq_device_exact_calls(tmp_path):
    bit = tmp_path / "edgestream.bit"
    bit.write_bytes(b"bit")
    (tmp_path / "edgestream.hwh").write_text("<hwh/>")
    fake = FakePynq()
    dev = PynqDevice(bit, pynq_module=fake)
    assert fake.calls[:2] == [("Overlay", str(bit)), ("MMIO", FakePynq.PHYS, FakePynq.RANGE)]
    drv = AccelDriver(dev)
    R = rm.REG
    # identity check, then a soft reset polled until idle
    assert fake.calls[2:8] == [("read", R["MAGIC"]), ("read", R["VERSION"]), ("read", R["CONFIG_ID_LO"]),
                               ("read", R["CONFIG_ID_HI"]), ("write", R["CTRL"], rm.CTRL_SOFT_RESET),
                               ("read", R["STATUS"])]
    rng = np.random.default_rng(2)
    lw = layers(rng, big=False)[2]
    n0 = len(fake.calls)
    bank, betas = make_bank(drv, [lw], rng)
    load = fake.calls[n0:]
    blob = bank.program.encode()
    # program.bin and the weight image are uploaded once, as they are, and flushed
    assert ("write", R["PROG_SIZE"], len(blob)) in load and ("write", R["WGT_SIZE"], len(bank.image)) in load
    assert fake.model.read_mem(drv.prog_base, len(blob)) == blob
    assert fake.model.read_mem(drv.wgt_base, len(bank.image)) == bank.image
    # each write flushes exactly the bytes it wrote
    assert [c[1:] for c in load if c[0] == "flush"] == [(drv.prog_base, len(blob)), (drv.wgt_base, len(bank.image)),
                                                        (drv.act_base, drv.map_bytes)]
    q = rng.integers(-128, 128, (3, lw.k)).astype(np.int8)
    s = rng.uniform(0.1, 1, 3).astype(np.float32)
    n1 = len(fake.calls)
    check_matmul(bank, lw, betas[lw.name], q, s)
    run = fake.calls[n1:]
    # map entries (q, s, y: one 16-byte entry each) and the q and s data go into the arena, each write
    # flushing its own bytes; only the result's bytes are invalidated before they are read; NTOK and PC
    # are written before START
    lay = bank.layers[lw.name]
    flushes = [c for c in run if c[0] == "flush"]
    assert len(flushes) == 5 and all(drv.act_base <= c[1] and c[1] + c[2] <= drv.act_base + drv.act_cap
                                     for c in flushes)
    assert ("flush", drv.act_base + 16 * lay.q_buf, 16) in flushes and ("flush", drv.act_base + 16 * lay.dst_buf,
                                                                          16) in flushes
    inval = [c for c in run if c[0] == "invalidate"]
    g = drv.geo
    assert len(inval) == 1 and inval[0][2] == g.tiles(3) * g.row_batches(lw.n) * g.max_tok * g.Q * 4
    i_start = run.index(("write", R["CTRL"], rm.CTRL_START))
    assert max(i for i, c in enumerate(run) if c[0] == "flush") < i_start < run.index(inval[0])
    assert run.index(("write", R["NTOK"], 3)) < i_start and run.index(("write", R["PC"], 0)) < i_start
    assert ("read", R["STOP_PC"]) in run[i_start:]
    dev.close()
    allocs = [c[2] for c in fake.calls if c[0] == "allocate"]
    assert sorted(c[1] for c in fake.calls if c[0] == "freebuffer") == sorted(allocs)


def test_pynq_device_runs_the_demo_program(tmp_path):
    """The whole tiny model through the pynq device (recording fake over the cpu shell model): tokens
    and logits identical to the CPU executor's, the sequencer started once per forward pass (the cpu
    model has every unit the tiny ReLU^2 model needs)."""
    bit = tmp_path / "edgestream.bit"
    bit.write_bytes(b"bit")
    make_checkpoint(tmp_path / "ck", "tiny", seed=0)
    art = edgestream.compile_model(tmp_path / "ck", tmp_path / "m.esa")
    cpu = edgestream.load(art, device="cpu", kernel="numpy")
    want = list(cpu.generate([1, 5, 9], max_new_tokens=3, temperature=0.8, seed=3))
    fake = FakePynq()
    sess = edgestream.load(art, device="pynq", device_options={"bitfile": bit, "pynq_module": fake})
    try:
        assert list(sess.generate([1, 5, 9], max_new_tokens=3, temperature=0.8, seed=3)) == want
    finally:
        sess.close()
    starts = [c for c in fake.calls if c == ("write", rm.REG["CTRL"], rm.CTRL_START)]
    assert len(starts) == 3  # prefill + 2 decode steps
    # greedy: the tokens come from the ARGMAX register, one START per token, no host instruction
    want = list(cpu.generate([1, 5, 9], max_new_tokens=4))
    sess = edgestream.load(art, device="pynq", device_options={"bitfile": bit, "pynq_module": FakePynq()})
    try:
        assert list(sess.generate([1, 5, 9], max_new_tokens=4)) == want
        assert sess.stats.extra == {"device_starts": 4, "host_ops": 0}
    finally:
        sess.close()


def test_pynq_device_missing_pieces(tmp_path):
    with pytest.raises(DeviceError, match="no such bitstream"):
        PynqDevice(tmp_path / "none.bit", pynq_module=FakePynq())
    bit = tmp_path / "x.bit"
    bit.write_bytes(b"")
    with pytest.raises(DeviceError, match="no IP named"):
        PynqDevice(bit, ip_name="other", pynq_module=FakePynq())


def test_device_auto_picks_cpu_without_a_board(tmp_path, monkeypatch):
    import edgestream.host.devices as devices

    make_checkpoint(tmp_path / "ck", "tiny", seed=1)
    art = edgestream.compile_model(tmp_path / "ck", tmp_path / "m.esa")
    monkeypatch.setattr(devices, "board_present", lambda: False)
    sess = edgestream.load(art, device="auto")
    assert sess.device == "cpu" and "auto picked cpu" in sess.device_note
