"""Streaming reader of .safetensors files (memory-mapped, one tensor at a time).

The `safetensors` package writes our fixtures, but its numpy reader cannot return bfloat16, the
dtype real BitNet checkpoints use, so tensors are read here from the documented layout (8-byte
little-endian header length, JSON header, raw data) with every field checked.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from edgestream.errors import InputError

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "U16": np.uint16, "U32": np.uint32, "BOOL": np.bool_,
}


class SafetensorsFile:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise InputError(f"{self.path}: truncated safetensors file (no header)")
                (hlen,) = struct.unpack("<Q", head)
                if hlen > size - 8 or hlen > 100 << 20:
                    raise InputError(f"{self.path}: corrupt safetensors header length {hlen} (file is {size} bytes)")
                header = json.loads(f.read(hlen))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            if isinstance(e, InputError):
                raise
            raise InputError(f"{self.path}: not a readable safetensors file ({e})") from None
        self.metadata = header.pop("__metadata__", {}) or {}
        self.header = header
        self.data_start = 8 + hlen
        for name, info in header.items():
            try:
                b, e = info["data_offsets"]
                dtype, shape = info["dtype"], info["shape"]
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{self.path}: tensor {name}: malformed header entry") from None
            if dtype not in _DTYPES:
                raise InputError(f"{self.path}: tensor {name}: unsupported dtype {dtype} "
                                 f"(expected one of {', '.join(_DTYPES)})")
            want = int(np.prod(shape, dtype=np.int64)) * np.dtype(_DTYPES[dtype]).itemsize
            if e - b != want:
                raise InputError(f"{self.path}: tensor {name}: {e - b} bytes for shape {shape} {dtype}, "
                                 f"expected {want}")
            if self.data_start + e > size:
                raise InputError(f"{self.path}: truncated: tensor {name} ends at byte {self.data_start + e}, "
                                 f"file has {size}")
        self.size = size

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
