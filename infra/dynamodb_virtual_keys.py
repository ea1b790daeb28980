"""DynamoVirtualKeyStore: provider bindings on the prompts table; CachingVirtualKeyStore in front of it.

Items (same table and client as DynamoStore):
- `pk = vkey#<id>`, `sk = VKEY`: the binding, with `entity_type = virtual_key` so the `by_type` GSI
  lists bindings oldest first, and a `revision` counter for optimistic updates.
- `pk = slug#virtual_key#<slug>`, `sk = GUARD`: keeps slugs unique and holds a full copy of the
  binding (no `entity_type`, so it is not listed), so a slug resolves in one consistent GetItem.
Create, update and delete write both items in one transaction. A binding holds `secret_ref` and
`masked_key`, never the provider key itself (that lives in the SecretStore), and `actor`: who made
its last change (core.actor).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError

from core.actor import actor_or_system
from core.errors import Conflict, InvalidRequest, VirtualKeyNotFound
from core.models import VirtualKey
from core.ports import VirtualKeyStore
from infra.attribute_codec import from_attr, to_attr
from infra.aws_errors import cancellation_codes, error_code, translate, translated
from infra.dynamo_items import GUARD_SK, Item, key, n, s
from infra.dynamodb_store import is_entity_id

VIRTUAL_KEY_TYPE = "virtual_key"
VIRTUAL_KEY_SK = "VKEY"
CHANGEABLE_FIELDS = frozenset({"name", "note", "custom_host", "headers", "config", "secret_ref", "masked_key", "updated_at"})
_OPTIONAL_FIELDS = ("secret_ref", "masked_key", "custom_host", "note")
_RETRYABLE = frozenset({"ConditionalCheckFailed", "TransactionConflict"})
_UPDATE_ATTEMPTS = 10


def binding_key(binding_id: str) -> Item:
    return key(f"vkey#{binding_id}", VIRTUAL_KEY_SK)


def slug_guard_key(slug: str) -> Item:
    return key(f"slug#{VIRTUAL_KEY_TYPE}#{slug}", GUARD_SK)


def _attributes(binding: VirtualKey, revision: int) -> Item:
    item: Item = {
        "binding_id": s(binding.id),
        "slug": s(binding.slug),
        "name": s(binding.name),
        "provider": s(binding.provider),
        "created_at": s(binding.created_at),
        "updated_at": s(binding.updated_at),
        "headers": to_attr(dict(binding.headers), name="headers"),
        "config": to_attr(dict(binding.config), name="config"),
        "revision": n(revision),
        "actor": s(actor_or_system()),  # who made the last change, like prompt HEAD items
    }
    for field in _OPTIONAL_FIELDS:
        value = getattr(binding, field)
        if value is not None:
            item[field] = s(value)
    return item


def binding_item(binding: VirtualKey, revision: int = 1) -> Item:
    return {
        **binding_key(binding.id),
        "entity_type": s(VIRTUAL_KEY_TYPE),
        "entity_sort": s(f"{binding.created_at}#{binding.id}"),
        **_attributes(binding, revision),
    }


def guard_item(binding: VirtualKey, revision: int = 1) -> Item:
    return {**slug_guard_key(binding.slug), **_attributes(binding, revision)}


def binding_from_item(item: Mapping[str, Any]) -> VirtualKey:
    def get(name: str, default: Any = None) -> Any:
        attr = item.get(name)
        return default if attr is None else from_attr(attr)

    return VirtualKey(
        id=get("binding_id"),
        slug=get("slug"),
        name=get("name"),
        provider=get("provider"),
        created_at=get("created_at"),
        updated_at=get("updated_at"),
        secret_ref=get("secret_ref"),
        masked_key=get("masked_key"),
        custom_host=get("custom_host"),
        headers=get("headers", {}),
        config=get("config", {}),
        note=get("note"),
    )


def _revision(item: Mapping[str, Any]) -> int:
    return int(item.get("revision", {}).get("N", "0"))


class DynamoVirtualKeyStore:
    def __init__(self, client: Any, table_name: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep

    @classmethod
    def on_store(cls, store: Any) -> DynamoVirtualKeyStore:
        """On the same client and table as a DynamoStore."""
        return cls(store.client, store.table_name)

    @translated("create_virtual_key")
    def create_virtual_key(self, binding: VirtualKey) -> VirtualKey:
        if not is_entity_id(binding.id) or binding.id != binding.id.lower():
            raise InvalidRequest(f"virtual key id {binding.id!r} must be a lower-case UUID string")
        if is_entity_id(binding.slug):
            raise InvalidRequest(f"slug {binding.slug!r} must not look like an id", param="slug")
        codes = self._transact([
            self._put(binding_item(binding), "attribute_not_exists(pk)"),
            self._put(guard_item(binding), "attribute_not_exists(pk)"),
        ])
        if codes:
            if codes[1] == "ConditionalCheckFailed":
                raise Conflict(f"slug {binding.slug} is already in use by another virtual key", param="slug")
            raise Conflict(f"virtual key {binding.id} already exists")
        return binding

    @translated("get_virtual_key")
    def get_virtual_key(self, key_: str) -> VirtualKey:
        """By id (one GetItem of the binding) or by slug (one GetItem of its guard, which holds a copy)."""
        item = self._get(binding_key(key_.lower()) if is_entity_id(key_) else slug_guard_key(key_))
        if item is None:
            raise _not_found(key_)
        return binding_from_item(item)

    @translated("list_virtual_keys")
    def list_virtual_keys(self) -> list[VirtualKey]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_type",
            "KeyConditionExpression": "entity_type = :type",
            "ExpressionAttributeValues": {":type": s(VIRTUAL_KEY_TYPE)},
        }
        found: list[VirtualKey] = []
        while True:
            page = self._client.query(**request)
            found.extend(binding_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @translated("update_virtual_key")
    def update_virtual_key(self, key_: str, changes: Mapping[str, Any]) -> VirtualKey:
        unknown = set(changes) - CHANGEABLE_FIELDS
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))} of a virtual key")
        binding_id = self._binding_id(key_)
        for attempt in range(_UPDATE_ATTEMPTS):
            item = self._get(binding_key(binding_id))
            if item is None:
                raise _not_found(key_)
            revision = _revision(item)
            updated = dataclasses.replace(binding_from_item(item), **changes)
            codes = self._transact([
                self._put(binding_item(updated, revision + 1), "revision = :revision", {":revision": n(revision)}),
                self._put(guard_item(updated, revision + 1), "binding_id = :id", {":id": s(binding_id)}),
            ])
            if not codes:
                return updated
            if codes[0] != "ConditionalCheckFailed" and codes[1] == "ConditionalCheckFailed":
                raise Conflict(f"the slug of virtual key {binding_id} is held by another binding")
            self._sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
        raise Conflict(f"too many concurrent writes to virtual key {key_}; it was not changed, retry")

    @translated("delete_virtual_key")
    def delete_virtual_key(self, key_: str) -> None:
        item = self._get(binding_key(key_.lower()) if is_entity_id(key_) else slug_guard_key(key_))
        if item is None:
            raise _not_found(key_)
        binding = binding_from_item(item)
        codes = self._transact([
            {"Delete": {"TableName": self._table, "Key": binding_key(binding.id),
                        "ConditionExpression": "attribute_exists(pk)"}},
            {"Delete": {"TableName": self._table, "Key": slug_guard_key(binding.slug),
                        "ConditionExpression": "binding_id = :id", "ExpressionAttributeValues": {":id": s(binding.id)}}},
        ])
        if codes:
            if codes[0] == "ConditionalCheckFailed":
                raise _not_found(key_)
            raise Conflict(f"virtual key {key_} changed while it was being deleted; retry")

    # --- low level ----------------------------------------------------------------------------

    def _binding_id(self, key_: str) -> str:
        if is_entity_id(key_):
            return key_.lower()
        guard = self._get(slug_guard_key(key_))
        if guard is None:
            raise _not_found(key_)
        return guard["binding_id"]["S"]

    def _get(self, item_key: Item) -> Item | None:
        return self._client.get_item(TableName=self._table, Key=item_key, ConsistentRead=True).get("Item")

    def _put(self, item: Item, condition: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        operation: dict[str, Any] = {"TableName": self._table, "Item": item, "ConditionExpression": condition}
        if values:
            operation["ExpressionAttributeValues"] = values
        return {"Put": operation}

    def _transact(self, transaction: list[dict[str, Any]]) -> list[str]:
        """[] on success, else the per-item reasons of a cancellation caused by conditions or conflicts."""
        try:
            self._client.transact_write_items(TransactItems=transaction)
            return []
        except ClientError as exc:
            codes = cancellation_codes(exc) if error_code(exc) == "TransactionCanceledException" else []
            if not _RETRYABLE & set(codes):
                raise translate(exc) from exc
            return codes


def _not_found(key_: str) -> VirtualKeyNotFound:
    return VirtualKeyNotFound(f"virtual key {key_} not found")


class CachingVirtualKeyStore:
    """Keeps bindings read by id or slug for `ttl` seconds (0: no cache); writes through it clear the cache.

    Other processes see a change when their entries expire. Misses are not cached, so a binding
    created anywhere is usable at once.
    """

    def __init__(self, inner: VirtualKeyStore, ttl: float, clock: Callable[[], float] = time.monotonic,
                 *, max_entries: int = 1024) -> None:
        self._inner = inner
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, VirtualKey]] = {}
        self._generation = 0

    @property
    def inner(self) -> VirtualKeyStore:
        return self._inner

    def get_virtual_key(self, key_: str) -> VirtualKey:
        if self._ttl <= 0:
            return self._inner.get_virtual_key(key_)
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key_)
            if hit is not None and hit[0] > now:
                return hit[1]
            generation = self._generation
        binding = self._inner.get_virtual_key(key_)
        with self._lock:
            if generation == self._generation:
                if len(self._entries) >= self._max_entries:
                    self._entries.clear()
                for name in {key_, binding.id, binding.slug}:
                    self._entries[name] = (now + self._ttl, binding)
        return binding

    def list_virtual_keys(self) -> list[VirtualKey]:
        return self._inner.list_virtual_keys()

    def create_virtual_key(self, binding: VirtualKey) -> VirtualKey:
        try:
            return self._inner.create_virtual_key(binding)
        finally:
            self.invalidate()

    def update_virtual_key(self, key_: str, changes: Mapping[str, Any]) -> VirtualKey:
        try:
            return self._inner.update_virtual_key(key_, changes)
        finally:
            self.invalidate()

    def delete_virtual_key(self, key_: str) -> None:
        try:
            self._inner.delete_virtual_key(key_)
        finally:
            self.invalidate()

    def invalidate(self) -> None:
        """Forgets every cached binding (writes are rare; a binding is cached under its id and its slug)."""
        with self._lock:
            self._entries.clear()
            self._generation += 1
