"""Who made each change: the store writes `actor` on every HEAD change and on each new V# item.

The HTTP layer sets core.actor.current_actor after auth; admin routes run the service in Starlette's
thread pool, so the last test checks that the context variable reaches the store from there.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from core.actor import SYSTEM_ACTOR, current_actor, describe_key
from core.auth import mint_key
from core.models import Kind, Scope, VirtualKey
from core.service import utc_now
from infra import dynamo_items as items
from infra.dynamodb_table import DynamoTable
from infra.dynamodb_virtual_keys import DynamoVirtualKeyStore, binding_key
from infra.settings import Settings
from tests.integration.builders import append, create, new_label

ALICE = "api-key:aaaa (alice)"
BOB = "api-key:bbbb (bob)"


@pytest.fixture
def as_actor() -> Iterator[Any]:
    tokens = []

    def set_actor(actor: str | None) -> None:
        tokens.append(current_actor.set(actor))

    yield set_actor
    for token in reversed(tokens):
        current_actor.reset(token)


def raw(table: DynamoTable, kind: Kind, entity_id: str, sk: str) -> dict:
    item = table.get(items.key(items.entity_pk(kind, entity_id), sk))
    assert item is not None
    return item


def head_actor(table: DynamoTable, entity_id: str, kind: Kind = Kind.PROMPT) -> str | None:
    return items.actor_of(raw(table, kind, entity_id, items.HEAD_SK))


def version_actor(table: DynamoTable, entity_id: str, number: int, kind: Kind = Kind.PROMPT) -> str | None:
    return items.actor_of(raw(table, kind, entity_id, items.version_sk(number)))


def test_without_an_actor_the_store_records_system(templates, table) -> None:
    assert current_actor.get() is None
    entity = create(templates)
    assert head_actor(table, entity.id) == SYSTEM_ACTOR
    assert version_actor(table, entity.id, 1) == SYSTEM_ACTOR


def test_every_head_change_records_its_actor_and_versions_keep_their_author(templates, table, as_actor) -> None:
    as_actor(ALICE)
    entity = create(templates, Kind.PROMPT)
    assert (head_actor(table, entity.id), version_actor(table, entity.id, 1)) == (ALICE, ALICE)
    steps = [
        lambda: append(templates, Kind.PROMPT, entity.id, "v2"),
        lambda: templates.publish(Kind.PROMPT, entity.id, 2),
        lambda: templates.set_label(entity.id, 2, "production"),
        lambda: templates.update_entity(Kind.PROMPT, entity.id, {"name": "renamed"}),
        lambda: templates.delete(Kind.PROMPT, entity.id),
    ]
    for number, step in enumerate(steps):
        actor = f"api-key:{number:04d} (step)"
        as_actor(actor)
        revision = items.revision_of(raw(table, Kind.PROMPT, entity.id, items.HEAD_SK))
        step()
        head = raw(table, Kind.PROMPT, entity.id, items.HEAD_SK)
        assert items.revision_of(head) == revision + 1
        assert items.actor_of(head) == actor
    assert version_actor(table, entity.id, 1) == ALICE  # immutable: its author stays
    assert version_actor(table, entity.id, 2) == "api-key:0000 (step)"


def test_records_read_back_unchanged(templates, as_actor) -> None:
    as_actor(ALICE)
    entity = create(templates, Kind.PARTIAL)
    version = templates.get_version(Kind.PARTIAL, entity.id, 1)
    assert version.string == "Hello {{name}}"
    assert templates.get_entity(Kind.PARTIAL, entity.id).latest_version == 1


def test_a_label_rename_moving_pointers_records_who_renamed(templates, labels, table, as_actor) -> None:
    as_actor(ALICE)
    label = labels.create_label(new_label("canary"))
    entity = create(templates)
    templates.set_label(entity.id, 1, "canary")
    as_actor(BOB)
    labels.update_label(label.id, name="canary-2", description=None, color_code=None)
    head = raw(table, Kind.PROMPT, entity.id, items.HEAD_SK)
    assert set(items.entity_from_item(head).labels) == {"canary-2"}
    assert items.actor_of(head) == BOB


def test_virtual_key_items_record_their_actor(table, as_actor) -> None:
    as_actor(ALICE)
    bindings = DynamoVirtualKeyStore(table)
    now = utc_now()
    binding = bindings.create_virtual_key(VirtualKey(
        id="5b0f3c1e-2d4a-4e8b-9c6d-7a1b2c3d4e5f", slug="openai-main", name="openai", provider="openai",
        created_at=now, updated_at=now))
    as_actor(BOB)
    bindings.update_virtual_key(binding.id, {"note": "rotated"})
    item = table.get(binding_key(binding.id))
    assert item["actor"] == {"S": BOB}


def test_the_api_keys_actor_reaches_the_store_through_the_thread_pool(settings: Settings, table, api_keys) -> None:
    from handlers.container import build_container

    container = build_container(settings)
    alice = mint_key("alice", frozenset({Scope.WRITE}), utc_now())
    bob = mint_key("bob", frozenset({Scope.ADMIN}), utc_now())
    for minted in (alice, bob):
        api_keys.put_key(minted.record)  # on the container's table
    client = TestClient(container.asgi_app())

    created = client.post("/v1/prompts", headers={"x-portkey-api-key": alice.key},
                          json={"name": "Greet", "string": "Hi {{name}}", "parameters": {}})
    assert created.status_code == 200, created.text
    prompt_id = created.json()["id"]
    alice_actor = describe_key("alice", alice.record.key_id)
    assert head_actor(table, prompt_id) == alice_actor
    assert version_actor(table, prompt_id, 1) == alice_actor

    updated = client.put(f"/v1/prompts/{prompt_id}", headers={"authorization": f"Bearer {bob.key}"},
                         json={"string": "Hello {{name}}", "parameters": {}})
    assert updated.status_code == 200, updated.text
    published = client.put(f"/v1/prompts/{prompt_id}/makeDefault", headers={"x-portkey-api-key": bob.key},
                           json={"version": 2})
    assert published.status_code == 200, published.text
    bob_actor = describe_key("bob", bob.record.key_id)
    assert head_actor(table, prompt_id) == bob_actor
    assert version_actor(table, prompt_id, 2) == bob_actor
    assert version_actor(table, prompt_id, 1) == alice_actor
    assert current_actor.get() is None  # nothing leaked into the test's own context
