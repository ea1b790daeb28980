"""DynamoCollectionStore: core.ports.CollectionStore on the one table.

A collection is one item (`collection#<id>` / `COLLECTION`, `entity_type = "collection"` so the
`by_type` GSI lists them oldest first) plus a slug guard (`collectionslug#<slug>` / `GUARD`) that keeps
slugs unique and answers slug -> id in one read. `default` is never stored.
"""

from __future__ import annotations

from core.collections import collection_not_found, refuse_default
from core.errors import Conflict
from core.models import Collection, default_collection, is_default_collection
from infra import dynamo_items as items
from infra.aws_errors import translated
from infra.dynamo_items import Item, s
from infra.dynamodb_table import CONDITION_FAILED, DynamoTable


class DynamoCollectionStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    @translated("create_collection")
    def create_collection(self, collection: Collection) -> Collection:
        if is_default_collection(collection.id) or is_default_collection(collection.slug):
            raise Conflict("the default collection already exists (built in)")
        guard = {**items.collection_slug_guard_key(collection.slug), "collection_id": s(collection.id)}
        codes = self.table.transact_or_reasons([
            self.table.put(items.collection_item(collection), "attribute_not_exists(pk)"),
            self.table.put(guard, "attribute_not_exists(pk)"),
        ])
        if codes:
            if codes[1] == CONDITION_FAILED:
                raise Conflict(f"a collection with slug {collection.slug} already exists")
            raise Conflict(f"collection {collection.id} already exists")
        return collection

    @translated("get_collection")
    def get_collection(self, key: str) -> Collection:
        if is_default_collection(key):
            return default_collection()
        return items.collection_from_item(self._item(key))

    @translated("list_collections")
    def list_collections(self) -> list[Collection]:
        stored = self.table.query(
            IndexName="by_type",
            KeyConditionExpression="entity_type = :type",
            ExpressionAttributeValues={":type": s(items.COLLECTION_TYPE)},
        )
        return [default_collection()] + [items.collection_from_item(item) for item in stored]

    @translated("update_collection")
    def update_collection(self, key: str, *, name: str, updated_at: str) -> Collection:
        refuse_default(key, "renamed")
        item = self._item(key)
        update = self.table.update(items.key(item["pk"]["S"], item["sk"]["S"]), "SET #name = :name, updated_at = :at",
                                   "attribute_exists(pk)", names={"#name": "name"},
                                   values={":name": s(name), ":at": s(updated_at)})
        self.table.run(update)  # deleted meanwhile: the condition fails, a Conflict (aws_errors)
        return items.collection_from_item(self._item(item["collection_id"]["S"]))

    @translated("delete_collection")
    def delete_collection(self, key: str) -> None:
        refuse_default(key, "deleted")
        item = self._item(key)
        collection_id, slug = item["collection_id"]["S"], item["slug"]["S"]
        codes = self.table.transact_or_reasons([
            self.table.delete(items.collection_key(collection_id), "attribute_exists(pk)"),
            self.table.delete(items.collection_slug_guard_key(slug), "collection_id = :id",
                              values={":id": s(collection_id)}),
        ])
        if codes:
            raise collection_not_found(key)

    def _item(self, key: str) -> Item:
        item = self.table.get(items.collection_key(key))
        if item is None:
            guard = self.table.get(items.collection_slug_guard_key(key))
            item = self.table.get(items.collection_key(guard["collection_id"]["S"])) if guard else None
        if item is None:
            raise collection_not_found(key)
        return item
