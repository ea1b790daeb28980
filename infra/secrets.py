"""Provider keys in AWS Secrets Manager (SecretsManagerStore; CachingSecretStore, in infra/cache.py, goes in
front of it so warm calls read none).

A secret is named `<prefix>virtual-keys/<binding id>`; that name is the reference a binding keeps
(Secrets Manager accepts a name wherever it takes an ARN, and a name survives the local server's
journal replay, where ARNs would change). botocore logs request and response bodies at DEBUG,
which would print the key: every botocore, boto3 and urllib3 logger gets a filter that redacts
records carrying a Secrets Manager payload, or any other payload an adapter marks as secret
(`install_log_redaction(markers)`: DynamoVirtualKeyStore marks its binding items, whose header
values, name and note may hold a pasted key).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from botocore.exceptions import ClientError

from core.errors import StoreUnavailable
from infra.aws_clients import lazy_client
from infra.aws_errors import error_code, translated
from infra.settings import Settings

SERVICE = "secretsmanager"
TAGS = [{"Key": "managed-by", "Value": "cuecard"}]
_PAYLOAD_MARKERS = ("SecretString", "SecretBinary")
_REDACTED = "[redacted by cuecard: an AWS request or response that may carry a secret]"
_LOGGERS = (
    "botocore", "botocore.endpoint", "botocore.parsers", "botocore.awsrequest", "botocore.httpsession",
    "botocore.hooks", "botocore.handlers", "botocore.retryhandler", "botocore.retries.standard", "botocore.auth",
    "botocore.client", "botocore.utils", "botocore.httpchecksum", "boto3", "urllib3", "urllib3.connectionpool",
    "urllib3.connection", "urllib3.response",
)


class RedactSecretPayloads(logging.Filter):
    """Keeps the record but replaces a message that holds any of its markers (a SecretString or
    SecretBinary payload, a binding item's key or attribute...)."""

    def __init__(self, markers: tuple[str, ...] = _PAYLOAD_MARKERS) -> None:
        super().__init__()
        self.markers = markers

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        if any(marker in message for marker in self.markers):
            record.msg, record.args = _REDACTED, ()
            record.exc_info = record.exc_text = record.stack_info = None
        return True


_REDACTION = RedactSecretPayloads()
_redaction_lock = threading.Lock()


def install_log_redaction(markers: tuple[str, ...] = ()) -> None:
    """Adds the redacting filter to botocore's, boto3's and urllib3's loggers (idempotent); `markers`
    are more strings whose presence in a record's message redacts it, for good."""
    with _redaction_lock:
        _REDACTION.markers = tuple(dict.fromkeys((*_REDACTION.markers, *markers)))
        names = set(_LOGGERS) | {
            name for name in list(logging.root.manager.loggerDict)
            if name.split(".", 1)[0] in ("botocore", "boto3", "urllib3")
        }
        for name in sorted(names):
            logger = logging.getLogger(name)
            if _REDACTION not in logger.filters:
                logger.addFilter(_REDACTION)


class SecretsManagerStore:
    """SecretStore on AWS Secrets Manager. Errors become core errors through infra/aws_errors.py."""

    def __init__(self, client: Any, prefix: str = "cuecard/", *, force_delete: bool = False,
                 recovery_window_days: int = 7) -> None:
        self._client = client
        self._prefix = prefix
        self._force_delete = force_delete
        self._recovery_window_days = recovery_window_days
        install_log_redaction()

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretsManagerStore:
        return cls(lazy_client(SERVICE, settings.region, settings.secrets_endpoint_url), settings.secret_prefix,
                   force_delete=settings.secret_force_delete, recovery_window_days=settings.secret_recovery_days)

    @property
    def prefix(self) -> str:
        return self._prefix

    def put_secret(self, name: str, value: str) -> str:
        """Creates `<prefix><name>`, or puts a new current value if it exists; returns that full name."""
        full_name = self._prefix + name
        with translated("put_secret", SERVICE):
            try:
                self._client.create_secret(Name=full_name, SecretString=value, Tags=TAGS,
                                           Description="A provider key of a cuecard virtual key")
            except ClientError as exc:
                if error_code(exc) != "ResourceExistsException":
                    raise
                self._client.put_secret_value(SecretId=full_name, SecretString=value)
        return full_name

    def get_secret(self, ref: str) -> str:
        with translated("get_secret", SERVICE):
            response = self._client.get_secret_value(SecretId=ref)
        value = response.get("SecretString")
        if not isinstance(value, str):
            raise StoreUnavailable("The provider key in the secret store is not a string; set the virtual key's key again.")
        return value

    def delete_secret(self, ref: str) -> None:
        """Deletes at once if so configured, else schedules the deletion (recoverable for the window)."""
        if self._force_delete:
            options: dict[str, Any] = {"ForceDeleteWithoutRecovery": True}
        else:
            options = {"RecoveryWindowInDays": self._recovery_window_days}
        with translated("delete_secret", SERVICE):
            try:
                self._client.delete_secret(SecretId=ref, **options)
            except ClientError as exc:
                # Already gone, or already scheduled for deletion: the outcome asked for.
                if error_code(exc) not in ("ResourceNotFoundException", "InvalidRequestException"):
                    raise
