"""The CPU executor's hot loop behind one small interface, so a compiled kernel can replace numpy.

A kernel turns the artifact's weights of one linear layer into whatever layout it likes once, at
load (`prepare`), and then computes the exact integer matmul of INT8 activations with them
(`matmul`). Every kernel must return exactly `edgestream.tlmm.dense_matmul(q, w)`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class LinearWeights:
    """Integer weights of one linear layer as stored in the artifact.

    kind: "ternary" (values in {-1,0,1}) or "int" (two's complement, `bits` = 8, 4 or 2).
    w: int8 [n, k] unpacked integer weights (the packed bytes stay in the artifact; kernels that
       want a packed layout build it in prepare()).
    """

    name: str
    kind: str
    bits: int
    w: np.ndarray

    @property
    def n(self) -> int:
        return self.w.shape[0]

    @property
    def k(self) -> int:
        return self.w.shape[1]


class Kernel(Protocol):
    name: str

    def prepare(self, lw: LinearWeights) -> Any: ...

    def matmul(self, q: np.ndarray, prepared: Any) -> np.ndarray:
        """q int8 [T, K] -> int32 [T, N], bit-identical to dense_matmul."""
        ...


def get_kernel(name: str | None = None) -> Kernel:
    """`name` or $EDGESTREAM_KERNEL: "numpy" (reference), "c" (compiled kernel, error if it was not
    built or cannot run here) or "auto" (the C kernel when it built, else numpy). The C kernel's ISA
    path and threads follow $EDGESTREAM_ISA and $EDGESTREAM_THREADS (docs/cpu-kernels.md)."""
    from edgestream.host.kernels.numpy_kernel import NumpyKernel

    name = name or os.environ.get("EDGESTREAM_KERNEL", "auto")
    if name == "numpy":
        return NumpyKernel()
    if name in ("c", "auto"):
        from edgestream.host.kernels.c_kernel import CKernel, CKernelUnavailable

        try:
            return CKernel()
        except CKernelUnavailable:
            if name == "c":
                raise
            return NumpyKernel()
    raise ValueError(f"unknown CPU kernel {name!r}: expected 'numpy', 'c' or 'auto'")
