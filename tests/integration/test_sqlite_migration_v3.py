"""A schema-2 SQLite file is upgraded to schema 3 (collections; a label's organisation and update time)
when cuecard opens it, in one transaction: its labels survive with their update time set to their
creation, and a file that cannot be upgraded is left as it was."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from core.errors import StoreDamaged
from core.models import Collection
from infra.sqlite import Database, open_sqlite_stores
from infra.sqlite.database import MIGRATIONS, SCHEMA_VERSION
from tests.integration.test_sqlite_migration import NOW, dump, write_v1_file

LABEL_ID = "55555555-5555-4555-8555-555555555555"


def write_v2_file(path: Path, *, broken: bool = False) -> None:
    """A schema-2 store as cuecard left it before collections: schema 1 upgraded by the 1 -> 2 step, and a label."""
    write_v1_file(path, broken=broken)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("BEGIN")
        for statement in filter(str.strip, MIGRATIONS[1].split(";")):
            db.execute(statement)
        db.execute("INSERT INTO labels (id, name, created_at, description, color_code, workspace_id)"
                   " VALUES (?, 'reviewed', ?, 'ok', '#00ff00', 'ws-1')", (LABEL_ID, NOW))
        db.execute("PRAGMA user_version = 2")
        db.execute("COMMIT")


def tables_of(path: Path) -> tuple[int, set[str], list[str]]:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        label_columns = [row[1] for row in db.execute("PRAGMA table_info(labels)")]
    return version, tables, label_columns


def test_a_version_2_file_gains_collections_and_label_fields(tmp_path: Path) -> None:
    path = tmp_path / "cuecard.db"
    write_v2_file(path)
    before = dump(path)

    stores = open_sqlite_stores(path)
    try:
        version, tables, label_columns = tables_of(path)
        assert version == SCHEMA_VERSION == 4
        assert "collections" in tables and {"organisation_id", "last_updated_at"} <= set(label_columns)
        assert dump(path) == before  # prompts, versions and label pointers untouched

        label = stores.labels.get_label("reviewed")
        assert (label.id, label.description, label.workspace_id) == (LABEL_ID, "ok", "ws-1")
        assert (label.organisation_id, label.last_updated_at) == (None, NOW)

        made = stores.collections.create_collection(Collection(id="c-1", slug="team-a", name="Team A",
                                                               created_at=NOW, updated_at=NOW))
        assert stores.collections.get_collection("team-a") == made
    finally:
        stores.close()
    Database(path).close()  # opening it again changes nothing
    assert tables_of(path)[0] == SCHEMA_VERSION


def test_a_version_2_file_that_cannot_be_upgraded_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "cuecard.db"
    write_v2_file(path, broken=True)
    before, schema_before = dump(path), tables_of(path)

    with pytest.raises(StoreDamaged, match="foreign key"):
        Database(path)

    assert tables_of(path) == schema_before and schema_before[0] == 2 and "collections" not in schema_before[1]
    assert dump(path) == before


def test_a_new_file_has_collections_and_the_label_fields(tmp_path: Path) -> None:
    path = tmp_path / "cuecard.db"
    Database(path).close()
    version, tables, label_columns = tables_of(path)
    assert version == SCHEMA_VERSION and "collections" in tables
    assert {"organisation_id", "last_updated_at"} <= set(label_columns)
