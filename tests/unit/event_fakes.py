"""A recording EventPublisher (core.ports) for change-event tests."""

from __future__ import annotations

from typing import Sequence

from core.errors import StoreUnavailable
from core.models import DomainEvent


class RecordingPublisher:
    """Keeps every published batch; `fail_on` makes the n-th publish call (1-based) raise StoreUnavailable."""

    def __init__(self, *, fail_on: set[int] | None = None) -> None:
        self.batches: list[list[DomainEvent]] = []
        self.calls = 0
        self._fail_on = fail_on or set()

    def publish(self, events: Sequence[DomainEvent]) -> None:
        self.calls += 1
        if self.calls in self._fail_on:
            raise StoreUnavailable("The event bus is unavailable; retry shortly.")
        self.batches.append(list(events))

    @property
    def events(self) -> list[DomainEvent]:
        return [event for batch in self.batches for event in batch]
