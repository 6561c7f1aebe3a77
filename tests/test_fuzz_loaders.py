"""Loaders fuzzed: hypothesis mutations of real files (safetensors headers, config.json and the
tokenizer/generation settings beside it, ONNX protobufs, GGUF headers and metadata), written by the
real writers, fed to the public entry points `edgestream compile` and `edgestream inspect` (cli.main,
which is compile_model plus the error printing).

Every example must end in one of two ways: success (an artifact that loads with its checksums and,
for a decoder LM, runs a forward pass to finite logits; `inspect` prints JSON), or exit code 2 with one
error line that names the file, no traceback, and nothing left behind (no output directory, no
temporary sibling). Any other exception escapes cli.main and fails the example. A watchdog alarm per
example turns a hang into a failure (the profile's deadline is off, so a slow loaded machine does not
fail a correct example; a real hang does not end at all). Bugs these tests found are pinned as
@example rows (the final report lists them).

Oracles where the format has an independent reader: a safetensors file is accepted by
SafetensorsFile exactly when the safetensors crate (`safetensors.safe_open`) accepts it, except for
the crate's dtypes we do not read (refused by name) and duplicate JSON keys (refused; the crate keeps
the last). An ONNX file onnx.checker refuses is refused by us too.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import signal
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edgestream.cli import main
from edgestream.synth import Shape, make_checkpoint

# small models, so one example compiles in tens of milliseconds
TINY = Shape(layers=1, hidden=32, ffn=64, heads=4, kv_heads=2, vocab=48, max_position=64)
HANG_S = 30  # no example of these tiny files takes a second; thirty means a hang
# 40 examples per loader keep the file well under a minute on two busy cores; when hunting, e.g.
# HYPOTHESIS_PROFILE=explore FUZZ_EXAMPLES=2000 (fresh random examples, many more of them)
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def pin(cases):
    """@example for every case (keyword arguments of the test): the inputs of bugs these tests found,
    run first, every run."""
    cases = list(cases)

    def deco(f):
        for kw in reversed(cases):
            f = example(**kw).via("bug found by this file")(f)
        return f

    return deco


class Files(dict):
    """Fixture file bytes by name, printed by name only in a failing example's report."""

    def __repr__(self) -> str:
        return f"Files({', '.join(self)})"


class Hang(Exception):
    pass


@contextlib.contextmanager
def watchdog(seconds: int = HANG_S):
    def fire(signum, frame):
        raise Hang(f"no result after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with watchdog(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def _one_error(cmd: str, err: str, names: tuple[str, ...]) -> str:
    """The one error line of a failed command (warnings before it are allowed), naming a file."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if not ln.startswith(f"edgestream {cmd}: warning:")]
    assert len(lines) == 1 and lines[0].startswith(f"edgestream {cmd}: error: "), err
    assert any(n in lines[0] for n in names), (names, err)
    return lines[0]


def outcome(src: Path, names: tuple[str, ...], lm: bool = True, check=None) -> str | None:
    """Compile and inspect `src`; None when compiling succeeded, else the error line. `names`: the
    file names one of which the error must contain; `check(artifact)` runs on a compiled artifact."""
    out = src.parent / "out.esa"
    rc, _, err = cli("compile", src, "-o", out)
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(out.name)]
    if rc == 0:
        import edgestream
        from edgestream.artifact import read_artifact

        read_artifact(out, verify_checksums=True)
        if check is not None:
            check(out)
        if lm:  # numpy kernel: the C kernel's own input contract is not what this file tests
            with watchdog():
                logits = edgestream.load(out, kernel="numpy").forward([0])
            assert np.all(np.isfinite(logits)), "a compiled model gives non-finite logits"
        shutil.rmtree(out)
        msg = None
    else:
        assert rc == 2, (rc, err)
        msg = _one_error("compile", err, names)
        assert not out.exists() and not leftovers, leftovers
    rc, text, err = cli("inspect", src, "--json")
    if rc == 0:
        json.loads(text)
    else:
        assert rc == 2, (rc, err)
        _one_error("inspect", err, names)
    return msg


@pytest.fixture(scope="module")
def work():
    # tmpfs where there is one: a compiled artifact is fsynced, which on a loaded disk costs more than
    # the compile
    shm = Path("/dev/shm")
    d = Path(tempfile.mkdtemp(prefix="fuzz-loaders-", dir=shm if shm.is_dir() else None))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def fresh(work: Path, src: Path | str):
    """A private copy of fixture `src` (a checkpoint directory, or a file name to create) for one
    example, removed afterwards."""
    d = Path(tempfile.mkdtemp(dir=work))
    try:
        if isinstance(src, Path):
            shutil.copytree(src, d / src.name)
        yield d / (src.name if isinstance(src, Path) else src)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# any JSON value, the ones loaders trip over weighted in
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**64, 10**30, 0.5, -0.0, 1e308, math.nan, math.inf, -math.inf]),
    st.floats(allow_nan=True), st.text(max_size=8), st.sampled_from(["", "F32", "bitnet", "true", "0"]),
)
JSON = st.recursive(JSON_SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c,
                                                                                         max_size=3), max_leaves=6)


# ---- safetensors ------------------------------------------------------------------------------
# A mutation is a plain value (kind, tensor index, argument), applied to the fixture inside the test,
# so that a bug's input can be pinned with @example.
@pytest.fixture(scope="module")
def hf_ck(work):
    return make_checkpoint(work / "ck", TINY, seed=3, tokenizer=False)


def st_parts(path: Path) -> tuple[dict, bytes]:
    b = path.read_bytes()
    (n,) = struct.unpack("<Q", b[:8])
    return json.loads(b[8 : 8 + n]), b[8 + n :]


def st_bytes(header, data: bytes) -> bytes:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # safetensors pads the header to 8 bytes with spaces
    return struct.pack("<Q", len(h)) + h + data


ST_KINDS = ("length", "length_delta", "truncate", "append", "header_byte", "raw_header", "duplicate", "root",
            "dtype", "shape", "offsets", "entry", "drop_key", "metadata", "reorder", "swap")
OFFSET_SPECS = st.one_of(
    st.tuples(st.sampled_from(["shift", "begin", "end"]), st.integers(-64, 64)),
    st.tuples(st.sampled_from(["copy", "copy_begin"]), st.integers(0, 20)),
    st.tuples(st.sampled_from(["swap_ends", "past_end", "wrap", "float", "three", "one"])),
    st.tuples(st.just("literal"), JSON),
)
ST_ARGS = {
    "length": st.integers(0, 2**64 - 1) | st.sampled_from([2**63, 10**8, 10**8 + 1]),
    "length_delta": st.integers(-16, 16),
    "truncate": st.integers(0, 1 << 20),
    "append": st.binary(min_size=1, max_size=16),
    "header_byte": st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
    "raw_header": st.sampled_from([b"", b"{", b"[" * 5000, b"\xff\xfe", b'{"a": 1e999}', b"{} trailing",
                                   b'{"__metadata__": {"k": "v"}}']),
    "duplicate": st.none(),
    "root": JSON.filter(lambda v: not isinstance(v, dict)),
    "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", "U8", "I64", "BOOL", "F8_E4M3", "U64", "C64", "f32", ""])
    | JSON,
    "shape": st.lists(st.integers(-2, 70), max_size=3) | st.sampled_from([("reverse",), ("append1",), ("double",),
                                                                          [2**40, 2**40, 2**40], [math.nan]]) | JSON,
    "offsets": OFFSET_SPECS,
    "entry": JSON,
    "drop_key": st.sampled_from(["dtype", "shape", "data_offsets"]),
    "metadata": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3) | JSON,
    "reorder": st.none(),
    "swap": st.integers(0, 20),
}
ST_EDITS = st.sampled_from(ST_KINDS).flatmap(
    lambda k: st.tuples(st.just(k), st.integers(0, 20), ST_ARGS[k]))


def st_apply(header: dict, data: bytes, edit) -> bytes:
    """The bytes of the safetensors file (header, data) after `edit`."""
    kind, i, arg = edit
    names = sorted(k for k in header if k != "__metadata__")
    name = names[i % len(names)]
    h = json.loads(json.dumps(header))
    raw = st_bytes(header, data)
    if kind == "length":
        return struct.pack("<Q", arg) + raw[8:]
    if kind == "length_delta":
        return struct.pack("<Q", max(0, len(raw) - len(data) - 8 + arg)) + raw[8:]
    if kind == "truncate":
        return raw[: arg % len(raw)]
    if kind == "append":
        return raw + arg
    if kind == "header_byte":
        pos = 8 + arg[0] % (len(raw) - len(data) - 8)
        return raw[:pos] + bytes([arg[1]]) + raw[pos + 1 :]
    if kind == "raw_header":
        return st_bytes(arg, data)
    if kind == "duplicate":
        text = json.dumps(h)
        return st_bytes(text[:-1].encode() + b", " + json.dumps({name: h[name]}).encode()[1:], data)
    if kind == "root":
        return st_bytes(json.dumps(arg).encode(), data)
    if kind == "dtype":
        h[name]["dtype"] = arg
    elif kind == "shape":
        shape = h[name]["shape"]
        h[name]["shape"] = {("reverse",): shape[::-1], ("append1",): [*shape, 1],
                            ("double",): [d * 2 for d in shape]}.get(tuple(arg) if isinstance(arg, tuple) else
                                                                     None, arg)
    elif kind == "offsets":
        b, e = h[name]["data_offsets"]
        op, *v = arg
        other = h[names[v[0] % len(names)]]["data_offsets"] if op in ("copy", "copy_begin") else None
        h[name]["data_offsets"] = {
            "shift": lambda: [b + v[0], e + v[0]], "begin": lambda: [b + v[0], e], "end": lambda: [b, e + v[0]],
            "copy": lambda: other, "copy_begin": lambda: [other[0], other[0] + e - b], "swap_ends": lambda: [e, b],
            "past_end": lambda: [len(data), len(data) + e - b], "wrap": lambda: [2**64 + b, 2**64 + e],
            "float": lambda: [float(b), float(e)], "three": lambda: [b, e, e], "one": lambda: [b],
            "literal": lambda: v[0],
        }[op]()
    elif kind == "entry":
        h[name] = arg
    elif kind == "drop_key":
        del h[name][arg]
    elif kind == "metadata":
        h["__metadata__"] = arg
    elif kind == "reorder":
        h = dict(reversed(list(h.items())))
    elif kind == "swap":  # two tensors of one dtype and shape exchange places: a valid file, other weights
        other = names[arg % len(names)]
        if h[other]["dtype"] == h[name]["dtype"] and h[other]["shape"] == h[name]["shape"]:
            h[name]["data_offsets"], h[other]["data_offsets"] = h[other]["data_offsets"], h[name]["data_offsets"]
    return st_bytes(h, data)


def crate_accepts(path: Path) -> tuple[bool, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "np") as f:
            f.keys()
    except Exception as e:  # noqa: BLE001 -- the crate raises SafetensorError and others
        return False, str(e)
    return True, ""


# Bugs found (edgestream/safetensors_io.py before this file; tensor 0 is lm_head.weight, 1
# model.embed_tokens.weight, both [48, 32] F32):
ST_BUGS = [
    ("root", 0, []),  # header a JSON list: AttributeError ('list' has no attribute 'pop')
    ("root", 0, 273830),  # header a number: AttributeError
    ("dtype", 2, []),  # unhashable dtype: TypeError
    ("shape", 1, ""),  # shape a string: ValueError from np.prod
    ("shape", 1, [[1], 2]),  # nested shape: ValueError (sequence)
    ("offsets", 0, ("literal", ["a", "b"])),  # TypeError str - str
    ("offsets", 0, ("literal", [0, {}])),  # TypeError int - dict
    ("offsets", 0, ("float",)),  # float offsets: accepted, then seek(float) TypeError when read
    ("offsets", 0, ("shift", -8)),  # begin -8: accepted, lm_head read 8 bytes of the JSON header
    ("offsets", 1, ("copy", 0)),  # embed_tokens overlaps lm_head: accepted, the embedding read lm_head's bytes
    ("append", 0, b"\0" * 8),  # bytes after the last tensor: accepted (the crate refuses)
    ("raw_header", 0, b"[" * 5000),  # deep nesting: RecursionError
    ("metadata", 0, {"a": 1}),  # __metadata__ values not strings: accepted (the crate refuses)
    ("metadata", 0, [1]),  # __metadata__ not an object: accepted
]


@FUZZ
@given(edit=ST_EDITS)
@pin(dict(edit=e) for e in ST_BUGS)
def test_safetensors_header_mutations(hf_ck, work, edit):
    """SafetensorsFile accepts exactly what the safetensors crate accepts (but for the crate's dtypes
    we do not read and duplicate keys, both refused by name); compile and inspect end cleanly."""
    from edgestream.errors import InputError
    from edgestream.safetensors_io import SafetensorsFile

    header, blob = st_parts(hf_ck / "model.safetensors")
    with fresh(work, hf_ck) as src:
        f = src / "model.safetensors"
        f.write_bytes(st_apply(header, blob, edit))
        ok, why = crate_accepts(f)
        try:
            SafetensorsFile(f)
            ours = None
        except InputError as e:
            ours = str(e)
            assert "model.safetensors" in ours and "\n" not in ours, ours
        if ours is None:
            assert ok, f"the safetensors crate refuses the file ({why}), we read it"
        elif ok:
            assert "unsupported dtype" in ours or "appears twice" in ours, \
                f"the safetensors crate reads the file, we refuse it: {ours}"
        outcome(src, (str(src),))  # the file, or the checkpoint for a tensor renamed away


# ---- config.json ------------------------------------------------------------------------------
CONFIG_FIELDS = ("architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                 "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings",
                 "rms_norm_eps", "rope_theta", "rope_parameters", "rope_scaling", "tie_word_embeddings",
                 "bos_token_id", "eos_token_id", "attention_bias", "mlp_bias", "quantization_config")
SIZE_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "max_position_embeddings")
NESTED = (("quantization_config", "rope_parameters", "rope_scaling"),
          ("quant_method", "linear_class", "quantization_mode", "rope_type", "type", "rope_theta", "factor"))
CONFIG_OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(CONFIG_FIELDS), JSON),
    st.tuples(st.just("set"), st.sampled_from(SIZE_FIELDS), st.integers(-2, 2) | st.sampled_from([2**31, 2**63,
                                                                                                   10**30])),
    st.tuples(st.just("set"), st.sampled_from(["num_attention_heads", "num_key_value_heads"]), st.integers(1, 40)),
    st.tuples(st.just("drop"), st.sampled_from(CONFIG_FIELDS)),
    st.tuples(st.just("nested"), st.sampled_from(NESTED[0]), st.sampled_from(NESTED[1]), JSON),
)
CONFIG_EDITS = st.one_of(
    st.lists(CONFIG_OPS, min_size=1, max_size=2),
    st.tuples(st.just("root"), JSON.filter(lambda v: not isinstance(v, dict))),
    st.tuples(st.just("text"), st.integers(0, 1 << 12), st.sampled_from(["", "\udcff", "\x00", "}", "NaN", "1e999"])),
)


def config_apply(cfg: dict, edit) -> bytes:
    """The bytes of config.json after `edit`: a list of field operations, or a whole-file edit."""
    if isinstance(edit, tuple) and edit[0] == "root":
        return json.dumps(edit[1]).encode()
    if isinstance(edit, tuple) and edit[0] == "text":
        text = json.dumps(cfg)
        i = edit[1] % len(text)
        return (text[:i] + edit[2] + text[i + 1 :]).encode("utf-8", "surrogateescape")
    cfg = json.loads(json.dumps(cfg))
    for op in edit:
        if op[0] == "set":
            cfg[op[1]] = op[2]
        elif op[0] == "drop":
            cfg.pop(op[1], None)
        else:
            cfg[op[1]] = {**(cfg.get(op[1]) if isinstance(cfg.get(op[1]), dict) else {}), op[2]: op[3]}
    return json.dumps(cfg).encode()


def sane_model(art: Path) -> None:
    """A compiled decoder's settings describe a model that can exist."""
    m = json.loads((art / "manifest.json").read_text())["model"]
    for k in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads",
              "head_dim", "max_position"):
        assert type(m[k]) is int and m[k] >= 1, (k, m[k])
    assert m["num_heads"] % m["num_kv_heads"] == 0 and m["head_dim"] % 2 == 0, m
    assert math.isfinite(m["rope_theta"]) and m["rope_theta"] > 0, m
    assert math.isfinite(m["rms_norm_eps"]) and m["rms_norm_eps"] >= 0, m
    assert type(m["tie_word_embeddings"]) is bool, m
    ids = m["eos_token_ids"] + ([] if m["bos_token_id"] is None else [m["bos_token_id"]])
    assert all(type(i) is int and i >= 0 for i in ids), m


@pytest.fixture(scope="module")
def hf_packed(work):
    return make_checkpoint(work / "pk", TINY, seed=4, packed=True, tokenizer=False)


# Bugs found (compiler/frontends/hf.py read_config before this file):
CONFIG_BUGS = [
    ([("set", "num_key_value_heads", 0)], True),  # ZeroDivisionError (heads % kv)
    ([("set", "num_hidden_layers", -2)], False),  # compiled a model without layers
    ([("set", "num_hidden_layers", 0)], False),  # the same
    ([("set", "architectures", ["F32", [{"x": 1}]])], False),  # unhashable list item: TypeError
    ([("drop", "architectures"), ("set", "model_type", [])], False),  # unhashable model_type: TypeError
    ([("set", "rope_theta", math.inf)], True),  # JSON Infinity accepted: NaN RoPE tables
    ([("set", "rope_theta", math.nan)], False),  # the same with NaN
    ([("set", "rms_norm_eps", -1.0)], False),  # a negative epsilon accepted
    ([("set", "max_position_embeddings", 2**31)], True),  # RoPE tables of 2**31 rows: the compile never ends
    ([("set", "max_position_embeddings", 10**30)], True),  # ValueError from numpy (maximum allowed size exceeded)
    ([("set", "max_position_embeddings", 2**63)], False),  # empty RoPE tables compiled, IndexError at the first token
    ([("set", "tie_word_embeddings", "false")], False),  # bool("false") is True: lm_head.weight silently dropped
    ([("set", "eos_token_id", -5)], False),  # a negative token id accepted
    ([("drop", "num_hidden_layers")], False),  # default 30 layers: "checkpoint: tensor ... is missing" named no file
]


@FUZZ
@given(edit=CONFIG_EDITS, packed=st.booleans())
@pin(dict(edit=e, packed=packed) for e, packed in CONFIG_BUGS)
def test_config_json_mutations(hf_ck, hf_packed, work, edit, packed):
    base = hf_packed if packed else hf_ck
    cfg = json.loads((base / "config.json").read_text())
    with fresh(work, base) as src:
        (src / "config.json").write_bytes(config_apply(cfg, edit))
        msg = outcome(src, (str(src),), check=sane_model)  # config.json, or a file its settings contradict
        if edit == [("set", "tie_word_embeddings", "false")]:
            assert "tie_word_embeddings" in msg, msg


# ---- tokenizer and generation settings beside config.json -----------------------------------------
@pytest.fixture(scope="module")
def hf_tok(work):
    """A checkpoint with tokenizer.json, and tokenizer_config.json, chat_template.jinja and
    generation_config.json as transformers' own save_pretrained writes them."""
    from transformers import GenerationConfig, PreTrainedTokenizerFast

    ck = make_checkpoint(work / "tk", TINY, seed=5, tokenizer=True)
    t = PreTrainedTokenizerFast(tokenizer_file=str(ck / "tokenizer.json"), bos_token="<s>", eos_token="</s>",
                                add_bos_token=True)
    t.chat_template = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    t.save_pretrained(ck)
    GenerationConfig(bos_token_id=0, eos_token_id=[1, 0]).save_pretrained(ck)
    assert {p.name for p in ck.iterdir()} >= {"tokenizer_config.json", "generation_config.json",
                                              "chat_template.jinja"}
    return ck


TOKENIZER_FIELDS = {
    "tokenizer_config.json": ("add_bos_token", "bos_token", "eos_token", "unk_token", "pad_token", "chat_template",
                              "clean_up_tokenization_spaces", "added_tokens_decoder", "extra_special_tokens",
                              "eot_token"),
    "generation_config.json": ("bos_token_id", "eos_token_id", "pad_token_id"),
    "tokenizer.json": ("model", "added_tokens", "post_processor", "pre_tokenizer", "decoder", "normalizer"),
}
TOKEN_VALUES = JSON | st.fixed_dictionaries({"__type": st.just("AddedToken"), "content": JSON})
SETTINGS_EDITS = st.one_of(
    st.tuples(st.sampled_from(sorted(TOKENIZER_FIELDS)), st.just("set"), st.integers(0, 20), TOKEN_VALUES),
    st.tuples(st.sampled_from(sorted(TOKENIZER_FIELDS)), st.just("drop"), st.integers(0, 20), st.none()),
    st.tuples(st.sampled_from(sorted(TOKENIZER_FIELDS)), st.just("root"), st.just(0),
              JSON.filter(lambda v: not isinstance(v, dict))),
    st.tuples(st.sampled_from([*TOKENIZER_FIELDS, "chat_template.jinja"]), st.just("byte"), st.integers(0, 1 << 16),
              st.sampled_from([b"\xff", b"\x00", b"{{", b"{%", b"}"])),
    st.tuples(st.sampled_from([*TOKENIZER_FIELDS, "chat_template.jinja"]), st.just("truncate"),
              st.integers(0, 1 << 16), st.none()),
)


def settings_apply(raw: bytes, fname: str, edit) -> bytes:
    _, kind, i, arg = edit
    if kind == "truncate":
        return raw[: i % len(raw)]
    if kind == "byte":
        i %= len(raw)
        return raw[:i] + arg + raw[i + 1 :]
    if kind == "root":
        return json.dumps(arg).encode()
    d = json.loads(raw)
    keys = TOKENIZER_FIELDS[fname]
    if kind == "drop":
        d.pop(keys[i % len(keys)], None)
    else:
        d[keys[i % len(keys)]] = arg
    return json.dumps(d).encode()


@FUZZ
@given(edit=SETTINGS_EDITS)
def test_tokenizer_settings_mutations(hf_tok, work, edit):
    fname = edit[0]
    with fresh(work, hf_tok) as src:
        (src / fname).write_bytes(settings_apply((hf_tok / fname).read_bytes(), fname, edit))
        outcome(src, (fname, str(src)), check=sane_model)


# ---- ONNX -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_files(work):
    """Quantized models as tests/test_onnx.py builds them: an MLP quantized by onnxruntime (QOperator,
    QDQ per channel, dynamic) and a QONNX (Brevitas-style) MLP."""
    import onnx
    from test_onnx import N, _model, _qonnx_pair, _quantize

    rng = np.random.default_rng(0)
    w = {"W1": rng.standard_normal((16, 32)) * 0.3, "b1": rng.standard_normal(32) * 0.1,
         "W2": rng.standard_normal((32, 8)) * 0.3, "b2": rng.standard_normal(8) * 0.1}
    w = {k: v.astype(np.float32) for k, v in w.items()}
    nodes = [N("MatMul", ["x", "W1"], ["h0"]), N("Add", ["h0", "b1"], ["h1"]), N("Relu", ["h1"], ["h2"]),
             N("Gemm", ["h2", "W2", "b2"], ["y"], transB=0)]
    d = work / "onnx"
    d.mkdir()
    onnx.save(_model(nodes, w, ["N", 16], ["N", 8]), d / "mlp.onnx")
    files = [_quantize(d / "mlp.onnx", kind, d / f"{kind}.onnx")
             for kind in ("qoperator-u8s8", "qdq-perchannel-u8s8", "dynamic-s8")]
    files.append(_qonnx_pair(d)[0])
    return Files({p.stem: p.read_bytes() for p in files})


ONNX_NAMES = ("brevitas", "dynamic-s8", "qdq-perchannel-u8s8", "qoperator-u8s8")
ATTR_NAMES = ("axis", "transB", "to", "alpha", "perm", "signed", "narrow", "rounding_mode", "saturate")
ATTR_VALUES = st.sampled_from([1.5, "x", [1, 2], 7, -1, 0, 1, [0.5]])
IDX = st.integers(0, 40)
ONNX_EDITS = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1,
                                        max_size=4)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16)),
    st.tuples(st.just("drop_init"), IDX),
    st.tuples(st.just("rename_input"), IDX, IDX, st.sampled_from(["", "nope", "y", "x"])),
    st.tuples(st.just("attr"), IDX, st.sampled_from(ATTR_NAMES) | st.none(), ATTR_VALUES),
    st.tuples(st.just("drop_attr"), IDX, IDX),
    st.tuples(st.just("dims"), IDX, st.lists(st.integers(-1, 40), max_size=3) | st.sampled_from(["reverse",
                                                                                                  "append1"])),
    st.tuples(st.just("dtype"), IDX, st.sampled_from([0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 16, 17, 40, 99])),
    st.tuples(st.just("op_type"), IDX, st.sampled_from([
        "MatMul", "Gemm", "Add", "Relu", "QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "MatMulInteger",
        "DynamicQuantizeLinear", "Cast", "Reshape", "Softmax", "Quant", "QLinearAdd", "QGemm", "Constant"])),
    st.tuples(st.just("bad_utf8"), IDX),
    st.tuples(st.just("drop_node"), IDX),
    st.tuples(st.just("arity"), IDX, st.sampled_from(["pop", "x", "", "first"])),
    st.tuples(st.just("elem_type"), IDX, st.sampled_from([0, 2, 3, 6, 7, 9, 10, 99])),
    st.tuples(st.just("dim"), IDX, st.integers(0, 40)),
    st.tuples(st.just("opset"), st.sampled_from([1, 7, 10, 13, 19, 21, 23, 99])),
    st.tuples(st.just("domain"), IDX, st.sampled_from(["", "com.microsoft", "qonnx.custom_op.general", "bogus"])),
)


def onnx_apply(raw: bytes, edit) -> bytes:
    """The bytes of the serialized model after `edit` (indices into nodes, attributes, initializers
    and inputs are taken modulo their counts)."""
    import onnx
    from onnx import helper

    kind, *a = edit
    if kind == "flip":
        b = bytearray(raw)
        for pos, v in a[0]:
            b[pos % len(b)] = v
        return bytes(b)
    if kind == "truncate":
        return raw[: a[0] % len(raw)]
    m = onnx.load_from_string(raw)
    g = m.graph
    node = g.node[a[0] % len(g.node)] if kind not in ("opset",) else None
    inits = g.initializer
    if kind == "drop_init":
        del inits[a[0] % len(inits)]
    elif kind == "rename_input" and node.input:
        node.input[a[1] % len(node.input)] = a[2]
    elif kind == "attr":
        name = a[1] if a[1] is not None else node.attribute[0].name if node.attribute else "axis"
        for j in [j for j, x in enumerate(node.attribute) if x.name == name][::-1]:
            del node.attribute[j]
        node.attribute.append(helper.make_attribute(name, a[2]))
    elif kind == "drop_attr" and node.attribute:
        del node.attribute[a[1] % len(node.attribute)]
    elif kind == "dims":
        t = inits[a[0] % len(inits)]
        dims = {"reverse": list(t.dims)[::-1], "append1": [*t.dims, 1]}.get(a[1], a[1]) \
            if isinstance(a[1], str) else a[1]
        del t.dims[:]
        t.dims.extend(dims)
    elif kind == "dtype":
        inits[a[0] % len(inits)].data_type = a[1]
    elif kind == "op_type":
        node.op_type = a[1]
    elif kind == "bad_utf8":  # one byte of the node's op_type made invalid UTF-8 (NodeProto field 4)
        tag = b"\x22" + bytes([len(node.op_type)]) + node.op_type.encode()
        body = m.SerializeToString()
        i = body.index(tag) + 3
        return body[:i] + b"\x82" + body[i + 1 :]
    elif kind == "drop_node":
        g.node.remove(node)
    elif kind == "arity":
        if a[1] == "pop" and node.input:
            del node.input[-1]
        else:
            node.input.append(node.input[0] if a[1] == "first" and node.input else a[1])
    elif kind in ("elem_type", "dim"):
        vi = [*g.input, *g.output][a[0] % (len(g.input) + len(g.output))]
        if kind == "elem_type":
            vi.type.tensor_type.elem_type = a[1]
        elif vi.type.tensor_type.shape.dim:
            vi.type.tensor_type.shape.dim[-1].dim_value = a[1]
    elif kind == "opset":
        m.opset_import[0].version = a[0]
    elif kind == "domain":
        node.domain = a[1]
    return m.SerializeToString()


def onnx_checker_refuses(path: Path) -> str | None:
    """Why onnx's checker or its strict shape inference refuses the file, or None."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
        onnx.shape_inference.infer_shapes(onnx.load(str(path)), check_type=True, strict_mode=True)
    except Exception as e:  # noqa: BLE001 -- ValidationError, InferenceError, protobuf's DecodeError
        return str(e)
    return None


# Bugs found (compiler/frontends/onnx.py before this file; node and initializer indices as listed by
# onnx_files' models):
ONNX_BUGS = [
    ("qdq-perchannel-u8s8", ("dtype", 1, 0)),  # data_type UNDEFINED: TypeError from numpy_helper
    ("dynamic-s8", ("dtype", 2, 40)),  # unknown data_type: KeyError from onnx.helper
    ("dynamic-s8", ("dims", 2, [0])),  # dims that do not match the data: ValueError (reshape)
    ("qoperator-u8s8", ("op_type", 0, "Cast")),  # Cast without 'to': KeyError
    ("qoperator-u8s8", ("arity", 2, "pop")),  # QLinearAdd with 7 inputs: ValueError (unpack)
    ("brevitas", ("arity", 5, "x")),  # Quant with 5 inputs: ValueError (unpack)
    ("brevitas", ("attr", 1, "signed", [1, 2])),  # Quant 'signed' a list: TypeError int(list)
    ("qoperator-u8s8", ("rename_input", 3, 6, "x")),  # QGemm bias not a constant: KeyError
    ("qoperator-u8s8", ("rename_input", 3, 4, "")),  # QGemm without B scale: KeyError ''
    ("qoperator-u8s8", ("attr", 3, "transB", 1)),  # QGemm bias of 8 for 32 channels: ValueError (broadcast)
    ("brevitas", ("dims", 1, "reverse")),  # Quant scale [1, 24] vs weight [24, 32]: ValueError (broadcast)
    ("brevitas", ("bad_utf8", 0)),  # op_type not UTF-8 (protobuf gives bytes): TypeError
    ("qdq-perchannel-u8s8", ("rename_input", 5, 1, "nope")),  # undefined input: CompileError naming no file
    ("dynamic-s8", ("opset", 1)),  # DynamicQuantizeLinear under opset 1 (no such op): compiled
    ("dynamic-s8", ("dims", 4, "reverse")),  # MatMulInteger K 32 vs input 16: compiled (shape inference refuses)
]


@FUZZ
@given(name=st.sampled_from(ONNX_NAMES), edit=ONNX_EDITS)
@pin(dict(name=n, edit=e) for n, e in ONNX_BUGS)
def test_onnx_mutations(onnx_files, work, name, edit):
    with fresh(work, f"{name}.onnx") as src:
        src.write_bytes(onnx_apply(onnx_files[name], edit))
        msg = outcome(src, (src.name,), lm=False)
        refused = onnx_checker_refuses(src)
        assert refused is None or msg is not None, f"onnx refuses the file ({refused}), we compile it"


# ---- GGUF -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gguf_files(work):
    """GGUF files written by `edgestream export-gguf` (gguf.GGUFWriter, llama.cpp's conventions): a
    packed BitNet in TQ2_0 with its BPE vocabulary, and a Llama in Q8_0 (permuted Q/K)."""
    from edgestream.gguf_writer import export_gguf

    bn = make_checkpoint(work / "gbn", Shape(1, 256, 256, 4, 2, 320, 64), seed=6, packed=True, tie=True)
    ll = make_checkpoint(work / "gll", Shape(1, 32, 64, 4, 2, 320, 64), arch="llama", seed=7)
    files = [export_gguf(bn, work / "bitnet-tq2_0.gguf", "tq2_0"), export_gguf(ll, work / "llama-q8_0.gguf", "q8_0")]
    return Files({p.stem: p.read_bytes() for p in files})


GGUF_NAMES = ("bitnet-tq2_0", "llama-q8_0")
# GGUF value types: struct format of the scalars (7 BOOL is one byte; 8 STRING, 9 ARRAY)
GGUF_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q", 11: "<q", 12: "<d"}


def gguf_layout(b: bytes) -> list[tuple[int, str, str]]:
    """(offset, struct format, what) of every number in a GGUF file's header, metadata and tensor
    infos (the first two items of each array): the fields a byte-level mutation overwrites."""
    fields = [(4, "<I", "version"), (8, "<Q", "tensor_count"), (16, "<Q", "kv_count")]
    n_t, n_kv = struct.unpack_from("<QQ", b, 8)

    def u(fmt, o):
        return struct.unpack_from(fmt, b, o)[0]

    def value(o, t, what, record=True):
        if t == 8:
            if record:
                fields.append((o, "<Q", what + " length"))
            return o + 8 + u("<Q", o)
        if t == 9:
            it, n = u("<I", o), u("<Q", o + 4)
            fields.extend([(o, "<I", what + " item type"), (o + 4, "<Q", what + " count")])
            o += 12
            for j in range(n):
                o = value(o, it, f"{what}[{j}]", record and j < 2)
            return o
        if record:
            fields.append((o, GGUF_FMT[t], what))
        return o + struct.calcsize(GGUF_FMT[t])

    off = 24
    for _ in range(n_kv):
        key = b[off + 8 : off + 8 + u("<Q", off)].decode()
        off = value(off, 8, f"key {key}")
        fields.append((off, "<I", f"{key} type"))
        off = value(off + 4, u("<I", off), key)
    for _ in range(n_t):
        name = b[off + 8 : off + 8 + u("<Q", off)].decode()
        off = value(off, 8, f"tensor {name} name")
        nd = u("<I", off)
        fields.append((off, "<I", f"{name} n_dims"))
        fields.extend((off + 4 + 8 * j, "<Q", f"{name} dim {j}") for j in range(nd))
        off += 4 + 8 * nd
        fields.extend([(off, "<I", f"{name} ggml type"), (off + 4, "<Q", f"{name} offset")])
        off += 12
    return fields


GGUF_KEYS = ("general.architecture", "general.alignment", "{arch}.embedding_length", "{arch}.block_count",
             "{arch}.feed_forward_length", "{arch}.attention.head_count", "{arch}.attention.head_count_kv",
             "{arch}.attention.key_length", "{arch}.attention.value_length", "{arch}.rope.dimension_count",
             "{arch}.rope.freq_base", "{arch}.attention.layer_norm_rms_epsilon", "{arch}.context_length",
             "{arch}.vocab_size", "{arch}.rope.scaling.type", "{arch}.rope.scaling.factor",
             "{arch}.hidden_activation", "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
             "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.scores",
             "tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
             "tokenizer.ggml.eot_token_id", "tokenizer.chat_template", "tokenizer.ggml.padding_token_id")
INTS = st.integers(-3, 3) | st.sampled_from([2**31, 2**32 - 1, 2**63 - 1, -(2**63), 10**6, 320, 32, 256, 64])
GGUF_VALUES = st.one_of(
    st.tuples(st.sampled_from([0, 1, 2, 3, 4, 5, 10, 11]), INTS),
    st.tuples(st.sampled_from([6, 12]), st.floats(allow_nan=True, width=32) | st.sampled_from([0.0, -1.0, 1e30])),
    st.tuples(st.just(7), st.booleans()),
    st.tuples(st.just(8), st.text(max_size=6) | st.sampled_from(["llama", "bitnet", "bitnet-b1.58", "gpt2",
                                                                  "llama-bpe", "none", "linear", "yarn"])),
    st.tuples(st.just(9), st.tuples(st.sampled_from([4, 5, 6, 8]), st.integers(1, 400))),  # GGUFWriter: no empty
)
GGUF_EDITS = st.one_of(
    st.tuples(st.just("field"), st.integers(0, 1 << 12),
              st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, 2, 3, 4, 7, 8, 9, 12, 13, 35, 36, 37, 39, 40,
                                                           255, 2**31, 2**32 - 1, 2**63, 2**64 - 1])
              | st.tuples(st.just("delta"), st.integers(-64, 64))),
    st.tuples(st.just("magic"), st.sampled_from([b"GGUF"[::-1], b"GGML", b"\0\0\0\0", b"GGUf"])),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1,
                                        max_size=4)),
    st.tuples(st.just("kv"), st.sampled_from(GGUF_KEYS), GGUF_VALUES),
    st.tuples(st.just("drop_kv"), st.sampled_from(GGUF_KEYS)),
    st.tuples(st.just("drop_tensor"), st.integers(0, 40)),
)


def _array(sub: int, n: int):
    return [f"t{i}" for i in range(n)] if sub == 8 else [float(i) for i in range(n)] if sub == 6 else \
        list(range(n))


def gguf_apply(raw: bytes, edit, work: Path) -> bytes:
    """The bytes of the GGUF file after `edit`: numbers overwritten in place, or the file rewritten by
    gguf.GGUFWriter with one metadata key set (any value type) or dropped, or one tensor dropped."""
    import logging

    import gguf

    kind, *a = edit
    if kind == "field":
        fields = gguf_layout(raw)
        pos, fmt, _ = fields[a[0] % len(fields)]
        size = struct.calcsize(fmt)
        old = int.from_bytes(raw[pos : pos + size], "little")
        v = old + a[1][1] if isinstance(a[1], tuple) else a[1]
        return raw[:pos] + (v % (1 << (8 * size))).to_bytes(size, "little") + raw[pos + size :]
    if kind == "magic":
        return a[0] + raw[4:]
    if kind == "truncate":
        return raw[: a[0] % len(raw)]
    if kind == "flip":
        b = bytearray(raw)
        for pos, v in a[0]:
            b[pos % len(b)] = v
        return bytes(b)
    d = Path(tempfile.mkdtemp(dir=work))
    try:
        (d / "in.gguf").write_bytes(raw)
        r = gguf.GGUFReader(d / "in.gguf")
        arch = r.fields["general.architecture"].contents()
        logging.getLogger("gguf").setLevel(logging.ERROR)
        w = gguf.GGUFWriter(d / "out.gguf", arch)
        for k, f in r.fields.items():
            if not k.startswith("GGUF.") and k != "general.architecture":
                w.add_key_value(k, f.contents(), f.types[0], f.types[-1] if f.types[0] == 9 else None)
        key = a[0].format(arch=arch) if kind in ("kv", "drop_kv") else None
        if kind == "kv":
            vtype, v = a[1]
            sub = None
            if vtype == 9:
                sub, v = v[0], _array(*v)
            elif vtype in (0, 1, 2, 3, 4, 5, 10, 11):  # wrapped into the type's range, as the bytes would be
                bits = 8 * struct.calcsize(GGUF_FMT[vtype])
                v %= 1 << bits
                if GGUF_FMT[vtype].islower() and v >= 1 << (bits - 1):
                    v -= 1 << bits
            w.add_key_value(key, v, gguf.GGUFValueType(vtype), None if sub is None else gguf.GGUFValueType(sub))
        elif kind == "drop_kv":
            w.kv_data[0].pop(key, None)
        tensors = list(r.tensors)
        if kind == "drop_tensor":
            del tensors[a[0] % len(tensors)]
        for t in tensors:
            w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return (d / "out.gguf").read_bytes()
    finally:
        shutil.rmtree(d, ignore_errors=True)


# metadata keys llama.cpp reads as numbers (gguf_get_val_u32 / _f32 assert the type): any other value
# type is a corrupt file, never a string to parse
GGUF_NUMERIC = {"{arch}." + k for k in ("embedding_length", "block_count", "feed_forward_length",
                                        "attention.head_count", "attention.head_count_kv", "attention.key_length",
                                        "attention.value_length", "rope.dimension_count", "context_length",
                                        "vocab_size", "rope.freq_base", "attention.layer_norm_rms_epsilon")}

# Bugs found (compiler/frontends/gguf_reader.py, gguf.py, gguf_tokenizer.py, compiler/__init__.py and
# passes.py before this file; "field" indices count gguf_layout's fields of the fixture):
GGUF_BUGS = [
    ("llama-q8_0", ("kv", "tokenizer.ggml.tokens", (7, True))),  # tokens a bool: TypeError len()
    ("llama-q8_0", ("kv", "tokenizer.ggml.token_type", (12, 1e30))),  # token types a float: TypeError len()
    ("llama-q8_0", ("kv", "tokenizer.ggml.merges", (9, (5, 311)))),  # merges of int32: AttributeError
    ("bitnet-tq2_0", ("kv", "tokenizer.ggml.merges", (7, False))),  # merges a bool: TypeError (not iterable)
    ("bitnet-tq2_0", ("kv", "general.architecture", (9, (8, 288)))),  # architecture a list: TypeError (unhashable)
    ("bitnet-tq2_0", ("kv", "tokenizer.ggml.eos_token_id", (8, "linear"))),  # eos a string: ValueError int()
    ("llama-q8_0", ("kv", "{arch}.embedding_length", (8, "32"))),  # a string parsed as the size: compiled
    ("llama-q8_0", ("kv", "{arch}.block_count", (3, -2))),  # negative layers: ValueError (negative dimensions)
    ("bitnet-tq2_0", ("kv", "{arch}.context_length", (7, False))),  # max_position 0 compiled: every run fails
    ("llama-q8_0", ("kv", "{arch}.rope.freq_base", (6, 0.0))),  # NaN RoPE tables: IndexError at the first token
    # negative base: NaN RoPE tables, and the C attention kernel segfaults on them
    ("llama-q8_0", ("kv", "{arch}.rope.freq_base", (12, -2.199444377095373e16))),
    ("llama-q8_0", ("field", 1017, 35)),  # a Q8_0 block scale NaN: "tensor ... contains NaN or Inf" named no file
    ("llama-q8_0", ("flip", [(99322, 138), (2560, 154)])),  # a repeated token: the error named no file
    ("llama-q8_0", ("flip", [(5648, 66)])),  # a merge of a non-token: a bare Exception from `tokenizers`
    ("bitnet-tq2_0", ("field", 1434, 2**63)),  # token_type count 2**63: the gguf package loops forever
]


@FUZZ
@given(name=st.sampled_from(GGUF_NAMES), edit=GGUF_EDITS)
@pin(dict(name=n, edit=e) for n, e in GGUF_BUGS)
def test_gguf_mutations(gguf_files, work, name, edit):
    with fresh(work, f"{name}.gguf") as src:
        src.write_bytes(gguf_apply(gguf_files[name], edit, work))
        # a byte-level edit may leave a valid file whose weights are arbitrary (e.g. a norm gain of 1e38,
        # which overflows the attention scores): that is the executors' concern, not a loader's, so
        # only metadata edits run the compiled model
        msg = outcome(src, (src.name,), lm=edit[0] in ("kv", "drop_kv", "drop_tensor"))
        if edit[0] == "kv" and edit[1] in GGUF_NUMERIC and edit[2][0] in (7, 8, 9):
            assert msg is not None, f"{edit[1]} of GGUF type {edit[2][0]} was read as a number"


def test_gguf_rewrite_is_faithful(gguf_files, work):
    """The GGUFWriter rewrite behind the metadata mutations changes nothing by itself: the rewritten
    file compiles to the same artifact bytes (so what a mutation breaks is the mutation's doing)."""
    import edgestream

    for name, raw in gguf_files.items():
        with fresh(work, f"{name}.gguf") as src:
            src.write_bytes(raw)
            a = edgestream.compile_model(src, src.parent / "a.esa")
            src.write_bytes(gguf_apply(raw, ("drop_kv", "no.such.key"), work))
            b = edgestream.compile_model(src, src.parent / "b.esa")
            for f in ("weights.bin", "program.json", "tokenizer.json"):
                assert (a / f).read_bytes() == (b / f).read_bytes(), (name, f)
