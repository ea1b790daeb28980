"""Shared fixtures: one embedded DynamoDB (moto server mode) on 127.0.0.1 per session, a fresh table per test."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest

from infra.dynamodb_client import dynamodb_client
from infra.local_dynamodb import LocalDynamoDB, ensure_table
from infra.settings import Settings

REGION = "us-east-1"


@pytest.fixture(scope="session")
def local_dynamodb() -> Iterator[LocalDynamoDB]:
    server = LocalDynamoDB("127.0.0.1", 0, region=REGION).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(local_dynamodb: LocalDynamoDB) -> Iterator[Settings]:
    """Settings for a table of this test's own, deleted afterwards."""
    table_name = f"cuecard-test-{uuid.uuid4().hex[:12]}"
    ensure_table(local_dynamodb.endpoint_url, table_name, REGION)
    yield Settings(table_name=table_name, dynamodb_endpoint=local_dynamodb.endpoint_url, region=REGION)
    dynamodb_client(REGION, local_dynamodb.endpoint_url).delete_table(TableName=table_name)
