"""An in-memory `TemplateStore`, `LabelStore`, `CollectionStore` and `ApiKeyStore` for unit tests.

A test double, not a second product: it keeps the ports' contracts (core/ports.py) and nothing more.
- Entities are looked up by id, slug or (a prompt's) external id; deleted ones are NotFound everywhere, but
  their versions stay in `self.versions` so a test can see that delete hides rather than erases.
- An external id names one live prompt, and is no live prompt's slug (ExternalIdTaken, or Conflict for the
  slug of a new prompt); deleting the prompt, or an update that drops the id, frees it.
- `create` stores version 1 and publishes it; `append_version` assigns latest+1 under a lock.
- An id is a lower-case UUID and a slug never looks like one (else InvalidRequest), else Conflict: ids
  are unique per kind, deleted entities included; slugs among live entities only (a deleted entity's
  slug may be taken again, and then names the new one).
- The store keeps its own copies: what a caller writes or reads can be changed without changing it.
- Built-in labels `production`, `staging`, `development` always exist, with id == name; they cannot
  be renamed or deleted (InvalidRequest). Renaming a label moves every prompt's pointer to the new
  name; a label a live prompt carries cannot be deleted (Conflict).
- Collection `default` always exists (id == slug == `default`) and cannot be renamed or deleted
  (Conflict); other collections are found by id or slug, and slugs are unique (Conflict).
- A label's `updated_at` is its creation time until an update sets it from `now`.
- `resolve_calls` counts `resolve` calls.

tests/contract/ runs the same contract tests against this store and the real backends.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import threading
from typing import Any, Callable, Iterable, Mapping

from core.collections import collection_not_found, refuse_default
from core.errors import (
    Conflict,
    InvalidRequest,
    LabelNotFound,
    NotFound,
    PartialNotFound,
    PromptNotFound,
    VersionNotFound,
    external_id_taken,
)
from core.models import (
    BUILTIN_LABELS,
    ApiKeyRecord,
    Collection,
    Entity,
    Kind,
    Label,
    TemplateVersion,
    VersionDraft,
    builtin_label,
    builtin_label_name,
    default_collection,
    is_default_collection,
)
from core.references import Reference, check_label_name, check_stored_external_ids
from core.service import utc_now

_HEAD_FIELDS = frozenset({"name", "collection_id", "workspace_id", "metadata", "external_ids"})
_STRING_HEAD_FIELDS = frozenset({"name", "collection_id"})
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _missing(kind: Kind, key: str) -> NotFound:
    if kind is Kind.PROMPT:
        return PromptNotFound(f"No prompt {key!r}.")
    return PartialNotFound(f"No partial {key!r}.")


class InMemoryStore:
    def __init__(self, *, now: Callable[[], str] = utc_now) -> None:
        self._lock = threading.RLock()
        self._now = now
        self.collections: dict[str, Collection] = {}  # id -> collection (`default` is never stored)
        self.entities: dict[tuple[Kind, str], Entity] = {}  # (kind, id) -> head, deleted ones included
        self.versions: dict[tuple[Kind, str], dict[int, TemplateVersion]] = {}  # (kind, id) -> number -> version
        self.labels: dict[str, Label] = {
            label.id: label for label in map(builtin_label, BUILTIN_LABELS)
        }
        self.keys: dict[str, ApiKeyRecord] = {}  # key hash -> record
        self.resolve_calls = 0

    # --- helpers ---------------------------------------------------------------------------

    def _entity(self, kind: Kind, key: str) -> Entity:
        entity = self.entities.get((kind, key)) or self._holder(kind, key)
        if entity is None or entity.deleted:
            raise _missing(kind, key)
        return entity

    def _holder(self, kind: Kind, key: str) -> Entity | None:
        """The live entity whose slug, else whose external id, is `key`."""
        live = [e for (k, _), e in self.entities.items() if k is kind and not e.deleted]
        return next((e for e in live if e.slug == key), None) or next((e for e in live if key in e.external_ids), None)

    def _check_claims(self, entity: Entity, external_ids: tuple[str, ...]) -> None:
        """ExternalIdTaken if another live prompt holds one of `external_ids`, as an external id or a slug."""
        for external_id in external_ids:
            holder = self._holder(entity.kind, external_id)
            if holder is not None and holder.id != entity.id:
                raise external_id_taken(external_id, holder.slug)

    def _version(self, entity: Entity, number: int) -> TemplateVersion:
        version = self.versions[(entity.kind, entity.id)].get(number)
        if version is None:
            raise VersionNotFound(f"{entity.kind.value} {entity.slug} has no version {number}.")
        return version

    def _label_by_name(self, name: str) -> Label:
        label = next((label for label in self.labels.values() if label.name == name), None)
        if label is None:
            raise LabelNotFound(f"No label {name!r}.")
        return label

    def _save(self, entity: Entity) -> Entity:
        self.entities[(entity.kind, entity.id)] = copy.deepcopy(entity)
        return copy.deepcopy(entity)

    # --- TemplateStore ---------------------------------------------------------------------

    def resolve(self, kind: Kind, ref: Reference) -> TemplateVersion:
        with self._lock:
            self.resolve_calls += 1
            entity = self._entity(kind, ref.key)
            if ref.selector == "published":
                number = entity.published_version
            elif ref.selector == "latest":
                number = entity.latest_version
            elif ref.selector == "number":
                number = ref.number
            else:
                self._label_by_name(ref.label)
                number = entity.labels.get(ref.label)
                if number is None:
                    raise VersionNotFound(f"{kind.value} {entity.slug} has no version labelled {ref.label!r}.")
            if number is None:
                raise VersionNotFound(f"{kind.value} {entity.slug} has no published version.")
            return copy.deepcopy(self._version(entity, number))

    def get_entity(self, kind: Kind, key: str) -> Entity:
        with self._lock:
            return copy.deepcopy(self._entity(kind, key))

    def list_entities(self, kind: Kind, *, collection_id: str | None = None) -> list[Entity]:
        with self._lock:
            live = [
                e
                for (k, _), e in self.entities.items()
                if k is kind and not e.deleted and (collection_id is None or e.collection_id == collection_id)
            ]
            return copy.deepcopy(sorted(live, key=lambda e: (e.created_at, e.id)))

    def create(self, kind: Kind, entity: Entity, first: VersionDraft) -> TemplateVersion:
        if entity.kind is not kind:
            raise InvalidRequest(f"cannot store a {entity.kind.value} as a {kind.value}")
        if not _UUID.match(entity.id):
            raise InvalidRequest(f"{kind.value} id {entity.id!r} must be a lower-case UUID string")
        if _UUID.match(entity.slug.lower()):
            raise InvalidRequest(f"slug {entity.slug!r} must not look like an id")
        external_ids = check_stored_external_ids(kind.value, entity.slug, entity.external_ids)
        with self._lock:
            if any(k is kind and e.id == entity.id for (k, _), e in self.entities.items()) \
                    or self._holder(kind, entity.slug) is not None:
                raise Conflict(f"A {kind.value} with id {entity.id!r} or slug {entity.slug!r} already exists.")
            self._check_claims(entity, external_ids)
            self._save(dataclasses.replace(entity, latest_version=1, published_version=1, labels={}, deleted=False,
                                           external_ids=external_ids))
            version = TemplateVersion.from_draft(kind, entity.id, entity.slug, 1, first)
            self.versions[(kind, entity.id)] = {1: copy.deepcopy(version)}
            return version

    def append_version(self, kind: Kind, key: str, build: Callable[[TemplateVersion], VersionDraft]) -> TemplateVersion:
        with self._lock:
            entity = self._entity(kind, key)
            draft = build(copy.deepcopy(self._version(entity, entity.latest_version)))
            number = entity.latest_version + 1
            version = TemplateVersion.from_draft(kind, entity.id, entity.slug, number, draft)
            self.versions[(kind, entity.id)][number] = copy.deepcopy(version)
            self._save(dataclasses.replace(entity, latest_version=number, updated_at=draft.created_at))
            return version

    def update_entity(self, kind: Kind, key: str, changes: Mapping[str, Any]) -> Entity:
        unknown = set(changes) - _HEAD_FIELDS
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))} of a {kind.value}")
        for field in _STRING_HEAD_FIELDS & set(changes):
            if not isinstance(changes[field], str):
                raise InvalidRequest(f"{field} must be a string")
        with self._lock:
            entity = self._entity(kind, key)
            if "external_ids" in changes:
                changes = {**changes, "external_ids": check_stored_external_ids(kind.value, entity.slug,
                                                                                changes["external_ids"])}
                self._check_claims(entity, changes["external_ids"])
            return self._save(dataclasses.replace(entity, **changes))

    def get_version(self, kind: Kind, key: str, version: int) -> TemplateVersion:
        with self._lock:
            return copy.deepcopy(self._version(self._entity(kind, key), version))

    def get_version_by_id(self, kind: Kind, key: str, version_id: str) -> TemplateVersion:
        with self._lock:
            entity = self._entity(kind, key)
            for version in self.versions[(kind, entity.id)].values():
                if version.version_id == version_id:
                    return copy.deepcopy(version)
            raise VersionNotFound(f"{kind.value} {entity.slug} has no version {version_id!r}.")

    def list_versions(self, kind: Kind, key: str) -> list[TemplateVersion]:
        with self._lock:
            entity = self._entity(kind, key)
            versions = sorted(self.versions[(kind, entity.id)].values(), key=lambda v: v.version, reverse=True)
            return copy.deepcopy(versions)

    def publish(self, kind: Kind, key: str, version: int) -> Entity:
        with self._lock:
            entity = self._entity(kind, key)
            self._version(entity, version)
            return self._save(dataclasses.replace(entity, published_version=version))

    def set_label(self, key: str, version: int, label: str) -> Entity:
        with self._lock:
            entity = self._entity(Kind.PROMPT, key)
            self._label_by_name(label)
            self._version(entity, version)
            return self._save(dataclasses.replace(entity, labels={**entity.labels, label: version}))

    def remove_label(self, key: str, label: str) -> Entity:
        with self._lock:
            entity = self._entity(Kind.PROMPT, key)
            if label not in entity.labels:
                return copy.deepcopy(entity)
            labels = {name: number for name, number in entity.labels.items() if name != label}
            return self._save(dataclasses.replace(entity, labels=labels))

    def delete(self, kind: Kind, key: str) -> None:
        with self._lock:
            self._save(dataclasses.replace(self._entity(kind, key), deleted=True, external_ids=()))

    # --- LabelStore ------------------------------------------------------------------------

    def create_label(self, label: Label) -> Label:
        check_label_name(label.name)
        label = dataclasses.replace(label, builtin=False, updated_at=label.last_updated_at)
        with self._lock:
            if label.id in self.labels or any(other.name == label.name for other in self.labels.values()):
                raise Conflict(f"A label named {label.name!r} already exists.")
            self.labels[label.id] = label
            return label

    def get_label(self, id_or_name: str) -> Label:
        with self._lock:
            return self.labels.get(id_or_name) or self._label_by_name(id_or_name)

    def list_labels(self) -> list[Label]:
        with self._lock:
            labels = list(self.labels.values())  # built-ins first, in their order, then the others oldest first
            custom = sorted((label for label in labels if not label.builtin), key=lambda lbl: (lbl.created_at, lbl.id))
            return [label for label in labels if label.builtin] + custom

    def _builtin_or_stored(self, label_id: str) -> Label:
        """By id; a built-in one by its name too (the stores refuse changing it either way)."""
        builtin = builtin_label_name(label_id)
        label = builtin_label(builtin) if builtin is not None else self.labels.get(label_id)
        if label is None:
            raise LabelNotFound(f"No label {label_id!r}.")
        return label

    def update_label(self, label_id: str, *, name: str | None, description: str | None, color_code: str | None) -> Label:
        with self._lock:
            label = self._builtin_or_stored(label_id)
            if name is not None and name != label.name:
                if label.builtin:
                    raise InvalidRequest(f"The built-in label {label.name!r} cannot be renamed.")
                check_label_name(name)
                if any(other.name == name for other in self.labels.values()):
                    raise Conflict(f"A label named {name!r} already exists.")
                self._move_label_pointers(label.name, name)
            changes = {"name": name, "description": description, "color_code": color_code, "updated_at": self._now()}
            updated = dataclasses.replace(label, **{k: v for k, v in changes.items() if v is not None})
            self.labels[label_id] = updated
            return updated

    def _move_label_pointers(self, old: str, new: str) -> None:
        for entity in list(self.entities.values()):
            if old in entity.labels:
                labels = {new if name == old else name: number for name, number in entity.labels.items()}
                self._save(dataclasses.replace(entity, labels=labels))

    def delete_label(self, label_id: str) -> None:
        with self._lock:
            label = self._builtin_or_stored(label_id)
            if label.builtin:
                raise InvalidRequest(f"The built-in label {label.name!r} cannot be deleted.")
            if any(label.name in entity.labels for entity in self.entities.values() if not entity.deleted):
                raise Conflict(f"The label {label.name!r} is still assigned to a prompt.")
            del self.labels[label_id]

    # --- CollectionStore -------------------------------------------------------------------

    def create_collection(self, collection: Collection) -> Collection:
        with self._lock:
            if is_default_collection(collection.id) or is_default_collection(collection.slug):
                raise Conflict("The default collection already exists.")
            if collection.id in self.collections:
                raise Conflict(f"Collection {collection.id!r} already exists.")
            if any(other.slug == collection.slug for other in self.collections.values()):
                raise Conflict(f"A collection with slug {collection.slug!r} already exists.")
            self.collections[collection.id] = collection
            return collection

    def get_collection(self, key: str) -> Collection:
        with self._lock:
            if is_default_collection(key):
                return default_collection()
            found = self.collections.get(key) or next(
                (c for c in self.collections.values() if c.slug == key), None)
            if found is None:
                raise collection_not_found(key)
            return found

    def list_collections(self) -> list[Collection]:
        with self._lock:
            return [default_collection(), *sorted(self.collections.values(), key=lambda c: (c.created_at, c.id))]

    def update_collection(self, key: str, *, name: str, updated_at: str) -> Collection:
        refuse_default(key, "renamed")
        with self._lock:
            updated = dataclasses.replace(self.get_collection(key), name=name, updated_at=updated_at)
            self.collections[updated.id] = updated
            return updated

    def delete_collection(self, key: str) -> None:
        refuse_default(key, "deleted")
        with self._lock:
            del self.collections[self.get_collection(key).id]

    # --- ApiKeyStore -----------------------------------------------------------------------

    def put_key(self, record: ApiKeyRecord) -> None:
        with self._lock:
            self.keys[record.key_hash] = record

    def get_key(self, key_hash: str) -> ApiKeyRecord | None:
        with self._lock:
            return self.keys.get(key_hash)

    def list_keys(self) -> Iterable[ApiKeyRecord]:
        with self._lock:
            return list(self.keys.values())

    def revoke_key(self, key_id: str) -> None:
        with self._lock:
            for key_hash, record in self.keys.items():
                if record.key_id == key_id:
                    self.keys[key_hash] = dataclasses.replace(record, revoked=True)
                    return
            raise NotFound(f"No API key {key_id!r}.")
