"""`edgestream chat ART`: a conversation in the terminal through the model's chat template.

Each turn renders the whole history through the template (as transformers' apply_chat_template does)
and generates from a fresh cache: the template decides how earlier turns look, so nothing is reused
that the template might have rendered differently. Reads lines from any text stream, so a script can
drive it (`printf 'hi\\n/reset\\n' | edgestream chat ART`).
"""

from __future__ import annotations

from typing import TextIO

from edgestream.errors import EdgestreamError
from edgestream.tokenizer import StreamDecoder

HELP = "/reset clears the conversation, /quit (or end of input) leaves"


def chat_loop(sess, stdin: TextIO, stdout: TextIO, console, system: str | None = None, max_new_tokens: int = 256,
              temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None) -> int:
    start = [] if system is None else [{"role": "system", "content": system}]
    history = list(start)
    sess.chat_ids(messages=[*history, {"role": "user", "content": "hi"}])  # no template: fail before reading
    tty = stdin.isatty()
    note = f" ({sess.device_note})" if getattr(sess, "device_note", "") else ""
    console.print(f"[dim]chatting with {sess.artifact.path.name} on {sess.device}{note}; {HELP}[/dim]")
    while True:
        if tty:
            stdout.write("> ")
            stdout.flush()
        line = stdin.readline()
        if not line:
            return 0
        text = line.rstrip("\r\n")
        cmd = text.strip()
        if not cmd:
            continue
        if cmd in ("/quit", "/exit"):
            return 0
        if cmd == "/reset":
            history = list(start)
            console.print("[dim](conversation cleared)[/dim]")
            continue
        if cmd.startswith("/"):
            console.print(f"[yellow]unknown command {cmd}[/yellow] ({HELP})")
            continue
        turn = [*history, {"role": "user", "content": text}]
        try:
            ids = sess.chat_ids(turn)
        except EdgestreamError as e:
            console.print(f"[red]error:[/red] {e}")
            continue
        room = sess.config.max_position - len(ids)
        if room < 1:
            console.print(f"[red]error:[/red] the conversation ({len(ids)} tokens) fills the model's context of "
                          f"{sess.config.max_position}; /reset to start again")
            continue
        reply = _answer(sess, ids, stdout, min(max_new_tokens, room), temperature, top_k, top_p, seed)
        history = [*turn, {"role": "assistant", "content": reply}]
        st = sess.stats
        console.print(f"[dim]{len(ids)} prompt tokens, {st.generated_tokens} generated ({st.stop_reason}); TTFT "
                      f"{st.ttft_s * 1e3:.1f} ms; prefill {st.prefill_tok_s:.1f} tok/s; decode "
                      f"{st.decode_tok_s:.1f} tok/s ({sess.device}, {sess.kernel_name} kernel)[/dim]")


def _answer(sess, ids, stdout, n, temperature, top_k, top_p, seed) -> str:
    """Streams one answer to `stdout`; Ctrl-C ends the answer, not the chat."""
    dec = StreamDecoder(sess.tokenizer)
    toks: list[int] = []
    gen = sess.generate(ids, max_new_tokens=n, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    try:
        for tok in gen:
            toks.append(tok)
            stdout.write(dec.push(tok))
            stdout.flush()
    except KeyboardInterrupt:
        sess.stats.stop_reason = "interrupted"
    finally:
        gen.close()
    stdout.write(dec.flush() + "\n")
    stdout.flush()
    return sess.tokenizer.decode(toks)
