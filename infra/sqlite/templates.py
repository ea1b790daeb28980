"""TemplateStore on SQLite: prompts and partials, their immutable versions, and their pointers.

An entity's published and latest pointers are columns of its row and label pointers are rows of
`entity_labels`, so every reference resolves in one indexed SELECT. Writes are single transactions
(infra/sqlite/database.py), so version numbers are assigned under the file's write lock.

A key is an id, a slug, or a prompt's external id (a row of `external_ids`, primary key the id). Within the
write transaction that stores them, an external id is checked against every live prompt's slugs and external
ids, so a key names at most one live prompt; delete frees the prompt's external ids with its slug.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Callable, Iterable, Mapping

from core.actor import actor_or_system
from core.errors import (
    Conflict,
    InvalidRequest,
    LabelNotFound,
    NotFound,
    VersionNotFound,
    entity_not_found,
    external_id_taken,
    reference_not_found,
)
from core.models import BUILTIN_LABELS, Entity, Kind, TemplateVersion, VersionDraft, content_from_record, content_record
from core.references import Reference, check_new_keys, check_stored_external_ids, is_entity_id
from infra.sqlite.database import Database, to_json

ENTITY_FIELDS = frozenset({"name", "collection_id", "workspace_id", "metadata", "external_ids"})
_VERSION_COLUMNS = "e.slug, v.kind, v.entity_id, v.version, v.version_id, v.created_at, v.content"


def version_from_row(row: sqlite3.Row) -> TemplateVersion:
    return TemplateVersion(
        kind=Kind(row["kind"]),
        entity_id=row["entity_id"],
        slug=row["slug"],
        version=row["version"],
        version_id=row["version_id"],
        created_at=row["created_at"],
        **content_from_record(json.loads(row["content"])),
    )


def entity_from_row(row: sqlite3.Row, labels: Mapping[str, int], external_ids: Iterable[str] = ()) -> Entity:
    return Entity(
        kind=Kind(row["kind"]),
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        latest_version=row["latest_version"],
        published_version=row["published_version"],
        collection_id=row["collection_id"],
        workspace_id=row["workspace_id"],
        labels=dict(labels),
        metadata=json.loads(row["metadata"]),
        deleted=bool(row["deleted"]),
        external_ids=tuple(external_ids),
    )


def insert_version(connection: sqlite3.Connection, version: TemplateVersion, *, deleted: bool = False,
                   actor: str | None = None) -> None:
    try:
        connection.execute(
            "INSERT INTO versions (kind, entity_id, version, version_id, created_at, content, deleted, actor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (version.kind.value, version.entity_id, version.version, version.version_id, version.created_at,
             to_json(content_record(version)), int(deleted), actor),
        )
    except sqlite3.IntegrityError:
        raise Conflict(f"{version.kind.value} {version.slug} already has a version with id {version.version_id}") from None


def insert_entity(connection: sqlite3.Connection, entity: Entity, *, actor: str | None = None) -> None:
    connection.execute(
        "INSERT INTO entities (kind, id, slug, name, collection_id, workspace_id, metadata, created_at, updated_at,"
        " latest_version, published_version, deleted, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entity.kind.value, entity.id, entity.slug, entity.name, entity.collection_id, entity.workspace_id,
         to_json(dict(entity.metadata)), entity.created_at, entity.updated_at, entity.latest_version,
         entity.published_version, int(entity.deleted), actor),
    )
    connection.executemany(
        "INSERT INTO entity_labels (kind, entity_id, label, version) VALUES (?, ?, ?, ?)",
        [(entity.kind.value, entity.id, label, number) for label, number in entity.labels.items()],
    )
    _write_external_ids(connection, entity.kind, entity.id, entity.external_ids)


def _key_match(kind: Kind, key: str) -> tuple[str, tuple[Any, ...]]:
    """The condition on `entities e` that `key` names it: its id, its slug, or (a prompt's) an external id.
    Liveness is the caller's condition; among live prompts a key names one at most."""
    if is_entity_id(key):
        return "e.id = ?", (key.lower(),)
    if kind is Kind.PROMPT:
        # One id, found by the live slug else the external id, so `e` is read by its primary key.
        return ("e.id = coalesce((SELECT id FROM entities WHERE kind = ? AND slug = ? AND deleted = 0),"
                " (SELECT entity_id FROM external_ids WHERE external_id = ? AND kind = ?))",
                (kind.value, key, key, kind.value))
    return "e.slug = ?", (key,)


def _holder(connection: sqlite3.Connection, kind: Kind, key: str) -> sqlite3.Row | None:
    """The live entity `key` names by its slug or an external id, if any (inside a write transaction)."""
    match, parameters = _key_match(kind, key)
    row: sqlite3.Row | None = connection.execute(
        f"SELECT e.id, e.slug FROM entities e WHERE e.kind = ? AND e.deleted = 0 AND {match}", (kind.value, *parameters)
    ).fetchone()
    return row


def _check_claims(connection: sqlite3.Connection, kind: Kind, entity_id: str, external_ids: Iterable[str]) -> None:
    """ExternalIdTaken if another live prompt holds one of `external_ids`, as an external id or as its slug."""
    for external_id in external_ids:
        holder = _holder(connection, kind, external_id)
        if holder is not None and holder["id"] != entity_id:
            raise external_id_taken(external_id, holder["slug"])


def _write_external_ids(connection: sqlite3.Connection, kind: Kind, entity_id: str, external_ids: Iterable[str]) -> None:
    """Makes `external_ids` the entity's, in order (the primary key refuses one another entity holds)."""
    connection.execute("DELETE FROM external_ids WHERE kind = ? AND entity_id = ?", (kind.value, entity_id))
    connection.executemany(
        "INSERT INTO external_ids (external_id, kind, entity_id, position) VALUES (?, ?, ?, ?)",
        [(external_id, kind.value, entity_id, position) for position, external_id in enumerate(external_ids)],
    )


class SqliteTemplateStore:
    def __init__(self, db: Database, *, now: Callable[[], str]) -> None:
        self._db = db
        self._now = now

    # --- reads ----------------------------------------------------------------------------------

    def resolve(self, kind: Kind, ref: Reference) -> TemplateVersion:
        match, key_parameters = _key_match(kind, ref.key)
        joins, condition = "", "v.version = e.published_version"
        join_parameters: tuple[Any, ...] = ()
        condition_parameters: tuple[Any, ...] = ()
        if ref.selector == "latest":
            condition = "v.version = e.latest_version"
        elif ref.selector == "number":
            condition, condition_parameters = "v.version = ?", (ref.number,)
        elif ref.selector == "label":
            joins = "JOIN entity_labels l ON l.kind = e.kind AND l.entity_id = e.id AND l.label = ?"
            condition, join_parameters = "v.version = l.version", (ref.label,)
        row = self._db.one(
            f"SELECT {_VERSION_COLUMNS} FROM entities e {joins}"
            " JOIN versions v ON v.kind = e.kind AND v.entity_id = e.id"
            f" WHERE e.kind = ? AND {match} AND e.deleted = 0 AND {condition}",
            (*join_parameters, kind.value, *key_parameters, *condition_parameters),
        )
        if row is None:
            raise self._missing(kind, ref)
        return version_from_row(row)

    def get_entity(self, kind: Kind, key: str) -> Entity:
        row = self._live_row(kind, key)
        external_ids = self._db.all("SELECT external_id FROM external_ids WHERE kind = ? AND entity_id = ? ORDER BY position",
                                    (kind.value, row["id"]))
        return entity_from_row(row, self._labels_of(kind, row["id"]), (found["external_id"] for found in external_ids))

    def list_entities(self, kind: Kind, *, collection_id: str | None = None) -> list[Entity]:
        sql = "SELECT * FROM entities WHERE kind = ? AND deleted = 0"
        parameters: tuple[Any, ...] = (kind.value,)
        if collection_id is not None:
            sql, parameters = sql + " AND collection_id = ?", (*parameters, collection_id)
        rows = self._db.all(sql + " ORDER BY created_at, id", parameters)
        labels: dict[str, dict[str, int]] = {}
        for label in self._db.all("SELECT entity_id, label, version FROM entity_labels WHERE kind = ?", (kind.value,)):
            labels.setdefault(label["entity_id"], {})[label["label"]] = label["version"]
        external_ids: dict[str, list[str]] = {}
        for found in self._db.all("SELECT entity_id, external_id FROM external_ids WHERE kind = ? ORDER BY position",
                                  (kind.value,)):
            external_ids.setdefault(found["entity_id"], []).append(found["external_id"])
        return [entity_from_row(row, labels.get(row["id"], {}), external_ids.get(row["id"], ())) for row in rows]

    def get_version(self, kind: Kind, key: str, version: int) -> TemplateVersion:
        return self.resolve(kind, Reference(key, "number", number=version))

    def get_version_by_id(self, kind: Kind, key: str, version_id: str) -> TemplateVersion:
        entity = self._live_row(kind, key)
        row = self._db.one(
            f"SELECT {_VERSION_COLUMNS} FROM entities e JOIN versions v ON v.kind = e.kind AND v.entity_id = e.id"
            " WHERE e.kind = ? AND e.id = ? AND v.version_id = ?",
            (kind.value, entity["id"], version_id),
        )
        if row is None:
            raise VersionNotFound(f"{kind.value} {entity['slug']} has no version with id {version_id}")
        return version_from_row(row)

    def list_versions(self, kind: Kind, key: str) -> list[TemplateVersion]:
        entity = self._live_row(kind, key)
        rows = self._db.all(
            f"SELECT {_VERSION_COLUMNS} FROM entities e JOIN versions v ON v.kind = e.kind AND v.entity_id = e.id"
            " WHERE e.kind = ? AND e.id = ? ORDER BY v.version DESC",
            (kind.value, entity["id"]),
        )
        return [version_from_row(row) for row in rows]

    # --- writes ---------------------------------------------------------------------------------

    def create(self, kind: Kind, entity: Entity, first: VersionDraft) -> TemplateVersion:
        if entity.kind is not kind:
            raise InvalidRequest(f"cannot store a {entity.kind.value} as a {kind.value}")
        check_new_keys(kind.value, entity.id, entity.slug)
        external_ids = check_stored_external_ids(kind.value, entity.slug, entity.external_ids)
        version = TemplateVersion.from_draft(kind, entity.id, entity.slug, 1, first)
        head = Entity(kind=kind, id=entity.id, slug=entity.slug, name=entity.name, created_at=entity.created_at,
                      updated_at=entity.updated_at, latest_version=1, published_version=1,
                      collection_id=entity.collection_id, workspace_id=entity.workspace_id,
                      metadata=entity.metadata, external_ids=external_ids)
        actor = actor_or_system()
        with self._db.write("create") as connection:
            # Ids are never reused; slugs (and a prompt's external ids) only among live entities.
            if connection.execute("SELECT 1 FROM entities WHERE kind = ? AND id = ?", (kind.value, entity.id)).fetchone():
                raise Conflict(f"{kind.value} {entity.id} already exists")
            if _holder(connection, kind, entity.slug) is not None:
                raise Conflict(f"slug {entity.slug} is already in use")
            _check_claims(connection, kind, entity.id, external_ids)
            insert_entity(connection, head, actor=actor)
            insert_version(connection, version, actor=actor)
        return version

    def append_version(self, kind: Kind, key: str, build: Callable[[TemplateVersion], VersionDraft]) -> TemplateVersion:
        actor = actor_or_system()
        with self._db.write("append_version") as connection:
            entity = self._live_row(kind, key, connection)
            latest_row = connection.execute(
                f"SELECT {_VERSION_COLUMNS} FROM entities e JOIN versions v ON v.kind = e.kind AND v.entity_id = e.id"
                " WHERE e.kind = ? AND e.id = ? AND v.version = e.latest_version",
                (kind.value, entity["id"]),
            ).fetchone()
            latest = version_from_row(latest_row)
            version = TemplateVersion.from_draft(kind, latest.entity_id, latest.slug, latest.version + 1, build(latest))
            insert_version(connection, version, actor=actor)
            connection.execute(
                "UPDATE entities SET latest_version = ?, updated_at = ?, actor = ? WHERE kind = ? AND id = ?",
                (version.version, version.created_at, actor, kind.value, version.entity_id),
            )
        return version

    def update_entity(self, kind: Kind, key: str, changes: Mapping[str, Any]) -> Entity:
        unknown = set(changes) - ENTITY_FIELDS
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))} of a {kind.value}")
        for field in ("name", "collection_id"):
            if field in changes and not isinstance(changes[field], str):
                raise InvalidRequest(f"{field} must be a string")
        assignments = ["updated_at = ?", "actor = ?"]
        values: list[Any] = [self._now(), actor_or_system()]
        for field, value in changes.items():
            if field != "external_ids":  # rows of their own
                assignments.append(f"{field} = ?")
                values.append(to_json(dict(value)) if field == "metadata" else value)
        with self._db.write("update_entity") as connection:
            entity = self._live_row(kind, key, connection)
            if "external_ids" in changes:
                external_ids = check_stored_external_ids(kind.value, entity["slug"], changes["external_ids"])
                _check_claims(connection, kind, entity["id"], external_ids)
                _write_external_ids(connection, kind, entity["id"], external_ids)
            connection.execute(f"UPDATE entities SET {', '.join(assignments)} WHERE kind = ? AND id = ?",
                               (*values, kind.value, entity["id"]))
        return self.get_entity(kind, entity["id"])

    def publish(self, kind: Kind, key: str, version: int) -> Entity:
        with self._db.write("publish") as connection:
            entity = self._live_row(kind, key, connection)
            self._check_version(connection, kind, entity, key, version)
            connection.execute(
                "UPDATE entities SET published_version = ?, updated_at = ?, actor = ? WHERE kind = ? AND id = ?",
                (version, self._now(), actor_or_system(), kind.value, entity["id"]),
            )
        return self.get_entity(kind, entity["id"])

    def set_label(self, key: str, version: int, label: str) -> Entity:
        kind = Kind.PROMPT
        with self._db.write("set_label") as connection:
            entity = self._live_row(kind, key, connection)
            if not _label_exists(connection, label):
                raise LabelNotFound(f"label {label} not found")
            self._check_version(connection, kind, entity, key, version)
            connection.execute(
                "INSERT INTO entity_labels (kind, entity_id, label, version) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (kind, entity_id, label) DO UPDATE SET version = excluded.version",
                (kind.value, entity["id"], label, version),
            )
            connection.execute("UPDATE entities SET updated_at = ?, actor = ? WHERE kind = ? AND id = ?",
                               (self._now(), actor_or_system(), kind.value, entity["id"]))
        return self.get_entity(kind, entity["id"])

    def remove_label(self, key: str, label: str) -> Entity:
        kind = Kind.PROMPT
        with self._db.write("remove_label") as connection:
            entity = self._live_row(kind, key, connection)
            removed = connection.execute("DELETE FROM entity_labels WHERE kind = ? AND entity_id = ? AND label = ?",
                                         (kind.value, entity["id"], label)).rowcount
            if removed:
                connection.execute("UPDATE entities SET updated_at = ?, actor = ? WHERE kind = ? AND id = ?",
                                   (self._now(), actor_or_system(), kind.value, entity["id"]))
        return self.get_entity(kind, entity["id"])

    def delete(self, kind: Kind, key: str) -> None:
        with self._db.write("delete") as connection:
            entity = self._live_row(kind, key, connection)
            connection.execute("UPDATE entities SET deleted = 1, updated_at = ?, actor = ? WHERE kind = ? AND id = ?",
                               (self._now(), actor_or_system(), kind.value, entity["id"]))
            connection.execute("UPDATE versions SET deleted = 1 WHERE kind = ? AND entity_id = ?",
                               (kind.value, entity["id"]))
            _write_external_ids(connection, kind, entity["id"], ())  # freed, as the slug is

    # --- internals ------------------------------------------------------------------------------

    def _live_row(self, kind: Kind, key: str, connection: sqlite3.Connection | None = None) -> sqlite3.Row:
        match, parameters = _key_match(kind, key)
        sql = f"SELECT e.* FROM entities e WHERE e.kind = ? AND {match} AND e.deleted = 0"
        if connection is None:
            row = self._db.one(sql, (kind.value, *parameters))
        else:
            row = connection.execute(sql, (kind.value, *parameters)).fetchone()
        if row is None:
            raise entity_not_found(kind.value, key)
        return row

    def _labels_of(self, kind: Kind, entity_id: str) -> dict[str, int]:
        rows = self._db.all("SELECT label, version FROM entity_labels WHERE kind = ? AND entity_id = ?",
                            (kind.value, entity_id))
        return {row["label"]: row["version"] for row in rows}

    def _check_version(self, connection: sqlite3.Connection, kind: Kind, entity: sqlite3.Row, key: str,
                       version: int) -> None:
        found = connection.execute("SELECT 1 FROM versions WHERE kind = ? AND entity_id = ? AND version = ?",
                                   (kind.value, entity["id"], version)).fetchone()
        if found is None:
            raise reference_not_found(kind.value, entity["slug"], "number", number=version)

    def _missing(self, kind: Kind, ref: Reference) -> NotFound:
        """Why `ref` found nothing: the entity, the version or the label is missing."""
        try:
            slug = self._live_row(kind, ref.key)["slug"]
        except NotFound as exc:
            return exc
        label_exists = ref.selector != "label" or (
            ref.label in BUILTIN_LABELS or self._db.one("SELECT 1 FROM labels WHERE name = ?", (ref.label,)) is not None)
        return reference_not_found(kind.value, slug, ref.selector, number=ref.number, label=ref.label,
                                   label_exists=label_exists)


def _label_exists(connection: sqlite3.Connection, name: str) -> bool:
    return name in BUILTIN_LABELS or connection.execute("SELECT 1 FROM labels WHERE name = ?", (name,)).fetchone() is not None
