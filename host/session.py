"""The streaming generation API: `edgestream.load(path, device=...)` returns a Session."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgestream.artifact import read_artifact
from edgestream.errors import InputError
from edgestream.host.sampling import Sampler
from edgestream.tokenizer import Tokenizer

DEVICES = ("cpu", "sim", "pynq", "auto")


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    stop_reason: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def prefill_tok_s(self) -> float:
        return self.prompt_tokens / self.prefill_s if self.prefill_s else 0.0

    @property
    def decode_tok_s(self) -> float:
        # the first token comes from prefill; decode speed counts the steps after it
        steps = self.generated_tokens - 1
        return steps / self.decode_s if steps > 0 and self.decode_s else 0.0


def device_hw_config(artifact, device: str):
    """The HwConfig the device should be: on `sim` the artifact's own lowered configuration when the
    RTL implements it (the simulator is built for it), else the shipped shell's (the artifact is then
    lowered for it on the fly); a board runs its bitstream, whose ID the driver checks."""
    from edgestream.compiler.dse import HwConfig
    from edgestream.compiler.rtl_space import why_not
    from edgestream.regmap import shell_config

    d = artifact.manifest.get("hw_config")
    if d:
        cfg = HwConfig(**d)
        if device == "sim" and why_not(cfg) is None:
            return cfg
        if device == "pynq":
            return cfg
    return shell_config()


class Session:
    def __init__(self, path: str | Path, device: str = "cpu", kernel: str | None = None,
                 device_options: dict | None = None):
        from edgestream.host.executor import CpuExecutor
        from edgestream.host.kernels import get_kernel

        if device not in DEVICES:
            raise InputError(f"device {device!r} is not available (expected one of {', '.join(DEVICES)})")
        self.device_note = ""
        if device == "auto":
            from edgestream.host.devices import board_present

            device = "pynq" if board_present() else "cpu"
            self.device_note = f"--device auto picked {device}" + ("" if device == "pynq" else " (no PYNQ board found)")
        self.device = device
        self.artifact = read_artifact(path)
        self.config = self.artifact.config
        self.accel = self.accel_device = None
        if device in ("sim", "pynq"):
            # the device's sequencer runs program.bin's linear layers, the host the instructions in between
            from edgestream.host.accel_executor import AccelProgramExecutor
            from edgestream.host.driver import open_accel

            hw = device_hw_config(self.artifact, device)
            self.accel, self.accel_device = open_accel(device, hw_config=hw, **(device_options or {}))
            try:
                self.executor = AccelProgramExecutor(self.artifact, self.accel, device_config=hw)
            except BaseException:
                self.accel_device.close()
                raise
            if self.executor.note:
                self.device_note = "; ".join(x for x in (self.device_note, self.executor.note) if x)
        else:
            self.executor = CpuExecutor(self.artifact, get_kernel(kernel))
        self.tokenizer_settings = self.artifact.tokenizer_settings
        self.tokenizer = (Tokenizer(self.artifact.tokenizer_path, self.tokenizer_settings)
                          if self.artifact.tokenizer_path else None)
        # every eos/eot id the model's files name; artifacts compiled before tokenizer settings existed
        # (and frontends without them) stop at config.json's eos
        ts = self.tokenizer_settings
        self.stop_token_ids = list(ts.eos_token_ids if ts and ts.eos_token_ids else self.config.eos_token_ids)
        self.stats = GenerationStats()

    @property
    def kernel_name(self) -> str:
        return self.executor.kernel_name

    def encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            raise InputError(f"{self.artifact.path}: the artifact has no tokenizer; pass token ids instead")
        return self.tokenizer.encode(text)

    def chat_ids(self, messages: list[dict], add_generation_prompt: bool = True, **template_vars) -> list[int]:
        """Prompt ids of a conversation through the model's chat template (edgestream.chat)."""
        return self.chat_prompt(messages, add_generation_prompt, **template_vars)[1]

    def chat_prompt(self, messages: list[dict], add_generation_prompt: bool = True,
                    **template_vars) -> tuple[str, list[int]]:
        """(rendered prompt text, ids) of a conversation."""
        from edgestream.chat import encode_chat

        if self.tokenizer is None:
            raise InputError(f"{self.artifact.path}: the artifact has no tokenizer; a chat needs one")
        return encode_chat(self.tokenizer, messages, where=str(self.artifact.path),
                           add_generation_prompt=add_generation_prompt, **template_vars)

    def chat(self, messages: list[dict], max_new_tokens: int = 256, **generate_kwargs) -> Iterator[int]:
        """Yields the assistant's reply token ids to `messages` ([{"role": ..., "content": ...}]);
        generation stops at the model's end-of-turn/eos ids. Keyword arguments as for generate()."""
        return self.generate(self.chat_ids(messages), max_new_tokens=max_new_tokens, **generate_kwargs)

    def forward(self, ids) -> np.ndarray:
        """Logits float32 [T, vocab] of every position of `ids`, from an empty cache."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        self.executor.reset(len(ids))
        return self.executor.forward(ids, last_only=False)

    def generate(
        self,
        prompt,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop_tokens: list[int] | None = None,
        on_logits: Callable[[np.ndarray], None] | None = None,
        kv_window: int | None = None,
        sinks: int | None = None,
    ) -> Iterator[int]:
        """Yields generated token ids as they are produced. `prompt` is text or a list of ids; text gets
        BOS as the model's tokenizer settings say. Stops at any of `stop_tokens` (default: the
        model's eos/eot ids, `stop_token_ids`). Without `kv_window` the prompt and max_new_tokens must fit
        the KV cache (InputError otherwise); with it the cache holds `sinks` (default 4) + `kv_window`
        positions and rolls (docs/numerics.md "KV window"), so generation goes on past it."""
        from edgestream.host import kv_window as kvw

        ids = self.encode(prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
        if not ids:
            raise InputError("the prompt is empty")
        if max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        ex = self.executor
        limit, what = kvw.cache_limit(ex)
        win = None
        if kv_window is not None:
            win = kvw.KVWindow(kv_window, kvw.DEFAULT_SINKS if sinks is None else sinks)
            win.check(limit, what)
        elif sinks is not None:
            raise InputError(f"--sinks {sinks} goes with --kv-window N (the sinks are kept when the window rolls)")
        elif len(ids) + max_new_tokens - 1 > limit:  # the last new token is never fed back
            room = limit - len(ids) + 1
            ask = f"ask for at most {room} new tokens, or " if room >= 1 else ""
            raise InputError(f"the prompt ({len(ids)} tokens) and {max_new_tokens} new tokens need "
                             f"{len(ids) + max_new_tokens - 1} KV-cache positions, but the cache holds {limit} "
                             f"({what}): {ask}pass --kv-window N [--sinks S] to generate in a rolling cache")
        sampler = Sampler(temperature, top_k, top_p, seed)
        stops = set(self.stop_token_ids if stop_tokens is None else stop_tokens)
        st = self.stats = GenerationStats(prompt_tokens=len(ids))
        ex.reset(win.capacity if win else len(ids) + max_new_tokens - 1)
        # greedy decoding on an accelerator reads the device's ARGMAX: the logits stay on the device
        # unless someone asks for them (on_logits: --dump-logits) or sampling needs them
        greedy = sampler.temperature == 0 and on_logits is None and hasattr(ex, "forward_argmax")
        device = hasattr(ex, "starts")
        st.extra.update({"device_starts": 0, "host_ops": 0} if device else {})

        if win:
            st.extra["kv_shifts"] = 0

        def run(x: list[int]) -> tuple[int | None, np.ndarray | None]:
            out = (ex.forward_argmax(np.array(x)), None) if greedy else (None, ex.forward(np.array(x))[-1])
            if device:
                st.extra["device_starts"] += ex.starts
                st.extra["host_ops"] += ex.host_ops
            return out

        def step(x: list[int]) -> tuple[int | None, np.ndarray | None]:
            if win is None:
                return run(x)
            # as if one token at a time: a token that finds the cache full shifts it first (a prompt
            # runs in pieces that fit between shifts: the same integers as token by token)
            i, out = 0, (None, None)
            while i < len(x):
                if ex.pos == win.capacity:
                    ops = kvw.shift(ex, win)
                    st.extra["kv_shifts"] += 1
                    if device:
                        st.extra["host_ops"] += ops
                n = min(len(x) - i, win.capacity - ex.pos)
                out = run(x[i:i + n])
                i += n
            return out

        t0 = time.perf_counter()
        tok, logits = step(ids)
        st.prefill_s = st.ttft_s = time.perf_counter() - t0
        while True:
            if logits is not None:
                if on_logits:
                    on_logits(logits)
                tok = sampler(logits)
            st.generated_tokens += 1
            yield tok
            if tok in stops:
                st.stop_reason = "stop_token"
                return
            if st.generated_tokens >= max_new_tokens:
                st.stop_reason = "max_new_tokens"
                return
            t1 = time.perf_counter()
            tok, logits = step([tok])
            st.decode_s += time.perf_counter() - t1

    def close(self) -> None:
        """Release the device (the sim device's simulator process, a board's buffers)."""
        if self.accel_device is not None:
            self.executor.close()
            self.accel_device.close()
            self.accel_device = None


def load(path: str | Path, device: str = "cpu", kernel: str | None = None,
         device_options: dict | None = None) -> Session:
    return Session(path, device=device, kernel=kernel, device_options=device_options)
