"""GET /v1/prompts/{id}/diff over HTTP, on the in-memory fakes: selectors, the answer's shape, errors."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from core.auth import Authenticator
from core.service import PromptService
from handlers.http_app import create_app
from tests.scoped_keys import key_per_scope
from tests.unit.fakes import InMemoryStore


def chat(content: str) -> str:
    return json.dumps([{"role": "user", "content": content}])


@pytest.fixture
def served() -> tuple[TestClient, dict[str, str], str]:
    """A prompt `summarize` with three versions: 2 labelled `candidate`, 3 the latest."""
    store = InMemoryStore()
    keys = key_per_scope(store)
    client = TestClient(create_app(PromptService(store, store), Authenticator(store, ttl=0)),
                        raise_server_exceptions=False)
    auth = {"x-portkey-api-key": keys["write"]}
    made = client.post("/v1/prompts", headers=auth, json={
        "name": "Summarize", "slug": "summarize", "string": chat("Summarize {{text}}"),
        "parameters": {"temperature": 0.0}, "model": "m1"})
    assert made.status_code == 200, made.text
    for body in ({"string": chat("Summarize {{text}} in {{sentences}} sentences"), "parameters": {"temperature": 0.5},
                  "model": "m1"},
                 {"string": chat("Summarize {{text}} in {{sentences}} sentences"), "parameters": {"temperature": 0.5},
                  "model": "m2"}):
        assert client.put("/v1/prompts/summarize", headers=auth, json=body).status_code == 200
    label = client.post("/v1/labels", headers=auth, json={"name": "candidate"})
    assert label.status_code == 200, label.text
    assert client.put("/v1/prompts/summarize/versions/2", headers=auth,
                      json={"label_id": label.json()["id"]}).status_code == 200
    return client, keys, made.json()["id"]


def diff(client: TestClient, key: str, prompt: str, query: str):
    return client.get(f"/v1/prompts/{prompt}/diff?{query}", headers={"x-portkey-api-key": key})


def test_numbers_template_diff_parameters_and_variables(served) -> None:
    client, keys, prompt_id = served
    answer = diff(client, keys["write"], "summarize", "from=1&to=2")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "prompt.diff" and body["prompt_id"] == prompt_id and body["slug"] == "summarize"
    assert body["from"]["version"] == 1 and body["to"]["version"] == 2
    assert body["from"]["prompt_version_id"] != body["to"]["prompt_version_id"]
    lines = body["template_diff"].splitlines()
    assert lines[:2] == ["--- summarize@1", "+++ summarize@2"]
    assert '-    "content": "Summarize {{text}}"' in lines
    assert '+    "content": "Summarize {{text}} in {{sentences}} sentences"' in lines
    assert body["changed"]["parameters"] == {"from": {"temperature": 0.0}, "to": {"temperature": 0.5}}
    assert body["added_variables"] == ["sentences"] and body["removed_variables"] == []
    assert body["identical"] is False

    back = diff(client, keys["write"], prompt_id, "from=2&to=1").json()  # by id, the other way round
    assert back["removed_variables"] == ["sentences"] and back["added_variables"] == []


def test_label_and_latest_selectors(served) -> None:
    client, keys, _ = served
    body = diff(client, keys["admin"], "summarize", "from=candidate&to=latest").json()
    assert body["from"] == {**body["from"], "ref": "summarize@candidate", "version": 2}
    assert body["to"] == {**body["to"], "ref": "summarize@latest", "version": 3}
    assert body["template_diff"] == ""
    assert body["changed"] == {"model": {"from": "m1", "to": "m2"}}
    same = diff(client, keys["write"], "summarize", "from=latest&to=003").json()
    assert same["identical"] is True and same["to"]["ref"] == "summarize@3"


@pytest.mark.parametrize(("prompt", "query", "status", "code"), [
    ("summarize", "from=1&to=9", 404, None),
    ("summarize", "from=staging&to=1", 404, None),
    ("no-such-prompt", "from=1&to=2", 404, None),
    ("summarize", "to=2", 400, None),
    ("summarize", "from=1&to=0", 400, "invalid_prompt_reference"),
    ("summarize", "from=1&to=a@b", 400, "invalid_prompt_reference"),
])
def test_errors(served, prompt: str, query: str, status: int, code: str | None) -> None:
    client, keys, _ = served
    answer = diff(client, keys["write"], prompt, query)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code:
        assert error["code"] == code
    if status == 400:
        assert error["param"] in {"from", "to"}


def test_needs_the_write_scope(served) -> None:
    client, keys, _ = served
    refused = diff(client, keys["render"], "summarize", "from=1&to=2")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    assert client.get("/v1/prompts/summarize/diff?from=1&to=2").status_code == 401
