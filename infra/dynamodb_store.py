"""DynamoStore: TemplateStore, LabelStore and ApiKeyStore on one DynamoDB table (low-level client).

Every HEAD write records who made it (`actor`, from core.actor; `system` when no caller is known, e.g.
the CLI), and every new V# item records who wrote it; change events read them from the table's stream.

Keys: ids are UUIDs; anything else is a slug. A slug resolves through the `by_alias` GSI in one
Query; the answer's id is remembered (slugs never change) so later reads are consistent GetItems by
id. A GSI miss (eventual consistency right after create) falls back to the slug guard item.
"""

from __future__ import annotations

import random
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping

from botocore.exceptions import ClientError

from core.errors import (
    Conflict,
    InvalidRequest,
    LabelNotFound,
    NotFound,
    PartialNotFound,
    PayloadTooLarge,
    PromptNotFound,
    VersionNotFound,
)
from core.actor import actor_or_system
from core.models import BUILTIN_LABELS, ApiKeyRecord, Entity, Kind, Label, TemplateVersion, VersionDraft
from core.references import Reference, check_label_name
from infra import dynamo_items as items
from infra.attribute_codec import item_size, to_attr
from infra.aws_errors import ITEM_TOO_LARGE_MESSAGE, cancellation_codes, error_code, translate, translated
from infra.call_counter import CallCounter
from infra.dynamo_items import Item, n, s
from infra.settings import Settings

UUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_ITEM_BYTES = 400_000  # under DynamoDB's 400 KB (409,600 bytes) with room for its own accounting
_POINTER_HEADROOM = len(items.label_pointer_sk("x" * 64)) + 64  # a pointer copy has a longer sort key
_MAX_TRANSACT_ITEMS = 100
_BUILTIN_CREATED_AT = "1970-01-01T00:00:00.000Z"
_CONDITION_FAILED = "ConditionalCheckFailed"
_RETRYABLE_REASONS = frozenset({_CONDITION_FAILED, "TransactionConflict"})
_ENTITY_FIELDS = frozenset({"name", "collection_id", "workspace_id", "metadata"})
_TRUE, _FALSE, _ONE = {"BOOL": True}, {"BOOL": False}, {"N": "1"}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_entity_id(key: str) -> bool:
    return bool(UUID_PATTERN.match(key))


class DynamoStore:
    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        now: Callable[[], str] = utc_now,
        append_attempts: int = 200,
        append_deadline: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._now = now
        self._append_attempts = append_attempts
        self._append_deadline = append_deadline
        self._sleep = sleep
        self._slug_ids: dict[tuple[Kind, str], str] = {}
        self._slug_lock = threading.Lock()
        self.calls = CallCounter().attach(client)

    @classmethod
    def from_settings(cls, settings: Settings, *, max_pool_connections: int = 10, **options: Any) -> DynamoStore:
        from infra.dynamodb_client import client_from_settings

        return cls(client_from_settings(settings, max_pool_connections=max_pool_connections), settings.table_name, **options)

    @property
    def client(self) -> Any:
        return self._client

    @property
    def table_name(self) -> str:
        return self._table

    # --- TemplateStore: reads -------------------------------------------------------------------

    @translated("resolve")
    def resolve(self, kind: Kind, ref: Reference) -> TemplateVersion:
        if ref.selector == "number":
            sk = items.version_sk(ref.number or 0)
        elif ref.selector == "label":
            sk = items.label_pointer_sk(ref.label or "")
        elif ref.selector == "latest":
            sk = items.LATEST_SK
        else:
            sk = items.PUBLISHED_SK
        entity_id, item = self._read(kind, ref.key, sk)
        if item is not None and not items.is_deleted(item):
            return items.version_from_item(item)
        raise self._missing(kind, ref.key, entity_id, ref)

    @translated("get_entity")
    def get_entity(self, kind: Kind, key: str) -> Entity:
        _, item = self._read(kind, key, items.HEAD_SK)
        if item is None or items.is_deleted(item):
            raise self._entity_not_found(kind, key)
        return items.entity_from_item(item)

    @translated("list_entities")
    def list_entities(self, kind: Kind, *, collection_id: str | None = None) -> list[Entity]:
        conditions, values = ["deleted = :false"], {":type": s(kind.value), ":false": _FALSE}
        if collection_id is not None:
            conditions.append("collection_id = :collection")
            values[":collection"] = s(collection_id)
        found = self._query(
            IndexName="by_type",
            KeyConditionExpression="entity_type = :type",
            FilterExpression=" AND ".join(conditions),
            ExpressionAttributeValues=values,
        )
        return [items.entity_from_item(item) for item in found]

    @translated("get_version")
    def get_version(self, kind: Kind, key: str, version: int) -> TemplateVersion:
        return self.resolve(kind, Reference(key, "number", number=version))

    @translated("get_version_by_id")
    def get_version_by_id(self, kind: Kind, key: str, version_id: str) -> TemplateVersion:
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        index = self._get(items.key(pk, items.version_id_sk(version_id)))
        version = self._get(items.key(pk, items.version_sk(int(index["version"]["N"])))) if index else None
        if version is not None and not items.is_deleted(version):
            return items.version_from_item(version)
        head = self._live_head(kind, entity_id, key)
        raise VersionNotFound(f"{kind.value} {head['slug']['S']} has no version with id {version_id}")

    @translated("list_versions")
    def list_versions(self, kind: Kind, key: str) -> list[TemplateVersion]:
        entity_id = self._entity_id(kind, key)
        self._live_head(kind, entity_id, key)
        found = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(items.entity_pk(kind, entity_id)), ":prefix": s(items.VERSION_PREFIX)},
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        return [items.version_from_item(item) for item in found]

    # --- TemplateStore: writes ------------------------------------------------------------------

    @translated("create")
    def create(self, kind: Kind, entity: Entity, first: VersionDraft) -> TemplateVersion:
        if entity.kind is not kind:
            raise InvalidRequest(f"cannot store a {entity.kind.value} as a {kind.value}")
        if not is_entity_id(entity.id) or entity.id != entity.id.lower():
            raise InvalidRequest(f"{kind.value} id {entity.id!r} must be a lower-case UUID string")
        if is_entity_id(entity.slug):
            raise InvalidRequest(f"slug {entity.slug!r} must not look like an id")
        actor = actor_or_system()
        version = TemplateVersion.from_draft(kind, entity.id, entity.slug, 1, first)
        version_item = self._sized(items.version_item(version, items.version_sk(1), actor=actor))
        guard = {**items.slug_guard_key(kind, entity.slug), "entity_id": s(entity.id)}
        transaction = [
            self._put(items.head_item(entity, actor=actor), "attribute_not_exists(pk)"),
            self._put(guard, "attribute_not_exists(pk)"),
            self._put(version_item, "attribute_not_exists(pk)"),
            self._put(items.pointer_copy(version_item, items.LATEST_SK)),
            self._put(items.pointer_copy(version_item, items.PUBLISHED_SK)),
            self._put(self._version_index(version), "attribute_not_exists(pk)"),
        ]
        codes = self._transact_or_reasons(transaction)
        if codes:
            if codes[0] == _CONDITION_FAILED:
                raise Conflict(f"{kind.value} {entity.id} already exists")
            if codes[1] == _CONDITION_FAILED:
                raise Conflict(f"slug {entity.slug} is already in use")
            raise Conflict(f"could not create {kind.value} {entity.slug}: a concurrent write interfered; retry")
        self._remember(kind, entity.slug, entity.id)
        return version

    @translated("append_version")
    def append_version(self, kind: Kind, key: str, build: Callable[[TemplateVersion], VersionDraft]) -> TemplateVersion:
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        deadline = time.monotonic() + self._append_deadline
        actor = actor_or_system()
        for attempt in range(self._append_attempts):
            latest_item = self._get(items.key(pk, items.LATEST_SK))
            if latest_item is None:
                raise self._missing(kind, key, entity_id, Reference(key, "latest"))
            latest = items.version_from_item(latest_item)
            version = TemplateVersion.from_draft(kind, entity_id, latest.slug, latest.version + 1, build(latest))
            version_item = self._sized(items.version_item(version, items.version_sk(version.version), actor=actor))
            transaction = [
                self._update(
                    items.key(pk, items.HEAD_SK),
                    "SET latest_version = :next, updated_at = :now, revision = revision + :one, actor = :actor",
                    "latest_version = :previous AND deleted = :false",
                    values={
                        ":next": n(version.version),
                        ":previous": n(latest.version),
                        ":now": s(version.created_at),
                        ":one": _ONE,
                        ":false": _FALSE,
                        ":actor": s(actor),
                    },
                ),
                self._put(version_item, "attribute_not_exists(pk)"),
                self._put(items.pointer_copy(version_item, items.LATEST_SK)),
                self._put(self._version_index(version), "attribute_not_exists(pk)"),
            ]
            codes = self._transact_or_reasons(transaction)
            if not codes:
                return version
            if codes[0] != _CONDITION_FAILED and codes[3] == _CONDITION_FAILED:
                raise Conflict(f"{kind.value} {latest.slug} already has a version with id {version.version_id}")
            if not _RETRYABLE_REASONS & set(codes) or time.monotonic() > deadline:
                break
            self._sleep(random.uniform(0, min(0.25, 0.005 * 2 ** min(attempt, 6))))
        raise Conflict(f"too many concurrent writes to {kind.value} {key}; the new version was not saved, retry")

    @translated("update_entity")
    def update_entity(self, kind: Kind, key: str, changes: Mapping[str, Any]) -> Entity:
        unknown = set(changes) - _ENTITY_FIELDS
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))} of a {kind.value}")
        entity_id = self._entity_id(kind, key)
        sets = ["updated_at = :now", "revision = revision + :one", "actor = :actor"]
        removes: list[str] = []
        names: dict[str, str] = {}  # `name` is a DynamoDB reserved word
        values: dict[str, Any] = {
            ":now": s(self._now()), ":one": _ONE, ":false": _FALSE, ":actor": s(actor_or_system())}
        for field, value in changes.items():
            names[f"#{field}"] = field
            if value is None and field == "workspace_id":
                removes.append(f"#{field}")
            elif field in ("name", "collection_id") and not isinstance(value, str):
                raise InvalidRequest(f"{field} must be a string")
            else:
                sets.append(f"#{field} = :{field}")
                values[f":{field}"] = to_attr(dict(value) if field == "metadata" else value, name=field)
        try:
            updated = self._client.update_item(
                TableName=self._table,
                Key=items.key(items.entity_pk(kind, entity_id), items.HEAD_SK),
                UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
                ConditionExpression="attribute_exists(pk) AND deleted = :false",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise self._entity_not_found(kind, key) from None
            raise
        return items.entity_from_item(updated["Attributes"])

    @translated("publish")
    def publish(self, kind: Kind, key: str, version: int) -> Entity:
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        version_item = self._live_version_item(kind, key, entity_id, version)
        transaction = [
            self._update(
                items.key(pk, items.HEAD_SK),
                "SET published_version = :version, updated_at = :now, revision = revision + :one, actor = :actor",
                "attribute_exists(pk) AND deleted = :false",
                values={":version": n(version), ":now": s(self._now()), ":one": _ONE, ":false": _FALSE,
                        ":actor": s(actor_or_system())},
            ),
            self._put(items.pointer_copy(version_item, items.PUBLISHED_SK)),
        ]
        if self._transact_or_reasons(transaction):
            raise self._entity_not_found(kind, key)
        return items.entity_from_item(self._live_head(kind, entity_id, key))

    def _live_version_item(self, kind: Kind, key: str, entity_id: str, version: int) -> Item:
        """Version `version`'s item, or the NotFound that `key@version` would raise."""
        pk = items.entity_pk(kind, entity_id)
        version_item = self._get(items.key(pk, items.version_sk(version)))
        if version_item is None or items.is_deleted(version_item):
            raise self._missing(kind, key, entity_id, Reference(key, "number", number=version))
        return version_item

    @translated("set_label")
    def set_label(self, key: str, version: int, label: str) -> Entity:
        kind = Kind.PROMPT
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        label_id = None if label in BUILTIN_LABELS else self._label_id_by_name(label)
        if label not in BUILTIN_LABELS and label_id is None:
            raise LabelNotFound(f"label {label} not found")
        version_item = self._live_version_item(kind, key, entity_id, version)
        transaction = [
            self._update(
                items.key(pk, items.HEAD_SK),
                "SET labels.#label = :version, updated_at = :now, revision = revision + :one, actor = :actor",
                "attribute_exists(pk) AND deleted = :false",
                names={"#label": label},
                values={":version": n(version), ":now": s(self._now()), ":one": _ONE, ":false": _FALSE,
                        ":actor": s(actor_or_system())},
            ),
            self._put(items.pointer_copy(version_item, items.label_pointer_sk(label))),
        ]
        if label_id is not None:
            transaction.append(
                self._update(
                    items.label_key(label_id),
                    "ADD used_by :prompt",
                    "attribute_exists(pk) AND #name = :label",
                    names={"#name": "name"},
                    values={":prompt": {"SS": [pk]}, ":label": s(label)},
                )
            )
        codes = self._transact_or_reasons(transaction)
        if codes:
            if codes[0] == _CONDITION_FAILED:
                raise self._entity_not_found(kind, key)
            if len(codes) > 2 and codes[2] == _CONDITION_FAILED:
                raise LabelNotFound(f"label {label} not found")
            raise Conflict(f"could not label prompt {key}: a concurrent write interfered; retry")
        return items.entity_from_item(self._live_head(kind, entity_id, key))

    @translated("delete")
    def delete(self, kind: Kind, key: str) -> None:
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        actor = actor_or_system()
        for _ in range(20):
            head = self._get(items.key(pk, items.HEAD_SK))
            if head is None:
                raise self._entity_not_found(kind, key)
            if items.is_deleted(head):
                self._hide_versions(pk)  # finishes an interrupted delete
                raise self._entity_not_found(kind, key)
            pointers = self._pointer_keys(pk)
            spare = _MAX_TRANSACT_ITEMS - 1
            if len(pointers) > spare:
                self._delete_keys(pointers[spare:])  # label pointers of an entity being deleted
                pointers = pointers[:spare]
            transaction = [
                self._update(
                    items.key(pk, items.HEAD_SK),
                    "SET deleted = :true, updated_at = :now, revision = revision + :one, actor = :actor"
                    " REMOVE entity_type",
                    "revision = :revision AND deleted = :false",
                    values={
                        ":true": _TRUE,
                        ":false": _FALSE,
                        ":now": s(self._now()),
                        ":one": _ONE,
                        ":revision": n(items.revision_of(head)),
                        ":actor": s(actor),
                    },
                ),
                *(self._delete(pointer) for pointer in pointers),
            ]
            if not self._transact_or_reasons(transaction):
                self._hide_versions(pk)
                return
        raise Conflict(f"too many concurrent writes to {kind.value} {key}; it was not deleted, retry")

    # --- LabelStore -----------------------------------------------------------------------------

    @translated("create_label")
    def create_label(self, label: Label) -> Label:
        self._check_new_label_name(label.name)
        stored = Label(
            id=label.id,
            name=label.name,
            created_at=label.created_at,
            description=label.description,
            color_code=label.color_code,
            workspace_id=label.workspace_id,
        )
        guard = {**items.label_name_guard_key(label.name), "label_id": s(label.id)}
        codes = self._transact_or_reasons(
            [self._put(items.label_item(stored), "attribute_not_exists(pk)"), self._put(guard, "attribute_not_exists(pk)")]
        )
        if codes:
            if codes[1] == _CONDITION_FAILED:
                raise Conflict(f"a label named {label.name} already exists")
            raise Conflict(f"label {label.id} already exists")
        return stored

    @translated("get_label")
    def get_label(self, id_or_name: str) -> Label:
        if id_or_name in BUILTIN_LABELS:
            return _builtin_label(id_or_name)
        item = self._get(items.label_key(id_or_name))
        if item is None:
            label_id = self._label_id_by_name(id_or_name)
            item = self._get(items.label_key(label_id)) if label_id else None
        if item is None:
            raise LabelNotFound(f"label {id_or_name} not found")
        return items.label_from_item(item)

    @translated("list_labels")
    def list_labels(self) -> list[Label]:
        stored = self._query(
            IndexName="by_type",
            KeyConditionExpression="entity_type = :type",
            ExpressionAttributeValues={":type": s(items.LABEL_TYPE)},
        )
        return [_builtin_label(name) for name in BUILTIN_LABELS] + [items.label_from_item(item) for item in stored]

    @translated("update_label")
    def update_label(self, label_id: str, *, name: str | None, description: str | None, color_code: str | None) -> Label:
        item = self._custom_label_item(label_id, "changed")
        self._finish_renames(item)
        sets, values = [], {}
        for attribute, value in (("description", description), ("color_code", color_code)):
            if value is not None:
                sets.append(f"{attribute} = :{attribute}")
                values[f":{attribute}"] = s(value)
        old_name = item["name"]["S"]
        if name is not None and name != old_name:
            self._rename_label(label_id, old_name, name, sets, values)
        elif sets:
            self._client.update_item(
                TableName=self._table,
                Key=items.label_key(label_id),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=values,
            )
        updated = self._custom_label_item(label_id, "changed")
        self._finish_renames(updated)
        return items.label_from_item(updated)

    @translated("delete_label")
    def delete_label(self, label_id: str) -> None:
        for _ in range(10):
            item = self._custom_label_item(label_id, "deleted")
            name = item["name"]["S"]
            names = {name} | items.string_set(item, "pending_renames")
            used_by = items.string_set(item, "used_by")
            in_use = {pk for pk in used_by if self._carries_label(pk, names)}
            if used_by - in_use:
                self._client.update_item(
                    TableName=self._table,
                    Key=items.label_key(label_id),
                    UpdateExpression="DELETE used_by :stale",
                    ExpressionAttributeValues={":stale": {"SS": sorted(used_by - in_use)}},
                )
            if in_use:
                raise Conflict(
                    f"label {name} is still assigned to {len(in_use)} prompt(s); it can be deleted once no prompt carries it"
                )
            codes = self._transact_or_reasons(
                [
                    self._delete(
                        items.label_key(label_id),
                        "attribute_not_exists(used_by) AND #name = :name",
                        names={"#name": "name"},
                        values={":name": s(name)},
                    ),
                    self._delete(items.label_name_guard_key(name), "label_id = :id", values={":id": s(label_id)}),
                ]
            )
            if not codes:
                return
        raise Conflict(f"label {label_id} changed while it was being deleted; retry")

    # --- ApiKeyStore ----------------------------------------------------------------------------

    @translated("put_key")
    def put_key(self, record: ApiKeyRecord) -> None:
        self._client.put_item(TableName=self._table, Item=items.api_key_item(record))

    @translated("get_key")
    def get_key(self, key_hash: str) -> ApiKeyRecord | None:
        item = self._get(items.api_key_key(key_hash))
        return items.api_key_from_item(item) if item else None

    @translated("list_keys")
    def list_keys(self) -> Iterable[ApiKeyRecord]:
        return [items.api_key_from_item(item) for item in self._api_key_items()]

    @translated("revoke_key")
    def revoke_key(self, key_id: str) -> None:
        matches = list(self._api_key_items(key_id))
        if not matches:
            raise NotFound(f"API key {key_id} not found")
        for item in matches:
            self._client.update_item(
                TableName=self._table,
                Key=items.key(item["pk"]["S"], item["sk"]["S"]),
                UpdateExpression="SET revoked = :true",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":true": _TRUE},
            )

    # --- key resolution -------------------------------------------------------------------------

    def _known_id(self, kind: Kind, key: str) -> str | None:
        if is_entity_id(key):
            return key.lower()
        with self._slug_lock:
            return self._slug_ids.get((kind, key))

    def _remember(self, kind: Kind, slug: str, entity_id: str) -> None:
        with self._slug_lock:
            self._slug_ids[(kind, slug)] = entity_id

    def _id_from_guard(self, kind: Kind, slug: str) -> str | None:
        guard = self._get(items.slug_guard_key(kind, slug))
        if guard is None:
            return None
        entity_id = guard["entity_id"]["S"]
        self._remember(kind, slug, entity_id)
        return entity_id

    def _entity_id(self, kind: Kind, key: str) -> str:
        """The id behind `key`, consistently (for writes); NotFound if no such slug was ever created."""
        entity_id = self._known_id(kind, key) or self._id_from_guard(kind, key)
        if entity_id is None:
            raise self._entity_not_found(kind, key)
        return entity_id

    def _read(self, kind: Kind, key: str, sk: str) -> tuple[str | None, Item | None]:
        """One read in the usual case: (entity id if known, the item or None)."""
        entity_id = self._known_id(kind, key)
        if entity_id is None:
            found = self._client.query(
                TableName=self._table,
                IndexName="by_alias",
                KeyConditionExpression="alias = :alias AND sk = :sk",
                ExpressionAttributeValues={":alias": s(items.alias(kind, key)), ":sk": s(sk)},
            )["Items"]
            if found:
                self._remember(kind, key, found[0]["entity_id"]["S"])
                return found[0]["entity_id"]["S"], found[0]
            entity_id = self._id_from_guard(kind, key)
            if entity_id is None:
                return None, None
        return entity_id, self._get(items.key(items.entity_pk(kind, entity_id), sk))

    def _live_head(self, kind: Kind, entity_id: str, key: str) -> Item:
        head = self._get(items.key(items.entity_pk(kind, entity_id), items.HEAD_SK))
        if head is None or items.is_deleted(head):
            raise self._entity_not_found(kind, key)
        return head

    def _missing(self, kind: Kind, key: str, entity_id: str | None, ref: Reference) -> NotFound:
        """Why `ref` found nothing: the entity, the version or the label is missing."""
        if entity_id is None:
            return self._entity_not_found(kind, key)
        try:
            slug = self._live_head(kind, entity_id, key)["slug"]["S"]
        except NotFound as exc:
            return exc
        if ref.selector == "number":
            return VersionNotFound(f"{kind.value} {slug} has no version {ref.number}")
        if ref.selector == "label":
            label = ref.label or ""
            if label not in BUILTIN_LABELS and self._label_id_by_name(label) is None:
                return LabelNotFound(f"label {label} not found")
            return VersionNotFound(f"{kind.value} {slug} has no version labelled {label}")
        return VersionNotFound(f"{kind.value} {slug} has no {ref.selector} version")

    @staticmethod
    def _entity_not_found(kind: Kind, key: str) -> NotFound:
        error = PromptNotFound if kind is Kind.PROMPT else PartialNotFound
        return error(f"{kind.value} {key} not found")

    # --- labels: internals ----------------------------------------------------------------------

    def _label_id_by_name(self, name: str) -> str | None:
        guard = self._get(items.label_name_guard_key(name))
        return guard["label_id"]["S"] if guard else None

    def _check_new_label_name(self, name: str) -> None:
        check_label_name(name)
        if name in BUILTIN_LABELS:
            raise Conflict(f"a label named {name} already exists (built in)")

    def _custom_label_item(self, label_id: str, verb: str) -> Item:
        if label_id in BUILTIN_LABELS:
            raise InvalidRequest(f"built-in label {label_id} cannot be {verb}")
        item = self._get(items.label_key(label_id))
        if item is None:
            raise LabelNotFound(f"label {label_id} not found")
        return item

    def _rename_label(self, label_id: str, old: str, new: str, sets: list[str], values: dict[str, Any]) -> None:
        self._check_new_label_name(new)
        codes = self._transact_or_reasons(
            [
                self._update(
                    items.label_key(label_id),
                    "SET " + ", ".join(["#name = :new", *sets]) + " ADD pending_renames :old_set",
                    "#name = :old",
                    names={"#name": "name"},
                    values={**values, ":new": s(new), ":old": s(old), ":old_set": {"SS": [old]}},
                ),
                self._delete(items.label_name_guard_key(old), "label_id = :id", values={":id": s(label_id)}),
                self._put({**items.label_name_guard_key(new), "label_id": s(label_id)}, "attribute_not_exists(pk)"),
            ]
        )
        if codes:
            if codes[2] == _CONDITION_FAILED:
                raise Conflict(f"a label named {new} already exists")
            raise Conflict(f"label {label_id} changed while it was being renamed; retry")

    def _finish_renames(self, label: Item) -> None:
        """Moves every prompt's pointer from each pending old name to the current name (idempotent)."""
        current = label["name"]["S"]
        for old in sorted(items.string_set(label, "pending_renames")):
            for pk in sorted(items.string_set(label, "used_by")):
                self._move_label_pointer(pk, old, current)
            self._client.update_item(
                TableName=self._table,
                Key=items.key(label["pk"]["S"], label["sk"]["S"]),
                UpdateExpression="DELETE pending_renames :old",
                ExpressionAttributeValues={":old": {"SS": [old]}},
            )

    def _move_label_pointer(self, pk: str, old: str, new: str) -> None:
        actor = actor_or_system()
        for _ in range(20):
            head = self._get(items.key(pk, items.HEAD_SK))
            if head is None or items.is_deleted(head):
                return
            labels = head.get("labels", {}).get("M", {})
            if old not in labels:
                return
            keep_newer = new in labels  # labelled under the new name since the rename: that wins
            values = {":one": _ONE, ":revision": n(items.revision_of(head)), ":actor": s(actor)}
            if not keep_newer:
                values[":version"] = labels[old]
            transaction = [
                self._update(
                    items.key(pk, items.HEAD_SK),
                    ("SET " if keep_newer else "SET labels.#new = :version, ")
                    + "revision = revision + :one, actor = :actor REMOVE labels.#old",
                    "revision = :revision",
                    names={"#old": old} if keep_newer else {"#old": old, "#new": new},
                    values=values,
                ),
                self._delete(items.key(pk, items.label_pointer_sk(old))),
            ]
            old_pointer = self._get(items.key(pk, items.label_pointer_sk(old)))
            if not keep_newer and old_pointer is not None:
                transaction.append(self._put(items.pointer_copy(old_pointer, items.label_pointer_sk(new))))
            if not self._transact_or_reasons(transaction):
                return
        raise Conflict(f"too many concurrent writes while moving label {old} to {new}; retry")

    def _carries_label(self, pk: str, names: set[str]) -> bool:
        head = self._get(items.key(pk, items.HEAD_SK))
        if head is None or items.is_deleted(head):
            return False
        return bool(names & set(head.get("labels", {}).get("M", {})))

    # --- low level ------------------------------------------------------------------------------

    def _get(self, key: Item) -> Item | None:
        return self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")

    def _query(self, **kwargs: Any) -> Iterator[Item]:
        request = {"TableName": self._table, **kwargs}
        while True:
            page = self._client.query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _api_key_items(self, key_id: str | None = None) -> Iterator[Item]:
        kwargs: dict[str, Any] = {
            "IndexName": "by_type",
            "KeyConditionExpression": "entity_type = :type",
            "ExpressionAttributeValues": {":type": s(items.API_KEY_TYPE)},
        }
        if key_id is not None:
            kwargs["FilterExpression"] = "key_id = :key_id"
            kwargs["ExpressionAttributeValues"][":key_id"] = s(key_id)
        return self._query(**kwargs)

    def _pointer_keys(self, pk: str) -> list[Item]:
        """Every PTR# key of an entity; published and latest first."""
        found = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(pk), ":prefix": s(items.POINTER_PREFIX)},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        return sorted(found, key=lambda item: item["sk"]["S"].startswith(items.LABEL_POINTER_PREFIX))

    def _hide_versions(self, pk: str) -> None:
        """Marks an entity's version items deleted; content stays. Idempotent, paginated."""
        found = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(pk), ":prefix": s(items.VERSION_PREFIX)},
            ProjectionExpression="pk, sk, deleted",
            ConsistentRead=True,
        )
        for item in found:
            if not items.is_deleted(item):
                self._client.update_item(
                    TableName=self._table,
                    Key=items.key(pk, item["sk"]["S"]),
                    UpdateExpression="SET deleted = :true",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":true": _TRUE},
                )

    def _delete_keys(self, keys: list[Item]) -> None:
        # One by one: these are a prompt's few pointer items, and the IAM policy grants no BatchWriteItem.
        for key in keys:
            self._client.delete_item(TableName=self._table, Key=key)

    def _transact_or_reasons(self, transaction: list[dict[str, Any]]) -> list[str]:
        """Runs a transaction; [] on success, else the per-item reason codes of a cancellation."""
        try:
            self._client.transact_write_items(TransactItems=transaction)
            return []
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException" or not cancellation_codes(exc):
                raise translate(exc) from exc
            codes = cancellation_codes(exc)
            if not _RETRYABLE_REASONS & set(codes):
                raise translate(exc) from exc
            return codes

    def _put(self, item: Item, condition: str | None = None) -> dict[str, Any]:
        return {"Put": self._operation({"Item": item}, condition, None, None)}

    def _update(
        self,
        key: Item,
        expression: str,
        condition: str | None = None,
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {"Update": self._operation({"Key": key, "UpdateExpression": expression}, condition, names, values)}

    def _delete(
        self,
        key: Item,
        condition: str | None = None,
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {"Delete": self._operation({"Key": key}, condition, names, values)}

    def _operation(
        self, body: dict[str, Any], condition: str | None, names: dict[str, str] | None, values: dict[str, Any] | None
    ) -> dict[str, Any]:
        operation = {"TableName": self._table, **body}
        if condition:
            operation["ConditionExpression"] = condition
        if names:
            operation["ExpressionAttributeNames"] = names
        if values:
            operation["ExpressionAttributeValues"] = values
        return operation

    @staticmethod
    def _version_index(version: TemplateVersion) -> Item:
        return {
            **items.key(items.entity_pk(version.kind, version.entity_id), items.version_id_sk(version.version_id)),
            "version": n(version.version),
        }

    @staticmethod
    def _sized(item: Item) -> Item:
        size = item_size(item) + _POINTER_HEADROOM
        if size > MAX_ITEM_BYTES:
            raise PayloadTooLarge(f"{ITEM_TOO_LARGE_MESSAGE} (about {size // 1024} KB)")
        return item


def _builtin_label(name: str) -> Label:
    return Label(id=name, name=name, created_at=_BUILTIN_CREATED_AT, description=f"Built-in {name} label", builtin=True)
