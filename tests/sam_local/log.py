"""One line per step on stderr, with the seconds since the run started."""

from __future__ import annotations

import sys
import time

_STARTED = time.monotonic()


def elapsed() -> float:
    return time.monotonic() - _STARTED


def log(message: str) -> None:
    print(f"sam-local [{elapsed():6.1f} s] {message}", file=sys.stderr, flush=True)
