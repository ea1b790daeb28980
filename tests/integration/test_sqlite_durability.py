"""The SQLite store keeps every acknowledged write through `kill -9`.

A writer process (this module run as `python -m tests.integration.test_sqlite_durability DB`) stores
a small story through the SQLite stores (versions, a publish, labels, a partial, a delete, an API key,
a provider key), prints it, then writes from two threads without end, printing `ack <thread> <n>`
after each write returns. The test SIGKILLs it mid-stream and reopens the file: the story and every
acknowledged write are there, and no write is there in part. Power loss cannot be simulated here;
the pragmas that make a returned write survive it (WAL, synchronous=FULL) are checked instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from core.errors import PromptNotFound
from core.models import Kind
from core.references import parse_reference
from infra.sqlite import Database, open_sqlite_stores, stores_on
from infra.stores import Stores
from tests.contract.support import api_key, appending, create, new_label

REPO_ROOT = Path(__file__).resolve().parents[2]
WRITER_THREADS = 2
ACKS_BEFORE_KILL = 150  # across both threads; the writer goes on until killed
SECRET = "sk-durability-provider-key-0123456789"


# --- the writer process --------------------------------------------------------------------------


def write_story(stores: Stores) -> dict[str, str]:
    templates = stores.templates
    prompt = create(templates, string="v1", name="story")
    templates.append_version(Kind.PROMPT, prompt.id, appending("v2"))
    templates.append_version(Kind.PROMPT, prompt.slug, appending("v3"))
    templates.publish(Kind.PROMPT, prompt.id, 2)
    stores.labels.create_label(new_label("canary"))
    templates.set_label(prompt.id, 3, "canary")
    templates.set_label(prompt.id, 2, "production")
    partial = create(templates, Kind.PARTIAL, string="-- {{name}}")
    gone = create(templates, name="gone")
    templates.delete(Kind.PROMPT, gone.id)
    key = api_key("ci")
    stores.api_keys.put_key(key)
    secret_ref = stores.secrets.put_secret("virtual-keys/story", SECRET)
    return {"prompt": prompt.slug, "prompt_id": prompt.id, "partial": partial.slug, "gone": gone.slug,
            "key_hash": key.key_hash, "secret_ref": secret_ref}


def write_forever(stores: Stores, thread: int, lock: threading.Lock) -> None:
    for number in range(1_000_000):  # bounded, should a writer ever outlive its test
        if number % 2:
            stores.api_keys.put_key(api_key(f"acked-{thread}-{number}"))
        else:
            create(stores.templates, string=f"acked {thread} {number}", name=f"acked-{thread}-{number}")
        with lock:
            print(f"ack {thread} {number}", flush=True)


def writer(path: Path) -> None:
    stores = open_sqlite_stores(path)
    print("story " + json.dumps(write_story(stores)), flush=True)
    lock = threading.Lock()
    threads = [threading.Thread(target=write_forever, args=(stores, number, lock)) for number in range(WRITER_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- the tests -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Killed:
    path: Path
    story: dict[str, str]
    acked: set[tuple[int, int]]  # (thread, number) of every write the writer printed before it died
    returncode: int


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Killed:
    path = tmp_path_factory.mktemp("durability") / "cuecard.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "tests.integration.test_sqlite_durability", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env)
    lines = []
    try:
        while len(lines) < ACKS_BEFORE_KILL + 1:
            line = process.stdout.readline()
            assert line, f"the writer stopped on its own:\n{process.stderr.read()}"
            lines.append(line)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        rest, errors = process.communicate(timeout=30)  # what it printed before the kill: acknowledged too
    lines.extend(rest.splitlines())
    assert lines[0].startswith("story "), lines[0] + errors
    acked = {(int(thread), int(number)) for _, thread, number in (line.split() for line in lines[1:])}
    return Killed(path, json.loads(lines[0].removeprefix("story ")), acked, process.returncode)


@pytest.fixture
def reopened(killed: Killed) -> Iterator[Stores]:
    stores = open_sqlite_stores(killed.path)
    yield stores
    stores.close()


def test_the_writer_was_killed_mid_stream(killed: Killed) -> None:
    assert killed.returncode == -signal.SIGKILL
    assert len(killed.acked) >= ACKS_BEFORE_KILL
    assert {thread for thread, _ in killed.acked} == set(range(WRITER_THREADS))


def test_every_acknowledged_write_survives_kill_9(killed: Killed, reopened: Stores) -> None:
    prompts = {entity.name: entity for entity in reopened.templates.list_entities(Kind.PROMPT)}
    keys = {record.name for record in reopened.api_keys.list_keys()}
    missing = [(thread, number) for thread, number in sorted(killed.acked)
               if f"acked-{thread}-{number}" not in (keys if number % 2 else prompts)]
    assert missing == []
    for thread, number in killed.acked:
        if number % 2 == 0:
            slug = prompts[f"acked-{thread}-{number}"].slug
            assert reopened.templates.resolve(Kind.PROMPT, parse_reference(slug)).string == f"acked {thread} {number}"
    # Beyond the acknowledged ones, at most the write each thread had under way when it was killed.
    found = {name for name in prompts.keys() | keys if name.startswith("acked-")}
    assert len(found) - len(killed.acked) <= WRITER_THREADS


def test_the_story_written_before_the_kill_is_all_there(killed: Killed, reopened: Stores) -> None:
    story, templates = killed.story, reopened.templates
    head = templates.get_entity(Kind.PROMPT, story["prompt"])
    assert (head.latest_version, head.published_version, head.labels) == (3, 2, {"canary": 3, "production": 2})
    assert [v.string for v in templates.list_versions(Kind.PROMPT, story["prompt_id"])] == ["v3", "v2", "v1"]
    assert templates.resolve(Kind.PROMPT, parse_reference(story["prompt"])).string == "v2"
    assert templates.resolve(Kind.PROMPT, parse_reference(f"{story['prompt']}@canary")).version == 3
    assert templates.resolve(Kind.PARTIAL, parse_reference(story["partial"])).string == "-- {{name}}"
    assert reopened.labels.get_label("canary").name == "canary"
    assert reopened.api_keys.get_key(story["key_hash"]).name == "ci"
    assert reopened.secrets.get_secret(story["secret_ref"]) == SECRET
    with pytest.raises(PromptNotFound):
        templates.resolve(Kind.PROMPT, parse_reference(story["gone"]))


def test_no_write_is_there_in_part(killed: Killed, reopened: Stores) -> None:
    with contextlib.closing(sqlite3.connect(killed.path)) as db:
        assert [row[0] for row in db.execute("PRAGMA quick_check")] == ["ok"]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        # Every entity has the version its latest pointer names.
        assert db.execute("SELECT count(*) FROM entities e WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE "
                          "v.kind = e.kind AND v.entity_id = e.id AND v.version = e.latest_version)").fetchone()[0] == 0
    create(reopened.templates, string="after the kill")  # and the file takes new writes


def test_every_connection_is_wal_with_synchronous_full(tmp_path: Path) -> None:
    db = Database(tmp_path / "cuecard.db")
    stores = stores_on(db)
    seen: list[tuple[str, int]] = []

    def write_and_look() -> None:
        create(stores.templates, string="pragmas")
        seen.append((db.one("PRAGMA journal_mode")[0], db.one("PRAGMA synchronous")[0]))

    try:
        write_and_look()  # this thread's connection
        other = threading.Thread(target=write_and_look)  # and another thread's own
        other.start()
        other.join()
    finally:
        stores.close()
    assert seen == [("wal", 2), ("wal", 2)]


if __name__ == "__main__":
    writer(Path(sys.argv[1]))
