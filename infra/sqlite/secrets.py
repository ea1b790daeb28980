"""SecretStore on SQLite: provider keys in the data dir's private (0600) database file.

Values leave only through `get_secret`, for a provider call; no response or log carries them.
"""

from __future__ import annotations

from typing import Callable

from core.errors import StoreUnavailable
from infra.sqlite.database import Database


class SqliteSecretStore:
    def __init__(self, db: Database, prefix: str, *, now: Callable[[], str]) -> None:
        self._db = db
        self._prefix = prefix
        self._now = now

    @property
    def prefix(self) -> str:
        return self._prefix

    def put_secret(self, name: str, value: str) -> str:
        ref = self._prefix + name
        with self._db.write("put_secret") as connection:
            connection.execute("INSERT OR REPLACE INTO secrets (name, value, updated_at) VALUES (?, ?, ?)",
                               (ref, value, self._now()))
        return ref

    def get_secret(self, ref: str) -> str:
        row = self._db.one("SELECT value FROM secrets WHERE name = ?", (ref,))
        if row is None:
            raise StoreUnavailable("The secret store has no provider key for this virtual key; set its key again.")
        return str(row["value"])

    def delete_secret(self, ref: str) -> None:
        with self._db.write("delete_secret") as connection:
            connection.execute("DELETE FROM secrets WHERE name = ?", (ref,))
