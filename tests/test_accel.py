"""The accelerator shell (hw/rtl/edgestream_accel.sv) through the real driver on the `sim` device:
integer matmuls bit-exact against edgestream.tlmm.dense_matmul on Verilator and Icarus, the tiny demo
model's tokens and logits identical to the CPU executor's, and every fault (bad configuration ID,
AXI SLVERR/DECERR on read and write, a hung memory, out-of-range programs) reported as a DeviceError
with the device left resettable and working afterwards."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import edgestream
from edgestream import regmap as rm
from edgestream.errors import DeviceError
from edgestream.host.devices.sim import SimDevice
from edgestream.host.driver import (
    AccelDriver,
    desc_end,
    desc_header,
    desc_matmul,
)
from edgestream.host.kernels import LinearWeights
from edgestream.synth import make_checkpoint
from edgestream.tlmm import dense_matmul


@pytest.fixture(scope="module")
def dev():
    d = SimDevice("verilator", latency=100)
    yield d
    d.close()


@pytest.fixture(scope="module")
def drv(dev):
    return AccelDriver(dev)


def _layers(rng):
    return [
        LinearWeights("t_odd", "ternary", 2, rng.integers(-1, 2, (37, 23)).astype(np.int8)),  # K, N ragged
        LinearWeights("t_wide", "ternary", 2, rng.integers(-1, 2, (64, 160)).astype(np.int8)),
        LinearWeights("i8", "int", 8, rng.integers(-128, 128, (9, 11)).astype(np.int8)),
        LinearWeights("i4", "int", 4, rng.integers(-8, 8, (13, 30)).astype(np.int8)),
        LinearWeights("i2", "int", 2, rng.integers(-2, 2, (6, 7)).astype(np.int8)),
    ]


def test_regmap_package_is_generated_from_regmap_py():
    assert rm.PKG_PATH.read_text() == rm.render_sv()
    r = subprocess.run([sys.executable, "-m", "edgestream.regmap", "--check"], capture_output=True)
    assert r.returncode == 0


def test_identity_registers(dev, drv):
    assert dev.read_reg(rm.REG["MAGIC"]) == rm.MAGIC
    assert drv.config_id() == rm.shell_config_id()
    hw = dev.read_reg(rm.REG["HW_PARAMS"])
    assert (hw & 0xF, (hw >> 4) & 0xFF, (hw >> 12) & 0xFF, (hw >> 20) & 0xFF) == (
        rm.SHELL_HW["G"], rm.SHELL_HW["T"], rm.SHELL_HW["Q"], rm.SHELL_HW["max_tok"])


def test_matmul_bit_exact(drv):
    rng = np.random.default_rng(1)
    layers = _layers(rng)
    for lw in layers:
        drv.add_layer(lw)
    for lw in layers:
        for ntok in (1, 3, 10):  # 10 tokens = two MAXTOK tiles in one program
            lo, hi = (-128, 128) if ntok != 3 else (-128, -127)  # edge: all -128 activations
            q = rng.integers(lo, hi, (ntok, lw.k)).astype(np.int8)
            got = drv.matmul(lw.name, q)
            np.testing.assert_array_equal(got, dense_matmul(q, lw.w), err_msg=f"{lw.name} ntok={ntok}")
    c = drv.last_counters
    assert c["desc_count"] == 4 and c["cycles"] > 0 and c["rd_beats"] > c["wgt_beats"] > 0


@pytest.fixture(scope="module")
def demo_artifact(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    make_checkpoint(d / "ck", "tiny", seed=0)
    return edgestream.compile_model(d / "ck", d / "m.esa")


def _generate(sess, ids, n, seed):
    logits = []
    toks = list(sess.generate(ids, max_new_tokens=n, temperature=0.8, top_k=40, seed=seed,
                              on_logits=lambda x: logits.append(np.array(x, np.float32))))
    return toks, np.stack(logits)


def test_demo_model_identical_to_cpu(demo_artifact, dev):
    cpu = edgestream.load(demo_artifact, device="cpu", kernel="numpy")
    ids = [1, 5, 9, 2, 7]
    want_t, want_l = _generate(cpu, ids, 3, seed=11)
    sess = edgestream.load(demo_artifact, device="sim")
    try:
        got_t, got_l = _generate(sess, ids, 3, seed=11)
    finally:
        sess.close()
    assert got_t == want_t
    assert got_l.tobytes() == want_l.tobytes()  # bit-identical float32 logits


def test_demo_model_dequant_on_device_identical_to_cpu(demo_artifact):
    """Linear layers with DEQUANT descriptors: the float32 outputs come from the shell's dequantize
    stage, and the logits stay bit-identical to the CPU executor's."""
    from edgestream.artifact import read_artifact
    from edgestream.host.driver import AccelKernel, accel_executor, open_accel
    from edgestream.host.executor import CpuExecutor
    from edgestream.host.kernels import get_kernel

    art = read_artifact(demo_artifact)
    cpu = CpuExecutor(art, get_kernel("numpy"))
    drv, d = open_accel("sim", art)
    try:
        kernel = AccelKernel(drv, "accel-sim")
        ex = accel_executor(art, kernel)
        kernel.record = True
        cpu.reset(16)
        ex.reset(16)
        for ids in ([1, 5, 9, 2, 7, 3, 4, 6, 8, 10], [11], [12]):  # prefill over two MAXTOK tiles, then decode
            want = cpu.forward(np.array(ids), last_only=False)
            got = ex.forward(np.array(ids), last_only=False)
            assert got.tobytes() == want.tobytes()
        assert kernel.log and all(c["rd_beats"] > c["wgt_beats"] for _, _, c in kernel.log)
    finally:
        d.close()


def test_cli_run_sim_matches_cpu(demo_artifact, tmp_path):
    from edgestream.cli import main

    for dev_name in ("cpu", "sim"):
        assert main(["run", str(demo_artifact), "--device", dev_name, "--prompt-ids", "3,4,5", "--max-new-tokens",
                     "2", "--seed", "4", "--temperature", "0.7", "--dump-logits", str(tmp_path / f"{dev_name}.npy"),
                     "--json"]) == 0
    a, b = np.load(tmp_path / "cpu.npy"), np.load(tmp_path / "sim.npy")
    assert a.shape == b.shape and a.tobytes() == b.tobytes()


# ---------------------------------------------------------------- faults
def _ok_after(drv):
    """The device is idle, clean and computes correctly again."""
    st = drv.dev.read_reg(rm.REG["STATUS"])
    assert not st & (rm.STATUS_BUSY | rm.STATUS_RESETTING | rm.STATUS_ERROR)
    rng = np.random.default_rng(7)
    lay = drv.layers["t_odd"]
    q = rng.integers(-128, 128, (2, lay.k)).astype(np.int8)
    w = next(lw for lw in _layers(np.random.default_rng(1)) if lw.name == "t_odd").w
    np.testing.assert_array_equal(drv.matmul("t_odd", q), dense_matmul(q, w))


def _fault(drv, program: bytes, match: str):
    with pytest.raises(DeviceError, match=match):
        drv.run_program(program)
    assert drv.dev.read_reg(rm.REG["STATUS"]) & rm.STATUS_ERROR
    drv.reset()
    _ok_after(drv)


def _mm(drv, **kw):
    lay = drv.layers["t_odd"]
    args = dict(k=lay.k, n=lay.n, ntok=1, bitserial=False, bits=0, w_off=lay.offset, a_off=0, r_off=0)
    args.update(kw)
    return desc_matmul(**args)


def test_fault_bad_config_id(drv, dev):
    hdr_bad = desc_header(rm.shell_config_id() ^ 1)
    _fault(drv, hdr_bad + _mm(drv) + desc_end(), "CONFIG at descriptor 0")
    # the host refuses a device whose configuration ID differs from the program's before running anything
    with pytest.raises(DeviceError, match="configuration ID"):
        AccelDriver(dev, expected_config_id=rm.shell_config_id() ^ 2)


def test_fault_out_of_range_programs(drv):
    hdr = desc_header(rm.shell_config_id())
    lay = drv.layers["t_odd"]
    _fault(drv, hdr + _mm(drv, w_off=drv.wgt_size - 16) + desc_end(), "RANGE at descriptor 1")
    _fault(drv, hdr + _mm(drv, a_off=drv.act_cap) + desc_end(), "RANGE")
    _fault(drv, hdr + _mm(drv, r_off=8) + desc_end(), "RANGE")  # misaligned
    _fault(drv, hdr + _mm(drv, beta_off=drv.wgt_size - 16) + desc_end(), "RANGE")  # DEQUANT beta past the region
    _fault(drv, hdr + _mm(drv, beta_off=8) + desc_end(), "RANGE")  # DEQUANT beta misaligned
    _fault(drv, hdr + _mm(drv, k=rm.SHELL_HW["max_k"] + 1) + desc_end(), "FIELD")
    _fault(drv, hdr + _mm(drv, ntok=rm.SHELL_HW["max_tok"] + 1) + desc_end(), "FIELD")
    _fault(drv, hdr + _mm(drv, bitserial=True, bits=9) + desc_end(), "FIELD")
    _fault(drv, hdr + bytes([0x7F]) + bytes(31) + desc_end(), "OPCODE at descriptor 1.*0x7f")
    _fault(drv, _mm(drv) + desc_end(), "OPCODE at descriptor 0")  # no HEADER
    _fault(drv, hdr + _mm(drv), "PROG_LEN")  # no END
    assert lay.n == 37


@pytest.mark.parametrize("resp", ["SLVERR", "DECERR"])
def test_fault_axi_read_error(drv, dev, resp):
    lay = drv.layers["t_odd"]
    lo = drv.wgt_base + lay.offset + 16 * 3
    dev.inject("read_error", lo, lo + 16, resp)
    try:
        with pytest.raises(DeviceError, match=f"AXI_READ.*{resp}"):
            drv.matmul("t_odd", np.ones((1, lay.k), np.int8))
    finally:
        dev.clear_faults()
    drv.reset()
    _ok_after(drv)


def test_fault_axi_write_error(drv, dev):
    dev.inject("write_error", drv.res, drv.res + 16)
    try:
        with pytest.raises(DeviceError, match="AXI_WRITE.*SLVERR"):
            drv.matmul("t_odd", np.ones((1, drv.layers["t_odd"].k), np.int8))
    finally:
        dev.clear_faults()
    drv.reset()
    _ok_after(drv)


def test_fault_hang_times_out_and_recovers(drv, dev):
    dev.inject("hang")
    with pytest.raises(DeviceError, match="did not finish within .* did not come back from a soft reset"):
        drv.matmul("t_odd", np.ones((1, drv.layers["t_odd"].k), np.int8))
    # the memory answers again: the bus drains, the soft reset completes, the device works
    dev.clear_faults()
    drv.reset()
    _ok_after(drv)


def test_faults_never_produce_tokens(demo_artifact):
    sess = edgestream.load(demo_artifact, device="sim")
    try:
        sess.accel_device.inject("hang")
        sess.accel.timeout_s = 2e-5
        toks = []
        with pytest.raises(DeviceError, match="did not finish"):
            for t in sess.generate([1, 2, 3], max_new_tokens=2):
                toks.append(t)
        assert toks == []
        sess.accel_device.clear_faults()
    finally:
        sess.close()


def test_icarus_matmul_bit_exact():
    d = SimDevice("icarus", latency=20)
    try:
        drv = AccelDriver(d)
        rng = np.random.default_rng(5)
        lws = [LinearWeights("t", "ternary", 2, rng.integers(-1, 2, (9, 12)).astype(np.int8)),
               LinearWeights("i8", "int", 8, rng.integers(-128, 128, (5, 7)).astype(np.int8))]
        for lw in lws:
            drv.add_layer(lw)
        for lw in lws:
            q = rng.integers(-128, 128, (2, lw.k)).astype(np.int8)
            np.testing.assert_array_equal(drv.matmul(lw.name, q), dense_matmul(q, lw.w))
    finally:
        d.close()


def test_cli_bench_reports_cycles_bus_and_stalls(demo_artifact, capsys):
    import json

    from edgestream.cli import main

    assert main(["bench", str(demo_artifact), "--device", "sim", "--prompt-ids", "1,2,3", "--decode-tokens", "1",
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    for ph in ("prefill", "decode"):
        p = rep[ph]
        assert p["cycles"] > 0 and p["cycles_per_token"] == p["cycles"] / p["tokens"]
        assert 0 < p["read_bus_util"] <= 1 and p["read_bytes"] == 16 * p["rd_beats"]
        assert 0 <= p["stall_wgt_frac"] <= 1 and 0 <= p["seq_frac"] <= 1
    # per forward pass, 2 layers x 4 matmuls (q/k/v stacked, o, gate/up stacked, down) + the LM head
    assert rep["prefill"]["commands"] == 9 and rep["decode"]["commands"] == 9
    assert rep["perf_model"]["mean_abs_err_calibrated"] <= rep["perf_model"]["mean_abs_err_raw"]
