"""GGUF vocabulary -> a Hugging Face `tokenizers` tokenizer.json whose ids equal llama.cpp's."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import warnings
from pathlib import Path

from edgestream.compiler.frontends.gguf_reader import field
from edgestream.errors import InputError

LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PRE_SUPPORTED = ("gpt-2", "default", "llama-bpe", "llama3", "llama-v3")


def tokenizer_from_gguf(r, path: Path, vocab_size: int) -> Path | None:
    """Write tokenizer.json for a `gpt2` (byte-level BPE) GGUF vocabulary into a temporary directory
    (removed at exit) and return its path; None (with a warning) for vocabularies not supported."""
    model = field(r, "tokenizer.ggml.model", path)
    if model is None or model in ("no_vocab", "none"):
        return None
    if model != "gpt2":
        warnings.warn(
            f"{path}: tokenizer.ggml.model {model!r} is not supported (only 'gpt2' byte-level BPE); "
            f"compiled without a tokenizer: use --prompt-ids",
            stacklevel=3,
        )
        return None
    pre = field(r, "tokenizer.ggml.pre", path, "default")
    if pre not in PRE_SUPPORTED:
        warnings.warn(
            f"{path}: tokenizer.ggml.pre {pre!r} is not supported (expected one of "
            f"{', '.join(PRE_SUPPORTED)}); compiled without a tokenizer: use --prompt-ids",
            stacklevel=3,
        )
        return None
    tokens = field(r, "tokenizer.ggml.tokens", path, required=True)
    merges = field(r, "tokenizer.ggml.merges", path, [])
    types = field(r, "tokenizer.ggml.token_type", path, [1] * len(tokens))
    if len(types) != len(tokens):
        raise InputError(
            f"{path}: tokenizer.ggml.token_type has {len(types)} entries, tokens has {len(tokens)}"
        )
    return write_tokenizer_json(
        tokens,
        types,
        merges,
        pre,
        field(r, "tokenizer.ggml.bos_token_id", path),
        bool(field(r, "tokenizer.ggml.add_bos_token", path, False)),
    )


def write_tokenizer_json(
    tokens: list[str],
    types: list[int],
    merges: list[str],
    pre: str,
    bos: int | None,
    add_bos: bool,
    out: Path | None = None,
) -> Path:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(tokens)}  # every token at its GGUF id (added ones too, as HF does)
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    if pre in ("llama-bpe", "llama3", "llama-v3"):
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    added = [
        AddedToken(tokens[i], special=types[i] == 3, normalized=False)
        for i in range(len(tokens))
        if types[i] not in (1, 6)
    ]
    tok.add_tokens(added)
    if add_bos and bos is not None:
        b = tokens[bos]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{b} $A", pair=f"{b} $A {b} $B", special_tokens=[(b, bos)]
        )
    for i, t in enumerate(tokens):  # the rebuilt ids must be the GGUF ids
        if tok.token_to_id(t) != i:
            raise InputError(
                f"GGUF vocabulary: token {i} {t!r} maps to id {tok.token_to_id(t)} when rebuilt "
                f"(duplicate or out-of-order added token)"
            )
    if out is None:
        d = Path(tempfile.mkdtemp(prefix="edgestream-gguf-tok-"))
        atexit.register(shutil.rmtree, d, True)
        out = d / "tokenizer.json"
    tok.save(str(out))
    json.loads(out.read_text())  # written completely
    return out


