"""SqsMessageVisibility: puts off the next delivery of a job message that failed transiently.

The worker reports such a record in `batchItemFailures`; left alone, SQS would deliver it again only
when the queue's visibility timeout (90 minutes on JobsQueue) ran out. `retry_in` sets that message's
visibility timeout to the backoff instead (`sqs:ChangeMessageVisibility` on the queue named by the
record's `eventSourceARN`), through the same per-region SQS clients as the job replies.
"""

from __future__ import annotations

from typing import Any, Callable

from infra.aws_errors import translated
from infra.job_replies import SqsClients, queue_url
from infra.settings import Settings

# Key of this call's entries in infra/aws_errors.py: its errors mean something else than a reply's.
ERRORS = "sqs-visibility"


class SqsMessageVisibility:
    def __init__(self, client_for: Callable[[str | None], Any]) -> None:
        self._client = client_for if isinstance(client_for, SqsClients) else SqsClients(client_for)

    @classmethod
    def from_settings(cls, settings: Settings) -> SqsMessageVisibility:
        return cls(SqsClients.from_settings(settings))

    def retry_in(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        """Makes the message received with `receipt_handle` visible again in `seconds`. Raises core errors."""
        url, region = queue_url(queue_arn)
        with translated("change_message_visibility", ERRORS):
            self._client(region).change_message_visibility(
                QueueUrl=url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)
