"""The low-level DynamoDB client, from the one client factory (infra/aws_clients.py)."""

from __future__ import annotations

from typing import Any

from infra.aws_clients import client


def dynamodb_client(region: str, endpoint_url: str | None = None, *, max_pool_connections: int = 10) -> Any:
    """A client for real AWS (credentials from the usual chain) or, with `endpoint_url`, a local endpoint."""
    return client("dynamodb", region, endpoint_url, max_pool_connections=max_pool_connections)
