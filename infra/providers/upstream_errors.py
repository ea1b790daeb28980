"""The one mapping from the HTTP client's (aiohttp's) exceptions and upstream HTTP answers to core errors.

- upstream 4xx                      -> UpstreamError with the same status and the provider's message
- upstream 5xx (after retries)      -> BadGateway
- refused / reset / protocol errors -> BadGateway (also a connection cut mid-stream)
- any timeout, first byte included  -> GatewayTimeout
Which client errors are worth another attempt (`retryable`) is decided here too.
Messages never hold the API key: whatever the provider echoes is redacted.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import aiohttp

from core.errors import BadGateway, CuecardError, GatewayTimeout, UpstreamError

MAX_MESSAGE_CHARS = 1000

# Everything the HTTP client raises for a failed call (its timeouts included: they are TimeoutErrors too).
CLIENT_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError,)

# Anthropic-style error `type` -> HTTP status, for error frames that carry no status of their own.
_TYPE_STATUSES: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
}


def redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4 and secret in text:
        text = text.replace(secret, "[redacted]")
    return text


def error_details(payload: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, type, param, code) from an OpenAI, Azure or Anthropic error body, or a bare one.

    OpenAI `{"error": {"message", "type", "param", "code"}}`, Azure `{"error": {"code", "message"}}`,
    Anthropic `{"type": "error", "error": {"type", "message"}}`, Ollama `{"error": "..."}`,
    others `{"message": ...}` or `{"detail": ...}`.
    """
    if not isinstance(payload, Mapping):
        return (payload if isinstance(payload, str) else None), None, None, None
    error = payload.get("error", payload)
    if isinstance(error, str):
        return error, None, None, None
    if not isinstance(error, Mapping):
        return None, None, None, None
    message = error.get("message") if error.get("message") is not None else error.get("detail")
    if message is not None and not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False)
    return message, _text(error.get("type")), _text(error.get("param")), _text(error.get("code"))


def from_status(status: int, content: bytes, *, provider: str, secret: str | None) -> CuecardError:
    """The core error for an upstream answer with a non-2xx status."""
    message, type_, param, code = _details_of(content)
    message = redact(_clip(message or f"HTTP {status}"), secret)
    if 400 <= status <= 499:
        return UpstreamError(message, status=status, type_=type_, param=param, code=code)
    return BadGateway(f"The provider {provider} failed with HTTP {status}: {message}")


def from_frame(payload: Any, *, provider: str, secret: str | None) -> CuecardError:
    """The core error for an error frame inside a stream (`event: error` or `{"error": ...}`)."""
    message, type_, param, code = error_details(payload)
    message = redact(_clip(message or "unknown error"), secret)
    status = _frame_status(payload, type_, code)
    if status is not None and 400 <= status <= 499:
        return UpstreamError(message, status=status, type_=type_, param=param, code=code)
    return BadGateway(f"The provider {provider} failed mid-stream: {message}")


def from_exception(exc: BaseException, *, provider: str) -> CuecardError:
    """The core error for an aiohttp (or asyncio timeout) exception. Never echoes URLs or headers."""
    if isinstance(exc, CuecardError):
        return exc
    if isinstance(exc, TimeoutError):  # aiohttp's ConnectionTimeoutError and SocketTimeoutError are ones
        return GatewayTimeout(f"The provider {provider} timed out ({_kind(exc)}).")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return BadGateway(f"The proxy refused the connection to the provider {provider} (HTTP {exc.status}).")
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS, the proxy
        return BadGateway(f"Could not connect to the provider {provider}.")
    if isinstance(exc, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return BadGateway(f"The connection to the provider {provider} broke off.")
    return BadGateway(f"The call to the provider {provider} failed ({_kind(exc)}).")


def retryable(exc: BaseException) -> bool:
    """Worth another attempt if nothing reached the caller: refused, reset, or the peer hung up (a kept-alive
    connection it closed, a body cut short). Never a timeout (the provider may still be working, and billing),
    nor a certificate the server will present again."""
    if isinstance(exc, (TimeoutError, aiohttp.ClientConnectorCertificateError, aiohttp.ServerFingerprintMismatch)):
        return False
    return isinstance(exc, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError))


def malformed(provider: str, what: str) -> BadGateway:
    return BadGateway(f"The provider {provider} sent {what}.")


def _details_of(content: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    text = content.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return (text or None), None, None, None
    message, type_, param, code = error_details(payload)
    return (message if message is not None else text or None), type_, param, code


def _frame_status(payload: Any, type_: str | None, code: str | None) -> int | None:
    error = payload.get("error") if isinstance(payload, Mapping) else None
    for source in (error, payload):
        if isinstance(source, Mapping):
            for key in ("status", "status_code", "code"):
                value = source.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
                if isinstance(value, str) and value.isdigit() and len(value) == 3:
                    return int(value)
    return _TYPE_STATUSES.get(type_ or "")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + "..."


def _kind(exc: BaseException) -> str:
    return type(exc).__name__
