"""GGUF vocabularies rebuilt as `tokenizers` tokenizers (compiler/frontends/gguf_tokenizer.py), held
against the real tokenizers they come from.

- sentencepiece (`tokenizer.ggml.model = llama`): tests/data/spm_bitnet.gguf was written by llama.cpp's
  own convert_hf_to_gguf.py (llama-cpp-python 0.3.36's vendored copy) from a tiny BitNet checkpoint
  with a sentencepiece tokenizer.model trained as Llama's is (tests/data/make_spm_bitnet_gguf.py
  regenerates both). The oracle is sentencepiece itself on that tokenizer.model.
- byte-level BPE (`gpt2`, Llama-3 style): a tokenizer.json shaped like Llama-3's (Split regex +
  ByteLevel, ignore_merges, TemplateProcessing inside a Sequence) -> our GGUF writer's vocabulary keys
  (edgestream.gguf_writer.add_tokenizer, convert_hf_to_gguf's _set_vocab_gpt2 layout) -> rebuilt; the
  oracle is the HF tokenizer.json through `tokenizers`.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import gguf
import pytest
import sentencepiece as spm  # the oracle (the `oracle` extra): missing, it fails rather than skips
from hypothesis import given
from hypothesis import strategies as st
from tokenizers import Tokenizer

import edgestream
from edgestream.compiler.frontends.gguf import load_gguf
from edgestream.compiler.frontends.gguf_reader import field, open_gguf
from edgestream.compiler.frontends.gguf_tokenizer import gguf_tokenizer_settings, tokenizer_from_gguf

DATA = Path(__file__).parent / "data"
SPM_GGUF = DATA / "spm_bitnet.gguf"
SPM_MODEL = DATA / "spm_bitnet.tokenizer.model"

TEXTS = [
    "Once upon a time a small board learned to count",
    " leading space", "   three leading spaces", "trailing space ", "two  inner  spaces",
    "line one\nline two\n\n\nthree newlines\r\nwindows", "\ttab\tseparated\t", "\n", " ", "",
    "Numbers 12345, 3.14159 and 2048", "def forward(self, x):\n    return self.norm(x)",
    "Naïve café in Zürich, crème brûlée, smørrebrød", "Γειά σου κόσμε. Привет, мир.",
    "bytes the vocabulary lacks: 日本語 🙂 € \u0301 \x00\x7f", "THE QUICK BROWN FOX! 'quotes' \"double\"",
    "zebra zebras Zebras", "▁ a literal metaspace ▁▁",
]


@pytest.fixture(scope="module")
def sp():
    return spm.SentencePieceProcessor(model_file=str(SPM_MODEL))


@pytest.fixture(scope="module")
def spm_tok():
    r = open_gguf(SPM_GGUF)
    return Tokenizer.from_file(str(tokenizer_from_gguf(r, SPM_GGUF)))


def test_fixture_is_the_converters(sp):
    r = open_gguf(SPM_GGUF)
    assert field(r, "tokenizer.ggml.model", SPM_GGUF) == "llama"
    assert field(r, "tokenizer.ggml.tokens", SPM_GGUF) == [sp.id_to_piece(i) for i in range(sp.vocab_size())]
    # no add_bos_token key: llama.cpp's default (true for sentencepiece) applies
    assert r.get_field("tokenizer.ggml.add_bos_token") is None


def test_spm_ids_equal_sentencepiece(sp, spm_tok):
    for s in TEXTS:
        ids = spm_tok.encode(s).ids
        assert ids == [1, *sp.encode(s)], s  # BOS, then sentencepiece's ids
        assert spm_tok.decode(ids) == sp.decode(ids)
        assert spm_tok.decode(ids) == s or "▁" in s  # a literal ▁ decodes as a space in sentencepiece too


@given(st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz ETAOIN\n\t.,'0123456789éü日🙂\u00a0")),
               max_size=60))
def test_spm_ids_equal_sentencepiece_drawn(sp, spm_tok, s):
    assert spm_tok.encode(s).ids == [1, *sp.encode(s)]
    assert spm_tok.decode(spm_tok.encode(s).ids) == s


def test_spm_special_tokens_in_text(sp, spm_tok):
    """Control tokens in the text are matched whole (llama.cpp with parse_special, as a chat template
    needs) and the text after one gets the prefix space again, as llama.cpp's SPM path adds it."""
    ids = spm_tok.encode("Hello</s><s>world").ids
    assert ids == [1, *sp.encode("Hello"), 2, 1, *sp.encode("world")]
    # the prefix space added after the special token decodes as a space (transformers' legacy Llama too)
    assert spm_tok.decode(ids) == "Hello world"


def _vocab_only(path: Path, src: Path, drop=(), **set_keys) -> Path:
    """A vocabulary-only copy of `src` (what convert_hf_to_gguf --vocab-only writes) with keys dropped
    or set (bool values), to exercise the metadata rules."""
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(path, field(r, "general.architecture", src))
    for key, f in r.fields.items():
        if not key.startswith("tokenizer.") or key in drop or key in set_keys:
            continue
        v = f.contents()
        if key == "tokenizer.ggml.scores":
            w.add_token_scores(v)
        elif key == "tokenizer.ggml.token_type":
            w.add_token_types(v)
        elif key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
            w.add_array(key, v)
        elif isinstance(v, str):
            w.add_string(key, v)
        else:
            w.add_uint32(key, v)
    for key, v in set_keys.items():
        w.add_bool(key, v)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _rebuilt(path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(tokenizer_from_gguf(open_gguf(path), path)))


def test_spm_metadata_flags(sp, tmp_path):
    k = "tokenizer.ggml."
    off = _rebuilt(_vocab_only(tmp_path / "nobos.gguf", SPM_GGUF, **{k + "add_bos_token": False}))
    assert off.encode("Hello world").ids == sp.encode("Hello world")
    eos = _rebuilt(_vocab_only(tmp_path / "eos.gguf", SPM_GGUF, **{k + "add_eos_token": True}))
    assert eos.encode("Hello world").ids == [1, *sp.encode("Hello world"), 2]
    nopre = _rebuilt(_vocab_only(tmp_path / "nopre.gguf", SPM_GGUF, **{k + "add_space_prefix": False}))
    enc = nopre.encode("Hello world")
    assert enc.tokens[1] != "▁" and not enc.tokens[1].startswith("▁")
    assert nopre.decode(enc.ids) == "Hello world"


def test_spm_settings():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_spm_bitnet_gguf", DATA / "make_spm_bitnet_gguf.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    CHAT_TEMPLATE = maker.CHAT_TEMPLATE
    r = open_gguf(SPM_GGUF)
    s = gguf_tokenizer_settings(r, SPM_GGUF, None)
    assert (s.bos_token_id, s.add_bos_token, s.eos_token_ids) == (1, True, [2])
    assert (s.bos_token, s.eos_token) == ("<s>", "</s>")
    assert s.chat_template == CHAT_TEMPLATE
    assert s.source == [SPM_GGUF.name]


def test_spm_compile_and_run(sp, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the converter writes no hidden_activation: SiLU, with a warning
        graph, tok_path, settings = load_gguf(SPM_GGUF)
        assert tok_path is not None and settings.add_bos_token
        art = edgestream.compile_model(SPM_GGUF, tmp_path / "spm.esa")
    from edgestream.cli import main

    capsys.readouterr()
    prompt = "Once upon a time, naïve 日本"
    assert main(["run", str(art), "--prompt", prompt, "--max-new-tokens", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prompt_ids"] == [1, *sp.encode(prompt)]


# --- Llama-3 style byte-level BPE ---------------------------------------------------------------

L3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
WHOLE_WORDS = ["Ġzebra", "Ġtokenizer", "ĠFPGA"]  # in the vocabulary, not reachable by the merges
# the training text: the fixture script, without the whole words (so no merge builds them)
CORPUS = re.sub(r"(?i)zebra|tokenizer|fpga", "", (DATA / "make_spm_bitnet_gguf.py").read_text(encoding="utf-8"))


def _llama3_tokenizer_json(path: Path) -> Path:
    """A tokenizer.json with Llama-3's structure: BPE trained on a corpus, ignore_merges, special tokens
    after the vocabulary, Split(llama3 regex) + ByteLevel, ByteLevel + TemplateProcessing(BOS $A).
    Like Llama-3's vocabulary it holds whole words its merges never build, where ignore_merges
    changes the ids."""
    from tokenizers import Regex, decoders, models, pre_tokenizers, processors, trainers

    from edgestream.compiler.frontends.gguf_tokenizer import LLAMA3_SPLIT

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=700, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS] * 3, trainer)
    tj = json.loads(tok.to_str())
    vocab = tj["model"]["vocab"]
    for w in WHOLE_WORDS:
        assert w not in vocab
        vocab[w] = len(vocab)
    tj["model"]["ignore_merges"] = True
    n = len(vocab)
    tj["added_tokens"] = [
        {"id": n + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, t in enumerate(L3_SPECIAL)
    ]
    bos = L3_SPECIAL[0]
    tj["post_processor"] = json.loads(processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1",
                                      special_tokens=[(bos, n)]),
    ]).__getstate__())
    tj["decoder"] = json.loads(decoders.ByteLevel().__getstate__())
    path.write_text(json.dumps(tj), encoding="utf-8")
    return path


def _bpe_gguf(path: Path, tj: Path, vocab_size: int, add_bos: bool | None) -> Path:
    from edgestream.gguf_writer import add_tokenizer

    w = gguf.GGUFWriter(path, "llama")
    add_tokenizer(w, tj, vocab_size)
    w.add_bos_token_id(vocab_size - 3)
    w.add_eos_token_id(vocab_size - 2)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if add_bos is None:  # an older file without the key
        path = _vocab_only(path.with_name("nokey-" + path.name), path, drop=("tokenizer.ggml.add_bos_token",))
    return path


@pytest.fixture(scope="module")
def llama3(tmp_path_factory):
    d = tmp_path_factory.mktemp("l3")
    tj = _llama3_tokenizer_json(d / "tokenizer.json")
    n = Tokenizer.from_file(str(tj)).get_vocab_size(with_added_tokens=True)
    return tj, n, d


L3_TEXTS = [" zebra zebra", "zebra zebra", " zebra zebras", "A tokenizer on an FPGA, a tokenizer!",
            " tokenizer tokenizer\n\n zebra", "It's 12345 o'clock; we'll see", "   indented\tcode()\n",
            "Naïve café 日本 🙂", "", "<|eot_id|> after a turn"]


@pytest.mark.parametrize("add_bos", [True, None])
def test_llama3_bpe_ids_equal_hf(llama3, add_bos):
    tj, n, d = llama3
    g = _bpe_gguf(d / f"l3-{add_bos}.gguf", tj, n, add_bos)
    r = open_gguf(g)
    assert field(r, "tokenizer.ggml.pre", g) == "llama-bpe"
    assert (r.get_field("tokenizer.ggml.add_bos_token") is None) == (add_bos is None)
    ours, hf = _rebuilt(g), Tokenizer.from_file(str(tj))
    for s in L3_TEXTS:
        assert ours.encode(s).ids == hf.encode(s).ids, s
        assert ours.encode(s).ids[0] == n - 3  # BOS kept (key true, or llama.cpp's llama-bpe default)
        assert ours.decode(ours.encode(s).ids) == hf.decode(hf.encode(s).ids)
    zebra = hf.token_to_id("Ġzebra")
    assert ours.encode(" zebra zebra").ids == [n - 3, zebra, zebra]
    s = gguf_tokenizer_settings(r, g, None)
    assert s.add_bos_token and s.bos_token_id == n - 3 and s.bos_token == "<|begin_of_text|>"
    # eos, then <|eot_id|> found by its text as llama.cpp does
    assert s.eos_token_ids == [n - 2, n - 1]


def test_llama3_without_ignore_merges_differs(llama3):
    """The vocabulary really needs ignore_merges: the same merges without it give other ids."""
    tj, _, _ = llama3
    d = json.loads(tj.read_text())
    d["model"]["ignore_merges"] = False
    plain = Tokenizer.from_str(json.dumps(d))
    assert plain.encode(" zebra zebra").ids != Tokenizer.from_file(str(tj)).encode(" zebra zebra").ids


def test_unsupported_pre_warns(llama3, tmp_path):
    tj, n, d = llama3
    g = _bpe_gguf(d / "l3-x.gguf", tj, n, True)
    bad = tmp_path / "pre.gguf"
    r = gguf.GGUFReader(g)
    w = gguf.GGUFWriter(bad, "llama")
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                "tokenizer.ggml.merges"):
        v = r.fields[key].contents()
        w.add_string(key, v) if isinstance(v, str) else (
            w.add_token_types(v) if key.endswith("token_type") else w.add_array(key, v))
    w.add_string("tokenizer.ggml.pre", "chatglm-bpe")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.warns(UserWarning, match=r"tokenizer.ggml.pre 'chatglm-bpe' is not supported"):
        assert tokenizer_from_gguf(open_gguf(bad), bad) is None


def test_a_killed_compiles_tokenizer_directory_is_removed(tmp_path, monkeypatch):
    """The rebuilt tokenizer.json lives in a temporary directory removed at exit; a compile killed before
    its atexit ran leaves it behind, so the next one removes the directories of processes that are gone."""
    import os
    import subprocess
    import sys
    import tempfile

    from edgestream.compiler.frontends import gguf_tokenizer as gt

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    dead = tmp_path / f"{gt.TMP_PREFIX}{p.pid}-x1"
    alive = tmp_path / f"{gt.TMP_PREFIX}{os.getppid()}-x2"
    other = tmp_path / f"{gt.TMP_PREFIX}noname"
    for d in (dead, alive, other):
        d.mkdir()
    gt._remove_orphans()
    assert not dead.exists() and alive.exists() and other.exists()
