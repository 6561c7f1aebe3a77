"""Hugging Face frontend: a checkpoint directory (config.json, *.safetensors, tokenizer.json) of
`BitNetForCausalLM` or `LlamaForCausalLM` -> float IR graph.

The architecture comes from `architectures`, else from `model_type` (what transformers' Auto classes
use; `BitNetConfig.save_pretrained` writes no `architectures`). Fields a config.json leaves out take
the defaults of transformers' own config class (`HF_DEFAULTS`, checked against transformers in the
tests).

Packed ternary weights (4 trits per uint8 along the output dim plus a per-tensor `weight_scale`, as
microsoft/bitnet-b1.58-2B-4T and the Falcon3 1.58-bit Llama checkpoints ship them) become ternary
tensors directly. What `weight_scale` means depends on `quantization_config.linear_class`, exactly as
in transformers' integrations/bitnet.py: `autobitlinear` (AutoBitLinear, the 2B-4T's) multiplies the
matmul output by it (W = trits * weight_scale, the stored value is about mean|W|); `bitlinear`
(BitLinear, transformers' default) divides by it (W = trits / weight_scale). docs/formats.md.
Float weights stay lazy (memory-mapped) until the quantization pass reads them one at a time.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgestream.compiler.frontends.decoder import MAX_POSITION, build_decoder
from edgestream.errors import InputError
from edgestream.formats.ternary import unpack_hf_bitnet
from edgestream.ir import Graph, ModelConfig, Tensor
from edgestream.lazyarray import LazyArray
from edgestream.safetensors_io import SafetensorsFile

SUPPORTED = {"BitNetForCausalLM": "bitnet", "LlamaForCausalLM": "llama"}
MODEL_TYPES = {"bitnet": "bitnet", "llama": "llama"}  # config.model_type -> arch, as transformers' Auto classes
# transformers' BitNetConfig / LlamaConfig defaults (5.x) for fields a config.json may omit;
# num_key_value_heads None means "= num_attention_heads" (both classes' __post_init__)
HF_DEFAULTS = {
    "bitnet": dict(vocab_size=128256, hidden_size=2560, intermediate_size=6912, num_hidden_layers=30,
                   num_attention_heads=20, num_key_value_heads=5, hidden_act="relu2", rms_norm_eps=1e-5,
                   rope_theta=500000.0, max_position_embeddings=2048, tie_word_embeddings=False,
                   bos_token_id=128000, eos_token_id=128001),
    "llama": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=None, hidden_act="silu", rms_norm_eps=1e-6,
                  rope_theta=10000.0, max_position_embeddings=2048, tie_word_embeddings=False,
                  bos_token_id=1, eos_token_id=2),
}
LINEAR_CLASSES = ("bitlinear", "autobitlinear")


class LazyTensor:
    """A checkpoint tensor read (and widened to float32) only when asked for."""

    def __init__(self, f: SafetensorsFile, name: str):
        self.file, self.name = f, name
        self.shape = f.shape(name)

    def __array__(self, dtype=None, copy=None):
        a = self.file.get(self.name).astype(np.float32)
        return a.astype(dtype) if dtype is not None else a

    def rows(self, r0: int, r1: int) -> np.ndarray:
        return self.file.get(self.name, (r0, r1)).astype(np.float32)


class LazyTernary(LazyArray):
    """A packed HF BitNet weight, unpacked to int8 trits only when read."""

    def __init__(self, f: SafetensorsFile, name: str, n: int):
        super().__init__((n, f.shape(name)[1]), np.int8)
        self.file, self.name, self.n = f, name, n

    def _load(self) -> np.ndarray:
        try:
            return unpack_hf_bitnet(self.file.raw(self.name), self.n)
        except ValueError as e:
            raise InputError(f"{self.file.path}: tensor {self.name}: {e}") from None


def _cfg(cfg: dict, path: Path, key: str, typ=int, default=None, minimum=None):
    """Field `key` as an int (typ int: a JSON integer, not a bool) or a finite float, at least
    `minimum` when given."""
    v = cfg.get(key)
    v = default if v is None else v  # transformers treats an explicit null as "use the default"
    if v is None:
        raise InputError(f"{path}: field {key!r} is missing")
    ok = (isinstance(v, int) and not isinstance(v, bool)) if typ is int else \
        (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
    if not ok:
        raise InputError(f"{path}: field {key!r} = {v!r} is not a valid {'finite ' if typ is float else ''}"
                         f"{typ.__name__}")
    if minimum is not None and v < minimum:
        raise InputError(f"{path}: field {key!r} = {v!r}, expected at least {minimum}")
    return typ(v)


def _token_ids(cfg: dict, path: Path, key: str, default) -> list[int] | None:
    """bos/eos_token_id: a non-negative int, a list of them, or null (None)."""
    v = cfg.get(key, default)
    if v is None:
        return None
    vals = v if isinstance(v, list) else [v]
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in vals):
        raise InputError(f"{path}: field {key!r} = {v!r} is not a token id (expected a non-negative integer "
                         f"or a list of them)")
    return vals


def _json_object(path: Path) -> dict:
    try:
        cfg = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: expected a JSON object of model settings, got {type(cfg).__name__}")
    return cfg


def weight_scale_divides(src: Path) -> bool:
    """Whether a packed linear's output is divided (BitLinear) or multiplied (AutoBitLinear) by its
    `weight_scale`, from config.json's `quantization_config` the way transformers'
    BitNetHfQuantizer reads it (BitNetQuantConfig defaults: linear_class "bitlinear", mode
    "offline")."""
    path = src / "config.json"
    qc = _json_object(path).get("quantization_config") or {}
    if not isinstance(qc, dict):
        raise InputError(f"{path}: field 'quantization_config' = {qc!r} is not an object")
    if qc.get("quant_method", "bitnet") != "bitnet":
        raise InputError(f"{path}: quantization_config.quant_method {qc.get('quant_method')!r} is not "
                         f"supported (expected 'bitnet' for packed ternary weights)")
    cls = qc.get("linear_class", "bitlinear")
    if cls not in LINEAR_CLASSES:
        raise InputError(f"{path}: quantization_config.linear_class {cls!r}: expected one of "
                         f"{', '.join(LINEAR_CLASSES)}")
    mode = qc.get("quantization_mode", "offline")
    if mode not in ("offline", "online"):
        raise InputError(f"{path}: quantization_config.quantization_mode {mode!r}: expected 'offline' or 'online'")
    if cls == "autobitlinear" and mode == "online":
        raise InputError(f"{path}: quantization_config is autobitlinear 'online' (latent float weights "
                         f"quantized at run time), but the checkpoint stores packed weights with a "
                         f"weight_scale: expected quantization_mode 'offline'")
    return cls == "bitlinear"


def read_config(src: Path) -> ModelConfig:
    path = src / "config.json"
    if not path.is_file():
        raise InputError(f"{src}: not a Hugging Face checkpoint directory (config.json is missing)")
    cfg = _json_object(path)
    archs = cfg.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise InputError(f"{path}: field 'architectures' = {archs!r} is not a list of class names")
    mtype = cfg.get("model_type")
    arch = next((SUPPORTED[a] for a in archs if a in SUPPORTED), None) or \
        (MODEL_TYPES.get(mtype) if isinstance(mtype, str) else None)
    if arch is None:
        raise InputError(f"{path}: unsupported architecture {archs or mtype!r} "
                         f"(expected one of {', '.join(SUPPORTED)} or model_type {', '.join(MODEL_TYPES)})")
    dflt = HF_DEFAULTS[arch]
    act = cfg.get("hidden_act", dflt["hidden_act"])
    if act != dflt["hidden_act"]:
        raise InputError(f"{path}: hidden_act {act!r} is not supported for {arch} (expected {dflt['hidden_act']!r})")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        raise InputError(f"{path}: attention_bias/mlp_bias checkpoints are not supported (expected no biases)")
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if not isinstance(rope, dict):
        raise InputError(f"{path}: field 'rope_parameters' = {rope!r} is not an object")
    rtype = rope.get("rope_type", rope.get("type", "default"))
    if rtype not in ("default", None):
        raise InputError(f"{path}: rope_type {rtype!r} is not supported (expected 'default')")
    theta = rope.get("rope_theta", cfg.get("rope_theta", dflt["rope_theta"]))
    heads = _cfg(cfg, path, "num_attention_heads", default=dflt["num_attention_heads"], minimum=1)
    hidden = _cfg(cfg, path, "hidden_size", default=dflt["hidden_size"], minimum=1)
    head_dim = _cfg(cfg, path, "head_dim", default=hidden // heads, minimum=2)
    eos = _token_ids(cfg, path, "eos_token_id", dflt["eos_token_id"]) or []
    bos = _token_ids(cfg, path, "bos_token_id", dflt["bos_token_id"])
    if isinstance(cfg.get("bos_token_id"), list):
        raise InputError(f"{path}: field 'bos_token_id' = {cfg.get('bos_token_id')!r} is not one token id")
    tie = cfg.get("tie_word_embeddings", dflt["tie_word_embeddings"])
    if not isinstance(tie, bool):  # bool("false") is True: a string must not decide it
        raise InputError(f"{path}: field 'tie_word_embeddings' = {tie!r} is not a boolean (expected true or false)")
    mc = ModelConfig(
        arch=arch,
        vocab_size=_cfg(cfg, path, "vocab_size", default=dflt["vocab_size"], minimum=1),
        hidden_size=hidden,
        intermediate_size=_cfg(cfg, path, "intermediate_size", default=dflt["intermediate_size"], minimum=1),
        num_layers=_cfg(cfg, path, "num_hidden_layers", default=dflt["num_hidden_layers"], minimum=1),
        num_heads=heads,
        num_kv_heads=_cfg(cfg, path, "num_key_value_heads", default=dflt["num_key_value_heads"] or heads,
                          minimum=1),
        head_dim=head_dim,
        rms_norm_eps=_cfg(cfg, path, "rms_norm_eps", float, dflt["rms_norm_eps"], minimum=0.0),
        rope_theta=_cfg({"rope_theta": theta}, path, "rope_theta", float, minimum=1.0),
        max_position=_cfg(cfg, path, "max_position_embeddings", default=dflt["max_position_embeddings"], minimum=1),
        tie_word_embeddings=tie,
        bos_token_id=None if bos is None else bos[0],
        eos_token_ids=eos,
    )
    if mc.max_position > MAX_POSITION:
        raise InputError(f"{path}: field 'max_position_embeddings' = {mc.max_position} exceeds edgestream's "
                         f"{MAX_POSITION} positions (the artifact holds RoPE tables of that many rows)")
    if mc.num_heads % mc.num_kv_heads or mc.head_dim % 2:
        raise InputError(f"{path}: num_attention_heads {mc.num_heads} must be a multiple of "
                         f"num_key_value_heads {mc.num_kv_heads}, and head_dim {mc.head_dim} even")
    return mc


class _Weights:
    """All tensors of the checkpoint's safetensors files, by name."""

    def __init__(self, src: Path):
        files = sorted(src.glob("*.safetensors"))
        if not files:
            raise InputError(f"{src}: no *.safetensors files")
        self.src = src
        self.where: dict[str, SafetensorsFile] = {}
        for p in files:
            f = SafetensorsFile(p)
            for k in f.keys():
                self.where[k] = f

    def has(self, name: str) -> bool:
        return name in self.where

    def need(self, name: str, shape: tuple[int, ...] | None = None) -> SafetensorsFile:
        f = self.where.get(name)
        if f is None:
            raise InputError(f"{self.src}: tensor {name} is missing (no *.safetensors file holds it)")
        if shape is not None and f.shape(name) != tuple(shape):
            raise InputError(f"{f.path}: tensor {name} has shape {list(f.shape(name))}, expected {list(shape)}")
        return f

    def float(self, name: str, shape: tuple[int, ...]) -> LazyTensor:
        f = self.need(name, shape)
        if f.dtype(name) not in ("F32", "F16", "BF16", "F64"):
            raise InputError(f"{f.path}: tensor {name} has dtype {f.dtype(name)}, expected a float type")
        return LazyTensor(f, name)

    def small_float(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        a = np.asarray(self.float(name, shape), dtype=np.float32)
        if not np.all(np.isfinite(a)):
            raise InputError(f"{self.where[name].path}: tensor {name} contains NaN or Inf")
        return a


def _linear(w: _Weights, divides: Callable[[], bool], name: str, n: int, k: int) -> Tensor:
    wname, sname = name + ".weight", name + ".weight_scale"
    f = w.need(wname)
    if not w.has(sname):
        if f.dtype(wname) == "U8":
            raise InputError(f"{f.path}: tensor {wname} is packed uint8 but {sname} is missing "
                             f"(expected a per-tensor weight_scale beside every packed weight)")
        return Tensor(wname, "float32", w.float(wname, (n, k)))
    ws = w.small_float(sname, tuple(w.need(sname).shape(sname))).reshape(-1)
    if ws.size != 1 or not ws[0] > 0:
        raise InputError(f"{w.where[sname].path}: tensor {sname} must be one positive finite scale, "
                         f"got {ws.tolist()[:4]}")
    s = np.float32(ws[0])
    # W = trits / s (BitLinear) or trits * s (AutoBitLinear); beta multiplies the integer matmul
    beta = np.array([np.float32(1.0) / s if divides() else s], dtype=np.float32)
    if f.dtype(wname) == "U8":
        w.need(wname, ((n + 3) // 4, k))
        return Tensor(wname, "ternary", LazyTernary(f, wname, n), beta)
    # an offline checkpoint may also store the trits unpacked, as floats
    t = np.asarray(w.float(wname, (n, k)))
    if not np.all(np.isin(t, (-1.0, 0.0, 1.0))):
        raise InputError(f"{f.path}: tensor {wname} has a {sname} but holds values other than -1, 0, +1 "
                         f"(expected the ternary weights of an offline BitNet checkpoint)")
    return Tensor(wname, "ternary", t.astype(np.int8), beta)


_HF_MODULES = {
    "attn_norm": "input_layernorm", "q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
    "attn_sub_norm": "self_attn.attn_sub_norm", "o": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
    "gate": "mlp.gate_proj", "up": "mlp.up_proj", "ffn_sub_norm": "mlp.ffn_sub_norm", "down": "mlp.down_proj",
}


def load_hf(src: str | Path) -> tuple[Graph, Path | None, object]:
    """Returns the float graph, the path of tokenizer.json (or None) and the tokenizer/generation settings."""
    src = Path(src)
    if not src.exists():
        raise InputError(f"{src}: no such file or directory")
    cfg = read_config(src)
    w = _Weights(src)
    divides = functools.cache(lambda: weight_scale_divides(src))  # read only if a weight_scale exists
    v, h = cfg.vocab_size, cfg.hidden_size
    tied = cfg.tie_word_embeddings or not w.has("lm_head.weight")
    if tied and not cfg.tie_word_embeddings:
        raise InputError(f"{src}: tensor lm_head.weight is missing and tie_word_embeddings is false")
    graph = build_decoder(
        cfg,
        name=lambda i, role: f"model.layers.{i}.{_HF_MODULES[role]}",
        norm_gain=lambda m, size: Tensor(m + ".weight", "float32", w.small_float(m + ".weight", (size,))),
        linear=lambda m, role, n, k: _linear(w, divides, m, n, k),
        embedding=Tensor("model.embed_tokens.weight", "float32", w.float("model.embed_tokens.weight", (v, h))),
        final_norm="model.norm",
        lm_head=None if tied else (lambda: _linear(w, divides, "lm_head", v, h)),
    )
    tok = src / "tokenizer.json"
    from edgestream.compiler.frontends.hf_tokenizer import read_hf_tokenizer_settings

    return graph, (tok if tok.is_file() else None), read_hf_tokenizer_settings(src, cfg)
