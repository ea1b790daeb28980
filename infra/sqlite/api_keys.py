"""ApiKeyStore on SQLite: keys are kept as hashes only."""

from __future__ import annotations

import json
import sqlite3
from typing import Iterable

from core.errors import NotFound
from core.models import ApiKeyRecord, Scope
from infra.sqlite.database import Database, to_json


def key_from_row(row: sqlite3.Row) -> ApiKeyRecord:
    return ApiKeyRecord(key_hash=row["key_hash"], key_id=row["key_id"], name=row["name"],
                        scopes=frozenset(Scope(scope) for scope in json.loads(row["scopes"])),
                        created_at=row["created_at"], prefix=row["prefix"], revoked=bool(row["revoked"]))


def upsert_key(connection: sqlite3.Connection, record: ApiKeyRecord) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO api_keys (key_hash, key_id, name, scopes, created_at, prefix, revoked)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (record.key_hash, record.key_id, record.name, to_json(sorted(scope.value for scope in record.scopes)),
         record.created_at, record.prefix, int(record.revoked)),
    )


class SqliteApiKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put_key(self, record: ApiKeyRecord) -> None:
        with self._db.write("put_key") as connection:
            upsert_key(connection, record)

    def get_key(self, key_hash: str) -> ApiKeyRecord | None:
        row = self._db.one("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
        return key_from_row(row) if row is not None else None

    def list_keys(self) -> Iterable[ApiKeyRecord]:
        return [key_from_row(row) for row in self._db.all("SELECT * FROM api_keys ORDER BY created_at, key_id")]

    def revoke_key(self, key_id: str) -> None:
        with self._db.write("revoke_key") as connection:
            if connection.execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,)).rowcount == 0:
                raise NotFound(f"API key {key_id} not found")
