"""Starts a real `cuecard serve` subprocess on 127.0.0.1 and stops it by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ADMIN_KEY = "cck_e2e-admin-key-for-tests-only"


@dataclass
class Server:
    base_url: str
    admin_key: str
    data_dir: Path
    process: subprocess.Popen

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, *, admin_key: str | None = ADMIN_KEY, extra_env: dict[str, str] | None = None,
                 timeout: float = 60.0) -> Server:
    port = free_port()
    env = {**os.environ, "CUECARD_POINTER_CACHE_TTL": "0", **(extra_env or {})}
    env.pop("CUECARD_ADMIN_KEY", None)
    if admin_key:
        env["CUECARD_ADMIN_KEY"] = admin_key
    log = open(data_dir.parent / f"serve-{port}.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(data_dir), "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cuecard serve exited early:\n{Path(log.name).read_text()}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return Server(base_url, admin_key or "", data_dir, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(Server(base_url, "", data_dir, process))
    raise RuntimeError(f"cuecard serve did not answer in {timeout}s:\n{Path(log.name).read_text()}")


def stop_server(server: Server, sig: int = signal.SIGINT) -> int:
    if server.process.poll() is None:
        os.kill(server.process.pid, sig)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=15)
    return server.process.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    running = start_server(data_dir)
    yield running
    stop_server(running)
