"""DynamoTemplateStore: core.ports.TemplateStore (prompts and partials, versioned) on the one table.

Every HEAD write records who made it (`actor`, from core.actor; `system` when no caller is known, e.g.
the CLI), and every new V# item records who wrote it; change events read them from the table's stream.

Keys: ids are UUIDs; anything else is a slug or, for a prompt, an external id. A slug names one live entity:
its guard item (`slug#<kind>#<slug>`/GUARD) is deleted with the entity, so a deleted entity's slug can be taken
again (the deleted entity and its versions stay, under its id). A prompt's external ids are claims under the
same guard keys (`external_id` set), written in the transaction that writes the HEAD's `external_ids` and
deleted with the prompt or when an update drops them; so a key is one live prompt's slug or external id, never
both. An external id is not in the `by_alias` GSI: it resolves through its claim (a consistent GetItem) and then
the item, and is never remembered (it may move to another live prompt); once this process has seen a key
resolve as an external id, it skips the GSI for it. A slug resolves through the
`by_alias` GSI in one Query (deleted entities' items are skipped); the answer's id is remembered so
later reads are consistent GetItems by id. A GSI miss (eventual consistency right after create), or
an answer naming several entities, falls back to the guard. A remembered id is checked when a read
through it finds nothing or a deleted item (another process may have deleted the entity and reused
its slug): the guard then says which entity the slug names now. Writes and admin reads by slug
always read the guard (consistent).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError

from core.actor import actor_or_system
from core.errors import (
    Conflict,
    InvalidRequest,
    LabelNotFound,
    NotFound,
    PayloadTooLarge,
    VersionNotFound,
    entity_not_found,
    external_id_taken,
    reference_not_found,
)
from core.models import BUILTIN_LABELS, Entity, Kind, TemplateVersion, VersionDraft
from core.references import Reference, check_new_keys, check_stored_external_ids, is_entity_id
from infra import dynamo_items as items
from infra.attribute_codec import item_size, to_attr
from infra.aws_errors import ITEM_TOO_LARGE_MESSAGE, error_code, translated
from infra.call_counter import CallCounter
from infra.dynamo_items import Item, n, s
from infra.dynamodb_labels import label_id_by_name
from infra.dynamodb_table import (
    CONDITION_FAILED,
    FALSE,
    ONE,
    RETRYABLE_REASONS,
    TRUE,
    DynamoTable,
    utc_now,
)

MAX_ITEM_BYTES = 400_000  # under DynamoDB's 400 KB (409,600 bytes) with room for its own accounting
_POINTER_HEADROOM = len(items.label_pointer_sk("x" * 64)) + 64  # a pointer copy has a longer sort key
_MAX_TRANSACT_ITEMS = 100
_ENTITY_FIELDS = frozenset({"name", "collection_id", "workspace_id", "metadata", "external_ids"})
_CREATE_ITEMS = 6  # a create's transaction before its external-id claims
_MAX_EXTERNAL_KEYS = 10_000  # keys remembered as external ids (to skip the GSI), then forgotten all at once


class DynamoTemplateStore:
    def __init__(
        self,
        table: DynamoTable,
        *,
        now: Callable[[], str] = utc_now,
        append_attempts: int = 200,
        append_deadline: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self._now = now
        self._append_attempts = append_attempts
        self._append_deadline = append_deadline
        self._sleep = sleep
        self._slug_ids: dict[tuple[Kind, str], str] = {}
        self._external_keys: set[tuple[Kind, str]] = set()  # keys seen naming a prompt as an external id
        self._slug_lock = threading.Lock()

    @property
    def calls(self) -> CallCounter:
        """The DynamoDB calls made on this store's client (the read budget's meter)."""
        return self.table.calls

    # --- reads ----------------------------------------------------------------------------------

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
            raise entity_not_found(kind.value, key)
        return items.entity_from_item(item)

    @translated("list_entities")
    def list_entities(self, kind: Kind, *, collection_id: str | None = None) -> list[Entity]:
        conditions, values = ["deleted = :false"], {":type": s(kind.value), ":false": FALSE}
        if collection_id is not None:
            conditions.append("collection_id = :collection")
            values[":collection"] = s(collection_id)
        found = self.table.query(
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
        index = self.table.get(items.key(pk, items.version_id_sk(version_id)))
        version = self.table.get(items.key(pk, items.version_sk(int(index["version"]["N"])))) if index else None
        if version is not None and not items.is_deleted(version):
            return items.version_from_item(version)
        head = self._live_head(kind, entity_id, key)
        raise VersionNotFound(f"{kind.value} {head['slug']['S']} has no version with id {version_id}")

    @translated("list_versions")
    def list_versions(self, kind: Kind, key: str) -> list[TemplateVersion]:
        entity_id = self._entity_id(kind, key)
        self._live_head(kind, entity_id, key)
        found = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(items.entity_pk(kind, entity_id)), ":prefix": s(items.VERSION_PREFIX)},
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        return [items.version_from_item(item) for item in found]

    # --- writes ---------------------------------------------------------------------------------

    @translated("create")
    def create(self, kind: Kind, entity: Entity, first: VersionDraft) -> TemplateVersion:
        if entity.kind is not kind:
            raise InvalidRequest(f"cannot store a {entity.kind.value} as a {kind.value}")
        check_new_keys(kind.value, entity.id, entity.slug)
        external_ids = check_stored_external_ids(kind.value, entity.slug, entity.external_ids)
        entity = dataclasses.replace(entity, external_ids=external_ids)
        actor = actor_or_system()
        version = TemplateVersion.from_draft(kind, entity.id, entity.slug, 1, first)
        version_item = _sized(items.version_item(version, items.version_sk(1), actor=actor))
        guard = {**items.slug_guard_key(kind, entity.slug), "entity_id": s(entity.id)}
        put = self.table.put
        transaction = [
            put(items.head_item(entity, actor=actor), "attribute_not_exists(pk)"),
            put(guard, "attribute_not_exists(pk)"),
            put(version_item, "attribute_not_exists(pk)"),
            put(items.pointer_copy(version_item, items.LATEST_SK)),
            put(items.pointer_copy(version_item, items.PUBLISHED_SK)),
            put(_version_index(version), "attribute_not_exists(pk)"),
            *self._claims(kind, entity.id, entity.slug, external_ids),
        ]
        for _ in range(3):
            codes = self.table.transact_or_reasons(transaction)
            if not codes:
                self._remember(kind, entity.slug, entity.id)
                return version
            if codes[0] == CONDITION_FAILED:
                raise Conflict(f"{kind.value} {entity.id} already exists")
            if codes[1] == CONDITION_FAILED:
                if self._live_guard(kind, entity.slug) is not None:
                    raise Conflict(f"slug {entity.slug} is already in use")
                continue
            taken = [key for key, code in zip(external_ids, codes[_CREATE_ITEMS:], strict=True) if code == CONDITION_FAILED]
            if not taken:
                break
            self._check_claimable(kind, entity.id, taken)
        raise Conflict(f"could not create {kind.value} {entity.slug}: a concurrent write interfered; retry")

    @translated("append_version")
    def append_version(self, kind: Kind, key: str, build: Callable[[TemplateVersion], VersionDraft]) -> TemplateVersion:
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        deadline = time.monotonic() + self._append_deadline
        actor = actor_or_system()
        for attempt in range(self._append_attempts):
            latest_item = self.table.get(items.key(pk, items.LATEST_SK))
            if latest_item is None:
                raise self._missing(kind, key, entity_id, Reference(key, "latest"))
            latest = items.version_from_item(latest_item)
            version = TemplateVersion.from_draft(kind, entity_id, latest.slug, latest.version + 1, build(latest))
            version_item = _sized(items.version_item(version, items.version_sk(version.version), actor=actor))
            transaction = [
                self.table.update(
                    items.key(pk, items.HEAD_SK),
                    "SET latest_version = :next, updated_at = :now, revision = revision + :one, actor = :actor",
                    "latest_version = :previous AND deleted = :false",
                    values={
                        ":next": n(version.version),
                        ":previous": n(latest.version),
                        ":now": s(version.created_at),
                        ":one": ONE,
                        ":false": FALSE,
                        ":actor": s(actor),
                    },
                ),
                self.table.put(version_item, "attribute_not_exists(pk)"),
                self.table.put(items.pointer_copy(version_item, items.LATEST_SK)),
                self.table.put(_version_index(version), "attribute_not_exists(pk)"),
            ]
            codes = self.table.transact_or_reasons(transaction)
            if not codes:
                return version
            if codes[0] != CONDITION_FAILED and codes[3] == CONDITION_FAILED:
                raise Conflict(f"{kind.value} {latest.slug} already has a version with id {version.version_id}")
            if not RETRYABLE_REASONS & set(codes) or time.monotonic() > deadline:
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
            ":now": s(self._now()), ":one": ONE, ":false": FALSE, ":actor": s(actor_or_system())}
        for field, value in changes.items():
            if field == "external_ids":
                continue  # with their claims, below
            names[f"#{field}"] = field
            if value is None and field == "workspace_id":
                removes.append(f"#{field}")
            elif field in ("name", "collection_id") and not isinstance(value, str):
                raise InvalidRequest(f"{field} must be a string")
            else:
                sets.append(f"#{field} = :{field}")
                values[f":{field}"] = to_attr(dict(value) if field == "metadata" else value, name=field)
        if "external_ids" in changes:
            return self._update_with_claims(kind, key, entity_id, changes["external_ids"], sets, removes, names, values)
        update = self.table.update(
            items.key(items.entity_pk(kind, entity_id), items.HEAD_SK),
            "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
            "attribute_exists(pk) AND deleted = :false",
            names=names,
            values=values,
        )
        try:
            updated = self.table.run(update, ReturnValues="ALL_NEW")
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise entity_not_found(kind.value, key) from None
            raise
        return items.entity_from_item(updated["Attributes"])

    def _update_with_claims(self, kind: Kind, key: str, entity_id: str, wanted: Any, sets: list[str],
                            removes: list[str], names: dict[str, str], values: dict[str, Any]) -> Entity:
        """update_entity when `external_ids` change: the HEAD update (on the revision read), the claims of the ids
        added and the deletes of those dropped, in one transaction; retried when another write came between."""
        pk = items.entity_pk(kind, entity_id)
        for _ in range(10):
            head = self._live_head(kind, entity_id, key)
            slug = head["slug"]["S"]
            external_ids = check_stored_external_ids(kind.value, slug, wanted)
            held = items.entity_from_item(head).external_ids
            added = [external_id for external_id in external_ids if external_id not in held]
            dropped = [external_id for external_id in held if external_id not in external_ids]
            head_sets, head_removes = list(sets), [*removes, "external_ids"]
            head_values = {**values, ":revision": n(items.revision_of(head))}
            if external_ids:
                head_sets.append("external_ids = :external_ids")
                head_removes.pop()
                head_values[":external_ids"] = to_attr(list(external_ids), name="external_ids")
            update = self.table.update(
                items.key(pk, items.HEAD_SK),
                "SET " + ", ".join(head_sets) + (" REMOVE " + ", ".join(head_removes) if head_removes else ""),
                "revision = :revision AND deleted = :false",
                names=names,
                values=head_values,
            )
            transaction = [update, *self._claims(kind, entity_id, slug, added),
                           *self._releases(kind, entity_id, dropped)]
            codes = self.table.transact_or_reasons(transaction)
            if not codes:
                return items.entity_from_item(self._live_head(kind, entity_id, key))
            claimed = codes[1 : 1 + len(added)]
            self._check_claimable(kind, entity_id, [external_id for external_id, code in zip(added, claimed, strict=True)
                                                    if code == CONDITION_FAILED])
        raise Conflict(f"too many concurrent writes to {kind.value} {key}; it was not updated, retry")

    def _claims(self, kind: Kind, entity_id: str, slug: str, external_ids: list[str] | tuple[str, ...]
                ) -> list[dict[str, Any]]:
        """The Puts that claim `external_ids` for the entity; each fails if any entity holds the key now."""
        return [self.table.put(items.external_id_claim(kind, external_id, entity_id, slug), "attribute_not_exists(pk)")
                for external_id in external_ids]

    def _releases(self, kind: Kind, entity_id: str, external_ids: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
        """The Deletes of the entity's claims of `external_ids` (a claim that went already is no failure)."""
        return [self.table.delete(items.slug_guard_key(kind, external_id), "attribute_not_exists(pk) OR entity_id = :id",
                                  values={":id": s(entity_id)})
                for external_id in external_ids]

    def _check_claimable(self, kind: Kind, entity_id: str, keys: list[str]) -> None:
        """After claims of `keys` failed: ExternalIdTaken naming the live entity that holds one of them; guards of
        deleted entities are dropped (the caller then retries)."""
        for key in keys:
            guard = self._live_guard(kind, key)
            if guard is not None and guard["entity_id"]["S"] != entity_id:
                raise external_id_taken(key, items.guard_holder_slug(guard, key))

    @translated("publish")
    def publish(self, kind: Kind, key: str, version: int) -> Entity:
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        version_item = self._live_version_item(kind, key, entity_id, version)
        transaction = [
            self._change_head(pk, "published_version = :version", values={":version": n(version)}),
            self.table.put(items.pointer_copy(version_item, items.PUBLISHED_SK)),
        ]
        codes = self.table.transact_or_reasons(transaction)
        if codes:
            if codes[0] == CONDITION_FAILED:
                raise entity_not_found(kind.value, key)
            raise Conflict(f"could not publish {kind.value} {key}: a concurrent write interfered; retry")
        return items.entity_from_item(self._live_head(kind, entity_id, key))

    @translated("set_label")
    def set_label(self, key: str, version: int, label: str) -> Entity:
        kind = Kind.PROMPT
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        label_id = None if label in BUILTIN_LABELS else label_id_by_name(self.table, label)
        if label not in BUILTIN_LABELS and label_id is None:
            raise LabelNotFound(f"label {label} not found")
        version_item = self._live_version_item(kind, key, entity_id, version)
        transaction = [
            self._change_head(pk, "labels.#label = :version", names={"#label": label}, values={":version": n(version)}),
            self.table.put(items.pointer_copy(version_item, items.label_pointer_sk(label))),
        ]
        if label_id is not None:
            transaction.append(
                self.table.update(
                    items.label_key(label_id),
                    "ADD used_by :prompt",
                    "attribute_exists(pk) AND #name = :label",
                    names={"#name": "name"},
                    values={":prompt": {"SS": [pk]}, ":label": s(label)},
                )
            )
        codes = self.table.transact_or_reasons(transaction)
        if codes:
            if codes[0] == CONDITION_FAILED:
                raise entity_not_found(kind.value, key)
            if len(codes) > 2 and codes[2] == CONDITION_FAILED:
                raise LabelNotFound(f"label {label} not found")
            raise Conflict(f"could not label prompt {key}: a concurrent write interfered; retry")
        return items.entity_from_item(self._live_head(kind, entity_id, key))

    @translated("remove_label")
    def remove_label(self, key: str, label: str) -> Entity:
        kind = Kind.PROMPT
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        for _ in range(10):
            head = self._live_head(kind, entity_id, key)
            if label not in head.get("labels", {}).get("M", {}):
                return items.entity_from_item(head)  # not carried: nothing to remove
            label_id = None if label in BUILTIN_LABELS else label_id_by_name(self.table, label)
            transaction = [
                self.table.update(
                    items.key(pk, items.HEAD_SK),
                    "SET updated_at = :now, revision = revision + :one, actor = :actor REMOVE labels.#label",
                    "revision = :revision AND deleted = :false",
                    names={"#label": label},
                    values={":now": s(self._now()), ":one": ONE, ":false": FALSE, ":actor": s(actor_or_system()),
                            ":revision": n(items.revision_of(head))},
                ),
                self.table.delete(items.key(pk, items.label_pointer_sk(label))),
            ]
            if label_id is not None:  # the label item lists the prompts carrying it
                transaction.append(self.table.update(items.label_key(label_id), "DELETE used_by :prompt",
                                                     "attribute_exists(pk)", values={":prompt": {"SS": [pk]}}))
            if not self.table.transact_or_reasons(transaction):
                return items.entity_from_item(self._live_head(kind, entity_id, key))
        raise Conflict(f"too many concurrent writes to prompt {key}; the label was not removed, retry")

    @translated("delete")
    def delete(self, kind: Kind, key: str) -> None:
        entity_id = self._entity_id(kind, key)
        pk = items.entity_pk(kind, entity_id)
        actor = actor_or_system()
        for _ in range(20):
            head = self.table.get(items.key(pk, items.HEAD_SK))
            if head is None:
                raise entity_not_found(kind.value, key)
            if items.is_deleted(head):
                self._hide_versions(pk)  # finishes an interrupted delete
                raise entity_not_found(kind.value, key)
            pointers = self._pointer_keys(pk)
            external_ids = items.entity_from_item(head).external_ids
            spare = _MAX_TRANSACT_ITEMS - 2 - len(external_ids)  # the HEAD update, the slug guard's and claims' deletes
            if len(pointers) > spare:
                # Label pointers of an entity being deleted, one by one: the IAM policy grants no BatchWriteItem.
                for pointer in pointers[spare:]:
                    self.table.run(self.table.delete(pointer))
                pointers = pointers[:spare]
            transaction = [
                self.table.update(
                    items.key(pk, items.HEAD_SK),
                    "SET deleted = :true, updated_at = :now, revision = revision + :one, actor = :actor"
                    " REMOVE entity_type, external_ids",
                    "revision = :revision AND deleted = :false",
                    values={
                        ":true": TRUE,
                        ":false": FALSE,
                        ":now": s(self._now()),
                        ":one": ONE,
                        ":revision": n(items.revision_of(head)),
                        ":actor": s(actor),
                    },
                ),
                self.table.delete(items.slug_guard_key(kind, head["slug"]["S"]),
                                  "attribute_not_exists(pk) OR entity_id = :id", values={":id": s(entity_id)}),
                *self._releases(kind, entity_id, external_ids),
                *(self.table.delete(pointer) for pointer in pointers),
            ]
            if not self.table.transact_or_reasons(transaction):
                self._forget(kind, head["slug"]["S"], entity_id)
                self._hide_versions(pk)
                return
        raise Conflict(f"too many concurrent writes to {kind.value} {key}; it was not deleted, retry")

    def _change_head(self, pk: str, sets: str, *, values: dict[str, Any], names: dict[str, str] | None = None
                     ) -> dict[str, Any]:
        """The Update of a live entity's HEAD that SETs `sets` and records when, by whom, and a new revision."""
        return self.table.update(
            items.key(pk, items.HEAD_SK),
            f"SET {sets}, updated_at = :now, revision = revision + :one, actor = :actor",
            "attribute_exists(pk) AND deleted = :false",
            names=names,
            values={**values, ":now": s(self._now()), ":one": ONE, ":false": FALSE, ":actor": s(actor_or_system())},
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
            self._external_keys.discard((kind, slug))

    def _note_external(self, kind: Kind, key: str) -> None:
        """`key` named a prompt as an external id: later reads skip the GSI, which never holds one."""
        with self._slug_lock:
            if len(self._external_keys) >= _MAX_EXTERNAL_KEYS:
                self._external_keys.clear()
            self._external_keys.add((kind, key))
            self._slug_ids.pop((kind, key), None)

    def _seen_external(self, kind: Kind, key: str) -> bool:
        with self._slug_lock:
            return (kind, key) in self._external_keys

    def _forget(self, kind: Kind, slug: str, entity_id: str | None = None) -> None:
        """Drops the remembered id of `slug` (only if it is `entity_id`, when given)."""
        with self._slug_lock:
            if entity_id is None or self._slug_ids.get((kind, slug)) == entity_id:
                self._slug_ids.pop((kind, slug), None)

    def _id_from_guard(self, kind: Kind, key: str) -> str | None:
        """The id of the entity `key` names now, as its slug or an external id (a consistent read of its guard),
        or None if it names none. A slug's entity is remembered; an external id's is not."""
        guard = self.table.get(items.slug_guard_key(kind, key))
        if guard is None:
            self._forget(kind, key)
            return None
        entity_id = str(guard["entity_id"]["S"])
        if items.is_external_claim(guard):
            self._note_external(kind, key)
        else:
            self._remember(kind, key, entity_id)
        return entity_id

    def _live_guard(self, kind: Kind, key: str) -> Item | None:
        """`key`'s guard if a live entity holds it; a guard of a deleted entity (a delete made before guards
        went with their entity) is deleted and None returned, as for no guard."""
        guard = self.table.get(items.slug_guard_key(kind, key))
        if guard is None:
            return None
        holder = guard["entity_id"]["S"]
        head = self.table.get(items.key(items.entity_pk(kind, holder), items.HEAD_SK))
        if head is not None and not items.is_deleted(head):
            return guard
        drop = self.table.delete(items.slug_guard_key(kind, key), "entity_id = :id", values={":id": s(holder)})
        try:
            self.table.run(drop)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        self._forget(kind, key, holder)
        return None

    def _entity_id(self, kind: Kind, key: str) -> str:
        """The id behind `key`, consistently (for writes): a slug's guard is read every time, since another
        process may have deleted its entity and given the slug to a new one. NotFound if it names none."""
        entity_id = key.lower() if is_entity_id(key) else self._id_from_guard(kind, key)
        if entity_id is None:
            raise entity_not_found(kind.value, key)
        return entity_id

    def _read(self, kind: Kind, key: str, sk: str) -> tuple[str | None, Item | None]:
        """One read in the usual case: (entity id if known, the item or None)."""
        entity_id = self._known_id(kind, key)
        if entity_id is None:
            if not self._seen_external(kind, key):
                found = self.table.client.query(
                    TableName=self.table.name,
                    IndexName="by_alias",
                    KeyConditionExpression="alias = :alias AND sk = :sk",
                    ExpressionAttributeValues={":alias": s(items.alias(kind, key)), ":sk": s(sk)},
                )["Items"]
                live = [item for item in found if not items.is_deleted(item)]  # a deleted entity may share the alias
                if len({item["entity_id"]["S"] for item in live}) == 1:
                    self._remember(kind, key, live[0]["entity_id"]["S"])
                    return live[0]["entity_id"]["S"], live[0]
            entity_id = self._id_from_guard(kind, key)  # a GSI miss: not there yet, or an external id
            if entity_id is None:
                return None, None
            return entity_id, self.table.get(items.key(items.entity_pk(kind, entity_id), sk))
        item = self.table.get(items.key(items.entity_pk(kind, entity_id), sk))
        if is_entity_id(key) or (item is not None and not items.is_deleted(item)):
            return entity_id, item
        # Remembered, but nothing live there: the entity may have been deleted and its slug reused elsewhere.
        current = self._id_from_guard(kind, key)
        if current is None or current == entity_id:
            return current, item if current else None
        return current, self.table.get(items.key(items.entity_pk(kind, current), sk))

    def _live_head(self, kind: Kind, entity_id: str, key: str) -> Item:
        head = self.table.get(items.key(items.entity_pk(kind, entity_id), items.HEAD_SK))
        if head is None or items.is_deleted(head):
            raise entity_not_found(kind.value, key)
        return head

    def _live_version_item(self, kind: Kind, key: str, entity_id: str, version: int) -> Item:
        """Version `version`'s item, or the NotFound that `key@version` would raise."""
        version_item = self.table.get(items.key(items.entity_pk(kind, entity_id), items.version_sk(version)))
        if version_item is None or items.is_deleted(version_item):
            raise self._missing(kind, key, entity_id, Reference(key, "number", number=version))
        return version_item

    def _missing(self, kind: Kind, key: str, entity_id: str | None, ref: Reference) -> NotFound:
        """Why `ref` found nothing: the entity, the version or the label is missing."""
        if entity_id is None:
            return entity_not_found(kind.value, key)
        try:
            slug = self._live_head(kind, entity_id, key)["slug"]["S"]
        except NotFound as exc:
            return exc
        label_exists = ref.selector != "label" or (
            ref.label in BUILTIN_LABELS or label_id_by_name(self.table, ref.label or "") is not None)
        return reference_not_found(kind.value, slug, ref.selector, number=ref.number, label=ref.label,
                                   label_exists=label_exists)

    # --- an entity's items ----------------------------------------------------------------------

    def _pointer_keys(self, pk: str) -> list[Item]:
        """Every PTR# key of an entity; published and latest first."""
        found = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(pk), ":prefix": s(items.POINTER_PREFIX)},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        return sorted(found, key=lambda item: item["sk"]["S"].startswith(items.LABEL_POINTER_PREFIX))

    def _hide_versions(self, pk: str) -> None:
        """Marks an entity's version items deleted; content stays. Idempotent, paginated."""
        found = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(pk), ":prefix": s(items.VERSION_PREFIX)},
            ProjectionExpression="pk, sk, deleted",
            ConsistentRead=True,
        )
        for item in found:
            if not items.is_deleted(item):
                hide = self.table.update(items.key(pk, item["sk"]["S"]), "SET deleted = :true", "attribute_exists(pk)",
                                         values={":true": TRUE})
                self.table.run(hide)


def _version_index(version: TemplateVersion) -> Item:
    return {
        **items.key(items.entity_pk(version.kind, version.entity_id), items.version_id_sk(version.version_id)),
        "version": n(version.version),
    }


def _sized(item: Item) -> Item:
    size = item_size(item) + _POINTER_HEADROOM
    if size > MAX_ITEM_BYTES:
        raise PayloadTooLarge(f"{ITEM_TOO_LARGE_MESSAGE} (about {size // 1024} KB)")
    return item
