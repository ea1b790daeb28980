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
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    base_url: str
    admin_key: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path | None = None

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def output(self) -> str:
        """What the process printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def without_aws(environ: dict[str, str] | None = None) -> dict[str, str]:
    """`environ` (default: ours) with every AWS_* and CUECARD_* variable removed and no AWS config file reachable.

    The local paths (`serve`, `keys` on a data dir) must work on a machine with no AWS account at all.
    """
    env = {k: v for k, v in (os.environ if environ is None else environ).items()
           if not k.startswith(("AWS_", "CUECARD_"))}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull  # no ~/.aws profile either
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # never wait for an instance-metadata endpoint
    return env


def start_server(data_dir: Path, *, admin_key: str | None = ADMIN_KEY, extra_env: dict[str, str] | None = None,
                 timeout: float = 60.0, scrub_aws: bool = False, cwd: Path | None = None) -> Server:
    """Starts `cuecard serve` on `data_dir`; `admin_key=None` leaves CUECARD_ADMIN_KEY unset.

    `scrub_aws` runs it with no AWS_* or CUECARD_* variables from our environment (see `without_aws`).
    """
    port = free_port()
    base_env = without_aws() if scrub_aws else dict(os.environ)
    env = {**base_env, "CUECARD_POINTER_CACHE_TTL": "0", **(extra_env or {})}
    env.pop("CUECARD_ADMIN_KEY", None)
    if admin_key:
        env["CUECARD_ADMIN_KEY"] = admin_key
    log_path = data_dir.parent / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "handlers.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(data_dir), "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, env=with_repo_on_path(env), cwd=cwd,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cuecard serve exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return Server(base_url, admin_key or "", data_dir, process, log_path)
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(Server(base_url, "", data_dir, process, log_path))
    raise RuntimeError(f"cuecard serve did not answer in {timeout}s:\n{log_path.read_text()}")


def run_cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Runs `cuecard ARGS...` (as `python -m handlers.cli`) to completion, capturing stdout and stderr apart."""
    return subprocess.run([sys.executable, "-m", "handlers.cli", *args], cwd=cwd, env=with_repo_on_path(env),
                          capture_output=True, text=True, timeout=timeout)


def with_repo_on_path(env: dict[str, str]) -> dict[str, str]:
    """`python -m handlers.cli` from any working directory still imports this checkout."""
    path = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


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
