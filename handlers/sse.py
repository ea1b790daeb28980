"""Server-sent events as the Portkey and OpenAI SDKs read them: `data: {chunk}` frames, `data: [DONE]`.

A failure after the stream began cannot change the status any more, so it is sent as an
`event: error` frame (the SDKs raise on it) and the stream ends; it never hangs.

The Responses API's events are `event: <type>` frames instead (`event_frames`), without `[DONE]`,
with a keep-alive comment whenever the provider is silent for a while (`with_keepalive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, AsyncIterator, TypeVar

from core.errors import CuecardError
from core.providers import JsonChunk

logger = logging.getLogger("cuecard.sse")
DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"  # a comment: every SSE reader skips it, every proxy sees bytes
HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
T = TypeVar("T")


# `json.dumps` with these options, without building a new JSONEncoder on every call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def data_frame(chunk: Any) -> bytes:
    """`data: <chunk as JSON>`. A provider's chunk whose text was kept (core.providers.JsonChunk) is passed on as the
    provider sent it, `provider` spliced in, rather than encoded again."""
    text = getattr(chunk, "json_text", None) if type(chunk) is JsonChunk else None
    if text is None:
        text = _ENCODE(chunk)
    return b"data: " + text.encode() + b"\n\n"


def error_frame(error: CuecardError) -> bytes:
    return b"event: error\n" + data_frame(error.to_body())


async def sse_frames(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """Frames for a stream whose first chunk already arrived (so the status line said 200)."""
    try:
        yield data_frame(first)
        try:
            async for chunk in rest:
                yield data_frame(chunk)
        except CuecardError as exc:
            yield error_frame(exc)
            return
        except Exception:  # noqa: BLE001 - the client must see an end, not a hang
            logger.exception("stream failed")
            yield error_frame(CuecardError("The stream failed on the server.", code="stream_error"))
            return
        yield DONE
    finally:
        # A client that hangs up must not leave the provider's connection open.
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()


def event_frame(event: Mapping[str, Any]) -> bytes:
    """`event: <type>` then the event as `data:`, as the Responses API frames its events."""
    return b"event: " + str(event["type"]).encode() + b"\n" + data_frame(event)


async def with_keepalive(items: AsyncIterator[T], interval: float) -> AsyncIterator[T | None]:
    """`items`, and None each time `interval` seconds pass without one (the caller sends a keep-alive then).

    The pending read is never cancelled by the wait, only when the consumer stops; `items` is closed then."""
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(items))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


async def resumed(first: Awaitable[T], rest: AsyncIterator[T]) -> AsyncIterator[T]:
    """The item `first` gives (a read of `rest` already started), then the rest of `rest`."""
    try:
        item = await first
    except StopAsyncIteration:
        return
    yield item
    async for item in rest:
        yield item


async def event_frames(events: AsyncIterator[Mapping[str, Any]], upstream: AsyncIterator[Any], *,
                       keepalive: float) -> AsyncIterator[bytes]:
    """Frames of Responses events, a keep-alive comment after each `keepalive` seconds of silence. A client that
    hangs up closes `upstream`, the provider's stream."""
    try:
        async for event in with_keepalive(events, keepalive):
            yield KEEPALIVE if event is None else event_frame(event)
    finally:
        close = getattr(upstream, "aclose", None)
        if close is not None:
            await close()
