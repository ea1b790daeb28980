"""Integration fixtures on top of tests/conftest.py's moto server: the DynamoDB adapters on one table."""

from __future__ import annotations

import pytest

from infra.dynamodb_api_keys import DynamoApiKeyStore
from infra.dynamodb_labels import DynamoLabelStore
from infra.dynamodb_table import DynamoTable
from infra.dynamodb_templates import DynamoTemplateStore
from infra.settings import Settings


@pytest.fixture
def table(settings: Settings) -> DynamoTable:
    return DynamoTable.from_settings(settings)


@pytest.fixture
def templates(table: DynamoTable) -> DynamoTemplateStore:
    return DynamoTemplateStore(table)


@pytest.fixture
def labels(table: DynamoTable) -> DynamoLabelStore:
    return DynamoLabelStore(table)


@pytest.fixture
def api_keys(table: DynamoTable) -> DynamoApiKeyStore:
    return DynamoApiKeyStore(table)


@pytest.fixture
def fresh_templates(settings: Settings) -> DynamoTemplateStore:
    """A second template store on the same table with nothing remembered (a cold Lambda container)."""
    return DynamoTemplateStore(DynamoTable.from_settings(settings))
