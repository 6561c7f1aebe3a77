"""bitnet.cpp's I2_S ternary tensor (ggml type 36), in the x86 layout that its converter
(utils/convert-hf-to-gguf-bitnet.py `quantize_to_i2_s`) and its quantizer (src/ggml-bitnet-mad.cpp
`quantize_i2_s`, ACT_PARALLEL) write; docs/formats.md cites the lines.

A tensor of N rows of K weights (row = output channel, K contiguous, as ggml's ne[0]) is the
row-major trit sequence w[i] (i = row * K + col) cut into blocks of 128; byte j of block b holds
w[128b + j], w[128b + j + 32], w[128b + j + 64], w[128b + j + 96] in bits 7:6, 5:4, 3:2, 1:0, each
as code = trit + 1. The N*K/4 packed bytes are followed by a 32-byte tail whose first 4 bytes are
one little-endian float32 scale; bitnet.cpp multiplies the integer dot product by it, so a +1 trit
is worth `scale` (our ternary beta). The tensor's data is N*K/4 + 32 bytes (ggml_nbytes)."""

from __future__ import annotations

import numpy as np

from edgestream.formats.ternary import check_trits

GGML_TYPE_I2_S = 36
BLOCK = 128  # weights per block (QK_I2_S on x86)
BLOCK_BYTES = BLOCK // 4
TAIL = 32  # bytes after the packed codes: float32 scale, then zero padding
# Unpacking works on 64-bit words, 8 bytes (8 positions j) at a time: (w >> shift) & M is each byte's
# code c in 0..3; per byte, (c + 0x7F) ^ 0x80 = c - 1 as int8, and no byte carries (c + 0x7F <= 0x82).
_M = np.uint64(0x0303030303030303)
_C = np.uint64(0x7F7F7F7F7F7F7F7F)
_X = np.uint64(0x8080808080808080)
_LOW = np.uint64(0x5555555555555555)  # a field holds code 3 iff both its bits are set


def i2s_nbytes(n_elements: int) -> int:
    return n_elements // 4 + TAIL


def check_shape(n: int, k: int) -> None:
    if n <= 0 or k <= 0 or k % BLOCK:
        raise ValueError(
            f"I2_S needs rows that are a positive multiple of {BLOCK} weights (bitnet.cpp's block), got {n}x{k}"
        )


def pack_i2s(trits: np.ndarray, scale: float) -> np.ndarray:
    """uint8 [N*K/4 + 32]: the tensor data of trits [N, K] with the float32 `scale` in the tail."""
    t = check_trits(trits)
    n, k = t.shape
    check_shape(n, k)
    c = (t + 1).astype(np.uint8).reshape(-1, 4, BLOCK_BYTES)  # [block, group, j]
    out = np.zeros(i2s_nbytes(n * k), dtype=np.uint8)
    out[: n * k // 4] = ((c[:, 0] << 6) | (c[:, 1] << 4) | (c[:, 2] << 2) | c[:, 3]).reshape(-1)
    out[n * k // 4 : n * k // 4 + 4] = np.frombuffer(np.float32(scale).astype("<f4").tobytes(), np.uint8)
    return out


def i2s_scale(raw: np.ndarray, n: int, k: int) -> np.float32:
    """The float32 scale stored right after the packed codes."""
    off = n * k // 4
    return np.frombuffer(np.asarray(raw[off : off + 4], dtype=np.uint8).tobytes(), "<f4")[0]


def unpack_i2s(raw: np.ndarray, n: int, k: int) -> np.ndarray:
    """Trits int8 [N, K] of I2_S tensor data (at least N*K/4 bytes; the tail is not read).
    ValueError on the unused code 3."""
    check_shape(n, k)
    p = np.ascontiguousarray(np.asarray(raw, dtype=np.uint8)[: n * k // 4])
    w = p.view(np.uint64).reshape(n, k // BLOCK, BLOCK_BYTES // 8)
    if np.any(w & (w >> np.uint64(1)) & _LOW):
        b = int(np.nonzero((p & (p >> 1) & 0x55) != 0)[0][0])
        g = next(g for g in range(4) if (p[b] >> (6 - 2 * g)) & 3 == 3)
        row, col = divmod(b // BLOCK_BYTES * BLOCK + g * BLOCK_BYTES + b % BLOCK_BYTES, k)
        raise ValueError(
            f"row {row} column {col} holds the 2-bit code 3, which is not a ternary value "
            f"(I2_S codes are trit + 1: 0, 1, 2)"
        )
    out = np.empty((n, k // BLOCK, 4, BLOCK_BYTES // 8), dtype=np.uint64)  # [row, block, group, word]
    for g, shift in enumerate((6, 4, 2, 0)):
        c = (w >> np.uint64(shift)) & _M
        c += _C
        np.bitwise_xor(c, _X, out=out[:, :, g])
    return out.view(np.int8).reshape(n, k)
