"""The process's upstream HTTP client for provider calls: aiohttp, pooled, kept alive, HTTP/1.1, made lazily.

Why aiohttp: `./dev bench upstream_clients` (the same calls, one run, ratios). httpx's async client spent
about 580 µs of CPU a call at c=1 and 860 µs at c=16, most of it in httpcore's pool (it re-examines every
pooled connection, with a socket poll each, twice a request) and in httpx's own request and response models;
aiohttp spends about 100 and 60 µs (115 and 70 with http_exchange.py on top). The floor, a bare asyncio
Protocol with httptools, is about 30 and 15; pyreqwest (Rust) was 75 and 30, but is a 0.x release.

A ClientSession belongs to the event loop it was made on, so there is one per running loop (in production
uvicorn and Mangum each keep one loop per process, so one session; a test's new loop gets its own, and the
sessions of loops that have closed since are let go when the next one is made).

What the old httpx setup did and this one keeps:
- Proxies from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY, upper or lower case), read
  once, when a loop's client is made, like httpx's `trust_env`; the answer for each origin is kept. aiohttp's
  own `trust_env` would read them, and ~/.netrc, on every request: 220 µs a call.
- TLS verified against certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set (httpx's rules).
- No timeout of the client's own: each request passes `connect` (connecting, and waiting for a pooled
  connection) and a per-read backstop; the real deadlines are asyncio ones (http_exchange.py).
- No redirects followed, no cookies kept, responses decompressed unless the request asks for identity.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import ssl
import threading
import urllib.request
from typing import Mapping
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from core.errors import BadGateway

MAX_HEADER_BYTES = 16 * 1024  # a response header line or field (aiohttp's default is 8190; h11's was 16 KiB)


class UpstreamClient:
    """One loop's aiohttp session, with the environment's proxies as they were when it was made."""

    def __init__(self, *, ssl_context: ssl.SSLContext, limit: int, keepalive_timeout: float,
                 proxies: Mapping[str, str]) -> None:
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=keepalive_timeout,
                                         ssl=ssl_context, resolver=aiohttp.ThreadedResolver())
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None), trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True, raise_for_status=False,
            max_line_size=MAX_HEADER_BYTES, max_field_size=MAX_HEADER_BYTES)
        self._proxies = dict(proxies)
        self._routes: dict[tuple[str, str], tuple[str | None, dict[str, str] | None]] = {}
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    @property
    def is_closed(self) -> bool:
        return self.session.closed

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, *, connect: float,
                   read: float) -> aiohttp.ClientResponse:
        """Sends the request; returns once the response headers are in, its body unread.

        `connect` bounds connecting and the wait for a pooled connection, `read` each wait for bytes.
        Raises aiohttp's errors (upstream_errors.py maps them).
        """
        proxy, proxy_headers = self.proxy_for(url)
        if proxy_headers and url.startswith("http:"):  # aiohttp sends proxy_headers only with an https CONNECT
            headers = {**headers, **proxy_headers}
        timeout = self._timeouts.get((connect, read))
        if timeout is None:
            timeout = self._timeouts[(connect, read)] = aiohttp.ClientTimeout(
                total=None, connect=connect, sock_read=read)
        return await self.session.request("POST", url, data=body, headers=headers, proxy=proxy,
                                          proxy_headers=proxy_headers, timeout=timeout, allow_redirects=False)

    def proxy_for(self, url: str) -> tuple[str | None, dict[str, str] | None]:
        """The proxy for `url`'s origin (and the header with its credentials), or (None, None): worked out once
        an origin."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = _route(parts.scheme, parts.netloc, self._proxies)
        return route

    async def aclose(self) -> None:
        await self.session.close()

    def abandon(self) -> None:
        """Lets go of a session whose loop has closed (nothing can be awaited on it any more) without
        aiohttp's "Unclosed client session" complaint; the sockets close when collected."""
        connector = self.session.connector
        self.session.detach()
        if connector is not None:
            connector._close()  # the synchronous part of close(): marks it closed (its loop is gone)


class HttpClients:
    def __init__(self, *, max_connections: int = 256, keepalive_expiry: float = 20.0,
                 trust_env: bool = True) -> None:
        self._limit = max_connections
        self._keepalive = keepalive_expiry
        self._trust_env = trust_env
        self._ssl: ssl.SSLContext | None = None
        self._clients: dict[asyncio.AbstractEventLoop, UpstreamClient] = {}
        self._lock = threading.Lock()

    def get(self) -> UpstreamClient:
        """The running loop's client, made on first use. Call from inside a coroutine."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            with self._lock:
                client = self._clients.get(loop)
                if client is None or client.is_closed:
                    self._forget_closed_loops()
                    if self._ssl is None:
                        self._ssl = ssl_context(self._trust_env)
                    proxies = environment_proxies() if self._trust_env else {}
                    client = UpstreamClient(ssl_context=self._ssl, limit=self._limit,
                                            keepalive_timeout=self._keepalive, proxies=proxies)
                    self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Closes the running loop's client (at shutdown, or at the end of a test's loop)."""
        with self._lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def _forget_closed_loops(self) -> None:
        for loop in [loop for loop in self._clients if loop.is_closed()]:
            self._clients.pop(loop).abandon()

    def abandon_all(self) -> None:
        """At exit: lets every session go quietly (a server stopped without closing them, a script's
        `asyncio.run`), instead of aiohttp's "Unclosed client session" on stderr."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.abandon()


def environment_proxies() -> dict[str, str]:
    """{scheme or "all" or "no": value} from the *_proxy variables (lower case first; urllib's rules)."""
    return {scheme: value for scheme, value in urllib.request.getproxies_environment().items()
            if scheme in ("http", "https", "all", "no") and value}


def _route(scheme: str, netloc: str, proxies: Mapping[str, str]) -> tuple[str | None, dict[str, str] | None]:
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or _bypass(netloc.rpartition("@")[2], proxies):
        return None, None
    if "://" not in proxy:
        proxy = "http://" + proxy
    url = URL(proxy)
    if url.scheme not in ("http", "https"):
        raise BadGateway(f"The proxy set for {scheme}:// requests in the environment is a {url.scheme}:// proxy; "
                         "only http:// and https:// proxies are supported.")
    auth = aiohttp.BasicAuth.from_url(url)
    if auth is None:
        return str(url), None
    return str(url.with_user(None)), {"Proxy-Authorization": auth.encode()}


def _bypass(host: str, proxies: Mapping[str, str]) -> bool:
    """urllib's NO_PROXY matching (suffixes, `*`, optional ports); typeshed does not list it."""
    matches: bool = urllib.request.proxy_bypass_environment(host, proxies)  # type: ignore[attr-defined]
    return matches


def ssl_context(trust_env: bool) -> ssl.SSLContext:
    """httpx's choice of trust roots: SSL_CERT_FILE, else SSL_CERT_DIR (with trust_env), else certifi's bundle."""
    if trust_env and os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if trust_env and os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    try:
        import certifi
    except ImportError:  # no certifi: the system's roots
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


_shared = HttpClients()
atexit.register(_shared.abandon_all)


def shared_clients() -> HttpClients:
    """The process-wide instance every adapter uses unless given its own."""
    return _shared
