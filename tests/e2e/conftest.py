"""Starts real `cuecard` subprocesses on 127.0.0.1 (`cuecard serve`, one-shot commands, a moto endpoint)
and stops them by pid; small HTTP helpers shared by the e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import httpx
import pytest

ADMIN_KEY = "cck_e2e-admin-key-for-tests-only"
REPO_ROOT = Path(__file__).resolve().parents[2]
DATABASE_NAME = "cuecard.db"
KEY_LINE_PATTERN = r"^Admin API key \(shown once, keep it\): (cck_\S+)$"  # what a first `serve` prints
SAMPLE_SLUGS = {"chat-with-history", "summarize", "support-reply"}
SAMPLE_VARIABLES = {"product": "Acme", "tone": "warm", "question": "Hi?", "name": "Ada"}


@dataclass
class Server:
    base_url: str
    admin_key: str
    data_dir: Path | None  # None: a DynamoDB table
    process: subprocess.Popen
    log_path: Path | None = None

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    @property
    def port(self) -> int:
        return int(self.root.rsplit(":", 1)[1])

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


def serve_env(*, admin_key: str | None = ADMIN_KEY, extra_env: dict[str, str] | None = None,
              scrub_aws: bool = False) -> dict[str, str]:
    """The environment of a `cuecard serve`; `admin_key=None` leaves CUECARD_ADMIN_KEY unset."""
    base_env = without_aws() if scrub_aws else dict(os.environ)
    env = {**base_env, "CUECARD_POINTER_CACHE_TTL": "0", **(extra_env or {})}
    env.pop("CUECARD_ADMIN_KEY", None)
    if admin_key:
        env["CUECARD_ADMIN_KEY"] = admin_key
    return env


def start_server(data_dir: Path | None, *, admin_key: str | None = ADMIN_KEY, extra_env: dict[str, str] | None = None,
                 timeout: float = 60.0, scrub_aws: bool = False, cwd: Path | None = None,
                 store_args: Sequence[str] = (), log_dir: Path | None = None, log_level: str = "warning") -> Server:
    """Starts `cuecard serve` on `data_dir` (or, with `data_dir=None`, on what `store_args` name) and waits
    until it answers /health.

    `scrub_aws` runs it with no AWS_* or CUECARD_* variables from our environment (see `without_aws`).
    Its output goes to `serve-<port>.log` in `log_dir` (default: beside the data dir).
    """
    port = free_port()
    env = serve_env(admin_key=admin_key, extra_env=extra_env, scrub_aws=scrub_aws)
    where = [*store_args, *(["--data-dir", str(data_dir)] if data_dir is not None else [])]
    log_path = (log_dir or data_dir.parent) / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "handlers.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *where,
             "--log-level", log_level],
            stdout=log, stderr=subprocess.STDOUT, env=with_repo_on_path(env), cwd=cwd,
        )
    server = Server(f"http://127.0.0.1:{port}/v1", admin_key or "", data_dir, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cuecard serve exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"cuecard serve did not answer in {timeout}s:\n{log_path.read_text()}")


def run_cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Runs `cuecard ARGS...` (as `python -m handlers.cli`) to completion, capturing stdout and stderr apart."""
    return subprocess.run([sys.executable, "-m", "handlers.cli", *args], cwd=cwd, env=with_repo_on_path(env),
                          capture_output=True, text=True, timeout=timeout)


def with_repo_on_path(env: dict[str, str]) -> dict[str, str]:
    """`python -m handlers.cli` from any working directory still imports this checkout."""
    path = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


def stop_process(process: subprocess.Popen, sig: int = signal.SIGINT) -> int:
    """Sends `sig` to the process by its pid, SIGKILL after 15 s; its exit code."""
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    return process.returncode


def stop_server(server: Server, sig: int = signal.SIGINT) -> int:
    return stop_process(server.process, sig)


# --- HTTP ----------------------------------------------------------------------------------------


def call(server: Server, method: str, path: str, key: str, body: dict | None = None) -> httpx.Response:
    return httpx.request(method, f"{server.base_url}{path}", headers={"x-portkey-api-key": key}, json=body, timeout=30)


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def render(server: Server, key: str, ref: str = "support-reply@production") -> httpx.Response:
    return call(server, "POST", f"/prompts/{ref}/render", key, {"variables": SAMPLE_VARIABLES})


def slugs_listed(server: Server, key: str) -> list[str]:
    return [p["slug"] for p in ok(call(server, "GET", "/prompts?page_size=1000", key))["data"]]


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    running = start_server(data_dir)
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m tests.moto_server --port 0` in a process of its own (DynamoDB and Secrets Manager); its URL."""
    cwd = tmp_path_factory.mktemp("moto")
    process = subprocess.Popen([sys.executable, "-m", "tests.moto_server", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, cwd=cwd, env=with_repo_on_path(without_aws()))
    try:
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:"), endpoint
        yield endpoint
    finally:
        stop_process(process, signal.SIGTERM)
        process.stdout.close()


def dynamodb_env(endpoint: str | None = None) -> dict[str, str]:
    """No AWS account, only the keys botocore signs with; CUECARD_DYNAMODB_ENDPOINT if `endpoint` is given."""
    env = {**without_aws(), "AWS_ACCESS_KEY_ID": "e2e-local", "AWS_SECRET_ACCESS_KEY": "e2e-local-secret"}
    if endpoint:
        env["CUECARD_DYNAMODB_ENDPOINT"] = endpoint
    return env
