"""Every bad input gets one clear message naming the file/tensor/field, exit code 2, no traceback,
and nothing half-written."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from edgestream.cli import main
from edgestream.synth import make_checkpoint


@pytest.fixture
def ck(tmp_path):
    return make_checkpoint(tmp_path / "ck", "tiny", seed=1)


def run_cli(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def compile_fails(capsys, src, out, *patterns):
    rc, _, err = run_cli(capsys, "compile", src, "-o", out)
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    for p in patterns:
        assert p in err, (p, err)
    # nothing half-written next to the output
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(out.name)]
    return err


def rewrite(ck: Path, edit) -> None:
    t = load_file(str(ck / "model.safetensors"))
    edit(t)
    save_file(t, str(ck / "model.safetensors"))


def test_missing_source(capsys, tmp_path):
    compile_fails(capsys, tmp_path / "nope", tmp_path / "o.esa", "nope", "no such file")


def test_missing_config(capsys, ck, tmp_path):
    (ck / "config.json").unlink()
    compile_fails(capsys, ck, tmp_path / "o.esa", "config.json is missing")


def test_corrupt_config(capsys, ck, tmp_path):
    (ck / "config.json").write_text("{not json")
    compile_fails(capsys, ck, tmp_path / "o.esa", "config.json", "not valid JSON")


def test_unsupported_architecture(capsys, ck, tmp_path):
    cfg = json.loads((ck / "config.json").read_text())
    cfg["architectures"], cfg["model_type"] = ["GPT2LMHeadModel"], "gpt2"  # as GPT-2's own config says
    (ck / "config.json").write_text(json.dumps(cfg))
    compile_fails(capsys, ck, tmp_path / "o.esa", "unsupported architecture", "GPT2LMHeadModel",
                  "BitNetForCausalLM")


def test_missing_field(capsys, ck, tmp_path):
    cfg = json.loads((ck / "config.json").read_text())
    del cfg["hidden_size"]
    (ck / "config.json").write_text(json.dumps(cfg))
    # as transformers: a missing field takes BitNetConfig's default (2560), which the tensors then contradict
    compile_fails(capsys, ck, tmp_path / "o.esa", "model.embed_tokens.weight has shape", "expected [300, 2560]")
    cfg["num_attention_heads"] = "four"
    (ck / "config.json").write_text(json.dumps(cfg))
    compile_fails(capsys, ck, tmp_path / "o.esa", "'num_attention_heads' = 'four' is not a valid int")


def test_missing_tensor(capsys, ck, tmp_path):
    rewrite(ck, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    compile_fails(capsys, ck, tmp_path / "o.esa", "model.layers.1.mlp.up_proj.weight is missing")


def test_shape_mismatch(capsys, ck, tmp_path):
    def edit(t):
        t["model.layers.0.self_attn.q_proj.weight"] = np.zeros((64, 60), np.float32)

    rewrite(ck, edit)
    compile_fails(capsys, ck, tmp_path / "o.esa", "model.layers.0.self_attn.q_proj.weight", "[64, 60]",
                  "expected [64, 64]")


def test_unsupported_dtype(capsys, ck, tmp_path):
    def edit(t):
        t["model.norm.weight"] = np.zeros(64, np.int32)

    rewrite(ck, edit)
    compile_fails(capsys, ck, tmp_path / "o.esa", "model.norm.weight", "dtype I32", "float")


@pytest.mark.parametrize("tensor", ["model.norm.weight", "model.layers.0.mlp.down_proj.weight",
                                    "model.embed_tokens.weight"])
def test_nan_weights(capsys, ck, tmp_path, tensor):
    def edit(t):
        t[tensor] = t[tensor].copy()
        t[tensor].reshape(-1)[3] = np.nan

    rewrite(ck, edit)
    compile_fails(capsys, ck, tmp_path / "o.esa", tensor, "NaN or Inf")


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0, -2.0])
def test_bad_weight_scale(capsys, tmp_path, bad):
    ck = make_checkpoint(tmp_path / "pk", "tiny", packed=True)
    name = "model.layers.0.self_attn.k_proj.weight_scale"
    rewrite(ck, lambda t: t.__setitem__(name, np.array([bad], np.float32)))
    compile_fails(capsys, ck, tmp_path / "o.esa", name)


def test_truncated_safetensors(capsys, ck, tmp_path):
    p = ck / "model.safetensors"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    compile_fails(capsys, ck, tmp_path / "o.esa", "model.safetensors", "truncated")


def test_corrupt_safetensors_header(capsys, ck, tmp_path):
    p = ck / "model.safetensors"
    b = p.read_bytes()
    p.write_bytes(struct.pack("<Q", 1 << 40) + b[8:])
    compile_fails(capsys, ck, tmp_path / "o.esa", "model.safetensors", "corrupt safetensors header")


@pytest.fixture
def art(ck, tmp_path, capsys):
    out = tmp_path / "m.esa"
    assert run_cli(capsys, "compile", ck, "-o", out)[0] == 0
    return out


def run_fails(capsys, *args, patterns=()):
    rc, _, err = run_cli(capsys, "run", *args)
    assert rc == 2 and "Traceback" not in err, err
    for p in patterns:
        assert p in err, (p, err)


def test_artifact_checksum(capsys, art):
    w = art / "weights.bin"
    b = bytearray(w.read_bytes())
    b[100] ^= 0xFF
    w.write_bytes(bytes(b))
    run_fails(capsys, art, "--prompt-ids", "1,2", patterns=["weights.bin", "checksum mismatch"])


def test_artifact_missing_file(capsys, art):
    (art / "program.json").unlink()
    run_fails(capsys, art, "--prompt-ids", "1,2", patterns=["program.json", "missing"])


def test_not_an_artifact(capsys, tmp_path):
    run_fails(capsys, tmp_path, "--prompt-ids", "1", patterns=["manifest.json", "missing"])


def test_bad_prompt_ids(capsys, art):
    run_fails(capsys, art, "--prompt-ids", "1,x", patterns=["--prompt-ids", "comma-separated integers"])
    run_fails(capsys, art, "--prompt-ids", "1,99999", patterns=["token id 99999", "vocabulary"])
    run_fails(capsys, art, patterns=["--prompt"])


def test_no_tokenizer(capsys, tmp_path):
    ck = make_checkpoint(tmp_path / "nt", "tiny", tokenizer=False)
    out = tmp_path / "nt.esa"
    assert run_cli(capsys, "compile", ck, "-o", out)[0] == 0
    run_fails(capsys, out, "--prompt", "hello", patterns=["no tokenizer", "token ids"])


def test_bad_sampling_args(capsys, art):
    run_fails(capsys, art, "--prompt-ids", "1", "--top-p", "0", patterns=["--top-p"])
    run_fails(capsys, art, "--prompt-ids", "1", "--temperature", "-1", patterns=["--temperature"])


def test_failed_recompile_keeps_old_artifact(capsys, ck, art, tmp_path):
    before = (art / "manifest.json").read_text()
    (ck / "config.json").write_text("[]")
    rc, _, err = run_cli(capsys, "compile", ck, "-o", art)
    assert rc == 2
    assert (art / "manifest.json").read_text() == before
    assert sorted(p.name for p in art.parent.iterdir() if p.name.startswith("m.esa")) == ["m.esa"]


def test_no_traceback_in_a_real_process(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgestream.cli", "compile", str(tmp_path / "x"), "-o",
                        str(tmp_path / "y")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("edgestream compile: error:") and "Traceback" not in r.stderr


def test_packed_weight_with_invalid_code(capsys, tmp_path):
    ck = make_checkpoint(tmp_path / "pk", "tiny", packed=True)
    name = "model.layers.1.mlp.gate_proj.weight"

    def edit(t):
        t[name] = t[name].copy()
        t[name][0, 0] = 0xFF  # 2-bit code 3 is not a trit

    rewrite(ck, edit)
    compile_fails(capsys, ck, tmp_path / "o.esa", name, "code 3")
