"""Token selection from float32 logits, on the host, deterministic for a seed.

Greedy takes the first index of the maximum. Sampling works in float64: logits / temperature,
top-k (keep the k largest; ties at the boundary keep the lower indices), softmax, top-p (smallest
prefix of the descending-probability order whose mass reaches p), then one uniform draw from
numpy's PCG64 seeded generator against the cumulative distribution.
"""

from __future__ import annotations

import numpy as np

from edgestream.errors import InputError


class Sampler:
    def __init__(self, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None):
        if temperature < 0 or not np.isfinite(temperature):
            raise InputError(f"--temperature must be >= 0, got {temperature}")
        if top_k < 0:
            raise InputError(f"--top-k must be >= 0, got {top_k}")
        if not 0 < top_p <= 1:
            raise InputError(f"--top-p must be in (0, 1], got {top_p}")
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def __call__(self, logits: np.ndarray) -> int:
        z = np.asarray(logits, dtype=np.float64).reshape(-1)
        if self.temperature == 0:
            return int(np.argmax(z))
        order = np.argsort(-z, kind="stable")
        if self.top_k:
            order = order[: self.top_k]
        zs = z[order] / self.temperature
        p = np.exp(zs - zs[0])
        p /= p.sum()
        if self.top_p < 1:
            keep = int(np.searchsorted(np.cumsum(p), self.top_p) + 1)
            order, p = order[:keep], p[:keep] / p[:keep].sum()
        i = int(np.searchsorted(np.cumsum(p), self.rng.random(), side="right"))
        return int(order[min(i, len(order) - 1)])
