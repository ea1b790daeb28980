"""Every store port on one DynamoDB table (and provider keys in Secrets Manager): the AWS backend."""

from __future__ import annotations

from infra.dynamodb_job_ledger import DynamoJobLedger
from infra.dynamodb_store import DynamoStore
from infra.dynamodb_virtual_keys import DynamoVirtualKeyStore
from infra.secrets import SecretsManagerStore
from infra.settings import Settings
from infra.stores import Stores


def dynamodb_stores(settings: Settings) -> Stores:
    store = DynamoStore.from_settings(settings)
    return Stores(
        templates=store,
        labels=store,
        api_keys=store,
        virtual_keys=DynamoVirtualKeyStore.on_store(store),
        secrets=SecretsManagerStore.from_settings(settings),
        jobs=DynamoJobLedger.from_settings(settings, store.client),
    )
