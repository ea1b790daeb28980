"""The embedded DynamoDB: loopback only, one per process, and a journal that survives kill -9."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.errors import PromptNotFound
from core.models import ApiKeyRecord, Kind, Scope
from core.references import parse_reference
from infra.dynamodb_client import dynamodb_client
from infra.dynamodb_store import DynamoStore
from infra.journal import Journal, JournalCorrupt
from infra.local_dynamodb import JOURNAL_NAME, LocalDynamoDB
from tests.integration.builders import append, create, new_label
from tests.integration.embedded_process import embedded_server, kill_9

TABLE = "cuecard"


def store_at(endpoint: str) -> DynamoStore:
    return DynamoStore(dynamodb_client("us-east-1", endpoint), TABLE)


API_KEY = ApiKeyRecord(
    key_hash=hashlib.sha256(b"ck-secret").hexdigest(), key_id="k1", name="ci", scopes=frozenset({Scope.WRITE}),
    created_at="2025-01-01T00:00:00.000Z", prefix="ck-secr",
)


def test_everything_survives_kill_9(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with embedded_server(data_dir, log) as (process, endpoint):
        store = store_at(endpoint)
        prompt = create(store, string="v1", parameters={"temperature": 0.5})
        append(store, Kind.PROMPT, prompt.id, "v2")
        append(store, Kind.PROMPT, prompt.slug, "v3")
        store.publish(Kind.PROMPT, prompt.id, 2)
        label = store.create_label(new_label("canary"))
        store.set_label(prompt.id, 3, "canary")
        store.set_label(prompt.id, 2, "production")
        partial = create(store, Kind.PARTIAL, "footer", string="-- {{name}}")
        gone = create(store, name="gone")
        store.delete(Kind.PROMPT, gone.id)
        store.put_key(API_KEY)
        kill_9(process)

    with embedded_server(data_dir, log) as (process, endpoint):
        store = store_at(endpoint)
        head = store.get_entity(Kind.PROMPT, prompt.slug)
        assert (head.latest_version, head.published_version, head.labels) == (3, 2, {"canary": 3, "production": 2})
        assert [v.string for v in store.list_versions(Kind.PROMPT, prompt.id)] == ["v3", "v2", "v1"]
        assert store.resolve(Kind.PROMPT, parse_reference(prompt.slug)).string == "v2"
        assert store.resolve(Kind.PROMPT, parse_reference(f"{prompt.slug}@canary")).version == 3
        assert store.resolve(Kind.PROMPT, parse_reference(f"{prompt.id}@1")).parameters == {"temperature": 0.5}
        assert store.resolve(Kind.PARTIAL, parse_reference(partial.slug)).string == "-- {{name}}"
        assert store.get_label("canary") == label
        assert store.get_key(API_KEY.key_hash) == API_KEY
        with pytest.raises(PromptNotFound):
            store.resolve(Kind.PROMPT, parse_reference(gone.slug))
        append(store, Kind.PROMPT, prompt.id, "v4")  # written after the restart's compaction
        kill_9(process)

    with embedded_server(data_dir, log) as (process, endpoint):
        store = store_at(endpoint)
        assert store.resolve(Kind.PROMPT, parse_reference(f"{prompt.id}@latest")).string == "v4"
        assert [e.name for e in store.list_entities(Kind.PROMPT)] == ["greet"]
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_a_torn_journal_tail_is_ignored(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with embedded_server(data_dir, log) as (process, endpoint):
        prompt = create(store_at(endpoint), string="kept")
        kill_9(process)
    journal = data_dir / JOURNAL_NAME
    with open(journal, "ab") as handle:  # as if killed in the middle of a write
        handle.write(b'{"target":"DynamoDB_20120810.PutItem","region":"us-east-1","body":"{\\"Table')

    with embedded_server(data_dir, log) as (process, endpoint):
        store = store_at(endpoint)
        assert store.resolve(Kind.PROMPT, parse_reference(prompt.slug)).string == "kept"
        append(store, Kind.PROMPT, prompt.id, "after the tear")
        kill_9(process)
    assert all(json.loads(line) for line in journal.read_bytes().splitlines())

    with embedded_server(data_dir, log) as (process, endpoint):
        assert store_at(endpoint).resolve(Kind.PROMPT, parse_reference(f"{prompt.id}@2")).string == "after the tear"


def test_journal_drops_a_torn_tail_and_refuses_corruption(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.open()
    journal.append({"n": 1})
    journal.append({"n": 2})
    journal.close()
    good = journal.path.read_bytes()

    journal.path.write_bytes(good + b'{"n": 3')
    assert journal.read() == [{"n": 1}, {"n": 2}]
    assert journal.path.read_bytes() == good  # cut off, so the next append starts a clean line

    journal.path.write_bytes(good + b'{"n": \n')
    assert journal.read() == [{"n": 1}, {"n": 2}]

    journal.path.write_bytes(b'{"n": 1}\nnot json\n{"n": 3}\n')
    with pytest.raises(JournalCorrupt, match="line 2"):
        journal.read()


def test_only_dynamodb_is_served_and_only_on_loopback(local_dynamodb: LocalDynamoDB) -> None:
    assert local_dynamodb.endpoint_url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(local_dynamodb.endpoint_url + "/moto-api/reset", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == 400


def test_one_embedded_server_per_process(local_dynamodb: LocalDynamoDB) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        LocalDynamoDB().start()
