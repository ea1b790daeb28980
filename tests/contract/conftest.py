"""One `backend` fixture, parametrized over every store backend; the contract tests take it and nothing else.

- memory:   the unit tests' fakes (tests/unit/*fakes.py)
- dynamodb: `infra.dynamodb_stores.dynamodb_stores` on moto (tests/conftest.py's `settings`: a table per test)
- sqlite:   `infra.sqlite.open_sqlite_stores` on a file in tmp_path

Each backend's job ledger runs on a settable `Clock`. `versions_kept` peeks under the port at every
version an entity has stored, deleted or not (number -> string), to see that delete hides but keeps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from core.models import Kind
from infra.stores import Stores

BACKENDS = ("memory", "dynamodb", "sqlite")
VersionsKept = Callable[[Kind, str], dict[int, str]]
Opener = Callable[[], Stores]


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    name: str
    stores: Stores
    clock: Clock
    versions_kept: VersionsKept
    open: Opener  # another Stores on the same data (a second process or a cold container)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    clock = Clock()
    opened: list[Stores] = []
    build = {"memory": _memory, "dynamodb": _dynamodb, "sqlite": _sqlite}[request.param]
    versions_kept, open_stores = build(request, tmp_path, clock)

    def open_more() -> Stores:
        opened.append(open_stores())
        return opened[-1]

    try:
        yield Backend(request.param, open_more(), clock, versions_kept, open_more)
    finally:
        for stores in reversed(opened):
            stores.close()


def _memory(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> tuple[VersionsKept, Opener]:
    from tests.unit.fakes import InMemoryStore
    from tests.unit.job_fakes import MemoryLedger
    from tests.unit.virtual_key_fakes import InMemorySecretStore, InMemoryVirtualKeyStore

    store = InMemoryStore()
    stores = Stores(templates=store, labels=store, collections=store, api_keys=store, virtual_keys=InMemoryVirtualKeyStore(),
                    secrets=InMemorySecretStore(), jobs=MemoryLedger(clock))

    def versions_kept(kind: Kind, entity_id: str) -> dict[int, str]:
        return {number: version.string for number, version in store.versions.get((kind, entity_id), {}).items()}

    return versions_kept, lambda: stores


def _dynamodb(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> tuple[VersionsKept, Opener]:
    from infra.dynamodb_job_ledger import DynamoJobLedger
    from infra.dynamodb_stores import dynamodb_stores

    # Secrets Manager is shared by every test on the session's server: a prefix of this test's own.
    settings = dataclasses.replace(request.getfixturevalue("settings"), secret_prefix=f"contract-{uuid.uuid4().hex}/")
    client = _dynamodb_client(settings)

    def open_stores() -> Stores:
        stores = dynamodb_stores(settings)
        return dataclasses.replace(stores, jobs=DynamoJobLedger(stores.jobs.table, clock=clock))

    def versions_kept(kind: Kind, entity_id: str) -> dict[int, str]:
        found = client.query(
            TableName=settings.table_name, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :versions)",
            ExpressionAttributeValues={":pk": {"S": f"{kind.value}#{entity_id}"}, ":versions": {"S": "V#"}},
        )["Items"]
        return {int(item["version"]["N"]): item["string"]["S"] for item in found}

    return versions_kept, open_stores


def _dynamodb_client(settings: Any) -> Any:
    try:
        from infra.dynamodb_client import dynamodb_client
    except ImportError:
        from infra.aws_clients import dynamodb_client  # type: ignore[no-redef]
    return dynamodb_client(settings.region, settings.dynamodb_endpoint)


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> tuple[VersionsKept, Opener]:
    try:
        from infra.sqlite import open_sqlite_stores
    except ImportError as exc:
        pytest.skip(f"the SQLite backend is not there yet: `from infra.sqlite import open_sqlite_stores` fails ({exc})")
    path = tmp_path / "cuecard.db"

    def versions_kept(kind: Kind, entity_id: str) -> dict[int, str]:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as peek:
            rows = peek.execute("SELECT version, content FROM versions WHERE kind = ? AND entity_id = ?",
                                (kind.value, entity_id)).fetchall()
        return {number: json.loads(content)["string"] for number, content in rows}

    return versions_kept, lambda: open_sqlite_stores(path, clock=clock)
