"""GGUF vocabulary -> a Hugging Face `tokenizers` tokenizer.json whose ids equal the real tokenizer's,
and the tokenizer/stop settings the file's `tokenizer.*` metadata implies (TokenizerSettings).

Two vocabularies are rebuilt (docs/formats.md, "GGUF tokenizer", lists every rule and its source):
- `llama` (sentencepiece): a BPE model whose merge ranks are the token scores, as transformers' GGUF
  loader (integrations/gguf/gguf_tokenizer_mapping.py) and its LlamaConverter build it, with byte
  fallback, the "▁" space normalizer and llama.cpp's rules for the prefix space and BOS/EOS.
- `gpt2` (byte-level BPE): merges from the file, the pre-tokenizer `tokenizer.ggml.pre` names
  (llama.cpp's regexes, llama-vocab.cpp), `ignore_merges` where llama.cpp sets it.
Defaults for absent keys are llama.cpp's (src/llama-vocab.cpp, llama_vocab::impl::load).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from edgestream.compiler.frontends.gguf_reader import field
from edgestream.errors import InputError
from edgestream.tokenizer import TokenizerSettings

# token_type values (gguf.TokenType / llama.cpp's llama_token_type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# The regexes as the HF tokenizer.json files they come from spell them (llama.cpp rewrites some for
# its own regex engine; the comments in llama-vocab.cpp give these originals).
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
TEKKEN_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
GPT4O_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass(frozen=True)
class Pre:
    """One llama.cpp BPE pre-tokenizer: its regexes (each splits the pieces of the one before, as
    llama.cpp's unicode_regex_split does) and the flags llama_vocab::impl::load sets for it."""

    splits: tuple[str, ...]
    ignore_merges: bool = False
    add_bos: bool = False
    clean_spaces: bool = True


_LLAMA3 = Pre((LLAMA3_SPLIT,), ignore_merges=True, add_bos=True)
PRE: dict[str, Pre] = {
    # llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT: four regexes, not GPT-2's one
    "default": Pre((r"[\p{P}\$\+<=>\^~\|]+", GPT2_SPLIT, r"\p{N}+", r"[0-9][0-9][0-9]")),
    **{n: Pre((GPT2_SPLIT,)) for n in ("gpt-2", "phi-2", "mpt", "olmo", "exaone4")},
    **{n: _LLAMA3 for n in ("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                            "midm-2.0", "lfm2")},
    **{n: Pre((LLAMA3_SPLIT,)) for n in ("dbrx", "smaug-bpe")},
    **{n: Pre((QWEN2_SPLIT,), clean_spaces=False)
       for n in ("qwen2", "deepseek-r1-qwen", "megrez", "stablelm2")},
    "tekken": Pre((TEKKEN_SPLIT,), ignore_merges=True, add_bos=True, clean_spaces=False),
    **{n: Pre((GPT4O_SPLIT,), clean_spaces=False) for n in ("gpt-4o", "llama4")},
}
PRE_SUPPORTED = tuple(PRE)

# llama.cpp's end-of-generation tokens found by their text (llama_vocab::impl::load, special_eog_ids)
EOG_TEXTS = (
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
)


@dataclass
class _Vocab:
    model: str
    pre: str
    tokens: list[str]
    types: list[int]


def _vocab(r, path: Path) -> _Vocab | None:
    """The vocabulary the file carries (None for `no_vocab` or none at all)."""
    model = field(r, "tokenizer.ggml.model", path)
    if model is None or model in ("no_vocab", "none"):
        return None
    tokens = field(r, "tokenizer.ggml.tokens", path, required=True, expect="str array")
    types = field(r, "tokenizer.ggml.token_type", path, [NORMAL] * len(tokens), expect="int array")
    if len(types) != len(tokens):
        raise InputError(
            f"{path}: tokenizer.ggml.token_type has {len(types)} entries, tokens has {len(tokens)}"
        )
    return _Vocab(str(model), str(field(r, "tokenizer.ggml.pre", path, "default")), list(tokens),
                  [int(t) for t in types])


def _supported(v: _Vocab, path: Path) -> bool:
    if v.model not in ("llama", "gpt2"):
        warnings.warn(
            f"{path}: tokenizer.ggml.model {v.model!r} is not supported (supported: 'llama' sentencepiece, "
            f"'gpt2' byte-level BPE); compiled without a tokenizer: use --prompt-ids",
            stacklevel=4,
        )
        return False
    if v.model == "gpt2" and v.pre not in PRE:
        warnings.warn(
            f"{path}: tokenizer.ggml.pre {v.pre!r} is not supported (expected one of "
            f"{', '.join(PRE_SUPPORTED)}); compiled without a tokenizer: use --prompt-ids",
            stacklevel=4,
        )
        return False
    return True


def _special_id(r, path: Path, key: str, default: int | None, n: int) -> int | None:
    """A special token id as llama.cpp takes it: the key when it names a token, else the default
    (a default outside the vocabulary means none)."""
    if default is not None and not 0 <= default < n:
        default = None
    v = field(r, f"tokenizer.ggml.{key}", path)
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < n:
        warnings.warn(f"{path}: tokenizer.ggml.{key} = {v!r} is not a token id below {n}; using "
                      f"{default}", stacklevel=4)
        return default
    return int(v)


def _flag(r, path: Path, key: str, default: bool) -> bool:
    v = field(r, f"tokenizer.ggml.{key}", path)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise InputError(f"{path}: metadata key 'tokenizer.ggml.{key}' = {v!r} is not a boolean")
    return v


def _bos_eos(r, path: Path, v: _Vocab) -> tuple[int | None, int | None, bool, bool]:
    """(bos id, eos id, add_bos, add_eos) with llama.cpp's defaults: sentencepiece bos 1 / eos 2 and
    BOS added; BPE bos = eos = 11 and BOS added only for the pre-tokenizers that set it (llama3...)."""
    n = len(v.tokens)
    if v.model == "llama":
        bos_d, eos_d, add_bos_d = 1, 2, True
    elif v.model == "gpt2":
        bos_d, eos_d, add_bos_d = 11, 11, PRE[v.pre].add_bos if v.pre in PRE else False
    else:
        bos_d, eos_d, add_bos_d = None, None, False
    bos = _special_id(r, path, "bos_token_id", bos_d, n)
    eos = _special_id(r, path, "eos_token_id", eos_d, n)
    return bos, eos, _flag(r, path, "add_bos_token", add_bos_d), _flag(r, path, "add_eos_token", False)


def tokenizer_from_gguf(r, path: Path, vocab_size: int | None = None) -> Path | None:
    """Write tokenizer.json for the GGUF vocabulary into a temporary directory (removed at exit) and
    return its path; None (with a warning) for vocabularies not supported."""
    v = _vocab(r, path)
    if v is None or not _supported(v, path):
        return None
    bos, eos, add_bos, add_eos = _bos_eos(r, path, v)
    if v.model == "llama":
        scores = field(r, "tokenizer.ggml.scores", path, [0.0] * len(v.tokens), expect="float array")
        if len(scores) < len(v.tokens):
            raise InputError(f"{path}: tokenizer.ggml.scores has {len(scores)} entries, tokens has "
                             f"{len(v.tokens)}")
        tok = build_spm(v.tokens, v.types, [float(s) for s in scores],
                        _flag(r, path, "add_space_prefix", True), _special_id(r, path, "unknown_token_id", 0,
                                                                               len(v.tokens)))
    else:
        merges = field(r, "tokenizer.ggml.merges", path, expect="str array")
        if merges is None:
            raise InputError(f"{path}: metadata key 'tokenizer.ggml.merges' is missing (a 'gpt2' "
                             f"vocabulary needs its merges)")
        tok = build_bpe(v.tokens, v.types, list(merges), PRE[v.pre])
    _post_processor(tok, v.tokens, bos if add_bos else None, eos if add_eos else None)
    return _save(tok, v.tokens)


def build_spm(tokens: list[str], types: list[int], scores: list[float], add_space_prefix: bool,
              unk: int | None):
    """A sentencepiece vocabulary as a `tokenizers` BPE model that merges like sentencepiece's BPE:
    the adjacent pair whose joined piece has the highest score first (llama.cpp's
    llm_tokenizer_spm_session does the same). Only normal pieces are merge results, as in
    sentencepiece (control, byte and unknown pieces live outside its piece table); a character with
    no piece falls back to its UTF-8 bytes as <0xNN> tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

    vocab = _index(tokens)
    mergeable = {t: i for i, t in enumerate(tokens) if types[i] == NORMAL}
    ranked = []
    for t, i in mergeable.items():
        for k in range(1, len(t)):
            left, right = t[:k], t[k:]
            if left in mergeable and right in mergeable:
                ranked.append((-scores[i], i, k, left, right))
    ranked.sort()
    merges = [(a, b) for *_, a, b in ranked]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None if unk is None else tokens[unk],
                               fuse_unk=True, byte_fallback=True))
    # llama.cpp prepends the space to every stretch of text that follows a special token (or starts
    # the prompt); `tokenizers` normalizes each stretch between added tokens separately, so Prepend
    # does exactly that (transformers' legacy Llama normalizer)
    steps = [normalizers.Prepend("▁")] if add_space_prefix else []
    tok.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", "▁")])
    dec = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_space_prefix:
        dec.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(dec)
    _add_tokens(tok, tokens, types, AddedToken)
    return tok


def build_bpe(tokens: list[str], types: list[int], merges: list[str], pre: Pre):
    """A byte-level BPE vocabulary with the pre-tokenizer and ignore_merges of llama.cpp's `pre`."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    pairs = []
    for m in merges:
        a, sep, b = m.partition(" ")
        if not sep:
            raise InputError(f"GGUF vocabulary: merge {m!r} is not two tokens separated by a space")
        pairs.append((a, b))
    vocab = _index(tokens)
    for a, b in pairs:  # the `tokenizers` library would raise a bare Exception for these
        if a not in vocab or b not in vocab or a + b not in vocab:
            bad = next(x for x in (a, b, a + b) if x not in vocab)
            raise InputError(f"GGUF vocabulary: merge {a + ' ' + b!r} uses {bad!r}, which is not a token "
                             f"(expected merges of tokens into a token)")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, ignore_merges=pre.ignore_merges))
    if pre.splits == (GPT2_SPLIT,):
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(s), behavior="isolated", invert=False) for s in pre.splits]
            + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
    tok.decoder = decoders.ByteLevel()
    _add_tokens(tok, tokens, types, AddedToken)
    return tok


def _index(tokens: list[str]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        if t in vocab:
            raise InputError(f"GGUF vocabulary: token {i} {t!r} repeats token {vocab[t]}")
        vocab[t] = i
    return vocab


def _add_tokens(tok, tokens: list[str], types: list[int], added_token) -> None:
    """The tokens llama.cpp matches whole in the text before tokenizing (its special-token cache:
    control, user-defined and unknown) as added tokens; control and unknown ones are special."""
    tok.add_tokens([
        added_token(tokens[i], special=types[i] != USER_DEFINED, normalized=False)
        for i in range(len(tokens))
        if types[i] in (CONTROL, USER_DEFINED, UNKNOWN)
    ])


def _post_processor(tok, tokens: list[str], bos: int | None, eos: int | None) -> None:
    from tokenizers import processors

    if bos is None and eos is None:
        return
    b = [f"{tokens[bos]}"] if bos is not None else []
    e = [f"{tokens[eos]}"] if eos is not None else []
    single = " ".join([*b, "$A", *e])
    pair = " ".join([*b, "$A", *e, *b, "$B:1", *e])
    special = [(tokens[i], i) for i in dict.fromkeys(x for x in (bos, eos) if x is not None)]
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=special)


TMP_PREFIX = "edgestream-gguf-tok-"


def _remove_orphans() -> None:
    """The tokenizer directories of processes that died before their atexit ran (killed compiles)."""
    for d in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        pid = d.name[len(TMP_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:  # alive, another user's
            pass


def _save(tok, tokens: list[str]) -> Path:
    for i, t in enumerate(tokens):  # the rebuilt ids must be the GGUF ids
        if tok.token_to_id(t) != i:
            raise InputError(
                f"GGUF vocabulary: token {i} {t!r} maps to id {tok.token_to_id(t)} when rebuilt "
                f"(duplicate or out-of-order added token)"
            )
    _remove_orphans()
    d = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
    atexit.register(shutil.rmtree, d, True)
    out = d / "tokenizer.json"
    tok.save(str(out))
    json.loads(out.read_text())  # written completely
    return out


def gguf_tokenizer_settings(r, path: Path, cfg=None) -> TokenizerSettings:
    """BOS, the ids that end generation, the chat template(s) and the special-token strings of a GGUF
    file, as llama.cpp reads them. Without a vocabulary only the ids the metadata names are kept."""
    v = _vocab(r, path) if field(r, "tokenizer.ggml.tokens", path) is not None else None
    if v is None:  # no_vocab: the ids alone
        bos = field(r, "tokenizer.ggml.bos_token_id", path)
        eos = [int(x) for k in ("eos", "eot", "eom")
               if isinstance(x := field(r, f"tokenizer.ggml.{k}_token_id", path), int)]
        return TokenizerSettings(bos_token_id=bos if isinstance(bos, int) else None,
                                 eos_token_ids=list(dict.fromkeys(eos)), source=[path.name])
    n = len(v.tokens)
    bos, eos, add_bos, _ = _bos_eos(r, path, v)
    eog = [eos, _special_id(r, path, "eot_token_id", None, n), _special_id(r, path, "eom_token_id", None, n)]
    by_text = {t: i for i, t in enumerate(v.tokens) if t in EOG_TEXTS}
    # llama.cpp's two exceptions: "<|end|>" is no end of generation beside <|return|>+<|call|> (gpt-oss)
    # or <|calls|>+<|flush|> (solar-open); "</s>" is an ordinary token beside <|tool_response>
    if "<|end|>" in by_text and ({"<|return|>", "<|call|>"} <= by_text.keys()
                                 or {"<|calls|>", "<|flush|>"} <= by_text.keys()):
        del by_text["<|end|>"]
    if "</s>" in by_text and "<|tool_response>" in by_text:
        del by_text["</s>"]
    eog += sorted(by_text.values())
    templates = {}
    if (t := field(r, "tokenizer.chat_template", path)) is not None:
        templates["default"] = str(t)
    for name in field(r, "tokenizer.chat_templates", path, []) or []:
        if (t := field(r, f"tokenizer.chat_template.{name}", path)) is not None:
            templates[str(name)] = str(t)
    special = {}
    for name, key, default in (("bos_token", None, bos), ("eos_token", None, eos),
                               ("unk_token", "unknown_token_id", 0 if v.model == "llama" else None),
                               ("sep_token", "seperator_token_id", None), ("pad_token", "padding_token_id", None),
                               ("mask_token", "mask_token_id", None)):
        i = default if key is None else _special_id(r, path, key, default, n)
        if i is not None:
            special[name] = v.tokens[i]
    return TokenizerSettings(
        bos_token_id=bos,
        add_bos_token=add_bos,
        eos_token_ids=list(dict.fromkeys(i for i in eog if i is not None)),
        chat_template=templates.get("default"),
        bos_token=special.get("bos_token"),
        eos_token=special.get("eos_token"),
        clean_up_tokenization_spaces=v.model == "gpt2" and PRE.get(v.pre, Pre(())).clean_spaces,
        source=[path.name],
        chat_templates=templates if set(templates) - {"default"} else {},
        special_tokens=special,
    )
