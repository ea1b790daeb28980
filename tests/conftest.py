"""Shared fixtures: one moto server (DynamoDB, Secrets Manager) on 127.0.0.1 per session, a fresh table per test."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest

from infra.dynamodb_client import dynamodb_client
from infra.settings import Settings
from infra.table_definition import ensure_table
from tests.moto_server import MotoServer

REGION = "us-east-1"


@pytest.fixture(scope="session")
def local_dynamodb() -> Iterator[MotoServer]:
    server = MotoServer("127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(local_dynamodb: MotoServer) -> Iterator[Settings]:
    """Settings for a table of this test's own, deleted afterwards."""
    table_name = f"cuecard-test-{uuid.uuid4().hex[:12]}"
    settings = Settings(table_name=table_name, dynamodb_endpoint=local_dynamodb.endpoint_url, region=REGION)
    ensure_table(settings)
    yield settings
    dynamodb_client(REGION, local_dynamodb.endpoint_url).delete_table(TableName=table_name)
