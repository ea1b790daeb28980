"""moto's DynamoDB and Secrets Manager in server mode on 127.0.0.1, for the DynamoDB adapter's tests only.

moto is not safe under concurrent requests, so every call runs under one lock: conditional writes
and transactions are then atomic, as DynamoDB's are. moto also ignores TransactWriteItems'
ClientRequestToken, which botocore fills in and reuses when it retries a call whose answer came too
late; DynamoDB answers such a retry with the first outcome instead of applying it again, and so does
this server.

In process: `server = MotoServer().start(); server.endpoint_url; server.stop()`. As a process of its
own, for tests that need an endpoint outside the test process (a `cuecard` subprocess, say):
`python -m tests.moto_server --port 0` prints its endpoint URL on one line, then serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import threading
from typing import Any, Callable, Iterable

TRANSACT_WRITE = "DynamoDB_20120810.TransactWriteItems"


class SerialisedApp:
    """WSGI middleware: one request at a time through moto, and idempotent transactions."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._transactions: dict[str, tuple[str, list[tuple[str, str]], bytes]] = {}  # token -> first answer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        token = _transaction_token(environ)
        with self._lock:
            if token is not None and token in self._transactions:
                status, headers, payload = self._transactions[token]
                start_response(status, headers)
                return [payload]
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
                captured["status"], captured["headers"] = status, headers
                return lambda _: None

            result = self._app(environ, capture)
            try:
                payload = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
            if token is not None:
                self._transactions[token] = (captured["status"], captured["headers"], payload)
        start_response(captured["status"], captured["headers"])
        return [payload]


def _transaction_token(environ: dict[str, Any]) -> str | None:
    """A TransactWriteItems call's ClientRequestToken; the body is put back for moto to read."""
    if environ.get("HTTP_X_AMZ_TARGET") != TRANSACT_WRITE:
        return None
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    token = json.loads(body or b"{}").get("ClientRequestToken")
    return token if isinstance(token, str) else None


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> MotoServer:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        app = SerialisedApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=QuietHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.moto_server",
                                     description="moto's DynamoDB and Secrets Manager on 127.0.0.1, for tests.")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    args = parser.parse_args(argv)
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # before the server's threads start, so they inherit it
    server = MotoServer("127.0.0.1", args.port).start()
    try:
        print(server.endpoint_url, flush=True)
        signal.sigwait(stop_signals)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
