"""An SQLite file written by schema version 1 is upgraded to version 2 when cuecard opens it.

Version 2 makes a slug unique among live entities only (a partial unique index instead of the
`UNIQUE (kind, slug)` table constraint), so `entities` is rebuilt. The upgrade runs in one transaction:
everything stored survives it, and a file it cannot upgrade is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from core.errors import Conflict, StoreDamaged
from core.models import Kind
from core.references import parse_reference
from infra.sqlite import Database, open_sqlite_stores
from infra.sqlite.database import SCHEMA_VERSION
from tests.contract.support import draft, new_entity

PROMPT_ID = "11111111-1111-4111-8111-111111111111"
DELETED_ID = "22222222-2222-4222-8222-222222222222"
PARTIAL_ID = "33333333-3333-4333-8333-333333333333"
NOW = "2025-01-01T00:00:00.000Z"

# infra/sqlite/database.py SCHEMA at schema version 1 (cuecard before slug reuse), verbatim.
V1_SCHEMA = """
CREATE TABLE entities (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    workspace_id TEXT,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    latest_version INTEGER NOT NULL,
    published_version INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0,
    actor TEXT,
    PRIMARY KEY (kind, id),
    UNIQUE (kind, slug)
) WITHOUT ROWID;
CREATE INDEX entities_by_age ON entities (kind, deleted, created_at, id);

CREATE TABLE versions (
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    version_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    content TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    actor TEXT,
    PRIMARY KEY (kind, entity_id, version),
    UNIQUE (kind, entity_id, version_id),
    FOREIGN KEY (kind, entity_id) REFERENCES entities (kind, id)
) WITHOUT ROWID;

CREATE TABLE entity_labels (
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    label TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (kind, entity_id, label),
    FOREIGN KEY (kind, entity_id, version) REFERENCES versions (kind, entity_id, version)
) WITHOUT ROWID;
CREATE INDEX entity_labels_by_label ON entity_labels (label);

CREATE TABLE labels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    description TEXT,
    color_code TEXT,
    workspace_id TEXT
) WITHOUT ROWID;

CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    prefix TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX api_keys_by_id ON api_keys (key_id);

CREATE TABLE virtual_keys (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL,
    actor TEXT
) WITHOUT ROWID;

CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    fingerprint TEXT,
    claim_token TEXT,
    lease_until REAL,
    result TEXT,
    status TEXT,
    expires_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE imports (
    source TEXT PRIMARY KEY,
    imported_at TEXT NOT NULL,
    counts TEXT NOT NULL
) WITHOUT ROWID;
"""


def _content(string: str) -> str:
    return json.dumps({"string": string, "variables": [], "parameters": {"temperature": 0.5}})


def write_v1_file(path: Path, *, broken: bool = False) -> None:
    """A version-1 store as an older cuecard left it: a live prompt (two versions, a label), a deleted prompt
    (its versions kept) and a partial. `broken`: also a version whose entity is missing."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(V1_SCHEMA)
        entity = ("INSERT INTO entities (kind, id, slug, name, collection_id, workspace_id, metadata, created_at,"
                  " updated_at, latest_version, published_version, deleted, actor) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
        version = ("INSERT INTO versions (kind, entity_id, version, version_id, created_at, content, deleted, actor)"
                   " VALUES (?,?,?,?,?,?,?,?)")
        db.execute("BEGIN")
        db.execute(entity, ("prompt", PROMPT_ID, "pp-live", "Live", "default", "ws-1", '{"team":"a"}', NOW, NOW,
                            2, 1, 0, "system"))
        db.execute(entity, ("prompt", DELETED_ID, "summarize", "Old", "default", None, "{}", NOW, NOW, 1, 1, 1, None))
        db.execute(entity, ("partial", PARTIAL_ID, "pl-part", "Part", "default", None, "{}", NOW, NOW, 1, 1, 0, None))
        for row in (("prompt", PROMPT_ID, 1, "v-1", NOW, _content("live v1"), 0, "system"),
                    ("prompt", PROMPT_ID, 2, "v-2", NOW, _content("live v2"), 0, "system"),
                    ("prompt", DELETED_ID, 1, "v-3", NOW, _content("old v1"), 1, None),
                    ("partial", PARTIAL_ID, 1, "v-4", NOW, _content("part v1"), 0, None)):
            db.execute(version, row)
        db.execute("INSERT INTO entity_labels (kind, entity_id, label, version) VALUES ('prompt', ?, 'production', 2)",
                   (PROMPT_ID,))
        if broken:
            db.execute("PRAGMA foreign_keys = OFF")
            db.execute(version, ("prompt", "44444444-4444-4444-8444-444444444444", 1, "v-5", NOW, _content("x"), 0, None))
        db.execute("PRAGMA user_version = 1")
        db.execute("COMMIT")


def dump(path: Path) -> dict[str, list[tuple]]:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall())
                for table in ("entities", "versions", "entity_labels")}


def schema_of(path: Path) -> tuple[int, str, list[str]]:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        table = db.execute("SELECT sql FROM sqlite_master WHERE name = 'entities'").fetchone()[0]
        indexes = [row[0] for row in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entities' AND sql IS NOT NULL ORDER BY name")]
    return version, table, indexes


def test_a_version_1_file_is_upgraded_with_everything_in_it(tmp_path: Path) -> None:
    path = tmp_path / "cuecard.db"
    write_v1_file(path)
    before = dump(path)

    stores = open_sqlite_stores(path)
    try:
        version, table, indexes = schema_of(path)
        assert version == SCHEMA_VERSION == 4  # 1 -> 2 -> 3 -> 4 in one transaction
        assert "UNIQUE" not in table.upper()
        assert any("entities_live_slug" in sql and "WHERE deleted = 0" in sql for sql in indexes), indexes
        assert any("entities_by_age" in sql for sql in indexes), indexes
        assert dump(path) == before  # every row, byte for byte

        templates = stores.templates
        assert templates.resolve(Kind.PROMPT, parse_reference("pp-live@production")).string == "live v2"
        assert templates.resolve(Kind.PARTIAL, parse_reference("pl-part")).string == "part v1"
        assert templates.get_entity(Kind.PROMPT, PROMPT_ID).metadata == {"team": "a"}

        # The point of the upgrade: the deleted prompt's slug can be used again, and nothing is lost.
        new = new_entity(slug="summarize")
        templates.create(Kind.PROMPT, new, draft("new v1"))
        assert templates.resolve(Kind.PROMPT, parse_reference("summarize")).entity_id == new.id
        with pytest.raises(Conflict):
            templates.create(Kind.PROMPT, new_entity(slug="pp-live"), draft())  # live slugs stay unique
        assert ("prompt", DELETED_ID, 1, "v-3", NOW, _content("old v1"), 1, None) in dump(path)["versions"]

        with contextlib.closing(sqlite3.connect(path)) as db:  # the foreign keys hold on the rebuilt table
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            db.execute("PRAGMA foreign_keys = ON")
            with pytest.raises(sqlite3.IntegrityError):
                db.execute("INSERT INTO versions (kind, entity_id, version, version_id, created_at, content)"
                           " VALUES ('prompt', 'nobody', 1, 'v-x', ?, '{}')", (NOW,))
    finally:
        stores.close()

    Database(path).close()  # opening an upgraded file again changes nothing
    assert schema_of(path)[0] == SCHEMA_VERSION


def test_a_file_that_cannot_be_upgraded_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "cuecard.db"
    write_v1_file(path, broken=True)
    before, schema_before = dump(path), schema_of(path)

    with pytest.raises(StoreDamaged, match="foreign key"):
        Database(path)

    assert schema_of(path) == schema_before and schema_before[0] == 1  # rolled back whole
    assert dump(path) == before


def test_a_new_file_starts_at_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "cuecard.db"
    Database(path).close()
    version, table, indexes = schema_of(path)
    assert version == SCHEMA_VERSION and "UNIQUE" not in table.upper()
    assert any("WHERE deleted = 0" in sql for sql in indexes)
