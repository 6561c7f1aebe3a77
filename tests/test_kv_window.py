"""Endless generation in a fixed KV budget (docs/numerics.md "KV window"): the shift against an
independent float64 derivation, generation well past the window bit-identical on every executor (CPU
numpy, the fused C step, the accelerator's register model with and without the attention unit, the
RTL under Verilator), the options' errors, and the clear error at the cache limit without them."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgestream
from edgestream import cli
from edgestream import numerics as nx
from edgestream.artifact import read_artifact
from edgestream.errors import InputError
from edgestream.host import kv_window as kvw
from edgestream.host.accel_executor import AccelProgramExecutor
from edgestream.host.devices.cpu import CpuDevice
from edgestream.host.devices.cpu_units import U_ARGMAX, U_ATTN, U_VEC
from edgestream.host.driver import AccelDriver
from edgestream.host.executor import CpuExecutor
from edgestream.host.kernels import get_kernel
from edgestream.synth import make_checkpoint

SINKS, WINDOW = 2, 8  # capacity 10, n_discard 4
PROMPT = [5, 17, 3, 250, 9]
NEW = 3 * WINDOW + 6  # the cache rolls six times


@pytest.fixture(scope="module")
def art_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("kvw")
    make_checkpoint(d / "ck", "tiny", seed=0)
    return edgestream.compile_model(d / "ck", d / "m.esa")


def _cache(rng, layers=2, kvh=3, slots=14, d=16):
    """A cache as the executors write it: keys after RoPE at their slot, through quant_heads."""
    cos, sin = nx.rope_tables(d, 64, 10000.0)
    x = rng.standard_normal((layers, kvh, slots, d)).astype(np.float32) * np.float32(3)
    x[0, 1, 5] = 0  # an all-zero key row: its scale is the quantizer's floor
    k = np.stack([nx.rope(x[:, :, s].reshape(-1, 1, d), cos[s:s + 1], sin[s:s + 1]).reshape(layers, kvh, d)
                  for s in range(slots)], axis=2)
    kq, dk = nx.quant_heads(k)
    vq, dv = nx.quant_heads(rng.standard_normal((layers, kvh, slots, d)).astype(np.float32))
    return kq, dk, vq, dv, cos, sin


def test_shift_matches_float64_rotation():
    kq, dk, vq, dv, cos, sin = _cache(np.random.default_rng(3))
    sinks, n, length, d = 3, 4, 13, kq.shape[-1]
    a = [x.copy() for x in (kq, dk, vq, dv)]
    new = kvw.shift_kv(*a, length, sinks, n, cos, sin)
    assert new == length - n
    # sinks never move; V rows and their scales move unchanged
    for x, y in ((a[0], kq), (a[1], dk), (a[2], vq), (a[3], dv)):
        assert x[:, :, :sinks].tobytes() == y[:, :, :sinks].tobytes()
    assert a[2][:, :, sinks:new].tobytes() == vq[:, :, sinks + n:length].tobytes()
    assert a[3][:, :, sinks:new].tobytes() == dv[:, :, sinks + n:length].tobytes()
    # keys: the real key (d * q) rotated by -n in float64 with exact angles, then the quantizer's grid
    half = d // 2
    inv = 1.0 / 10000.0 ** (np.arange(half) * 2.0 / d)
    c, s = np.cos(-n * inv), np.sin(-n * inv)
    k = kq[:, :, sinks + n:length].astype(np.float64) * dk[:, :, sinks + n:length, None]
    lo, hi = k[..., :half], k[..., half:]
    ref = np.concatenate([lo * c - hi * s, hi * c + lo * s], axis=-1)
    got = a[0][:, :, sinks:new].astype(np.float64) * a[1][:, :, sinks:new, None]
    amax = np.abs(ref).max(-1)
    nz = amax > 0
    # the scale is max|key| / 127 up to the float32 rounding of the rotation (a few ulp of max|key|)
    np.testing.assert_allclose(a[1][:, :, sinks:new][nz], (amax / 127)[nz], rtol=1e-6)
    assert np.all(a[1][:, :, sinks:new][~nz] == nx.ACT_EPS / np.float32(127))
    # every element within half a quantization step (plus that rounding) of the exact rotation
    err = np.abs(got - ref)
    bound = 0.5 * a[1][:, :, sinks:new, None].astype(np.float64) + 1e-6 * amax[..., None]
    assert np.all(err <= bound), float((err - bound).max())
    assert np.abs(got - ref).max() > 0  # it did requantize (a rotation is not on the old grid)


@pytest.mark.parametrize("window", [1, 2, 3, 4, 7, 8, 63])
@pytest.mark.parametrize("sinks", [0, 4])
def test_each_key_is_rerotated_at_most_once(window, sinks):
    """n_discard = ceil(N/2): the keys a shift moves are all dropped by the next one (docs/numerics.md)."""
    win = kvw.KVWindow(window, sinks)
    rotations: list[int] = []  # per slot: how often its key was re-rotated
    for _ in range(6 * win.capacity):
        if len(rotations) == win.capacity:
            rotations = rotations[:sinks] + [r + 1 for r in rotations[sinks + win.n_discard:]]
        rotations.append(0)
        assert max(rotations[sinks:], default=0) <= 1
    if window % 2 == 0:
        assert win.n_discard == window // 2  # llama.cpp's n_discard where it has that property too


def test_shift_is_one_function_of_its_inputs():
    """Shifting whole-model arrays at once equals shifting each (layer, head) alone: what the device
    path (the region unpacked as [layers, KVH, P, D]) and the CPU cache share."""
    kq, dk, vq, dv, cos, sin = _cache(np.random.default_rng(5))
    full = [x.copy() for x in (kq, dk, vq, dv)]
    kvw.shift_kv(*full, 12, 1, 5, cos, sin)
    for la in range(kq.shape[0]):
        for g in range(kq.shape[1]):
            one = [x[la, g].copy() for x in (kq, dk, vq, dv)]
            kvw.shift_kv(*one, 12, 1, 5, cos, sin)
            for x, y in zip(one, full, strict=True):
                assert x[:7].tobytes() == y[la, g, :7].tobytes()


def test_region_layout_roundtrip():
    from edgestream.kv_layout import KvLayout

    kq, dk, vq, dv, _, _ = _cache(np.random.default_rng(9), layers=2, kvh=2, slots=6, d=32)
    pos = np.arange(6, dtype=np.uint32)[None, None].repeat(2, 0).repeat(2, 1)
    lay = KvLayout(2, 2, 32)  # one KV port
    raw = lay.pack(kq, dk, vq, dv, pos)
    assert len(raw) == 2 * 2 * (2 * 2 + 1) * 16 * 6  # docs/units.md: layers*KVH*(2*DB+1)*16 per slot
    # K slot 1 of (layer 1, head 0): beat 0 = dk, dv, position, 0; then the key bytes
    blk = (1 * 2 + 0) * 6 * 5 * 16
    head = np.frombuffer(raw, "<u4", 4, blk + 1 * 3 * 16)
    assert head[0] == dk[1, 0, 1].view("<u4") and head[1] == dv[1, 0, 1].view("<u4") and list(head[2:]) == [1, 0]
    assert raw[blk + 3 * 16 + 16:blk + 3 * 16 + 48] == kq[1, 0, 1].tobytes()
    assert raw[blk + 6 * 3 * 16 + 32:blk + 6 * 3 * 16 + 64] == vq[1, 0, 1].tobytes()
    back = lay.unpack(raw, 6)
    for x, y in zip(back, (kq, dk, vq, dv, pos), strict=True):
        assert x.tobytes() == y.tobytes()


def _sessions(art_path):
    """(name, session) of every executor without a simulator; the accelerator's register model is the
    driver + AccelProgramExecutor a `sim`/`pynq` session runs, on the functional model of the shell."""
    out = []
    for kernel in ("numpy", None):
        s = edgestream.load(art_path, device="cpu", kernel=kernel)
        out.append((f"cpu-{s.kernel_name}" + ("-fused" if s.executor.fused else ""), s))
    art = read_artifact(art_path)
    for units, kvp in ((U_VEC | U_ATTN | U_ARGMAX, None), (U_VEC | U_ATTN | U_ARGMAX, 4), (U_VEC, None)):
        s = edgestream.load(art_path, device="cpu")
        s.executor = AccelProgramExecutor(art, AccelDriver(CpuDevice(units=units, kvp=kvp)))
        # kvp 4: the striped KV region of a four-port build (the host sizes, reads and rewrites it)
        out.append((f"accel-model-units{units}" + (f"-kvp{kvp}" if kvp else ""), s))
    return out


def _gen(sess, **kw):
    logits = []
    toks = list(sess.generate(PROMPT, max_new_tokens=NEW, kv_window=WINDOW, sinks=SINKS,
                              on_logits=lambda x: logits.append(np.array(x, np.float32)), **kw))
    return toks, np.stack(logits)


def test_generation_past_the_window_identical_on_every_executor(art_path):
    sess = _sessions(art_path)
    names = [n for n, _ in sess]
    assert any(n.endswith("-fused") for n in names), names  # the C kernel's fused step is among them
    want_t, want_l = _gen(sess[0][1], temperature=0.9, top_k=20, seed=7)
    assert len(want_t) == NEW and sess[0][1].stats.extra["kv_shifts"] >= 6
    ref_ex = sess[0][1].executor
    cap = SINKS + WINDOW
    for name, s in sess[1:]:
        got_t, got_l = _gen(s, temperature=0.9, top_k=20, seed=7)
        assert got_t == want_t, name
        assert got_l.tobytes() == want_l.tobytes(), name  # bit-identical float32 logits every step
        assert s.executor.pos == ref_ex.pos <= cap
        c, p = ref_ex.cache, ref_ex.pos
        if hasattr(s.executor.cache, "kq"):
            got = (s.executor.cache.kq, s.executor.cache.dk, s.executor.cache.vq, s.executor.cache.dv)
        else:  # the attention unit's region in the device's memory, docs/units.md layout
            (*got, pos), _ = kvw.read_device_cache(s.executor)
            assert (pos[..., :p] == np.arange(p)).all()  # position word = slot = RoPE position
            assert s.stats.extra["host_ops"] == s.stats.extra["kv_shifts"]  # one read-shift-write each
        for x, y in zip(got, (c.kq, c.dk, c.vq, c.dv), strict=True):
            assert x[:, :, :p].tobytes() == y[:, :, :p].tobytes(), name
    # greedy (the device's ARGMAX register) gives the same tokens as the CPU's logits
    greedy = list(sess[0][1].generate(PROMPT, max_new_tokens=NEW, kv_window=WINDOW, sinks=SINKS))
    for name, s in sess[1:]:
        assert list(s.generate(PROMPT, max_new_tokens=NEW, kv_window=WINDOW, sinks=SINKS)) == greedy, name


def test_window_semantics_by_hand(art_path):
    """The session's window is exactly: forward one token at a time; when the cache is full, shift
    by n_discard first. A prompt longer than the cache rolls it too."""
    art = read_artifact(art_path)
    win = kvw.KVWindow(WINDOW, SINKS)
    ex = CpuExecutor(art, get_kernel("numpy"))
    ex.reset(win.capacity)
    prompt = list(range(20, 20 + 2 * win.capacity + 3))
    logits = []
    for t in prompt:
        if ex.pos == win.capacity:
            kvw.shift(ex, win)
        logits.append(ex.forward(np.array([t]))[-1])
    s = edgestream.load(art_path, device="cpu", kernel="numpy")
    got = []
    toks = list(s.generate(prompt, max_new_tokens=2, kv_window=WINDOW, sinks=SINKS, on_logits=got.append))
    assert got[0].tobytes() == logits[-1].tobytes()
    assert toks[0] == int(np.argmax(logits[-1]))
    assert s.stats.extra["kv_shifts"] == 1 + (len(prompt) - win.capacity - 1) // win.n_discard


def test_sim_generation_past_the_window(art_path):
    """The RTL under Verilator (its attention unit keeps the cache in DDR; the host shifts the region
    between STARTs): the same tokens and the same cache bytes as the CPU executor, three windows in.
    Small on purpose: a START of the tiny model is seconds of simulation (the shift itself adds none:
    6 tokens took 105 s with a window, 103 s without, on a loaded 2-core machine)."""
    kw = {"max_new_tokens": 4, "kv_window": 2, "sinks": 1}  # 6 positions through 3 slots: 3 shifts
    prompt = PROMPT[:3]
    cpu = edgestream.load(art_path, device="cpu", kernel="numpy")
    want = list(cpu.generate(prompt, **kw))
    sess = edgestream.load(art_path, device="sim")
    try:
        assert sess.accel.units() & U_ATTN  # the shell keeps the cache: the host-side shift of its region
        got = list(sess.generate(prompt, **kw))
        assert got == want
        st = sess.stats.extra
        assert st["kv_shifts"] == 3 and st["host_ops"] == 3 and st["device_starts"] == 4
        p, c = cpu.executor.pos, cpu.executor.cache
        assert sess.executor.pos == p
        (*dev, pos), _ = kvw.read_device_cache(sess.executor)
        assert (pos[..., :p] == np.arange(p)).all()
        for x, y in zip(dev, (c.kq, c.dk, c.vq, c.dv), strict=True):
            assert x[:, :, :p].tobytes() == y[:, :, :p].tobytes()
    finally:
        sess.close()


@pytest.mark.parametrize("kw, match", [
    ({"kv_window": 0}, r"--kv-window 0: expected a whole number of positions >= 1"),
    ({"kv_window": -3}, r"--kv-window -3"),
    ({"kv_window": 8, "sinks": -1}, r"--sinks -1: expected a whole number of positions >= 0"),
    ({"kv_window": 250, "sinks": 7}, r"--sinks 7 \+ --kv-window 250 = 257 KV-cache positions, but the cache "
                                     r"holds at most 256 \(the model's max_position\)"),
    ({"sinks": 4}, r"--sinks 4 goes with --kv-window N"),
])
def test_option_errors(art_path, kw, match):
    s = edgestream.load(art_path, device="cpu", kernel="numpy")
    with pytest.raises(InputError, match=match):
        next(s.generate(PROMPT, max_new_tokens=4, **kw))


def test_window_must_fit_the_attention_units_score_buffer(art_path):
    s = edgestream.load(art_path, device="cpu")
    s.executor = AccelProgramExecutor(read_artifact(art_path), AccelDriver(CpuDevice(smax=16)))
    with pytest.raises(InputError, match=r"= 20 KV-cache positions, but the cache holds at most 16 \(the "
                                         r"attention unit's HW_SMAX"):
        next(s.generate(PROMPT, max_new_tokens=4, kv_window=16, sinks=4))
    assert list(s.generate(PROMPT, max_new_tokens=40, kv_window=12, sinks=4))  # fits: rolls
    with pytest.raises(InputError, match=r"cache holds 16 \(the attention unit's HW_SMAX"):
        next(s.generate(PROMPT, max_new_tokens=13))


def test_cache_limit_without_window_is_one_clear_error(art_path, capsys):
    s = edgestream.load(art_path, device="cpu", kernel="numpy")
    # prompt + new tokens - 1 positions (the last token is not fed back): 5 + 252 - 1 = 256 fits
    assert len(list(s.generate(PROMPT, max_new_tokens=252, stop_tokens=[]))) == 252
    with pytest.raises(InputError, match=r"the prompt \(5 tokens\) and 253 new tokens need 257 KV-cache "
                                         r"positions, but the cache holds 256 \(the model's max_position\): ask "
                                         r"for at most 252 new tokens, or pass --kv-window N"):
        next(s.generate(PROMPT, max_new_tokens=253))
    long = list(range(2, 262))
    with pytest.raises(InputError, match=r"the prompt \(260 tokens\) and 1 new tokens need 260 KV-cache "
                                         r"positions, but the cache holds 256 \(the model's max_position\): pass"):
        next(s.generate(long, max_new_tokens=1))
    # the CLI: the message, exit status 2, no traceback, no tokens
    rc = cli.main(["run", str(art_path), "--prompt-ids", ",".join(map(str, long)), "--max-new-tokens", "1"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and "Traceback" not in err
    assert err.startswith("edgestream run: error: the prompt (260 tokens)")
    # ... and the same prompt rolls through a window
    rc = cli.main(["run", str(art_path), "--prompt-ids", ",".join(map(str, long)), "--max-new-tokens", "3",
                   "--kv-window", "64", "--sinks", "4", "--json"])
    out, _ = capsys.readouterr()
    rep = json.loads(out)
    assert rc == 0 and len(rep["tokens"]) == 3
    # 260 + 2 fed tokens in 68 slots: full at 68, then a shift every 32 tokens
    assert rep["kv_window"] == {"window": 64, "sinks": 4, "n_discard": 32, "shifts": 1 + (262 - 68 - 1) // 32}
