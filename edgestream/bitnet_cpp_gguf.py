"""GGUF files written the way bitnet.cpp writes them, for fixtures and benchmarks.

`write_bitnet_cpp_gguf` converts a Hugging Face packed BitNet checkpoint as bitnet.cpp's
utils/convert-hf-to-gguf-bitnet.py (BitnetModel, --outtype i2_s) does: the same metadata keys under
the architecture's prefix, general.file_type 40, tensor names, F32 1-D tensors, F16 2-D float
tensors, I2_S data of `quantize_to_i2_s` with the checkpoint's weight_scale as the scale (the
offline-quantized path), tensor data at 32-byte alignment. `write_official_shape` writes a file of
the microsoft/bitnet-b1.58-2B-4T-gguf layout for any shape, sparsely (benchmarks of compile time).
The I2_S bytes come from edgestream.formats.i2s.pack_i2s (docs/formats.md)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from edgestream.formats.i2s import GGML_TYPE_I2_S, i2s_nbytes, pack_i2s
from edgestream.formats.ternary import unpack_hf_bitnet
from edgestream.synth import Shape

LLAMA_FTYPE_MOSTLY_I2_S = 40  # what the converter writes as general.file_type for --outtype i2_s
# convert-hf-to-gguf-bitnet.py maps names with the fork's gguf-py tensor map for BITNET_B158, whose
# GGUF names are llama-arch.cpp's LLM_ARCH_BITNET_B158 table
HF_TO_GGUF = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.attn_sub_norm": "attn_sub_norm",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "mlp.ffn_sub_norm": "ffn_sub_norm",
}
def _gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    _, _, i, rest = hf.split(".", 3)
    return f"blk.{i}.{HF_TO_GGUF[rest.removesuffix('.weight')]}.weight"


def _metadata(w, cfg: dict, name: str) -> None:
    """Model.set_gguf_parameters + BitnetModel.set_gguf_parameters, in their order."""
    w.add_name(name)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_file_type(LLAMA_FTYPE_MOSTLY_I2_S)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(cfg["hidden_size"] // cfg["num_attention_heads"])


def _vocab(w, src: Path, cfg: dict) -> None:
    """_set_vocab_gpt2 (the 2B-4T ships tokenizer.json, no tokenizer.model)."""
    from edgestream.gguf_writer import read_tokenizer_json

    if not (src / "tokenizer.json").exists():
        return
    v = read_tokenizer_json(src / "tokenizer.json", cfg["vocab_size"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(v["pre"])
    w.add_token_list(v["tokens"])
    w.add_token_types(v["types"])
    w.add_token_merges(v["merges"])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])


def add_i2s_info(w, name: str, n: int, k: int) -> None:
    # The converter calls add_tensor(raw_shape=(n, k), raw_dtype=I2_S) on N*K/4 + 32 bytes; its gguf-py
    # knows I2_S (block 1, size 1: the shape stays (n, k)). This gguf release has no I2_S member, so
    # the info goes in directly: a non-uint8 dtype keeps GGUFWriter from converting the byte shape.
    w.add_tensor_info(name, (n, k), np.dtype(np.int8), i2s_nbytes(n * k), raw_dtype=GGML_TYPE_I2_S)


def write_bitnet_cpp_gguf(src: Path, out: Path, arch: str = "bitnet-b1.58") -> Path:
    """A packed (uint8 + weight_scale, autobitlinear) HF BitNet checkpoint -> bitnet.cpp's I2_S GGUF."""
    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((src / "config.json").read_text())
    t = load_file(str(src / "model.safetensors"))
    w = gguf.GGUFWriter(str(out), arch)
    _metadata(w, cfg, src.name)
    _vocab(w, src, cfg)
    data = []
    for hf in t:  # safetensors order (sorted names), as get_tensors yields them
        if hf.endswith(".weight_scale") or hf == "lm_head.weight":
            continue
        name, a = _gguf_name(hf), t[hf]
        if hf.replace(".weight", ".weight_scale") in t:
            trits = unpack_hf_bitnet(a, a.shape[0] * 4)
            scale = np.float32(t[hf.replace(".weight", ".weight_scale")][0])
            add_i2s_info(w, name, *trits.shape)
            data.append(pack_i2s(trits, scale))
        else:
            a = a.astype(np.float32 if a.ndim == 1 else np.float16)  # 1-D: F32; 2-D float: F16
            w.add_tensor_info(name, a.shape, a.dtype, a.nbytes)
            data.append(a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for a in data:
        w.write_tensor_data(a)
    w.close()
    return out


def write_official_shape(out: Path, sh: Shape) -> Path:
    """A file of the 2B-4T GGUF's exact layout (names, types, shapes, metadata, alignment) written
    sparsely: the header through GGUFWriter, then only the I2_S scales and the norms; the packed codes
    and the F16 embedding are holes (zero bytes: every trit -1, a zero table), so the file costs no
    disk time. Tensor order is the converter's (sorted HF names)."""
    cfg = {"num_hidden_layers": sh.layers, "max_position_embeddings": sh.max_position,
           "hidden_size": sh.hidden, "intermediate_size": sh.ffn, "num_attention_heads": sh.heads,
           "num_key_value_heads": sh.kv_heads, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
           "vocab_size": sh.vocab}
    hd = sh.hidden // sh.heads
    lin = {"self_attn.q_proj": (sh.heads * hd, sh.hidden), "self_attn.k_proj": (sh.kv_heads * hd, sh.hidden),
           "self_attn.v_proj": (sh.kv_heads * hd, sh.hidden), "self_attn.o_proj": (sh.hidden, sh.heads * hd),
           "mlp.gate_proj": (sh.ffn, sh.hidden), "mlp.up_proj": (sh.ffn, sh.hidden),
           "mlp.down_proj": (sh.hidden, sh.ffn)}
    norms = {"input_layernorm": sh.hidden, "post_attention_layernorm": sh.hidden,
             "self_attn.attn_sub_norm": sh.hidden, "mlp.ffn_sub_norm": sh.ffn}
    hf: dict[str, tuple] = {"model.embed_tokens.weight": ("F16", (sh.vocab, sh.hidden)),
                            "model.norm.weight": ("F32", (sh.hidden,))}
    for i in range(sh.layers):
        hf.update({f"model.layers.{i}.{m}.weight": ("I2_S", s) for m, s in lin.items()})
        hf.update({f"model.layers.{i}.{m}.weight": ("F32", (n,)) for m, n in norms.items()})
    import gguf

    w = gguf.GGUFWriter(str(out), "bitnet-b1.58")
    _metadata(w, cfg, "bitnet-b1.58-2B-4T")
    plan = []
    for name in sorted(hf):
        kind, shape = hf[name]
        gname = _gguf_name(name)
        if kind == "I2_S":
            add_i2s_info(w, gname, *shape)
            plan.append((kind, shape, i2s_nbytes(shape[0] * shape[1])))
        else:
            dt = np.dtype(np.float16 if kind == "F16" else np.float32)
            w.add_tensor_info(gname, shape, dt, int(np.prod(shape)) * dt.itemsize)
            plan.append((kind, shape, int(np.prod(shape)) * dt.itemsize))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    f = w.fout[0]
    pos = f.tell()
    start = pos + (-pos) % 32
    off = 0
    for kind, shape, nbytes in plan:
        if kind == "I2_S":
            f.seek(start + off + shape[0] * shape[1] // 4)
            f.write(struct.pack("<f", 0.75))
        elif kind == "F32":
            f.seek(start + off)
            f.write(np.ones(shape, np.float32).tobytes())
        off += nbytes + (-nbytes) % 32
    f.truncate(start + off)
    w.close()
    return out
