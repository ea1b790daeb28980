"""Recorded Anthropic Messages API answers (tests/providers/fixtures/anthropic/), shaped as the API documents them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def load_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sse_events(name: str) -> list[tuple[str | None, Any]]:
    """(event, parsed data) of each frame of a recorded SSE transcript."""
    events = []
    for frame in raw(name).decode().split("\n\n"):
        event, data = None, []
        for line in frame.splitlines():
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((event, json.loads("\n".join(data))))
    return events
