"""WorkerFunction: jobs from the `JobsQueue` SQS queue -> rendered or completed -> a result message.

Thin: each SQS record's body goes to `core.jobs.JobWorker.handle`, which parses the job, claims its
job_id in the ledger (so a redelivery never calls the LLM again), runs it and delivers the result
(to the job's `reply_to` queue, else as a `cuecard.jobs` event on EventBridge). Powertools'
BatchProcessor answers with a partial batch response: only the records whose handling raised are
listed in `batchItemFailures` (the event source mapping needs `ReportBatchItemFailures`), so SQS
retries just those, and its redrive policy dead-letters one that keeps failing.

- An invalid job (not JSON, a missing or wrong field) is answered with a `Job Failed` message giving
  the reason, and counts as processed: it is never retried and blocks nothing else in its batch.
- A job that cannot succeed (unknown prompt, a provider's 4xx) ends in a `Job Failed` result, kept.
- Anything transient (store, provider 5xx or timeout, a failed delivery, another delivery still
  running the same job) fails only that record, and puts off its next delivery by `core.jobs.retry_delay`
  of its `ApproximateReceiveCount` (10 s, 20 s, 40 s, ... at most 15 minutes) rather than the queue's
  90-minute visibility timeout. If that visibility change fails, it is logged and the record still fails:
  SQS then retries it at the queue's timeout.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import TYPE_CHECKING, Any, Callable, Generic, Protocol, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from core.jobs import JobLedger, JobReplies, JobRunner, JobWorker, retry_delay
from core.ports import EventPublisher

if TYPE_CHECKING:  # the container itself is imported when the worker is first built
    from handlers.container import Container

log = logging.getLogger("cuecard.worker")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
T = TypeVar("T")
# Extra seconds a claim outlives the invocation that made it: room for clock skew between worker containers.
LEASE_MARGIN_SECONDS = 10.0


def build_worker(container: Container, publisher: EventPublisher, replies: JobReplies, *,
                 ledger: JobLedger | None = None) -> JobWorker:
    """The job worker on `container`'s prompts and completions (tests pass fakes for the rest)."""
    if ledger is None:
        ledger = container.stores.jobs  # the backend's ledger, on the same client as its other stores
    return JobWorker(JobRunner(container.service, container.completions), ledger, publisher, replies)


class RetryDelays(Protocol):
    """Puts off a received message's next delivery (infra.sqs_visibility.SqsMessageVisibility)."""

    def retry_in(self, queue_arn: str, receipt_handle: str, seconds: int) -> None: ...


class _Once(Generic[T]):
    """`build()` made on first use, once, and kept."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._made: list[T] = []
        self._lock = threading.Lock()

    def __call__(self) -> T:
        if not self._made:
            with self._lock:
                if not self._made:
                    self._made.append(self._build())
        return self._made[0]


def build_handler(build: Callable[[], JobWorker], *, delays: Callable[[], RetryDelays] | None = None,
                  jitter: Callable[[], float] = random.random) -> Handler:
    """The Lambda handler. `build` runs once, on the first invocation, and its worker is kept; `delays`
    runs once, on the first transient failure (None: failed records keep the queue's visibility timeout).
    `jitter` draws the random part of each retry delay."""
    get_worker = _Once(build)
    get_delays = _Once(delays) if delays is not None else None

    def retry_later(record: SQSRecord) -> None:
        if get_delays is None:
            return
        seconds = retry_delay(_receive_count(record), jitter())
        try:
            get_delays().retry_in(record.event_source_arn, record.receipt_handle, seconds)
        except Exception as exc:  # the record fails anyway; SQS retries it at the queue's visibility timeout
            log.warning("job message %s: could not delay its retry to %d s, so it waits for the queue's "
                        "visibility timeout: %s: %s", record.message_id, seconds, type(exc).__name__, exc)
        else:
            log.info("job message %s: retried in %d s", record.message_id, seconds)

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        jobs = get_worker()

        def record_handler(record: SQSRecord) -> str:
            try:
                outcome = jobs.handle(record.body, lease_seconds=_lease_seconds(context))
            except Exception as exc:
                # Type and message only: core errors never quote variables or completions.
                log.warning("job message %s failed, to be retried: %s: %s", record.message_id,
                            type(exc).__name__, exc)
                retry_later(record)
                raise
            log.info("job message %s: %s (job %s, %s)", record.message_id, outcome.action,
                     outcome.message.get("job_id"), outcome.message.get("status"))
            return outcome.action

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)

    return handler


def _receive_count(record: SQSRecord) -> int:
    """How many times SQS has delivered this message, this delivery included (1 if it doesn't say)."""
    try:
        return max(1, int(record.attributes.approximate_receive_count))
    except (KeyError, TypeError, ValueError):
        return 1


def _lease_seconds(context: Any) -> float | None:
    """How long a claim is held: until this invocation must have ended (None: the worker's default)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return remaining() / 1000 + LEASE_MARGIN_SECONDS


def _default_worker() -> JobWorker:
    """The deployed wiring: settings from the environment, EventBridge (CUECARD_EVENT_BUS), SQS replies."""
    from handlers.container import build_container
    from infra.eventbridge import EventBridgePublisher
    from infra.job_replies import SqsJobReplies

    container = build_container()
    return build_worker(container, EventBridgePublisher.from_settings(container.settings),
                        SqsJobReplies.from_settings(container.settings))


def _default_delays() -> RetryDelays:
    """The deployed retry backoff: ChangeMessageVisibility on the record's queue."""
    from infra.settings import Settings
    from infra.sqs_visibility import SqsMessageVisibility

    return SqsMessageVisibility.from_settings(Settings.from_env())


handler = build_handler(_default_worker, delays=_default_delays)
