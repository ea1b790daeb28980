"""Server-sent events as the Portkey and OpenAI SDKs read them: `data: {chunk}` frames, `data: [DONE]`.

A failure after the stream began cannot change the status any more, so it is sent as an
`event: error` frame (the SDKs raise on it) and the stream ends; it never hangs.
"""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncIterator

from core.errors import CuecardError

logger = logging.getLogger("cuecard.sse")
DONE = b"data: [DONE]\n\n"
HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def data_frame(chunk: Any) -> bytes:
    return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


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
