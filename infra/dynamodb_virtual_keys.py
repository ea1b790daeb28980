"""DynamoVirtualKeyStore: provider bindings on the prompts table (CachingVirtualKeyStore, in infra/cache.py,
goes in front of it).

Items (on the same DynamoTable as the other adapters):
- `pk = vkey#<id>`, `sk = VKEY`: the binding, with `entity_type = virtual_key` so the `by_type` GSI
  lists bindings oldest first, and a `revision` counter for optimistic updates.
- `pk = slug#virtual_key#<slug>`, `sk = GUARD`: keeps slugs unique and holds a full copy of the
  binding (no `entity_type`, so it is not listed), so a slug resolves in one consistent GetItem.
Create, update and delete write both items in one transaction. A binding holds `secret_ref` and
`masked_key`, never the provider key itself (that lives in the SecretStore), and `actor`: who made
its last change (core.actor).

botocore logs request and response bodies at DEBUG; a binding's header values, name or note may
hold a pasted key, so every record that carries a binding item or key (`BINDING_LOG_MARKERS`) is
redacted (infra/secrets.py's filter, installed by the store).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from core.actor import actor_or_system
from core.errors import Conflict, InvalidRequest, VirtualKeyNotFound
from core.models import VIRTUAL_KEY_CHANGEABLE_FIELDS, VirtualKey
from core.references import check_new_keys, is_entity_id
from infra.attribute_codec import from_attr, to_attr
from infra.aws_errors import translated
from infra.dynamo_items import GUARD_SK, Item, key, n, s
from infra.dynamodb_table import CONDITION_FAILED, DynamoTable
from infra.secrets import install_log_redaction

VIRTUAL_KEY_TYPE = "virtual_key"
VIRTUAL_KEY_SK = "VKEY"
_OPTIONAL_FIELDS = ("secret_ref", "masked_key", "custom_host", "note")
_UPDATE_ATTEMPTS = 10


BINDING_PK_PREFIX = "vkey#"
SLUG_GUARD_PK_PREFIX = f"slug#{VIRTUAL_KEY_TYPE}#"
# In every request or response that carries a binding item: its key, or the attribute only bindings have.
BINDING_LOG_MARKERS = (BINDING_PK_PREFIX, SLUG_GUARD_PK_PREFIX, "binding_id")


def binding_key(binding_id: str) -> Item:
    return key(f"{BINDING_PK_PREFIX}{binding_id}", VIRTUAL_KEY_SK)


def slug_guard_key(slug: str) -> Item:
    return key(f"{SLUG_GUARD_PK_PREFIX}{slug}", GUARD_SK)


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
    def __init__(self, table: DynamoTable, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.table = table
        self._sleep = sleep
        install_log_redaction(BINDING_LOG_MARKERS)

    @translated("create_virtual_key")
    def create_virtual_key(self, binding: VirtualKey) -> VirtualKey:
        check_new_keys("virtual key", binding.id, binding.slug)
        codes = self.table.transact_or_reasons([
            self.table.put(binding_item(binding), "attribute_not_exists(pk)"),
            self.table.put(guard_item(binding), "attribute_not_exists(pk)"),
        ])
        if codes:
            if codes[1] == CONDITION_FAILED:
                raise Conflict("The slug is already in use by another virtual key.", param="slug")
            raise Conflict(f"virtual key {binding.id} already exists")
        return binding

    @translated("get_virtual_key")
    def get_virtual_key(self, key_: str) -> VirtualKey:
        """By id (one GetItem of the binding) or by slug (one GetItem of its guard, which holds a copy)."""
        return binding_from_item(self._item(key_))

    @translated("list_virtual_keys")
    def list_virtual_keys(self) -> list[VirtualKey]:
        found = self.table.query(
            IndexName="by_type",
            KeyConditionExpression="entity_type = :type",
            ExpressionAttributeValues={":type": s(VIRTUAL_KEY_TYPE)},
        )
        return [binding_from_item(item) for item in found]

    @translated("update_virtual_key")
    def update_virtual_key(self, key_: str, changes: Mapping[str, Any]) -> VirtualKey:
        unknown = set(changes) - VIRTUAL_KEY_CHANGEABLE_FIELDS
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))} of a virtual key")
        binding_id = self._binding_id(key_)
        for attempt in range(_UPDATE_ATTEMPTS):
            item = self.table.get(binding_key(binding_id))
            if item is None:
                raise _not_found(key_)
            revision = _revision(item)
            updated = dataclasses.replace(binding_from_item(item), **changes)
            codes = self.table.transact_or_reasons([
                self.table.put(binding_item(updated, revision + 1), "revision = :revision",
                               values={":revision": n(revision)}),
                self.table.put(guard_item(updated, revision + 1), "binding_id = :id", values={":id": s(binding_id)}),
            ])
            if not codes:
                return updated
            if codes[0] != CONDITION_FAILED and codes[1] == CONDITION_FAILED:
                raise Conflict(f"the slug of virtual key {binding_id} is held by another binding")
            self._sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
        raise Conflict(f"too many concurrent writes to virtual key {key_}; it was not changed, retry")

    @translated("delete_virtual_key")
    def delete_virtual_key(self, key_: str) -> None:
        binding = binding_from_item(self._item(key_))
        codes = self.table.transact_or_reasons([
            self.table.delete(binding_key(binding.id), "attribute_exists(pk)"),
            self.table.delete(slug_guard_key(binding.slug), "binding_id = :id", values={":id": s(binding.id)}),
        ])
        if codes:
            if codes[0] == CONDITION_FAILED:
                raise _not_found(key_)
            raise Conflict(f"virtual key {key_} changed while it was being deleted; retry")

    # --- low level ----------------------------------------------------------------------------

    def _item(self, key_: str) -> Item:
        """The binding's item by id, or its guard's full copy by slug."""
        item = self.table.get(binding_key(key_.lower()) if is_entity_id(key_) else slug_guard_key(key_))
        if item is None:
            raise _not_found(key_)
        return item

    def _binding_id(self, key_: str) -> str:
        if is_entity_id(key_):
            return key_.lower()
        return self._item(key_)["binding_id"]["S"]


def _not_found(key_: str) -> VirtualKeyNotFound:
    return VirtualKeyNotFound(f"virtual key {key_} not found")
