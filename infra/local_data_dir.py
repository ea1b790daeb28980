"""One owner per local data dir: the first process runs the embedded DynamoDB on it, others reuse it.

`cuecard serve` holds an exclusive lock on `<data_dir>/lock` and writes its endpoint URL beside it.
`cuecard keys ...` on the same data dir then talks to that endpoint instead of replaying the journal
in a second process, which would fork the data.
"""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from infra.local_dynamodb import LocalDynamoDB

LOCK_NAME = "lock"
ENDPOINT_NAME = "endpoint"


@contextmanager
def local_endpoint(data_dir: Path, *, host: str = "127.0.0.1", port: int = 0, wait: float = 10.0) -> Iterator[str]:
    """Yields the endpoint URL of the embedded DynamoDB serving `data_dir`, starting one if none runs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    endpoint_file = data_dir / ENDPOINT_NAME
    with open(data_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield _endpoint_of_owner(endpoint_file, wait)
            return
        try:
            with LocalDynamoDB(host, port, data_dir=data_dir) as local:
                endpoint_file.write_text(local.endpoint_url)
                try:
                    yield local.endpoint_url
                finally:
                    endpoint_file.unlink(missing_ok=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _endpoint_of_owner(endpoint_file: Path, wait: float) -> str:
    deadline = time.monotonic() + wait
    while True:
        if endpoint_file.exists() and (url := endpoint_file.read_text().strip()):
            return url
        if time.monotonic() > deadline:
            raise RuntimeError(f"{endpoint_file.parent} is locked by another process that published no endpoint")
        time.sleep(0.05)
