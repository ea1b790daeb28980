"""/v1/collections over HTTP: Portkey's shapes, the write scope, and OpenAI-shaped errors."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from core.auth import Authenticator
from core.collections import CollectionService
from core.service import PromptService, utc_now
from handlers.http_app import create_app
from tests.scoped_keys import key_per_scope
from tests.unit.fakes import InMemoryStore

CHAT = json.dumps([{"role": "user", "content": "Hello"}])


@pytest.fixture
def served() -> tuple[TestClient, dict[str, str]]:
    store = InMemoryStore()
    headers = key_per_scope(store)
    app = create_app(PromptService(store, store), Authenticator(store, ttl=0),
                     collections=CollectionService(store, store, now=utc_now))
    return TestClient(app, raise_server_exceptions=False), headers


def test_crud_round_trip(served) -> None:
    client, keys = served
    auth = {"x-portkey-api-key": keys["write"]}

    created = client.post("/v1/collections", headers=auth, json={"name": "Support", "workspace_id": "ws-1"})
    assert created.status_code == 200, created.text
    made = created.json()
    assert made == {"id": made["id"], "slug": "support", "object": "collection"}

    got = client.get(f"/v1/collections/{made['slug']}", headers=auth).json()
    assert got["id"] == made["id"] and got["name"] == "Support" and got["object"] == "collection"
    listed = client.get("/collections?workspace_id=ws-1&search=supp", headers=auth).json()  # unprefixed too
    assert listed["total"] == 1 and listed["data"][0]["id"] == made["id"]

    renamed = client.put(f"/v1/collections/{made['id']}", headers=auth, json={"name": "Help"})
    assert (renamed.status_code, renamed.json()) == (200, {})
    assert client.get(f"/v1/collections/{made['id']}", headers=auth).json()["name"] == "Help"

    prompt = client.post("/v1/prompts", headers=auth, json={"name": "p", "string": CHAT, "collection_id": made["id"]})
    assert prompt.status_code == 200, prompt.text
    busy = client.delete(f"/v1/collections/{made['id']}", headers=auth)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "collection_not_empty"
    assert "1 prompt(s)" in busy.json()["error"]["message"]
    assert client.delete(f"/v1/prompts/{prompt.json()['id']}", headers=auth).status_code == 200

    deleted = client.delete(f"/v1/collections/{made['id']}", headers=auth)
    assert (deleted.status_code, deleted.json()) == (200, {})
    missing = client.get(f"/v1/collections/{made['id']}", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "collection_not_found"


def test_errors_are_openai_shaped(served) -> None:
    client, keys = served
    auth = {"x-portkey-api-key": keys["write"]}
    cases = [
        (client.post("/v1/collections", headers=auth, json={}), 400, "missing_required_parameter"),
        (client.post("/v1/collections", headers=auth, json={"name": "x", "color": 1}), 400, "unknown_parameter"),
        (client.delete("/v1/collections/default", headers=auth), 409, "default_collection"),
        (client.put("/v1/collections/default", headers=auth, json={"name": "x"}), 409, "default_collection"),
        (client.get("/v1/collections", headers={"x-portkey-api-key": keys["render"]}), 403, "insufficient_scope"),
        (client.get("/v1/collections"), 401, "missing_api_key"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        assert response.json()["error"]["code"] == code


def test_the_openapi_document_describes_collections(served) -> None:
    client, _ = served
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/collections"]) == {"get", "post"}
    assert set(paths["/v1/collections/{collection_id}"]) >= {"get", "put", "delete"}
