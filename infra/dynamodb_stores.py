"""Every store port on one DynamoDB table (and provider keys in Secrets Manager): the AWS backend.

All the table's adapters share one DynamoTable: one client, one connection pool, one call counter
(`templates.calls`, the read budget's meter).
"""

from __future__ import annotations

from infra.dynamodb_api_keys import DynamoApiKeyStore
from infra.dynamodb_collections import DynamoCollectionStore
from infra.dynamodb_job_ledger import DynamoJobLedger
from infra.dynamodb_labels import DynamoLabelStore
from infra.dynamodb_table import DynamoTable
from infra.dynamodb_templates import DynamoTemplateStore
from infra.dynamodb_virtual_keys import DynamoVirtualKeyStore
from infra.secrets import SecretsManagerStore
from infra.settings import Settings
from infra.stores import Stores


def dynamodb_stores(settings: Settings) -> Stores:
    table = DynamoTable.from_settings(settings)
    return Stores(
        templates=DynamoTemplateStore(table),
        labels=DynamoLabelStore(table),
        collections=DynamoCollectionStore(table),
        api_keys=DynamoApiKeyStore(table),
        virtual_keys=DynamoVirtualKeyStore(table),
        secrets=SecretsManagerStore.from_settings(settings),
        jobs=DynamoJobLedger.from_settings(settings, table),
    )
