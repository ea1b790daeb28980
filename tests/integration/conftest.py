"""Integration fixtures on top of tests/conftest.py's embedded DynamoDB."""

from __future__ import annotations

import pytest

from infra.dynamodb_store import DynamoStore
from infra.settings import Settings


@pytest.fixture
def store(settings: Settings) -> DynamoStore:
    return DynamoStore.from_settings(settings)


@pytest.fixture
def fresh_store(settings: Settings) -> DynamoStore:
    """A second store on the same table with nothing remembered (a cold Lambda container)."""
    return DynamoStore.from_settings(settings)
