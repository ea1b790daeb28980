"""The outermost ASGI layer: request ids, stage prefixes, URL and body limits and the last-resort 500.

It wraps the whole FastAPI app, so even an unexpected error answers in the OpenAI error shape and
carries `x-portkey-request-id` (without that header the Portkey SDK retries a 5xx once).

Before the app runs it refuses, in the OpenAI shape:
- a URL (path and query) over `MAX_URL_BYTES`: 414 `url_too_long`;
- a path or query whose percent-escapes are not UTF-8, or a path holding a lone surrogate: 400 `invalid_url`;
- a Content-Length that is not a whole number of bytes, or two that differ: 400 `invalid_content_length`;
- a Content-Length over the body limit: 413 `request_too_large`.
While it runs, the body the app reads is counted: past the limit `receive` raises PayloadTooLarge (413)
instead of handing over more, so nothing behind the edge can buffer an oversized chunked body. Every
413 closes the connection rather than draining the rest of the body.

uvicorn answers some malformed requests itself, before any app: with httptools (the default when it is
installed), a URL of 65,535 bytes or more, a Content-Length that is not a number or is negative, and raw
non-ASCII bytes in the request line get a plain-text `400 Invalid HTTP request received.`; h11 does the
same for the Content-Length cases. No uvicorn setting changes that answer (`h11_max_incomplete_event_size`
only bounds h11's buffer of an incomplete request; httptools' 65,535-byte URL limit is fixed), but its
protocol class can be replaced: `json_errors_http_protocol()` is httptools' with that 400 in the OpenAI
shape, for `uvicorn.run(..., http=json_errors_http_protocol())`. Behind API Gateway (Mangum) those
requests do reach the app, and the checks above answer them.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from core.errors import CuecardError
from handlers.json_body import body_too_large

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-portkey-request-id"
MAX_URL_BYTES = 8192  # path and query string, as sent (percent-escaped): what most proxies and servers allow
# `/prod/v1/prompts/...` → `/v1/prompts/...`: an API Gateway stage in front of the versioned API.
_STAGE_PREFIX = re.compile(r"^/(?!v1(?:/|$))[^/]+(?=/v1(?:/|$))")
logger = logging.getLogger("cuecard.http")


def error_body(status: int, message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_url_bytes: int = MAX_URL_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_url_bytes = max_url_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = os.urandom(16).hex()  # a random 128-bit id, as uuid4().hex but a microsecond cheaper
        refused = _url_problem(scope, self.max_url_bytes) or _length_problem(scope, self.max_body_bytes)
        scope = _strip_stage(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = overflowed = False

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                if overflowed:  # the rest of an oversized body is not read: no other request can follow
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        if refused is not None:
            status, message, code = refused
            await _send_error(send_with_id, status, message, "invalid_request_error", code, close=status == 413)
            return
        limit, received = self.max_body_bytes, 0

        async def receive_within_limit() -> dict[str, Any]:
            nonlocal received, overflowed
            if overflowed:
                raise body_too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise body_too_large(limit)
            return message

        try:
            await self.app(scope, receive_within_limit, send_with_id)
        except CuecardError as exc:  # raised outside the app's handlers, such as the body limit in a middleware
            if started:
                logger.debug("error after the response started", exc_info=True)
                return
            if exc.status >= 500:
                logger.exception("unhandled error")
            await _send_error(send_with_id, exc.status, exc.message, exc.type, exc.code, param=exc.param)
        except Exception:
            if started:
                logger.debug("error after the response started", exc_info=True)
                return
            logger.exception("unhandled error")
            await _send_error(send_with_id, 500, "The server had an error while processing your request.", "api_error",
                              "internal_error")


def _strip_stage(scope: Scope) -> Scope:
    path = scope.get("path", "")
    match = _STAGE_PREFIX.match(path)
    if not match:
        return scope
    stripped, prefix = path[match.end():], match.group(0).encode("utf-8", "surrogatepass")
    # raw_path stays as sent (percent-escapes and all), less the prefix; None when the two do not line up.
    raw_path = scope.get("raw_path")
    raw = raw_path[len(prefix):] if raw_path is not None and raw_path.startswith(prefix) else None
    return {**scope, "path": stripped, "raw_path": raw, "root_path": scope.get("root_path", "") + match.group(0)}


def _url_problem(scope: Scope, max_url_bytes: int) -> tuple[int, str, str] | None:
    """A URL too long to serve, or one whose path or query does not decode to valid Unicode."""
    raw_path = scope.get("raw_path")
    path = scope.get("path", "")
    query = scope.get("query_string", b"")
    try:
        raw = raw_path if raw_path is not None else path.encode("utf-8")
    except UnicodeEncodeError:  # a path from an event (Mangum), not from the wire, can hold a lone surrogate
        return 400, "The request path is not valid Unicode.", "invalid_url"
    if len(raw) + len(query) > max_url_bytes:
        return 414, f"The request URL (path and query) is longer than {max_url_bytes} bytes.", "url_too_long"
    for part, bytes_ in (("path", raw), ("query string", query)):
        if b"%" not in bytes_:
            continue  # raw bytes off the wire were checked by the server; an event's path encoded above
        try:
            unquote_to_bytes(bytes_).decode("utf-8")
        except UnicodeDecodeError:
            return 400, f"The request {part} has percent-escapes that are not UTF-8 text.", "invalid_url"
    return None


def _length_problem(scope: Scope, max_body_bytes: int) -> tuple[int, str, str] | None:
    """A Content-Length that is not a byte count, two that differ, or one over the body limit."""
    values = {value.strip() for name, value in scope.get("headers", []) if name.lower() == b"content-length"}
    if not values:
        return None
    if len(values) > 1 or not all(value.isdigit() for value in values):
        return 400, "The Content-Length header must be one whole number of bytes.", "invalid_content_length"
    digits = values.pop().lstrip(b"0")
    if len(digits) > 18 or int(digits or b"0") > max_body_bytes:
        return 413, body_too_large(max_body_bytes).message, "request_too_large"
    return None


async def _send_error(send: Send, status: int, message: str, type_: str, code: str | None, *,
                      param: str | None = None, close: bool = False) -> None:
    body = error_body(status, message, type_, code, param)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of an oversized body is not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@functools.cache
def json_errors_http_protocol() -> type | str:
    """uvicorn's httptools protocol, answering the requests it cannot parse with a JSON 400 in the OpenAI shape
    instead of plain text; "auto" without httptools. uvicorn is imported here only: never on the Lambda path."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    class JsonErrorsHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            body = error_body(400, "The request is not valid HTTP/1.1: its request line, its URL (at most 65,535 "
                                   "bytes) or a header such as Content-Length is malformed.", "invalid_request_error",
                              "invalid_http_request")
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
                     REQUEST_ID_HEADER + b": " + os.urandom(16).hex().encode() + b"\r\n", b"connection: close\r\n\r\n"]
            self.transport.write(b"".join(head) + body)
            self.transport.close()

    return JsonErrorsHttpToolsProtocol
