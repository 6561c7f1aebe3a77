"""Tokenizer wrapper over Hugging Face `tokenizers` (tokenizer.json), with incremental detokenization
for streaming."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgestream.errors import InputError


@dataclass
class TokenizerSettings:
    """How a model's own files say to tokenize and when to stop: what transformers reads from
    tokenizer_config.json / generation_config.json and llama.cpp from `tokenizer.ggml.*` metadata.
    Stored in the artifact manifest under "tokenizer"; `source` names the files it came from."""

    bos_token_id: int | None = None
    add_bos_token: bool = False
    eos_token_ids: list[int] = field(default_factory=list)  # every id that ends a turn (eos and eot)
    chat_template: str | None = None
    bos_token: str | None = None
    eos_token: str | None = None
    clean_up_tokenization_spaces: bool = False
    source: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TokenizerSettings | None:
        if d is None:
            return None
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class Tokenizer:
    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer as HFTokenizer

        try:
            self.tok = HFTokenizer.from_file(str(path))
        except Exception as e:  # the library raises its own exception type for bad files
            raise InputError(f"{path}: not a valid tokenizer.json ({e})") from None

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)


class StreamDecoder:
    """Turns a growing list of ids into text deltas (never splits a multi-byte character)."""

    def __init__(self, tok: Tokenizer):
        self.tok, self.ids, self.text = tok, [], ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tok.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        delta, self.text = text[len(self.text):], text
        return delta
