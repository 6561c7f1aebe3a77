"""Tokenizer and generation settings of Hugging Face checkpoints, chat templates and chats that stop.

The oracle for rendering, BOS and eos lists is transformers itself (AutoTokenizer.apply_chat_template,
GenerationConfig.from_pretrained) on tokenizer_config.json files shaped like the Hub's, with the
real-world templates of Meta-Llama-3-8B-Instruct, Qwen2 (ChatML), Mistral-7B-Instruct-v0.1
(raise_exception on bad roles) and Zephyr (multi-line: trim_blocks/lstrip_blocks), and one that
uses transformers' extra globals and filters. Generation runs on the shipped demo model compiled
from a copy that has a chat template.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import edgestream
from edgestream import cli
from edgestream.chat import messages_from, render_chat
from edgestream.compiler.frontends.hf_tokenizer import read_hf_tokenizer_settings
from edgestream.errors import InputError
from edgestream.ir import ModelConfig
from edgestream.tokenizer import Tokenizer, TokenizerSettings

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edgestream" / "data" / "tiny-bitnet"

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and "
    "assistant roles are supported!') }}{% endif %}{% endfor %}"
)
ZEPHYR = """{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>\n'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}"""
# transformers' own additions: tojson without HTML escaping (and its options), namespace, dict,
# loop controls, the {% generation %} tag, strftime_now
EXTRAS = """{%- set ns = namespace(n=0) -%}
{% for message in messages %}
    {% if message['role'] == 'stop' %}{% break %}{% endif %}
    {% set ns.n = ns.n + 1 %}
<|im_start|>{{ message['role'] }} {{ message | tojson }}
    {% if message['role'] == 'assistant' %}
{% generation %}{{ message['content'] }}{% endgeneration %}
    {% endif %}
<|im_end|>
{% endfor %}
{{ dict(count=ns.n) | tojson(indent=1, sort_keys=True) }} {{ strftime_now('%Y') }}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}"""

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>"] + [f"<|reserved_special_token_{i}|>" for i in range(4)] \
    + ["<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>"]  # ids 128000..128009
OTHER_SPECIALS = ["<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|user|>", "<|system|>", "<|assistant|>"]

CORPUS = ["Hello, how are you? I am fine, thank you. The weather is nice today and I'm happy.",
          "You are a helpful assistant. Tell me a story about a cat who lives in a little house.",
          "Once upon a time there was a friendly girl named Maya. She didn't give up!"]

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello, how are you?"}],
    "system": [{"role": "system", "content": "You are a helpful assistant."},
               {"role": "user", "content": "Tell me a story about a cat."}],
    "multi": [{"role": "user", "content": "  Hello  "}, {"role": "assistant", "content": "I am fine, thank you."},
              {"role": "user", "content": "The weather is nice today — schön, 天気."}],
}


def _bpe_tokenizer_json(path: Path, specials: list[str], first_special_id: int | None = None,
                        bos: str | None = None) -> None:
    """A byte-level BPE tokenizer.json as the `tokenizers` library writes it, trained on CORPUS.
    The vocab is padded with unreachable tokens so the specials land on `first_special_id` (Llama-3's
    128000); `bos` adds a TemplateProcessing post-processor that prepends it (Llama-3's layout)."""
    from tokenizers import AddedToken, decoders, models, pre_tokenizers, processors, trainers
    from tokenizers import Tokenizer as HFTokenizer

    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(
        vocab_size=500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    if first_special_id is not None:
        d = json.loads(tok.to_str())
        vocab = d["model"]["vocab"]
        for i in range(len(vocab), first_special_id):
            vocab[f"<unused{i}>"] = i
        tok = HFTokenizer.from_str(json.dumps(d))
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if bos is not None:
        bid = tok.token_to_id(bos)
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                          special_tokens=[(bos, bid)])])
    tok.save(str(path))


def _added_tokens_decoder(tok_json: Path) -> dict:
    d = json.loads(tok_json.read_text())
    return {str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
            for t in d["added_tokens"]}


@pytest.fixture(scope="module")
def llama3_dir(tmp_path_factory):
    """A Llama-3-Instruct-shaped tokenizer: specials at 128000.., BOS from the post-processor,
    tokenizer_config.json and generation_config.json as meta-llama ships them."""
    d = tmp_path_factory.mktemp("llama3")
    _bpe_tokenizer_json(d / "tokenizer.json", LLAMA3_SPECIALS, 128000, bos="<|begin_of_text|>")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": _added_tokens_decoder(d / "tokenizer.json"),
        "bos_token": "<|begin_of_text|>", "chat_template": LLAMA3, "clean_up_tokenization_spaces": True,
        "eos_token": "<|eot_id|>", "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 1000000000000000019884624838656, "tokenizer_class": "PreTrainedTokenizerFast"},
        indent=2))
    (d / "generation_config.json").write_text(json.dumps({
        "bos_token_id": 128000, "do_sample": True, "eos_token_id": [128001, 128008, 128009],
        "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.45.0.dev0"}, indent=2))
    (d / "config.json").write_text(json.dumps({"bos_token_id": 128000, "eos_token_id": 128009}))
    return d


def _other_dir(root: Path, name: str, template, eos: str = "</s>", **extra) -> Path:
    d = root / name
    d.mkdir()
    _bpe_tokenizer_json(d / "tokenizer.json", OTHER_SPECIALS)
    (d / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": _added_tokens_decoder(d / "tokenizer.json"), "bos_token": "<s>",
        "eos_token": eos, "unk_token": "<unk>", "chat_template": template, "tokenizer_class": "PreTrainedTokenizerFast",
        **extra}, indent=2))
    return d


def _cfg(**kw) -> ModelConfig:
    """config.json's ids as the HF frontend read them; the shape does not matter here."""
    return ModelConfig(arch="llama", vocab_size=128256, hidden_size=64, intermediate_size=128, num_layers=1,
                       num_heads=2, num_kv_heads=2, head_dim=32, rms_norm_eps=1e-5, rope_theta=5e5,
                       max_position=256, **kw)


def _ours(d: Path, cfg: ModelConfig | None = None) -> Tokenizer:
    return Tokenizer(d / "tokenizer.json", read_hf_tokenizer_settings(d, cfg or _cfg()))


def _theirs(d: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(d))


def _check_against_transformers(d: Path, conversations) -> None:
    ours, theirs = _ours(d), _theirs(d)
    for msgs in conversations:
        for agp in (True, False):
            want = theirs.apply_chat_template(msgs, tokenize=False, add_generation_prompt=agp)
            got = render_chat(ours.settings, msgs, add_generation_prompt=agp)
            assert got == want
            want_ids = theirs.apply_chat_template(msgs, tokenize=True, add_generation_prompt=agp)["input_ids"]
            assert ours.encode(got, add_special_tokens=False) == list(want_ids)


# ---- (a) rendering equals transformers' apply_chat_template


def test_llama3_template_matches_transformers(llama3_dir):
    _check_against_transformers(llama3_dir, CONVERSATIONS.values())
    ids = _ours(llama3_dir).encode(render_chat(_ours(llama3_dir).settings, CONVERSATIONS["system"]),
                                   add_special_tokens=False)
    # BOS written by the template once, not again by the post-processor; turns end in <|eot_id|>
    assert ids[0] == 128000 and ids.count(128000) == 1 and ids.count(128009) == 2


@pytest.mark.parametrize("name,template", [("chatml", CHATML), ("zephyr", ZEPHYR), ("extras", EXTRAS)])
def test_templates_match_transformers(tmp_path, name, template):
    d = _other_dir(tmp_path, name, template, eos="<|im_end|>" if name == "chatml" else "</s>")
    convs = list(CONVERSATIONS.values())
    if name == "extras":
        convs.append([{"role": "user", "content": "<b>&</b>", "reasoning": None},
                      {"role": "assistant", "content": "ok", "thinking": "hmm"},
                      {"role": "stop", "content": "x"}, {"role": "user", "content": "never"}])
    _check_against_transformers(d, convs)


def test_raise_exception_template(tmp_path):
    d = _other_dir(tmp_path, "mistral", MISTRAL)
    _check_against_transformers(d, [CONVERSATIONS["user"], CONVERSATIONS["multi"]])
    import jinja2

    for bad in (CONVERSATIONS["system"], [{"role": "assistant", "content": "hi"}]):
        with pytest.raises(jinja2.exceptions.TemplateError) as theirs:
            _theirs(d).apply_chat_template(bad, tokenize=False)
        with pytest.raises(InputError, match="chat template failed") as ours:
            render_chat(_ours(d).settings, bad)
        assert str(theirs.value) in str(ours.value)


def test_named_templates_and_jinja_file(tmp_path):
    """The list-of-named-templates form picks 'default' (and 'tool_use' with tools); a
    chat_template.jinja (what transformers 5 saves) replaces tokenizer_config.json's templates."""
    named = [{"name": "default", "template": CHATML}, {"name": "tool_use", "template": ZEPHYR}]
    d = _other_dir(tmp_path, "named", named)
    ours, theirs = _ours(d), _theirs(d)
    msgs = CONVERSATIONS["system"]
    assert render_chat(ours.settings, msgs) == theirs.apply_chat_template(msgs, tokenize=False,
                                                                          add_generation_prompt=True)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert render_chat(ours.settings, msgs, tools=tools) == theirs.apply_chat_template(
        msgs, tools=tools, tokenize=False, add_generation_prompt=True)
    assert set(ours.settings.chat_templates) == {"default", "tool_use"}

    saved = tmp_path / "saved"
    _theirs(_other_dir(tmp_path, "tosave", ZEPHYR)).save_pretrained(str(saved))
    assert (saved / "chat_template.jinja").is_file()
    tc = json.loads((saved / "tokenizer_config.json").read_text())
    tc["chat_template"] = CHATML  # ignored by transformers: the .jinja file wins
    (saved / "tokenizer_config.json").write_text(json.dumps(tc))
    _check_against_transformers(saved, [msgs])
    assert _ours(saved).settings.chat_template == ZEPHYR


# ---- BOS insertion and decode clean-up, as transformers does them


def test_bos_from_post_processor_not_twice(llama3_dir):
    ours, theirs = _ours(llama3_dir), _theirs(llama3_dir)
    for text in ("Hello, how are you?", "", "<|begin_of_text|>Hello"):
        assert ours.encode(text) == theirs(text)["input_ids"]
    assert ours.encode("Hello")[0] == 128000 and ours.encode("Hello").count(128000) == 1


def test_add_bos_token_without_post_processor(tmp_path):
    """add_bos_token true and a tokenizer.json that adds no special tokens: BOS is prepended (what
    llama.cpp and transformers 4.x's Llama/Gemma tokenizer classes do); false: nothing."""
    d = _other_dir(tmp_path, "nopost", CHATML, add_bos_token=True)
    tok = _ours(d)
    plain = tok.tok.encode("Hello", add_special_tokens=False).ids
    assert tok.encode("Hello") == [tok.token_to_id("<s>"), *plain]
    assert tok.encode("Hello", add_special_tokens=False) == plain  # chat prompts: the template decides
    tc = json.loads((d / "tokenizer_config.json").read_text())
    (d / "tokenizer_config.json").write_text(json.dumps({**tc, "add_bos_token": False}))
    assert _ours(d).encode("Hello") == plain == _theirs(d)("Hello")["input_ids"]


def test_clean_up_tokenization_spaces(tmp_path, llama3_dir):
    """transformers applies clean_up_tokenization_spaces in decode except for BPE models (Llama-3's
    config sets it true; transformers 5 skips it there). A WordLevel tokenizer gets it."""
    ours, theirs = _ours(llama3_dir), _theirs(llama3_dir)
    ids = theirs("Hello , how are you ? I 'm fine .", add_special_tokens=False)["input_ids"]
    assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True) == "Hello , how are you ? I 'm fine ."

    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    words = ["[UNK]", "hello", ",", "how", "are", "you", "?", "i", "'m", "fine", "."]
    wl = HFTokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    wl.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    d = tmp_path / "wordlevel"
    d.mkdir()
    wl.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({"clean_up_tokenization_spaces": True, "unk_token": "[UNK]",
                                                         "tokenizer_class": "PreTrainedTokenizerFast"}))
    ours, theirs = _ours(d), _theirs(d)
    ids = ours.encode("hello , how are you ? i 'm fine .")
    assert ours.decode(ids) == theirs.decode(ids) == "hello, how are you? i'm fine."
    from edgestream.tokenizer import StreamDecoder

    sd = StreamDecoder(ours)
    streamed = "".join(sd.push(i) for i in ids) + sd.flush()
    assert streamed == ours.decode(ids)


# ---- (b) generation_config.json eos lists


def test_generation_config_eos_list(llama3_dir):
    from transformers import GenerationConfig

    s = read_hf_tokenizer_settings(llama3_dir, _cfg(bos_token_id=128000, eos_token_ids=[128009]))
    want = GenerationConfig.from_pretrained(str(llama3_dir)).eos_token_id
    assert want == [128001, 128008, 128009]
    assert s.eos_token_ids == want  # config.json's 128009 and the tokenizer's <|eot_id|> already in it
    assert s.bos_token_id == 128000 and s.bos_token == "<|begin_of_text|>" and s.eos_token == "<|eot_id|>"
    assert s.source == ["tokenizer_config.json", "generation_config.json"]
    assert s.chat_template == LLAMA3 and s.clean_up_tokenization_spaces is True and s.add_bos_token is False
    assert TokenizerSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_eos_union_order(tmp_path):
    """An int eos in generation_config.json, config.json's list and the tokenizer's eos_token: one
    list, generation_config first, no repeats."""
    d = _other_dir(tmp_path, "eos", CHATML, eos="<|im_end|>")
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": 1}))
    s = read_hf_tokenizer_settings(d, _cfg(eos_token_ids=[5, 1]))
    im_end = Tokenizer(d / "tokenizer.json").token_to_id("<|im_end|>")
    assert s.eos_token_ids == [1, 5, im_end]


# ---- (e) bad files: one InputError naming the file and field


@pytest.mark.parametrize("name,content,match", [
    ("tokenizer_config.json", "{not json", "tokenizer_config.json: not valid JSON"),
    ("tokenizer_config.json", "[1, 2]", "tokenizer_config.json: expected a JSON object"),
    ("tokenizer_config.json", '{"add_bos_token": "yes"}', "tokenizer_config.json: field 'add_bos_token'"),
    ("tokenizer_config.json", '{"chat_template": 5}', "tokenizer_config.json: field 'chat_template'"),
    ("tokenizer_config.json", '{"chat_template": [{"name": "default"}]}', "json: field 'chat_template'"),
    ("tokenizer_config.json", '{"eos_token": 7}', "tokenizer_config.json: field 'eos_token'"),
    ("tokenizer_config.json", '{"bos_token": {"__type": "AddedToken"}}', "tokenizer_config.json: field 'bos_token'"),
    ("tokenizer_config.json", '{"clean_up_tokenization_spaces": 1}', "field 'clean_up_tokenization_spaces'"),
    ("generation_config.json", '{"eos_token_id": "2"}', "generation_config.json: field 'eos_token_id'"),
    ("generation_config.json", '{"eos_token_id": [1, -2]}', "generation_config.json: field 'eos_token_id'"),
    ("generation_config.json", '{"bos_token_id": [0, 1]}', "generation_config.json: field 'bos_token_id'"),
    ("generation_config.json", '{"eos_token_id": [1', "generation_config.json: not valid JSON"),
    ("chat_template.jinja", b"\xff\xfe{{", "chat_template.jinja: not UTF-8"),
])
def test_bad_files(tmp_path, name, content, match):
    src = tmp_path / "ck"
    shutil.copytree(DEMO, src)
    p = src / name
    p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)
    out = tmp_path / "m.esa"
    with pytest.raises(InputError, match=match) as e:
        edgestream.compile_model(src, out)
    assert str(p) in str(e.value)
    assert not out.exists() and not list(tmp_path.glob("m.esa*"))  # nothing half-written


def test_bad_template_is_input_error(tmp_path):
    s = TokenizerSettings(chat_template="{% for m in messages %}{{ m.content }")
    with pytest.raises(InputError, match="does not compile"):
        render_chat(s, messages_from("hi"))
    with pytest.raises(InputError, match="no chat template"):
        render_chat(TokenizerSettings(), messages_from("hi"))
    with pytest.raises(InputError, match="non-empty list"):
        render_chat(TokenizerSettings(chat_template="x"), [])


# ---- (c), (d) chats on the compiled demo model stop at the end-of-turn token

# A completion-style template: the assistant's turn ends in eos_token (</s>, id 1), which the demo
# model writes at the end of every story.
STORY = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
         "{{ message['content'] + ' ' }}{% elif message['role'] == 'user' %}{{ message['content'] }}"
         "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% else %}"
         "{{ raise_exception('unknown role ' + message['role']) }}{% endif %}{% endfor %}")


@pytest.fixture(scope="module")
def chat_demo(tmp_path_factory):
    """The demo model with a chat template, and config.json's eos moved to <pad> (id 2, never
    generated): only generation_config.json's list [2, 1] names </s>, so a chat that stops at it
    read that list."""
    d = tmp_path_factory.mktemp("chatdemo")
    src = d / "ck"
    shutil.copytree(DEMO, src)
    tc = json.loads((src / "tokenizer_config.json").read_text())
    (src / "tokenizer_config.json").write_text(json.dumps({**tc, "chat_template": STORY}, indent=2))
    cfg = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**cfg, "eos_token_id": 2}, indent=2))
    (src / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": [2, 1]}))
    art = edgestream.compile_model(src, d / "m.esa")
    return src, art


def test_chat_stops_at_end_of_turn(chat_demo, tmp_path):
    src, art = chat_demo
    sess = edgestream.load(art)
    assert sess.stop_token_ids == [2, 1]
    msgs = messages_from("Once upon a time")
    text, ids = sess.chat_prompt(msgs)
    assert text == "<s>Once upon a time" and ids[0] == 0 and ids.count(0) == 1
    toks = list(sess.chat(msgs, max_new_tokens=400))
    assert toks[-1] == 1 and 1 not in toks[:-1] and sess.stats.stop_reason == "stop_token"
    assert len(toks) < 400
    assert sess.tokenizer.decode(toks).endswith(".")
    # the same ids through generate(): chat() is the template path, nothing else
    assert list(sess.generate(ids, max_new_tokens=400)) == toks

    # an artifact without tokenizer settings (compiled before they existed) stops at config.json's
    # eos only: <pad> never comes, so the same prompt runs to the limit
    old = tmp_path / "old.esa"
    shutil.copytree(art, old)
    man = json.loads((old / "manifest.json").read_text())
    del man["tokenizer"]
    (old / "manifest.json").write_text(json.dumps(man))
    old_sess = edgestream.load(old)
    assert old_sess.stop_token_ids == [2]
    n = len(toks) + 5
    assert len(list(old_sess.generate(ids, max_new_tokens=n))) == n and old_sess.stats.stop_reason == "max_new_tokens"
    with pytest.raises(InputError, match="no chat template"):
        old_sess.chat_ids(msgs)


def test_cli_run_chat(chat_demo, capsys):
    _, art = chat_demo
    rc = cli.main(["run", str(art), "--chat", "Once upon a time", "--system", "One day,", "--max-new-tokens", "400",
                   "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["chat_prompt"] == "<s>One day, Once upon a time"
    assert out["stop_reason"] == "stop_token" and out["tokens"][-1] == 1
    sess = edgestream.load(art)
    assert out["prompt_ids"] == sess.chat_ids(messages_from("Once upon a time", "One day,"))
    assert out["tokens"] == list(sess.generate(out["prompt_ids"], max_new_tokens=400))

    rc = cli.main(["run", str(art), "--chat", "Once upon a time", "--max-new-tokens", "400"])
    streamed = capsys.readouterr().out
    assert rc == 0 and streamed.startswith(",") and streamed.rstrip("\n").endswith(".")


def test_cli_run_chat_errors(tmp_path, capsys):
    art = edgestream.compile_model(DEMO, tmp_path / "m.esa")  # the demo model ships no chat template
    assert cli.main(["run", str(art), "--chat", "hi"]) == 2
    err = capsys.readouterr().err
    assert "has no chat template" in err and "Traceback" not in err
    assert cli.main(["run", str(art), "--prompt", "hi", "--system", "s"]) == 2
    assert "--system goes with --chat" in capsys.readouterr().err
    assert cli.main(["run", str(art), "--prompt", "hi", "--chat", "hi"]) == 2
    assert "exactly one of" in capsys.readouterr().err
