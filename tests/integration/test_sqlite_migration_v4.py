"""A schema-3 SQLite file is upgraded to schema 4 (external ids: a table keyed by the id) when cuecard opens it,
in one transaction: what it holds is untouched, its prompts take external ids at once, and a file that cannot
be upgraded is left as it was."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from core.errors import ExternalIdTaken, StoreDamaged
from core.models import Kind
from core.references import parse_reference
from infra.sqlite import Database, open_sqlite_stores
from infra.sqlite.database import MIGRATIONS, SCHEMA_VERSION
from tests.contract.support import draft, new_entity
from tests.integration.test_sqlite_migration import PROMPT_ID, dump
from tests.integration.test_sqlite_migration_v3 import write_v2_file


def write_v3_file(path: Path, *, broken: bool = False) -> None:
    """A schema-3 store as cuecard left it before external ids: schema 2 upgraded by the 2 -> 3 step."""
    write_v2_file(path, broken=broken)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN")
        for statement in filter(str.strip, MIGRATIONS[2].split(";")):
            db.execute(statement)
        db.execute("PRAGMA user_version = 3")
        db.execute("COMMIT")


def tables_of(path: Path) -> tuple[int, set[str], set[str]]:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return version, tables, indexes


def test_a_version_3_file_gains_external_ids(tmp_path: Path) -> None:
    path = tmp_path / "cuecard.db"
    write_v3_file(path)
    before = dump(path)

    stores = open_sqlite_stores(path)
    try:
        version, tables, indexes = tables_of(path)
        assert version == SCHEMA_VERSION == 4
        assert "external_ids" in tables and "external_ids_by_entity" in indexes
        assert dump(path) == before  # prompts, versions and label pointers untouched

        templates = stores.templates
        assert templates.get_entity(Kind.PROMPT, PROMPT_ID).external_ids == ()
        templates.update_entity(Kind.PROMPT, "pp-live", {"external_ids": ["pmpt_live"]})
        assert templates.resolve(Kind.PROMPT, parse_reference("pmpt_live@production")).string == "live v2"
        with pytest.raises(ExternalIdTaken, match="pp-live"):
            templates.create(Kind.PROMPT, new_entity(external_ids=("pmpt_live",)), draft())
        with contextlib.closing(sqlite3.connect(path)) as db:  # the new table's foreign key holds
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            db.execute("PRAGMA foreign_keys = ON")
            with pytest.raises(sqlite3.IntegrityError):
                db.execute("INSERT INTO external_ids (external_id, kind, entity_id, position)"
                           " VALUES ('x', 'prompt', 'nobody', 0)")
    finally:
        stores.close()
    Database(path).close()  # opening it again changes nothing
    assert tables_of(path)[0] == SCHEMA_VERSION


def test_a_version_3_file_that_cannot_be_upgraded_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "cuecard.db"
    write_v3_file(path, broken=True)
    before, schema_before = dump(path), tables_of(path)

    with pytest.raises(StoreDamaged, match="foreign key"):
        Database(path)

    assert tables_of(path) == schema_before and schema_before[0] == 3 and "external_ids" not in schema_before[1]
    assert dump(path) == before


def test_a_new_file_has_the_external_ids_table(tmp_path: Path) -> None:
    path = tmp_path / "cuecard.db"
    Database(path).close()
    version, tables, indexes = tables_of(path)
    assert version == SCHEMA_VERSION and "external_ids" in tables and "external_ids_by_entity" in indexes
