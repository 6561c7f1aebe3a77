"""Streaming reader of .safetensors files (memory-mapped, one tensor at a time).

The `safetensors` package writes our fixtures, but its numpy reader cannot return bfloat16, the
dtype real BitNet checkpoints use, so tensors are read here from the documented layout (8-byte
little-endian header length, JSON header, raw data) with every field checked.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

from edgestream.errors import InputError

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "U16": np.uint16, "U32": np.uint32, "BOOL": np.bool_,
}
# the safetensors crate's limit (MAX_HEADER_SIZE in safetensors/src/tensor.rs)
MAX_HEADER = 100_000_000


def _count(v) -> bool:
    """A JSON number that is a non-negative integer (the crate's `usize`; a bool is not one)."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _object_pairs(pairs: list) -> dict:
    d = {}
    for k, v in pairs:
        if k in d:
            raise _Duplicate(k)
        d[k] = v
    return d


class _Duplicate(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # Python's json would accept NaN/Infinity; the format does not


class SafetensorsFile:
    """The header of one .safetensors file, validated as the safetensors crate validates it
    (Metadata::validate, SafeTensors::read_metadata): header length at most 100 MB and inside the file,
    a UTF-8 JSON object, `__metadata__` a map of strings to strings, every other entry a tensor with a
    known dtype, a shape of non-negative integers and data_offsets [begin, end] whose byte count
    matches; sorted by offset, the tensors cover the data section exactly, without holes, overlaps or
    trailing bytes. Anything else is one InputError naming the file (and the tensor)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise InputError(f"{self.path}: truncated safetensors file ({len(head)} bytes, expected "
                                     f"an 8-byte header length first)")
                (hlen,) = struct.unpack("<Q", head)
                if hlen > MAX_HEADER or hlen > size - 8:
                    raise InputError(f"{self.path}: corrupt safetensors header length {hlen} (expected at most "
                                     f"{min(MAX_HEADER, size - 8)}: the file is {size} bytes)")
                raw = f.read(hlen)
        except OSError as e:
            raise InputError(f"{self.path}: not a readable safetensors file ({e})") from None
        header = self._parse_header(raw)
        meta = header.pop("__metadata__", None)
        if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
            raise InputError(f"{self.path}: corrupt safetensors header: __metadata__ = {_short(meta)}, expected "
                             f"an object of string values")
        self.metadata = meta or {}
        self.header = header
        self.data_start = 8 + hlen
        self.size = size
        for name, info in header.items():
            self._check_entry(name, info)
        # the crate sorts by offsets, then demands contiguity from 0 to the end of the file
        end = 0
        for name, info in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
            b, e = info["data_offsets"]
            if b != end:
                what = "overlaps the tensor before it" if b < end else f"leaves a hole of {b - end} bytes before it"
                raise InputError(f"{self.path}: corrupt safetensors header: tensor {name} data_offsets [{b}, {e}] "
                                 f"{what} (expected it to begin at {end}: tensors cover the data without "
                                 f"holes or overlaps)")
            end = e
        if self.data_start + end > size:
            last = max(header, key=lambda k: header[k]["data_offsets"][1])
            raise InputError(f"{self.path}: truncated: tensor {last} ends at byte {self.data_start + end}, "
                             f"the file has {size}")
        if self.data_start + end < size:
            raise InputError(f"{self.path}: corrupt safetensors file: {size - self.data_start - end} bytes after "
                             f"the last tensor (expected the tensors to end at byte {self.data_start + end}, "
                             f"the file's end)")

    def _parse_header(self, raw: bytes) -> dict:
        try:
            header = json.loads(raw.decode("utf-8"), object_pairs_hook=_object_pairs, parse_constant=_no_constant)
        except _Duplicate as e:
            raise InputError(f"{self.path}: corrupt safetensors header: key {e.key!r} appears twice") from None
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise InputError(f"{self.path}: corrupt safetensors header (not UTF-8 JSON: "
                             f"{_short(str(e))})") from None
        if not isinstance(header, dict):
            raise InputError(f"{self.path}: corrupt safetensors header: a JSON {type(header).__name__}, expected "
                             f"an object of tensors")
        return header

    def _check_entry(self, name: str, info) -> None:
        where = f"{self.path}: tensor {name}"
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise InputError(f"{where}: malformed header entry {_short(info)} (expected an object with dtype, "
                             f"shape and data_offsets)")
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise InputError(f"{where}: unsupported dtype {_short(dtype)} (expected one of {', '.join(_DTYPES)})")
        if not isinstance(shape, list) or not all(_count(d) for d in shape):
            raise InputError(f"{where}: shape {_short(shape)} is not a list of non-negative integers")
        if not (isinstance(offs, list) and len(offs) == 2 and all(_count(o) for o in offs) and offs[0] <= offs[1]):
            raise InputError(f"{where}: data_offsets {_short(offs)} are not [begin, end] with "
                             f"0 <= begin <= end")
        want = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
        if offs[1] - offs[0] != want:
            raise InputError(f"{where}: {offs[1] - offs[0]} bytes for shape {shape} {dtype}, expected {want}")

    def keys(self) -> list[str]:
        return list(self.header)

    def dtype(self, name: str) -> str:
        return self.header[name]["dtype"]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.header[name]["shape"])

    def raw(self, name: str, rows: tuple[int, int] | None = None) -> np.ndarray:
        """The stored values (or rows r0:r1), read from the file into fresh memory. Read, not
        memory-mapped: mapped pages of a multi-GB checkpoint would stay in the compiler's resident set."""
        info = self.header[name]
        dt = np.dtype(_DTYPES[info["dtype"]])
        shape = list(info["shape"])
        b, e = info["data_offsets"]
        if rows is not None and shape:
            row_bytes = (e - b) // shape[0] if shape[0] else 0
            r0, r1 = max(0, rows[0]), min(shape[0], rows[1])
            b, e = b + r0 * row_bytes, b + max(r0, r1) * row_bytes
            shape[0] = max(r1 - r0, 0)
        buf = np.empty(e - b, dtype=np.uint8)
        with open(self.path, "rb") as f:
            f.seek(self.data_start + b)
            if f.readinto(memoryview(buf)) != e - b:
                raise InputError(f"{self.path}: truncated while reading tensor {name}")
        return buf.view(dt).reshape(shape)

    def get(self, name: str, rows: tuple[int, int] | None = None) -> np.ndarray:
        """The tensor (or rows r0:r1 of it); floating types as float32 (bfloat16 widened exactly)."""
        a = self.raw(name, rows)
        dt = self.dtype(name)
        if dt == "BF16":
            return (a.astype(np.uint32) << 16).view(np.float32)
        if dt in ("F16", "F64"):
            return a.astype(np.float32)
        return np.asarray(a)


def _short(v, n: int = 80) -> str:
    """repr of a header value, cut short (a fuzzed or corrupt header may hold megabytes in one field)."""
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."
