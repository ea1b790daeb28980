"""LabelStore on SQLite. Prompts' label pointers live in `entity_labels` by label name, so a rename
moves them in the same transaction."""

from __future__ import annotations

import sqlite3
from typing import Callable

from core.errors import Conflict, InvalidRequest, LabelNotFound
from core.models import BUILTIN_LABELS, Label, builtin_label, builtin_label_name
from core.references import check_label_name
from infra.sqlite.database import Database


def label_from_row(row: sqlite3.Row) -> Label:
    return Label(id=row["id"], name=row["name"], created_at=row["created_at"], description=row["description"],
                 color_code=row["color_code"], workspace_id=row["workspace_id"],
                 organisation_id=row["organisation_id"], updated_at=row["last_updated_at"] or row["created_at"])


def insert_label(connection: sqlite3.Connection, label: Label) -> None:
    connection.execute(
        "INSERT INTO labels (id, name, created_at, description, color_code, workspace_id, organisation_id,"
        " last_updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (label.id, label.name, label.created_at, label.description, label.color_code, label.workspace_id,
         label.organisation_id, label.last_updated_at),
    )


def _check_new_name(name: str) -> None:
    check_label_name(name)
    if name in BUILTIN_LABELS:
        raise Conflict(f"a label named {name} already exists (built in)")


class SqliteLabelStore:
    def __init__(self, db: Database, *, now: Callable[[], str] | None = None) -> None:
        self._db = db
        self._now = now

    def create_label(self, label: Label) -> Label:
        _check_new_name(label.name)
        stored = Label(id=label.id, name=label.name, created_at=label.created_at, description=label.description,
                       color_code=label.color_code, workspace_id=label.workspace_id,
                       organisation_id=label.organisation_id, updated_at=label.last_updated_at)
        with self._db.write("create_label") as connection:
            taken = connection.execute("SELECT id, name FROM labels WHERE id = ? OR name = ?",
                                       (label.id, label.name)).fetchone()
            if taken is not None:
                if taken["name"] == label.name:
                    raise Conflict(f"a label named {label.name} already exists")
                raise Conflict(f"label {label.id} already exists")
            insert_label(connection, stored)
        return stored

    def get_label(self, id_or_name: str) -> Label:
        builtin = builtin_label_name(id_or_name)
        if builtin is not None:
            return builtin_label(builtin)
        row = self._db.one("SELECT * FROM labels WHERE id = ?", (id_or_name,)) or self._db.one(
            "SELECT * FROM labels WHERE name = ?", (id_or_name,))
        if row is None:
            raise LabelNotFound(f"label {id_or_name} not found")
        return label_from_row(row)

    def list_labels(self) -> list[Label]:
        stored = self._db.all("SELECT * FROM labels ORDER BY created_at, id")
        return [builtin_label(name) for name in BUILTIN_LABELS] + [label_from_row(row) for row in stored]

    def update_label(self, label_id: str, *, name: str | None, description: str | None, color_code: str | None) -> Label:
        with self._db.write("update_label") as connection:
            current = self._custom(connection, label_id, "changed")
            if name is not None and name != current.name:
                _check_new_name(name)
                if connection.execute("SELECT 1 FROM labels WHERE name = ?", (name,)).fetchone():
                    raise Conflict(f"a label named {name} already exists")
                connection.execute("UPDATE labels SET name = ? WHERE id = ?", (name, label_id))
                connection.execute("DELETE FROM entity_labels WHERE label = ?", (name,))  # stale pointers of a deleted label
                connection.execute("UPDATE entity_labels SET label = ? WHERE label = ?", (name, current.name))
            for column, value in (("description", description), ("color_code", color_code)):
                if value is not None:
                    connection.execute(f"UPDATE labels SET {column} = ? WHERE id = ?", (value, label_id))
            if self._now is not None:
                connection.execute("UPDATE labels SET last_updated_at = ? WHERE id = ?", (self._now(), label_id))
            return label_from_row(connection.execute("SELECT * FROM labels WHERE id = ?", (label_id,)).fetchone())

    def delete_label(self, label_id: str) -> None:
        with self._db.write("delete_label") as connection:
            label = self._custom(connection, label_id, "deleted")
            in_use = connection.execute(
                "SELECT count(*) FROM entity_labels l JOIN entities e ON e.kind = l.kind AND e.id = l.entity_id"
                " WHERE l.label = ? AND e.deleted = 0", (label.name,)).fetchone()[0]
            if in_use:
                raise Conflict(
                    f"label {label.name} is still assigned to {in_use} prompt(s); it can be deleted once no prompt carries it"
                )
            connection.execute("DELETE FROM entity_labels WHERE label = ?", (label.name,))  # of deleted prompts only
            connection.execute("DELETE FROM labels WHERE id = ?", (label_id,))

    @staticmethod
    def _custom(connection: sqlite3.Connection, label_id: str, verb: str) -> Label:
        if builtin_label_name(label_id) is not None:
            raise InvalidRequest(f"built-in label {label_id} cannot be {verb}")
        row = connection.execute("SELECT * FROM labels WHERE id = ?", (label_id,)).fetchone()
        if row is None:
            raise LabelNotFound(f"label {label_id} not found")
        return label_from_row(row)
