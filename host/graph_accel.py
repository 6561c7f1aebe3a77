"""Graph artifacts on the accelerator (`--device sim`, or a board): the kernel behind every `qmatmul`.

`AccelKernel` has the CPU kernels' interface (prepare(LinearWeights), matmul(q int8 [T, K]) -> int32
[T, N]), so the graph executor runs unchanged: the quantized matmuls go to the accelerator, everything
else stays on the host. Each layer is a LinearBank layer (LOAD_ACT, BUILD_TABLE, TLMM, DEQUANT) with
beta = 1 and token scale 1, so the accelerator returns float32(acc) * float32(1 * 1) = float32(acc).
That is the exact integer whenever |acc| < 2**24; a layer whose bound 128 * max_n sum_k |w[n, k]|
reaches 2**24 (or whose K exceeds the accelerator's MAXK) is split along K into chunks that each stay
below it, and the chunk sums are added in int64 on the host. So the accumulators, and with them every
output, are bit-identical to the CPU executor's.
"""

from __future__ import annotations

import numpy as np

from edgestream.errors import DeviceError
from edgestream.host.kernels import LinearWeights

EXACT = 1 << 24  # float32 holds every integer below this
A_MAX = 128  # |a| for int8 activations


def k_chunks(w: np.ndarray, max_k: int) -> list[tuple[int, int]]:
    """Column ranges of w [N, K] whose float32 accumulators are exact for any int8 activations."""
    k = w.shape[1]
    wabs = np.abs(w.astype(np.int64))
    if k <= max_k and A_MAX * int(wabs.sum(axis=1).max(initial=0)) < EXACT:
        return [(0, k)]
    width = min(max_k, (EXACT - 1) // (A_MAX * max(1, int(wabs.max(initial=0)))))
    return [(k0, min(k, k0 + width)) for k0 in range(0, k, width)]


class AccelKernel:
    """The qmatmul kernel on an AccelDriver (edgestream.host.driver.open_accel)."""

    def __init__(self, driver, device_name: str):
        from edgestream.host.driver import LinearBank

        self.driver = driver
        self.name = f"accel:{device_name}"
        self.bank = LinearBank(driver)
        self.loaded = False
        self.uid = 0

    def prepare(self, lw: LinearWeights) -> list[tuple[str, int, int]]:
        if self.loaded:
            raise DeviceError(f"layer {lw.name}: the accelerator's program is already loaded")
        parts = []
        for k0, k1 in k_chunks(lw.w, self.driver.geo.max_k):
            self.uid += 1
            name = f"{lw.name}.{self.uid}"
            self.bank.add(LinearWeights(name, lw.kind, lw.bits, np.ascontiguousarray(lw.w[:, k0:k1])))
            parts.append((name, k0, k1))
        return parts

    def matmul(self, q: np.ndarray, prepared: list[tuple[str, int, int]]) -> np.ndarray:
        if not self.loaded:  # every layer is prepared when the executor is built: one program for all
            self.bank.load()
            self.loaded = True
        q = np.ascontiguousarray(q, dtype=np.int8)
        acc = None
        for name, k0, k1 in prepared:
            y = self.bank.matmul(name, q[:, k0:k1]).astype(np.float64)
            part = y.astype(np.int64)
            if not np.array_equal(part, y):  # k_chunks keeps |acc| < 2**24: anything else is a device fault
                raise DeviceError(f"layer {name}: the accelerator returned a non-integer accumulator")
            acc = part if acc is None else acc + part
        return acc.astype(np.int32)
