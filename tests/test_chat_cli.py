"""`edgestream chat`: a scripted conversation on stdin gives the Session's own answers, turn by turn."""

from __future__ import annotations

import io
import re
from pathlib import Path

import edgestream
from edgestream import cli

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edgestream" / "data" / "tiny-bitnet"


def _reply(sess, msgs, n):
    return sess.tokenizer.decode(list(sess.generate(sess.chat_ids(msgs), max_new_tokens=n)))


def test_scripted_chat_with_reset(story_art, capsys, monkeypatch):
    sess = edgestream.load(story_art)
    u1, u2 = "Once upon a time", " One day, Tom found a box."
    a1 = _reply(sess, [{"role": "system", "content": "Hello."}, {"role": "user", "content": u1}], 10)
    a2 = _reply(sess, [{"role": "system", "content": "Hello."}, {"role": "user", "content": u1},
                       {"role": "assistant", "content": a1}, {"role": "user", "content": u2}], 10)
    assert a1 and a2 and a1 != a2
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{u1}\n{u2}\n/bogus\n\n/reset\n{u1}\n/quit\nnever read\n"))
    assert cli.main(["chat", str(story_art), "--system", "Hello.", "--max-new-tokens", "10"]) == 0
    out, err = capsys.readouterr()
    err = " ".join(err.split())  # rich wraps at the terminal width
    # the second answer saw the first turn; after /reset the first answer comes again
    assert out.splitlines() == [a1, a2, a1]
    assert len(re.findall(r"prompt tokens, 10 generated \(max_new_tokens\); TTFT [\d.]+ ms; prefill [\d.]+ tok/s; "
                          r"decode [\d.]+ tok/s \(cpu", err)) == 3
    assert "unknown command /bogus" in err and "(conversation cleared)" in err


def test_chat_needs_a_template(tmp_path, capsys, monkeypatch):
    plain = edgestream.compile_model(DEMO, tmp_path / "plain.esa")
    monkeypatch.setattr("sys.stdin", io.StringIO("hi\n"))
    assert cli.main(["chat", str(plain)]) == 2
    err = capsys.readouterr().err
    assert "has no chat template" in err and "Traceback" not in err
