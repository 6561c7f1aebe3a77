"""Deterministic synthetic checkpoints written through the real writers (safetensors, tokenizers):
test fixtures, benchmark models of real shapes, and the demo's fallback when no trained model ships.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgestream.formats.ternary import pack_hf_bitnet


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int
    max_position: int = 2048


SHAPES = {
    "tiny": Shape(2, 64, 160, 4, 2, 300, 256),
    "bitnet-0.73b": Shape(24, 1536, 4096, 16, 16, 32002, 2048),
    "bitnet-2b4t": Shape(30, 2560, 6912, 20, 5, 128256, 4096),
}

_TOKENIZER_TEXT = (
    "edgestream runs ternary language models on small FPGA boards. The compiler turns a model into "
    "a table lookup program and a packed weight image; the runtime streams prefill and decode. "
    "Once upon a time a small board learned to count: one, two, three, four, five. "
)


def make_tokenizer(path: Path, vocab_size: int) -> None:
    """A byte-level BPE tokenizer trained on a fixed text, padded to the model's vocab."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=min(vocab_size, 400), special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([_TOKENIZER_TEXT] * 4, trainer)
    tok.save(str(path))


def make_checkpoint(out: str | Path, shape: Shape | str = "tiny", arch: str = "bitnet", seed: int = 0,
                    packed: bool = False, dtype: str = "float32", tokenizer: bool = True, tie: bool = False,
                    linear_class: str = "autobitlinear") -> Path:
    """Write config.json + model.safetensors (+ tokenizer.json) of a randomly initialised model.

    packed=True writes the linears as microsoft/bitnet-b1.58-2B-4T does (uint8, 4 trits per byte
    along the output dim, a per-tensor weight_scale, quantization_config {bitnet, `linear_class`,
    offline}); for arch "llama" that is the Falcon3 1.58-bit layout. linear_class "autobitlinear" (the
    2B-4T's) stores weight_scale = beta (W = trits * weight_scale), "bitlinear" stores 1 / beta
    (W = trits / weight_scale), as transformers reads each. Otherwise float weights (float32 or
    bfloat16). tie=True shares the embedding as the LM head (no lm_head tensor), as llama.cpp's
    bitnet graph requires."""
    from safetensors.numpy import save_file

    sh = SHAPES[shape] if isinstance(shape, str) else shape
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    hd = sh.hidden // sh.heads
    tensors: dict[str, np.ndarray] = {}

    def fl(shape_, std):
        a = (rng.standard_normal(shape_, dtype=np.float32) * np.float32(std)).astype(np.float32)
        if dtype == "bfloat16":
            return (a.view(np.uint32) >> 16).astype(np.uint16)  # stored as BF16 below
        return a

    def norm(name, n):
        tensors[name] = (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    def lin(name, n, k):
        if packed:
            t = rng.choice(np.array([-1, 0, 1], np.int8), size=(n, k), p=[0.3, 0.4, 0.3])
            tensors[name + ".weight"] = pack_hf_bitnet(t)
            beta = np.float32(0.02 + 0.01 * rng.random())
            ws = beta if linear_class == "autobitlinear" else np.float32(1.0) / beta
            tensors[name + ".weight_scale"] = np.array([ws], np.float32)
        else:
            tensors[name + ".weight"] = fl((n, k), 0.02 if arch == "llama" else 0.05)

    tensors["model.embed_tokens.weight"] = fl((sh.vocab, sh.hidden), 1.0)
    for i in range(sh.layers):
        p = f"model.layers.{i}"
        norm(f"{p}.input_layernorm.weight", sh.hidden)
        norm(f"{p}.post_attention_layernorm.weight", sh.hidden)
        for proj, n in (("q", sh.heads * hd), ("k", sh.kv_heads * hd), ("v", sh.kv_heads * hd)):
            lin(f"{p}.self_attn.{proj}_proj", n, sh.hidden)
        lin(f"{p}.self_attn.o_proj", sh.hidden, sh.heads * hd)
        for proj in ("gate", "up"):
            lin(f"{p}.mlp.{proj}_proj", sh.ffn, sh.hidden)
        lin(f"{p}.mlp.down_proj", sh.hidden, sh.ffn)
        if arch == "bitnet":
            norm(f"{p}.self_attn.attn_sub_norm.weight", sh.hidden)
            norm(f"{p}.mlp.ffn_sub_norm.weight", sh.ffn)
    norm("model.norm.weight", sh.hidden)
    if not tie:
        tensors["lm_head.weight"] = fl((sh.vocab, sh.hidden), 0.05)
    if dtype == "bfloat16":
        _save_bf16(tensors, out / "model.safetensors")
    else:
        save_file(tensors, str(out / "model.safetensors"))
    cfg = {
        "architectures": ["BitNetForCausalLM" if arch == "bitnet" else "LlamaForCausalLM"],
        "model_type": arch,
        "vocab_size": sh.vocab,
        "hidden_size": sh.hidden,
        "intermediate_size": sh.ffn,
        "num_hidden_layers": sh.layers,
        "num_attention_heads": sh.heads,
        "num_key_value_heads": sh.kv_heads,
        "hidden_act": "relu2" if arch == "bitnet" else "silu",
        "max_position_embeddings": sh.max_position,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": tie,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "torch_dtype": dtype,
    }
    if packed:
        cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": linear_class,
                                      "quantization_mode": "offline"}
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    if tokenizer:
        make_tokenizer(out / "tokenizer.json", sh.vocab)
    return out


def _save_bf16(tensors: dict[str, np.ndarray], path: Path) -> None:
    """safetensors' numpy writer has no bfloat16; write the documented layout with BF16 entries for
    the uint16 bit patterns produced by fl() and the native dtype for the rest."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.uint16): "BF16", np.dtype(np.uint8): "U8"}
    header, off, blobs = {}, 0, []
    for k, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[k] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
