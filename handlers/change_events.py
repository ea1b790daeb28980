"""ChangeEventsFunction: the prompts table's DynamoDB stream -> `cuecard.prompts` events on EventBridge.

Thin: each stream record is decoded (infra/stream_records.py), turned into events and published
(core/change_events.py through the EventPublisher port). Powertools' BatchProcessor answers with a
partial batch response (`batchItemFailures`, the event source mapping needs ReportBatchItemFailures).

Order: once a record fails, every later record of the batch is reported failed without being tried,
so Lambda retries from the first failure and a prompt's events are never published past a gap.
Delivery is at least once: a retried record publishes its events again, with the same event ids.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from core.change_events import ChangeEventRelay
from core.ports import EventPublisher
from infra.stream_records import stored_change

log = logging.getLogger("cuecard.change_events")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class SkippedAfterFailure(RuntimeError):
    """Not tried: an earlier record of the same batch failed (so it is retried in order)."""


def build_handler(publisher: EventPublisher) -> Handler:
    """The Lambda handler on `publisher` (tests pass a fake; the deployed function EventBridge)."""
    relay = ChangeEventRelay(publisher)

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if not event.get("Records"):  # Lambda never sends one; Powertools would call it a malformed event
            return {"batchItemFailures": []}
        failed_at: list[str] = []  # this invocation's first failed sequence number, if any

        def record_handler(record: DynamoDBRecord) -> int:
            if failed_at:
                raise SkippedAfterFailure(f"skipped after record {failed_at[0]} failed")
            try:
                return len(relay.relay(stored_change(record.raw_event)))
            except Exception as exc:
                failed_at.append(str(record.dynamodb.sequence_number if record.dynamodb else "?"))
                # Type and message only: core errors and StreamRecordError never quote item contents.
                log.warning("change record %s failed: %s: %s", failed_at[0], type(exc).__name__, exc)
                raise

        processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)

    return handler


_handler: Handler | None = None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The deployed entry point: EventBridge from the environment (CUECARD_EVENT_BUS), built on first call."""
    global _handler
    if _handler is None:
        from infra.eventbridge import EventBridgePublisher
        from infra.settings import Settings

        _handler = build_handler(EventBridgePublisher.from_settings(Settings.from_env()))
    return _handler(event, context)
