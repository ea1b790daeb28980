"""VirtualKeyStore on SQLite: provider bindings, each a JSON record; the key itself is in `secrets`."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any, Mapping

from core.actor import actor_or_system
from core.errors import Conflict, InvalidRequest, VirtualKeyNotFound
from core.models import VIRTUAL_KEY_CHANGEABLE_FIELDS, VirtualKey
from core.references import check_new_keys, is_entity_id
from infra.sqlite.database import Database, to_json


def binding_from_row(row: sqlite3.Row) -> VirtualKey:
    return VirtualKey(**json.loads(row["record"]))


def insert_binding(connection: sqlite3.Connection, binding: VirtualKey, *, actor: str | None) -> None:
    connection.execute("INSERT INTO virtual_keys (id, slug, created_at, record, actor) VALUES (?, ?, ?, ?, ?)",
                       (binding.id, binding.slug, binding.created_at, _record(binding), actor))


def _record(binding: VirtualKey) -> str:
    return to_json(dataclasses.asdict(binding))


def _not_found(key: str) -> VirtualKeyNotFound:
    return VirtualKeyNotFound(f"virtual key {key} not found")


class SqliteVirtualKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create_virtual_key(self, binding: VirtualKey) -> VirtualKey:
        check_new_keys("virtual key", binding.id, binding.slug)
        with self._db.write("create_virtual_key") as connection:
            taken = connection.execute("SELECT id FROM virtual_keys WHERE id = ? OR slug = ?",
                                       (binding.id, binding.slug)).fetchone()
            if taken is not None:
                if taken["id"] == binding.id:
                    raise Conflict(f"virtual key {binding.id} already exists")
                raise Conflict("The slug is already in use by another virtual key.", param="slug")
            insert_binding(connection, binding, actor=actor_or_system())
        return binding

    def get_virtual_key(self, key: str) -> VirtualKey:
        row = self._row(key)
        if row is None:
            raise _not_found(key)
        return binding_from_row(row)

    def list_virtual_keys(self) -> list[VirtualKey]:
        return [binding_from_row(row) for row in self._db.all("SELECT record FROM virtual_keys ORDER BY created_at, id")]

    def update_virtual_key(self, key: str, changes: Mapping[str, Any]) -> VirtualKey:
        unknown = set(changes) - VIRTUAL_KEY_CHANGEABLE_FIELDS
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))} of a virtual key")
        with self._db.write("update_virtual_key") as connection:
            row = self._row(key, connection)
            if row is None:
                raise _not_found(key)
            updated = dataclasses.replace(binding_from_row(row), **changes)
            connection.execute("UPDATE virtual_keys SET record = ?, actor = ? WHERE id = ?",
                               (_record(updated), actor_or_system(), updated.id))
        return updated

    def delete_virtual_key(self, key: str) -> None:
        with self._db.write("delete_virtual_key") as connection:
            row = self._row(key, connection)
            if row is None:
                raise _not_found(key)
            connection.execute("DELETE FROM virtual_keys WHERE id = ?", (row["id"],))

    def _row(self, key: str, connection: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        column, value = ("id", key.lower()) if is_entity_id(key) else ("slug", key)
        sql = f"SELECT id, record FROM virtual_keys WHERE {column} = ?"
        if connection is None:
            return self._db.one(sql, (value,))
        row: sqlite3.Row | None = connection.execute(sql, (value,)).fetchone()
        return row
