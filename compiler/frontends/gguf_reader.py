"""Opening a GGUF file and reading its metadata, with one clear InputError for every way a file can
be missing, truncated or corrupt."""

from __future__ import annotations

from pathlib import Path

from edgestream.errors import InputError

TYPES = ("F32", "F16", "Q8_0", "TQ1_0", "TQ2_0")
GGUF_MAGIC = b"GGUF"


def open_gguf(path: Path):
    """GGUFReader over `path`, with one clear InputError for a missing, non-GGUF, truncated or corrupt
    file."""
    import gguf

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
        r = gguf.GGUFReader(path, "r")
    except ValueError as e:
        msg = str(e)
        if "GGMLQuantizationType" in msg:
            raise InputError(
                f"{path}: a tensor has a ggml type the gguf package does not know ({msg}); "
                f"supported types: {', '.join(TYPES)}"
            ) from None
        raise InputError(f"{path}: truncated or corrupt GGUF file ({msg})") from None
    except (IndexError, KeyError, OverflowError, TypeError, UnicodeDecodeError, MemoryError) as e:
        raise InputError(f"{path}: truncated or corrupt GGUF file ({type(e).__name__}: {e})") from None
    for t in r.tensors:
        if t.data_offset + t.n_bytes > size or t.data.nbytes != t.n_bytes:
            raise InputError(
                f"{path}: truncated GGUF file: tensor {t.name} needs bytes "
                f"{t.data_offset}..{t.data_offset + t.n_bytes}, the file has {size}"
            )
    return r


def field(r, key: str, path: Path, default=None, required: bool = False):
    f = r.get_field(key)
    if f is None:
        if required:
            raise InputError(f"{path}: metadata key {key!r} is missing")
        return default
    try:
        return f.contents()
    except (ValueError, UnicodeDecodeError, IndexError) as e:
        raise InputError(f"{path}: metadata key {key!r} is unreadable ({e})") from None
