"""Reference kernel in vectorized numpy.

numpy has no fast integer GEMM, so the integers go through float32 BLAS: every product of an INT8
activation and a weight (|w| <= 128) and every partial sum stays below 2**24, where float32 is
exact, as long as K * 128 * 128 < 2**24 (K < 1024). Longer rows are split into chunks of 1024 whose
partial results are converted to int32 and added exactly. Weights are widened to float32 a row
block at a time so the float copy never exists for the whole matrix.
"""

from __future__ import annotations

import numpy as np
from edgestream.host.kernels import LinearWeights

_KCHUNK = 1024  # 1024 * 128 * 128 = 2**24: exact in float32
_ROWBLOCK = 512


class NumpyKernel:
    name = "numpy"

    def prepare(self, lw: LinearWeights) -> LinearWeights:
        return lw

    def matmul(self, q: np.ndarray, lw: LinearWeights) -> np.ndarray:
        q = np.atleast_2d(q)
        w = lw.w
        qf = q.astype(np.float32)
        out = np.zeros((q.shape[0], w.shape[0]), dtype=np.int32)
        for r0 in range(0, w.shape[0], _ROWBLOCK):
            wb = w[r0 : r0 + _ROWBLOCK]
            for k0 in range(0, w.shape[1], _KCHUNK):
                part = qf[:, k0 : k0 + _KCHUNK] @ wb[:, k0 : k0 + _KCHUNK].astype(np.float32).T
                out[:, r0 : r0 + _ROWBLOCK] += part.astype(np.int32)
        return out
