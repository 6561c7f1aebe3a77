"""Board targets as data: one JSON file per board (edgestream/data/targets/NAME.json), fields in
docs/targets.md. `load_target("kv260")` reads a bundled target; `load_target("my_board.json")` a
user's own file. Every field is checked, and a bad one is named in the error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgestream.errors import InputError

TARGET_DIR = Path(__file__).resolve().parent.parent / "edgestream" / "data" / "targets"
RESOURCES = ("lut", "ff", "dsp", "bram36", "uram")


def _bundled_dir() -> Path:
    try:
        import edgestream

        d = Path(edgestream.__file__).resolve().parent / "data" / "targets"
        if d.is_dir():
            return d
    except ImportError:  # pragma: no cover
        pass
    return TARGET_DIR


def list_targets() -> list[str]:
    return sorted(p.stem for p in _bundled_dir().glob("*.json"))


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    part: str
    resources: dict[str, int]  # LUT/FF/DSP/BRAM36/URAM of the device
    max_utilization: dict[str, float]  # fraction of each resource the design may use
    ddr_peak_gbps: float  # theoretical peak (GB/s = 1e9 B/s)
    ddr_size_bytes: int
    refresh_efficiency: float  # fraction of time the DRAM is not refreshing
    controller_efficiency: float  # DDR controller efficiency on long sequential reads
    read_latency_ns: float  # round trip of one read burst through the PS-PL port
    ports: int  # PS-PL AXI ports usable for weight/KV streams (HP ports)
    port_width_bits: int
    port_max_mhz: float
    clocks_mhz: tuple[float, ...]  # clock targets the DSE may choose from
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def budget(self, res: str) -> float:
        return self.resources[res] * self.max_utilization.get(res, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


def _get(d: dict, key: str, src: str, typ: type, path: str = ""):
    where = f"{path}{key}"
    if not isinstance(d, dict) or key not in d:
        raise InputError(f"{src}: field {where!r} is missing")
    v = d[key]
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if typ is int and isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, typ) or isinstance(v, bool):
        raise InputError(f"{src}: field {where!r} = {v!r}, expected a {typ.__name__}")
    return v


def target_from_dict(d: dict[str, Any], src: str = "target") -> Target:
    if not isinstance(d, dict):
        raise InputError(f"{src}: expected a JSON object")
    name = _get(d, "name", src, str)
    res = _get(d, "resources", src, dict)
    resources = {}
    for r in RESOURCES:
        v = _get(res, r, src, int, "resources.")
        if v < 0:
            raise InputError(f"{src}: field 'resources.{r}' = {v}, expected >= 0")
        resources[r] = v
    if resources["lut"] <= 0 or resources["ff"] <= 0:
        raise InputError(f"{src}: fields 'resources.lut' and 'resources.ff' must be positive")
    mu = d.get("max_utilization", {})
    util = {}
    for r in RESOURCES:
        v = float(mu.get(r, 1.0)) if isinstance(mu.get(r, 1.0), int | float) else None
        if v is None or not 0 < v <= 1:
            raise InputError(f"{src}: field 'max_utilization.{r}' = {mu.get(r)!r}, expected a number in (0, 1]")
        util[r] = v
    ddr = _get(d, "ddr", src, dict)
    peak = _get(ddr, "peak_gbps", src, float, "ddr.")
    if not peak > 0:
        raise InputError(f"{src}: field 'ddr.peak_gbps' = {peak}, expected > 0")
    effs = {}
    for k in ("refresh_efficiency", "controller_efficiency"):
        v = float(ddr.get(k, 0.95))
        if not 0 < v <= 1:
            raise InputError(f"{src}: field 'ddr.{k}' = {v}, expected a number in (0, 1]")
        effs[k] = v
    size = _get(ddr, "size_bytes", src, int, "ddr.")
    lat = float(ddr.get("read_latency_ns", 250))
    if not lat > 0:
        raise InputError(f"{src}: field 'ddr.read_latency_ns' = {lat}, expected > 0")
    ps = _get(d, "ps_pl", src, dict)
    ports = _get(ps, "ports", src, int, "ps_pl.")
    width = _get(ps, "width_bits", src, int, "ps_pl.")
    if ports < 1 or width not in (32, 64, 128, 256, 512):
        raise InputError(f"{src}: fields 'ps_pl.ports' = {ports}, 'ps_pl.width_bits' = {width}: expected "
                         f">= 1 port of 32/64/128/256/512 bits")
    pmax = _get(ps, "max_mhz", src, float, "ps_pl.")
    clocks = d.get("clocks_mhz")
    if (not isinstance(clocks, list) or not clocks
            or not all(isinstance(c, int | float) and not isinstance(c, bool) and 10 <= c <= 1000 for c in clocks)):
        raise InputError(f"{src}: field 'clocks_mhz' = {clocks!r}, expected a non-empty list of MHz in 10..1000")
    return Target(name=name, description=str(d.get("description", "")), part=str(d.get("part", "")),
                  resources=resources, max_utilization=util, ddr_peak_gbps=peak, ddr_size_bytes=size,
                  refresh_efficiency=effs["refresh_efficiency"],
                  controller_efficiency=effs["controller_efficiency"], read_latency_ns=lat, ports=ports,
                  port_width_bits=width, port_max_mhz=pmax, clocks_mhz=tuple(float(c) for c in sorted(clocks)),
                  raw=d)


def load_target(spec: str | Path) -> Target:
    """A bundled target name (kv260, zcu104, ultra96v2, generic, sim) or the path of a JSON target file."""
    p = Path(spec)
    if p.suffix.lower() == ".json" or p.is_file():  # a directory named like a target (sim/) is not one
        src = p
    else:
        src = _bundled_dir() / f"{spec}.json"
        if not src.is_file():
            raise InputError(f"target {str(spec)!r}: unknown (expected one of {', '.join(list_targets())}, "
                             f"'cpu', or the path of a target .json file)")
    try:
        d = json.loads(Path(src).read_text())
    except FileNotFoundError:
        raise InputError(f"{src}: no such target file") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{src}: not valid JSON ({e})") from None
    return target_from_dict(d, str(src))
