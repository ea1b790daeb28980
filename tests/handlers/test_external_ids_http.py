"""External ids over HTTP, on the app `cuecard serve` runs (SQLite): set on create, shown on retrieve and in
lists, replaced on update, and a prompt key on every route that takes one (`pmpt_...@N` included)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from core.auth import mint_key
from core.models import Scope
from handlers.container import build_container
from infra.settings import Settings
from infra.sqlite import open_sqlite_stores

NOW = "2026-01-01T00:00:00.000Z"
OPENAI_ID = "pmpt_68b0d5f3e1a48190b7e9bb6ce0e2a54e0b1a6c4d3e2f1a0b"


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    admin = mint_key("admin", frozenset({Scope.ADMIN}), NOW).key
    stores = open_sqlite_stores(tmp_path / "cuecard.db")
    app = build_container(Settings(store="sqlite", data_dir=str(tmp_path), admin_key=admin), stores).asgi_app()
    try:
        yield TestClient(app, raise_server_exceptions=False, headers={"x-portkey-api-key": admin})
    finally:
        stores.close()


def test_an_openai_prompt_id_names_the_prompt_on_every_route(client: TestClient) -> None:
    created = client.post("/v1/prompts", json={"name": "Support", "string": "Hi {{name}}", "model": "m",
                                               "parameters": {}, "external_ids": [OPENAI_ID, "legacy:support"]})
    assert created.status_code == 200, created.text
    prompt_id = created.json()["id"]
    updated = client.put(f"/v1/prompts/{OPENAI_ID}", json={"patch": True, "string": "Bye {{name}}"})
    assert (updated.status_code, updated.json()["version"]) == (200, 2), updated.text

    got = client.get(f"/v1/prompts/{OPENAI_ID}").json()
    assert (got["id"], got["external_ids"]) == (prompt_id, [OPENAI_ID, "legacy:support"])
    assert client.get("/v1/prompts").json()["data"][0]["external_ids"] == [OPENAI_ID, "legacy:support"]
    assert client.get(f"/v1/prompts/{OPENAI_ID}/versions/2").json()["external_ids"] == [OPENAI_ID, "legacy:support"]
    for reference, expected in ((OPENAI_ID, "Hi Ada"), (f"{OPENAI_ID}@2", "Bye Ada"),
                                ("legacy:support@latest", "Bye Ada"), (f"{OPENAI_ID}@1", "Hi Ada")):
        rendered = client.post(f"/v1/prompts/{reference}/render", json={"variables": {"name": "Ada"}})
        assert rendered.status_code == 200, rendered.text
        assert rendered.json()["data"]["prompt"] == expected, reference
        assert rendered.headers["x-cuecard-prompt-id"] == prompt_id
    assert client.put(f"/v1/prompts/{OPENAI_ID}/makeDefault", json={"version": 2}).status_code == 200
    assert client.post(f"/v1/prompts/{OPENAI_ID}/render", json={"variables": {"name": "Bo"}}).json()["data"][
        "prompt"] == "Bye Bo"

    replaced = client.put(f"/v1/prompts/{prompt_id}", json={"external_ids": ["legacy:support"]})
    assert (replaced.status_code, replaced.json()["version"]) == (200, 2)  # no new version
    missing = client.post(f"/v1/prompts/{OPENAI_ID}/render", json={})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "prompt_not_found")
    other = client.post("/v1/prompts", json={"name": "Other", "string": "x", "external_ids": [OPENAI_ID]})
    assert other.status_code == 200, other.text  # freed by the update

    taken = client.put(f"/v1/prompts/{OPENAI_ID}", json={"external_ids": [OPENAI_ID, "legacy:support"]})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "external_id_taken"
    assert created.json()["slug"] in taken.json()["error"]["message"]
    assert client.delete("/v1/prompts/legacy:support").status_code == 200
    assert client.put(f"/v1/prompts/{OPENAI_ID}", json={"external_ids": [OPENAI_ID, "legacy:support"]}).status_code == 200
