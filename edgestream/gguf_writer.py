"""Export a Hugging Face checkpoint (BitNet or Llama, the ones the HF frontend reads) as a GGUF file that
llama.cpp loads, following llama.cpp's convert_hf_to_gguf conventions (docs/formats.md "GGUF").

- Tensor names and metadata keys are llama.cpp's (gguf.TENSOR_NAMES, gguf.Keys); the tokenizer
  (byte-level BPE tokenizer.json) goes in as tokenizer.ggml.model "gpt2" with tokens, token types,
  merges, bos/eos ids, padded to vocab_size with "[PAD{i}]" user-defined tokens as llama.cpp does.
- `llama`: attn_q/attn_k rows are permuted for llama.cpp's interleaved RoPE. `bitnet`: not permuted
  (llama.cpp runs it with NEOX RoPE); no output tensor (llama.cpp ties the LM head to token_embd).
- Ternary BitNet linears are written as their trits {-1, 0, +1} (TQ2_0/TQ1_0 blocks with d = 1, or
  F32/F16/Q8_0 values) plus the per-tensor scale as an F32 `blk.N.<name>.scale` [1] tensor, which
  llama.cpp's bitnet graph multiplies in; so the ternary program round-trips exactly. Ternary Llama
  (TQ types) is written as llama.cpp's converter does: trits * beta, block scale d = fp16(beta).
- Streaming: tensor infos are computed from shapes, then each tensor is read, quantized and written
  one at a time; the file is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgestream.errors import InputError

OUT_TYPES = ("tq2_0", "tq1_0", "q8_0", "f16", "f32")


@dataclass
class _Entry:
    name: str
    shape: tuple[int, ...]  # numpy (row-major) shape
    qtype: str  # F32 | F16 | Q8_0 | TQ1_0 | TQ2_0
    make: Callable[[], np.ndarray]  # float32 values to encode as qtype


def _gguf_names(i: int) -> dict[str, str]:
    import gguf

    T, M = gguf.TENSOR_NAMES, gguf.MODEL_TENSOR
    p = f"model.layers.{i}"
    return {
        f"{p}.input_layernorm": T[M.ATTN_NORM].format(bid=i),
        f"{p}.self_attn.q_proj": T[M.ATTN_Q].format(bid=i),
        f"{p}.self_attn.k_proj": T[M.ATTN_K].format(bid=i),
        f"{p}.self_attn.v_proj": T[M.ATTN_V].format(bid=i),
        f"{p}.self_attn.o_proj": T[M.ATTN_OUT].format(bid=i),
        f"{p}.self_attn.attn_sub_norm": T[M.ATTN_SUB_NORM].format(bid=i),
        f"{p}.post_attention_layernorm": T[M.FFN_NORM].format(bid=i),
        f"{p}.mlp.gate_proj": T[M.FFN_GATE].format(bid=i),
        f"{p}.mlp.up_proj": T[M.FFN_UP].format(bid=i),
        f"{p}.mlp.down_proj": T[M.FFN_DOWN].format(bid=i),
        f"{p}.mlp.ffn_sub_norm": T[M.FFN_SUB_NORM].format(bid=i),
    }


def _encode(values: np.ndarray, qtype: str) -> np.ndarray:
    import gguf

    if qtype == "F32":
        return np.ascontiguousarray(values, dtype=np.float32)
    if qtype == "F16":
        return np.ascontiguousarray(values, dtype=np.float16)
    return gguf.quants.quantize(
        np.ascontiguousarray(values, dtype=np.float32), gguf.GGMLQuantizationType[qtype]
    )


def _nbytes(shape: tuple[int, ...], qtype: str) -> int:
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[qtype]]
    return int(np.prod(shape)) // block * size


def read_tokenizer_json(path: Path, vocab_size: int) -> dict:
    """tokenizer.json (byte-level BPE) -> GGUF vocabulary fields, as convert_hf_to_gguf's _set_vocab_gpt2."""
    import gguf

    try:
        tj = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable tokenizer.json ({e})") from None
    model = tj.get("model") or {}
    if model.get("type") != "BPE":
        raise InputError(
            f"{path}: tokenizer model {model.get('type')!r} cannot be exported to GGUF "
            f"(supported: byte-level BPE)"
        )
    pre = tj.get("pre_tokenizer") or {}
    subs = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in subs]
    if kinds == ["ByteLevel"] and subs[0].get("use_regex", True):
        pre_name = "gpt-2"
    elif kinds == ["Split", "ByteLevel"] and not subs[1].get("use_regex", True):
        from edgestream.compiler.frontends.gguf_tokenizer import LLAMA3_SPLIT

        pat = subs[0].get("pattern", {})
        if pat.get("Regex") != LLAMA3_SPLIT:
            raise InputError(f"{path}: Split pre-tokenizer pattern is not llama3's; cannot name it for GGUF")
        pre_name = "llama-bpe"
    else:
        raise InputError(
            f"{path}: pre-tokenizer {kinds} cannot be exported to GGUF "
            f"(supported: ByteLevel (gpt-2), Split(llama3 regex) + ByteLevel (llama-bpe))"
        )
    vocab: dict[str, int] = dict(model.get("vocab") or {})
    added = {a["content"]: a for a in tj.get("added_tokens", [])}
    for content, a in added.items():
        vocab[content] = a["id"]
    if vocab and max(vocab.values()) >= vocab_size:
        raise InputError(
            f"{path}: token id {max(vocab.values())} is outside the model's vocab_size {vocab_size}"
        )
    rev = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in rev:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.USER_DEFINED)
        elif rev[i] in added:
            tokens.append(rev[i])
            types.append(
                gguf.TokenType.CONTROL if added[rev[i]].get("special") else gguf.TokenType.USER_DEFINED
            )
        else:
            tokens.append(rev[i])
            types.append(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    post = tj.get("post_processor") or {}
    # Llama-3 wraps its TemplateProcessing in a Sequence after ByteLevel; gguf's SpecialVocab looks
    # inside the Sequence the same way
    procs = (post.get("processors") or []) if post.get("type") == "Sequence" else [post]
    add_bos = any(
        p.get("type") == "TemplateProcessing" and bool(p.get("single")) and "SpecialToken" in p["single"][0]
        for p in procs
    )
    return {
        "pre": pre_name,
        "tokens": tokens,
        "types": [int(t) for t in types],
        "merges": merges,
        "add_bos": add_bos,
    }


def add_tokenizer(w, tok_path: Path | None, vocab_size: int) -> None:
    """The vocabulary keys of a GGUF (`no_vocab` without a tokenizer.json), as _set_vocab_gpt2 writes them."""
    if tok_path is None:
        w.add_tokenizer_model("no_vocab")
        return
    v = read_tokenizer_json(tok_path, vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(v["pre"])
    w.add_token_list(v["tokens"])
    w.add_token_types(v["types"])
    w.add_token_merges(v["merges"])
    w.add_add_bos_token(v["add_bos"])


def export_gguf(
    src: str | Path,
    out: str | Path,
    out_type: str = "tq2_0",
    untied_output: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> Path:
    """Write `out` (.gguf) from the Hugging Face checkpoint directory `src`; returns its path."""
    import gguf

    from edgestream.compiler.frontends.gguf import permute_qk
    from edgestream.compiler.frontends.hf import load_hf
    from edgestream.compiler.passes import quantize_ternary

    if out_type not in OUT_TYPES:
        raise InputError(f"--type {out_type!r}: expected one of {', '.join(OUT_TYPES)}")
    src, out = Path(src), Path(out)
    graph, tok_path, _ = load_hf(src)
    cfg = graph.config
    arch = cfg.arch
    if arch == "bitnet" and not cfg.tie_word_embeddings and not untied_output:
        raise InputError(
            f"{src}: this BitNet checkpoint has its own lm_head (tie_word_embeddings is false), but "
            f"llama.cpp's bitnet graph always uses token_embd as the output layer and rejects an "
            f"extra output tensor; pass --untied-output to write output.weight anyway (read by "
            f"edgestream, not loadable by llama.cpp)"
        )
    qt = out_type.upper()
    lin_type = qt
    emb_type = {"TQ2_0": "F16", "TQ1_0": "F16"}.get(qt, qt)  # llama.cpp keeps token_embd F16 for TQ types
    weights = {n.attrs["weight"]: n.name for n in graph.nodes if n.op == "linear"}
    fallback: list[str] = []

    def lin_qtype(shape: tuple[int, ...], want: str, name: str) -> str:
        if want in ("F32", "F16"):
            return want
        block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[want]][0]
        if shape[-1] % block:
            fallback.append(f"{name} ({shape[-1]} columns, {want} needs a multiple of {block}: F16)")
            return "F16"
        return want

    entries: list[_Entry] = []

    def float_of(t, heads: int = 0):
        def make():
            a = np.asarray(t.data, dtype=np.float32)
            if not np.all(np.isfinite(a)):
                raise InputError(f"{src}: tensor {t.name} contains NaN or Inf")
            return permute_qk(a, heads) if heads else a

        return make

    def ternary_of(t, heads: int = 0):
        """(trits, beta) of a BitNet linear: packed checkpoints as shipped, float ones by absmean."""
        if t.encoding == "ternary":
            trits, beta = np.asarray(t.data), t.scale
        else:
            q = quantize_ternary(float_of(t)(), t.name)
            trits, beta = q.data, q.scale
        if heads:
            trits = permute_qk(trits, heads)
        return trits, beta

    names = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    for i in range(cfg.num_layers):
        names.update(_gguf_names(i))
    for tname, t in graph.tensors.items():
        base = tname.removesuffix(".weight")
        gname = names.get(base)
        if gname is None:
            raise InputError(f"{src}: tensor {tname} has no GGUF name for architecture {arch}")
        shape = tuple(t.shape)
        heads = 0
        if arch == "llama" and base.endswith("self_attn.q_proj"):
            heads = cfg.num_heads
        elif arch == "llama" and base.endswith("self_attn.k_proj"):
            heads = cfg.num_kv_heads
        if len(shape) == 1:
            entries.append(_Entry(gname + ".weight", shape, "F32", float_of(t)))
        elif tname not in weights or weights[tname] == "lm_head":  # embeddings, LM head
            if tname == "lm_head.weight" and cfg.tie_word_embeddings:
                continue
            entries.append(_Entry(gname + ".weight", shape, lin_qtype(shape, emb_type, gname), float_of(t)))
        elif arch == "bitnet":
            qtype = lin_qtype(shape, lin_type, gname)
            cache: dict[str, tuple] = {}

            def trits_of(t=t, cache=cache):
                if "v" not in cache:
                    cache["v"] = ternary_of(t)
                return cache["v"]

            def make_w(trits_of=trits_of, cache=cache):
                return trits_of()[0].astype(np.float32)

            def make_s(trits_of=trits_of, cache=cache):
                beta = np.asarray(trits_of()[1], np.float32).reshape(1)
                cache.clear()  # written right after its weight: free the trits
                return beta

            entries.append(_Entry(gname + ".weight", shape, qtype, make_w))
            entries.append(_Entry(gname + ".scale", (1,), "F32", make_s))
        elif qt in ("TQ1_0", "TQ2_0"):

            def make_t(t=t, heads=heads):
                trits, beta = ternary_of(t, heads)
                return trits.astype(np.float32) * np.float32(beta[0])

            entries.append(_Entry(gname + ".weight", shape, lin_qtype(shape, lin_type, gname), make_t))
        else:
            if t.encoding != "float32":
                raise InputError(f"{src}: tensor {tname} is {t.encoding}; Llama export needs float weights")
            entries.append(
                _Entry(gname + ".weight", shape, lin_qtype(shape, lin_type, gname), float_of(t, heads))
            )
    if fallback:
        warnings.warn(
            f"{out}: {len(fallback)} tensors written as F16: " + "; ".join(fallback[:4]), stacklevel=2
        )

    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(tmp), arch)
    try:
        _metadata(w, cfg, src, qt, tok_path)
        for e in entries:
            if e.qtype in ("F32", "F16"):
                dt = np.float32 if e.qtype == "F32" else np.float16
                w.add_tensor_info(
                    e.name, e.shape, np.dtype(dt), int(np.prod(e.shape)) * np.dtype(dt).itemsize
                )
            else:
                gt = gguf.GGMLQuantizationType[e.qtype]
                bshape = gguf.quant_shape_to_byte_shape(e.shape, gt)
                w.add_tensor_info(e.name, bshape, np.dtype(np.uint8), _nbytes(e.shape, e.qtype), raw_dtype=gt)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for k, e in enumerate(entries):
            if progress:
                progress(k, len(entries), e.name)
            vals = e.make()
            if tuple(vals.shape) != e.shape:
                raise InputError(
                    f"{src}: tensor {e.name} has shape {list(vals.shape)}, expected {list(e.shape)}"
                )
            w.write_tensor_data(_encode(vals, e.qtype))
            del vals
        w.close()
        os.replace(tmp, out)
    except BaseException:
        w.close()
        tmp.unlink(missing_ok=True)
        raise
    if progress:
        progress(len(entries), len(entries), "written")
    return out


def _metadata(w, cfg, src: Path, qt: str, tok_path: Path | None) -> None:
    import gguf

    arch = cfg.arch
    w.add_name(src.name)
    w.add_context_length(cfg.max_position)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_heads)
    w.add_head_count_kv(cfg.num_kv_heads)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_rope_dimension_count(cfg.head_dim)
    if cfg.head_dim * cfg.num_heads != cfg.hidden_size:
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
    ft = {
        "F32": gguf.LlamaFileType.ALL_F32,
        "F16": gguf.LlamaFileType.MOSTLY_F16,
        "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "TQ1_0": gguf.LlamaFileType.MOSTLY_TQ1_0,
        "TQ2_0": gguf.LlamaFileType.MOSTLY_TQ2_0,
    }[qt]
    w.add_file_type(int(ft))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if arch == "bitnet":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(1.0)
        # not read by llama.cpp (its bitnet FFN is SiLU-gated); edgestream's GGUF frontend reads it
        w.add_string(f"{arch}.hidden_activation", "relu2")
    add_tokenizer(w, tok_path, cfg.vocab_size)
    if cfg.bos_token_id is not None:
        w.add_bos_token_id(int(cfg.bos_token_id))
    if cfg.eos_token_ids:
        w.add_eos_token_id(int(cfg.eos_token_ids[0]))
