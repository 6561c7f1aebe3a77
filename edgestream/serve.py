"""`edgestream serve ART`: an OpenAI-compatible HTTP API (Starlette on uvicorn) in front of one device.

Endpoints: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (server-sent events with
"stream": true), GET /metrics (Prometheus text), GET /health. Requests and responses follow OpenAI's
API reference (field names, `usage`, `finish_reason`, SSE chunks ending in `data: [DONE]`, error
bodies {"error": {"message", "type", "param", "code"}}), so the official `openai` client and the
tools built on it work unchanged. What the device cannot do (n > 1, logprobs, penalties, tools) is
refused with a 400 naming the field, never silently ignored. docs/serving.md has the details.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from edgestream.errors import EdgestreamError
from edgestream.serve_engine import Engine, Job, QueueFull, Result

MAX_BODY_BYTES = 4 << 20  # a 4 MiB JSON body is far past any context this hardware holds
DISCONNECT_POLL_S = 0.2  # how often a non-streamed request checks that its client is still there


class APIError(Exception):
    """An OpenAI-style error response."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# ---- request bodies (OpenAI's field names; unknown fields are ignored, as OpenAI's API does)
class _StreamOptions(BaseModel):
    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: _StreamOptions | None = None
    n: int | None = 1
    presence_penalty: float | None = 0
    frequency_penalty: float | None = 0
    logit_bias: dict[str, float] | None = None
    ignore_eos: bool = False  # vLLM's extension: keep generating past the end-of-sequence token


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = None
    echo: bool | None = False
    best_of: int | None = None
    suffix: str | None = None


class _TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_call_id...: the template may read them
    role: str
    content: str | list[_TextPart] | None = None


class ChatRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = False
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none", "_TextPart"}


def _validate(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        # a union's failed branches add their type names ("str", "list[int]") to the location: drop them
        where = ""
        for x in err["loc"]:
            if isinstance(x, int):
                where += f"[{x}]"
            elif str(x).isidentifier() and str(x) not in _TYPE_TAGS:
                where += f".{x}" if where else str(x)
        raise APIError(400, f"{where}: {err['msg']}" if where else err["msg"], param=where or None) from None


def _unsupported(req: _Sampling) -> None:
    """Fields the device cannot honour at a non-default value: refused, not ignored."""
    checks = [("n", req.n not in (None, 1), "only n=1 is supported (one device generates one sequence)"),
              ("presence_penalty", req.presence_penalty not in (None, 0), "presence_penalty is not supported"),
              ("frequency_penalty", req.frequency_penalty not in (None, 0), "frequency_penalty is not supported"),
              ("logit_bias", bool(req.logit_bias), "logit_bias is not supported")]
    if isinstance(req, CompletionRequest):
        checks += [("logprobs", req.logprobs is not None, "logprobs are not supported"),
                   ("echo", bool(req.echo), "echo is not supported"),
                   ("best_of", req.best_of not in (None, 1), "best_of is not supported"),
                   ("suffix", req.suffix is not None, "suffix (insertion) is not supported")]
    else:
        checks += [("logprobs", bool(req.logprobs), "logprobs are not supported"),
                   ("tools", bool(req.tools), "tools are not supported"),
                   ("response_format", (req.response_format or {}).get("type", "text") != "text",
                    "response_format other than text is not supported")]
    for param, bad, msg in checks:
        if bad:
            raise APIError(400, msg, param=param)
    stops = [req.stop] if isinstance(req.stop, str) else (req.stop or [])
    if len(stops) > 4 or any(not s for s in stops):
        raise APIError(400, "stop: up to 4 non-empty strings", param="stop")


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


class ClientGone(Exception):
    pass


class Server:
    """The OpenAI API over an Engine (which owns the session)."""

    def __init__(self, session, model_id: str, max_queue: int = 8):
        self.session = session
        self.model_id = model_id
        self.engine = Engine(session, model_id, max_queue=max_queue)
        self.created = int(time.time())
        self.context = session.config.max_position
        self.vocab = session.config.vocab_size
        self.fingerprint = f"edgestream-{session.device}-{session.kernel_name}"
        self.app = Starlette(routes=[
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/models/{model:path}", self.model, methods=["GET"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
        ], exception_handlers={APIError: self._api_error, ClientGone: self._gone, 404: self._not_found,
                               405: self._not_allowed})

    def close(self) -> None:
        self.engine.close()

    # ---- errors
    async def _api_error(self, request: Request, e: APIError) -> JSONResponse:
        if request.url.path in ("/v1/completions", "/v1/chat/completions") and e.status != 429:
            self.engine.metrics.requests.labels(_endpoint(request), "invalid").inc()
        return JSONResponse(e.body(), status_code=e.status)

    async def _gone(self, request: Request, e: Exception) -> Response:
        return Response(status_code=499)  # nginx's "client closed request": nobody reads it

    async def _not_found(self, request: Request, e: Exception) -> JSONResponse:
        return JSONResponse(APIError(404, f"no route {request.method} {request.url.path}").body(), status_code=404)

    async def _not_allowed(self, request: Request, e: Exception) -> JSONResponse:
        return JSONResponse(APIError(405, f"{request.method} is not allowed on {request.url.path}").body(),
                            status_code=405)

    # ---- small endpoints
    def _model_card(self) -> dict:
        return {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "edgestream",
                "max_model_len": self.context, "device": self.session.device}

    async def models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [self._model_card()]})

    async def model(self, request: Request) -> JSONResponse:
        self._check_model(request.path_params["model"])
        return JSONResponse(self._model_card())

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "queue_depth": self.engine.queue_depth})

    async def metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.engine.metrics.queue_depth.set(self.engine.queue_depth)
        return Response(generate_latest(self.engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ---- request checks
    def _check_model(self, name: str) -> None:
        if name != self.model_id:
            raise APIError(404, f"The model `{name}` does not exist (this server serves `{self.model_id}`)",
                           param="model", code="model_not_found")

    async def _body(self, request: Request) -> Any:
        n = request.headers.get("content-length")
        if n is not None and n.isdigit() and int(n) > MAX_BODY_BYTES:
            raise APIError(413, f"request body of {n} bytes is over the limit of {MAX_BODY_BYTES}")
        chunks, size = [], 0
        async for c in request.stream():
            size += len(c)
            if size > MAX_BODY_BYTES:
                raise APIError(413, f"request body is over the limit of {MAX_BODY_BYTES} bytes")
            chunks.append(c)
        try:
            body = json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError):
            raise APIError(400, "We could not parse the JSON body of your request (expected a JSON object)") from None
        if not isinstance(body, dict):
            raise APIError(400, "the request body must be a JSON object")
        return body

    def _limits(self, n_prompt: int, max_tokens: int | None, default: int | None, param: str) -> int:
        if n_prompt == 0:
            raise APIError(400, "the prompt is empty", param=param)
        room = self.context - n_prompt
        if room < 1 or (max_tokens is not None and max_tokens > room):
            want = n_prompt + (max_tokens or 1)
            raise APIError(400, f"This model's maximum context length is {self.context} tokens. However, you "
                                f"requested {want} tokens ({n_prompt} in the {param}, {want - n_prompt} in the "
                                f"completion). Please reduce the length of the {param} or completion.",
                           param=param, code="context_length_exceeded")
        return max_tokens if max_tokens is not None else min(room, default or room)

    def _submit(self, request: Request, req: _Sampling, ids: list[int], max_new: int, endpoint: str) -> Job:
        import asyncio

        stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        job = Job(ids=ids, max_new_tokens=max_new, temperature=1.0 if req.temperature is None else req.temperature,
                  top_p=1.0 if req.top_p is None else req.top_p, seed=req.seed, stop=stops,
                  ignore_eos=req.ignore_eos, endpoint=endpoint, loop=asyncio.get_running_loop())
        try:
            return self.engine.submit(job)
        except QueueFull:
            raise APIError(429, f"the device is busy and {self.engine.queue_depth} requests are waiting (the queue "
                                f"is full); retry later", type="rate_limit_error", code="queue_full") from None

    def _prompt_ids(self, prompt: Any) -> list[int]:
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
            if len(prompt) != 1:
                raise APIError(400, "prompt: one prompt per request (batches are not supported)", param="prompt")
            prompt = prompt[0]
        if isinstance(prompt, str):
            try:
                return self.session.encode(prompt)
            except EdgestreamError as e:
                raise APIError(400, str(e), param="prompt") from None
        bad = [t for t in prompt if not 0 <= t < self.vocab]
        if bad:
            raise APIError(400, f"prompt: token id {bad[0]} is outside the vocabulary (0..{self.vocab - 1})",
                           param="prompt")
        return list(prompt)

    # ---- generation endpoints
    async def completions(self, request: Request) -> Response:
        req = _validate(CompletionRequest, await self._body(request))
        self._check_model(req.model)
        _unsupported(req)
        ids = self._prompt_ids(req.prompt)
        max_new = self._limits(len(ids), req.max_tokens, 16, "prompt")  # OpenAI's default max_tokens is 16
        job = self._submit(request, req, ids, max_new, "completions")
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(text: str, finish: str | None) -> dict:
            return {"id": rid, "object": "text_completion", "created": created, "model": self.model_id,
                    "system_fingerprint": self.fingerprint,
                    "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}

        if req.stream:
            return self._stream(job, request, req, lambda t: chunk(t, None), lambda f: chunk("", f), None)
        res = await self._collect(job, request)
        return JSONResponse({**chunk(res.text, _finish(res)), "usage": _usage(res)})

    async def chat_completions(self, request: Request) -> Response:
        req = _validate(ChatRequest, await self._body(request))
        self._check_model(req.model)
        _unsupported(req)
        messages = []
        for m in req.messages:
            d = m.model_dump(exclude_none=True)
            if isinstance(m.content, list):
                d["content"] = "".join(p.text for p in m.content)
            messages.append(d)
        try:
            _, ids = self.session.chat_prompt(messages)
        except EdgestreamError as e:
            raise APIError(400, str(e), param="messages") from None
        max_new = self._limits(len(ids), req.max_completion_tokens or req.max_tokens, None, "messages")
        job = self._submit(request, req, ids, max_new, "chat")
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(delta: dict, finish: str | None) -> dict:
            return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": self.model_id,
                    "system_fingerprint": self.fingerprint,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        if req.stream:
            return self._stream(job, request, req, lambda t: chunk({"content": t}, None), lambda f: chunk({}, f),
                                chunk({"role": "assistant", "content": ""}, None))
        res = await self._collect(job, request)
        return JSONResponse({"id": rid, "object": "chat.completion", "created": created, "model": self.model_id,
                             "system_fingerprint": self.fingerprint,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": res.text},
                                          "logprobs": None, "finish_reason": _finish(res)}],
                             "usage": _usage(res)})

    async def _collect(self, job: Job, request: Request) -> Result:
        """The finished result; cancels the generation when the client goes away first."""
        import asyncio

        checked = time.monotonic()
        try:
            while True:
                kind = None
                try:
                    kind, value = await asyncio.wait_for(job.events.get(), DISCONNECT_POLL_S)
                except TimeoutError:
                    pass
                # text pieces arrive faster than the poll period: look at the clock, not for a quiet spell
                if time.monotonic() - checked >= DISCONNECT_POLL_S:
                    checked = time.monotonic()
                    if await request.is_disconnected():
                        job.cancel.set()
                        raise ClientGone from None
                if kind == "done":
                    return value
                if kind == "error":
                    raise _device_error(value)
        finally:
            job.cancel.set()  # harmless once done; stops the work of a cancelled handler

    def _stream(self, job: Job, request: Request, req: _Sampling, text_chunk, final_chunk, first) -> Response:
        usage = bool(req.stream_options and req.stream_options.include_usage)

        async def events():
            try:
                if first is not None:
                    yield _sse({**first, **({"usage": None} if usage else {})})
                while True:
                    kind, value = await job.events.get()
                    if kind == "text":
                        yield _sse({**text_chunk(value), **({"usage": None} if usage else {})})
                    elif kind == "done":
                        yield _sse({**final_chunk(_finish(value)), **({"usage": None} if usage else {})})
                        if usage:
                            yield _sse({**final_chunk(None), "choices": [], "usage": _usage(value)})
                        yield "data: [DONE]\n\n"
                        return
                    else:
                        yield _sse(_device_error(value).body())
                        return
            finally:
                job.cancel.set()  # the client left mid-stream (or it finished): no more tokens for it

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _endpoint(request: Request) -> str:
    return "chat" if request.url.path.endswith("chat/completions") else "completions"


def _finish(res: Result) -> str:
    return "length" if res.finish_reason == "length" else "stop"


def _usage(res: Result) -> dict:
    return {"prompt_tokens": res.prompt_tokens, "completion_tokens": res.completion_tokens,
            "total_tokens": res.prompt_tokens + res.completion_tokens}


def _device_error(e: Exception) -> APIError:
    return APIError(500 if not isinstance(e, EdgestreamError) else 503, f"generation failed: {e}",
                    type="server_error")


def model_id_of(artifact: str | Path) -> str:
    """The name clients pass as `model`: the artifact directory's name without `.esa`."""
    p = Path(artifact).resolve()
    return p.name[:-4] if p.name.endswith(".esa") else p.name


def build_server(artifact: str | Path, device: str = "cpu", kernel: str | None = None,
                 device_options: dict | None = None, model_id: str | None = None, max_queue: int = 8) -> Server:
    import edgestream
    from edgestream.errors import InputError

    if max_queue < 1:
        raise InputError(f"--max-queue must be >= 1, got {max_queue}")
    sess = edgestream.load(artifact, device=device, kernel=kernel, device_options=device_options)
    if sess.tokenizer is None:
        sess.close()
        raise InputError(f"{artifact}: the artifact has no tokenizer; the HTTP API speaks text")
    return Server(sess, model_id or model_id_of(artifact), max_queue=max_queue)


def serve(server: Server, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
          on_ready=None) -> None:
    """Runs uvicorn until SIGINT/SIGTERM, then closes the server and its session; `on_ready(url)` once the
    socket listens (port 0 picks a free one)."""
    import uvicorn

    config = uvicorn.Config(server.app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
    sock = config.bind_socket()
    h, p = sock.getsockname()[:2]
    url = f"http://{h if ':' not in h else f'[{h}]'}:{p}"
    try:
        _uvicorn_class(lambda: on_ready and on_ready(url))(config).run(sockets=[sock])
    finally:
        server.close()
        server.session.close()


def _uvicorn_class(started):
    import uvicorn

    class Uvicorn(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if not self.should_exit:
                started()  # listening now: a client reading the URL can connect

        @contextlib.contextmanager
        def capture_signals(self):
            # uvicorn re-raises SIGINT/SIGTERM once it has shut down, which kills the process before
            # serve() closes the device (the simulator process, a board's buffers): stop, don't re-raise
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            old = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

    return Uvicorn
