"""Endless generation in a fixed KV budget: attention sinks + a rolling window (docs/numerics.md "KV
window").

The cache holds at most `sinks + window` positions and RoPE sees the cache slot, so a forward pass is
the ordinary one. When a token would not fit, `shift_kv` drops the oldest `n_discard` window entries and
moves the rest down, re-rotating their keys by -n_discard. It is plain numpy over the cache arrays
between forward passes, so every CPU path (numpy, the fused C step) and the host's own cache of a
device without the attention unit share it; a device that keeps the cache in its KV region gets the
same function applied to the region's bytes, read and written back through the driver (host work
once every n_discard tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgestream import numerics as nx
from edgestream.errors import InputError

F32 = np.float32
DEFAULT_SINKS = 4  # StreamingLLM's four attention-sink tokens


@dataclass(frozen=True)
class KVWindow:
    window: int
    sinks: int = DEFAULT_SINKS

    @property
    def capacity(self) -> int:
        return self.sinks + self.window

    @property
    def n_discard(self) -> int:
        # ceil(N/2), not N//2: the entries a shift moves (floor(N/2)) are then all among the oldest
        # n_discard of the next shift, so each key is re-rotated at most once before it is dropped
        return (self.window + 1) // 2

    def check(self, limit: int, what: str) -> None:
        """`limit` positions the cache can hold at most (`what` names where the limit comes from)."""
        if isinstance(self.window, bool) or not isinstance(self.window, int | np.integer) or self.window < 1:
            raise InputError(f"--kv-window {self.window!r}: expected a whole number of positions >= 1")
        if isinstance(self.sinks, bool) or not isinstance(self.sinks, int | np.integer) or self.sinks < 0:
            raise InputError(f"--sinks {self.sinks!r}: expected a whole number of positions >= 0")
        if self.capacity > limit:
            raise InputError(f"--sinks {self.sinks} + --kv-window {self.window} = {self.capacity} KV-cache "
                             f"positions, but the cache holds at most {limit} ({what})")


def cache_limit(ex) -> tuple[int, str]:
    """The most positions `ex`'s KV cache can hold, and what sets it: the model's context, or the
    attention unit's score buffer when the device keeps the cache (HW_SMAX)."""
    from edgestream.host.devices.cpu_units import U_ATTN

    limit, what = ex.cfg.max_position, "the model's max_position"
    if getattr(ex, "units", 0) & U_ATTN and ex.limits["smax"] < limit:
        limit, what = ex.limits["smax"], "the attention unit's HW_SMAX of this bitstream"
    return limit, what


def rope_tables(ex) -> tuple[np.ndarray, np.ndarray]:
    """The cos/sin tables the executor's own forward RoPE reads (the artifact's graph tensors on the CPU
    executor, the program image's regions on the program/accelerator executors)."""
    from edgestream import program as pg

    graph = getattr(ex, "graph", None)
    if graph is not None:
        n = next(n for n in graph.nodes if n.op == "rope")
        return graph.tensors[n.attrs["cos"]].data, graph.tensors[n.attrs["sin"]].data
    ins = next(i for i in ex.prog.instrs if i.op == pg.ROPE)
    return ex.data(ins.f[2]), ex.data(ins.f[3])


def shift_kv(kq: np.ndarray, dk: np.ndarray, vq: np.ndarray, dv: np.ndarray, length: int, sinks: int, n: int,
             cos: np.ndarray, sin: np.ndarray) -> int:
    """In place on the cache arrays kq, vq int8 [..., slots, D] and dk, dv float32 [..., slots] (every
    layer and KV head at once): drop slots sinks..sinks+n-1 of the first `length`, move the later ones
    down by n; V rows and dv move as they are, each moved key is dequantized, rotated by -n positions and
    requantized. cos/sin: the RoPE tables ([positions, D/2], row n is used). Returns the new length.
    Slots from the new length on keep stale entries: nothing reads past the length."""
    lo, hi, d = sinks + n, length, kq.shape[-1]
    if not (0 <= sinks and 1 <= n and lo <= hi <= kq.shape[-2]):
        raise ValueError(f"shift of {n} past {sinks} sinks in a cache of length {length}/{kq.shape[-2]}")
    k = kq[..., lo:hi, :].astype(F32) * dk[..., lo:hi, None]  # the key the cache stands for, float32
    c, s = np.asarray(cos, F32)[n][None], np.asarray(sin, F32)[n][None]
    # the forward RoPE (numerics.rope) at angle -n: cos(-n) = cos n and sin(-n) = -sin n, the negation
    # exact, so lo' = lo*c + hi*s and hi' = hi*c - lo*s with each product rounded, then the add
    k = nx.rope(k.reshape(-1, 1, d), c, -s).reshape(k.shape)
    q, dq = nx.quant_heads(k)  # the quantizer that writes keys into the cache
    new = hi - n
    kq[..., sinks:new, :] = q
    dk[..., sinks:new] = dq
    vq[..., sinks:new, :] = vq[..., lo:hi, :].copy()
    dv[..., sinks:new] = dv[..., lo:hi].copy()
    return new


# ---- the attention unit's KV region (docs/units.md "KV cache in DDR")
def _region(ex) -> tuple[int, int, int]:
    """KV_BASE, KV_SIZE and the slots P of the device's region (its registers: what the unit reads)."""
    from edgestream import regmap as rm

    dev = ex.driver.dev
    base = dev.read_reg(rm.REG["KV_BASE_LO"]) | dev.read_reg(rm.REG["KV_BASE_HI"]) << 32
    size = dev.read_reg(rm.REG["KV_SIZE"])
    return base, size, ex.kv_layout().slots(size)


def read_device_cache(ex):
    """The device's KV region as arrays (edgestream.kv_layout.KvLayout.unpack), with its address KV_BASE."""
    base, size, slots = _region(ex)
    raw = ex.driver.dev.read_mem(base, size)
    return ex.kv_layout().unpack(raw, slots), base


def shift(ex, win: KVWindow) -> int:
    """Shift executor `ex`'s KV cache by win.n_discard (its length is ex.pos) and move ex.pos down.
    Returns the host operations it took on a device (1: the read-shift-write of the KV region), else 0."""
    cos, sin = rope_tables(ex)
    n, cache = win.n_discard, ex.cache
    if hasattr(cache, "kq"):  # an INT8 cache in host memory (CPU executor; a device without es_attn)
        ex.pos = shift_kv(cache.kq, cache.dk, cache.vq, cache.dv, ex.pos, win.sinks, n, cos, sin)
        return 0
    # the attention unit's region in device memory: the host reads it, shifts it with the same function
    # and writes it back before the next START (the unit writes the position word of every key it
    # stores, the slot = its RoPE position: the shift keeps that true)
    (kq, dk, vq, dv, pos), base = read_device_cache(ex)
    kq, vq = kq.copy(), vq.copy()
    new = shift_kv(kq, dk, vq, dv, ex.pos, win.sinks, n, cos, sin)
    pos[..., :new] = np.arange(new, dtype=np.uint32)
    ex.driver.dev.write_mem(base, ex.kv_layout().pack(kq, dk, vq, dv, pos))
    ex.pos = new
    return 1
