"""Hugging Face frontend: a checkpoint directory (config.json, *.safetensors, tokenizer.json) of
`BitNetForCausalLM` or `LlamaForCausalLM` -> float IR graph.

BitNet weights may be packed (4 trits per uint8 along the output dim, `weight_scale`, as
microsoft/bitnet-b1.58-2B-4T ships them): those become ternary tensors directly. Float weights stay
lazy (memory-mapped) until the quantization pass reads them one at a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgestream.compiler.frontends.decoder import build_decoder
from edgestream.errors import InputError
from edgestream.formats.ternary import unpack_hf_bitnet
from edgestream.ir import Graph, ModelConfig, Tensor
from edgestream.lazyarray import LazyArray
from edgestream.safetensors_io import SafetensorsFile

SUPPORTED = {"BitNetForCausalLM": "bitnet", "LlamaForCausalLM": "llama"}


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


def _cfg(cfg: dict, path: Path, key: str, typ=int, default=None):
    v = cfg.get(key, default)
    if v is None:
        raise InputError(f"{path}: field {key!r} is missing")
    try:
        return typ(v)
    except (TypeError, ValueError):
        raise InputError(f"{path}: field {key!r} = {v!r} is not a valid {typ.__name__}") from None


def read_config(src: Path) -> ModelConfig:
    path = src / "config.json"
    if not path.is_file():
        raise InputError(f"{src}: not a Hugging Face checkpoint directory (config.json is missing)")
    try:
        cfg = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: expected a JSON object of model settings, got {type(cfg).__name__}")
    archs = cfg.get("architectures") or []
    arch = next((SUPPORTED[a] for a in archs if a in SUPPORTED), None)
    if arch is None:
        raise InputError(f"{path}: unsupported architecture {archs or cfg.get('model_type')!r} "
                         f"(expected one of {', '.join(SUPPORTED)})")
    act = cfg.get("hidden_act", "relu2" if arch == "bitnet" else "silu")
    if act != ("relu2" if arch == "bitnet" else "silu"):
        raise InputError(f"{path}: hidden_act {act!r} is not supported for {arch}")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        raise InputError(f"{path}: attention_bias/mlp_bias checkpoints are not supported (expected no biases)")
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    rtype = rope.get("rope_type", rope.get("type", "default"))
    if rtype not in ("default", None):
        raise InputError(f"{path}: rope_type {rtype!r} is not supported (expected 'default')")
    theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
    heads = _cfg(cfg, path, "num_attention_heads")
    hidden = _cfg(cfg, path, "hidden_size")
    head_dim = cfg.get("head_dim") or hidden // heads
    eos = cfg.get("eos_token_id")
    eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    mc = ModelConfig(
        arch=arch,
        vocab_size=_cfg(cfg, path, "vocab_size"),
        hidden_size=hidden,
        intermediate_size=_cfg(cfg, path, "intermediate_size"),
        num_layers=_cfg(cfg, path, "num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=_cfg(cfg, path, "num_key_value_heads", default=heads),
        head_dim=int(head_dim),
        rms_norm_eps=_cfg(cfg, path, "rms_norm_eps", float, 1e-6),
        rope_theta=float(theta),
        max_position=_cfg(cfg, path, "max_position_embeddings", default=2048),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        bos_token_id=cfg.get("bos_token_id"),
        eos_token_ids=[int(e) for e in eos],
    )
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
            raise InputError(f"checkpoint: tensor {name} is missing")
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


def _linear(w: _Weights, cfg: ModelConfig, name: str, n: int, k: int) -> Tensor:
    wname = name + ".weight"
    f = w.need(wname)
    if f.dtype(wname) == "U8" and cfg.arch == "bitnet":
        f = w.need(wname, ((n + 3) // 4, k))
        sname = name + ".weight_scale"
        ws = w.small_float(sname, tuple(w.need(sname).shape(sname))).reshape(-1)
        if ws.size != 1 or not ws[0] > 0:
            raise InputError(f"{w.where[sname].path}: tensor {sname} must be one positive finite scale, "
                             f"got {ws.tolist()[:4]}")
        trits = LazyTernary(f, wname, n)
        beta = np.array([np.float32(1.0) / ws[0].astype(np.float32)], dtype=np.float32)
        return Tensor(wname, "ternary", trits, beta)
    return Tensor(wname, "float32", w.float(wname, (n, k)))


_HF_MODULES = {
    "attn_norm": "input_layernorm", "q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
    "attn_sub_norm": "self_attn.attn_sub_norm", "o": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
    "gate": "mlp.gate_proj", "up": "mlp.up_proj", "ffn_sub_norm": "mlp.ffn_sub_norm", "down": "mlp.down_proj",
}


def load_hf(src: str | Path) -> tuple[Graph, Path | None]:
    """Returns the float graph and the path of tokenizer.json (or None)."""
    src = Path(src)
    if not src.exists():
        raise InputError(f"{src}: no such file or directory")
    cfg = read_config(src)
    w = _Weights(src)
    v, h = cfg.vocab_size, cfg.hidden_size
    tied = cfg.tie_word_embeddings or not w.has("lm_head.weight")
    if tied and not cfg.tie_word_embeddings:
        raise InputError(f"{src}: tensor lm_head.weight is missing and tie_word_embeddings is false")
    graph = build_decoder(
        cfg,
        name=lambda i, role: f"model.layers.{i}.{_HF_MODULES[role]}",
        norm_gain=lambda m, size: Tensor(m + ".weight", "float32", w.small_float(m + ".weight", (size,))),
        linear=lambda m, role, n, k: _linear(w, cfg, m, n, k),
        embedding=Tensor("model.embed_tokens.weight", "float32", w.float("model.embed_tokens.weight", (v, h))),
        final_norm="model.norm",
        lm_head=None if tied else (lambda: _linear(w, cfg, "lm_head", v, h)),
    )
    tok = src / "tokenizer.json"
    return graph, (tok if tok.is_file() else None)
