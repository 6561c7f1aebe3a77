"""Compiled CPU kernel (host/kernels/csrc/eskernel.c, built at install by setup.py), via ctypes.

Bit-identical to the numpy reference and edgestream.numerics (tests/test_ckernel.py proves it on
every ISA path the machine can run). Layout, dispatch and threading: docs/cpu-kernels.md.

Environment: EDGESTREAM_ISA = auto|scalar|avx2|avx512|avx512-novnni|neon forces an ISA path
(avx512 uses VNNI where the CPU has it); EDGESTREAM_THREADS = thread count (default: all cores).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgestream import numerics as nx
from edgestream.host.kernels import LinearWeights

ES_VERSION = 8  # must match ES_VERSION in csrc/eskernel.c
ISA_IDS = {"scalar": 0, "avx2": 1, "avx512-novnni": 2, "avx512vnni": 3, "neon": 4}
ISA_NAMES = {v: k for k, v in ISA_IDS.items()}
_ROWPAD = 8  # eskernel.c ROWPAD


class CKernelUnavailable(RuntimeError):
    """The compiled kernel library was not built (or cannot run the requested ISA path)."""


_LIB: ctypes.CDLL | None = None
_MOD = None  # the same shared object imported as a CPython module (fast matmul entry)
_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_INT = ctypes.c_int


def library_path() -> Path | None:
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        p = here / f"_eskernel{suffix}"
        if p.exists():
            return p
    return None


def load_library() -> ctypes.CDLL:
    global _LIB, _MOD
    if _LIB is not None:
        return _LIB
    path = library_path()
    if path is None:
        raise CKernelUnavailable(
            "edgestream's C kernel library (_eskernel) was not built; reinstall with a C compiler "
            "(pip install -e .) or use the numpy kernel"
        )
    try:
        lib = ctypes.CDLL(str(path))
        from edgestream.host.kernels import _eskernel

        _MOD = _eskernel
    except (OSError, ImportError) as err:
        raise CKernelUnavailable(f"cannot load {path}: {err}") from err
    sig = {
        "es_version": (_INT, []),
        "es_set_variant": (_INT, [_INT]),
        "es_swap_isa": (_INT, [_INT]),  # also picks the float parts' form (scalar / AVX2)
        "es_get_isa": (_INT, []),
        "es_isa_available": (_INT, [_INT]),
        "es_best_isa": (_INT, []),
        "es_get_threads": (_INT, []),
        "es_has_openmp": (_INT, []),
        "es_matmul": (_INT, [_P, _I64, _I64, _I64, _INT, _INT, _P, _I64, _I64, _P, _INT, _INT]),
        "es_set_exp2_tables": (None, [_P, _P]),
        "es_read_probe": (ctypes.c_uint64, [_P, _I64, _INT]),
        "es_quant_act": (None, [_P, _I64, _I64, _P, _P]),
        "es_norm_quant": (None, [_P, _P, ctypes.c_double, _I64, _I64, _P, _P]),
        "es_attention": (None, [_P, _P, _P, _P, _P, _P, _P, _I64, _I64, _I64, ctypes.c_float, _P]),
        "es_attention_heads": (None, [_P, _P, _P, _P, _P, _P, _P, _I64, _I64, _I64, _I64, _I64, _I64,
                                      ctypes.c_float, _P]),
    }
    lib.es_version.restype = _INT
    if lib.es_version() != ES_VERSION:
        raise CKernelUnavailable(f"{path} is a stale build (version {lib.es_version()}, expected {ES_VERSION}): "
                                 "reinstall the package to rebuild it")
    for fname, (res, args) in sig.items():
        fn = getattr(lib, fname)
        fn.restype = res
        fn.argtypes = args
    t = np.ascontiguousarray(nx.EXP2_T, dtype=np.float32)
    d = np.ascontiguousarray(nx.EXP2_D, dtype=np.float32)
    lib.es_set_exp2_tables(t.ctypes.data, d.ctypes.data)
    _LIB = lib
    return lib


VARIANTS = {"default": 0, "planes": 1, "planes8": 2}  # eskernel.h ES_VARIANT_*


def set_variant(name: str) -> str:
    """Select the kernel variant for benchmarks and tests; returns the previous one. 'planes' runs
    2-bit and 8-bit codes on the AVX2 path through the generic plane loop (the version-6 kernel)
    instead of the 2-bit GEMV/GEMM and the 8-bit GEMV, 'planes8' only 8-bit codes (the version-7
    kernel); all give the same integers. Process-wide; other paths ignore it."""
    if name not in VARIANTS:
        raise ValueError(f"kernel variant {name!r}: expected one of {sorted(VARIANTS)}")
    prev = load_library().es_set_variant(VARIANTS[name])
    return {v: k for k, v in VARIANTS.items()}[prev]


def available_isas() -> list[str]:
    """ISA paths this build can run on this CPU (each one is tested against numpy)."""
    lib = load_library()
    return [name for name, i in ISA_IDS.items() if lib.es_isa_available(i)]


def resolve_isa(isa: str | None) -> int:
    lib = load_library()
    isa = (isa or os.environ.get("EDGESTREAM_ISA") or "auto").strip().lower()
    if isa == "auto":
        return lib.es_best_isa()
    if isa == "avx512":
        isa = "avx512vnni" if lib.es_isa_available(ISA_IDS["avx512vnni"]) else "avx512-novnni"
    if isa not in ISA_IDS:
        raise ValueError(
            f"EDGESTREAM_ISA={isa!r}: expected auto, scalar, avx2, avx512, avx512-novnni or neon"
        )
    if not lib.es_isa_available(ISA_IDS[isa]):
        raise CKernelUnavailable(f"ISA path {isa!r} cannot run on this CPU (available: {available_isas()})")
    return ISA_IDS[isa]


def _aligned_zeros(shape: tuple[int, ...], align: int = 64) -> np.ndarray:
    nbytes = int(np.prod(shape))
    buf = np.zeros(nbytes + align, dtype=np.uint8)
    off = (-buf.ctypes.data) % align
    return buf[off : off + nbytes].reshape(shape)


@dataclass(frozen=True)
class PackedWeights:
    """Offset-binary codes (code = w + offset) packed `bits` per code, 64-byte blocks per row.

    packed: uint8 [np_rows, kpb]; a block of 64 bytes holds 512/bits codes in 8/bits planes: plane s
    (bit shift bits*s) holds the codes of weights 64*s + j of the block, j = byte index."""

    name: str
    n: int
    k: int
    bits: int
    offset: int
    packed: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.packed.nbytes


def pack_codes(w: np.ndarray, bits: int, offset: int) -> np.ndarray:
    n, k = w.shape
    per = 512 // bits
    planes = 8 // bits
    kp = -(-k // per) * per
    np_rows = -(-max(n, 1) // _ROWPAD) * _ROWPAD
    out = _aligned_zeros((np_rows, kp // per * 64))
    for r0 in range(0, n, 2048):
        wb = w[r0 : r0 + 2048]
        codes = np.zeros((wb.shape[0], kp), dtype=np.uint8)
        codes[:, :k] = (wb.astype(np.int16) + offset).astype(np.uint8)
        codes = codes.reshape(wb.shape[0], kp // per, planes, 64)
        blk = np.zeros((wb.shape[0], kp // per, 64), dtype=np.uint8)
        for s in range(planes):
            blk |= codes[:, :, s, :] << np.uint8(bits * s)
        out[r0 : r0 + wb.shape[0]] = blk.reshape(wb.shape[0], -1)
    return out


class CKernel:
    """Exact INT8 x ternary/INT matmul, activation quantization and attention in C."""

    def __init__(self, isa: str | None = None, threads: int | None = None):
        self._lib = load_library()
        self.isa_id = resolve_isa(isa)
        self.isa = ISA_NAMES[self.isa_id]
        env_threads = os.environ.get("EDGESTREAM_THREADS")
        self.threads = int(threads if threads is not None else (env_threads or 0))
        nth = self.threads if self.threads > 0 else self._lib.es_get_threads()
        self.name = f"c-{self.isa}"
        self.description = f"C kernel, {self.isa} path, {nth} thread(s)"

    def __repr__(self) -> str:
        return f"CKernel({self.description})"

    # ---------------------------------------------------------------- matmul
    def prepare(self, lw: LinearWeights) -> PackedWeights:
        w = np.asarray(lw.w)
        if w.ndim != 2:
            raise ValueError(f"{lw.name}: weights must be 2-D [n, k], got shape {w.shape}")
        if lw.kind == "ternary":
            bits, offset, lo, hi = 2, 1, -1, 1
        elif lw.kind == "int":
            if not 1 <= lw.bits <= 8:
                raise ValueError(f"{lw.name}: int weights of {lw.bits} bits: expected 1..8")
            bits = 2 if lw.bits <= 2 else 4 if lw.bits <= 4 else 8
            offset = 1 << (bits - 1)
            lo, hi = -(1 << (lw.bits - 1)), (1 << (lw.bits - 1)) - 1
        else:
            raise ValueError(f"{lw.name}: weight kind {lw.kind!r}: expected 'ternary' or 'int'")
        if w.size and (int(w.min()) < lo or int(w.max()) > hi):
            raise ValueError(f"{lw.name}: {lw.kind} weights out of range [{lo}, {hi}]")
        if w.shape[1] >= 1 << 16:
            raise ValueError(f"{lw.name}: K = {w.shape[1]} too large (contract: K < 65536)")
        return PackedWeights(lw.name, w.shape[0], w.shape[1], bits, offset, pack_codes(w, bits, offset))

    def matmul(self, q: np.ndarray, pw: PackedWeights) -> np.ndarray:
        if not (q.ndim == 2 and q.dtype == np.int8 and q.flags.c_contiguous):
            q = np.ascontiguousarray(np.atleast_2d(q), dtype=np.int8)
        if q.ndim != 2 or q.shape[1] != pw.k:
            raise ValueError(f"{pw.name}: activations of shape {q.shape}, expected [T, {pw.k}]")
        t = q.shape[0]
        out = np.empty((t, pw.n), dtype=np.int32)
        rc = _MOD.matmul(
            pw.packed, pw.n, pw.packed.shape[0], pw.packed.shape[1], pw.bits, pw.offset,
            q, t, pw.k, out, self.isa_id, self.threads,
        )  # fmt: skip
        if rc != 0:
            raise RuntimeError(f"{pw.name}: es_matmul failed ({rc})")
        return out

    def read_bandwidth(self, nbytes: int = 1 << 30, reps: int = 3) -> float:
        """Bytes/s this kernel's thread pool reads from memory (best of `reps` passes over a buffer far
        larger than the caches): the roofline the matmul's weight stream is measured against."""
        import time

        buf = _aligned_zeros((nbytes // 64 * 64,))
        buf[::4096] = 1  # touch every page before timing
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            self._lib.es_read_probe(buf.ctypes.data, buf.size, self.threads)
            best = min(best, time.perf_counter() - t)
        return buf.size / best

    def fused_plan(self, executor):
        """The whole forward pass of `executor`'s program as one C call (host/kernels/c_plan.py);
        raises c_plan.Unsupported for a program with an op the fused step lacks."""
        from edgestream.host.kernels.c_plan import FusedPlan

        return FusedPlan(executor, self)

    # ---------------------------------------------------------------- numerics in C
    def quant_act(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = np.ascontiguousarray(u, dtype=np.float32)
        k = u.shape[-1]
        rows = u.size // k if k else 0
        q = np.empty(u.shape, dtype=np.int8)
        m = np.empty(u.shape[:-1], dtype=np.float32)
        self._lib.es_quant_act(u.ctypes.data, rows, k, q.ctypes.data, m.ctypes.data)
        return q, m

    def norm_quant(
        self, x: np.ndarray, g: np.ndarray | None, eps: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        k = x.shape[-1]
        rows = x.size // k if k else 0
        q = np.empty(x.shape, dtype=np.int8)
        s = np.empty(x.shape[:-1], dtype=np.float32)
        gp = None
        if g is not None:
            if not (isinstance(g, np.ndarray) and g.dtype == np.float32 and g.shape == (k,) and g.flags.c_contiguous):
                g = np.ascontiguousarray(np.broadcast_to(np.asarray(g, dtype=np.float32), (k,)))
            gp = g.ctypes.data
        self._lib.es_norm_quant(
            x.ctypes.data, gp, float(eps if eps is not None else 0.0), rows, k, q.ctypes.data, s.ctypes.data
        )
        return q, s

    def attention_heads(self, qq, dq, kq, dk, vq, dv, q_pos, s: int, scale) -> np.ndarray:
        """All heads of one layer: qq int8 [T, H, D], dq [T, H]; kq/vq int8 [KVH, cap, D] and dk/dv
        [KVH, cap] (the layer's whole KV cache, positions < s used); returns float32 [T, H, D], each
        head exactly numerics.attention (query head h reads KV head h // (H // KVH))."""
        qq = np.ascontiguousarray(qq, dtype=np.int8)
        dq = np.ascontiguousarray(dq, dtype=np.float32)
        q_pos = np.ascontiguousarray(q_pos, dtype=np.int64)
        t, h, d = qq.shape
        kvh, cap = kq.shape[0], kq.shape[1]
        for a, dt in ((kq, np.int8), (vq, np.int8), (dk, np.float32), (dv, np.float32)):
            if a.dtype != dt or not a.flags.c_contiguous:
                raise ValueError("attention_heads: the KV cache must be contiguous int8/float32 arrays")
        if (kq.shape != (kvh, cap, d) or vq.shape != kq.shape or dk.shape != (kvh, cap) or dv.shape != dk.shape
                or dq.shape != (t, h) or h % kvh or s > cap or q_pos.shape != (t,)):
            raise ValueError("attention_heads: inconsistent shapes")
        out = np.empty((t, h, d), dtype=np.float32)
        self._lib.es_attention_heads(
            qq.ctypes.data, dq.ctypes.data, kq.ctypes.data, dk.ctypes.data, vq.ctypes.data, dv.ctypes.data,
            q_pos.ctypes.data, t, s, d, h, kvh, cap, float(np.float32(scale)), out.ctypes.data,
        )  # fmt: skip
        return out

    def attention(self, qq, dq, kq, dk, vq, dv, q_pos, scale) -> np.ndarray:
        qq = np.ascontiguousarray(qq, dtype=np.int8)
        kq = np.ascontiguousarray(kq, dtype=np.int8)
        vq = np.ascontiguousarray(vq, dtype=np.int8)
        dq = np.ascontiguousarray(dq, dtype=np.float32)
        dk = np.ascontiguousarray(dk, dtype=np.float32)
        dv = np.ascontiguousarray(dv, dtype=np.float32)
        q_pos = np.ascontiguousarray(q_pos, dtype=np.int64)
        t, d = qq.shape
        s = kq.shape[0]
        if (
            kq.shape != (s, d)
            or vq.shape != (s, d)
            or dq.shape != (t,)
            or dk.shape != (s,)
            or dv.shape != (s,)
        ):
            raise ValueError("attention: inconsistent shapes")
        out = np.empty((t, d), dtype=np.float32)
        self._lib.es_attention(
            qq.ctypes.data, dq.ctypes.data, kq.ctypes.data, dk.ctypes.data, vq.ctypes.data,
            dv.ctypes.data, q_pos.ctypes.data, t, s, d, float(np.float32(scale)), out.ctypes.data,
        )  # fmt: skip
        return out
