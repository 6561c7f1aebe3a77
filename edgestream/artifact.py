"""The compiled artifact: a directory `NAME.esa/` holding

  manifest.json   format/version, model config, tensor index (encoding, shape, offsets), checksums
  program.json    the quantized IR graph the executors run
  weights.bin     packed weights, each tensor 64-byte aligned (docs/artifact.md)
  tokenizer.json  the Hugging Face tokenizer, when the model has one

Written into a temporary sibling directory and renamed into place, so a failed compile never leaves
a half-written artifact; every file's SHA-256 is checked at load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgestream.errors import InputError
from edgestream.formats.intweights import pack_int, unpack_int
from edgestream.formats.ternary import pack_base3, unpack_base3
from edgestream.ir import Graph, ModelConfig, Node, Tensor, graph_to_dict
from edgestream.lazyarray import LazyArray
from edgestream.numerics import NUMERICS_VERSION

FORMAT = "edgestream-artifact"
VERSION = 1
ALIGN = 64
ENCODINGS = ("float32", "ternary", "int8", "int4", "int2", "int32")  # int32: plain <i4 (biases, zero points)


def _pack(t: Tensor) -> np.ndarray:
    """The tensor's bytes as a contiguous array (written through the buffer protocol: no extra copy)."""
    if t.encoding == "float32":
        return np.ascontiguousarray(t.data, dtype="<f4")
    if t.encoding == "int32":
        return np.ascontiguousarray(t.data, dtype="<i4")
    if t.encoding == "ternary":
        return pack_base3(t.data)
    return np.ascontiguousarray(pack_int(t.data, t.bits))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def write_artifact(graph: Graph, out: str | Path, tokenizer: Path | None = None,
                   extra: dict[str, Any] | None = None, writers: list[Any] | None = None) -> Path:
    """`writers`: callables `fn(tmpdir) -> dict` run before the checksums are taken; each writes extra
    files (e.g. the lowered program and hardware weight image) and returns manifest fields."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp", dir=out.parent))
    try:
        index: dict[str, Any] = {}
        with open(tmp / "weights.bin", "wb") as f:
            for name, t in graph.tensors.items():
                entry: dict[str, Any] = {"encoding": t.encoding, "shape": list(t.shape)}
                for key, blob in (("data", _pack(t)),
                                  ("scale", None if t.scale is None else np.ascontiguousarray(t.scale, "<f4"))):
                    if blob is None:
                        continue
                    f.write(b"\0" * ((-f.tell()) % ALIGN))
                    entry[key] = {"offset": f.tell(), "nbytes": blob.nbytes}
                    f.write(memoryview(blob.reshape(-1)).cast("B"))
                    del blob
                index[name] = entry
        (tmp / "program.json").write_text(json.dumps(graph_to_dict(graph), indent=1))
        if tokenizer is not None:
            shutil.copyfile(tokenizer, tmp / "tokenizer.json")
        more: dict[str, Any] = {}
        for w in writers or ():
            more.update(w(tmp) or {})
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "numerics_version": NUMERICS_VERSION,
            "model": graph.config.to_dict(),
            "tensors": index,
            "files": files,
            **(extra or {}),
            **more,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        for p in tmp.iterdir():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=out.name + ".old", dir=out.parent))
            os.replace(out, old / "a")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


@dataclass
class Artifact:
    path: Path
    manifest: dict[str, Any]
    graph: Graph
    tokenizer_path: Path | None

    @property
    def tokenizer_settings(self):
        """The model's own tokenization and stop settings (edgestream.tokenizer.TokenizerSettings),
        or None for artifacts compiled without them."""
        from edgestream.tokenizer import TokenizerSettings

        return TokenizerSettings.from_dict(self.manifest.get("tokenizer"))

    @property
    def config(self) -> ModelConfig:
        return self.graph.config


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: missing (not an edgestream artifact?)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: corrupt JSON ({e})") from None


def read_artifact(path: str | Path, verify_checksums: bool = True) -> Artifact:
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such artifact directory")
    man = _json(path / "manifest.json")
    if man.get("format") != FORMAT:
        raise InputError(f"{path / 'manifest.json'}: field 'format' is {man.get('format')!r}, expected {FORMAT!r}")
    if man.get("version") != VERSION:
        raise InputError(f"{path}: artifact version {man.get('version')}, this edgestream reads version {VERSION}")
    if man.get("numerics_version") != NUMERICS_VERSION:
        raise InputError(f"{path}: numerics version {man.get('numerics_version')}, expected {NUMERICS_VERSION}")
    for name, digest in man.get("files", {}).items():
        p = path / name
        if not p.is_file():
            raise InputError(f"{p}: missing (listed in the manifest)")
        if verify_checksums and _sha256(p) != digest:
            raise InputError(f"{p}: checksum mismatch (file is corrupt or was modified)")
    prog = _json(path / "program.json")
    try:
        cfg = ModelConfig.from_dict(man["model"])
        nodes = [Node(**n) for n in prog["nodes"]]
    except (KeyError, TypeError) as e:
        raise InputError(f"{path}: malformed manifest/program ({e})") from None
    wpath = path / "weights.bin"
    blob = np.memmap(wpath, dtype=np.uint8, mode="r") if wpath.stat().st_size else np.zeros(0, np.uint8)
    tensors = {name: _read_tensor(blob, name, e, wpath) for name, e in man["tensors"].items()}
    graph = Graph(cfg, nodes, tensors, prog.get("inputs", ["ids"]), prog.get("outputs", ["logits"]),
                  prog.get("meta", {}))
    tok = path / "tokenizer.json"
    return Artifact(path, man, graph, tok if tok.is_file() else None)


class _Packed(LazyArray):
    """Ternary/INT4/INT2 weights unpacked to int8 on read (executors prepare their own layouts)."""

    def __init__(self, raw: np.ndarray, enc: str, shape: tuple[int, ...]):
        super().__init__(shape, np.int8)
        self.raw, self.enc = raw, enc

    def _load(self) -> np.ndarray:
        if self.enc == "ternary":
            return unpack_base3(self.raw, self.shape[1])
        return unpack_int(self.raw, int(self.enc[3:]), self.shape[1])


def _read_tensor(blob: np.ndarray, name: str, e: dict[str, Any], wpath: Path) -> Tensor:
    enc, shape = e.get("encoding"), tuple(e.get("shape", ()))
    if enc not in ENCODINGS:
        raise InputError(f"{wpath}: tensor {name}: unknown encoding {enc!r}")

    def region(key: str) -> np.ndarray:
        off, nb = e[key]["offset"], e[key]["nbytes"]
        if off + nb > blob.size:
            raise InputError(f"{wpath}: tensor {name} lies beyond the end of the file (truncated)")
        return blob[off : off + nb]

    raw = region("data")
    if enc == "float32":
        data = raw.view("<f4").reshape(shape)
    elif enc == "int32":
        data = raw.view("<i4").reshape(shape)
    elif enc == "int8":
        data = unpack_int(raw.reshape(shape[0], -1), 8, shape[1])  # a view of the map: no copy
    else:
        data = _Packed(raw.reshape(shape[0], -1), enc, shape)
    scale = region("scale").view("<f4").copy() if "scale" in e else None
    return Tensor(name, enc, data, scale)
