"""Tokenizer wrapper over Hugging Face `tokenizers` (tokenizer.json) that applies the model's own
settings (BOS insertion, decode clean-up), with incremental detokenization for streaming."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgestream.errors import InputError

# The named special tokens transformers hands a chat template (PreTrainedTokenizerBase
# .SPECIAL_TOKENS_ATTRIBUTES); model-specific `*_token` names join them.
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


@dataclass
class TokenizerSettings:
    """How a model's own files say to tokenize and when to stop: what transformers reads from
    tokenizer_config.json / generation_config.json and llama.cpp from `tokenizer.ggml.*` metadata.
    Stored in the artifact manifest under "tokenizer"; `source` names the files it came from.

    Field meanings (every frontend fills them the same way; docs/formats.md):
    - bos_token_id: the id a prompt starts with when BOS is inserted (or None).
    - add_bos_token: prepend bos_token_id to plain-text prompts *when the tokenizer.json
      post-processor adds no special tokens itself*; a post-processor that adds BOS (Llama-3's
      TemplateProcessing) governs and nothing is added twice. Chat prompts never get it: the
      template writes BOS itself.
    - eos_token_ids: every id that ends generation (eos and end-of-turn/eot), in priority order.
    - chat_template: the default Jinja chat template (transformers' `apply_chat_template` semantics),
      or None; chat_templates: every named template ("default", "tool_use", ...) when the model
      ships several, else empty.
    - bos_token / eos_token: the token strings (the template variables of the same names).
    - special_tokens: every named special token string the template sees (bos_token, eos_token,
      unk_token, pad_token, ..., model-specific `*_token`); bos_token/eos_token above win over it.
    - clean_up_tokenization_spaces: decode removes spaces before punctuation (transformers'
      `clean_up_tokenization`), which transformers skips for BPE models; so do we.
    """

    bos_token_id: int | None = None
    add_bos_token: bool = False
    eos_token_ids: list[int] = field(default_factory=list)  # every id that ends a turn (eos and eot)
    chat_template: str | None = None
    bos_token: str | None = None
    eos_token: str | None = None
    clean_up_tokenization_spaces: bool = False
    source: list[str] = field(default_factory=list)
    chat_templates: dict[str, str] = field(default_factory=dict)
    special_tokens: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TokenizerSettings | None:
        if d is None:
            return None
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def template_tokens(self) -> dict[str, str]:
        """The special-token variables a chat template renders with (transformers: special_tokens_map)."""
        out = dict(self.special_tokens)
        for name in ("bos_token", "eos_token"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def clean_up_tokenization(text: str) -> str:
    """transformers' PreTrainedTokenizerBase.clean_up_tokenization, replacement for replacement."""
    for a, b in _CLEANUPS:
        text = text.replace(a, b)
    return text


_CLEANUPS = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
             (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


class Tokenizer:
    def __init__(self, path: str | Path, settings: TokenizerSettings | None = None):
        from tokenizers import Tokenizer as HFTokenizer

        try:
            self.tok = HFTokenizer.from_file(str(path))
        except Exception as e:  # the library raises its own exception type for bad files
            raise InputError(f"{path}: not a valid tokenizer.json ({e})") from None
        self.path = Path(path)
        self.settings = settings or TokenizerSettings()
        # A post-processor that adds special tokens (TemplateProcessing with BOS) decides alone, as in
        # transformers; only a tokenizer that adds none gets BOS prepended per add_bos_token.
        self.prepend_bos = (self.settings.add_bos_token and self.settings.bos_token_id is not None
                            and self.tok.num_special_tokens_to_add(False) == 0)
        # transformers skips the clean-up for BPE models: it would strip spaces the model produced.
        self.clean_up = (self.settings.clean_up_tokenization_spaces
                         and type(self.tok.model).__name__ != "BPE")

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`; add_special_tokens=False is what a rendered chat prompt takes (its
        template wrote the special tokens already)."""
        ids = self.tok.encode(text, add_special_tokens=add_special_tokens).ids
        if add_special_tokens and self.prepend_bos:
            ids = [self.settings.bos_token_id, *ids]
        return ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        text = self.tok.decode(list(ids), skip_special_tokens=skip_special_tokens)
        return clean_up_tokenization(text) if self.clean_up else text

    def token_to_id(self, token: str) -> int | None:
        return self.tok.token_to_id(token)


class StreamDecoder:
    """Turns a growing list of ids into text deltas (never splits a multi-byte character, never emits
    text that a later token could still change)."""

    def __init__(self, tok: Tokenizer):
        self.tok, self.ids, self.text = tok, [], ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tok.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        if self.tok.clean_up:
            # " ." becomes ".": hold back a tail that the next token could turn into a clean-up match
            text = text[: len(text) - _cleanup_tail(text)]
        if not text.startswith(self.text):  # cannot happen when the tail is held back; never re-emit
            return ""
        delta, self.text = text[len(self.text):], text
        return delta

    def flush(self) -> str:
        """The text held back at the end of the stream."""
        text = self.tok.decode(self.ids)
        if not text.startswith(self.text):
            return ""
        delta, self.text = text[len(self.text):], text
        return delta


def _cleanup_tail(text: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of a clean-up pattern."""
    for n in range(4, 0, -1):
        tail = text[-n:]
        if len(tail) == n and any(a.startswith(tail) and a != tail for a, _ in _CLEANUPS):
            return n
    return 0
