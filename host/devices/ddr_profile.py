"""The memory system the simulated accelerator sees (sim/sim_server.py's DDR model), in cycles of the
shell's clock: one DDR shared by every AXI port, a read latency with jitter, AR acceptance per port.
docs/registers.md ("Memory model") gives the numbers and their sources."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

BURST_OVERHEAD_BYTES = 64.0  # = compiler.perfmodel.BURST_OVERHEAD_BYTES: ~3 ns of DDR time per burst at 19.2 GB/s


@dataclass(frozen=True)
class DdrProfile:
    bytes_per_cycle: float = math.inf  # shared DDR read bandwidth
    burst_overhead_bytes: float = 0.0  # DDR time per burst beyond its data (activate/precharge, commands)
    latency: int = 100  # cycles from a burst being served to its first R beat
    jitter: int = 0  # extra latency per burst, uniform 0..jitter cycles (row misses, queueing)
    accept: int = 64  # bursts a port holds in flight before ARREADY falls (+2 in its AR queue)
    seed: int = 1

    @classmethod
    def ideal(cls, latency: int) -> DdrProfile:
        """The former fixed-latency AXI RAM: no bandwidth limit, no jitter, in order."""
        return cls(latency=latency)

    @classmethod
    def of_target(cls, target, clock_mhz: float, latency: int | None = None, jitter: int = 16,
                  accept: int = 32) -> DdrProfile:
        """From a compiler target (edgestream.compiler.targets.Target): sustained bandwidth = DDR peak x
        refresh x controller efficiency; latency = its read_latency_ns unless given (in cycles)."""
        bw = target.ddr_peak_gbps * 1e9 * target.refresh_efficiency * target.controller_efficiency
        lat = latency if latency is not None else math.ceil(target.read_latency_ns * clock_mhz / 1e3)
        return cls(bw / (clock_mhz * 1e6), BURST_OVERHEAD_BYTES, int(lat), jitter, accept)

    def to_json(self) -> str:
        return json.dumps({k: (None if v == math.inf else v) for k, v in asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> DdrProfile:
        d = json.loads(text)
        if d.get("bytes_per_cycle") is None:
            d["bytes_per_cycle"] = math.inf
        return cls(**d)
