"""The process's one `httpx.AsyncClient` for provider calls: pooled, kept alive, HTTP/1.1, made lazily.

An AsyncClient belongs to the event loop it first ran on, so there is one per running loop (in
production uvicorn and Mangum each keep one loop per process, so one client; a test's new loop gets
its own). The client has no timeout of its own: every request passes its own (see http_exchange.py),
so nothing global cuts a long stream.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

import httpx


class HttpClients:
    def __init__(self, *, max_connections: int = 256, max_keepalive_connections: int = 64,
                 keepalive_expiry: float = 20.0, trust_env: bool = True) -> None:
        self._limits = httpx.Limits(max_connections=max_connections,
                                    max_keepalive_connections=max_keepalive_connections,
                                    keepalive_expiry=keepalive_expiry)
        self._trust_env = trust_env
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    def get(self) -> httpx.AsyncClient:
        """The running loop's client, made on first use. Call from inside a coroutine."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            with self._lock:
                client = self._clients.get(loop)
                if client is None or client.is_closed:
                    client = httpx.AsyncClient(limits=self._limits, timeout=None, http1=True, http2=False,
                                               follow_redirects=False, trust_env=self._trust_env)
                    self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Closes the running loop's client (at shutdown, or at the end of a test's loop)."""
        with self._lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


_shared = HttpClients()


def shared_clients() -> HttpClients:
    """The process-wide instance every adapter uses unless given its own."""
    return _shared
