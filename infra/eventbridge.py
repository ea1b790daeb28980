"""EventBridgePublisher: core.ports.EventPublisher on Amazon EventBridge's PutEvents.

- Batches: at most 10 entries per PutEvents call, and at most 256 KB of entries (sized as AWS counts
  them: Source, DetailType and Detail as UTF-8 bytes, plus Resources and 14 bytes for a Time, neither
  of which cuecard sets). An event that cannot fit alone is a PayloadTooLarge.
- Partial failures: PutEvents answers per entry. Entries that failed with a retryable code
  (InternalFailure, ThrottlingException) are sent again, alone, up to `max_attempts` calls in all with
  jittered backoff; entries that succeeded are never sent twice by this class. A non-retryable code,
  or failures left after the last attempt, raise the core error infra/aws_errors.py maps the code to
  (StoreUnavailable), so a stream or queue handler reports the record and it is retried later.
- A failed call itself (throttled beyond botocore's standard retries, access denied, unknown bus)
  is translated by infra/aws_errors.py too, with `service="events"`.
Event details are never logged: only counts and error codes.
"""

from __future__ import annotations

import json
import logging
import random
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

from core.errors import PayloadTooLarge
from core.models import DomainEvent
from infra.aws_clients import lazy_client
from infra.aws_errors import RETRYABLE_EVENT_ENTRY_CODES, translate_code, translated
from infra.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "events"
MAX_ENTRIES_PER_CALL = 10
MAX_REQUEST_BYTES = 256 * 1024  # PutEvents' limit on the total size of a call's entries
DEFAULT_MAX_ATTEMPTS = 4  # PutEvents calls per batch: the first and up to three retries of its failed entries

Entry = dict[str, Any]


def entry_size(entry: Mapping[str, Any]) -> int:
    """Bytes EventBridge counts for a PutEvents entry (its documented calculation)."""
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        if entry.get(name) is not None:
            size += len(str(entry[name]).encode("utf-8"))
    size += sum(len(str(resource).encode("utf-8")) for resource in entry.get("Resources") or ())
    return size


class EventBridgePublisher:
    def __init__(self, client: Any, bus_name: str, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 sleep: Callable[[float], None] = time.sleep, max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._client = client
        self._bus = bus_name
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._max_request_bytes = max_request_bytes

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> EventBridgePublisher:
        """On `settings.event_bus_name`; the client is built on first publish (a cold start makes no AWS call)."""
        return cls(lazy_client(SERVICE, settings.region, settings.events_endpoint), settings.event_bus_name, **options)

    @property
    def bus_name(self) -> str:
        return self._bus

    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publishes every event, in order, in as few calls as the limits allow; raises a core error otherwise."""
        entries = [self.entry(event) for event in events]
        for batch in self._batches(entries):
            self._put(batch)

    def entry(self, event: DomainEvent) -> Entry:
        """The PutEvents entry for one event."""
        return {
            "EventBusName": self._bus,
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": json.dumps(dict(event.detail), ensure_ascii=False, separators=(",", ":"), allow_nan=False),
        }

    def _batches(self, entries: list[Entry]) -> Iterator[list[Entry]]:
        batch: list[Entry] = []
        batch_bytes = 0
        for entry in entries:
            size = entry_size(entry)
            if size > self._max_request_bytes:
                raise PayloadTooLarge(
                    f"An event ({entry['DetailType']}) is {size} bytes; EventBridge takes at most "
                    f"{self._max_request_bytes} bytes per PutEvents call.")
            if batch and (len(batch) == MAX_ENTRIES_PER_CALL or batch_bytes + size > self._max_request_bytes):
                yield batch
                batch, batch_bytes = [], 0
            batch.append(entry)
            batch_bytes += size
        if batch:
            yield batch

    def _put(self, batch: list[Entry]) -> None:
        pending = batch
        for attempt in range(1, self._max_attempts + 1):
            with translated("put_events", SERVICE):
                answer = self._client.put_events(Entries=pending)
            failed = _failed_entries(pending, answer)
            if not failed:
                return
            codes = [code for _, code in failed]
            final = bool(set(codes) - RETRYABLE_EVENT_ENTRY_CODES) or attempt == self._max_attempts
            log.warning("PutEvents: %d of %d entries failed (attempt %d of %d): %s", len(failed), len(pending),
                        attempt, self._max_attempts, ", ".join(sorted(set(codes))))
            if final:
                code = next((code for code in codes if code not in RETRYABLE_EVENT_ENTRY_CODES), codes[0])
                error = translate_code(code, SERVICE)
                raise type(error)(f"{error.message} {len(failed)} of {len(batch)} events were not published "
                                  f"after {attempt} attempt(s) ({code}).")
            pending = [entry for entry, _ in failed]
            self._sleep(random.uniform(0, min(1.0, 0.05 * 2 ** attempt)))


def _failed_entries(sent: list[Entry], answer: Mapping[str, Any]) -> list[tuple[Entry, str]]:
    """(entry, ErrorCode) for each entry that was not accepted; an entry with no answer counts as failed."""
    results = list(answer.get("Entries") or [])
    failed = []
    for index, entry in enumerate(sent):
        result = results[index] if index < len(results) else {}
        if result.get("ErrorCode") or not result.get("EventId"):
            failed.append((entry, str(result.get("ErrorCode") or "InternalFailure")))
    return failed
