"""What users rely on from the upstream client besides speed: proxies from the environment, trust roots, and
one session per loop that is let go quietly once its loop has closed."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import socket
import threading
import warnings
from typing import Iterator

import pytest

from core.errors import BadGateway
from infra.providers.http_client import HttpClients, environment_proxies, ssl_context
from infra.providers.openai_compatible import OpenAIProvider
from tests.fake_upstream import FakeUpstream
from tests.providers.conftest import FAST_RETRY, binding, collect, make_call

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                   "NO_PROXY", "REQUEST_METHOD", "SSL_CERT_FILE", "SSL_CERT_DIR")


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1 that answers every request itself, and records what it saw."""

    ANSWER = json.dumps({"id": "via-proxy", "object": "chat.completion", "created": 0, "model": "m",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "proxied"},
                                      "finish_reason": "stop"}]}).encode()

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.05)
        self.stopping = threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.seen: list[tuple[str, dict[str, str]]] = []  # request line, headers (lower-cased names)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                line, *fields = head.decode().split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
                while len(body) < int(headers.get("content-length", "0")):
                    body += conn.recv(65536)
                self.seen.append((line, headers))
                if line.startswith("CONNECT "):  # a tunnel to an https upstream: refused
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(self.ANSWER), self.ANSWER))

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    server = ForwardProxy()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def complete(fake: FakeUpstream, clients: HttpClients) -> dict:
    async def call() -> dict:
        try:
            return await OpenAIProvider(clients=clients).complete(make_call(fake))
        finally:
            await clients.aclose()

    return asyncio.run(call())


def test_http_proxy_from_the_environment_carries_the_call(fake: FakeUpstream, proxy: ForwardProxy,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    answer = complete(fake, HttpClients())
    assert answer["id"] == "via-proxy" and fake.hits == 0
    (line, headers), = proxy.seen
    assert line == f"POST {fake.base_url}/chat/completions HTTP/1.1"  # absolute form: a forward proxy's request
    assert headers["authorization"].startswith("Bearer ")
    assert "proxy-authorization" not in headers


def test_lower_case_all_proxy_and_credentials_in_the_proxy_url(fake: FakeUpstream, proxy: ForwardProxy,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("all_proxy", proxy.url.replace("http://", "http://user:p%40ss@"))
    assert complete(fake, HttpClients())["id"] == "via-proxy"
    (_, headers), = proxy.seen
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()


def test_https_upstreams_tunnel_through_https_proxy_with_its_credentials(proxy: ForwardProxy,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://user:secret@"))
    clients = HttpClients()

    async def call() -> None:
        try:
            await OpenAIProvider(retry=FAST_RETRY, clients=clients).complete(
                make_call(vk=binding(custom_host="https://api.example.test/v1")))
        finally:
            await clients.aclose()

    with pytest.raises(BadGateway, match=r"proxy refused .* \(HTTP 403\)"):
        asyncio.run(call())
    (line, headers), = proxy.seen  # refused by the proxy: not retried
    assert line == "CONNECT api.example.test:443 HTTP/1.1"
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:secret").decode()
    assert "authorization" not in headers  # the API key never reaches the proxy


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
def test_no_proxy_bypasses_it(fake: FakeUpstream, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch,
                              no_proxy: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert complete(fake, HttpClients())["id"] != "via-proxy"
    assert fake.hits == 1 and proxy.seen == []


def test_an_https_proxy_is_not_used_for_http(fake: FakeUpstream, proxy: ForwardProxy,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert complete(fake, HttpClients())["id"] != "via-proxy"
    assert proxy.seen == []


def test_without_trust_env_the_environment_is_ignored(fake: FakeUpstream, proxy: ForwardProxy,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/bundle.pem")
    assert complete(fake, HttpClients(trust_env=False))["id"] != "via-proxy"
    assert proxy.seen == []


def test_the_environment_is_read_when_a_loop_s_client_is_made(fake: FakeUpstream, proxy: ForwardProxy,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    clients = HttpClients()

    async def twice() -> list[str]:
        provider = OpenAIProvider(clients=clients)
        try:
            first = await provider.complete(make_call(fake))
            monkeypatch.setenv("HTTP_PROXY", proxy.url)  # too late for this loop's client, as with httpx
            second = await provider.complete(make_call(fake))
            return [first["id"], second["id"]]
        finally:
            await clients.aclose()

    assert "via-proxy" not in asyncio.run(twice())
    assert complete(fake, clients)["id"] == "via-proxy"  # a new loop, a new client: it sees the proxy


def test_a_socks_proxy_is_refused_with_a_clear_error(fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(BadGateway, match="socks5:// proxy"):
        complete(fake, HttpClients())


def test_a_stream_through_the_proxy_setting_still_streams(fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # unreachable, but bypassed
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    clients = HttpClients()

    async def scenario() -> tuple[list, BaseException | None]:
        try:
            return await collect(OpenAIProvider(clients=clients), make_call(fake, stream=True))
        finally:
            await clients.aclose()

    chunks, error = asyncio.run(scenario())
    assert error is None and chunks == fake.sent_chunks


def test_environment_proxies_follow_urllib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:1")
    monkeypatch.setenv("https_proxy", "http://lower:1")
    monkeypatch.setenv("NO_PROXY", ".internal")
    assert environment_proxies() == {"https": "http://lower:1", "no": ".internal"}
    monkeypatch.setenv("REQUEST_METHOD", "GET")  # CGI: HTTP_PROXY may come from a request header (httpoxy)
    monkeypatch.setenv("HTTP_PROXY", "http://attacker:1")
    assert "http" not in environment_proxies()


def test_trust_roots_follow_ssl_cert_file(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ssl_context(True).get_ca_certs() or ssl_context(True).cert_store_stats()["x509_ca"] > 0
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/bundle.pem")
    with pytest.raises(FileNotFoundError):
        ssl_context(True)
    assert ssl_context(False).cert_store_stats()["x509_ca"] > 0  # certifi's, the variable ignored


def test_sessions_of_closed_loops_are_let_go_without_a_complaint(fake: FakeUpstream,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    clients = HttpClients()

    async def call_without_closing() -> None:
        await OpenAIProvider(clients=clients).complete(make_call(fake))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            asyncio.run(call_without_closing())  # as a test client's throwaway loop does
        gc.collect()
        assert len(clients._clients) == 1  # the two older loops' sessions were let go
        for client in clients._clients.values():
            client.abandon()
        clients._clients.clear()
        gc.collect()
    assert not [w for w in caught if "Unclosed" in str(w.message)]
    assert "Unclosed" not in caplog.text
