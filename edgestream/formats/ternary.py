"""Ternary weight encodings. Every packer takes trits int8 in {-1, 0, 1} of shape [N, K] (row = output
channel, K along the reduction) and every unpacker returns them; layouts are in docs/formats.md."""

from __future__ import annotations

import numpy as np


def check_trits(t: np.ndarray, what: str = "weights") -> np.ndarray:
    t = np.asarray(t)
    if t.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D [rows, cols] ternary matrix, got shape {t.shape}")
    if t.size and (t.min() < -1 or t.max() > 1):
        raise ValueError(f"{what}: expected values in {{-1, 0, 1}}, found {int(t.min())}..{int(t.max())}")
    return t.astype(np.int8)


def _pad_cols(a: np.ndarray, multiple: int, value: int = 0) -> np.ndarray:
    pad = (-a.shape[1]) % multiple
    return np.pad(a, ((0, 0), (0, pad)), constant_values=value) if pad else a


# ---- 2 bpw, I2_S-like: code = t + 1 in 2 bits, 4 per byte along K, first weight in bits 1:0.
def pack_i2(t: np.ndarray) -> np.ndarray:
    c = (_pad_cols(check_trits(t), 4) + 1).astype(np.uint8).reshape(t.shape[0], -1, 4)
    return (c[..., 0] | (c[..., 1] << 2) | (c[..., 2] << 4) | (c[..., 3] << 6)).astype(np.uint8)


def unpack_i2(p: np.ndarray, k: int) -> np.ndarray:
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8)
    c = (p[..., None] >> shifts) & 3
    return (c.reshape(p.shape[0], -1)[:, :k].astype(np.int8) - 1).astype(np.int8)


# ---- 2 bpw, llama.cpp TQ2_0: blocks of 256 along K: qs[64] then fp16 d (66 bytes).
# Within each 128-weight half, byte m holds weights m, m+32, m+64, m+96 in bits 1:0, 3:2, 5:4, 7:6.
TQ2_BLOCK = 256
TQ2_BYTES = 66


def pack_tq2_0(t: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """Returns uint8 [N, nblocks * 66]. `scale` is the per-row (or scalar) real value of a +1 trit."""
    t = check_trits(t)
    n, k = t.shape
    if k % TQ2_BLOCK:
        raise ValueError(f"TQ2_0 needs rows that are a multiple of {TQ2_BLOCK} weights, got {k}")
    nb = k // TQ2_BLOCK
    c = (t + 1).astype(np.uint8).reshape(n, nb, 2, 4, 32)  # [row, block, half, n, m]
    qs = c[:, :, :, 0] | (c[:, :, :, 1] << 2) | (c[:, :, :, 2] << 4) | (c[:, :, :, 3] << 6)
    qs = qs.reshape(n, nb, 64)
    d = np.broadcast_to(np.asarray(scale, dtype=np.float16).reshape(-1, 1), (n, nb)).copy()
    out = np.concatenate([qs, d.view(np.uint8).reshape(n, nb, 2)], axis=2)
    return out.reshape(n, nb * TQ2_BYTES)


def unpack_tq2_0(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (trits int8 [N, K], per-block fp16 scale as float32 [N, nblocks])."""
    n = p.shape[0]
    b = p.reshape(n, -1, TQ2_BYTES)
    nb = b.shape[1]
    qs = b[:, :, :64].reshape(n, nb, 2, 1, 32)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 1, 4, 1)
    c = (qs >> shifts) & 3
    d = b[:, :, 64:66].copy().view(np.float16).reshape(n, nb).astype(np.float32)
    return (c.reshape(n, nb * TQ2_BLOCK).astype(np.int8) - 1).astype(np.int8), d


# ---- 1.6 bpw, base-3: 5 trits per byte along K, byte = sum_i (t_i + 1) * 3**i (values 0..242).
# This is also the TLMM index code of group size G = 5 (see gindex below).
_POW3 = 3 ** np.arange(8, dtype=np.int64)


_ROWBLOCK = 1024  # rows per step: bounds the temporaries of the (un)packers on large tensors


def pack_base3(t: np.ndarray) -> np.ndarray:
    """Same bytes as pack_gindex(t, 5), computed in uint8 (242 < 256) a row block at a time."""
    t = np.asarray(t)
    n, k = t.shape
    out = np.empty((n, -(-k // 5)), dtype=np.uint8)
    for r in range(0, n, _ROWBLOCK):
        c = (_pad_cols(check_trits(t[r : r + _ROWBLOCK]), 5) + 1).astype(np.uint8).reshape(-1, out.shape[1], 5)
        out[r : r + _ROWBLOCK] = c[..., 0] + 3 * c[..., 1] + 9 * c[..., 2] + 27 * c[..., 3] + 81 * c[..., 4]
    return out


def unpack_base3(p: np.ndarray, k: int) -> np.ndarray:
    p = np.asarray(p, dtype=np.uint8)
    if p.size and p.max() > 242:
        raise ValueError(f"base-3 byte out of range: {int(p.max())} > 242")
    digits = gindex_digits(5)
    out = np.empty((p.shape[0], k), dtype=np.int8)
    for r in range(0, p.shape[0], _ROWBLOCK):
        out[r : r + _ROWBLOCK] = digits[p[r : r + _ROWBLOCK]].reshape(-1, p.shape[1] * 5)[:, :k]
    return out


# ---- TLMM group-index codes: groups of G consecutive weights along K (K zero-padded to a multiple
# of G), code = sum_i (t_i + 1) * 3**i over the group, in [0, 3**G).
def gindex_bits(g: int) -> int:
    return int(3**g - 1).bit_length()


def pack_gindex(t: np.ndarray, g: int) -> np.ndarray:
    """Returns the codes as uint16 [N, ceil(K/G)] (see pack_codes for a dense bit stream)."""
    if not 1 <= g <= 8:
        raise ValueError(f"group size G must be 1..8, got {g}")
    c = (_pad_cols(check_trits(t), g) + 1).astype(np.int64).reshape(t.shape[0], -1, g)
    return (c @ _POW3[:g]).astype(np.uint16)


_DIGITS: dict[int, np.ndarray] = {}


def gindex_digits(g: int) -> np.ndarray:
    """[3**G, G] int8: the trits of every code (row c = weights of pattern c)."""
    if g not in _DIGITS:
        codes = np.arange(3**g, dtype=np.int64)
        _DIGITS[g] = ((codes[:, None] // _POW3[None, :g]) % 3 - 1).astype(np.int8)
    return _DIGITS[g]


def unpack_gindex(codes: np.ndarray, g: int, k: int) -> np.ndarray:
    codes = np.asarray(codes).astype(np.int64)
    if codes.size and codes.max() >= 3**g:
        raise ValueError(f"G={g} index code out of range: {int(codes.max())} >= {3**g}")
    return gindex_digits(g)[codes].reshape(codes.shape[0], -1)[:, :k]


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned codes [N, M] of `bits` bits into a little-endian bit stream per row (code j
    starts at bit j*bits; rows padded to whole bytes). Returns uint8 [N, ceil(M*bits/8)]."""
    codes = np.asarray(codes).astype(np.uint64)
    n, m = codes.shape
    bitpos = np.arange(bits, dtype=np.uint64)
    bitmat = ((codes[:, :, None] >> bitpos) & np.uint64(1)).astype(np.uint8).reshape(n, m * bits)
    return np.packbits(bitmat, axis=1, bitorder="little")


def unpack_codes(p: np.ndarray, bits: int, m: int) -> np.ndarray:
    bitmat = np.unpackbits(np.asarray(p, dtype=np.uint8), axis=1, bitorder="little")[:, : m * bits]
    bitmat = bitmat.reshape(p.shape[0], m, bits).astype(np.uint32)
    return (bitmat << np.arange(bits, dtype=np.uint32)).sum(axis=2).astype(np.uint32)


# ---- HF BitNet (microsoft/bitnet-b1.58-2B-4T): uint8 [ceil(N/4), K]; byte row i holds output rows
# i, i + R, i + 2R, i + 3R (R = packed rows) in bits 1:0, 3:2, 5:4, 7:6, each as t + 1.
def pack_hf_bitnet(t: np.ndarray) -> np.ndarray:
    t = check_trits(t)
    n, k = t.shape
    r = (n + 3) // 4
    c = np.ones((4 * r, k), dtype=np.uint8)  # code 1 = trit 0 for padding rows
    c[:n] = (t + 1).astype(np.uint8)
    c = c.reshape(4, r, k)
    return (c[0] | (c[1] << 2) | (c[2] << 4) | (c[3] << 6)).astype(np.uint8)


def unpack_hf_bitnet(p: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(p, dtype=np.uint8)
    c = np.concatenate([(p >> (2 * i)) & 3 for i in range(4)], axis=0)
    if np.any(c[:n] == 3):
        raise ValueError("packed BitNet weight holds the 2-bit code 3, which is not a ternary value")
    return (c[:n].astype(np.int8) - 1).astype(np.int8)
