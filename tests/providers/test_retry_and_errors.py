"""The retry policy and the one mapping of upstream failures to core errors, in isolation."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy

from core.errors import BadGateway, GatewayTimeout, UpstreamError
from infra.providers import upstream_errors as errors
from infra.providers.retry import RetryPolicy, retry_after_seconds


def test_backoff_grows_with_jitter_and_stops_at_max_attempts() -> None:
    low = RetryPolicy(max_attempts=4, base_delay=1, max_delay=3, jitter=lambda: 0.0)
    high = RetryPolicy(max_attempts=4, base_delay=1, max_delay=3, jitter=lambda: 1.0)
    assert [low.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, None]
    assert [high.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, None]


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(retry_after_cap=10)
    assert policy.delay(1, retry_after=4) == 4
    assert policy.delay(1, retry_after=11) is None
    assert policy.delay(policy.max_attempts, retry_after=1) is None


def test_retryable_statuses() -> None:
    assert [s for s in (400, 401, 404, 408, 422, 429, 500, 502, 503, 529) if RetryPolicy.retryable_status(s)] == [
        429, 500, 502, 503, 529]


def headers(values: dict[str, str]) -> CIMultiDictProxy[str]:
    """Response headers as aiohttp hands them over (case-insensitive)."""
    return CIMultiDictProxy(CIMultiDict(values))


def test_retry_after_headers() -> None:
    assert retry_after_seconds(headers({"Retry-After": "3"})) == 3
    assert retry_after_seconds(headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after_seconds(headers({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}), now=1445412480) == 10
    assert retry_after_seconds(headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(headers({"retry-after": "-1"})) is None
    assert retry_after_seconds(headers({})) is None


@pytest.mark.parametrize("body, expected", [
    (b'{"error": {"message": "m", "type": "t", "param": "p", "code": "c"}}', ("m", "t", "p", "c")),
    (b'{"error": {"code": "DeploymentNotFound", "message": "m"}}', ("m", None, None, "DeploymentNotFound")),
    (b'{"type": "error", "error": {"type": "invalid_request_error", "message": "m"}}',
     ("m", "invalid_request_error", None, None)),
    (b'{"error": "model not found"}', ("model not found", None, None, None)),
    (b'{"detail": "nope"}', ("nope", None, None, None)),
    (b"plain text", ("plain text", None, None, None)),
])
def test_error_bodies_of_each_style(body: bytes, expected: tuple) -> None:
    error = errors.from_status(418, body, provider="p", secret=None)
    assert isinstance(error, UpstreamError)
    message, type_, param, code = expected
    assert (error.status, error.message, error.param) == (418, message, param)
    assert error.type == (type_ or "invalid_request_error")
    assert error.code == (code or "upstream_error")


def test_5xx_is_bad_gateway_with_the_upstream_message() -> None:
    error = errors.from_status(500, b'{"error": {"message": "oops"}}', provider="openai", secret=None)
    assert isinstance(error, BadGateway) and "500" in error.message and "oops" in error.message


def test_an_empty_error_body_still_says_something() -> None:
    assert errors.from_status(400, b"", provider="p", secret=None).message == "HTTP 400"


def test_the_secret_is_redacted_and_long_messages_are_clipped() -> None:
    error = errors.from_status(401, b"key sk-live-secret rejected " + b"x" * 5000, provider="p", secret="sk-live-secret")
    assert "sk-live-secret" not in error.message
    assert len(error.message) <= errors.MAX_MESSAGE_CHARS + 3


KEY = ConnectionKey("api.example.com", 443, True, True, None, None, None)


@pytest.mark.parametrize("exc, expected, retried", [
    (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")), BadGateway, True),
    (aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "no such host")), BadGateway, True),
    (aiohttp.ClientOSError(104, "reset"), BadGateway, True),
    (aiohttp.ServerDisconnectedError(), BadGateway, True),
    (aiohttp.ClientPayloadError("cut"), BadGateway, True),
    (aiohttp.ClientConnectorCertificateError(KEY, ssl.SSLCertVerificationError("bad certificate")), BadGateway,
     False),
    (aiohttp.ClientResponseError(None, (), status=400, message="bad status line"), BadGateway, False),  # type: ignore[arg-type]
    (aiohttp.InvalidURL("http://a b"), BadGateway, False),
    (aiohttp.ConnectionTimeoutError("slow"), GatewayTimeout, False),
    (aiohttp.SocketTimeoutError("slow"), GatewayTimeout, False),
    (TimeoutError(), GatewayTimeout, False),
])
def test_exceptions(exc: BaseException, expected: type, retried: bool) -> None:
    error = errors.from_exception(exc, provider="p")
    assert type(error) is expected and "api.example.com" not in error.message
    assert errors.retryable(exc) is retried
    assert isinstance(exc, TimeoutError) or isinstance(exc, errors.CLIENT_ERRORS)


@pytest.mark.parametrize("payload, expected, status", [
    ({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}, BadGateway, 502),
    ({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}, UpstreamError, 429),
    ({"error": {"message": "bad", "code": 400}}, UpstreamError, 400),
    ({"error": {"message": "bad", "status": 503}}, BadGateway, 502),
    ("plain text", BadGateway, 502),
])
def test_error_frames(payload: object, expected: type, status: int) -> None:
    error = errors.from_frame(payload, provider="p", secret=None)
    assert type(error) is expected and error.status == status
