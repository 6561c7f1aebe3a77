"""Table-lookup matrix multiplication (TLMM): the reference the RTL engine and the CPU kernels match.

Ternary: activations q (int8, length K, zero-padded to a multiple of G) are split into groups of G.
For every group g the table T_g[c] = sum_i digit_i(c) * q[g*G + i] over all 3**G patterns c (digit
i of c is the trit of weight i, code c = sum_i (t_i + 1) * 3**i) is built once per activation vector
and shared by every output row; row n sums T_g[code[n, g]] over g. Entries fit in int16
(|T| <= 128*G), row sums in int32.

Integer weights (INT8/INT4/INT2) go bit-serially through the same lanes: bit plane b of the two's
complement weights selects entries of a binary table B_g[c] = sum_i bit_i(c) * q[g*G + i] (2**G
patterns), and acc = sum_{b < B-1} 2**b * S_b - 2**(B-1) * S_{B-1}, S_b = sum_g B_g[plane_b[n, g]].
"""

from __future__ import annotations

import numpy as np

from edgestream.formats.ternary import gindex_digits


def _groups(q: np.ndarray, g: int) -> np.ndarray:
    q = np.asarray(q, dtype=np.int64)
    pad = (-q.shape[-1]) % g
    if pad:
        q = np.pad(q, [(0, 0)] * (q.ndim - 1) + [(0, pad)])
    return q.reshape(*q.shape[:-1], -1, g)


def build_ternary_tables(q: np.ndarray, g: int) -> np.ndarray:
    """q int8 [..., K] -> tables int16 [..., ceil(K/G), 3**G]."""
    return (_groups(q, g) @ gindex_digits(g).T.astype(np.int64)).astype(np.int16)


def binary_patterns(g: int) -> np.ndarray:
    c = np.arange(1 << g)
    return ((c[:, None] >> np.arange(g)[None, :]) & 1).astype(np.int8)


def build_binary_tables(q: np.ndarray, g: int) -> np.ndarray:
    """q int8 [..., K] -> tables int16 [..., ceil(K/G), 2**G]."""
    return (_groups(q, g) @ binary_patterns(g).T.astype(np.int64)).astype(np.int16)


def lookup_sum(tables: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """tables [ngroups, P] (one activation vector), codes [N, ngroups] -> int32 [N]."""
    ng = tables.shape[0]
    return tables[np.arange(ng)[None, :], codes.astype(np.int64)].astype(np.int64).sum(axis=1).astype(np.int32)


def tlmm_ternary(q: np.ndarray, codes: np.ndarray, g: int) -> np.ndarray:
    """q int8 [T, K]; codes [N, ceil(K/G)] group-index codes -> acc int32 [T, N]."""
    q = np.atleast_2d(q)
    return np.stack([lookup_sum(tab, codes) for tab in build_ternary_tables(q, g)])


def bit_planes(w: np.ndarray, bits: int, g: int) -> np.ndarray:
    """Integer weights [N, K] -> binary group codes [bits, N, ceil(K/G)] (plane b = bit b of the
    two's complement value; code = sum_i bit_i * 2**i over the group)."""
    w = np.asarray(w)
    n, k = w.shape
    ng = -(-k // g)
    out = np.zeros((bits, n, ng), np.uint16)
    shifts = np.arange(bits, dtype=np.uint16)[:, None, None]
    # a block of rows at a time in 16-bit arithmetic: a 128256-row LM head would need tens of GB as
    # int64 group arrays (the values are the same: bit b of the two's complement in `bits` bits)
    step = max(1, (1 << 22) // max(1, ng * g))
    for r0 in range(0, n, step):
        blk = w[r0:r0 + step].astype(np.int16) & np.int16((1 << bits) - 1)
        pad = ng * g - k
        if pad:
            blk = np.pad(blk, [(0, 0), (0, pad)])
        grp = blk.view(np.uint16).reshape(blk.shape[0], ng, g)
        acc = np.zeros((bits, blk.shape[0], ng), np.uint16)
        for i in range(g):  # code bit i = bit b of the group's i-th weight, every plane at once
            acc |= ((grp[None, :, :, i] >> shifts) & np.uint16(1)) << np.uint16(i)
        out[:, r0:r0 + step] = acc
    return out


def tlmm_bitserial(q: np.ndarray, planes: np.ndarray, bits: int, g: int) -> np.ndarray:
    """q int8 [T, K]; planes [bits, N, ceil(K/G)] -> acc int32 [T, N]."""
    q = np.atleast_2d(q)
    out = []
    for tab in build_binary_tables(q, g):
        acc = np.zeros(planes.shape[1], dtype=np.int64)
        for b in range(bits):
            s = lookup_sum(tab, planes[b]).astype(np.int64)
            acc += (-s if b == bits - 1 else s) << b
        out.append(acc.astype(np.int32))
    return np.stack(out)


def dense_matmul(q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The integer matmul TLMM must equal: int8 [T, K] x int [N, K]^T -> int32 [T, N]."""
    return (np.atleast_2d(q).astype(np.int64) @ np.asarray(w, dtype=np.int64).T).astype(np.int32)
