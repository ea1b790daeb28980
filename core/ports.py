"""Ports: what the core needs from the outside world, as typing.Protocols. Adapters live in infra/.

Every method raises core.errors types only: NotFound subclasses for a missing thing, Conflict for a
lost race that retries could not settle, StoreUnavailable when the store itself fails.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from core.models import (
    ApiKeyRecord,
    Collection,
    DomainEvent,
    Entity,
    Kind,
    Label,
    TemplateVersion,
    VersionDraft,
    VirtualKey,
)
from core.references import Reference


class TemplateStore(Protocol):
    """Versioned prompts and partials. `key` is an id, a slug or, for a prompt, one of its external ids (OpenAI's
    `pmpt_...`; `Entity.external_ids`), tried in that order: `get_entity(Kind.PROMPT, "pmpt_abc")` and
    `resolve(Kind.PROMPT, parse_reference("pmpt_abc@3"))` find a prompt by an external id.

    External ids (core.references.check_stored_external_ids, else InvalidRequest) name one live prompt each and
    are no live prompt's slug: a create or update that would take one another live prompt holds, as an external
    id or as its slug, raises ExternalIdTaken (a Conflict, naming that prompt's slug), and a create whose slug is
    a live external id raises Conflict. The store enforces this in the write itself, races included."""

    def resolve(self, kind: Kind, ref: Reference) -> TemplateVersion:
        """The version a reference points at, in at most one store read. Deleted entities are not found."""
        ...

    def get_entity(self, kind: Kind, key: str) -> Entity: ...

    def list_entities(self, kind: Kind, *, collection_id: str | None = None) -> list[Entity]:
        """Every live entity, oldest first (the caller filters and pages)."""
        ...

    def create(self, kind: Kind, entity: Entity, first: VersionDraft) -> TemplateVersion:
        """Stores a new entity (with its external ids) and its version 1 atomically; version 1 is published."""
        ...

    def append_version(self, kind: Kind, key: str, build: Callable[[TemplateVersion], VersionDraft]) -> TemplateVersion:
        """Adds version latest+1, built from the latest version; atomic and race-safe (retries internally)."""
        ...

    def update_entity(self, kind: Kind, key: str, changes: Mapping[str, Any]) -> Entity:
        """Changes head fields (`name`, `collection_id`, `workspace_id`, `metadata`, and a prompt's `external_ids`,
        which the given list replaces: those it leaves out are free again); versions are untouched."""
        ...

    def get_version(self, kind: Kind, key: str, version: int) -> TemplateVersion: ...

    def get_version_by_id(self, kind: Kind, key: str, version_id: str) -> TemplateVersion: ...

    def list_versions(self, kind: Kind, key: str) -> list[TemplateVersion]:
        """Newest first."""
        ...

    def publish(self, kind: Kind, key: str, version: int) -> Entity: ...

    def set_label(self, key: str, version: int, label: str) -> Entity:
        """Moves prompt `key`'s label pointer to `version` (a label marks one version per prompt)."""
        ...

    def remove_label(self, key: str, label: str) -> Entity:
        """Takes `label` off prompt `key` (its pointer goes; no version changes) and returns the head.

        Removing a label the prompt does not carry, or one that does not exist, is a no-op that still
        returns the head: the caller wanted the label gone and it is. A missing prompt is NotFound.
        """
        ...

    def delete(self, kind: Kind, key: str) -> None:
        """Hides the entity from listing and resolution; its versions stay in the table, reachable by id
        inside the store. Its slug (and external ids) are free again: a new entity may take it, and the slug then
        means that one."""
        ...


class LabelStore(Protocol):
    def create_label(self, label: Label) -> Label: ...

    def get_label(self, id_or_name: str) -> Label: ...

    def list_labels(self) -> list[Label]:
        """Built-in labels first, then the others oldest first."""
        ...

    def update_label(self, label_id: str, *, name: str | None, description: str | None, color_code: str | None) -> Label: ...

    def delete_label(self, label_id: str) -> None: ...


class CollectionStore(Protocol):
    """Collections. `key` is an id or a slug. `default` always exists (never stored); it cannot be renamed
    or deleted (Conflict, code `default_collection`). An unknown one is NotFound (code `collection_not_found`)."""

    def create_collection(self, collection: Collection) -> Collection:
        """Stores a new collection; its id or slug already in use (or `default`) is a Conflict."""
        ...

    def get_collection(self, key: str) -> Collection: ...

    def list_collections(self) -> list[Collection]:
        """`default` first, then the others oldest first."""
        ...

    def update_collection(self, key: str, *, name: str, updated_at: str) -> Collection: ...

    def delete_collection(self, key: str) -> None:
        """Removes the collection (the caller checks first that nothing lives in it)."""
        ...


class ApiKeyStore(Protocol):
    def put_key(self, record: ApiKeyRecord) -> None: ...

    def get_key(self, key_hash: str) -> ApiKeyRecord | None: ...

    def list_keys(self) -> Iterable[ApiKeyRecord]: ...

    def revoke_key(self, key_id: str) -> None: ...


class VirtualKeyStore(Protocol):
    """Provider bindings. `key` is an id or a slug. Raises VirtualKeyNotFound for an unknown one."""

    def create_virtual_key(self, binding: VirtualKey) -> VirtualKey: ...

    def get_virtual_key(self, key: str) -> VirtualKey: ...

    def list_virtual_keys(self) -> list[VirtualKey]: ...

    def update_virtual_key(self, key: str, changes: Mapping[str, Any]) -> VirtualKey: ...

    def delete_virtual_key(self, key: str) -> None: ...


class SecretStore(Protocol):
    """Where provider keys live (AWS Secrets Manager). Values never leave through any other port."""

    def put_secret(self, name: str, value: str) -> str:
        """Stores or replaces a secret; returns the reference to keep (e.g. its ARN)."""
        ...

    def get_secret(self, ref: str) -> str: ...

    def delete_secret(self, ref: str) -> None: ...


class EventPublisher(Protocol):
    """Publishes domain events (EventBridge). Raises StoreUnavailable-like core errors on failure."""

    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publishes all of `events` or raises; partial failures are retried inside, then raised."""
        ...


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the epoch."""
        ...
