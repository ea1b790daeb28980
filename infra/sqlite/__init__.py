"""The embedded store: every store port on one SQLite file, for `cuecard serve` and single-node hosting."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from core.service import utc_now
from infra.sqlite.api_keys import SqliteApiKeyStore
from infra.sqlite.collections import SqliteCollectionStore
from infra.sqlite.database import Database
from infra.sqlite.jobs import SqliteJobLedger
from infra.sqlite.labels import SqliteLabelStore
from infra.sqlite.secrets import SqliteSecretStore
from infra.sqlite.templates import SqliteTemplateStore
from infra.sqlite.virtual_keys import SqliteVirtualKeyStore
from infra.stores import Stores

DATABASE_NAME = "cuecard.db"


def open_sqlite_stores(path: Path, *, clock: Callable[[], float] = time.time, secret_prefix: str = "cuecard/",
                       job_ttl_seconds: int = 86_400) -> Stores:
    """Every port on the SQLite file at `path` (created 0600, its folder 0700, if missing)."""
    return stores_on(Database(path), clock=clock, secret_prefix=secret_prefix, job_ttl_seconds=job_ttl_seconds)


def stores_on(db: Database, *, clock: Callable[[], float] = time.time, secret_prefix: str = "cuecard/",
              job_ttl_seconds: int = 86_400) -> Stores:
    return Stores(
        templates=SqliteTemplateStore(db, now=utc_now),
        labels=SqliteLabelStore(db, now=utc_now),
        collections=SqliteCollectionStore(db),
        api_keys=SqliteApiKeyStore(db),
        virtual_keys=SqliteVirtualKeyStore(db),
        secrets=SqliteSecretStore(db, secret_prefix, now=utc_now),
        jobs=SqliteJobLedger(db, ttl_seconds=job_ttl_seconds, clock=clock),
        close=db.close,
    )


__all__ = ["DATABASE_NAME", "Database", "open_sqlite_stores", "stores_on"]
