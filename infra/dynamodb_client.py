"""Builds the low-level DynamoDB client: botocore's standard retries, short timeouts, keep-alive."""

from __future__ import annotations

import threading
from typing import Any

from botocore.config import Config

from infra.settings import Settings

MAX_ATTEMPTS = 5  # botocore counts the first call: 1 call + 4 retries with jittered backoff
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
LOCAL_ACCESS_KEY = "cuecard-local"  # dummy credentials for a local endpoint: no AWS account needed
LOCAL_SECRET_KEY = "cuecard-local-secret"

# Clients are thread-safe but sessions are not; one session, used under a lock, caches service models.
_session_lock = threading.Lock()
_session: Any = None


def client_config(*, max_pool_connections: int = 10) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        tcp_keepalive=True,
        max_pool_connections=max_pool_connections,
    )


def dynamodb_client(
    region: str, endpoint_url: str | None = None, *, max_pool_connections: int = 10
) -> Any:
    """A client for real AWS (credentials from the usual chain) or, with `endpoint_url`, a local endpoint."""
    import boto3

    kwargs: dict[str, Any] = {"region_name": region, "config": client_config(max_pool_connections=max_pool_connections)}
    if endpoint_url:
        kwargs.update(
            endpoint_url=endpoint_url, aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_SECRET_KEY
        )
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("dynamodb", **kwargs)


def client_from_settings(settings: Settings, *, max_pool_connections: int = 10) -> Any:
    return dynamodb_client(settings.region, settings.dynamodb_endpoint, max_pool_connections=max_pool_connections)
