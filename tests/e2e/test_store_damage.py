"""A damaged or foreign cuecard.db is refused loudly and never repaired: `cuecard serve` prints one
`cuecard: ...` line, no traceback, exits 2 and leaves the file's bytes exactly as they were."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from infra.sqlite import open_sqlite_stores
from infra.sqlite.database import SCHEMA_VERSION
from tests.contract.support import create
from tests.e2e.conftest import DATABASE_NAME, free_port, run_cli, serve_env

pytestmark = pytest.mark.e2e


def cuecard_store(data_dir: Path, prompts: int = 3) -> Path:
    """A data dir whose store holds `prompts` prompts of ~2 KB each; the path of its file, closed cleanly."""
    path = data_dir / DATABASE_NAME
    stores = open_sqlite_stores(path)
    try:
        for number in range(prompts):
            create(stores.templates, string=f"{number} " + "lorem ipsum " * 170)
    finally:
        stores.close()
    return path


def quick_check(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        try:
            return [row[0] for row in db.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            return [str(exc)]


def header_overwritten(data_dir: Path) -> str:
    path = cuecard_store(data_dir)
    with open(path, "r+b") as handle:
        handle.write(b"this is not it!\x00")
    return "not an SQLite database"


def data_page_corrupted(data_dir: Path) -> str:
    path = cuecard_store(data_dir, prompts=40)
    with contextlib.closing(sqlite3.connect(path)) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'versions'").fetchone()[0]
    assert root > 1 and path.stat().st_size > 4 * page_size
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page_size)  # the versions table's root page, past the first page
        handle.write(random.Random(7).randbytes(page_size))
    assert quick_check(path) != ["ok"]
    return "damaged"


def foreign_sqlite_file(data_dir: Path) -> str:
    data_dir.mkdir(mode=0o700)
    with contextlib.closing(sqlite3.connect(data_dir / DATABASE_NAME)) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine, not cuecard''s')")
        db.commit()
    return "not a cuecard store"


def newer_schema(data_dir: Path) -> str:
    path = cuecard_store(data_dir)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    return "newer cuecard"


@pytest.mark.parametrize("damage", [header_overwritten, data_page_corrupted, foreign_sqlite_file, newer_schema])
def test_serve_refuses_the_file_and_leaves_it_as_it_is(damage: Callable[[Path], str], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    expected = damage(data_dir)
    path = data_dir / DATABASE_NAME
    before = path.read_bytes()

    done = run_cli("serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data-dir", str(data_dir),
                   cwd=tmp_path, env=serve_env(), timeout=30)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "serving on" not in done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cuecard: "), done.stderr
    assert expected in lines[0]
    assert path.read_bytes() == before
    assert not (data_dir / "served").exists()


def test_keys_commands_refuse_a_damaged_store_too(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    header_overwritten(data_dir)
    before = (data_dir / DATABASE_NAME).read_bytes()
    done = run_cli("keys", "create", "--name", "x", "--data-dir", str(data_dir), cwd=tmp_path, env=serve_env())
    assert done.returncode == 2 and done.stdout == ""  # no key shown that was not stored
    assert done.stderr.startswith("cuecard: ") and len(done.stderr.splitlines()) == 1, done.stderr
    assert (data_dir / DATABASE_NAME).read_bytes() == before
