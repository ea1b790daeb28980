"""An append-only JSON-lines journal, fsync'ed per record, that survives `kill -9`.

A record is durable once `append` returns. A torn last line (the process died mid-write) is
dropped on `read` and cut off the file; a bad line anywhere else is corruption and raises.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable


class JournalCorrupt(RuntimeError):
    pass


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def read(self) -> list[dict[str, Any]]:
        """Every complete record, oldest first; truncates a torn tail away."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        records: list[dict[str, Any]] = []
        good_length = 0
        for number, line in enumerate(data.splitlines(keepends=True), start=1):
            if not line.endswith(b"\n"):
                break  # torn tail: never acknowledged
            try:
                records.append(json.loads(line))
            except ValueError:
                if good_length + len(line) == len(data):
                    break  # a garbled last line is a torn tail too
                raise JournalCorrupt(f"{self.path} line {number} is not a JSON record") from None
            good_length += len(line)
        if good_length < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good_length)
                os.fsync(handle.fileno())
        return records

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if created:
            _fsync_directory(self.path.parent)

    def append(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise RuntimeError("journal is not open")
        _write_all(self._fd, _encode(record))
        os.fsync(self._fd)

    def rewrite(self, records: Iterable[dict[str, Any]]) -> None:
        """Atomically replaces the journal with `records` (a snapshot). Call while closed."""
        if self._fd is not None:
            raise RuntimeError("close the journal before rewriting it")
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for record in records:
                _write_all(fd, _encode(record))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        _fsync_directory(self.path.parent)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
