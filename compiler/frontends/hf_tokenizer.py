"""Tokenizer and generation settings of a Hugging Face checkpoint directory: tokenizer_config.json,
special_tokens_map.json (legacy), chat_template.jinja, additional_chat_templates/*.jinja,
generation_config.json and config.json's ids -> TokenizerSettings.

The precedence follows transformers 5.x (tokenization_utils_base.PreTrainedTokenizerBase
._from_pretrained, generation.GenerationConfig); docs/formats.md, "Tokenizer and generation
settings", says which rule comes from where.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgestream.errors import InputError
from edgestream.ir import ModelConfig
from edgestream.tokenizer import SPECIAL_TOKEN_NAMES, TokenizerSettings


def _json_object(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(d).__name__}")
    return d


def _token_string(path: Path, key: str, v: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken object
    ({"__type": "AddedToken", "content": ...}; special_tokens_map.json omits "__type")."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    raise InputError(f"{path}: field {key!r} = {v!r} is not a token (expected a string or an AddedToken "
                     f"object with a string 'content')")


def _bool(path: Path, d: dict, key: str, default: bool) -> bool:
    v = d.get(key, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise InputError(f"{path}: field {key!r} = {v!r} is not a boolean (expected true or false)")
    return v


def _ids(path: Path, d: dict, key: str) -> list[int]:
    """An id field as generation_config.json/config.json write it: an int, a list of ints, or null."""
    v = d.get(key)
    if v is None:
        return []
    vals = v if isinstance(v, list) else [v]
    if not vals or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in vals):
        raise InputError(f"{path}: field {key!r} = {v!r} is not a token id (expected a non-negative integer "
                         f"or a list of them)")
    return list(vals)


def _templates(path: Path, v: Any) -> dict[str, str]:
    """chat_template as a string (the default) or the list of {"name", "template"} that
    transformers writes for several named templates."""
    if v is None:
        return {}
    if isinstance(v, str):
        return {"default": v}
    if isinstance(v, list) and all(isinstance(t, dict) and isinstance(t.get("name"), str)
                                   and isinstance(t.get("template"), str) for t in v):
        return {t["name"]: t["template"] for t in v}
    raise InputError(f"{path}: field 'chat_template' is not a template (expected a string or a list of "
                     f"{{\"name\": ..., \"template\": ...}} objects)")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e})") from None


def _special_tokens(path: Path, tc: dict, stm: dict | None, stm_path: Path) -> dict[str, str]:
    toks: dict[str, str] = {}
    for key in SPECIAL_TOKEN_NAMES:
        if (s := _token_string(path, key, tc.get(key))) is not None:
            toks[key] = s
    # transformers 5 collects other `*_token` string fields and a dict `extra_special_tokens` as
    # model-specific named tokens, visible to the template like the standard ones
    for key, v in tc.items():
        if key.endswith("_token") and key not in SPECIAL_TOKEN_NAMES and isinstance(v, str):
            toks[key] = v
    extra = tc.get("extra_special_tokens")
    if isinstance(extra, dict):
        for key, v in extra.items():
            if (s := _token_string(path, f"extra_special_tokens.{key}", v)) is not None:
                toks[key] = s
    # special_tokens_map.json is read only when tokenizer_config.json has no added_tokens_decoder
    # (the pre-4.34 layout), and then its values override tokenizer_config.json's
    if stm is not None and "added_tokens_decoder" not in tc:
        for key, v in stm.items():
            if key in ("additional_special_tokens", "extra_special_tokens"):
                continue
            if (s := _token_string(stm_path, key, v)) is not None:
                toks[key] = s
    return toks


def read_hf_tokenizer_settings(src: Path, cfg: ModelConfig) -> TokenizerSettings:
    """The tokenizer and generation settings of checkpoint directory `src` (config.json already read
    into `cfg`). Missing files leave their fields at the defaults; bad ones are an InputError."""
    src = Path(src)
    source: list[str] = []
    tc_path, stm_path, gc_path = (src / "tokenizer_config.json", src / "special_tokens_map.json",
                                  src / "generation_config.json")
    tc = _json_object(tc_path)
    if tc is not None:
        source.append(tc_path.name)
    else:
        tc = {}
    stm = _json_object(stm_path)
    if stm is not None and "added_tokens_decoder" not in tc:
        source.append(stm_path.name)
    toks = _special_tokens(tc_path, tc, stm, stm_path)

    templates = _templates(tc_path, tc.get("chat_template"))
    # template files, when present, replace every template entry of tokenizer_config.json
    files: dict[str, str] = {}
    jinja = src / "chat_template.jinja"
    if jinja.is_file():
        files["default"] = _read_text(jinja)
        source.append(jinja.name)
    extra_dir = src / "additional_chat_templates"
    if extra_dir.is_dir():
        for f in sorted(extra_dir.glob("*.jinja")):
            files[f.name.removesuffix(".jinja")] = _read_text(f)
            source.append(f"{extra_dir.name}/{f.name}")
    if files:
        templates = files

    gc = _json_object(gc_path)
    if gc is not None:
        source.append(gc_path.name)
    else:
        gc = {}
    gen_eos = _ids(gc_path, gc, "eos_token_id")
    gen_bos = _ids(gc_path, gc, "bos_token_id")
    if len(gen_bos) > 1:
        raise InputError(f"{gc_path}: field 'bos_token_id' = {gc['bos_token_id']!r} is not one token id")

    vocab = _vocab(src / "tokenizer.json")
    tok_eos = vocab(toks.get("eos_token"))
    tok_bos = vocab(toks.get("bos_token"))

    # generate() stops at generation_config's eos (config.json's when the file is absent); config.json's
    # and the tokenizer's eos are end-of-sequence ids too, kept after it (llama.cpp stops at eos and eot)
    eos: list[int] = []
    for i in (*gen_eos, *cfg.eos_token_ids, *([tok_eos] if tok_eos is not None else [])):
        if i not in eos:
            eos.append(int(i))
    bos = next((b for b in (gen_bos[0] if gen_bos else None, cfg.bos_token_id, tok_bos) if b is not None), None)
    return TokenizerSettings(
        bos_token_id=bos,
        add_bos_token=_bool(tc_path, tc, "add_bos_token", False),
        eos_token_ids=eos,
        chat_template=templates.get("default"),
        bos_token=toks.get("bos_token"),
        eos_token=toks.get("eos_token"),
        clean_up_tokenization_spaces=_bool(tc_path, tc, "clean_up_tokenization_spaces", False),
        source=source,
        chat_templates=templates if set(templates) != {"default"} else {},
        special_tokens=toks,
    )


def _vocab(path: Path):
    """token string -> id through tokenizer.json (added tokens included), or a lookup that finds
    nothing when the checkpoint has no tokenizer.json."""
    if not path.is_file():
        return lambda s: None
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # the library raises its own exception type for bad files
        raise InputError(f"{path}: not a valid tokenizer.json ({e})") from None
    return lambda s: None if s is None else tok.token_to_id(s)
