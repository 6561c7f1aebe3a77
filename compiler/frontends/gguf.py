"""GGUF frontend: a llama.cpp GGUF file of architecture `llama` or `bitnet`, or a bitnet.cpp one of
`bitnet-b1.58` / `bitnet-25` -> float IR graph (+ a tokenizer.json rebuilt from the GGUF vocabulary).

Conventions (llama.cpp's, docs/formats.md "GGUF"):
- Tensor names: token_embd, output_norm, output (absent: tied to token_embd; the `bitnet` graph
  of llama.cpp always ties), blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, attn_sub_norm,
  ffn_norm, ffn_gate, ffn_up, ffn_down, ffn_sub_norm}.weight, optional per-tensor blk.N.*.scale [1]
  (llama.cpp multiplies the matmul result by it).
- llama.cpp's converter permutes the rows of attn_q/attn_k of `llama` for its interleaved ("NORM")
  RoPE; this frontend applies the inverse permutation so the HF rotate-half RoPE of the executor is
  right. `bitnet` uses NEOX (rotate-half) RoPE in llama.cpp and is not permuted.
- bitnet.cpp's architectures `bitnet-b1.58` and `bitnet-25` (its official microsoft/bitnet-b1.58-2B-4T
  file) are the `bitnet` IR model: metadata keys under their own prefix, NEOX RoPE (its converters do
  not permute Q/K), ReLU^2 FFN, linears in I2_S (edgestream/formats/i2s.py: trits and one float32
  scale that bitnet.cpp multiplies in, so beta = scale exactly).
- Tensor types F32, F16, BF16, Q8_0, TQ1_0, TQ2_0, I2_S. TQ blocks map straight to ternary tensors: trits from
  the 2-bit / base-3 codes, and when every block holding a non-zero trit has the same fp16 scale `d`,
  the tensor is our per-tensor ternary tensor with beta = d (times the `.scale` tensor if present),
  exactly. When block scales differ the tensor is dequantized to float32 and the compiler's
  quantization pass requantizes it (absmean ternary for bitnet, --quant otherwise); a warning says so.
  F32/F16/Q8_0 linear weights of `bitnet` whose values are exactly {-b, 0, +b} (llama.cpp's
  converter writes BitNet weights pre-ternarized) become ternary tensors with beta = b exactly.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from edgestream.compiler.frontends.decoder import MAX_POSITION, build_decoder
from edgestream.compiler.frontends.gguf_reader import TYPES, field, open_gguf
from edgestream.compiler.frontends.gguf_tokenizer import gguf_tokenizer_settings, tokenizer_from_gguf
from edgestream.errors import InputError
from edgestream.formats.i2s import i2s_scale, unpack_i2s
from edgestream.ir import Graph, ModelConfig, Tensor
from edgestream.lazyarray import LazyArray

# general.architecture -> the IR model it is; the name is also the prefix of its metadata keys
ARCHS = {"llama": "llama", "bitnet": "bitnet", "bitnet-b1.58": "bitnet", "bitnet-25": "bitnet"}
BITNET_CPP_ARCHS = ("bitnet-b1.58", "bitnet-25")
# tensors of per-frequency RoPE factors (llama3 `rope_freqs`, longrope's long/short factors)
ROPE_FACTOR_TENSORS = ("rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight")
# FFN activations by the GGUF `{arch}.hidden_activation` value (HF names and llama.cpp's)
RELU2_NAMES = ("relu2", "relu_squared", "relu_sqr", "relu2_glu")
SILU_NAMES = ("silu", "swish", "swiglu")


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of llama.cpp convert_hf_to_gguf's LlamaModel.permute (rows [n_head * D, ...]):
    their permute is reshape(n_head, 2, D/2, ...).swapaxes(1, 2)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's permutation (HF rotate-half rows -> interleaved pairs), for the writer."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def read_config(r, path: Path) -> tuple[ModelConfig, str]:
    """ModelConfig and the FFN activation ('relu2' | 'silu') from the GGUF metadata."""
    arch = field(r, "general.architecture", path, required=True, expect="str")
    if arch not in ARCHS:
        raise InputError(
            f"{path}: unsupported architecture {arch!r} in general.architecture "
            f"(expected one of {', '.join(ARCHS)})"
        )

    def num(key: str, typ=int, default=None, minimum=1):
        v = field(r, f"{arch}.{key}", path, default, expect=typ.__name__)
        if v is None:
            raise InputError(f"{path}: metadata key '{arch}.{key}' is missing")
        if not (math.isfinite(v) and v >= minimum):
            raise InputError(f"{path}: metadata key '{arch}.{key}' = {v!r}, expected a finite value >= {minimum}")
        return typ(v)

    hidden, heads = num("embedding_length"), num("attention.head_count")
    kv = num("attention.head_count_kv", default=heads)
    head_dim = num("attention.key_length", default=hidden // max(heads, 1))
    rot = num("rope.dimension_count", default=head_dim)
    if rot != head_dim or num("attention.value_length", default=head_dim) != head_dim:
        raise InputError(
            f"{path}: rope.dimension_count {rot} / value_length must equal the head size {head_dim} "
            f"(partial rotary embeddings are not supported)"
        )
    _check_rope_scaling(r, path, arch, head_dim)
    tokens = r.get_field("tokenizer.ggml.tokens")
    emb = next((t for t in r.tensors if t.name == "token_embd.weight"), None)
    n_vocab = len(tokens.data) if tokens is not None else int(emb.shape[-1]) if emb is not None else None
    vocab = num("vocab_size", default=n_vocab)
    eos = field(r, "tokenizer.ggml.eos_token_id", path, expect="int")
    act = "silu" if arch == "llama" else _bitnet_act(r, path, arch)
    cfg = ModelConfig(
        arch=ARCHS[arch],
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=num("feed_forward_length"),
        num_layers=num("block_count"),
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=head_dim,
        rms_norm_eps=num("attention.layer_norm_rms_epsilon", float, 1e-5, minimum=0.0),
        rope_theta=num("rope.freq_base", float, 10000.0),  # >= 1, as docs/formats.md says for config.json
        max_position=num("context_length", default=2048),
        tie_word_embeddings=not any(t.name == "output.weight" for t in r.tensors),
        bos_token_id=field(r, "tokenizer.ggml.bos_token_id", path, expect="int"),
        eos_token_ids=[] if eos is None else [int(eos)],
    )
    if cfg.max_position > MAX_POSITION:
        raise InputError(f"{path}: metadata key '{arch}.context_length' = {cfg.max_position} exceeds edgestream's "
                         f"{MAX_POSITION} positions (the artifact holds RoPE tables of that many rows)")
    if heads <= 0 or kv <= 0 or heads % kv or head_dim % 2:
        raise InputError(
            f"{path}: attention.head_count {heads} must be a multiple of head_count_kv {kv}, "
            f"and the head size {head_dim} even"
        )
    return cfg, act


def _check_rope_scaling(r, path: Path, arch: str, head_dim: int) -> None:
    """Our RoPE tables are theta**(-2i/D) per position (docs/numerics.md): any scaling that changes
    them is refused, never dropped. llama.cpp's converter writes Llama 3.x's `rope_scaling` (rope_type
    llama3) as the tensor rope_freqs.weight [D/2] of factors f_i that ggml's RoPE divides each
    frequency by (theta_i / f_i); its `linear` type as the keys rope.scaling.type/factor."""
    try:
        stype = str(field(r, f"{arch}.rope.scaling.type", path, "none"))
        factor = float(field(r, f"{arch}.rope.scaling.factor", path, 1.0))
    except (TypeError, ValueError):
        raise InputError(f"{path}: '{arch}.rope.scaling.type' / '.factor' are not a name and a number") from None
    if stype not in ("none", "linear") or factor != 1.0:
        raise InputError(
            f"{path}: '{arch}.rope.scaling.type' {stype!r} with factor {factor} is not supported "
            f"(expected none, or linear with factor 1.0: edgestream's RoPE tables are unscaled)"
        )
    for t in r.tensors:
        if t.name not in ROPE_FACTOR_TENSORS:
            continue
        if t.tensor_type.name not in ("F32", "F16", "BF16") or t.n_elements != head_dim // 2:
            raise InputError(f"{path}: tensor {t.name} must hold {head_dim // 2} float RoPE factors, "
                             f"got {t.tensor_type.name} with {t.n_elements} elements")
        f = dequant(t).reshape(-1)
        if not np.all(f == 1.0):
            raise InputError(
                f"{path}: tensor {t.name} holds per-frequency RoPE scaling factors "
                f"({f.min():.4g}..{f.max():.4g}; llama3 rope type), which edgestream's RoPE does not "
                f"implement (docs/formats.md); only all-1 factors (no scaling) are accepted"
            )


def _bitnet_act(r, path: Path, arch: str) -> str:
    v = field(r, f"{arch}.hidden_activation", path) or field(r, f"{arch}.hidden_act", path)
    if v is None and arch in BITNET_CPP_ARCHS:
        return "relu2"  # bitnet.cpp's graph for these is microsoft/bitnet-b1.58-2B-4T's: ReLU^2
    if v is None:
        warnings.warn(
            f"{path}: bitnet GGUF without 'bitnet.hidden_activation': following llama.cpp, whose "
            f"bitnet graph uses a SiLU-gated FFN (1bitLLM bitnet_b1_58). microsoft/bitnet-b1.58-2B-4T "
            f"uses ReLU^2: export it with `edgestream export-gguf`, which records the activation",
            stacklevel=3,
        )
        return "silu"
    v = str(v).lower()
    if v in RELU2_NAMES:
        return "relu2"
    if v in SILU_NAMES:
        return "silu"
    raise InputError(f"{path}: '{arch}.hidden_activation' {v!r} is not supported (expected relu2 or silu)")


class LazyGGUF:
    """A GGUF tensor dequantized to float32 (and un-permuted) only when asked for; `rows` reads a block
    of rows (the compiler quantizes embeddings a block at a time, never the whole float table)."""

    def __init__(self, t, shape: tuple[int, ...], unpermute_heads: int = 0, scale: float = 1.0):
        self.t, self.shape, self.heads, self.scale = t, shape, unpermute_heads, scale

    def _scaled(self, a: np.ndarray) -> np.ndarray:
        return (a * np.float32(self.scale)).astype(np.float32) if self.scale != 1.0 else a

    def __array__(self, dtype=None, copy=None):
        a = dequant(self.t).reshape(self.shape)
        if self.heads:
            a = unpermute_qk(a, self.heads)
        a = self._scaled(a)
        return a.astype(dtype) if dtype is not None else a

    def rows(self, r0: int, r1: int) -> np.ndarray:
        if self.heads or self.t.tensor_type.name == "I2_S":  # rows that are not separable in the file
            return np.asarray(self)[r0:r1]
        return self._scaled(dequant(self.t, r0, r1).reshape(r1 - r0, *self.shape[1:]))


def dequant(t, r0: int | None = None, r1: int | None = None) -> np.ndarray:
    """float32 values of a tensor (rows r0:r1 of a 2-D one: the reader's data holds one row of elements
    or of quantized blocks per first index)."""
    if t.tensor_type.name == "I2_S":
        n, k = int(t.shape[1]), int(t.shape[0])
        return unpack_i2s(t.data, n, k).astype(np.float32) * i2s_scale(t.data, n, k)
    import gguf

    data = t.data if r0 is None else t.data[r0:r1]
    return np.ascontiguousarray(gguf.quants.dequantize(data, t.tensor_type), dtype=np.float32)


class LazyI2S(LazyArray):
    """The trits of an I2_S tensor, unpacked (sign-flipped, un-permuted) only when read."""

    def __init__(self, t, path: Path, n: int, k: int, heads: int = 0, sign: int = 1):
        super().__init__((n, k), np.int8)
        self.t, self.path, self.heads, self.sign = t, path, heads, sign

    def _load(self) -> np.ndarray:
        n, k = self.shape
        if self.sign == 0:
            return np.zeros((n, k), np.int8)
        try:
            trits = unpack_i2s(self.t.data, n, k)
        except ValueError as e:
            raise InputError(f"{self.path}: tensor {self.t.name} (I2_S): {e}") from None
        if self.sign < 0:
            np.negative(trits, out=trits)
        return np.ascontiguousarray(unpermute_qk(trits, self.heads)) if self.heads else trits


def _ternary_values(a: np.ndarray) -> tuple[np.ndarray, np.float32] | None:
    """(trits, b) when every non-zero value of `a` is +-b for one b > 0 (b = 1 for an all-zero tensor)."""
    mag = np.abs(a)
    nz = mag[mag != 0]
    if nz.size == 0:
        return np.zeros(a.shape, np.int8), np.float32(1.0)
    b = nz[0]
    if not np.isfinite(b) or np.any(nz != b):
        return None
    return np.sign(a).astype(np.int8), np.float32(b)


class _Loader:
    def __init__(self, r, path: Path, cfg: ModelConfig):
        import gguf

        self.gguf, self.r, self.path, self.cfg = gguf, r, path, cfg
        self.by_name = {t.name: t for t in r.tensors}

    def get(self, name: str, shape: tuple[int, ...]):
        t = self.by_name.get(name)
        if t is None:
            raise InputError(f"{self.path}: tensor {name} is missing (architecture {self.cfg.arch})")
        tname = t.tensor_type.name
        if tname not in TYPES:
            raise InputError(
                f"{self.path}: tensor {name} has type {tname}, which is not supported "
                f"(expected one of {', '.join(TYPES)})"
            )
        got = tuple(reversed([int(d) for d in t.shape]))
        if got != tuple(shape):
            raise InputError(f"{self.path}: tensor {name} has shape {list(got)}, expected {list(shape)}")
        return t

    def small(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        a = dequant(self.get(name, shape)).reshape(shape)
        if not np.all(np.isfinite(a)):
            raise InputError(f"{self.path}: tensor {name} contains NaN or Inf")
        return a

    def scale_of(self, base: str) -> float:
        t = self.by_name.get(base + ".scale")
        if t is None:
            return 1.0
        if t.tensor_type.name not in ("F32", "F16", "BF16") or t.n_elements != 1:
            raise InputError(
                f"{self.path}: tensor {base}.scale must be one F32 value, "
                f"got {t.tensor_type.name} with {t.n_elements} elements"
            )
        s = float(dequant(t).reshape(-1)[0])
        if not (np.isfinite(s) and s > 0):
            raise InputError(f"{self.path}: tensor {base}.scale must be finite and positive, got {s}")
        return s

    def linear(self, base: str, n: int, k: int, heads: int = 0) -> Tensor:
        """heads > 0: a llama Q/K weight to un-permute with that many heads."""
        name = base + ".weight"
        t = self.get(name, (n, k))
        s = self.scale_of(base)
        tt = t.tensor_type.name
        if tt in ("TQ1_0", "TQ2_0"):
            return self._tq(t, name, n, k, heads, s)
        if tt == "I2_S":
            return self._i2s(t, name, n, k, heads, s)
        if self.cfg.arch == "bitnet":
            tern = _ternary_values(dequant(t).reshape(n, k))
            if tern is not None:
                trits, b = tern
                return Tensor(name, "ternary", trits, np.array([np.float32(b) * np.float32(s)], np.float32))
        return Tensor(name, "float32", LazyGGUF(t, (n, k), heads, s))

    def _i2s(self, t, name: str, n: int, k: int, heads: int, s: float) -> Tensor:
        """Trits stay packed in the file until read; the scale is read now (4 bytes)."""
        if k % 128:
            raise InputError(f"{self.path}: tensor {name} (I2_S) has rows of {k} weights, expected a "
                             f"multiple of 128 (bitnet.cpp's I2_S block)")
        b = i2s_scale(t.data, n, k)
        if not np.isfinite(b):
            raise InputError(f"{self.path}: tensor {name} (I2_S) has the scale {b}, expected a finite number")
        # bitnet.cpp multiplies by the scale: a negative one flips the trits, zero zeroes the tensor
        sign = int(np.sign(b))
        beta = np.float32(abs(b)) if sign else np.float32(1.0)
        return Tensor(name, "ternary", LazyI2S(t, self.path, n, k, heads, sign),
                      np.array([beta * np.float32(s)], np.float32))

    def _tq(self, t, name: str, n: int, k: int, heads: int, s: float) -> Tensor:
        block, nbytes = self.gguf.GGML_QUANT_SIZES[t.tensor_type]
        raw = np.asarray(t.data).reshape(n, k // block, nbytes)
        d = raw[:, :, nbytes - 2 :].copy().view(np.float16).reshape(n, k // block).astype(np.float32)
        vals = dequant(t).reshape(n, k // block, block)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(d[..., None] != 0, np.rint(vals / d[..., None]), 0)
        if not np.all(np.isfinite(d)):
            raise InputError(f"{self.path}: tensor {name} ({t.tensor_type.name}) has NaN or Inf block scales")
        if q.size and (q.min() < -1 or q.max() > 1):
            raise InputError(
                f"{self.path}: tensor {name} ({t.tensor_type.name}) holds the code for "
                f"{int(q.max() if q.max() > 1 else q.min())}, expected only -1, 0, +1"
            )
        trits = q.astype(np.int8)
        used = np.any(trits != 0, axis=2)
        ds = np.unique(d[used])
        if ds.size > 1:
            warnings.warn(
                f"{self.path}: tensor {name} ({t.tensor_type.name}) has {ds.size} different block "
                f"scales ({ds.min():.4g}..{ds.max():.4g}); it is dequantized and requantized by the "
                f"compiler (one scale per tensor)",
                stacklevel=4,
            )
            w = (trits.astype(np.float32) * d[..., None]).reshape(n, k) * np.float32(s)
            return Tensor(name, "float32", unpermute_qk(w, heads) if heads else w)
        trits = trits.reshape(n, k)
        b = np.float32(ds[0]) if ds.size else np.float32(1.0)
        if b < 0:
            trits, b = -trits, -b
        if heads:
            trits = unpermute_qk(trits, heads)
        return Tensor(name, "ternary", np.ascontiguousarray(trits), np.array([b * np.float32(s)], np.float32))


_GGUF_MODULES = {
    "attn_norm": "attn_norm", "q": "attn_q", "k": "attn_k", "v": "attn_v", "attn_sub_norm": "attn_sub_norm",
    "o": "attn_output", "ffn_norm": "ffn_norm", "gate": "ffn_gate", "up": "ffn_up", "ffn_sub_norm": "ffn_sub_norm",
    "down": "ffn_down",
}


def load_gguf(src: str | Path) -> tuple[Graph, Path | None]:
    """Returns the float graph and the path of a tokenizer.json rebuilt from the GGUF vocab (or None)."""
    path = Path(src)
    r = open_gguf(path)
    cfg, act = read_config(r, path)
    ld = _Loader(r, path, cfg)
    v, h = cfg.vocab_size, cfg.hidden_size
    # llama.cpp's converter permutes the Q/K rows of llama-arch models for its interleaved RoPE
    permuted = {"q": cfg.num_heads, "k": cfg.num_kv_heads} if cfg.arch == "llama" else {}

    def lm_head() -> Tensor:
        return Tensor("output.weight", "float32", LazyGGUF(ld.get("output.weight", (v, h)), (v, h)))

    graph = build_decoder(
        cfg,
        name=lambda i, role: f"blk.{i}.{_GGUF_MODULES[role]}",
        norm_gain=lambda m, size: Tensor(m + ".weight", "float32", ld.small(m + ".weight", (size,))),
        linear=lambda m, role, n, k: ld.linear(m, n, k, permuted.get(role, 0)),
        embedding=Tensor("token_embd.weight", "float32", LazyGGUF(ld.get("token_embd.weight", (v, h)), (v, h))),
        final_norm="output_norm",
        lm_head=None if cfg.tie_word_embeddings else lm_head,
        act=act,
    )
    return graph, tokenizer_from_gguf(r, path, cfg.vocab_size), gguf_tokenizer_settings(r, path, cfg)


def inspect_gguf(path: str | Path) -> dict:
    """`edgestream inspect` of a GGUF file: model settings and every tensor's type, shape and bytes."""
    path = Path(path)
    r = open_gguf(path)
    cfg, act = read_config(r, path)
    tensors = {
        t.name: {"dtype": t.tensor_type.name, "shape": list(reversed([int(d) for d in t.shape])),
                 "bytes": int(t.n_bytes)}
        for t in r.tensors
    }
    return {"kind": "source", "format": "gguf", "path": str(path), "model": cfg.to_dict(), "ffn_act": act,
            "tensors": tensors, "total_bytes": sum(t["bytes"] for t in tensors.values())}
