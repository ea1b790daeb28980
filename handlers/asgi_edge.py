"""The outermost ASGI layer: request ids, stage prefixes, body limits and the last-resort 500.

It wraps the whole FastAPI app, so even an unexpected error answers in the OpenAI error shape and
carries `x-portkey-request-id` (without that header the Portkey SDK retries a 5xx once).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-portkey-request-id"
# `/prod/v1/prompts/...` → `/v1/prompts/...`: an API Gateway stage in front of the versioned API.
_STAGE_PREFIX = re.compile(r"^/(?!v1(?:/|$))[^/]+(?=/v1(?:/|$))")
logger = logging.getLogger("cuecard.http")


def error_body(status: int, message: str, type_: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope = _strip_stage(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _send_error(send_with_id, 413, f"The request body is larger than {self.max_body_bytes} bytes.",
                              "invalid_request_error", "request_too_large")
            return
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # noqa: BLE001 - the last line of defence; Starlette re-raises after answering
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
    stripped = path[match.end():]
    return {**scope, "path": stripped, "raw_path": stripped.encode(), "root_path": scope.get("root_path", "") + match.group(0)}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(send: Send, status: int, message: str, type_: str, code: str) -> None:
    body = error_body(status, message, type_, code)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
