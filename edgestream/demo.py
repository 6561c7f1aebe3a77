"""`make demo`: compile the bundled model, stream a story on the CPU executor, then run the same prompt
for a few tokens on the accelerator RTL in simulation (`--device sim`): the tokens must be the CPU's,
and the device's measured cycles give what a KV260 at the shell's clock would do.

The bundled model is the trained tiny BitNet in edgestream/data/tiny-bitnet/ when it ships; without
it, a small random BitNet written deterministically through the real checkpoint writer stands in
(its text is noise, its numbers are real).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import edgestream
from edgestream.cli import main as cli
from edgestream.tokenizer import StreamDecoder

BUNDLED = Path(__file__).parent / "data" / "tiny-bitnet"
PROMPT = "Once upon a time"
CPU_TOKENS = 48
# every clock cycle of the RTL is simulated (Verilator under cocotb): the prefill and one decode step take
# about a minute and a half on 2 cores
SIM_TOKENS = 2


def _stream(sess, ids: list[int], n: int, on_token=None) -> list[int]:
    dec = StreamDecoder(sess.tokenizer)
    toks = []
    sys.stdout.write(PROMPT)
    for tok in sess.generate(ids, max_new_tokens=n):
        toks.append(tok)
        sys.stdout.write(dec.push(tok))
        sys.stdout.flush()
        if on_token:
            on_token(len(toks))
    sys.stdout.write(dec.flush() + "\n")
    st = sess.stats
    print(f"  [{len(ids)} prompt tokens, {len(toks)} generated; TTFT {st.ttft_s * 1e3:.1f} ms; prefill "
          f"{st.prefill_tok_s:.2f} tok/s; decode {st.decode_tok_s:.2f} tok/s ({sess.device}, {sess.kernel_name})]")
    return toks


def _projection(sess, marks: dict) -> str:
    """What the device's cycle counters (the ones `edgestream bench` reads) say per decode token."""
    from edgestream.host.session import device_hw_config

    log = sess.executor.log
    dec = log[marks["prefill_runs"]:]
    steps = max(SIM_TOKENS - 1, 1)

    def per_token(key):
        return sum(r["counters"].get(key, 0) for r in dec) / steps

    cyc, vec, attn = per_token("cycles"), per_token("vec_cycles"), per_token("attn_cycles")
    hw = device_hw_config(sess.artifact, "sim")
    mhz = hw.clock_mhz
    units = ["linears"] + [u for u, c in (("vector", vec), ("attention", attn)) if c]
    host = [u for u, c in (("vector", vec), ("attention", attn)) if not c]
    host_ops = sum(marks["host_ops"]) / steps  # instructions the host ran between device STARTs
    line = (f"KV260 projection from the measured cycles: {cyc:,.0f} device cycles per decode token "
            f"({', '.join(units)} on the device; DDR latency {getattr(sess.accel_device, 'latency', '?')} cycles) "
            f"-> {mhz * 1e6 / cyc:,.0f} tok/s for configuration {hw.config_id} at {mhz:.0f} MHz")
    if host or host_ops:
        line += (f"; the host ran {host_ops:.0f} instructions per token"
                 f"{' (' + ', '.join(host) + ')' if host else ''}, not counted")
    return line


def main() -> int:
    out = Path("out")
    src = BUNDLED
    if not (BUNDLED / "config.json").is_file():
        from edgestream.synth import make_checkpoint

        src = make_checkpoint(out / "random-tiny-bitnet", "tiny", seed=0)
        print(f"(no trained model bundled; using a random tiny BitNet from {src})")
    art = out / "demo.esa"
    rc = cli(["compile", str(src), "-o", str(art), "--progress"])
    if rc:
        return rc
    print("\n--device cpu (the CPU executor):")
    cpu = edgestream.load(art, device="cpu")
    ids = cpu.encode(PROMPT)
    cpu_toks = _stream(cpu, ids, CPU_TOKENS)

    print(f"\n--device sim (the accelerator RTL in Verilator; the first run builds the simulator), "
          f"{SIM_TOKENS} tokens:")
    t0 = time.perf_counter()
    sim = edgestream.load(art, device="sim")
    try:
        if sim.device_note:
            print(f"  ({sim.device_note})")
        ex = sim.executor
        ex.record = True
        ex.log.clear()
        marks = {"prefill_runs": 0, "host_ops": []}

        def mark(n: int) -> None:
            # generate() yields token 1 after the prefill, each later one after a decode step
            if n == 1:
                marks["prefill_runs"] = len(ex.log)
            else:
                marks["host_ops"].append(getattr(ex, "host_ops", 0))

        sim_toks = _stream(sim, ids, SIM_TOKENS, on_token=mark)
        projection = _projection(sim, marks)
    finally:
        sim.close()
    same = sim_toks == cpu_toks[:SIM_TOKENS]
    print(f"  tokens: cpu {cpu_toks[:SIM_TOKENS]}, sim {sim_toks}: "
          f"{'identical' if same else 'DIFFERENT (a bug: the executors must agree bit for bit)'} "
          f"({time.perf_counter() - t0:.0f} s in simulation)")
    print(f"  {projection}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
