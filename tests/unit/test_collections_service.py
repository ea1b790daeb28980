"""CollectionService on the in-memory fakes: Portkey's /collections shapes, `default`, and the 409 for a
collection that still holds prompts or partials."""

from __future__ import annotations

from itertools import count

import pytest

from core.collections import CollectionService, slug_for
from core.errors import Conflict, InvalidRequest, NotFound
from core.models import DEFAULT_COLLECTION_ID
from core.service import PromptService
from tests.unit.fakes import InMemoryStore

COLLECTION_FIELDS = {"id", "name", "workspace_id", "slug", "parent_collection_id", "is_default", "status",
                     "created_at", "last_updated_at"}  # Portkey's Collection schema
DETAILS_FIELDS = {"child_collections_count", "prompts_count", "child_collections_last_updated_at",
                  "prompts_last_updated_at"}  # CollectionDetails


@pytest.fixture
def parts() -> tuple[CollectionService, PromptService, InMemoryStore]:
    ticks = count()
    store = InMemoryStore()
    service = CollectionService(store, store, now=lambda: f"2026-01-01T00:00:{next(ticks):02d}.000Z")
    return service, PromptService(store, store), store


def test_create_answers_id_and_slug_and_the_collection_reads_back(parts) -> None:
    collections, _, _ = parts
    made = collections.create({"name": "Marketing emails", "workspace_id": "ws-1"})

    assert set(made) == {"id", "slug", "object"} and made["object"] == "collection"
    assert made["slug"] == "marketing-emails"
    got = collections.get(made["slug"])
    assert COLLECTION_FIELDS | {"collection_details", "child_collections", "object"} == set(got)
    assert got == collections.get(made["id"])
    assert (got["id"], got["name"], got["workspace_id"], got["is_default"], got["status"]) == (
        made["id"], "Marketing emails", "ws-1", False, "active")
    assert got["created_at"] == got["last_updated_at"] and got["parent_collection_id"] is None
    assert got["child_collections"] == []
    assert got["collection_details"] == {"child_collections_count": 0, "prompts_count": 0,
                                         "child_collections_last_updated_at": None, "prompts_last_updated_at": None}


def test_default_always_exists_and_is_built_in(parts) -> None:
    collections, _, _ = parts
    listed = collections.list_collections({})
    assert listed["object"] == "list" and listed["total"] == 1
    [default] = listed["data"]
    assert (default["id"], default["slug"], default["is_default"]) == (DEFAULT_COLLECTION_ID, "default", True)
    assert collections.get(DEFAULT_COLLECTION_ID)["slug"] == collections.get("default")["slug"] == "default"
    assert COLLECTION_FIELDS | {"collection_details", "object"} == set(default)
    with pytest.raises(Conflict, match="default collection") as renamed:
        collections.update("default", {"name": "Other"})
    with pytest.raises(Conflict, match="default collection"):
        collections.delete("default")
    assert renamed.value.code == "default_collection"
    assert collections.create({"name": "Default"})["slug"].startswith("collection-")  # never the built-in's slug


def test_list_searches_pages_and_counts(parts) -> None:
    collections, prompts, _ = parts
    a = collections.create({"name": "Alpha"})
    b = collections.create({"name": "Beta", "parent_collection_id": a["slug"]})
    prompts.create_prompt({"name": "p", "string": "hi", "collection_id": a["id"]})
    prompts.create_prompt({"name": "q", "string": "hi", "collection_id": "alpha"})

    everything = collections.list_collections({})
    assert [c["name"] for c in everything["data"]] == ["Default", "Alpha", "Beta"]
    alpha = everything["data"][1]["collection_details"]
    assert (alpha["prompts_count"], alpha["child_collections_count"]) == (2, 1)
    assert alpha["prompts_last_updated_at"] is not None and alpha["child_collections_last_updated_at"] is not None
    assert everything["data"][2]["parent_collection_id"] == a["id"]
    assert collections.list_collections({"search": "bet"})["data"][0]["id"] == b["id"]
    page = collections.list_collections({"page_size": "1", "current_page": "1"})
    assert page["total"] == 3 and [c["id"] for c in page["data"]] == [a["id"]]
    [child] = collections.get(a["id"])["child_collections"]
    assert set(child) == {"id", "name", "last_updated_at", "collection_details"} and child["id"] == b["id"]
    with pytest.raises(NotFound):
        collections.create({"name": "Orphan", "parent_collection_id": "no-such-collection"})


def test_update_renames_and_keeps_the_slug(parts) -> None:
    collections, _, _ = parts
    made = collections.create({"name": "Alpha"})
    before = collections.get(made["id"])

    assert collections.update(made["slug"], {"name": "Renamed"}) == {}

    after = collections.get(made["id"])
    assert (after["name"], after["slug"]) == ("Renamed", "alpha")
    assert after["last_updated_at"] > before["last_updated_at"] and after["created_at"] == before["created_at"]
    for body, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "x", "slug": "y"}, "slug")):
        with pytest.raises(InvalidRequest) as caught:
            collections.update(made["id"], body)
        assert caught.value.param == field


def test_a_collection_holding_prompts_or_partials_cannot_be_deleted(parts) -> None:
    collections, prompts, _ = parts
    made = collections.create({"name": "Alpha"})
    prompt = prompts.create_prompt({"name": "p", "string": "hi", "collection_id": made["id"]})
    partial = prompts.create_partial({"name": "part", "string": "x", "collection_id": "alpha"})

    with pytest.raises(Conflict, match="1 prompt\\(s\\) and 1 partial\\(s\\)") as caught:
        collections.delete(made["id"])
    assert caught.value.code == "collection_not_empty"

    prompts.delete_prompt(prompt["id"])
    prompts.delete_partial(partial["id"], force=True)
    assert collections.delete("alpha") == {}
    with pytest.raises(NotFound):
        collections.get(made["id"])


@pytest.mark.parametrize(("name", "slug"), [("Team A", "team-a"), ("  ##  ", "collection-abc"),
                                            ("default", "collection-abc"), ("Ünïcode Names", "n-code-names")])
def test_slugs_come_from_names(name: str, slug: str) -> None:
    assert slug_for(name, "abc") == slug
