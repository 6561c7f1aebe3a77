"""Reference kernel in vectorized numpy.

numpy has no fast integer GEMM, so the integers go through float32 BLAS, which is exact here: every
product of an INT8 activation and a weight and every partial sum is an integer below 2**24, as long
as a chunk of K satisfies K * 128 * max|w| <= 2**24 (any K below 131072 for ternary weights, 1024 for
INT8). Chunk results are converted to int32 and added exactly. The float32 copy of the weights is
made once at load (4 bytes per weight: the price of using BLAS; the compiled kernel reads the packed
codes instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgestream.host.kernels import LinearWeights

_EXACT = 1 << 24


@dataclass
class _Prepared:
    wf: np.ndarray  # float32 [N, K]
    kchunk: int


class NumpyKernel:
    name = "numpy"

    def prepare(self, lw: LinearWeights) -> _Prepared:
        wmax = max(int(np.abs(lw.w).max(initial=0)), 1)
        return _Prepared(np.ascontiguousarray(lw.w, dtype=np.float32), max(_EXACT // (128 * wmax), 1))

    def matmul(self, q: np.ndarray, p: _Prepared) -> np.ndarray:
        qf = np.atleast_2d(q).astype(np.float32)
        k = p.wf.shape[1]
        if k <= p.kchunk:
            return (qf @ p.wf.T).astype(np.int32)
        out = np.zeros((qf.shape[0], p.wf.shape[0]), dtype=np.int32)
        for k0 in range(0, k, p.kchunk):
            out += (qf[:, k0 : k0 + p.kchunk] @ p.wf[:, k0 : k0 + p.kchunk].T).astype(np.int32)
        return out
