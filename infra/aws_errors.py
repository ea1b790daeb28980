"""The one mapping from botocore errors to core.errors.

Throttling is retried by botocore itself (standard retry mode, see infra/dynamodb_client.py); what
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
}
_UNAVAILABLE = "The prompt store is unavailable; retry shortly."
_UNAVAILABLE_BY_SERVICE = {"secretsmanager": "The secret store is unavailable; retry shortly."}


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


def translate(exc: BaseException, service: str = "dynamodb") -> CuecardError:
    """The core error a botocore/boto error stands for. Never echoes request data."""
    if isinstance(exc, CuecardError):
        return exc
    if service != "dynamodb":  # another AWS service: its own entries, else unavailable
        error_class, message = ERROR_TABLE.get(
            f"{service}:{error_code(exc)}", (StoreUnavailable, _UNAVAILABLE_BY_SERVICE.get(service, _UNAVAILABLE)))
        return error_class(message)
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
