"""The one factory for boto3 clients (DynamoDB, Secrets Manager, EventBridge, SQS; Bedrock can use it too).

botocore's standard retries, short timeouts, keep-alive. Clients are thread-safe but sessions are
not: one session, used under a lock, makes every client and caches the service models. boto3 and
botocore.config are imported on the first client, not at import (the Lambda cold path).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from botocore.config import Config

MAX_ATTEMPTS = 5  # botocore counts the first call: 1 call + 4 retries with jittered backoff
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
LOCAL_ACCESS_KEY = "cuecard-local"  # dummy credentials for a local endpoint: no AWS account needed
LOCAL_SECRET_KEY = "cuecard-local-secret"

_session_lock = threading.Lock()
_session: Any = None


def client_config(*, max_pool_connections: int = 10, max_attempts: int = MAX_ATTEMPTS,
                  connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT) -> Config:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tcp_keepalive=True,
        max_pool_connections=max_pool_connections,
    )


def client(service: str, region: str, endpoint_url: str | None = None, *, local: bool | None = None,
           **config: Any) -> Any:
    """A `service` client for real AWS (credentials from the usual chain) or, with `endpoint_url`, a local
    endpoint (moto, DynamoDB Local) signed with dummy credentials. `local=False` keeps the real credentials
    for an endpoint of AWS itself (a VPC endpoint); `config` overrides client_config's defaults."""
    import boto3

    kwargs: dict[str, Any] = {"region_name": region, "config": client_config(**config)}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if local is None:
        local = bool(endpoint_url)
    if local:
        kwargs.update(aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_SECRET_KEY)
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(service, **kwargs)


class LazyClient:
    """Builds the client on first use: a render never needs Secrets Manager or EventBridge, so a cold start
    skips them."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        made = self._client
        if made is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                made = self._client
        return getattr(made, name)


def lazy_client(service: str, region: str, endpoint_url: str | None = None) -> LazyClient:
    return LazyClient(lambda: client(service, region, endpoint_url))
