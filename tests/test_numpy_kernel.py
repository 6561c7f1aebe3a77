"""The numpy reference kernel is the exact integer matmul on odd shapes, INT8 chunking included."""

from __future__ import annotations

import numpy as np
import pytest

from edgestream.host.kernels import LinearWeights
from edgestream.host.kernels.numpy_kernel import NumpyKernel
from edgestream.tlmm import dense_matmul


@pytest.mark.parametrize("kind,bits,n,k,t", [
    ("ternary", 2, 1, 1, 1), ("ternary", 2, 7, 2053, 3), ("int", 8, 5, 3001, 2), ("int", 4, 33, 1025, 1),
    ("int", 2, 3, 17, 5),
])
def test_numpy_kernel_is_exact(kind, bits, n, k, t):
    rng = np.random.default_rng(k)
    lo, hi = (-1, 1) if kind == "ternary" else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    w = rng.integers(lo, hi + 1, (n, k)).astype(np.int8)
    w[0] = hi  # saturated rows against saturated activations: the largest partial sums
    q = rng.integers(-128, 128, (t, k)).astype(np.int8)
    q[0] = -128
    kern = NumpyKernel()
    np.testing.assert_array_equal(kern.matmul(q, kern.prepare(LinearWeights("w", kind, bits, w))), dense_matmul(q, w))
