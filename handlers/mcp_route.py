"""Sends `/mcp` (and `/v1/mcp`) to the MCP endpoint, everything else to the HTTP API; imports the `mcp` SDK on
the first `/mcp` request, so a cold start and a render never pay for it (tests/handlers/test_cold_path.py).

It sits inside the edge middleware (handlers/asgi_edge.py), so `/mcp` gets the same request ids, stage prefix
(`/prod/v1/mcp`), URL and body limits and last-resort 500 as every other route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers.asgi_edge import ASGIApp, Receive, Send

MCP_PATHS = frozenset({"/mcp", "/mcp/", "/v1/mcp", "/v1/mcp/"})


class McpRoute:
    def __init__(self, api: ASGIApp, make_endpoint: Callable[[], ASGIApp]) -> None:
        self.api = api
        self._make_endpoint = make_endpoint
        self._endpoint: ASGIApp | None = None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in MCP_PATHS:
            if self._endpoint is None:
                self._endpoint = self._make_endpoint()
            await self._endpoint(scope, receive, send)
            return
        await self.api(scope, receive, send)

