"""Writes a whole `Snapshot` (infra/stores.py) into an SQLite store in one transaction, once per source."""

from __future__ import annotations

import dataclasses
import json

from core.models import BUILTIN_LABELS
from infra.sqlite.api_keys import upsert_key
from infra.sqlite.database import Database, to_json
from infra.sqlite.jobs import insert_job
from infra.sqlite.labels import insert_label
from infra.sqlite.templates import insert_entity, insert_version
from infra.sqlite.virtual_keys import insert_binding
from infra.stores import Snapshot


def imported_from(db: Database, source: str) -> dict[str, int] | None:
    """The counts of an earlier import of `source`, or None if it was never imported."""
    row = db.one("SELECT counts FROM imports WHERE source = ?", (source,))
    return json.loads(row["counts"]) if row is not None else None


def import_snapshot(db: Database, snapshot: Snapshot, *, source: str, imported_at: str) -> dict[str, int]:
    """Adds everything in `snapshot`; all or nothing. Returns its counts."""
    counts = snapshot.counts()
    with db.write("import") as connection:
        for entity in snapshot.entities:
            insert_entity(connection, dataclasses.replace(entity, labels={}),
                          actor=snapshot.entity_actors.get((entity.kind.value, entity.id)))
        for stored in snapshot.versions:
            insert_version(connection, stored.version, deleted=stored.deleted, actor=stored.actor)
        for label in snapshot.labels:
            insert_label(connection, label)
        known = {label.name for label in snapshot.labels} | set(BUILTIN_LABELS)
        connection.executemany(
            "INSERT INTO entity_labels (kind, entity_id, label, version) VALUES (?, ?, ?, ?)",
            [(entity.kind.value, entity.id, name, number)
             for entity in snapshot.entities for name, number in entity.labels.items() if name in known],
        )
        for record in snapshot.api_keys:
            upsert_key(connection, record)
        for binding in snapshot.virtual_keys:
            insert_binding(connection, binding, actor=snapshot.virtual_key_actors.get(binding.id))
        connection.executemany("INSERT OR REPLACE INTO secrets (name, value, updated_at) VALUES (?, ?, ?)",
                               [(name, value, imported_at) for name, value in snapshot.secrets.items()])
        for job in snapshot.jobs:
            insert_job(connection, job)
        connection.execute("INSERT INTO imports (source, imported_at, counts) VALUES (?, ?, ?)",
                           (source, imported_at, to_json(counts)))
    return counts

