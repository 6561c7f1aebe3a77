"""The device side of `edgestream serve`: one worker thread owns the Session and runs one generation at
a time, in arrival order, from a bounded queue; requests wait on asyncio queues fed from that thread.

A device (the CPU executor, the simulator, a board) holds one KV cache and one program, so requests
never interleave: the queue is FIFO (fair: nobody is overtaken) and bounded, and a full queue is the
caller's 429. Cancellation (a client that went away) is a flag the worker reads between tokens, so a
cancelled generation costs at most the token in flight; a cancelled request still waiting is skipped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics

from edgestream.tokenizer import StreamDecoder

# the *_created timestamp series of every counter are noise on a dashboard of one process
disable_created_metrics()


class QueueFull(Exception):
    """Every place in the queue is taken."""


class StopText:
    """OpenAI `stop` strings on a stream of text deltas: emits text as soon as no stop string can start
    in it, holds back a tail that could be the start of one, and cuts the text before the first match
    (the stop string itself is not returned, as in OpenAI's API)."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.buf = ""

    def push(self, delta: str) -> tuple[str, bool]:
        """(text safe to emit, whether a stop string matched)."""
        self.buf += delta
        hits = [i for i in (self.buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buf = self.buf[: min(hits)], ""
            return out, True
        hold = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.buf)), hold, -1):
                if self.buf.endswith(s[:n]):
                    hold = n
                    break
        out, self.buf = self.buf[: len(self.buf) - hold], self.buf[len(self.buf) - hold:]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


@dataclass
class Job:
    """One generation request. `events` receives ("text", str) pieces, then exactly one
    ("done", Result) or ("error", Exception)."""

    ids: list[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]
    ignore_eos: bool
    endpoint: str
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    arrived: float = field(default_factory=time.perf_counter)

    def emit(self, kind: str, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (server shutting down): nobody is listening
            pass


@dataclass
class Result:
    finish_reason: str  # "stop" (eos or a stop string), "length" (max tokens or context), "cancelled"
    prompt_tokens: int
    completion_tokens: int
    text: str
    tokens: list[int]
    ttft_s: float  # from arrival (queue wait included) to the first token
    queue_s: float
    prefill_tok_s: float
    decode_tok_s: float


class Metrics:
    """Prometheus metrics of one server (its own registry, so several servers can live in a process)."""

    def __init__(self, model: str, device: str, kernel: str):
        r = self.registry = CollectorRegistry()
        Info("edgestream_model", "the served model and device", registry=r).info(
            {"model": model, "device": device, "kernel": kernel})
        self.requests = Counter("edgestream_requests", "requests by endpoint and outcome (stop, length, cancelled, "
                                "rejected: queue full, invalid: 4xx, error: device failure)",
                                ["endpoint", "outcome"], registry=r)
        self.prompt_tokens = Counter("edgestream_prompt_tokens", "prompt tokens prefilled", registry=r)
        self.generation_tokens = Counter("edgestream_generation_tokens", "tokens generated", registry=r)
        self.ttft = Histogram("edgestream_time_to_first_token_seconds", "arrival to first token (queue wait "
                              "included)", registry=r,
                              buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, float("inf")))
        self.queue_wait = Histogram("edgestream_queue_wait_seconds", "arrival to start on the device", registry=r,
                                    buckets=(.001, .01, .1, .5, 1, 5, 10, 30, 60, 120, float("inf")))
        self.decode_tok_s = Gauge("edgestream_decode_tokens_per_second", "decode speed of the last generation",
                                  registry=r)
        self.prefill_tok_s = Gauge("edgestream_prefill_tokens_per_second", "prefill speed of the last generation",
                                   registry=r)
        self.queue_depth = Gauge("edgestream_queue_depth", "requests waiting for the device", registry=r)
        self.running = Gauge("edgestream_requests_running", "requests on the device (0 or 1)", registry=r)


class Engine:
    """Owns `session` for its lifetime: only the worker thread calls into it."""

    def __init__(self, session, model: str, max_queue: int = 8):
        self.session = session
        self.model = model
        self.metrics = Metrics(model, session.device, session.kernel_name)
        self._q: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()  # submit's full-check and put are one step
        self._thread = threading.Thread(target=self._work, name="edgestream-device", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        return self._q.qsize()

    def submit(self, job: Job) -> Job:
        with self._lock:
            try:
                self._q.put_nowait(job)
            except queue.Full:
                self.metrics.requests.labels(job.endpoint, "rejected").inc()
                raise QueueFull from None
            self.metrics.queue_depth.set(self._q.qsize())
        return job

    def close(self, timeout: float = 30.0) -> None:
        """Stops the worker after the generation in flight (queued requests are cancelled)."""
        while True:
            try:
                j = self._q.get_nowait()
            except queue.Empty:
                break
            if j is not None:
                j.cancel.set()
                j.emit("error", RuntimeError("the server is shutting down"))
        self._q.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            job = self._q.get()
            self.metrics.queue_depth.set(self._q.qsize())
            if job is None:
                return
            if job.cancel.is_set():
                self.metrics.requests.labels(job.endpoint, "cancelled").inc()
                continue
            self.metrics.running.set(1)
            # the metrics are final before the client hears the outcome
            try:
                res = self._generate(job)
            except Exception as e:  # a device fault fails this request, not the server
                self.metrics.running.set(0)
                self.metrics.requests.labels(job.endpoint, "error").inc()
                job.emit("error", e)
            else:
                self.metrics.running.set(0)
                self.metrics.requests.labels(job.endpoint, res.finish_reason).inc()
                job.emit("done", res)

    def _generate(self, job: Job) -> Result:
        sess, m = self.session, self.metrics
        start = time.perf_counter()
        m.queue_wait.observe(start - job.arrived)
        m.prompt_tokens.inc(len(job.ids))
        dec = StreamDecoder(sess.tokenizer)
        stopper = StopText(job.stop)
        text: list[str] = []
        tokens: list[int] = []
        ttft = 0.0
        eos = set(sess.stop_token_ids)

        def out(piece: str) -> None:
            if piece:
                text.append(piece)
                job.emit("text", piece)

        gen = sess.generate(job.ids, max_new_tokens=job.max_new_tokens, temperature=job.temperature,
                            top_p=job.top_p, seed=job.seed, stop_tokens=[] if job.ignore_eos else None)
        finish = None
        try:
            for tok in gen:
                if not tokens:
                    ttft = time.perf_counter() - job.arrived
                    m.ttft.observe(ttft)
                tokens.append(tok)
                m.generation_tokens.inc()
                if job.cancel.is_set():
                    finish = "cancelled"
                    break
                if tok in eos and not job.ignore_eos:
                    continue  # the end-of-turn token has no text; generate() ends after it
                piece, hit = stopper.push(dec.push(tok))
                out(piece)
                if hit:
                    finish = "stop"
                    break
        finally:
            gen.close()
        if finish is None:
            piece, hit = stopper.push(dec.flush())
            out(piece)
            if not hit:
                out(stopper.flush())
            finish = "stop" if hit or sess.stats.stop_reason == "stop_token" else "length"
        st = sess.stats
        m.decode_tok_s.set(st.decode_tok_s)
        m.prefill_tok_s.set(st.prefill_tok_s)
        return Result(finish, len(job.ids), len(tokens), "".join(text), tokens, ttft, start - job.arrived,
                      st.prefill_tok_s, st.decode_tok_s)

