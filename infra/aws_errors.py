"""The one mapping from botocore errors to core.errors.

Throttling is retried by botocore itself (standard retry mode, see infra/aws_clients.py); what
reaches this module has outlived those retries.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from core.errors import Conflict, CuecardError, PayloadTooLarge, StoreUnavailable

log = logging.getLogger(__name__)

ITEM_TOO_LARGE_MESSAGE = "A template version must fit in a 400 KB DynamoDB item; this one is too large."

THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)

# Error code -> (core error class, message the caller may see). Codes not listed are StoreUnavailable.
ERROR_TABLE: dict[str, tuple[type[CuecardError], str]] = {
    **{code: (StoreUnavailable, "The prompt store is throttling requests; retry shortly.") for code in THROTTLING_CODES},
    "InternalServerError": (StoreUnavailable, "The prompt store had an internal error; retry shortly."),
    "ServiceUnavailable": (StoreUnavailable, "The prompt store is unavailable; retry shortly."),
    "ResourceNotFoundException": (StoreUnavailable, "The prompt store table does not exist."),
    "ConditionalCheckFailedException": (Conflict, "The write lost a race with a concurrent change; retry."),
    "TransactionConflictException": (Conflict, "The write lost a race with a concurrent change; retry."),
    "TransactionInProgressException": (Conflict, "A concurrent write is in progress; retry."),
    # Secrets Manager (provider keys of virtual keys), keyed "secretsmanager:<code>": its codes overlap
    # DynamoDB's with other meanings. A code not listed is StoreUnavailable ("the secret store ...").
    **{f"secretsmanager:{code}": (StoreUnavailable, "The secret store is throttling requests; retry shortly.")
       for code in THROTTLING_CODES},
    "secretsmanager:ResourceNotFoundException": (
        StoreUnavailable, "The secret store has no provider key for this virtual key; set its key again."),
    "secretsmanager:ResourceExistsException": (Conflict, "The provider key was written concurrently; retry."),
    "secretsmanager:InvalidRequestException": (
        Conflict, "The provider key is scheduled for deletion or changing concurrently; retry."),
    "secretsmanager:AccessDeniedException": (
        StoreUnavailable, "cuecard may not use its secrets in Secrets Manager; check the function's IAM policy."),
    "secretsmanager:DecryptionFailure": (StoreUnavailable, "The secret store could not decrypt the provider key (KMS)."),
    "secretsmanager:EncryptionFailure": (StoreUnavailable, "The secret store could not encrypt the provider key (KMS)."),
    "secretsmanager:LimitExceededException": (StoreUnavailable, "The secret store refused: an account limit is reached."),
    "secretsmanager:InternalServiceError": (StoreUnavailable, "The secret store had an internal error; retry shortly."),
    # EventBridge (change and job events), keyed "events:<code>": a PutEvents call's error codes, and the
    # ErrorCode of a single failed entry in its answer. A code not listed is StoreUnavailable ("the event bus ...").
    **{f"events:{code}": (StoreUnavailable, "The event bus is throttling requests; retry shortly.")
       for code in THROTTLING_CODES},
    "events:InternalException": (StoreUnavailable, "The event bus had an internal error; retry shortly."),
    "events:InternalFailure": (StoreUnavailable, "The event bus had an internal error; retry shortly."),
    "events:ResourceNotFoundException": (StoreUnavailable, "The event bus does not exist; check CUECARD_EVENT_BUS."),
    "events:AccessDeniedException": (
        StoreUnavailable, "cuecard may not put events on its event bus; check the function's events:PutEvents policy."),
    "events:NotAuthorizedForSourceException": (
        StoreUnavailable, "cuecard may not put events with this source on its event bus; check the bus policy."),
    "events:NotAuthorizedForDetailTypeException": (
        StoreUnavailable, "cuecard may not put events with this detail-type on its event bus; check the bus policy."),
    "events:MalformedDetail": (StoreUnavailable, "The event bus refused an event's detail as malformed JSON."),
    "events:InvalidArgument": (StoreUnavailable, "The event bus refused an event as invalid."),
    # SQS (job results sent to a job's reply_to queue), keyed "sqs:<code>". Any failure fails that
    # delivery: the jobs queue retries it (the result is kept, the LLM is not called again), then dead-letters it.
    **{f"sqs:{code}": (StoreUnavailable, "The reply queue is throttling requests; retry shortly.")
       for code in (*THROTTLING_CODES, "RequestThrottled", "KmsThrottled")},
    **{f"sqs:{code}": (StoreUnavailable, "The job's reply_to queue does not exist.")
       for code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
                    "AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently")},
    **{f"sqs:{code}": (StoreUnavailable, "cuecard may not send to the job's reply_to queue; check the worker's "
                                         "sqs:SendMessage policy and the queue's own policy.")
       for code in ("AccessDenied", "AccessDeniedException", "InvalidSecurity", "InvalidAddress")},
    **{f"sqs:{code}": (StoreUnavailable, "The reply queue's KMS key refused the message; check its key policy.")
       for code in ("KmsAccessDenied", "KmsDisabled", "KmsInvalidKeyUsage", "KmsInvalidState", "KmsNotFound",
                    "KmsOptInRequired")},
    **{f"sqs:{code}": (StoreUnavailable, "The reply queue refused the result message as invalid or too large.")
       for code in ("InvalidMessageContents", "InvalidParameterValue", "UnsupportedOperation",
                    "AWS.SimpleQueueService.UnsupportedOperation")},
    # SQS ChangeMessageVisibility on the jobs queue (the worker's retry backoff), keyed "sqs-visibility:<code>".
    # The worker only logs these: the record is reported failed anyway, and SQS retries it at the queue's timeout.
    **{f"sqs-visibility:{code}": (StoreUnavailable, "The jobs queue is throttling requests; retry shortly.")
       for code in (*THROTTLING_CODES, "RequestThrottled")},
    **{f"sqs-visibility:{code}": (StoreUnavailable, "cuecard may not delay job retries; check the worker's "
                                                    "sqs:ChangeMessageVisibility policy on JobsQueue.")
       for code in ("AccessDenied", "AccessDeniedException", "InvalidSecurity", "InvalidAddress")},
    **{f"sqs-visibility:{code}": (StoreUnavailable, "The job message is no longer in flight (its receipt handle "
                                                    "expired or it was deleted), so its retry could not be delayed.")
       for code in ("ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight")},
    **{f"sqs-visibility:{code}": (StoreUnavailable, "The jobs queue does not exist.")
       for code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")},
}
_UNAVAILABLE = "The prompt store is unavailable; retry shortly."
_UNAVAILABLE_BY_SERVICE = {
    "secretsmanager": "The secret store is unavailable; retry shortly.",
    "events": "The event bus is unavailable; retry shortly.",
    "sqs": "The reply queue is unavailable; retry shortly.",
    "sqs-visibility": "The jobs queue is unavailable; retry shortly.",
}
# PutEvents entry ErrorCodes worth sending again (AWS: the rest are non-retryable).
RETRYABLE_EVENT_ENTRY_CODES = frozenset({"InternalFailure", "ThrottlingException"})


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def cancellation_codes(exc: BaseException) -> list[str]:
    """Per-item reason codes of a TransactionCanceledException ("None" for items that passed)."""
    if not isinstance(exc, ClientError):
        return []
    reasons = exc.response.get("CancellationReasons") or []
    return [str(reason.get("Code") or "None") for reason in reasons]


def is_item_too_large(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    if code == "ValidationException":
        return _mentions_item_size(str(exc.response.get("Error", {}).get("Message", "")))
    if code == "TransactionCanceledException":
        return any(
            reason.get("Code") == "ValidationError" and _mentions_item_size(str(reason.get("Message", "")))
            for reason in exc.response.get("CancellationReasons") or []
        )
    return False


def _mentions_item_size(message: str) -> bool:
    text = message.lower()
    return "item size" in text and ("exceed" in text or "maximum" in text)


def translate_code(code: str, service: str) -> CuecardError:
    """The core error an AWS error code stands for when there is no exception to translate, such as the
    ErrorCode of one failed entry in a PutEvents answer (`service` other than dynamodb)."""
    error_class, message = ERROR_TABLE.get(
        f"{service}:{code}", (StoreUnavailable, _UNAVAILABLE_BY_SERVICE.get(service, _UNAVAILABLE)))
    return error_class(message)


def translate(exc: BaseException, service: str = "dynamodb") -> CuecardError:
    """The core error a botocore/boto error stands for. Never echoes request data."""
    if isinstance(exc, CuecardError):
        return exc
    if service != "dynamodb":  # another AWS service: its own entries, else unavailable
        return translate_code(error_code(exc), service)
    if is_item_too_large(exc):
        return PayloadTooLarge(ITEM_TOO_LARGE_MESSAGE)
    code = error_code(exc)
    if code == "TransactionCanceledException":
        reasons = set(cancellation_codes(exc))
        if reasons & {"ConditionalCheckFailed", "TransactionConflict"}:
            return Conflict("The write lost a race with a concurrent change that retries could not settle; retry.")
        if reasons & {"ThrottlingError", "ProvisionedThroughputExceeded"}:
            return StoreUnavailable("The prompt store is throttling requests; retry shortly.")
        return StoreUnavailable(_UNAVAILABLE)
    if code in ERROR_TABLE:
        error_class, message = ERROR_TABLE[code]
        return error_class(message)
    return StoreUnavailable(_UNAVAILABLE)


@contextlib.contextmanager
def translated(operation: str, service: str = "dynamodb") -> Iterator[None]:
    """Turns botocore errors raised inside into core errors; usable as a decorator too."""
    try:
        yield
    except CuecardError:
        raise
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc, service)
        # Code and class only: messages may quote item data.
        log.warning("store %s failed: %s %s -> %s", operation, type(exc).__name__, error_code(exc), type(error).__name__)
        raise error from exc
