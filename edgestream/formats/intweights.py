"""Per-output-channel symmetric integer weights (INT8, INT4, INT2) and their packing.

A row o holds integers w in [-2**(B-1), 2**(B-1) - 1] and a float32 scale beta_o; the real weight is
beta_o * w. Quantization: beta_o = max|W_o| / (2**(B-1) - 1), w = clamp(rint(W_o / beta_o)).
"""

from __future__ import annotations

import numpy as np

SUPPORTED_BITS = (2, 4, 8)


def qrange(bits: int) -> tuple[int, int]:
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"integer weights must be INT8, INT4 or INT2, got INT{bits}")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def quantize_per_channel(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = qrange(bits)
    w = np.asarray(w, dtype=np.float32)
    amax = np.max(np.abs(w), axis=1)
    # a row of subnormal weights can make amax / hi underflow to 0: keep beta at least the smallest
    # subnormal, so the row quantizes instead of dividing by zero
    step = np.maximum(amax / np.float32(hi), np.float32(np.finfo(np.float32).smallest_subnormal))
    beta = np.where(amax > 0, step, np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(w / beta[:, None]), lo, hi).astype(np.int8)
    return q, beta


def pack_int(q: np.ndarray, bits: int) -> np.ndarray:
    """INT8: one byte each. INT4/INT2: two's complement fields, 8/bits per byte along K, first in the
    low bits; rows padded with zeros to whole bytes."""
    lo, hi = qrange(bits)
    q = np.asarray(q)
    if q.size and (q.min() < lo or q.max() > hi):
        raise ValueError(f"INT{bits} weights out of range [{lo}, {hi}]")
    if bits == 8:
        return q.astype(np.int8).view(np.uint8)
    per = 8 // bits
    pad = (-q.shape[1]) % per
    u = (np.pad(q, ((0, 0), (0, pad))).astype(np.int16) & ((1 << bits) - 1)).astype(np.uint8)
    u = u.reshape(q.shape[0], -1, per)
    out = np.zeros(u.shape[:2], dtype=np.uint8)
    for i in range(per):
        out |= u[:, :, i] << (bits * i)
    return out


def unpack_int(p: np.ndarray, bits: int, k: int) -> np.ndarray:
    qrange(bits)
    p = np.asarray(p, dtype=np.uint8)
    if bits == 8:
        return p.view(np.int8)[:, :k].copy()
    per = 8 // bits
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    u = ((p[..., None] >> shifts) & ((1 << bits) - 1)).astype(np.int16).reshape(p.shape[0], -1)[:, :k]
    return np.where(u >= (1 << (bits - 1)), u - (1 << bits), u).astype(np.int8)
