"""Opening a GGUF file and reading its metadata, with one clear InputError for every way a file can
be missing, truncated or corrupt.

The `gguf` package's GGUFReader parses the header, metadata and tensor infos; its tensor table does
not know bitnet.cpp's ggml type 36 (I2_S), so `_reader_class` extends that one step: a type-36 tensor
becomes a ReaderTensor of raw bytes (N*K/4 + 32, edgestream/formats/i2s.py) whose `tensor_type` is
`I2S` below. Type 36 is taken as I2_S even if a later `gguf` release gives the number a meaning of
its own, because that is what a file of bitnet.cpp means by it."""

from __future__ import annotations

from enum import IntEnum
from functools import cache
from pathlib import Path

import numpy as np

from edgestream.errors import InputError
from edgestream.formats.i2s import GGML_TYPE_I2_S, i2s_nbytes

TYPES = ("F32", "F16", "BF16", "Q8_0", "TQ1_0", "TQ2_0", "I2_S")
GGUF_MAGIC = b"GGUF"
# ggml types of bitnet.cpp's fork beyond I2_S, named in the error for a file that holds one
BITNET_CPP_TYPES = {37: "I8_S", 38: "TL1", 39: "TL2"}


class BitnetCppType(IntEnum):
    """ggml types of bitnet.cpp that the gguf package has no member for (the reader's tensor_type)."""

    I2_S = GGML_TYPE_I2_S


class _UnknownType(Exception):
    def __init__(self, tensor: str, type_id: int):
        self.tensor, self.type_id = tensor, type_id


@cache
def _reader_class():
    import gguf

    known = {int(t) for t in gguf.GGMLQuantizationType}

    class Reader(gguf.GGUFReader):
        def _get(self, offset: int, dtype, count: int = 1, override_order=None):
            # the package slices its memmap without a bounds check: past the end it gets empty arrays
            # of 0 bytes, so an array count of 2**63 loops forever at one offset; every read must fit
            count, itemsize = int(count), np.dtype(dtype).itemsize
            # tensor data may come up short here: open_gguf then names the truncated tensor
            if not self.__dict__.get("_tensor_data") and (offset < 0 or count < 0
                                                           or offset + itemsize * count > len(self.data)):
                raise ValueError(f"{count} x {np.dtype(dtype).name} at byte {offset} run past the end of the "
                                 f"file ({len(self.data)} bytes)")
            return super()._get(offset, dtype, count, override_order)

        def _get_field_parts(self, orig_offs: int, raw_type: int):
            if raw_type == gguf.GGUFValueType.ARRAY:  # refuse a count the file cannot hold before looping on it
                itype, n = int(self._get(orig_offs, np.uint32)[0]), int(self._get(orig_offs + 4, np.uint64)[0])
                np_type = self.gguf_scalar_to_np.get(gguf.GGUFValueType(itype)) \
                    if itype in gguf.GGUFValueType._value2member_map_ else None
                least = 8 if itype == gguf.GGUFValueType.STRING else 12 if itype == gguf.GGUFValueType.ARRAY \
                    else np.dtype(np_type).itemsize if np_type is not None else 0
                if orig_offs + 12 + n * least > len(self.data):
                    raise ValueError(f"an array of {n} items at byte {orig_offs} does not fit in the file "
                                     f"({len(self.data)} bytes)")
            return super()._get_field_parts(orig_offs, raw_type)

        def _build_tensors(self, start_offs: int, fields: list) -> None:
            self._tensor_data = True
            names = [str(bytes(f.parts[1]), encoding="utf-8") for f in fields]
            if len(set(names)) != len(names):
                dup = next(n for n in names if names.count(n) > 1)
                raise ValueError(f"Found duplicated tensor with name {dup}")
            types = [int(f.parts[4][0]) for f in fields]
            arch = self.fields.get("general.architecture")
            # bitnet.cpp numbers its TL2 39, which upstream ggml has since given to MXFP4
            bitnet_cpp = arch is not None and bytes(arch.parts[-1]) in (b"bitnet-b1.58", b"bitnet-25")
            for name, typ in zip(names, types, strict=True):
                if typ != GGML_TYPE_I2_S and (typ not in known or (bitnet_cpp and typ in BITNET_CPP_TYPES)):
                    raise _UnknownType(name, typ)
            super()._build_tensors(start_offs, [f for f, t in zip(fields, types, strict=True) if t != GGML_TYPE_I2_S])
            rest = iter(self.tensors)
            self.tensors = [self._i2s(start_offs, f, name) if t == GGML_TYPE_I2_S else next(rest)
                            for f, t, name in zip(fields, types, names, strict=True)]

        def _i2s(self, start_offs: int, f, name: str):
            dims = f.parts[3]
            n_elems = int(np.prod(dims.astype(np.uint64)))
            if len(dims) != 2 or n_elems % 4:
                raise ValueError(f"I2_S tensor {name} must be 2-D with a multiple of 4 weights, "
                                 f"got dims {dims.tolist()}")
            n_bytes = i2s_nbytes(n_elems)
            offs = int(start_offs + f.parts[5][0])
            return gguf.ReaderTensor(name=name, tensor_type=BitnetCppType.I2_S, shape=dims, n_elements=n_elems,
                                     n_bytes=n_bytes, data_offset=offs, data=self._get(offs, np.uint8, n_bytes),
                                     field=f)

    return Reader


def open_gguf(path: Path):
    """GGUFReader over `path`, with one clear InputError for a missing, non-GGUF, truncated or corrupt
    file."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
    if head != GGUF_MAGIC:
        raise InputError(f"{path}: not a GGUF file (expected magic b'GGUF' at offset 0, found {head!r})")
    if size < 24:
        raise InputError(f"{path}: truncated GGUF file ({size} bytes, the header alone is 24)")
    try:
        r = _reader_class()(path, "r")
    except _UnknownType as e:
        what = f"bitnet.cpp's {BITNET_CPP_TYPES[e.type_id]}" if e.type_id in BITNET_CPP_TYPES else "a type"
        raise InputError(
            f"{path}: tensor {e.tensor} has ggml type {e.type_id} ({what} that is not supported); "
            f"supported types: {', '.join(TYPES)}"
        ) from None
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt GGUF file ({e})") from None
    except (IndexError, KeyError, OverflowError, TypeError, UnicodeDecodeError, MemoryError) as e:
        raise InputError(f"{path}: truncated or corrupt GGUF file ({type(e).__name__}: {e})") from None
    for t in r.tensors:
        if t.data_offset + t.n_bytes > size or t.data.nbytes != t.n_bytes:
            raise InputError(
                f"{path}: truncated GGUF file: tensor {t.name} needs bytes "
                f"{t.data_offset}..{t.data_offset + t.n_bytes}, the file has {size}"
            )
    return r


# GGUFValueType numbers (gguf/constants.py) by what a key must hold; 7 BOOL, 8 STRING, 9 ARRAY
_INTS = frozenset({0, 1, 2, 3, 4, 5, 10, 11})
_NUMBERS = _INTS | {6, 12}
_KINDS = {"int": _INTS, "float": _NUMBERS, "str": {8}, "bool": {7}}
_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean"}


def _type_name(types: list[int]) -> str:
    import gguf

    names = [gguf.GGUFValueType(t).name if t in gguf.GGUFValueType._value2member_map_ else str(t) for t in types]
    return " of ".join(names) if names else "value"


def field(r, key: str, path: Path, default=None, required: bool = False, expect: str | None = None):
    """The value of metadata `key`; `expect` ("int", "float", "str", "bool", or "<kind> array") is the
    value type it must have (a GGUF value is typed: a string where llama.cpp reads an integer is a
    corrupt file, not a number to parse)."""
    f = r.get_field(key)
    if f is None:
        if required:
            raise InputError(f"{path}: metadata key {key!r} is missing")
        return default
    if expect is not None:
        kind, _, array = expect.partition(" ")
        t = list(f.types)
        ok = (t[1:] and t[0] == 9 and t[1] in _KINDS[kind]) if array else (len(t) == 1 and t[0] in _KINDS[kind])
        if not ok:
            want = _WORDS[kind] if not array else f"an array of {_WORDS[kind].split(' ', 1)[1]}s"
            raise InputError(f"{path}: metadata key {key!r} is a {_type_name(t)}, expected {want}")
    try:
        return f.contents()
    except (ValueError, UnicodeDecodeError, IndexError) as e:
        raise InputError(f"{path}: metadata key {key!r} is unreadable ({e})") from None
