"""DynamoApiKeyStore: core.ports.ApiKeyStore on the one table. Keys are stored by hash only (core.auth)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from core.errors import NotFound
from core.models import ApiKeyRecord
from infra import dynamo_items as items
from infra.aws_errors import translated
from infra.dynamo_items import Item, s
from infra.dynamodb_table import TRUE, DynamoTable


class DynamoApiKeyStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    @translated("put_key")
    def put_key(self, record: ApiKeyRecord) -> None:
        self.table.run(self.table.put(items.api_key_item(record)))

    @translated("get_key")
    def get_key(self, key_hash: str) -> ApiKeyRecord | None:
        item = self.table.get(items.api_key_key(key_hash))
        return items.api_key_from_item(item) if item else None

    @translated("list_keys")
    def list_keys(self) -> Iterable[ApiKeyRecord]:
        return [items.api_key_from_item(item) for item in self._items()]

    @translated("revoke_key")
    def revoke_key(self, key_id: str) -> None:
        matches = list(self._items(key_id))
        if not matches:
            raise NotFound(f"API key {key_id} not found")
        for item in matches:
            self.table.run(
                self.table.update(
                    items.key(item["pk"]["S"], item["sk"]["S"]), "SET revoked = :true", "attribute_exists(pk)",
                    values={":true": TRUE},
                )
            )

    def _items(self, key_id: str | None = None) -> Iterator[Item]:
        kwargs: dict[str, Any] = {
            "IndexName": "by_type",
            "KeyConditionExpression": "entity_type = :type",
            "ExpressionAttributeValues": {":type": s(items.API_KEY_TYPE)},
        }
        if key_id is not None:
            kwargs["FilterExpression"] = "key_id = :key_id"
            kwargs["ExpressionAttributeValues"][":key_id"] = s(key_id)
        return self.table.query(**kwargs)
