"""Counts the DynamoDB API calls one client makes (botocore `before-call` event): the read budget's meter."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


class CallCounter:
    """Per-client, thread-safe. Counts API calls, not HTTP attempts (botocore retries are not recounted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    def attach(self, client: Any) -> CallCounter:
        client.meta.events.register("before-call.dynamodb", self._on_call)
        return self

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._calls[model.name] += 1

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    @property
    def by_operation(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    @property
    def reads(self) -> int:
        with self._lock:
            return sum(n for op, n in self._calls.items() if op in READ_OPERATIONS)

    @property
    def writes(self) -> int:
        with self._lock:
            return sum(n for op, n in self._calls.items() if op not in READ_OPERATIONS)
