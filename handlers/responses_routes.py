"""`POST /v1/responses`: OpenAI's Responses API with a stored prompt (core.responses), as the OpenAI SDK calls it.

The same key and scope as completions (`complete`). Errors before the provider's first chunk keep their status
(a provider's 4xx, 502, 504), as completions do; so a stream waits up to `FIRST_CHUNK_GRACE` seconds for it
before answering. A slower provider gets the stream started (`response.created`, `response.in_progress`) and a
keep-alive comment every `KEEPALIVE_SECONDS` of silence; a failure from then on is `response.failed`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from core.errors import CuecardError
from core.models import Scope, TemplateVersion
from core.responses import ResponsesService
from core.responses_stream import ResponseEvents, response_events
from handlers.sse import HEADERS as SSE_HEADERS
from handlers.sse import event_frames, resumed

FIRST_CHUNK_GRACE = 1.0  # seconds a stream waits for the provider before it starts (read at each call)
KEEPALIVE_SECONDS = 15.0  # seconds of silence before a keep-alive comment


def responses_endpoint(responses: ResponsesService, *, allow: Callable[[Request, Scope], Awaitable[None]],
                       read_body: Callable[[Request], Awaitable[Any]],
                       version_headers: Callable[[TemplateVersion], dict[str, str]],
                       inline: bool) -> Callable[[Request], Awaitable[Response]]:
    """The route's endpoint. `inline`: prepare on the event loop (Lambda), else in a worker thread."""

    async def create_response(request: Request) -> Response:
        await allow(request, Scope.COMPLETE)
        body = await read_body(request)
        request_id = request.scope.get("state", {}).get("request_id", "")
        if inline:
            prepared = responses.prepare(body, request_id=request_id)
        else:
            prepared = await run_in_threadpool(responses.prepare, body, request_id=request_id)
        headers = version_headers(prepared.version)
        if not prepared.stream:
            return JSONResponse(await responses.create(prepared), headers=headers)
        chunks = responses.chunks(prepared)
        first = asyncio.ensure_future(anext(chunks))
        try:
            done, _ = await asyncio.wait({first}, timeout=FIRST_CHUNK_GRACE)
        except BaseException:  # the client left (or the server stops) before the stream began
            first.cancel()
            raise
        if done and first.exception() is not None:  # still a plain HTTP error, with the provider's status
            error = first.exception()
            if isinstance(error, StopAsyncIteration):
                raise CuecardError("The provider ended the stream without a chunk.", code="empty_stream")
            raise error  # type: ignore[misc]
        events = ResponseEvents(prepared.response, new_id=responses.new_id, now=responses.clock)
        frames = event_frames(response_events(events, resumed(first, chunks)), chunks, keepalive=KEEPALIVE_SECONDS)
        return StreamingResponse(frames, media_type="text/event-stream", headers={**headers, **SSE_HEADERS})

    return create_response
