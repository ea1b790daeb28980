"""`portkey-ai`'s `collections` resource against `cuecard serve`, sync and async: every call answers, and
every field Portkey's spec documents reads back.

Field lists: Portkey-AI/openapi, openapi.yaml, components.schemas `Collection`, `CollectionDetails`,
`ChildCollection` (and `CollectionWithDetails`, `CollectionWithChildCollections`); paths `/collections`
(POST answers `id` and `slug`) and `/collections/{collectionId}`."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from portkey_ai import AsyncPortkey, Portkey

from core.models import DEFAULT_COLLECTION_ID

pytestmark = pytest.mark.e2e

COLLECTION = {"id", "name", "workspace_id", "slug", "parent_collection_id", "is_default", "status", "created_at",
              "last_updated_at"}
DETAILS = {"child_collections_count", "prompts_count", "child_collections_last_updated_at", "prompts_last_updated_at"}
CHILD = {"id", "name", "last_updated_at", "collection_details"}
CHAT = json.dumps([{"role": "user", "content": "Hi"}])


def plain(answer: Any) -> dict[str, Any]:
    return answer if isinstance(answer, dict) else answer.model_dump()


def scenario(client: Any, run: Any) -> None:
    """One walk through every collections call; `run` awaits the async client's calls."""
    name = f"Team {uuid.uuid4().hex[:8]}"
    made = plain(run(client.collections.create(name=name, workspace_id="ws-e2e")))
    assert {"id", "slug"} <= set(made) and str(uuid.UUID(made["id"])) == made["id"]
    child = plain(run(client.collections.create(name=f"{name} child", parent_collection_id=made["slug"])))

    got = plain(run(client.collections.retrieve(made["id"])))
    assert COLLECTION | {"collection_details", "child_collections"} <= set(got)
    assert (got["id"], got["slug"], got["name"], got["workspace_id"]) == (made["id"], made["slug"], name, "ws-e2e")
    assert (got["is_default"], got["status"], got["parent_collection_id"]) == (False, "active", None)
    assert DETAILS <= set(got["collection_details"]) and got["collection_details"]["child_collections_count"] == 1
    [listed_child] = got["child_collections"]
    assert CHILD <= set(listed_child) and listed_child["id"] == child["id"]
    assert plain(run(client.collections.retrieve(made["slug"])))["id"] == made["id"]

    listed = plain(run(client.collections.list(workspace_id="ws-e2e", search=name, current_page=0, page_size=10)))
    assert listed["total"] == 2 and {c["id"] for c in listed["data"]} == {made["id"], child["id"]}
    for item in listed["data"]:
        assert COLLECTION | {"collection_details"} <= set(item) and DETAILS <= set(item["collection_details"])
    default = plain(run(client.collections.list()))["data"][0]
    assert (default["id"], default["is_default"]) == (DEFAULT_COLLECTION_ID, True)  # a UUID; "default" is its slug

    run(client.collections.update(made["id"], name=f"{name} renamed"))
    renamed = plain(run(client.collections.retrieve(made["slug"])))
    assert renamed["name"] == f"{name} renamed" and renamed["last_updated_at"] >= got["last_updated_at"]

    run(client.collections.delete(child["id"]))
    run(client.collections.delete(made["slug"]))
    remaining = {c["id"] for c in plain(run(client.collections.list(search=name)))["data"]}
    assert remaining == set()


def test_collections_through_the_sync_sdk(server) -> None:
    client = Portkey(api_key=server.admin_key, base_url=server.base_url)
    scenario(client, lambda answer: answer)


def test_collections_through_the_async_sdk(server) -> None:
    client = AsyncPortkey(api_key=server.admin_key, base_url=server.base_url)

    async def walk() -> None:
        """The same scenario in a worker thread; each call is awaited on this loop before the next is made."""
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(scenario, client, lambda call: asyncio.run_coroutine_threadsafe(call, loop).result())

    asyncio.run(walk())


def test_a_collection_holding_a_prompt_is_a_409_through_the_sdk(server) -> None:
    client = Portkey(api_key=server.admin_key, base_url=server.base_url)
    made = plain(client.collections.create(name=f"Busy {uuid.uuid4().hex[:8]}"))
    prompt = plain(client.prompts.create(name="held", collection_id=made["id"], string=CHAT, parameters={}))
    with pytest.raises(Exception) as caught:
        client.collections.delete(made["id"])
    assert getattr(caught.value, "status_code", None) == 409
    client.prompts.delete(prompt["id"])
    client.collections.delete(made["id"])
