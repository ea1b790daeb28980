"""POST /prompts/{id}/generate, Portkey's deprecated generations API: an alias of completions over HTTP.

SDK 2.3.4's `generations.create` fails before it sends anything, so the route is driven over HTTP with
the body older SDKs send (`{"variables": ...}`)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.auth import Authenticator, mint_key
from core.completions import CompletionService
from core.models import Scope
from core.service import PromptService
from handlers.http_app import create_app
from tests.handlers.test_completions_http import CHAT, OneProvider, Scripted, frames
from tests.unit.fakes import InMemoryStore
from tests.unit.test_completions import Bindings, Secrets, binding


def setup(provider: Scripted):
    store = InMemoryStore()
    prompts = PromptService(store, store)
    keys = {}
    for scope in (Scope.RENDER, Scope.COMPLETE):
        key = mint_key(scope.value, frozenset({scope}), "t")
        store.put_key(key.record)
        keys[scope] = {"x-portkey-api-key": key.key}
    prompt = prompts.create_prompt({"name": "P", "string": CHAT, "model": "m", "virtual_key": "vk"})
    completions = CompletionService(prompts, Bindings(binding("vk", "openai", "ref")), Secrets(ref="sk"),
                                    OneProvider(provider))
    return TestClient(create_app(prompts, Authenticator(store, ttl=0), completions=completions)), prompt, keys


def test_generate_answers_as_completions_with_the_same_body() -> None:
    provider = Scripted()
    client, prompt, keys = setup(provider)
    for prefix in ("/v1", ""):
        generated = client.post(f"{prefix}/prompts/{prompt['slug']}/generate", headers=keys[Scope.COMPLETE],
                                json={"variables": {"q": "hi"}})
        completed = client.post(f"{prefix}/prompts/{prompt['slug']}/completions", headers=keys[Scope.COMPLETE],
                                json={"variables": {"q": "hi"}})
        assert generated.status_code == completed.status_code == 200
        assert generated.json() == completed.json() and generated.json()["object"] == "chat.completion"
        assert generated.headers["x-cuecard-prompt-version"] == "1"
    assert provider.hits == 4


def test_generate_streams_like_completions() -> None:
    client, prompt, keys = setup(Scripted())
    response = client.post(f"/v1/prompts/{prompt['id']}/generate", headers=keys[Scope.COMPLETE],
                           json={"variables": {"q": "hi"}, "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert frames(response.text)[-1] == "data: [DONE]"


def test_generate_has_completions_scope_and_errors() -> None:
    provider = Scripted()
    client, prompt, keys = setup(provider)
    path = f"/v1/prompts/{prompt['id']}/generate"
    assert client.post(path, json={}).status_code == 401
    assert client.post(path, headers=keys[Scope.RENDER], json={}).status_code == 403
    assert client.post("/v1/prompts/pp-nope-000000/generate", headers=keys[Scope.COMPLETE], json={}).status_code == 404
    assert client.post(path, headers=keys[Scope.COMPLETE], json={"temperature": 9}).status_code == 400
    assert client.post("/v1/prompts/partials/generate", headers=keys[Scope.COMPLETE], json={}).status_code == 405
    assert provider.hits == 0


def test_generate_is_documented_as_deprecated() -> None:
    client, _, _ = setup(Scripted())
    operation = client.get("/openapi.json").json()["paths"]["/v1/prompts/{prompt_id}/generate"]["post"]
    assert operation["deprecated"] is True and operation["operationId"] == "createPromptGeneration"
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PromptRequest")
