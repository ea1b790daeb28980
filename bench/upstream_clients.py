"""Upstream HTTP clients compared: CPU a request and latency, at c=1 and c=16, and streaming, in one run.

Each candidate runs in its own process pinned to one core (the last), the upstream (bench/fast_upstream.py,
about 30 µs a request) on another, on uvloop like `cuecard serve`. A candidate does what a provider call
does: POST a 400-character chat body with per-request timeouts inside an asyncio deadline, read the whole
JSON answer, or read an SSE stream chunk by chunk. Rounds are interleaved with the order rotated; the
figures are medians over rounds and ratios against the `httpx` candidate (cuecard's setup before issue 12).

    ./dev bench upstream_clients [--rounds 3] [--candidates httpx,aiohttp,...] [--n 2000]

Candidates (skipped when their library is missing):
- floor: asyncio Protocol + httptools, a bare keep-alive pool: no proxies, no TLS; a lower bound, not a choice
- httpx: httpx.AsyncClient as infra/providers/http_client.py had it (256/64 connections, 20 s keep-alive)
- httpx-pool: the same with a pool sized to the load (32/32) and no keep-alive expiry
- httpcore: httpcore's AsyncConnectionPool alone, without httpx's client layer (where httpx's cost is)
- httpx2: httpx2 (the httpx fork the mcp and openai SDKs depend on), configured like httpx
- aiohttp: aiohttp.ClientSession, TCPConnector(limit=256, keepalive_timeout=20), proxies passed per request
- aiohttp-env: the same with trust_env=True (proxies and ~/.netrc looked up on every request)
- pyreqwest: pyreqwest (Rust reqwest through PyO3); streams read with no read-ahead buffer
- exchange: what infra/providers ships now (HttpExchange.post_json / post_sse), whatever client it uses
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ["floor", "httpx", "httpx-pool", "httpcore", "httpx2", "aiohttp", "aiohttp-env", "pyreqwest", "exchange"]
MODULES = {"floor": "httptools", "httpx": "httpx", "httpx-pool": "httpx", "httpcore": "httpcore", "httpx2": "httpx2",
           "aiohttp": "aiohttp", "aiohttp-env": "aiohttp", "pyreqwest": "pyreqwest", "exchange": "infra.providers.http_exchange"}
CONNECT, READ = 10.0, 60.0  # the per-request timeouts each candidate is given (seconds)


def chat_body(stream: bool) -> bytes:
    text = ("lorem ipsum dolor sit amet " * 15)[:400]
    body: dict[str, Any] = {"model": "fake-gpt", "messages": [{"role": "system", "content": "You are a benchmark."},
                                                               {"role": "user", "content": text}],
                            "max_tokens": 64, "temperature": 0}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench", "accept": "application/json"}
SSE_HEADERS = {**HEADERS, "accept": "text/event-stream", "accept-encoding": "identity"}


# --- candidates: open(), post(url, body) -> bytes, stream(url, body) -> chunks, close() -------------------


class Floor:
    """A bare keep-alive HTTP/1.1 client: asyncio Protocol + httptools, one idle list for one origin."""

    def __init__(self) -> None:
        import httptools

        self.httptools = httptools
        self.idle: list[Any] = []

    async def open(self) -> None:
        pass

    async def _conn(self, url: str) -> Any:
        if self.idle:
            return self.idle.pop()
        parsed = self.httptools.parse_url(url.encode())
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: _FloorConn(self.httptools), parsed.host.decode(), parsed.port)
        return proto

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        conn = await self._conn(url)
        path = url.split("/", 3)[3]
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        conn.begin()
        conn.transport.write(f"POST /{path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{head}content-length: {len(body)}\r\n\r\n"
                             .encode() + body)
        await conn.headers
        return conn

    async def post(self, url: str, body: bytes) -> bytes:
        async with asyncio.timeout(READ):
            conn = await self._send(url, body, HEADERS)
            parts = []
            while (chunk := await conn.chunks.get()) is not None:
                parts.append(chunk)
            self.idle.append(conn)
            return b"".join(parts)

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        async with asyncio.timeout(READ):
            conn = await self._send(url, body, SSE_HEADERS)
        while True:
            async with asyncio.timeout(READ):
                chunk = await conn.chunks.get()
            if chunk is None:
                break
            yield chunk
        self.idle.append(conn)

    async def close(self) -> None:
        for conn in self.idle:
            conn.transport.close()


class _FloorConn(asyncio.Protocol):
    def __init__(self, httptools: Any) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None

    def begin(self) -> None:
        loop = asyncio.get_running_loop()
        self.headers = loop.create_future()
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_headers_complete(self) -> None:
        self.headers.set_result(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        self.chunks.put_nowait(body)

    def on_message_complete(self) -> None:
        self.chunks.put_nowait(None)


class Httpx:
    module = "httpx"
    limits = (256, 64, 20.0)

    def __init__(self) -> None:
        import importlib

        self.httpx = importlib.import_module(self.module)

    async def open(self) -> None:
        x = self.httpx
        connections, keepalive, expiry = self.limits
        self.client = x.AsyncClient(limits=x.Limits(max_connections=connections, max_keepalive_connections=keepalive,
                                                    keepalive_expiry=expiry),
                                    timeout=None, http1=True, http2=False, follow_redirects=False, trust_env=True)
        self.timeout = x.Timeout(connect=CONNECT, read=READ, write=READ, pool=CONNECT)

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        request = self.client.build_request("POST", url, content=body, headers=headers, timeout=self.timeout)
        async with asyncio.timeout(READ):
            return await self.client.send(request, stream=True)

    async def post(self, url: str, body: bytes) -> bytes:
        response = await self._send(url, body, HEADERS)
        try:
            async with asyncio.timeout(READ):
                return bytes(await response.aread())
        finally:
            await response.aclose()

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        response = await self._send(url, body, SSE_HEADERS)
        try:
            chunks = response.aiter_bytes()
            while True:
                async with asyncio.timeout(READ):
                    chunk = await anext(chunks, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self.client.aclose()


class HttpxPool(Httpx):
    limits = (32, 32, None)  # type: ignore[assignment]


class Httpx2(Httpx):
    module = "httpx2"


class Httpcore:
    def __init__(self) -> None:
        import httpcore

        self.httpcore = httpcore

    async def open(self) -> None:
        self.pool = self.httpcore.AsyncConnectionPool(max_connections=256, max_keepalive_connections=64,
                                                      keepalive_expiry=20.0)
        self.extensions = {"timeout": {"connect": CONNECT, "read": READ, "write": READ, "pool": CONNECT}}

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        async with asyncio.timeout(READ):
            return await self.pool.handle_async_request(self.httpcore.Request(
                "POST", url, headers=[("host", "127.0.0.1"), *headers.items(), ("content-length", str(len(body)))],
                content=body,
                extensions=self.extensions))

    async def post(self, url: str, body: bytes) -> bytes:
        response = await self._send(url, body, HEADERS)
        try:
            async with asyncio.timeout(READ):
                return b"".join([part async for part in response.aiter_stream()])
        finally:
            await response.aclose()

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        response = await self._send(url, body, SSE_HEADERS)
        try:
            chunks = response.aiter_stream()
            while True:
                async with asyncio.timeout(READ):
                    chunk = await anext(chunks, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self.pool.aclose()


class Aiohttp:
    """aiohttp with the environment's proxies read once (trust_env=True reads them, and ~/.netrc, every request)."""

    trust_env = False

    def __init__(self) -> None:
        import aiohttp

        self.aiohttp = aiohttp

    async def open(self) -> None:
        a = self.aiohttp
        self.session = a.ClientSession(connector=a.TCPConnector(limit=256, limit_per_host=0, keepalive_timeout=20.0),
                                       timeout=a.ClientTimeout(total=None), trust_env=self.trust_env,
                                       auto_decompress=True)
        self.timeout = a.ClientTimeout(total=None, connect=CONNECT, sock_read=READ)

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        async with asyncio.timeout(READ):
            return await self.session._request("POST", url, data=body, headers=headers, timeout=self.timeout,
                                               allow_redirects=False, proxy=None)

    async def post(self, url: str, body: bytes) -> bytes:
        response = await self._send(url, body, HEADERS)
        try:
            async with asyncio.timeout(READ):
                return bytes(await response.read())
        finally:
            response.release()

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        response = await self._send(url, body, SSE_HEADERS)
        try:
            content = response.content
            while True:
                async with asyncio.timeout(READ):
                    chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        finally:
            response.release()

    async def close(self) -> None:
        await self.session.close()


class AiohttpEnv(Aiohttp):
    trust_env = True


class Pyreqwest:
    def __init__(self) -> None:
        import pyreqwest.client

        self.module = pyreqwest.client

    async def open(self) -> None:
        self.client = (self.module.ClientBuilder().connect_timeout(timedelta(seconds=CONNECT))
                       .pool_idle_timeout(timedelta(seconds=20)).http1_only().build())
        self.timeout = timedelta(seconds=READ)

    async def post(self, url: str, body: bytes) -> bytes:
        async with asyncio.timeout(READ):
            response = await (self.client.post(url).headers(HEADERS).body_bytes(body).timeout(self.timeout)
                              .build().send())
            return bytes(await response.bytes())

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        request = (self.client.post(url).headers(SSE_HEADERS).body_bytes(body).timeout(self.timeout)
                   .streamed_read_buffer_limit(0).build_streamed())  # the default holds back 64 KiB
        async with asyncio.timeout(READ):
            response = await request.__aenter__()
        try:
            reader = response.body_reader
            while True:
                async with asyncio.timeout(READ):
                    chunk = await reader.read_chunk()
                if chunk is None:
                    return
                yield bytes(chunk)
        finally:
            await request.__aexit__(None, None, None)

    async def close(self) -> None:
        await self.client.close()


class Exchange:
    """infra/providers as it stands: HttpExchange over the shared clients, with the default timeouts."""

    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT))
        from core.providers import DEFAULT_TIMEOUTS
        from infra.providers.http_exchange import HttpExchange, UpstreamRequest

        self.exchange = HttpExchange()
        self.request = UpstreamRequest
        self.timeouts = DEFAULT_TIMEOUTS

    async def open(self) -> None:
        pass

    def _request(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        return self.request(provider="openai", url=url, headers=headers, body=body, timeouts=self.timeouts,
                            secret="sk-bench")

    async def post(self, url: str, body: bytes) -> bytes:
        answer = await self.exchange.post_json(self._request(url, body, HEADERS))
        return b'"choices"' if "choices" in answer else b""

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        events = self.exchange.post_sse(self._request(url, body, {"content-type": "application/json",
                                                                  "authorization": "Bearer sk-bench"}),
                                        last=lambda event: event.data == "[DONE]")
        try:
            async for event in events:
                yield event.data.encode()
        finally:
            await events.aclose()

    async def close(self) -> None:
        await self.exchange.clients.aclose()


FACTORIES = {"floor": Floor, "httpx": Httpx, "httpx-pool": HttpxPool, "httpcore": Httpcore, "httpx2": Httpx2,
             "aiohttp": Aiohttp, "aiohttp-env": AiohttpEnv, "pyreqwest": Pyreqwest, "exchange": Exchange}


# --- one worker process: one candidate, every phase ------------------------------------------------------


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(name: str, url: str, n: int, conc: int, streams: int, import_ms: float) -> dict[str, Any]:
    client = FACTORIES[name]()
    await client.open()
    body, sbody = chat_body(False), chat_body(True)

    async def one() -> None:
        answer = await client.post(url, body)
        if b'"choices"' not in answer:
            raise RuntimeError(f"{name}: no completion in {answer[:200]!r}")

    async def one_stream() -> float:
        start = time.perf_counter()
        first = None
        tail = b""
        async for chunk in client.stream(url, sbody):
            if first is None and b"tok0" in chunk:
                first = time.perf_counter() - start
            tail = (tail + chunk)[-64:]
        if first is None or b"[DONE]" not in tail:
            raise RuntimeError(f"{name}: an incomplete stream")
        return first

    async def concurrent(total: int) -> None:
        left = [total]

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                await one()

        await asyncio.gather(*(worker() for _ in range(conc)))

    try:
        for _ in range(200):
            await one()
        await concurrent(conc * 50)
        for _ in range(10):
            await one_stream()

        latencies = []
        cpu = time.process_time()
        for _ in range(n):
            start = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - start)
        cpu1 = time.process_time() - cpu

        total = n * 3
        cpu, wall = time.process_time(), time.perf_counter()
        await concurrent(total)
        cpu16, wall16 = time.process_time() - cpu, time.perf_counter() - wall

        firsts = []
        cpu = time.process_time()
        for _ in range(streams):
            firsts.append(await one_stream())
        cpu_stream = time.process_time() - cpu
    finally:
        await client.close()
    rss = 0
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) // 1024
    return {"name": name, "import_ms": import_ms,
            "c1_p50_us": pct(latencies, 0.5) * 1e6, "c1_p99_us": pct(latencies, 0.99) * 1e6,
            "c1_cpu_us": cpu1 / n * 1e6, "c16_rps": total / wall16, "c16_cpu_us": cpu16 / total * 1e6,
            "ttft_p50_us": pct(firsts, 0.5) * 1e6, "stream_cpu_us": cpu_stream / streams * 1e6, "rss_mb": rss}


def worker_main(args: argparse.Namespace) -> None:
    import importlib

    start = time.perf_counter()
    if args.worker == "exchange":
        sys.path.insert(0, str(ROOT))
    importlib.import_module(MODULES[args.worker])
    import_ms = (time.perf_counter() - start) * 1000
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(measure(args.worker, args.url, args.n, args.conc, args.streams, import_ms))
    print("RESULT " + json.dumps(result), flush=True)


# --- the run ---------------------------------------------------------------------------------------------


def available(name: str) -> bool:
    import importlib.util

    if name == "exchange":
        return True
    return importlib.util.find_spec(MODULES[name].split(".")[0]) is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpus: set[int] | None):  # noqa: ANN201 - a preexec_fn
    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
    return pin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--n", type=int, default=2000, help="c=1 requests; c=16 sends 3 times as many")
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the per-round results here")
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return

    names = [c for c in args.candidates.split(",") if c]
    unknown = [c for c in names if c not in FACTORIES]
    if unknown:
        sys.exit(f"unknown candidates: {unknown}")
    missing = [c for c in names if not available(c)]
    names = [c for c in names if c not in missing]
    ncpu = os.cpu_count() or 1
    up_cpus, client_cpus = ({0}, {ncpu - 1}) if ncpu >= 2 else (None, None)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    upstream = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fast_upstream.py"), "--port", str(port)],
                                preexec_fn=pinned(up_cpus), start_new_session=True)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the upstream did not start") from None
                time.sleep(0.05)
        for round_ in range(args.rounds):
            order = names[round_ % len(names):] + names[:round_ % len(names)]
            for name in order:
                done = subprocess.run(
                    [sys.executable, __file__, "--worker", name, "--url", url, "--n", str(args.n),
                     "--conc", str(args.conc), "--streams", str(args.streams)],
                    capture_output=True, text=True, timeout=600, preexec_fn=pinned(client_cpus), cwd=ROOT)
                line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:
                    print(f"{name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}", file=sys.stderr)
                    continue
                results[name].append(json.loads(line[7:]))
                print(f"round {round_ + 1}: {name} done", file=sys.stderr, flush=True)
    finally:
        if upstream.poll() is None:
            os.kill(upstream.pid, signal.SIGTERM)
            upstream.wait(timeout=10)

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(report(results, args, missing))


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace, missing: list[str]) -> str:
    keys = ["c1_cpu_us", "c16_cpu_us", "c16_rps", "c1_p50_us", "c1_p99_us", "ttft_p50_us", "stream_cpu_us",
            "import_ms", "rss_mb"]
    med = {name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in results.items() if rs}
    base = med.get("httpx")
    lines = [f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, client and upstream on separate cores; "
             f"medians of {args.rounds} rounds; c=1: {args.n} requests, c={args.conc}: {args.n * 3}, "
             f"{args.streams} streams of 16 tokens 1 ms apart" + (f"; not installed: {', '.join(missing)}" if missing else ""),
             "",
             "| client | CPU µs/req c=1 | CPU µs/req c=16 | req/s c=16 (one core) | p50 / p99 µs c=1 | stream TTFT p50 µs "
             "| CPU µs/stream | import ms | RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]

    def ratio(name: str, key: str) -> str:
        if not base or not base[key]:
            return ""
        return f" ({med[name][key] / base[key]:.2f})"

    for name, m in med.items():
        lines.append(f"| {name} | {m['c1_cpu_us']:.0f}{ratio(name, 'c1_cpu_us')} | {m['c16_cpu_us']:.0f}"
                     f"{ratio(name, 'c16_cpu_us')} | {m['c16_rps']:,.0f}{ratio(name, 'c16_rps')} | "
                     f"{m['c1_p50_us']:.0f} / {m['c1_p99_us']:.0f} | {m['ttft_p50_us']:.0f} | "
                     f"{m['stream_cpu_us']:.0f}{ratio(name, 'stream_cpu_us')} | {m['import_ms']:.0f} | {m['rss_mb']:.0f} |")
    lines.append("(ratios against httpx, the setup before issue 12)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
