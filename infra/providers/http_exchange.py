"""One POST to a provider over the shared client: deadlines, bounded retries, errors mapped once.

Deadlines, from `Timeouts` (asyncio deadlines; the client's own timeouts are only a backstop):
- `first_byte`: from the start of an attempt until the response headers and, for a stream, its
  first SSE event (comments and pings do not count). Restarts with each attempt.
- `read`: once a stream has started, the longest wait between two network chunks.
- `connect`: TCP/TLS connect and the wait for a pooled connection.
- `total`: the whole call, retries and the stream included.
Retries (retry.py) happen only while nothing has reached the caller: for `post_json` until the body
is read, for `post_sse` until the first event is yielded. After that, failures raise at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, TypeVar

from aiohttp import ClientResponse

from core.errors import CuecardError, GatewayTimeout
from core.providers import Timeouts
from infra.providers import upstream_errors as errors
from infra.providers.http_client import HttpClients, shared_clients
from infra.providers.retry import RetryPolicy, retry_after_seconds
from infra.providers.sse import SSEEvent, parse_sse

log = logging.getLogger(__name__)

T = TypeVar("T")

_CLIENT_ERRORS = errors.CLIENT_ERRORS  # what the HTTP client raises; upstream_errors maps it
_READ_FAILURES: tuple[type[BaseException], ...] = (TimeoutError, *_CLIENT_ERRORS)
_NOT_JSON: tuple[type[BaseException], ...] = (ValueError, *_READ_FAILURES)
_DRAIN_ENDS: tuple[type[BaseException], ...] = (CuecardError, *_READ_FAILURES)
DRAIN_GRACE = 0.1  # seconds to wait for the end of the body after a stream's last event


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    provider: str  # names the provider in error messages
    url: str
    headers: Mapping[str, str]
    body: bytes
    timeouts: Timeouts
    secret: str | None = None  # only to redact it from anything the provider echoes


class _Retry(Exception):
    def __init__(self, error: CuecardError, retry_after: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


class _Clock:
    def __init__(self, timeouts: Timeouts) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeouts = timeouts
        self.total_at = self.loop.time() + timeouts.total
        self.first_at = self.total_at
        self.started = False  # a stream's first event went out: `read` governs from now on

    def begin_attempt(self) -> None:
        self.first_at = min(self.total_at, self.loop.time() + self.timeouts.first_byte)
        self.started = False

    def next_deadline(self) -> float:
        if not self.started:
            return self.first_at
        return min(self.total_at, self.loop.time() + self.timeouts.read)

    def timeout_error(self, provider: str) -> GatewayTimeout:
        if self.loop.time() >= self.total_at:
            return GatewayTimeout(f"The call to the provider {provider} exceeded {self.timeouts.total:g}s.")
        if not self.started:
            return GatewayTimeout(f"The provider {provider} did not answer within {self.timeouts.first_byte:g}s.")
        return GatewayTimeout(f"The provider {provider} stalled for more than {self.timeouts.read:g}s mid-stream.")


class HttpExchange:
    def __init__(self, *, retry: RetryPolicy | None = None, clients: HttpClients | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self.clients = clients or shared_clients()

    async def post_json(self, request: UpstreamRequest) -> Any:
        """The parsed JSON of a 2xx answer; a core error otherwise."""
        clock = _Clock(request.timeouts)

        async def attempt() -> Any:
            response = await self._send(request, clock, stream=False)
            try:
                async with asyncio.timeout_at(clock.total_at):
                    content = await response.read()
            except _CLIENT_ERRORS as exc:
                raise _failure(exc, request) from exc
            except TimeoutError:
                raise clock.timeout_error(request.provider) from None
            finally:
                response.release()
            try:
                return json.loads(content)
            except ValueError:
                raise errors.malformed(request.provider, "an answer that is not JSON") from None

        return await self._with_retries(request, clock, attempt)

    async def post_sse(self, request: UpstreamRequest, *,
                       last: Callable[[SSEEvent], bool] | None = None) -> AsyncIterator[SSEEvent]:
        """The SSE events of a 2xx answer as they arrive. Close it (`aclose`) if you stop early.

        `last` names the stream's final event (`data: [DONE]`): once seen, the rest of the body is
        read, briefly, so that the connection can go back to the pool for the next call.
        """
        clock = _Clock(request.timeouts)
        stream = await self._with_retries(request, clock, lambda: self._open_sse(request, clock))
        try:
            event = stream.first
            while True:
                if last is not None and last(event):
                    await stream.drain(min(DRAIN_GRACE, request.timeouts.read))
                    yield event
                    return
                yield event
                try:
                    event = await anext(stream.events)
                except StopAsyncIteration:
                    return
                except CuecardError:
                    raise
                except _CLIENT_ERRORS as exc:
                    raise errors.from_exception(exc, provider=request.provider) from exc
        finally:
            await stream.aclose()

    # --- one attempt ---------------------------------------------------------------------------

    async def _send(self, request: UpstreamRequest, clock: _Clock, *, stream: bool) -> ClientResponse:
        """Sends the request and waits for the headers; returns a 2xx response with its body unread."""
        t = request.timeouts
        client = self.clients.get()
        headers = dict(request.headers)
        if stream:
            headers.setdefault("accept", "text/event-stream")
            headers.setdefault("accept-encoding", "identity")  # no compression that could hold back frames
        else:
            headers.setdefault("accept", "application/json")
        try:
            async with asyncio.timeout_at(clock.first_at):
                response = await client.post(request.url, headers, request.body, connect=t.connect,
                                             read=max(t.read, t.first_byte) + 1.0)
        except _CLIENT_ERRORS as exc:  # before TimeoutError: the client's own timeouts are both
            raise _failure(exc, request) from exc
        except TimeoutError:
            raise clock.timeout_error(request.provider) from None
        if 200 <= response.status <= 299:
            return response
        try:
            async with asyncio.timeout_at(clock.next_deadline()):
                content = await response.read()
        except _READ_FAILURES:
            content = b""
        finally:
            response.release()
        error = errors.from_status(response.status, content, provider=request.provider, secret=request.secret)
        if self.retry.retryable_status(response.status):
            raise _Retry(error, retry_after_seconds(response.headers))
        raise error

    async def _open_sse(self, request: UpstreamRequest, clock: _Clock) -> _OpenStream:
        response = await self._send(request, clock, stream=True)
        stream = _OpenStream(response, clock, request.provider)
        try:
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                raise await _not_a_stream(response, request, clock)
            try:
                stream.first = await anext(stream.events)
            except StopAsyncIteration:
                raise errors.malformed(request.provider, "an empty stream") from None
            except _CLIENT_ERRORS as exc:
                raise _failure(exc, request) from exc
        except BaseException:
            await stream.aclose()
            raise
        clock.started = True
        return stream

    async def _with_retries(self, request: UpstreamRequest, clock: _Clock, attempt: Callable[[], Awaitable[T]]) -> T:
        number = 0
        while True:
            number += 1
            clock.begin_attempt()
            try:
                return await attempt()
            except _Retry as failure:
                delay = self.retry.delay(number, failure.retry_after)
                if delay is None or clock.loop.time() + delay >= clock.total_at:
                    raise failure.error from failure.__cause__
                log.warning("provider %s attempt %d failed (%s), retrying in %.2fs",
                            request.provider, number, failure.error.message, delay)
                await asyncio.sleep(delay)


class _OpenStream:
    """A streaming response and the SSE events parsed from it, with per-chunk deadlines."""

    def __init__(self, response: ClientResponse, clock: _Clock, provider: str) -> None:
        self.response = response
        self.clock = clock
        self.provider = provider
        self.first: SSEEvent | None = None
        self._chunks = self._timed_chunks()
        self.events = parse_sse(self._chunks)

    async def _timed_chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (whatever is buffered, at once: nothing is held back)."""
        content = self.response.content
        while True:
            try:
                async with asyncio.timeout_at(self.clock.next_deadline()):
                    chunk = await content.readany()
            except _CLIENT_ERRORS:
                raise  # mapped by the caller, before TimeoutError: the client's read timeout is both
            except TimeoutError:
                raise self.clock.timeout_error(self.provider) from None
            if not chunk:
                return
            yield chunk

    async def drain(self, grace: float) -> None:
        """Reads to the end of the body (within `grace`), so the connection can be reused."""
        try:
            async with asyncio.timeout(grace):
                async for _ in self.events:
                    pass
        except _DRAIN_ENDS:
            pass  # the connection is closed instead of reused

    async def aclose(self) -> None:
        try:
            await self.events.aclose()
            await self._chunks.aclose()
        finally:
            self.response.release()  # back to the pool if the body was read to its end, else closed


async def _not_a_stream(response: ClientResponse, request: UpstreamRequest, clock: _Clock) -> CuecardError:
    """A 2xx answer to a stream request that is not SSE: an error object, or a protocol break."""
    try:
        async with asyncio.timeout_at(clock.next_deadline()):
            content = await response.read()
        payload = json.loads(content)
    except _NOT_JSON:
        payload = None
    if isinstance(payload, Mapping) and "error" in payload:
        return errors.from_frame(payload, provider=request.provider, secret=request.secret)
    return errors.malformed(request.provider, "a non-stream answer to a stream request")


def _failure(exc: BaseException, request: UpstreamRequest) -> Exception:
    """The core error for a client error, wrapped in `_Retry` when another attempt may help."""
    error = errors.from_exception(exc, provider=request.provider)
    return _Retry(error) if errors.retryable(exc) else error
