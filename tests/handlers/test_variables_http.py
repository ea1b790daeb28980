"""Typed variables over HTTP, on the in-memory fakes: the answers' fields, and the 400 and 409 bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.auth import Authenticator
from core.completions import CompletionService
from core.service import PromptService
from handlers.http_app import create_app
from tests.handlers.test_completions_http import OneProvider, Scripted
from tests.scoped_keys import key_per_scope
from tests.unit.fakes import InMemoryStore
from tests.unit.test_completions import Bindings, Secrets, binding

CHAT = json.dumps([{"role": "user", "content": "Hello {{customer_name}}, about {{topic}}"}])
SCHEMA = {"type": "object", "required": ["customer_name"],
          "properties": {"customer_name": {"type": "string"}, "topic": {"type": "string", "default": "your order"}}}


@pytest.fixture
def served() -> tuple[TestClient, dict[str, str], Scripted]:
    """`greet` (version 1, published) with a schema and a virtual key; the provider is scripted."""
    store = InMemoryStore()
    keys = key_per_scope(store)
    prompts = PromptService(store, store)
    provider = Scripted()
    completions = CompletionService(prompts, Bindings(binding("vk", "openai", "ref")), Secrets(ref="sk"),
                                    OneProvider(provider))
    client = TestClient(create_app(prompts, Authenticator(store, ttl=0), completions=completions),
                        raise_server_exceptions=False)
    auth = {"x-portkey-api-key": keys["admin"]}
    made = client.post("/v1/prompts", headers=auth, json={
        "name": "Greet", "slug": "greet", "string": CHAT, "parameters": {}, "model": "m", "virtual_key": "vk",
        "variables_schema": SCHEMA})
    assert made.status_code == 200, made.text
    return client, auth, provider


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json" and "Traceback" not in response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_retrieve_answers_the_schema_its_origin_strictness_and_content_hash(served) -> None:
    client, auth, _ = served
    shown = client.get("/v1/prompts/greet", headers=auth).json()
    assert shown["variables_schema"] == SCHEMA and shown["variables_schema_inferred"] is False
    assert shown["strict_variables"] is False and shown["content_hash"].startswith("sha256:")
    listed = client.get("/v1/prompts/greet/versions", headers=auth).json()["data"][0]
    one = client.get("/v1/prompts/greet/versions/1", headers=auth).json()
    assert listed["content_hash"] == one["content_hash"] == shown["content_hash"]


def test_a_bad_schema_is_a_400_naming_variables_schema(served) -> None:
    client, auth, _ = served
    response = client.put("/v1/prompts/greet", headers=auth, json={"patch": True, "variables_schema": {"type": "array"}})
    error = error_of(response, 400)
    assert error == {"message": 'variables_schema must describe an object of variables: its top level needs "type": '
                                '"object".', "type": "invalid_request_error", "param": "variables_schema",
                     "code": "invalid_variables_schema"}


@pytest.mark.parametrize("route", ["render", "completions"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_strict_call_with_wrong_variables_is_one_400_before_any_provider_call(served, route, stream) -> None:
    client, auth, provider = served
    body = {"variables": {"customer_name": 7, "topc": "x"}, "strict": True, "stream": stream}
    error = error_of(client.post(f"/v1/prompts/greet/{route}", headers=auth, json=body), 400)
    assert error == {
        "message": "The variables do not match the variables_schema of prompt greet version 1 (the request says "
                   '"strict": true): unknown topc (not among the schema\'s properties); variables.customer_name '
                   'must be string, not integer. Send the variables the schema describes (GET the prompt to see it), '
                   'or render with "strict": false.',
        "type": "invalid_request_error", "param": "variables.topc", "code": "invalid_variables"}
    assert provider.hits == 0


def test_defaults_fill_in_and_strict_never_reaches_the_answer(served) -> None:
    client, auth, _ = served
    response = client.post("/v1/prompts/greet/render", headers=auth,
                           json={"variables": {"customer_name": "Ada"}, "strict": True})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["messages"] == [{"role": "user", "content": "Hello Ada, about your order"}] and "strict" not in data


def test_publishing_and_moving_a_label_that_would_break_callers_is_a_409_until_forced(served) -> None:
    client, auth, _ = served
    assert client.put("/v1/prompts/greet/versions/1", headers=auth, json={"label_id": "production"}).status_code == 200
    newer = {"patch": True, "variables_schema": {**SCHEMA, "required": ["customer_name", "order_id"],
                                                 "properties": {**SCHEMA["properties"], "order_id": {}}}}
    assert client.put("/v1/prompts/greet", headers=auth, json=newer).status_code == 200
    error = error_of(client.put("/v1/prompts/greet/makeDefault", headers=auth, json={"version": 2}), 409)
    assert error == {
        "message": "Publishing version 2 of prompt greet would break callers of version 1: order_id is now required "
                   '(without a default). Change those callers first, or send "force": true to do it anyway.',
        "type": "invalid_request_error", "param": "variables.order_id", "code": "incompatible_variables"}
    error = error_of(client.put("/v1/prompts/greet/versions/2", headers=auth, json={"label_id": "production"}), 409)
    assert error["code"] == "incompatible_variables" and error["message"].startswith("Moving label production")
    for path, body in (("makeDefault", {"version": 2, "force": True}),
                       ("versions/2", {"label_id": "production", "force": True})):
        assert client.put(f"/v1/prompts/greet/{path}", headers=auth, json=body).status_code == 200
    shown = client.get("/v1/prompts/greet", headers=auth).json()
    assert shown["published_version"] == 2 and shown["labels"] == {"production": 2}
