"""Devices behind the one driver, without a simulator: the `cpu` functional model of the shell, the
`pynq` device against a recording fake of pynq's Overlay/MMIO/allocate (the board itself is not
available here), and `--device auto`."""

from __future__ import annotations

import numpy as np
import pytest

import edgestream
from edgestream import regmap as rm
from edgestream.errors import DeviceError
from edgestream.host.devices.cpu import CpuDevice
from edgestream.host.devices.pynq import PynqDevice
from edgestream.host.driver import AccelDriver, desc_end, desc_header, desc_matmul, pack_weights, unpack_results
from edgestream.host.kernels import LinearWeights
from edgestream.numerics import dequant
from edgestream.synth import make_checkpoint
from edgestream.tlmm import dense_matmul


def _layers(rng):
    return [LinearWeights("t", "ternary", 2, rng.integers(-1, 2, (37, 23)).astype(np.int8)),
            LinearWeights("t2", "ternary", 2, rng.integers(-1, 2, (8, 2048)).astype(np.int8)),
            LinearWeights("i8", "int", 8, rng.integers(-128, 128, (9, 11)).astype(np.int8)),
            LinearWeights("i4", "int", 4, rng.integers(-8, 8, (13, 30)).astype(np.int8)),
            LinearWeights("i2", "int", 2, rng.integers(-2, 2, (6, 7)).astype(np.int8))]


def test_cpu_device_dequant_bit_exact():
    rng = np.random.default_rng(3)
    drv = AccelDriver(CpuDevice())
    layers = _layers(rng)
    betas = [rng.uniform(1e-3, 2, lw.n).astype(np.float32) for lw in layers]
    for lw, b in zip(layers, betas, strict=True):
        drv.add_layer(lw)
        drv.add_beta(lw.name, b)
    for lw, b in zip(layers, betas, strict=True):
        for ntok in (1, 8, 17):
            q = rng.integers(-128, 128, (ntok, lw.k)).astype(np.int8)
            s = rng.uniform(1e-4, 1, ntok).astype(np.float32)
            got = drv.matmul(lw.name, q, s)
            assert got.dtype == np.float32
            assert got.tobytes() == dequant(dense_matmul(q, lw.w), s, b).tobytes()
            np.testing.assert_array_equal(drv.matmul(lw.name, q), dense_matmul(q, lw.w))


def test_cpu_device_matmul_bit_exact():
    rng = np.random.default_rng(0)
    drv = AccelDriver(CpuDevice())
    layers = _layers(rng)
    for lw in layers:
        drv.add_layer(lw)
    for lw in layers:
        for ntok in (1, 8, 17):
            q = rng.integers(-128, 128, (ntok, lw.k)).astype(np.int8)
            np.testing.assert_array_equal(drv.matmul(lw.name, q), dense_matmul(q, lw.w))


def test_weight_layout_roundtrip():
    """The engine's beat order: lane q*T + t of beat (rb, plane, c) is row rb*Q+q, group c*T+t."""
    rng = np.random.default_rng(3)
    w = rng.integers(-1, 2, (6, 27)).astype(np.int8)
    raw = np.frombuffer(pack_weights(LinearWeights("w", "ternary", 2, w)), np.uint8)
    from edgestream.formats.ternary import pack_gindex

    codes = pack_gindex(w, 5)  # [6, 6 groups]
    beats = raw.reshape(2, 1, 2, 4, 4)  # [rb, plane, chunk, q, t]
    for r in range(6):
        for g in range(6):
            assert beats[r // 4, 0, g // 4, r % 4, g % 4] == codes[r, g]
    assert beats[1, 0, 0, 3, 0] == (3**5 - 1) // 2  # padding row holds the zero code
    res = np.arange(2 * 3 * 4, dtype="<i4")  # [rb=2][ntok=3][Q=4]
    got = unpack_results(res.tobytes(), 6, 3)
    assert got.shape == (3, 6) and got[2, 5] == res.reshape(2, 3, 4)[1, 2, 1]


def test_cpu_device_faults_match_the_shell():
    rng = np.random.default_rng(1)
    drv = AccelDriver(CpuDevice())
    lw = _layers(rng)[0]
    lay = drv.add_layer(lw)
    drv.upload()
    drv.matmul("t", np.zeros((1, lw.k), np.int8))
    hdr = desc_header(rm.shell_config_id())
    mm = desc_matmul(lw.k, lw.n, 1, False, 0, lay.offset, 0, 0)
    cases = [(desc_header(1) + mm + desc_end(), "CONFIG at descriptor 0"),
             (mm + desc_end(), "OPCODE at descriptor 0"),
             (hdr + desc_matmul(lw.k, lw.n, 1, False, 0, drv.wgt_size, 0, 0) + desc_end(), "RANGE at descriptor 1"),
             (hdr + desc_matmul(0, lw.n, 1, False, 0, 0, 0, 0) + desc_end(), "FIELD"),
             (hdr + mm, "PROG_LEN"),
             # DEQUANT: the beta beats must lie inside the weight region and be aligned
             (hdr + desc_matmul(lw.k, lw.n, 1, False, 0, lay.offset, 0, 0, drv.wgt_size - 16) + desc_end(), "RANGE"),
             (hdr + desc_matmul(lw.k, lw.n, 1, False, 0, lay.offset, 0, 0, 8) + desc_end(), "RANGE")]
    for prog, match in cases:
        with pytest.raises(DeviceError, match=match):
            drv.run_program(prog)
        drv.reset()
    with pytest.raises(DeviceError, match="configuration ID"):
        AccelDriver(CpuDevice(config_id=5))


# ---------------------------------------------------------------- pynq against a recording fake
class _FakeBuffer(np.ndarray):
    pass


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
            buf.physical_address = fake.model.alloc(n)
            fake.calls.append(("allocate", n, buf.physical_address))

            def flush():
                fake.calls.append(("flush", buf.physical_address))
                fake.model.write_mem(buf.physical_address, buf.tobytes())

            def invalidate():
                fake.calls.append(("invalidate", buf.physical_address))
                buf[:] = np.frombuffer(fake.model.read_mem(buf.physical_address, n), np.uint8)

            def freebuffer():
                fake.calls.append(("freebuffer", buf.physical_address))

            buf.flush, buf.invalidate, buf.freebuffer = flush, invalidate, freebuffer
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
    lw = _layers(rng)[3]
    drv.add_layer(lw)
    q = rng.integers(-128, 128, (3, lw.k)).astype(np.int8)
    n0 = len(fake.calls)
    np.testing.assert_array_equal(drv.matmul(lw.name, q), dense_matmul(q, lw.w))
    run = fake.calls[n0:]
    # every buffer write is flushed right after it; the result read is invalidated first
    allocs = {c[2] for c in fake.calls if c[0] == "allocate"}
    flushed = [c[1] for c in run if c[0] == "flush"]
    assert set(flushed) <= allocs and len(flushed) == 3  # weights once, activations, program
    assert [c for c in run if c[0] == "invalidate"] == [("invalidate", drv.res)]
    writes = [c for c in run if c[0] == "write"]
    assert ("write", R["WGT_BASE_LO"], drv.wgt_base & 0xFFFFFFFF) in writes
    assert ("write", R["PROG_LEN"], 3) in writes
    i_start = run.index(("write", R["CTRL"], rm.CTRL_START))
    assert run.index(("write", R["PROG_LEN"], 3)) < i_start
    assert run.index(("flush", drv.prog)) < i_start < run.index(("invalidate", drv.res))
    dev.close()
    assert sorted(c[1] for c in fake.calls if c[0] == "freebuffer") == sorted(allocs)


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
