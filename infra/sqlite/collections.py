"""CollectionStore on SQLite: one row per collection in `collections`; `default` is never stored."""

from __future__ import annotations

import sqlite3

from core.collections import collection_not_found, refuse_default
from core.errors import Conflict
from core.models import Collection, default_collection, is_default_collection
from infra.sqlite.database import Database

_COLUMNS = "id, slug, name, workspace_id, parent_collection_id, created_at, updated_at"


def collection_from_row(row: sqlite3.Row) -> Collection:
    return Collection(id=row["id"], slug=row["slug"], name=row["name"], workspace_id=row["workspace_id"],
                      parent_collection_id=row["parent_collection_id"], created_at=row["created_at"],
                      updated_at=row["updated_at"])


class SqliteCollectionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create_collection(self, collection: Collection) -> Collection:
        if is_default_collection(collection.id) or is_default_collection(collection.slug):
            raise Conflict("the default collection already exists (built in)")
        with self._db.write("create_collection") as connection:
            taken = connection.execute("SELECT id, slug FROM collections WHERE id = ? OR slug = ?",
                                       (collection.id, collection.slug)).fetchone()
            if taken is not None:
                if taken["slug"] == collection.slug:
                    raise Conflict(f"a collection with slug {collection.slug} already exists")
                raise Conflict(f"collection {collection.id} already exists")
            connection.execute(
                f"INSERT INTO collections ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (collection.id, collection.slug, collection.name, collection.workspace_id,
                 collection.parent_collection_id, collection.created_at, collection.updated_at),
            )
        return collection

    def get_collection(self, key: str) -> Collection:
        if is_default_collection(key):
            return default_collection()
        row = self._db.one("SELECT * FROM collections WHERE id = ?", (key,)) or self._db.one(
            "SELECT * FROM collections WHERE slug = ?", (key,))
        if row is None:
            raise collection_not_found(key)
        return collection_from_row(row)

    def list_collections(self) -> list[Collection]:
        rows = self._db.all("SELECT * FROM collections ORDER BY created_at, id")
        return [default_collection()] + [collection_from_row(row) for row in rows]

    def update_collection(self, key: str, *, name: str, updated_at: str) -> Collection:
        refuse_default(key, "renamed")
        with self._db.write("update_collection") as connection:
            row = self._row(connection, key)
            connection.execute("UPDATE collections SET name = ?, updated_at = ? WHERE id = ?",
                               (name, updated_at, row["id"]))
            return collection_from_row(connection.execute("SELECT * FROM collections WHERE id = ?",
                                                          (row["id"],)).fetchone())

    def delete_collection(self, key: str) -> None:
        refuse_default(key, "deleted")
        with self._db.write("delete_collection") as connection:
            row = self._row(connection, key)
            connection.execute("DELETE FROM collections WHERE id = ?", (row["id"],))

    @staticmethod
    def _row(connection: sqlite3.Connection, key: str) -> sqlite3.Row:
        row: sqlite3.Row | None = connection.execute("SELECT * FROM collections WHERE id = ? OR slug = ? ORDER BY id = ? DESC",
                                                     (key, key, key)).fetchone()
        if row is None:
            raise collection_not_found(key)
        return row
