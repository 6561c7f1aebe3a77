"""Chat prompts: a model's Jinja chat template rendered the way transformers'
`apply_chat_template` renders it (utils/chat_template_utils.py in transformers 5.x: the same sandboxed
environment, options, globals and filters), then encoded without adding special tokens again.

Used by `edgestream run --chat` and `Session.chat`; nothing here knows about sessions or the CLI, so a
chat loop reuses it turn by turn (render the whole history each turn, as transformers does)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np

from edgestream.errors import InputError
from edgestream.tokenizer import Tokenizer, TokenizerSettings

# transformers refuses older jinja2: they have known sandbox escapes, and templates are untrusted input
MIN_JINJA2 = (3, 1, 6)

# the names a message's reasoning travels under; templates read the first (transformers' aliasing)
_REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")


def messages_from(user: str, system: str | None = None) -> list[dict[str, str]]:
    """The conversation of one user turn, after an optional system prompt."""
    msgs = [] if system is None else [{"role": "system", "content": system}]
    return [*msgs, {"role": "user", "content": user}]


def select_template(settings: TokenizerSettings | None, where: str, name: str | None = None,
                    tools: list | None = None) -> str:
    """The template transformers' get_chat_template picks: a named one, `tool_use` when tools are
    given and the model has it, else the default."""
    if settings is None:
        raise InputError(f"{where}: no chat template (compiled without tokenizer settings; recompile it "
                         f"with this edgestream, or use --prompt)")
    named = settings.chat_templates
    if name is not None:
        if name in named:
            return named[name]
        if name == "default" and settings.chat_template is not None:
            return settings.chat_template
        raise InputError(f"{where}: no chat template named {name!r} (has {', '.join(sorted(named)) or 'none'})")
    if tools is not None and "tool_use" in named:
        return named["tool_use"]
    if settings.chat_template is not None:
        return settings.chat_template
    if named:
        raise InputError(f"{where}: several chat templates and none is the default "
                         f"({', '.join(sorted(named))}); name one")
    raise InputError(f"{where}: the model has no chat template (tokenizer_config.json / chat_template.jinja / "
                     f"GGUF tokenizer.chat_template); use --prompt")


def render_chat(settings: TokenizerSettings | None, messages: list[dict], *, where: str = "the model",
                add_generation_prompt: bool = True, template: str | None = None, **kwargs: Any) -> str:
    """The prompt text of `messages`, as apply_chat_template(tokenize=False) gives it. Extra keyword
    arguments become template variables (they win over the special tokens, as in transformers)."""
    source = template if template is not None else select_template(settings, where, tools=kwargs.get("tools"))
    compiled = _compile(source, where)
    msgs = _alias_reasoning(_plain(_normalize(messages)))
    variables = {**(settings.template_tokens() if settings else {}), **kwargs}
    variables = _plain(variables)
    variables.setdefault("tools", None)
    variables.setdefault("documents", None)
    try:
        return compiled.render(messages=msgs, add_generation_prompt=add_generation_prompt, **variables)
    except Exception as e:  # a template is input: whatever it raises (raise_exception, a type error) is the model's
        raise InputError(f"{where}: the chat template failed: {e}") from None


def encode_chat(tokenizer: Tokenizer, messages: list[dict], *, where: str = "the model",
                add_generation_prompt: bool = True, **kwargs: Any) -> tuple[str, list[int]]:
    """(prompt text, ids): apply_chat_template(tokenize=True). The template wrote BOS and the turn
    markers itself, so the text is encoded without special tokens (no post-processor BOS)."""
    text = render_chat(tokenizer.settings, messages, where=where, add_generation_prompt=add_generation_prompt,
                       **kwargs)
    return text, tokenizer.encode(text, add_special_tokens=False)


def _normalize(messages: Any) -> list[dict]:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InputError("a chat needs a non-empty list of messages ({'role': ..., 'content': ...})")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise InputError(f"message {i}: expected a dict with 'role' and 'content', got {type(m).__name__}")
        # transformers drops None values: templates handle a missing key, not a literal None
        out.append({k: v for k, v in m.items() if v is not None})
    return out


def _plain(value: Any) -> Any:
    """Template data rebuilt from JSON types only (transformers' _plain_template_data): objects with
    methods never reach the sandbox."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.generic):  # np.bool_(False) must not become a truthy placeholder
        return _plain(value.item())
    return f"<{type(value).__name__}>"


def _alias_reasoning(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        r = next((m[k] for k in _REASONING_FIELDS if m.get(k) is not None), None)
        out.append(m if r is None else {"thinking": r, **m, "reasoning_content": r})
    return out


def _compile(source: str, where: str):
    try:
        return _compiled(source)
    except ImportError as e:
        raise InputError(str(e)) from None
    except Exception as e:  # TemplateSyntaxError and friends: the template is the model's input
        raise InputError(f"{where}: the chat template does not compile: {e}") from None


@lru_cache(maxsize=16)
def _compiled(source: str):
    return _environment().from_string(source)


@lru_cache(maxsize=1)
def _environment():
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if tuple(int(x) for x in jinja2.__version__.split(".")[:3] if x.isdigit()) < MIN_JINJA2:
        raise ImportError(f"chat templates need jinja2>=3.1.6 (older versions have sandbox escapes); "
                          f"found {jinja2.__version__}")

    class Generation(jinja2.ext.Extension):
        # transformers' AssistantTracker tag `{% generation %}...{% endgeneration %}` marks the
        # assistant's tokens for training masks; rendering passes the body through unchanged
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # jinja's own tojson escapes HTML characters; transformers' does not, and takes these options
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    class TemplateDict:
        # `dict(...)` without attribute access to the real class
        def __call__(self, *args, **kwargs):
            return dict(*args, **kwargs)

        def fromkeys(self, *args, **kwargs):
            return dict.fromkeys(*args, **kwargs)

    class TemplateNamespace(jinja2.utils.Namespace):
        # a namespace that refuses underscore attributes (no path to CPython internals)
        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                TemplateNamespace._check_name(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name, value):
            TemplateNamespace._check_name(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check_name(name):
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(
                    f"chat templates cannot store underscore-prefixed attributes on a namespace ({name!r})")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = TemplateDict()
    env.globals["namespace"] = TemplateNamespace
    return env
