"""A fake OpenAI-compatible upstream: a real HTTP/1.1 server on 127.0.0.1 in a background thread.

    with FakeUpstream() as fake:              # or fake = FakeUpstream().start(); ...; fake.stop()
        fake.base_url                         # "http://127.0.0.1:<port>/v1", a binding's custom_host
        fake.fail_next(429, retry_after=0)    # the next hit answers 429, the one after succeeds
        ...
        fake.hits, fake.last_request.headers, fake.last_request.body

Every POST, whatever its path, is a chat completion (so Azure-style paths work; see `last_request.path`
and `.query`). The reply is deterministic: `Echo: <last user message>`, one token per word. It
honours `n`, `tools` (answers with a tool call of the first tool, or the one `tool_choice` names),
`response_format` json_object/json_schema (content `{"reply": ...}`), `logprobs`/`top_logprobs`,
`stream` (SSE, one chunked-encoding chunk per frame, flushed at once) and
`stream_options.include_usage` (a last chunk with `choices: []` and the usage).

Knobs (attributes, read at each request; `reset()` restores them):
- `token_delay`: seconds before each content token of a stream.
- `first_byte_delay`: seconds before the status line (a slow first byte).
- `cut_after`: in a stream, close the socket after this many frames (no `[DONE]`, no final chunk).
- `stream_frames`: raw SSE frames (`"data: {...}\\n\\n"`, `"event: error\\n..."`) to send instead of
  the generated ones; `token_delay` and `cut_after` still apply.
- `json_reply`: an object to answer non-stream calls with, instead of the generated completion.
- `fail_next(status, times=1, ...)`: the next `times` hits answer `status` with an OpenAI error body
  (and `Retry-After` if given); `drop_next(times=1)`: close the connection without answering.
Records: `hits` (POSTs seen, failed ones included), `requests` (the last 10,000) / `last_request` (`SeenRequest`),
`last_response` (the JSON object sent) and `sent_chunks` (the chunk objects of the last stream).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CREATED = 1_700_000_000
MAX_RECORDED = 10_000  # requests kept in `requests`, the newest
FINGERPRINT = "fp_fake"


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str  # without the query
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, None if not JSON
    raw_body: bytes
    client_port: int  # the caller's port: equal ports mean a reused (kept-alive) connection


@dataclass(frozen=True)
class _Failure:
    status: int | None  # None: drop the connection without an answer
    message: str = ""
    type: str | None = None
    code: str | None = None
    retry_after: float | None = None
    body: bytes | None = None


@dataclass(frozen=True)
class _Knobs:
    """The knobs as they were when a request arrived."""

    token_delay: float
    first_byte_delay: float
    cut_after: int | None
    stream_frames: list[str] | None
    json_reply: Any


class FakeUpstream:
    def __init__(self, *, token_delay: float = 0.0, host: str = "127.0.0.1") -> None:
        self._host = host
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._failures: list[_Failure] = []
        self.token_delay = token_delay
        self.first_byte_delay = 0.0
        self.cut_after: int | None = None
        self.stream_frames: list[str] | None = None
        self.json_reply: Any = None
        self.hits = 0
        self.requests: list[SeenRequest] = []
        self.last_response: Any = None
        self.sent_chunks: list[dict[str, Any]] = []

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        self._stopping.clear()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server((self._host, 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on a delay
        if self._server is not None:
            self._server.shutdown()
            with self._lock:
                connections = list(self._connections)
            for conn in connections:
                _shutdown(conn)
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def origin(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    # --- knobs ---------------------------------------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, message: str | None = None, type: str | None = None,
                  code: str | None = None, retry_after: float | None = None, body: bytes | None = None) -> None:
        """The next `times` hits answer `status` with `{"error": {message, type, param, code}}` (or `body`)."""
        failure = _Failure(status, message or f"fake upstream error {status}",
                           type or ("server_error" if status >= 500 else "invalid_request_error"),
                           code, retry_after, body)
        with self._lock:
            self._failures.extend([failure] * times)

    def drop_next(self, *, times: int = 1) -> None:
        """The next `times` hits get their connection closed without any answer."""
        with self._lock:
            self._failures.extend([_Failure(None)] * times)

    def reset(self) -> None:
        with self._lock:
            self._failures = []
            self.token_delay = self.first_byte_delay = 0.0
            self.cut_after = self.stream_frames = self.json_reply = None
            self.hits = 0
            self.requests = []
            self.last_response = None
            self.sent_chunks = []

    @property
    def last_request(self) -> SeenRequest | None:
        with self._lock:
            return self.requests[-1] if self.requests else None

    # --- the reply -------------------------------------------------------------------------------

    @staticmethod
    def reply_text(body: Any) -> str:
        return "Echo: " + _last_user_text(body)

    @classmethod
    def reply_tokens(cls, body: Any) -> list[str]:
        words = cls.reply_text(body).split(" ")
        return [word if index == 0 else " " + word for index, word in enumerate(words)]

    # --- used by the handler ---------------------------------------------------------------------

    def _record(self, seen: SeenRequest) -> tuple[_Knobs, _Failure | None, int]:
        with self._lock:
            self.hits += 1
            self.requests.append(seen)
            if len(self.requests) > MAX_RECORDED:  # a benchmark's millions of hits stay bounded
                del self.requests[: len(self.requests) - MAX_RECORDED]
            failure = self._failures.pop(0) if self._failures else None
            knobs = _Knobs(self.token_delay, self.first_byte_delay, self.cut_after, self.stream_frames,
                           self.json_reply)
            return knobs, failure, self.hits

    def _sleep(self, seconds: float) -> bool:
        """Sleeps unless stopping; False when the server is stopping."""
        return not (seconds > 0 and self._stopping.wait(seconds)) and not self._stopping.is_set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a caller hanging up is no news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle kept-alive connections end after this
    fake: FakeUpstream

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error",
                                        "param": None, "code": None}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urlsplit(self.path)
        seen = SeenRequest("POST", url.path, dict(parse_qsl(url.query)),
                           {name.lower(): value for name, value in self.headers.items()}, body, raw,
                           self.client_address[1])
        knobs, failure, hit = self.fake._record(seen)
        if not self.fake._sleep(knobs.first_byte_delay):
            return self._drop()
        if failure is not None:
            return self._fail(failure)
        if not isinstance(body, dict):
            return self._send_json(400, _error_body("the body must be a JSON object", "invalid_request_error"))
        if body.get("stream"):
            return self._stream(body, knobs, hit)
        reply = knobs.json_reply if knobs.json_reply is not None else _completion(body, hit)
        self.fake.last_response = reply
        self._send_json(200, reply)

    # --- answers ---------------------------------------------------------------------------------

    def _fail(self, failure: _Failure) -> None:
        if failure.status is None:
            return self._drop()
        content = failure.body if failure.body is not None else json.dumps(
            _error_body(failure.message, failure.type, failure.code)).encode()
        headers = {"retry-after": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
        self._send_bytes(failure.status, content, "application/json", headers)

    def _stream(self, body: dict[str, Any], knobs: _Knobs, hit: int) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.fake.sent_chunks = sent = []
        if knobs.stream_frames is not None:
            frames = [(frame, None, index > 0) for index, frame in enumerate(knobs.stream_frames)]
        else:
            frames = [(f"data: {json.dumps(chunk)}\n\n", chunk, delayed) for chunk, delayed in _chunks(body, hit)]
            frames.append(("data: [DONE]\n\n", None, False))
        for count, (frame, chunk, delayed) in enumerate(frames):
            if knobs.cut_after is not None and count >= knobs.cut_after:
                return self._drop()
            if delayed and not self.fake._sleep(knobs.token_delay):
                return self._drop()
            data = frame.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            if chunk is not None:
                sent.append(chunk)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_json(self, status: int, payload: Any) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json")

    def _send_bytes(self, status: int, content: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(content)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)
        self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        _shutdown(self.connection)


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# --- building OpenAI-shaped answers ---------------------------------------------------------------


def _error_body(message: str, type_: str | None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _last_user_text(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _tool_call(body: dict[str, Any], index: int) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    name = name or (tools[0].get("function") or {}).get("name", "tool")
    arguments = json.dumps({"text": _last_user_text(body)})
    return {"id": f"call_fake_{index}", "type": "function", "function": {"name": name, "arguments": arguments}}


def _content(body: dict[str, Any]) -> str:
    text = FakeUpstream.reply_text(body)
    kind = (body.get("response_format") or {}).get("type")
    return json.dumps({"reply": text}) if kind in ("json_object", "json_schema") else text


def _logprob(token: str, position: int, top: int) -> dict[str, Any]:
    value = -round(0.01 * (position + 1), 4)
    return {"token": token, "logprob": value, "bytes": list(token.encode()),
            "top_logprobs": [{"token": token, "logprob": value, "bytes": list(token.encode())}] if top else []}


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages") or [] if isinstance(m, dict))
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


def _completion(body: dict[str, Any], hit: int) -> dict[str, Any]:
    n = int(body.get("n") or 1)
    tokens = FakeUpstream.reply_tokens(body)
    choices = []
    for index in range(n):
        call = _tool_call(body, index)
        message: dict[str, Any] = {"role": "assistant", "content": None if call else _content(body), "refusal": None}
        if call:
            message["tool_calls"] = [call]
        logprobs = None
        if body.get("logprobs"):
            top = int(body.get("top_logprobs") or 0)
            logprobs = {"content": [_logprob(t, i, top) for i, t in enumerate(tokens)], "refusal": None}
        choices.append({"index": index, "message": message, "logprobs": logprobs,
                        "finish_reason": "tool_calls" if call else "stop"})
    return {"id": f"chatcmpl-fake-{hit}", "object": "chat.completion", "created": CREATED,
            "model": body.get("model") or "fake-model", "system_fingerprint": FINGERPRINT,
            "choices": choices, "usage": _usage(body, len(tokens) * n)}


def _chunks(body: dict[str, Any], hit: int) -> list[tuple[dict[str, Any], bool]]:
    """(chunk, delayed) pairs of a stream; `delayed` chunks wait `token_delay` before going out."""
    n = int(body.get("n") or 1)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    tokens = FakeUpstream.reply_tokens(body)
    json_mode = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
    if json_mode:
        tokens = [_content(body)]
    base = {"id": f"chatcmpl-fake-{hit}", "object": "chat.completion.chunk", "created": CREATED,
            "model": body.get("model") or "fake-model", "system_fingerprint": FINGERPRINT}

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        out = {**base, "choices": choices}
        if include_usage:
            out["usage"] = None
        return out

    def choice(index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}

    out: list[tuple[dict[str, Any], bool]] = []
    calls = [_tool_call(body, index) for index in range(n)]
    for index in range(n):
        out.append((chunk([choice(index, {"role": "assistant", "content": None if calls[index] else "",
                                          "refusal": None})]), False))
    if any(calls):
        for index, call in enumerate(calls):
            out.append((chunk([choice(index, {"tool_calls": [{"index": 0, **call}]})]), True))
    else:
        top = int(body.get("top_logprobs") or 0)
        for position, token in enumerate(tokens):
            for index in range(n):
                logprobs = {"content": [_logprob(token, position, top)], "refusal": None} if body.get("logprobs") else None
                out.append((chunk([choice(index, {"content": token}, logprobs=logprobs)]), index == 0))
    for index in range(n):
        out.append((chunk([choice(index, {}, "tool_calls" if calls[index] else "stop")]), False))
    if include_usage:
        out.append(({**base, "choices": [], "usage": _usage(body, len(tokens) * n)}, False))
    return out
