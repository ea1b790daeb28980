"""The embedded DynamoDB as a separate process (`python -m infra.local_dynamodb`), for restart and kill -9 tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def embedded_server(data_dir: Path, log: Path, table: str = "cuecard") -> Iterator[tuple[subprocess.Popen, str]]:
    """Starts it on 127.0.0.1 with no AWS credentials in its environment; yields (process, endpoint URL)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    with open(log, "a") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_dynamodb", "--data-dir", str(data_dir), "--table", table],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    try:
        endpoint = process.stdout.readline().strip()  # type: ignore[union-attr]
        assert endpoint.startswith("http://127.0.0.1:"), log.read_text()
        yield process, endpoint
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]


def kill_9(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL
