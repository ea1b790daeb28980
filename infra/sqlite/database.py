"""The local store's SQLite file: connections, schema, write transactions and error mapping.

- WAL mode, `synchronous=FULL`: a write that returned survives `kill -9` and power loss.
- Each logical write is one `BEGIN IMMEDIATE` transaction, so writers queue on the file's lock
  (across threads and processes) and read-modify-write steps such as "latest + 1" cannot race.
- One connection per thread; reads are single statements in autocommit, each a consistent snapshot.
- The file is created 0600 inside a 0700 directory, and its WAL files inherit that mode.
- sqlite3 errors become core errors here and nowhere else (`translated`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

from core.errors import Conflict, InvalidRequest, StoreDamaged, StoreUnavailable
from core.store_reads import check_store_read

SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 10_000
_HEADER = b"SQLite format 3\x00"

# Collections (schema 3): `default` is never stored (core.models.default_collection).
_COLLECTIONS = """
CREATE TABLE collections (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    workspace_id TEXT,
    parent_collection_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX collections_by_age ON collections (created_at, id);
"""

# External ids (schema 4): a prompt's other names (OpenAI's `pmpt_...`), one row each, in the order given. The
# primary key keeps each on one prompt; a delete, or an update that drops one, deletes its row. The store keeps
# an external id apart from every live slug of its kind (infra/sqlite/templates.py, in the same transaction).
_EXTERNAL_IDS = """
CREATE TABLE external_ids (
    external_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    FOREIGN KEY (kind, entity_id) REFERENCES entities (kind, id)
) WITHOUT ROWID;
CREATE INDEX external_ids_by_entity ON external_ids (kind, entity_id, position);
"""

SCHEMA = """
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
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX entities_live_slug ON entities (kind, slug) WHERE deleted = 0;
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
""" + _EXTERNAL_IDS + """

CREATE TABLE labels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    description TEXT,
    color_code TEXT,
    workspace_id TEXT,
    organisation_id TEXT,
    last_updated_at TEXT
) WITHOUT ROWID;
""" + _COLLECTIONS + """
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

# Schema 1 -> 2: a slug is unique among live entities only (a deleted prompt's slug can be used again).
# SQLite cannot drop a table constraint, so `entities` is rebuilt (https://sqlite.org/lang_altertable.html,
# "Making Other Kinds Of Table Schema Changes"): create the new table, copy, drop, rename, re-index.
_MIGRATE_1_TO_2 = """
CREATE TABLE entities_v2 (
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
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
INSERT INTO entities_v2 (kind, id, slug, name, collection_id, workspace_id, metadata, created_at, updated_at,
    latest_version, published_version, deleted, actor)
  SELECT kind, id, slug, name, collection_id, workspace_id, metadata, created_at, updated_at,
    latest_version, published_version, deleted, actor FROM entities;
DROP TABLE entities;
ALTER TABLE entities_v2 RENAME TO entities;
CREATE UNIQUE INDEX entities_live_slug ON entities (kind, slug) WHERE deleted = 0;
CREATE INDEX entities_by_age ON entities (kind, deleted, created_at, id);
"""
# Schema 2 -> 3: collections, and a label's organisation and update time (a label's last update is its
# creation until it changes).
_MIGRATE_2_TO_3 = _COLLECTIONS + """
ALTER TABLE labels ADD COLUMN organisation_id TEXT;
ALTER TABLE labels ADD COLUMN last_updated_at TEXT;
UPDATE labels SET last_updated_at = created_at;
"""
# Schema 3 -> 4: external ids (no prompt has any yet).
_MIGRATE_3_TO_4 = _EXTERNAL_IDS
MIGRATIONS = {1: _MIGRATE_1_TO_2, 2: _MIGRATE_2_TO_3, 3: _MIGRATE_3_TO_4}  # from schema version N to N + 1


class _TicketLock:
    """A first-come, first-served lock: this process's writers take turns instead of racing SQLite's
    sleep-and-retry busy handler, which can starve one of them for seconds."""

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._abandoned: set[int] = set()  # tickets whose holder stopped waiting (interrupted)

    def __enter__(self) -> None:
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            try:
                while ticket != self._serving:
                    self._turns.wait()
            except BaseException:
                if ticket == self._serving:
                    self._advance()
                else:
                    self._abandoned.add(ticket)
                raise

    def __exit__(self, *_: object) -> None:
        with self._turns:
            self._advance()

    def _advance(self) -> None:
        self._serving += 1
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1
        self._turns.notify_all()


def to_json(value: Any) -> str:
    """JSON text for a column; ASCII-escaped, so any string the caller sent round-trips exactly."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise InvalidRequest("A value is NaN or infinite, which JSON cannot hold.") from None


class Database:
    """One SQLite file shared by the store adapters of infra/sqlite/."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writers = _TicketLock()
        _create_private(self.path)
        with translated("open"):
            self._migrate(self._connection())

    # --- connections ----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        check_store_read()  # every statement starts here: a render tried from the caches alone stops (core.store_reads)
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                         timeout=BUSY_TIMEOUT_MS / 1000)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()
        self._local = threading.local()

    # --- statements -----------------------------------------------------------------------------

    def one(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with translated("read"):
            row: sqlite3.Row | None = self._connection().execute(sql, parameters).fetchone()
        return row

    def all(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with translated("read"):
            return self._connection().execute(sql, parameters).fetchall()

    @contextlib.contextmanager
    def write(self, operation: str = "write") -> Iterator[sqlite3.Connection]:
        """One logical write: a transaction that takes the file's write lock first, committed or rolled back whole.

        Writers in this process queue in turn; other processes wait on the file lock (busy_timeout).
        """
        connection = self._connection()
        with self._writers, translated(operation):
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # --- health ---------------------------------------------------------------------------------

    def check(self) -> None:
        """Raises StoreDamaged unless SQLite's quick check finds the file intact."""
        with translated("check"):
            problems = [row[0] for row in self._connection().execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise StoreDamaged(f"{self.path} is damaged ({'; '.join(problems[:3])}). Nothing was changed; restore it "
                               "from a backup, or move it aside to start empty.")

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Creates the schema in a new file; refuses, without writing a byte, a file that is not ours.

        WAL mode is set only once the file is known to be a cuecard store (it stays set in the file).
        """
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreDamaged(f"{self.path} was written by a newer cuecard (schema {version}); upgrade cuecard.")
        if version:
            connection.execute("PRAGMA journal_mode = WAL")
            if version < SCHEMA_VERSION:
                self._upgrade(connection)
            return
        if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreDamaged(f"{self.path} is an SQLite file but not a cuecard store; nothing was changed.")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("BEGIN IMMEDIATE")
        try:
            if connection.execute("PRAGMA user_version").fetchone()[0] == 0:  # another process may have won
                for statement in filter(str.strip, SCHEMA.split(";")):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _upgrade(self, connection: sqlite3.Connection) -> None:
        """Brings an older cuecard file to SCHEMA_VERSION, all steps in one transaction (all or nothing).

        Foreign keys are off meanwhile, as SQLite's table-rebuild recipe requires (dropping `entities`
        would otherwise check or cascade the versions that refer to it); `foreign_key_check` then
        proves the rebuilt tables still satisfy them before the commit.
        """
        connection.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set it before
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                version = connection.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
                while version < SCHEMA_VERSION:
                    for statement in filter(str.strip, MIGRATIONS[version].split(";")):
                        connection.execute(statement)
                    version += 1
                    connection.execute(f"PRAGMA user_version = {version}")
                broken = connection.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreDamaged(f"{self.path} could not be upgraded: {len(broken)} row(s) break a foreign key."
                                       " Nothing was changed.")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        finally:
            connection.execute("PRAGMA foreign_keys = ON")


def _create_private(path: Path) -> None:
    """The data dir 0700 and the database file 0600, created before SQLite opens it."""
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        os.chmod(directory, 0o700)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _check_header(path)
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return
    os.fsync(fd)
    os.close(fd)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _check_header(path: Path) -> None:
    with open(path, "rb") as handle:
        header = handle.read(len(_HEADER))
    if header and header != _HEADER:
        raise StoreDamaged(f"{path} is not an SQLite database (damaged, or another file). Nothing was changed; "
                           "restore it from a backup, or move it aside to start empty.")


# --- the one mapping from sqlite3 errors to core errors -----------------------------------------

_BUSY_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")
_DAMAGE_MESSAGES = ("malformed", "not a database", "disk image", "file is encrypted")


@contextlib.contextmanager
def translated(operation: str) -> Iterator[None]:
    try:
        yield
    except UnicodeEncodeError:
        raise InvalidRequest("A text field holds a lone surrogate (such as \\ud800), which is not valid Unicode "
                             "and cannot be stored.") from None
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"The {operation} conflicts with stored data ({exc}).") from exc
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if any(message in text for message in _BUSY_MESSAGES):
            raise StoreUnavailable("The local store is busy with another writer; retry shortly.") from exc
        if any(message in text for message in _DAMAGE_MESSAGES):
            raise StoreDamaged(f"The local store file is damaged ({text}); it was not changed.") from exc
        raise StoreUnavailable(f"The local store failed ({text}).") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreDamaged(f"The local store file is damaged ({exc}); it was not changed.") from exc
