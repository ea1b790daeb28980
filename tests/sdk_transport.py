"""An `httpx.Client` whose requests an ASGI app answers in-process, for SDKs that insist on httpx 0.x (Portkey's).

Starlette's TestClient speaks httpx2 once that is installed (the `mcp` SDK needs it), and an httpx2 client is no
`httpx.Client`: the Portkey SDK refuses it. This transport hands each httpx request to a TestClient and the
answer back as an httpx response.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.testclient import TestClient


class TestClientTransport(httpx.BaseTransport):
    __test__ = False  # not a test class, whatever its name

    def __init__(self, client: TestClient) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answered = self._client.request(request.method, str(request.url), headers=list(request.headers.raw),
                                        content=request.read())
        return httpx.Response(answered.status_code, headers=list(answered.headers.raw), content=answered.content,
                              request=request)


def in_process_client(app: Any, base_url: str) -> httpx.Client:
    """An httpx client whose requests `app` answers (its 500s as responses, as a server would send them)."""
    return httpx.Client(transport=TestClientTransport(TestClient(app, raise_server_exceptions=False)),
                        base_url=base_url)
